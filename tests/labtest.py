"""Helpers the end-to-end tests share: constants of the lab, a polling wait, reading objects
with kubectl, and the few manifests the tests write again and again.

Example:
    kubectl("apply", "-f", "-", input=yaml_docs(secret_yaml("key", ns, {"Authorization": KEY}),
                                                 anthropic_backend_yaml("claude", ns, "key")))
    backend = poll_object(kubectl, "agbe", "claude", ns, until=condition, what="backend status")
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from agwlab import wait
from agwlab.errors import WaitTimeout

__all__ = [
    "DATA",
    "KEY",
    "NS",
    "SEED_MODEL",
    "PollTimeout",
    "anthropic_backend_yaml",
    "condition",
    "get_object",
    "has_status",
    "http_route_yaml",
    "poll",
    "poll_object",
    "secret_yaml",
    "yaml_docs",
]

DATA = Path(__file__).resolve().parent / "data"
KEY = "sk-ant-api03-" + "T" * 86 + "AA"      # shaped like an Anthropic key; the stand-in checks only the shape
SEED_MODEL = "claude-sonnet-4-5-20250929"
NS = "agentgateway-system"


class PollTimeout(AssertionError, TimeoutError):
    """``poll`` gave up: a failed assertion in a test, a ``TimeoutError`` to a benchmark."""


def poll(fn: Any, *, timeout: float = 20, what: str = "condition", every: float = 0.1) -> Any:
    """Call ``fn`` until it returns something truthy; fail with the last thing seen.

    Raises:
        PollTimeout: nothing truthy within ``timeout`` seconds.
    """
    def step() -> tuple[bool, Any]:
        value = fn()
        return bool(value), value

    try:  # an exception means "not yet" and is reported as the last thing seen
        return wait.poll(step, timeout=timeout, interval=every, what=what, describe=repr, retry_on=(Exception,))
    except WaitTimeout as e:
        raise PollTimeout(str(e)) from None


def wait_for_jupyterlab(proc: subprocess.Popen[Any], base: str, token: str, *, timeout: float = 90,
                        output: Callable[[], str] = lambda: "") -> None:
    """Wait until the JupyterLab that ``proc`` (``./lab start``) runs answers its API at ``base``.

    Raises:
        AssertionError: ``proc`` exited first (at once, with ``output()``), or no answer within ``timeout``.
    """
    def answering() -> tuple[bool, str]:
        if proc.poll() is not None:
            raise AssertionError(f"./lab start exited with {proc.returncode}:\n{output()}")
        status = httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code
        return status == 200, f"HTTP {status}"

    try:
        wait.poll(answering, timeout=timeout, interval=0.2, what="JupyterLab to answer",
                  retry_on=(httpx.HTTPError,))
    except WaitTimeout as e:
        raise AssertionError(f"{e}\n{output()}") from None


def get_object(kubectl: Any, kind: str, name: str, ns: str) -> dict[str, Any]:
    """One object as ``kubectl get -o json`` prints it."""
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json"))


def poll_object(kubectl: Any, kind: str, name: str, ns: str, until: Callable[[dict[str, Any]], Any], *,
                timeout: float = 20, what: str = "the object") -> dict[str, Any]:
    """Get the object until ``until(obj)`` is truthy; return the object."""
    return poll(lambda: (lambda obj: obj if until(obj) else None)(get_object(kubectl, kind, name, ns)),
                timeout=timeout, what=what)


def has_status(field: str) -> Callable[[dict[str, Any]], Any]:
    """A check for :func:`poll_object`: the object's ``status`` has ``field`` (non-empty)."""
    return lambda obj: (obj.get("status") or {}).get(field)


def condition(obj: dict[str, Any], type_: str | None = None) -> dict[str, Any] | None:
    """The object's first status condition (of ``type_`` if given), or None."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if type_ is None or c["type"] == type_), None)


def yaml_docs(*docs: str) -> str:
    """Manifests joined into one multi-document YAML stream."""
    return "---\n".join(docs)


def secret_yaml(name: str, ns: str, data: dict[str, str]) -> str:
    """A Secret with ``data`` as its ``stringData``."""
    pairs = ", ".join(f"{key}: {json.dumps(value)}" for key, value in data.items())
    return f"""apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {ns}}}
stringData: {{{pairs}}}
"""


def anthropic_backend_yaml(name: str, ns: str, secret: str, *, model: str | None = None,
                           key: str | None = None) -> str:
    """An Anthropic AgentgatewayBackend whose auth comes from Secret ``secret`` (entry ``key``)."""
    provider = f"{{model: {model}}}" if model else "{}"
    secret_ref = f"{{name: {secret}" + (f", key: {key}" if key else "") + "}"
    return f"""apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ai: {{provider: {{anthropic: {provider}}}}}
  policies: {{auth: {{secretRef: {secret_ref}}}}}
"""


def http_route_yaml(name: str, ns: str, parent: str, *, prefix: str | None = None, backend: str | None = None,
                    service: tuple[str, int] | None = None, parent_namespace: str | None = None) -> str:
    """An HTTPRoute on Gateway ``parent`` with one rule: paths under ``prefix`` (all paths
    without one) go to AgentgatewayBackend ``backend`` or to ``service`` (name, port).

    Raises:
        ValueError: not exactly one of ``backend`` and ``service`` was given.
    """
    if (backend is None) == (service is None):
        raise ValueError("give backend or service, not both")
    parent_ref = f"{{name: {parent}" + (f", namespace: {parent_namespace}" if parent_namespace else "") + "}"
    ref = (f"{{group: agentgateway.dev, kind: AgentgatewayBackend, name: {backend}}}" if backend is not None
           else f"{{name: {service[0]}, port: {service[1]}}}")  # type: ignore[index]
    matches = f"matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}], " if prefix else ""
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{parent_ref}]
  rules: [{{{matches}backendRefs: [{ref}]}}]
"""
