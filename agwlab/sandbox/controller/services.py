"""Services: endpoints (ready Pods behind each port) and LoadBalancer addresses.

Each Service with a selector also gets its ``Endpoints`` object, as the endpoints controller
writes it: ready Pods under ``addresses``, Pods that run but are not ready under
``notReadyAddresses`` (``kubectl get endpoints`` and ``kubectl describe svc`` show them).
"""

from __future__ import annotations

import logging
from typing import Any

from ..network import AddressBlock
from ..runtime import Endpoint
from ..store import now_rfc3339
from .common import pod_ready, write_status
from .workloads import matching_pods

__all__ = ["reconcile_services"]

log = logging.getLogger(__name__)
_MANAGED = "endpoints.kubernetes.io/last-change-trigger-time"


def _target_port(port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cp in container.get("ports") or []:
            if cp.get("name") == target:
                return int(cp["containerPort"])
    return None


def reconcile_services(
    store: Any, pods: list[dict[str, Any]], block: AddressBlock, *, load_balancer: bool = True
) -> dict[tuple[str, str], dict[int, list[Endpoint]]]:
    """Compute every Service's endpoints; give LoadBalancer Services an ingress address
    (unless ``load_balancer`` is False: then they stay pending, as on kind).

    Returns the table the cluster DNS serves: ``(svc, ns) -> {port: [Endpoint]}``.
    """
    table: dict[tuple[str, str], dict[int, list[Endpoint]]] = {}
    services = store.list("", "services")
    used_lb = {
        ing.get("ip")
        for s in services
        for ing in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    }
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        selector = spec.get("selector")
        selected = matching_pods(pods, ns, selector) if selector else []
        backing = [p for p in selected if pod_ready(p)]
        if selector:
            _write_endpoints(store, svc, selected)
        ports: dict[int, list[Endpoint]] = {}
        for port in spec.get("ports") or []:
            eps = []
            for pod in backing:
                ip = (pod.get("status") or {}).get("podIP")
                target = _target_port(port, pod)
                if ip and target:
                    eps.append(Endpoint(ip, target))
            ports[int(port["port"])] = eps
        table[(name, ns)] = ports
        if spec.get("type") == "LoadBalancer" and load_balancer:
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if not ingress or not block.contains(ingress[0].get("ip", "")):
                ip = next(i for i in block.lb_ips() if i not in used_lb)
                used_lb.add(ip)
                ports_status = [{"port": p["port"], "protocol": p.get("protocol", "TCP")}
                                for p in spec.get("ports") or []]
                write_status(store, svc, {"loadBalancer": {"ingress": [
                    {"ip": ip, "ipMode": "VIP", "ports": ports_status}]}})
    with_selector = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services
                     if (s.get("spec") or {}).get("selector")}
    for ep in store.list("", "endpoints"):
        key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
        if key not in with_selector and _MANAGED in (ep["metadata"].get("annotations") or {}):
            try:  # the Service went (or lost its selector): its Endpoints go too
                store.delete("", "endpoints", *key)
            except Exception as e:
                log.debug("endpoints %s/%s not deleted: %s", *key, e)
    return table


def lb_address(store: Any, namespace: str, name: str) -> str | None:
    svc = store.get("", "services", namespace, name)
    ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0].get("ip") if ingress else None


def _address(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    return {"ip": pod["status"]["podIP"], "nodeName": (pod.get("spec") or {}).get("nodeName", "agwlab-sandbox"),
            "targetRef": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]}}


def _write_endpoints(store: Any, svc: dict[str, Any], pods: list[dict[str, Any]]) -> None:
    """Write ``svc``'s Endpoints when what they list changed (Pods without an IP are left out)."""
    meta = svc["metadata"]
    running = sorted((p for p in pods if (p.get("status") or {}).get("podIP")
                      and not p["metadata"].get("deletionTimestamp")),
                     key=lambda p: p["status"]["podIP"])
    ports = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = next((t for t in (_target_port(port, p) for p in running) if t), None)
        if target:
            ports.append({**({"name": port["name"]} if port.get("name") else {}), "port": target,
                          "protocol": port.get("protocol", "TCP")})
    subset: dict[str, Any] = {}
    ready = [_address(p) for p in running if pod_ready(p)]
    unready = [_address(p) for p in running if not pod_ready(p)]
    if ready:
        subset["addresses"] = ready
    if unready:
        subset["notReadyAddresses"] = unready
    subsets = [{**subset, "ports": ports}] if subset and ports else []
    current = store.get("", "endpoints", meta["namespace"], meta["name"])
    if current is not None and (current.get("subsets") or []) == subsets:
        return
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                     "labels": dict(meta.get("labels") or {}), "annotations": {_MANAGED: now_rfc3339()}},
        **({"subsets": subsets} if subsets else {}),
    }
    try:
        if current is None:
            store.create(body, field_manager="endpoint-controller")
        else:
            store.update(body, field_manager="endpoint-controller")
    except Exception as e:  # the Service or its namespace may be going away meanwhile
        log.debug("endpoints of %s/%s not written: %s", meta["namespace"], meta["name"], e)
