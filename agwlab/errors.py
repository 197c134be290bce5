"""The errors agwlab raises, each with a message that says what to do next.

Every error a learner can meet derives from :class:`LabError`, so a notebook cell can
catch them all at once. The hierarchy::

    LabError
    ├── ClusterUnreachable        the API server did not answer
    ├── KubeError                 the API server answered with an error
    │   ├── ResourceTypeMissing   a kind the cluster does not serve (CRDs not installed)
    │   ├── Forbidden             RBAC refused the request
    │   ├── InvalidObject         the object failed validation (names the field)
    │   └── NotFound              the object does not exist
    ├── WaitTimeout               a wait ran out of time (says what it last saw)
    ├── GatewayAddressUnavailable the Gateway has no address yet (or no LoadBalancer)
    ├── PrometheusUnavailable     no Prometheus to query
    ├── SandboxUnavailable        the sandbox could not be started
    └── CheckFailed               a lab check failed in strict (CI) mode

Messages never contain secrets: everything that might carry a key goes through
:func:`agwlab.redaction.redact` first.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .names import AGENTGATEWAY_CRDS_CHART, CONTROLLER_NAMESPACE, GATEWAY_API_VERSION, TESTED_VERSION
from .redaction import redact

__all__ = [
    "CheckFailed",
    "ClusterUnreachable",
    "Forbidden",
    "GatewayAddressUnavailable",
    "InvalidObject",
    "KubeError",
    "LabError",
    "NotFound",
    "PrometheusUnavailable",
    "ResourceTypeMissing",
    "SandboxUnavailable",
    "WaitTimeout",
    "from_api_error",
    "missing_kind_message",
]


class LabError(Exception):
    """Base class of every error agwlab raises."""


class ClusterUnreachable(LabError):
    """The Kubernetes API server could not be reached."""


class KubeError(LabError):
    """The API server answered with an error status.

    Attributes:
        status: the HTTP status the API server returned (0 when unknown).
    """

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ResourceTypeMissing(KubeError):
    """The cluster does not serve this kind: usually its CRDs are not installed."""


class Forbidden(KubeError):
    """The API server refused the request (RBAC)."""


class InvalidObject(KubeError):
    """The object was rejected by validation.

    Attributes:
        fields: the field paths the API server named (may be empty).
    """

    def __init__(self, message: str, *, status: int = 422, fields: list[str] | None = None) -> None:
        super().__init__(message, status=status)
        self.fields = fields or []


class NotFound(KubeError):
    """The object does not exist."""


class WaitTimeout(LabError):
    """A wait ran out of time.

    Attributes:
        last_seen: a short description of the state seen last.
    """

    def __init__(self, message: str, *, last_seen: str = "") -> None:
        super().__init__(message)
        self.last_seen = last_seen


class GatewayAddressUnavailable(LabError):
    """The Gateway has no reachable address yet."""


class PrometheusUnavailable(LabError):
    """There is no Prometheus to query, or it does not answer."""


class SandboxUnavailable(LabError):
    """The local sandbox could not be started."""


class CheckFailed(LabError, AssertionError):
    """A lab check failed while running strictly (under pytest/nbmake or ``AGWLAB_STRICT=1``).

    Attributes:
        stage: the notebook stage, e.g. ``"01-claude-llm-connection"``.
        step: the step within the stage, e.g. ``"3"``.
    """

    def __init__(self, message: str, *, stage: str, step: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.step = step


# Helm commands that install what a missing kind needs, by API group.
_INSTALL_HINTS = {
    "agentgateway.dev": (
        f"install agentgateway's CRDs (helm upgrade -i agentgateway-crds {AGENTGATEWAY_CRDS_CHART} "
        f"-n {CONTROLLER_NAMESPACE} --create-namespace --version {TESTED_VERSION})"
    ),
    "gateway.networking.k8s.io": (
        "install the Gateway API CRDs (kubectl apply --server-side -f "
        f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/"
        "standard-install.yaml)"
    ),
}


def missing_kind_message(kind: str, api_version: str) -> str:
    """The message for a kind the cluster does not serve, with the install command."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    hint = _INSTALL_HINTS.get(group, "check the kind and apiVersion, or install the CRD that defines it")
    return f"the server doesn't have a resource type {kind} ({api_version}): {hint}"


def _body_of(exc: Any) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def from_api_error(exc: Exception, *, action: str, kind: str = "", name: str = "") -> LabError:
    """Turn a kubernetes client error into a :class:`LabError` that says what to do.

    Args:
        exc: what the kubernetes client raised (``ApiException``, a dynamic-client error,
            a urllib3 connection error, ...).
        action: what agwlab was doing, e.g. ``"apply"``.
        kind: the object's kind, when known.
        name: the object's name, when known.

    Returns:
        The matching :class:`LabError` (not raised).
    """
    what = f"{kind}/{name}" if kind and name else (kind or name or "object")
    status = int(getattr(exc, "status", 0) or 0)
    if status == 0:
        return ClusterUnreachable(
            redact(
                f"could not reach the Kubernetes API server to {action} {what} ({type(exc).__name__}): "
                "is the sandbox running? Re-run the notebook's first cell (connect() starts it again) or "
                "./lab start; on a cluster, check your kubeconfig context"
            )
        )
    body = _body_of(exc)
    message = str(body.get("message") or getattr(exc, "reason", "") or "").strip()
    if status == 403:
        return Forbidden(
            redact(
                f"forbidden: cannot {action} {what}: {message}. Ask for RBAC permission or switch context."
            ),
            status=status,
        )
    if status == 404:
        missing_ns = re.match(r'namespaces "([^"]+)" not found', message)
        if missing_ns and action != "delete":
            ns = missing_ns.group(1)
            return NotFound(redact(f"cannot {action} {what}: namespace {ns} does not exist. Create it "
                                   f"(kubectl create namespace {ns}) or fix metadata.namespace"), status=status)
        return NotFound(redact(f"{what} not found ({action})"), status=status)
    if status in (400, 422):
        causes = (body.get("details") or {}).get("causes") or []
        fields = [str(c.get("field")) for c in causes if c.get("field")]
        fields += [f for f in re.findall(r'unknown field "([^"]+)"', message) if f not in fields]
        field_part = f" (field {', '.join(fields)})" if fields else ""
        return InvalidObject(
            redact(
                f"{what} is invalid{field_part}: {message or 'rejected by the API server'}. Fix the manifest."
            ),
            status=status,
            fields=fields,
        )
    if status == 409:
        return KubeError(
            redact(f"conflict on {what} ({action}): {message}. Run the cell again."), status=status
        )
    return KubeError(redact(f"the API server answered {status} to {action} {what}: {message}"), status=status)
