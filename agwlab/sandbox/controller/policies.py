"""AgentgatewayPolicy (frontend tracing) and AgentgatewayParameters (log format)."""

from __future__ import annotations

from typing import Any

from ..cluster import Cluster
from ..proxy.config import TracingConfig
from .backends import CONTROLLER
from .common import condition, write_status

__all__ = ["reconcile_parameters", "reconcile_policies"]

GW_GROUP = "gateway.networking.k8s.io"


def _tracing(cluster: Cluster, ns: str, tr: dict[str, Any]) -> TracingConfig:
    protocol = tr.get("protocol", "GRPC")
    ref = tr.get("backendRef") or {}
    endpoint = None
    error = None
    if ref:
        host = ref.get("name", "")
        port = int(ref.get("port", 4317 if protocol == "GRPC" else 4318))
        eps = cluster.resolve(host, port, namespace=ref.get("namespace", ns))
        if eps:
            endpoint = f"http://{eps[0].ip}:{eps[0].port}"
        else:
            error = f"no healthy endpoints for {host}.{ref.get('namespace', ns)}:{port}"
    elif tr.get("url"):
        endpoint = tr["url"]
    return TracingConfig(
        endpoint=endpoint,
        protocol=protocol,
        path=tr.get("path", "/v1/traces"),
        random_sampling=None if tr.get("randomSampling") is None else str(tr["randomSampling"]),
        client_sampling=None if tr.get("clientSampling") is None else str(tr["clientSampling"]),
        resources=tuple((r["name"], r.get("expression", "")) for r in tr.get("resources") or []),
        attributes=tuple((a["name"], a.get("expression", "")) for a in ((tr.get("attributes") or {}).get("add") or [])),
        error=error,
    )


def reconcile_policies(store: Any, cluster: Cluster) -> dict[str, TracingConfig]:
    """Tracing config per Gateway (``ns/name``) from policies targeting Gateways."""
    tracing: dict[str, TracingConfig] = {}
    for pol in store.list("agentgateway.dev", "agentgatewaypolicies"):
        meta, spec = pol["metadata"], pol.get("spec") or {}
        ns = meta["namespace"]
        gen = meta.get("generation", 1)
        old = {(a.get("ancestorRef") or {}).get("name"): a for a in (pol.get("status") or {}).get("ancestors") or []}
        ancestors = []
        for ref in spec.get("targetRefs") or []:
            kind = ref.get("kind")
            name = ref.get("name")
            exists = False
            if kind == "Gateway":
                exists = store.get(GW_GROUP, "gateways", ns, name) is not None
            elif kind == "HTTPRoute":
                exists = store.get(GW_GROUP, "httproutes", ns, name) is not None
            elif kind == "AgentgatewayBackend":
                exists = store.get("agentgateway.dev", "agentgatewaybackends", ns, name) is not None
            oc = (old.get(name) or {}).get("conditions")
            tr = (spec.get("frontend") or {}).get("tracing")
            if kind == "Gateway" and exists and tr is not None:
                tracing[f"{ns}/{name}"] = _tracing(cluster, ns, tr)
            conds = [
                condition(oc, "Accepted", True, "Valid", "Policy accepted", generation=gen),
                condition(oc, "Attached", exists, "Attached" if exists else "Pending",
                          "Attached to all targets" if exists else f"{kind} {ns}/{name} not found", generation=gen),
            ]
            ancestors.append({
                "ancestorRef": {"group": ref.get("group", GW_GROUP), "kind": kind, "name": name, "namespace": ns},
                "controllerName": CONTROLLER,
                "conditions": conds,
            })
        write_status(store, pol, {"ancestors": ancestors})
    return tracing


def reconcile_parameters(store: Any) -> dict[str, str]:
    """Log format per Gateway from GatewayClass and Gateway ``parametersRef``s."""
    formats: dict[str, str] = {}
    classes = {gc["metadata"]["name"]: gc for gc in store.list(GW_GROUP, "gatewayclasses")}
    for gw in store.list(GW_GROUP, "gateways"):
        ns, name = gw["metadata"]["namespace"], gw["metadata"]["name"]
        fmt = "text"
        gc = classes.get((gw.get("spec") or {}).get("gatewayClassName", ""))
        refs = []
        if gc and (gc.get("spec") or {}).get("parametersRef"):
            r = gc["spec"]["parametersRef"]
            refs.append((r.get("namespace", ns), r))
        infra = ((gw.get("spec") or {}).get("infrastructure") or {}).get("parametersRef")
        if infra:
            refs.append((ns, infra))
        for pns, ref in refs:
            if ref.get("kind") != "AgentgatewayParameters":
                continue
            par = store.get("agentgateway.dev", "agentgatewayparameters", pns, ref.get("name", ""))
            value = (((par or {}).get("spec") or {}).get("logging") or {}).get("format")
            if value in ("json", "text"):
                fmt = value
        formats[f"{ns}/{name}"] = fmt
    return formats
