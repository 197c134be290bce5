"""Each controller test works in a namespace of its own."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest


@pytest.fixture
def ns(kubectl) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"ctrl-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "agwlab.test=controller")
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def get(kubectl, kind: str, name: str, ns: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json"))
