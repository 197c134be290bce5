"""Defaults the real API server fills in for built-in kinds.

Clients read these back (``kubectl get svc`` shows the ClusterIP, ``rollout status`` reads
the strategy, ``kubectl describe`` the probes), so the sandbox sets the same ones.

Example:
    >>> from agwlab.sandbox.kinds import by_kind
    >>> svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "d"},
    ...        "spec": {"ports": [{"port": 80}]}}
    >>> apply_builtin_defaults(svc, by_kind("v1", "Service"))
    >>> svc["spec"]["type"], svc["spec"]["ports"][0]
    ('ClusterIP', {'port': 80, 'protocol': 'TCP', 'targetPort': 80})
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from typing import Any

from ..kinds import KindInfo, by_resource
from ..schemas import kind_schema, schema_at

__all__ = ["apply_builtin_defaults", "default_pod_spec", "list_key_defaults"]

# Built-in list-map keys the server defaults (Service ports, container ports: both keyed
# by port and protocol). Custom kinds declare theirs with a schema ``default:``.
_BUILTIN_KEY_DEFAULTS = {"protocol": "TCP"}


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _cluster_ip(namespace: str, name: str) -> str:
    h = _hash(f"{namespace}/{name}")
    # 10.96.0.0/12 minus .0 and the kubernetes Service's 10.96.0.1
    return f"10.{96 + (h >> 16) % 16}.{(h >> 8) % 256}.{2 + h % 253}"


@functools.cache
def _key_defaults(group: str, plural: str, names: tuple[str, ...]) -> dict[str, Any]:
    node = schema_at(kind_schema(group, plural), names)
    if not node or node.get("type") != "array" or node.get("x-kubernetes-list-type") != "map":
        return {}
    props = (node.get("items") or {}).get("properties") or {}
    info = by_resource(group, plural)
    out: dict[str, Any] = {}
    for key in node.get("x-kubernetes-list-map-keys") or []:
        sub = props.get(key) or {}
        if "default" in sub:
            out[key] = sub["default"]
        elif info is not None and not info.custom and key in _BUILTIN_KEY_DEFAULTS:
            out[key] = _BUILTIN_KEY_DEFAULTS[key]
    return out


def list_key_defaults(group: str, plural: str) -> Callable[[tuple[str, ...]], dict[str, Any]]:
    """A ``names -> {key: default}`` function: the defaults of a kind's list-map keys.

    Example:
        >>> list_key_defaults("", "services")(("spec", "ports"))
        {'protocol': 'TCP'}
    """
    return lambda names: _key_defaults(group, plural, tuple(names))


def default_pod_spec(spec: dict) -> None:
    """Fill a Pod spec's defaults in place (also used for Deployment/ReplicaSet templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                p = c.get(probe)
                if isinstance(p, dict):
                    for k, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                                 ("failureThreshold", 3)):
                        p.setdefault(k, v)
                    if isinstance(p.get("httpGet"), dict):
                        p["httpGet"].setdefault("path", "/")
                        p["httpGet"].setdefault("scheme", "HTTP")


def apply_builtin_defaults(obj: dict, info: KindInfo | None) -> None:
    """Apply the built-in defaults for ``obj``'s kind in place (custom kinds: nothing)."""
    if info is None or info.custom:
        return
    meta = obj.setdefault("metadata", {})
    kind = info.kind
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        if meta.get("name"):
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            if spec.get("clusterIP") in (None, ""):
                spec["clusterIP"] = _cluster_ip(meta.get("namespace", ""), meta.get("name", ""))
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
            if spec["type"] in ("NodePort", "LoadBalancer"):
                port.setdefault("nodePort", 30000 + _hash(f"{meta.get('namespace')}/{meta.get('name')}/{i}")
                                % 2768)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}))
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj["status"].setdefault("qosClass", "BestEffort")
    elif kind in ("Deployment", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        if kind == "Deployment":
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        template = spec.get("template")
        if isinstance(template, dict):
            default_pod_spec(template.setdefault("spec", {}))
    elif kind == "Event":
        obj.setdefault("type", "Normal")
        obj.setdefault("count", 1)
