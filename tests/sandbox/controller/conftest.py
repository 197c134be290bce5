"""Each controller test works in a namespace of its own."""

from __future__ import annotations

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
