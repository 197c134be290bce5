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
import hashlib

from ..kinds import KindInfo

__all__ = ["apply_builtin_defaults", "default_pod_spec"]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _cluster_ip(namespace: str, name: str) -> str:
    h = _hash(f"{namespace}/{name}")
    # 10.96.0.0/12 minus .0 and the kubernetes Service's 10.96.0.1
    return f"10.{96 + (h >> 16) % 16}.{(h >> 8) % 256}.{2 + h % 253}"


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
