"""apply / get / wait_for / delete / logs over the official kubernetes client.

The same calls work against the sandbox and a real cluster. Every call that talks to
the API server turns client errors into :mod:`agwlab.errors` with a hint, and every
wait has a timeout.

Example:
    >>> from agwlab import connect, kube, manifests
    >>> lab = connect()
    >>> applied = kube.apply(lab, manifests.gateway(lab.names))   # doctest: +ELLIPSIS
    gateway.gateway.networking.k8s.io/agentgateway-route ...
    >>> gw = kube.wait_for(lab, "Gateway", lab.names.gateway, lab.names.namespace, condition="Programmed")
    ... # doctest: +ELLIPSIS
    ✓ gateway/agentgateway-route Programmed=True after ...s
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

import yaml
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from .errors import (
    InvalidObject,
    LabError,
    NotFound,
    ResourceTypeMissing,
    from_api_error,
    missing_kind_message,
)
from .redaction import redact
from .wait import poll


class Connection(Protocol):
    """What these functions need of a connection: a :class:`agwlab.Lab` is one."""

    @property
    def api_client(self) -> ApiClient: ...

    @property
    def dynamic(self) -> DynamicClient: ...

__all__ = [
    "KINDS",
    "Applied",
    "Connection",
    "apply",
    "conditions",
    "delete",
    "get",
    "list_objects",
    "logs",
    "resolve_kind",
    "wait_for",
]

FIELD_MANAGER = "agwlab"
_TIMEOUT = (5, 30)  # (connect, read) seconds for every API call

# kind (or short name) -> (apiVersion, Kind) for everything the lab touches.
KINDS: dict[str, tuple[str, str]] = {}
for _names, _gvk in [
    (("gateway", "gateways", "gtw"), ("gateway.networking.k8s.io/v1", "Gateway")),
    (("gatewayclass", "gatewayclasses", "gc"), ("gateway.networking.k8s.io/v1", "GatewayClass")),
    (("httproute", "httproutes"), ("gateway.networking.k8s.io/v1", "HTTPRoute")),
    (("referencegrant", "referencegrants"), ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant")),
    (
        ("agentgatewaybackend", "agentgatewaybackends", "agbe"),
        ("agentgateway.dev/v1alpha1", "AgentgatewayBackend"),
    ),
    (
        ("agentgatewaypolicy", "agentgatewaypolicies", "agpol"),
        ("agentgateway.dev/v1alpha1", "AgentgatewayPolicy"),
    ),
    (
        ("agentgatewayparameters", "agpar"),
        ("agentgateway.dev/v1alpha1", "AgentgatewayParameters"),
    ),
    (("secret", "secrets"), ("v1", "Secret")),
    (("service", "services", "svc"), ("v1", "Service")),
    (("configmap", "configmaps", "cm"), ("v1", "ConfigMap")),
    (("pod", "pods", "po"), ("v1", "Pod")),
    (("namespace", "namespaces", "ns"), ("v1", "Namespace")),
    (("deployment", "deployments", "deploy"), ("apps/v1", "Deployment")),
    (
        ("customresourcedefinition", "customresourcedefinitions", "crd", "crds"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ),
]:
    for _n in _names:
        KINDS[_n] = _gvk


@dataclass(frozen=True)
class Applied:
    """What one object's apply did, as kubectl says it (``created``, ``configured``, ``unchanged``)."""

    kind: str
    api_version: str
    name: str
    namespace: str | None
    action: str

    def __str__(self) -> str:
        group = self.api_version.split("/")[0] if "/" in self.api_version else ""
        kind = self.kind.lower() + (f".{group}" if group else "")
        return f"{kind}/{self.name} {self.action}"


def resolve_kind(kind: str, api_version: str | None = None) -> tuple[str, str]:
    """``(apiVersion, Kind)`` for a kind, a short name (``agbe``) or ``apiVersion``+kind.

    Raises:
        LabError: for a kind the lab does not know and no ``api_version`` was given.
    """
    if api_version:
        return api_version, kind
    known = KINDS.get(kind.lower())
    if known is None:
        raise LabError(
            f"unknown kind {kind!r}: pass api_version=..., or one of "
            f"{sorted({v[1] for v in KINDS.values()})}"
        )
    return known


def _resource(lab: Connection, kind: str, api_version: str | None = None) -> Any:
    api_version, kind = resolve_kind(kind, api_version)
    try:
        return lab.dynamic.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        raise ResourceTypeMissing(missing_kind_message(kind, api_version), status=404) from None
    except LabError:
        raise
    except Exception as exc:
        raise from_api_error(exc, action="look up", kind=kind) from None


def _objects(manifests: Any) -> list[dict[str, Any]]:
    """Flatten a YAML string, a dict, an object with ``.obj`` or a list of them into dicts."""
    if manifests is None:
        return []
    if isinstance(manifests, str):
        try:
            return [d for d in yaml.safe_load_all(manifests) if d]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InvalidObject(f"the manifest is not valid YAML{where}: {problem}. Fix the manifest; nothing "
                                "was applied") from None
    if isinstance(manifests, Mapping):
        if manifests.get("kind", "").endswith("List") and "items" in manifests:
            return _objects(list(manifests["items"]))
        return [dict(manifests)]
    if hasattr(manifests, "obj"):
        return _objects(manifests.obj)
    if isinstance(manifests, Iterable):
        out: list[dict[str, Any]] = []
        for item in manifests:
            out.extend(_objects(item))
        return out
    raise LabError(f"cannot apply a {type(manifests).__name__}: pass YAML text, a dict, or a list of them")


def _say(line: str, quiet: bool) -> None:
    if not quiet:
        print(redact(line), flush=True)


_BOOKKEEPING = ("resourceVersion", "managedFields", "generation")


def _content(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a user wrote: everything but status and the API server's bookkeeping.

    Compared instead of resourceVersion, which a controller's status write can move
    between reading an object and applying it.
    """
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _BOOKKEEPING}
    return out


def apply(lab: Connection, manifests: Any, *, dry_run: bool = False, quiet: bool = False) -> list[Applied]:
    """Server-side apply objects (field manager ``agwlab``, conflicts forced).

    Applying the same objects twice changes nothing; each line printed says whether the
    object was ``created``, ``configured`` or ``unchanged``, as ``kubectl apply`` does.
    Unknown fields are refused (``fieldValidation=Strict``, kubectl's default).

    Args:
        lab: from :func:`agwlab.connect`.
        manifests: YAML text (several documents allowed), a dict, a
            :class:`agwlab.manifests.Manifest`, or a list of any of these.
        quiet: print nothing.

    Returns:
        One :class:`Applied` per object, in order.

    Raises:
        ResourceTypeMissing: the cluster does not serve a kind (CRDs missing).
        InvalidObject: the API server rejected a field (the message names it).
        Forbidden, ClusterUnreachable: see :mod:`agwlab.errors`.
    """
    results = []
    for obj in _objects(manifests):
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        if not (api_version and kind and name):
            raise LabError("every object needs apiVersion, kind and metadata.name")
        resource = _resource(lab, kind, api_version)
        namespace = (meta.get("namespace") or "default") if resource.namespaced else None
        before = get(lab, kind, name, namespace, api_version=api_version, missing_ok=True)
        if kind == "Namespace" and before is not None and not _is_labs(before):
            # someone else's namespace (it existed before the lab): never label or adopt it,
            # so cleanup can never delete it with whatever lives there
            _say(f"namespace/{name} exists and is not the lab's: left as it is", quiet)
            results.append(Applied(kind, api_version, name, None, "unchanged"))
            continue
        try:
            after = lab.dynamic.server_side_apply(
                resource,
                body=obj,
                name=name,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All" if dry_run else None,
                query_params=[("fieldValidation", "Strict")],
                _request_timeout=_TIMEOUT,
            ).to_dict()
        except Exception as exc:
            raise from_api_error(exc, action="apply", kind=kind, name=name) from None
        if dry_run:
            action = "valid (dry run)"
        elif before is None:
            action = "created"
        elif _content(before) == _content(after):
            action = "unchanged"
        else:
            action = "configured"
        applied = Applied(kind, api_version, name, namespace, action)
        _say(str(applied), quiet)
        results.append(applied)
    return results


def _is_labs(obj: dict[str, Any]) -> bool:
    from .names import LAB_LABEL

    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in LAB_LABEL.items())


@overload
def get(lab: Connection, kind: str, name: str, namespace: str | None = None, *, api_version: str | None = None,
        missing_ok: Literal[False] = False) -> dict[str, Any]: ...
@overload
def get(lab: Connection, kind: str, name: str, namespace: str | None = None, *, api_version: str | None = None,
        missing_ok: bool) -> dict[str, Any] | None: ...
def get(
    lab: Connection,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    api_version: str | None = None,
    missing_ok: bool = False,
) -> dict[str, Any] | None:
    """One object as a plain dict.

    Args:
        kind: a kind or short name (``"Gateway"``, ``"agbe"``, ``"deploy"``).
        namespace: for namespaced kinds (default ``default``).
        missing_ok: return ``None`` instead of raising when the object does not exist.

    Raises:
        NotFound: the object does not exist (unless ``missing_ok``).
        ResourceTypeMissing: the cluster does not serve the kind.
    """
    resource = _resource(lab, kind, api_version)
    ns = (namespace or "default") if resource.namespaced else None
    try:
        found: dict[str, Any] = lab.dynamic.get(resource, name=name, namespace=ns, _request_timeout=_TIMEOUT).to_dict()
        return found
    except Exception as exc:
        err = from_api_error(exc, action="get", kind=resource.kind, name=name)
        if isinstance(err, NotFound):
            if missing_ok:
                return None
            where = f" in namespace {ns}" if ns else ""
            raise NotFound(f"{resource.kind}/{name} not found{where}", status=404) from None
        raise err from None


def list_objects(
    lab: Connection,
    kind: str,
    namespace: str | None = None,
    *,
    labels: str | Mapping[str, str] | None = None,
    api_version: str | None = None,
) -> list[dict[str, Any]]:
    """Objects of one kind, optionally filtered by labels (``"a=b,c=d"`` or a dict).

    ``namespace=None`` lists across all namespaces for namespaced kinds.
    """
    resource = _resource(lab, kind, api_version)
    if isinstance(labels, Mapping):
        labels = ",".join(f"{k}={v}" for k, v in labels.items())
    try:
        result = lab.dynamic.get(
            resource,
            namespace=namespace if resource.namespaced else None,
            label_selector=labels or None,
            _request_timeout=_TIMEOUT,
        ).to_dict()
    except Exception as exc:
        raise from_api_error(exc, action="list", kind=resource.kind) from None
    return list(result.get("items") or [])


def conditions(obj: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """An object's conditions by type, wherever its kind keeps them.

    Looks in ``status.conditions``, then in ``status.parents[*].conditions`` (routes) and
    ``status.ancestors[*].conditions`` (policies); for routes the first parent that reports a
    condition wins. Conditions older than the object's ``metadata.generation`` are skipped.
    """
    if not obj:
        return {}
    generation = (obj.get("metadata") or {}).get("generation")
    status = obj.get("status") or {}
    found: dict[str, dict[str, Any]] = {}
    groups = [status.get("conditions") or []]
    groups += [p.get("conditions") or [] for p in status.get("parents") or []]
    groups += [a.get("conditions") or [] for a in status.get("ancestors") or []]
    for group in groups:
        for cond in group:
            observed = cond.get("observedGeneration")
            if generation is not None and observed is not None and observed < generation:
                continue
            found.setdefault(str(cond.get("type")), cond)
    return found


def _summary(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return "does not exist"
    conds = conditions(obj)
    if not conds:
        return "no status yet"
    parts = []
    for ctype, cond in conds.items():
        text = f"{ctype}={cond.get('status')}"
        if cond.get("status") != "True" and cond.get("reason"):
            message = str(cond.get("message") or "").strip()
            text += f" ({cond['reason']}: {message})" if message else f" ({cond['reason']})"
        parts.append(text)
    return ", ".join(parts)


_WAIT_HINTS = {
    "Gateway": (
        "check the GatewayClass exists and is Accepted (kubectl get gatewayclass) "
        "and that agentgateway's controller runs"
    ),
    "HTTPRoute": "check parentRefs (name and namespace of the Gateway) and the listener's allowedRoutes",
    "AgentgatewayBackend": (
        "kubectl describe agentgatewaybackend shows why (a missing Secret is the usual cause)"
    ),
    "AgentgatewayPolicy": "check targetRefs name the Gateway, and that the backendRef Service exists",
    "Deployment": "kubectl get pods -n <namespace> and kubectl logs deploy/<name> show why it is not ready",
}


def wait_for(
    lab: Connection,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    condition: str | Callable[[dict[str, Any] | None], bool] = "Accepted",
    status: str = "True",
    timeout: float = 60,
    interval: float = 0.25,
    api_version: str | None = None,
    quiet: bool = False,
) -> dict[str, Any] | None:
    """Wait until an object reaches a condition, printing each change seen.

    Args:
        condition: a condition type (``"Programmed"``, ``"Accepted"``, ``"Available"`` …),
            ``"exists"``, ``"deleted"``, or a function of the object (``None`` when absent)
            that returns True when done.
        status: the status the condition must have.
        timeout: seconds before giving up.
        interval: seconds between polls.
        quiet: print nothing.

    Returns:
        The object as last read (``None`` for ``"deleted"``).

    Raises:
        WaitTimeout: the condition was not met in time; the message says what was seen last.
    """
    resource = _resource(lab, kind, api_version)
    label = f"{resource.kind.lower()}/{name}"
    want = condition if isinstance(condition, str) else getattr(condition, "__name__", "condition")
    if isinstance(condition, str) and condition not in ("exists", "deleted"):
        want = f"{condition}={status}"
    start = time.monotonic()
    last = [""]

    def step() -> tuple[bool, dict[str, Any] | None]:
        obj = get(lab, resource.kind, name, namespace, api_version=resource.group_version, missing_ok=True)
        if callable(condition):
            done = bool(condition(obj))
        elif condition == "exists":
            done = obj is not None
        elif condition == "deleted":
            done = obj is None
        else:
            done = conditions(obj).get(condition, {}).get("status") == status
        seen = _summary(obj)
        if not done and seen != last[0]:
            _say(f"… {label}: {seen} ({time.monotonic() - start:.1f}s, waiting for {want})", quiet)
            last[0] = seen
        return done, obj

    ns_flag = f" -n {namespace}" if namespace else ""
    if condition == "deleted":
        hint = (f"kubectl get {resource.kind.lower()} {name}{ns_flag} -o yaml: a finalizer, or the "
                "object that owns it, keeps it")
    else:
        hint = _WAIT_HINTS.get(resource.kind, f"kubectl describe {resource.kind.lower()} {name}{ns_flag}")
        hint = hint.replace("<namespace>", namespace or "default").replace("<name>", name)
    obj = poll(
        step,
        timeout=timeout,
        interval=interval,
        what={"exists": f"{label} to exist", "deleted": f"{label} to be deleted"}.get(want, f"{label} to reach {want}"),
        hint=hint,
        describe=_summary,
    )
    _say(f"✓ {label} {want} after {time.monotonic() - start:.1f}s", quiet)
    return obj


def delete(
    lab: Connection,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    api_version: str | None = None,
    wait: bool = False,
    timeout: float = 30,
    quiet: bool = False,
) -> bool:
    """Delete an object; a missing object (or a missing kind) is not an error.

    Args:
        wait: wait until the object is gone.

    Returns:
        True when something was deleted.
    """
    try:
        resource = _resource(lab, kind, api_version)
    except ResourceTypeMissing:
        _say(f"{kind}/{name}: kind not served, nothing to delete", quiet)
        return False
    ns = (namespace or "default") if resource.namespaced else None
    label = f"{resource.kind.lower()}/{name}"
    try:
        lab.dynamic.delete(
            resource,
            name=name,
            namespace=ns,
            body={"propagationPolicy": "Background"},
            _request_timeout=_TIMEOUT,
        )
    except Exception as exc:
        err = from_api_error(exc, action="delete", kind=resource.kind, name=name)
        if isinstance(err, NotFound):
            _say(f"{label} not found (nothing to delete)", quiet)
            return False
        raise err from None
    _say(f"{label} deleted", quiet)
    if wait:
        wait_for(
            lab,
            resource.kind,
            name,
            ns,
            api_version=resource.group_version,
            condition="deleted",
            timeout=timeout,
            quiet=True,
        )
    return True


def _pods_for(lab: Connection, target: str, namespace: str) -> list[str]:
    kind, _, name = target.partition("/")
    if not name:
        return [kind]
    kind = kind.lower()
    if kind in ("pod", "pods", "po"):
        return [name]
    if kind in ("deploy", "deployment", "deployments"):
        deploy = get(lab, "Deployment", name, namespace)
        selector = ((deploy or {}).get("spec") or {}).get("selector", {}).get("matchLabels") or {}
        if not selector:
            raise LabError(f"deployment/{name} has no matchLabels selector; pass pod/NAME instead")
        pods = list_objects(lab, "Pod", namespace, labels=selector)
        return sorted(p["metadata"]["name"] for p in pods)
    raise LabError(f"logs: use deploy/NAME or pod/NAME, not {target!r}")


def logs(
    lab: Connection,
    target: str,
    namespace: str,
    *,
    tail: int | None = None,
    labels: str | Mapping[str, str] | None = None,
    since_seconds: int | None = None,
) -> str:
    """What ``kubectl logs`` shows, for every Pod of a Deployment.

    Args:
        target: ``"deploy/NAME"``, ``"pod/NAME"`` or a Pod name; ignored when ``labels`` is set.
        namespace: the namespace of the Pods.
        tail: only the last lines of each Pod.
        labels: select Pods by labels instead (``"k=v"`` or a dict).
        since_seconds: only lines newer than this.

    Returns:
        The logs of all matching Pods, one after the other (empty when there are none yet).

    Raises:
        NotFound: the Deployment or Pod does not exist.
    """
    if labels:
        pods = sorted(p["metadata"]["name"] for p in list_objects(lab, "Pod", namespace, labels=labels))
    else:
        pods = _pods_for(lab, target, namespace)
    core = CoreV1Api(lab.api_client)
    chunks = []
    for pod in pods:
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": _TIMEOUT}
        if tail is not None:
            kwargs["tail_lines"] = tail
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        try:
            response = core.read_namespaced_pod_log(pod, namespace, **kwargs)
        except Exception as exc:
            err = from_api_error(exc, action="read the logs of", kind="Pod", name=pod)
            if isinstance(err, NotFound) or err.__class__.__name__ == "InvalidObject":
                continue  # the Pod went away or has not started yet
            raise err from None
        # Raw bytes: the client would otherwise json-decode a log that happens to be one JSON line.
        # With _preload_content=False it returns urllib3's response, which its annotation (str) does not say.
        chunks.append(response.data.decode("utf-8", "replace"))  # type: ignore[attr-defined]
    return "".join(c if c.endswith("\n") or not c else c + "\n" for c in chunks)
