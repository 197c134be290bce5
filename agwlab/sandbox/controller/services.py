"""Services: endpoints (ready Pods behind each port) and LoadBalancer addresses."""

from __future__ import annotations

from typing import Any

from ..network import AddressBlock
from ..runtime import Endpoint
from .common import pod_ready, write_status
from .workloads import matching_pods

__all__ = ["reconcile_services"]



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
        backing = [p for p in matching_pods(pods, ns, selector) if pod_ready(p)] if selector else []
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
    return table


def lb_address(store: Any, namespace: str, name: str) -> str | None:
    svc = store.get("", "services", namespace, name)
    ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0].get("ip") if ingress else None
