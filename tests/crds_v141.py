"""Validate a manifest as agentgateway v1.4.1's own CRD schema does.

The sandbox's API server serves v1.4.1's schemas (``agwlab/sandbox/schemas/``);
``tests/data/crds_v141/`` holds an independent copy of two of them (descriptions removed, see its
``PROVENANCE.md``), which ``tests/sandbox/test_schemas.py`` compares with what the
sandbox serves. ``admit_v141`` runs the API server's admission (pruning, defaults, types, enums,
``x-kubernetes-validations`` CEL rules, unknown fields refused) in-process.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from agwlab.sandbox import kinds
from agwlab.sandbox.apiserver import validation

DIR = Path(__file__).parent / "data" / "crds_v141"


@functools.cache
def vendored_schema(plural: str) -> dict[str, Any]:
    """The vendored v1.4.1 ``openAPIV3Schema`` of ``<plural>.agentgateway.dev``."""
    return json.loads((DIR / f"{plural}.agentgateway.dev.json").read_text(encoding="utf-8"))["schema"]


def admit_v141(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as v1.4.1's CRD admits it (defaults applied).

    Raises:
        BadRequest: a field v1.4.1 does not know.
        Invalid: the object breaks a v1.4.1 schema rule.
    """
    info = kinds.by_kind(obj["apiVersion"], obj["kind"])
    assert info is not None and info.group == "agentgateway.dev", obj["kind"]
    out = copy.deepcopy(obj)
    validation.admit(out, info=info)
    return out
