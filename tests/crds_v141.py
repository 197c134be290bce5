"""Validate a manifest against agentgateway v1.4.1's own CRD schema (``tests/data/crds_v141``).

Runs the sandbox API server's admission (pruning, defaults, types, enums, ``x-kubernetes-validations``
CEL rules, unknown fields refused) in-process, with the v1.4.1 schema in place of the one the sandbox
serves.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any
from unittest import mock

from agwlab.sandbox import kinds
from agwlab.sandbox.apiserver import validation

DIR = Path(__file__).parent / "data" / "crds_v141"


@functools.cache
def _schema(plural: str) -> dict[str, Any]:
    return json.loads((DIR / f"{plural}.agentgateway.dev.json").read_text(encoding="utf-8"))["schema"]


def admit_v141(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as v1.4.1's CRD admits it (defaults applied).

    Raises:
        BadRequest: a field v1.4.1 does not know.
        Invalid: the object breaks a v1.4.1 schema rule.
    """
    info = kinds.by_kind(obj["apiVersion"], obj["kind"])
    assert info is not None and info.group == "agentgateway.dev", obj["kind"]
    original = validation.kind_schema
    with mock.patch.object(validation, "kind_schema",
                           lambda group, plural: _schema(plural) if group == "agentgateway.dev"
                           else original(group, plural)), \
            mock.patch.object(validation, "compile_rules", lambda info: 0):
        out = copy.deepcopy(obj)
        validation.admit(out, info=info)
    return out
