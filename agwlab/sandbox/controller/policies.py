"""AgentgatewayPolicy (frontend tracing) and AgentgatewayParameters (log format)."""

from __future__ import annotations

from typing import Any

from ..cluster import Cluster
from ..proxy.config import TracingConfig
from .backends import CONTROLLER
from .common import condition, write_status
from .prompt_guards import prompt_guard_errors

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


def _gateways_of(store: Any, kind: str, ns: str, name: str) -> tuple[bool, list[tuple[str, str]]]:
    """Whether a policy target exists, and the Gateways it leads to (v1.4.1's
    ``LookupGatewaysForPolicyTarget``): a Gateway itself, a route's parent Gateways, the parent
    Gateways of the routes sending traffic to a backend or Service."""
    def parents(route: dict[str, Any]) -> list[tuple[str, str]]:
        rns = route["metadata"]["namespace"]
        return [(ref.get("namespace", rns), ref.get("name", "")) for ref in (route.get("spec") or {}).get("parentRefs") or []
                if ref.get("group", GW_GROUP) == GW_GROUP and ref.get("kind", "Gateway") == "Gateway"
                and store.get(GW_GROUP, "gateways", ref.get("namespace", rns), ref.get("name", "")) is not None]

    if kind == "Gateway":
        exists = store.get(GW_GROUP, "gateways", ns, name) is not None
        return exists, [(ns, name)] if exists else []
    if kind == "HTTPRoute":
        route = store.get(GW_GROUP, "httproutes", ns, name)
        return route is not None, parents(route) if route else []
    group, plural = ("agentgateway.dev", "agentgatewaybackends") if kind == "AgentgatewayBackend" else ("", "services")
    if store.get(group, plural, ns, name) is None:
        return False, []
    found = []
    for route in store.list(GW_GROUP, "httproutes"):
        rns = route["metadata"]["namespace"]
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if (ref.get("kind", "Service") == kind and ref.get("name") == name
                        and ref.get("namespace", rns) == ns):
                    found += parents(route)
    return True, found


def _ancestor_key(ref: dict[str, Any]) -> str:
    """v1.4.1's sort key for ancestors (``reports.ParentString``)."""
    return (f"{ref.get('group', '')}/{ref.get('kind', '')}/{ref.get('name')}/{ref.get('sectionName', '')}/"
            f"{ref.get('port', 0)}.{ref.get('namespace', '')}")


def reconcile_policies(store: Any, cluster: Cluster) -> dict[str, TracingConfig]:
    """Tracing config per Gateway (``ns/name``) from policies targeting Gateways.

    Status as v1.4.1 writes it (``controller/pkg/agentgateway/plugins/traffic_plugin.go``): one
    ancestor per Gateway the targets lead to, Accepted ``Valid``/"Policy accepted" and Attached
    ``Attached``/"Attached to all targets"; targets that lead nowhere are reported together under a
    ``StatusSummary`` ancestor, Attached ``Pending`` with "Policy is not attached: ..." lines.
    """
    tracing: dict[str, TracingConfig] = {}
    for pol in store.list("agentgateway.dev", "agentgatewaypolicies"):
        meta, spec = pol["metadata"], pol.get("spec") or {}
        ns = meta["namespace"]
        gen = meta.get("generation", 1)
        old = {_ancestor_key(a.get("ancestorRef") or {}): a.get("conditions")
               for a in (pol.get("status") or {}).get("ancestors") or []}
        gateways: list[tuple[str, str]] = []
        errors: list[str] = []
        tr = (spec.get("frontend") or {}).get("tracing")
        for ref in spec.get("targetRefs") or []:
            kind, name = ref.get("kind", ""), ref.get("name", "")
            if kind not in ("Gateway", "HTTPRoute", "AgentgatewayBackend", "Service"):
                continue  # a kind v1.4.1 cannot target: no status at all
            exists, found = _gateways_of(store, kind, ns, name)
            if kind == "Gateway" and exists and tr is not None:
                tracing[f"{ns}/{name}"] = _tracing(cluster, ns, tr)
            if not exists:
                errors.append(f"Policy is not attached: {kind} {ns}/{name} not found")
            elif not found:
                errors.append(f"Policy is not attached: {kind} {ns}/{name} is not attached to any Gateway")
            gateways += [g for g in found if g not in gateways]
        ancestors: list[dict[str, Any]] = []
        partly = prompt_guard_errors(store, pol)   # PolicyConditionMap: translated, with errors
        for gns, gname in gateways:
            ref = {"group": GW_GROUP, "kind": "Gateway", "name": gname, "namespace": gns}
            oc = old.get(_ancestor_key(ref))
            ancestors.append({"ancestorRef": ref, "controllerName": CONTROLLER, "conditions": [
                condition(oc, "Accepted", True, "PartiallyValid", "\n".join(partly), generation=gen)] if partly else [
                condition(oc, "Accepted", True, "Valid", "Policy accepted", generation=gen),
                condition(oc, "Attached", True, "Attached", "Attached to all targets", generation=gen)]})
        if errors:
            ref = {"group": "agentgateway.dev", "name": "StatusSummary"}
            oc = old.get(_ancestor_key(ref))
            ancestors.append({"ancestorRef": ref, "controllerName": CONTROLLER, "conditions": [
                condition(oc, "Accepted", True, "Valid", "Policy accepted", generation=gen),
                condition(oc, "Attached", False, "Pending", "\n".join(errors), generation=gen)]})
        ancestors.sort(key=lambda a: _ancestor_key(a["ancestorRef"]))
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
