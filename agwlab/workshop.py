"""Running a workshop: attendees on one cluster, each in their own namespace, and their progress.

The instructor runs these against their own context (a real cluster, or the sandbox):

* :func:`create` gives each attendee namespace ``agwlab-<name>``, a ServiceAccount with a
  token, RBAC limited to what the lab needs (everything in their namespace, where their own
  trace collector runs too; where the cluster's Prometheus runs, reading it through the API
  server's service proxy; nothing cluster-wide but GatewayClasses and CRDs), and a kubeconfig
  whose context namespace is theirs, so the lab lays itself out there. With ``api_key`` the
  Anthropic key is placed as their Secret and they get no access to Secrets: they use the
  key without holding it or reading it back.
* :func:`progress` reads the check results the lab records in each attendee's namespace
  (ConfigMap ``agwlab-progress``, written by :mod:`agwlab.progress` as checks run).
* :func:`reset` deletes an attendee's lab objects (and optionally re-applies the stages up
  to one), :func:`delete` removes attendees entirely.

Nothing here touches objects it did not create: attendees are found by the label
``agwlab/attendee``.

Example:
    >>> from agwlab import connect, workshop
    >>> lab = connect()                                       # the instructor's context
    >>> [a.kubeconfig for a in workshop.create(lab, ["alice", "bob"])]  # doctest: +SKIP
    [PosixPath('/home/me/.agwlab/workshop/alice.kubeconfig'), ...]
    >>> workshop.progress_table(lab)                          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import kube
from .errors import LabError
from .names import LAB_LABEL, Names
from .progress import PROGRESS_CONFIGMAP, read_progress
from .secrets import PLACED_KEY
from .wait import attempt

if TYPE_CHECKING:
    import pandas as pd

    from .lab import Lab

__all__ = [
    "ATTENDEE_LABEL",
    "NAMESPACE_PREFIX",
    "SERVICE_ACCOUNT",
    "Attendee",
    "attendee_rules",
    "attendees",
    "create",
    "delete",
    "kubeconfig",
    "namespace_for",
    "progress",
    "progress_table",
    "reset",
]

NAMESPACE_PREFIX = "agwlab-"
ATTENDEE_LABEL = "agwlab/attendee"
SERVICE_ACCOUNT = "attendee"
TOKEN_SECRET = "attendee-token"
_ROLE = "agwlab-attendee"
_PROMETHEUS_ROLE = "agwlab-attendee-prometheus"
_RBAC = "rbac.authorization.k8s.io"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ALL = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_READ = ["get", "list", "watch"]


@dataclass(frozen=True)
class Attendee:
    """One attendee: their name, namespace and (once written) kubeconfig file."""

    name: str
    namespace: str
    kubeconfig: Path | None = None


def namespace_for(name: str) -> str:
    """The namespace of attendee ``name``.

    Example:
        >>> namespace_for("alice")
        'agwlab-alice'

    Raises:
        LabError: the name cannot make a namespace name.
    """
    ns = NAMESPACE_PREFIX + name
    if not _NAME.match(name) or len(ns) > 63:
        raise LabError(f"attendee name {name!r} cannot be used: use lower-case letters, digits and '-' "
                       f"(at most {63 - len(NAMESPACE_PREFIX)} characters), e.g. alice or team-1")
    return ns


def attendee_rules(*, secrets: bool) -> list[dict[str, Any]]:
    """The Role rules an attendee gets in their own namespace: what the lab's notebooks use.

    Args:
        secrets: whether they may manage Secrets (not when the instructor placed the key).
    """
    core = ["configmaps", "services", "pods", "pods/log", "pods/portforward", "services/proxy"]
    if secrets:
        core.append("secrets")
    return [
        {"apiGroups": [""], "resources": core, "verbs": _ALL},
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": _READ},
        {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": _ALL},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways", "httproutes"], "verbs": _ALL},
        {"apiGroups": ["agentgateway.dev"],
         "resources": ["agentgatewaybackends", "agentgatewaypolicies", "agentgatewayparameters"], "verbs": _ALL},
    ]


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {ATTENDEE_LABEL: labels.pop("attendee", "")} | labels}
    if not meta["labels"][ATTENDEE_LABEL]:
        del meta["labels"][ATTENDEE_LABEL]
    if namespace:
        meta["namespace"] = namespace
    return meta


def _shared_objects() -> list[dict[str, Any]]:
    """What all attendees share: read access cluster-wide to GatewayClasses and CRDs. Nothing in
    a shared collector's namespace: its log carries everyone's spans, so each attendee's lab
    runs a collector of its own in their namespace."""
    return [
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(_ROLE),
         "rules": [{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses"], "verbs": _READ},
                   {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                    "verbs": ["get"]}]},
    ]


def _attendee_objects(name: str, names: Names, *, secrets: bool) -> list[dict[str, Any]]:
    ns = namespace_for(name)
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]

    def binding(kind: str, role_kind: str, namespace: str | None, binding_name: str) -> dict[str, Any]:
        return {"apiVersion": f"{_RBAC}/v1", "kind": kind, "metadata": _meta(binding_name, namespace, attendee=name),
                "roleRef": {"apiGroup": _RBAC, "kind": role_kind, "name": _ROLE}, "subjects": subject}

    namespace: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, attendee=name)}
    if not secrets:  # the key is placed: say which Secret, so the lab leaves it alone and says why
        namespace["metadata"]["annotations"] = {PLACED_KEY: names.secret}
    return [
        namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(SERVICE_ACCOUNT, ns, attendee=name)},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {**_meta(TOKEN_SECRET, ns, attendee=name),
                      "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT}}},
        {"apiVersion": f"{_RBAC}/v1", "kind": "Role", "metadata": _meta(_ROLE, ns, attendee=name),
         "rules": [*attendee_rules(secrets=secrets),
                   # their own Namespace object (a RoleBinding in it covers it, as in Kubernetes)
                   {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]}]},
        binding("RoleBinding", "Role", ns, _ROLE),
        binding("ClusterRoleBinding", "ClusterRole", None, f"{_ROLE}-{name}"),
    ]


def _prometheus_namespace(lab: Lab) -> str | None:
    """The namespace of the cluster's Prometheus Service, if the instructor's context finds one."""
    from .locate import find_prometheus

    try:
        found = find_prometheus(lab)
    except LabError:
        return None
    return found[1].split("/", 1)[0] if found else None


def _prometheus_role(namespace: str) -> dict[str, Any]:
    """Reading Prometheus through the API server: its Service, and GET through the service proxy
    (PromQL queries; Prometheus is shared, so an attendee filters by their own Gateway)."""
    return {"apiVersion": f"{_RBAC}/v1", "kind": "Role", "metadata": _meta(_PROMETHEUS_ROLE, namespace),
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": _READ},
                      {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}]}


def _binding_to(name: str, role: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": f"{_RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(f"{role}-{name}", namespace,
                                                                                  attendee=name),
            "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace_for(name)}]}


def _home() -> Path:
    return Path(os.environ.get("AGWLAB_HOME") or Path.home() / ".agwlab").expanduser()


def _out_dir(out_dir: Path | None) -> Path:
    path = Path(out_dir) if out_dir else _home() / "workshop"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def create(lab: Lab, names: Sequence[str], *, api_key: str | None = None, out_dir: Path | None = None,
           timeout: float = 30) -> list[Attendee]:
    """Create attendees (idempotent: running it again changes nothing and rewrites the kubeconfigs).

    Args:
        lab: the instructor's connection (:func:`agwlab.connect`).
        names: attendee names (``alice`` gets namespace ``agwlab-alice``).
        api_key: place this Anthropic key as each attendee's Secret (``lab.names.secret``); the
            attendees then get no access to Secrets at all.
        out_dir: where kubeconfigs go (default ``$AGWLAB_HOME/workshop``).
        timeout: seconds to wait for each token.

    Raises:
        LabError: a bad name, or a token that never came (on a real cluster: is the token
            controller running?).
    """
    if not names:
        raise LabError("name at least one attendee (e.g. alice bob), or use --count N")
    for name in names:
        namespace_for(name)
    if len(set(names)) != len(names):
        raise LabError("each attendee name must be different")
    kube.apply(lab, _shared_objects(), quiet=True)
    prometheus = _prometheus_namespace(lab)
    if prometheus:
        kube.apply(lab, _prometheus_role(prometheus), quiet=True)
    out = []
    for name in names:
        mine = Names.for_namespace(namespace_for(name))
        kube.apply(lab, _attendee_objects(name, mine, secrets=api_key is None), quiet=True)
        if prometheus:
            kube.apply(lab, _binding_to(name, _PROMETHEUS_ROLE, prometheus), quiet=True)
        if api_key is not None:
            from .manifests import anthropic_secret

            secret = anthropic_secret(api_key, mine)
            secret.obj["metadata"].setdefault("labels", {})[ATTENDEE_LABEL] = name
            kube.apply(lab, secret, quiet=True)
        out.append(Attendee(name, namespace_for(name), kubeconfig(lab, name, out_dir=out_dir, timeout=timeout)))
    return out


def _token(lab: Lab, name: str, timeout: float) -> str:
    def look() -> tuple[bool, str]:
        secret = kube.get(lab, "Secret", TOKEN_SECRET, namespace_for(name), missing_ok=True)
        if secret is None:
            raise LabError(f"there is no attendee {name!r}: create it first (python -m agwlab workshop create "
                           f"{name})")
        token = (secret.get("data") or {}).get("token") or ""
        return bool(token), token

    done, token = attempt(look, timeout=timeout, interval=0.2)
    if not done:
        raise LabError(f"the token of attendee {name!r} did not appear within {timeout:.0f}s: Kubernetes fills "
                       f"Secret {TOKEN_SECRET} in {namespace_for(name)}; check the controller manager is running")
    return base64.b64decode(token).decode()


def kubeconfig(lab: Lab, name: str, *, out_dir: Path | None = None, timeout: float = 30) -> Path:
    """Write attendee ``name``'s kubeconfig (their token, their namespace) and return its path.

    The cluster's address and CA come from the instructor's connection.
    """
    token = _token(lab, name, timeout)
    conf = lab.api_client.configuration
    cluster: dict[str, Any] = {"server": str(conf.host)}
    if conf.ssl_ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(Path(conf.ssl_ca_cert).read_bytes()).decode()
    elif not conf.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    context = f"agwlab-{name}"
    config = {"apiVersion": "v1", "kind": "Config", "current-context": context,
              "clusters": [{"name": "agwlab-workshop", "cluster": cluster}],
              "users": [{"name": context, "user": {"token": token}}],
              "contexts": [{"name": context, "context": {"cluster": "agwlab-workshop", "user": context,
                                                         "namespace": namespace_for(name)}}],
              "preferences": {}}
    path = _out_dir(out_dir) / f"{name}.kubeconfig"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
    return path


def attendees(lab: Lab) -> list[str]:
    """The attendees on the cluster (namespaces labelled ``agwlab/attendee``), sorted."""
    found = kube.list_objects(lab, "Namespace", labels=ATTENDEE_LABEL)
    return sorted((ns["metadata"].get("labels") or {})[ATTENDEE_LABEL] for ns in found)


def progress(lab: Lab, names: Iterable[str] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{attendee: {"<stage> <step>": {"ok": bool, "what": str, "at": str}}}`` from what their checks recorded."""
    return {name: read_progress(lab, namespace_for(name)) for name in (names or attendees(lab))}


def progress_table(lab: Lab, names: Iterable[str] | None = None) -> pd.DataFrame:
    """Attendee x step: ✅ passed, ❌ failed (last result), blank not reached; steps in notebook order."""
    import pandas as pd

    data = progress(lab, names)
    steps = sorted({s for rows in data.values() for s in rows}, key=_step_order)
    table = pd.DataFrame(
        [[("✅" if rows[s]["ok"] else "❌") if s in rows else "" for s in steps] for rows in data.values()],
        index=list(data), columns=steps)
    table.index.name = "attendee"
    return table


def _step_order(step: str) -> tuple[str, int, str]:
    stage, _, number = step.partition(" ")
    m = re.match(r"(\d+)(.*)", number)
    return (stage, int(m.group(1)) if m else 0, m.group(2) if m else number)


def reset(lab: Lab, name: str, *, to: str | None = None, timeout: float = 60) -> list[str]:
    """Bring attendee ``name`` back to the start (or to the end of stage ``to``), touching no one else.

    Deletes the lab's objects in their namespace (those labelled as the lab's), forgets
    their progress, and with ``to`` (``llm``, ``tracing`` or ``mcp``) applies the stages up
    to and including it, as the notebooks' catch-up does. A key Secret the instructor placed
    is kept.

    Returns:
        One line per object saying what happened.
    """
    from . import stages

    if to is not None and to not in stages.STAGES:
        raise LabError(f"unknown stage {to!r}: use one of {', '.join(stages.STAGES)}")
    ns = namespace_for(name)
    if kube.get(lab, "Namespace", ns, missing_ok=True) is None:
        raise LabError(f"there is no attendee {name!r} (no namespace {ns})")
    theirs = _attendee_lab(lab, name)
    done = []
    for kind, obj_name, obj_ns in reversed(stages.lab_objects(theirs.names)):
        if obj_ns != ns:
            continue  # not in their namespace: not theirs
        obj = kube.get(theirs, kind, obj_name, obj_ns, missing_ok=True)
        if obj is None:
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(ATTENDEE_LABEL) == name or not all(labels.get(k) == v for k, v in LAB_LABEL.items()):
            continue  # placed by the instructor, or not the lab's
        kube.delete(theirs, kind, obj_name, obj_ns, quiet=True)
        done.append(f"{kind.lower()}/{obj_name}: deleted")
    kube.wait_for(theirs, "Deployment", theirs.names.gateway, ns, condition="deleted", timeout=timeout, quiet=True)
    kube.delete(lab, "ConfigMap", PROGRESS_CONFIGMAP, ns, quiet=True)
    if to is not None:
        order = stages.STAGES[: stages.STAGES.index(to) + 1]
        stages.prepare(theirs, *order, timeout=timeout)
        done.append(f"stages {', '.join(order)}: applied")
    return done


def _attendee_lab(lab: Lab, name: str) -> Lab:
    """The instructor's connection, with the attendee's names."""
    from dataclasses import replace

    return replace(lab, names=Names.for_namespace(namespace_for(name)))


def delete(lab: Lab, names: Sequence[str] | None = None, *, timeout: float = 60) -> list[str]:
    """Delete attendees (all of them when ``names`` is empty): their namespace, bindings and kubeconfig.

    Returns:
        The attendees deleted.
    """
    chosen = list(names) if names else attendees(lab)
    telemetry = lab.names.telemetry_namespace
    prometheus = _prometheus_namespace(lab)
    for name in chosen:
        ns = namespace_for(name)
        kube.delete(lab, "ClusterRoleBinding", f"{_ROLE}-{name}", api_version=f"{_RBAC}/v1", quiet=True)
        # reading the shared collector, which earlier versions granted
        kube.delete(lab, "RoleBinding", f"{_ROLE}-{name}", telemetry, api_version=f"{_RBAC}/v1", quiet=True)
        if prometheus:
            kube.delete(lab, "RoleBinding", f"{_PROMETHEUS_ROLE}-{name}", prometheus, api_version=f"{_RBAC}/v1",
                        quiet=True)
        kube.delete(lab, "Namespace", ns, quiet=True)
        path = _home() / "workshop" / f"{name}.kubeconfig"
        path.unlink(missing_ok=True)
    for name in chosen:
        kube.wait_for(lab, "Namespace", namespace_for(name), None, condition="deleted", timeout=timeout, quiet=True)
    if not attendees(lab):
        kube.delete(lab, "ClusterRole", _ROLE, api_version=f"{_RBAC}/v1", quiet=True)
        kube.delete(lab, "Role", _ROLE, telemetry, api_version=f"{_RBAC}/v1", quiet=True)
        if prometheus:
            kube.delete(lab, "Role", _PROMETHEUS_ROLE, prometheus, api_version=f"{_RBAC}/v1", quiet=True)
    return chosen
