"""agwlab: a hands-on lab guide for agentgateway on Kubernetes, with a local sandbox.

The notebooks import what they need from here::

    from agwlab import connect, check, kube, manifests, llm, traces, metrics, widgets

    lab = connect()               # the sandbox (started if needed), or AGWLAB_TARGET=cluster
    kube.apply(lab, manifests.gateway(lab.names, gateway_class=lab.gateway_class))
    prepare(lab, "llm", "tracing")   # or catch up on what earlier notebooks apply

Names are loaded on first use, so ``python -m agwlab sandbox …`` and the sandbox itself
do not pay for the notebook stack (kubernetes client, pandas, ipywidgets).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import (
        agent,
        checks,
        errors,
        key_steps,
        kube,
        llm,
        manifests,
        mcp,
        metrics,
        models,
        ratelimits,
        resilience,
        secrets,
        shell,
        stages,
        traces,
        widgets,
    )
    from .checks import check
    from .errors import CheckFailed, LabError
    from .lab import Lab, connect
    from .stages import prepare

__all__ = [
    "CheckFailed",
    "Lab",
    "LabError",
    "agent",
    "check",
    "checks",
    "connect",
    "errors",
    "key_steps",
    "kube",
    "llm",
    "manifests",
    "mcp",
    "metrics",
    "models",
    "prepare",
    "ratelimits",
    "resilience",
    "secrets",
    "shell",
    "stages",
    "traces",
    "widgets",
]

_NAMES = {
    "CheckFailed": ("errors", "CheckFailed"),
    "LabError": ("errors", "LabError"),
    "Lab": ("lab", "Lab"),
    "connect": ("lab", "connect"),
    "prepare": ("stages", "prepare"),
    "check": ("checks", "check"),
}
_MODULES = {"agent", "checks", "errors", "key_steps", "kube", "llm", "manifests", "mcp", "metrics", "models", "ratelimits",
            "resilience", "secrets", "shell", "stages", "traces", "widgets"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        module, attr = _NAMES[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'agwlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
