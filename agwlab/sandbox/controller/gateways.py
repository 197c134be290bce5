"""GatewayClass, Gateway and HTTPRoute: the proxy's objects, their status, and the
``GatewayConfig`` each proxy serves (agentgateway's controller, in miniature)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ...names import PROXY_IMAGE, TESTED_VERSION
from ..cluster import Cluster
from ..proxy import config as pc
from .backends import CONTROLLER, TranslationError
from .common import condition, ensure_object, labels_match, owner_ref, write_status
from .services import lb_address
from .traffic import TrafficTargets, for_rule

__all__ = ["ENTERPRISE_CONTROLLER", "MANAGED_CLASSES", "PROXY_IMAGE", "reconcile_gateways"]

RESERVED_PORTS = {15000, 15020, 15021}
ENTERPRISE_CONTROLLER = "solo.io/enterprise-agentgateway"
# GatewayClass name -> controllerName the sandbox's controller answers for. The enterprise
# class is only managed when the sandbox runs as the enterprise edition (setting ``edition``).
MANAGED_CLASSES = {
    "agentgateway": CONTROLLER,
    "enterprise-agentgateway": ENTERPRISE_CONTROLLER,
}
GW_GROUP = "gateway.networking.k8s.io"
NO_ERRORS = "No errors found"


@dataclass
class _GatewayView:
    obj: dict[str, Any]
    class_name: str
    attached: dict[str, list[tuple[dict[str, Any], str]]] = field(default_factory=dict)  # listener -> routes

    @property
    def key(self) -> str:
        return f"{self.obj['metadata']['namespace']}/{self.obj['metadata']['name']}"


def _controllers(cluster: Cluster) -> set[str]:
    """The controllerNames this sandbox answers for: agentgateway's, plus Solo's enterprise
    one only when the sandbox runs as the enterprise edition."""
    if cluster.setting("edition", "oss") == "enterprise":
        return {CONTROLLER, ENTERPRISE_CONTROLLER}
    return {CONTROLLER}


def _managed_classes(store: Any, cluster: Cluster) -> dict[str, str]:
    out = {}
    controllers = _controllers(cluster)
    for gc in store.list(GW_GROUP, "gatewayclasses"):
        name = gc["metadata"]["name"]
        ctrl = (gc.get("spec") or {}).get("controllerName", "")
        if ctrl in controllers:
            out[name] = ctrl
            gen = gc["metadata"].get("generation", 1)
            old = (gc.get("status") or {}).get("conditions")
            # v1.4.1 sets Accepted only (controller/pkg/controller/gatewayclass.go), with
            # reports.GatewayClassAcceptedMessage
            write_status(store, gc, {"conditions": [
                condition(old, "Accepted", True, "Accepted", "GatewayClass accepted by agentgateway controller",
                          generation=gen),
            ]})
    return out


def _proxy_objects(gw: dict[str, Any], class_name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The Deployment, Service, ConfigMap and ServiceAccount v1.4.1's chart makes for a Gateway."""
    meta = gw["metadata"]
    ns, name = meta["namespace"], meta["name"]
    selector = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "gateway.networking.k8s.io/gateway-name": name,
    }
    labels = {
        "app.kubernetes.io/managed-by": "agentgateway",
        "gateway.networking.k8s.io/gateway-class-name": class_name,
        **selector,
        "app.kubernetes.io/version": TESTED_VERSION,
    }
    pod_labels = {"gateway.networking.k8s.io/gateway-class-name": class_name, **selector}
    ports = sorted({int(lst["port"]) for lst in (gw.get("spec") or {}).get("listeners") or []
                    if int(lst["port"]) not in RESERVED_PORTS})
    owner = [owner_ref(gw)]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
        "data": {"config.yaml": (
            "config:\n"
            "  xds:\n"
            "    address: agentgateway.agentgateway-system.svc:9978\n"
            f"    gateway: {ns}/{name}\n"
            "  adminAddr: localhost:15000\n"
            "  statsAddr: 0.0.0.0:15020\n"
            "  readinessAddr: 0.0.0.0:15021\n"
        )},
    }
    checksum = hashlib.sha256(configmap["data"]["config.yaml"].encode()).hexdigest()  # type: ignore[index]
    probe = {"httpGet": {"path": "/healthz/ready", "port": 15021}}
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {"checksum/config": checksum, "prometheus.io/path": "/metrics",
                                    "prometheus.io/port": "15020", "prometheus.io/scrape": "true"},
                },
                "spec": {
                    "serviceAccountName": name,
                    "containers": [{
                        "name": "agentgateway",
                        "image": PROXY_IMAGE,
                        "args": ["-f", "/config/config.yaml"],
                        # the chart lists only the static metrics port; listener ports are dynamic
                        "ports": [{"containerPort": 15020, "name": "metrics", "protocol": "TCP"}],
                        "env": [{"name": "GATEWAY", "value": name},
                                {"name": "XDS_ADDRESS", "value": "http://agentgateway.agentgateway-system.svc:9978"}],
                        "readinessProbe": {**probe, "periodSeconds": 10},
                        "startupProbe": {"failureThreshold": 60, **probe, "periodSeconds": 1,
                                         "successThreshold": 1, "timeoutSeconds": 2},
                    }],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
        "spec": {
            "type": "LoadBalancer",
            "selector": selector,
            "ports": [{"name": f"listener-{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in ports]
            or [{"name": "placeholder", "port": 65535, "targetPort": 65535, "protocol": "TCP"}],
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
        "automountServiceAccountToken": False,
    }
    return [("apps", "deployments", deploy), ("", "services", service), ("", "configmaps", configmap),
            ("", "serviceaccounts", account)]


def _allowed_namespaces(gw: dict[str, Any], listener: dict[str, Any], store: Any) -> list[str]:
    """The namespaces a listener takes routes from (``*`` for all), as v1.4.1's
    ``namespacesFromSelector`` (``translator/conversion.go``) lists them."""
    spec = ((listener.get("allowedRoutes") or {}).get("namespaces")) or {}
    frm = spec.get("from") or "Same"
    if frm == "Same":
        return [gw["metadata"]["namespace"]]
    if frm == "All" or spec.get("selector") is None:
        return ["*"]
    out = []
    for ns in store.list("", "namespaces"):
        name = ns["metadata"]["name"]
        labels = {**(ns["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}
        if labels_match(spec["selector"], labels):
            out.append(name)
    return sorted(out)


def _host_matches(a: str, b: str) -> bool:
    """Two hostnames overlap, either may be a wildcard (Istio's ``host.Name.Matches``)."""
    if a.startswith("*") and b.startswith("*"):
        return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def _reference_denied(gw: dict[str, Any], listener: dict[str, Any], ref: dict[str, Any], route_ns: str,
                      route_hosts: list[str], store: Any) -> tuple[str, str] | None:
    """Why a route's parentRef cannot use one listener, as (reason, message), or None when it can.

    v1.4.1's ``ReferenceAllowed`` (``controller/pkg/agentgateway/translator/conversion.go``): port,
    then sectionName, then hostnames paired with the namespaces the listener allows
    (``buildHostnameMatch``), then the route kind.
    """
    if "port" in ref and int(ref["port"]) != int(listener["port"]):
        return "NoMatchingParent", f"port {ref['port']} not found"
    if ref.get("sectionName") and ref["sectionName"] != listener["name"]:
        return "NoMatchingParent", f"sectionName {json.dumps(ref['sectionName'])} not found"
    listener_host = listener.get("hostname") or "*"
    parents = [f"{ns}/{listener_host}" for ns in _allowed_namespaces(gw, listener, store) if ns]
    matched = host_matched = False
    for route_host in route_hosts or ["*"]:
        for parent in parents or [f"~/{listener_host}"]:
            parent_ns, parent_host = parent.split("/", 1)
            hit = _host_matches(parent_host, route_host)
            host_matched = host_matched or hit
            if hit and parent_ns in ("*", route_ns):
                matched = True
                break
        if matched:
            break
    original = json.dumps(listener.get("hostname") or "")
    if not matched and host_matched:
        return ("NotAllowedByListeners", f"hostnames matched parent hostname {original}, but namespace "
                                         f"{json.dumps(route_ns)} is not allowed by the parent")
    if not matched:
        return "NoMatchingListenerHostname", f"no hostnames matched parent hostname {original}"
    if not any(k["kind"] == "HTTPRoute" for k in _supported_kinds(listener)[0]):
        return "NotAllowedByListeners", f"kind {GW_GROUP}/v1, Kind=HTTPRoute is not allowed"
    return None


def _supported_kinds(listener: dict[str, Any]) -> tuple[list[dict[str, str]], bool]:
    """The route kinds a listener takes, and whether every kind it lists is one of them
    (v1.4.1's ``GenerateSupportedKinds``, ``translator/conditions.go``)."""
    protocol = listener.get("protocol", "HTTP")
    supported = ([{"group": GW_GROUP, "kind": "HTTPRoute"}, {"group": GW_GROUP, "kind": "GRPCRoute"}]
                 if protocol in ("HTTP", "HTTPS") else
                 [{"group": GW_GROUP, "kind": "TCPRoute"}] if protocol == "TCP" else
                 [{"group": GW_GROUP, "kind": "TLSRoute"}] if protocol == "TLS" else [])
    kinds = (listener.get("allowedRoutes") or {}).get("kinds") or []
    if not kinds:
        return supported, True
    wanted = {(k.get("group", GW_GROUP), k.get("kind")) for k in kinds}
    both = [k for k in supported if (k["group"], k["kind"]) in wanted]
    return both, len(both) == len(kinds)


def _resolve_refs(route: dict[str, Any], backends: dict[str, Any], store: Any) -> tuple[bool, str, str]:
    """ResolvedRefs for a route: (ok, reason, message).

    As v1.4.1 (``translator/conversion.go`` ``buildAgwHTTPDestination``, ``plugins/reference_indexes.go``
    ``DefaultRouteBackend``): invalid backends are dropped and the route keeps going, so the last
    invalid one is the one reported.
    """
    rns = route["metadata"]["namespace"]
    last: tuple[bool, str, str] = (True, "ResolvedRefs", "")
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            group, kind = ref.get("group", ""), ref.get("kind", "Service")
            ns = ref.get("namespace", rns)
            if ns != rns:
                last = (False, "RefNotPermitted", f"backendRef {ns}/{ref.get('name')} not accessible to a HTTPRoute "
                                                  f'in namespace "{rns}" (missing a ReferenceGrant?)')
            elif (group, kind) == ("agentgateway.dev", "AgentgatewayBackend"):
                if f"{ns}/{ref.get('name')}" not in backends:
                    last = (False, "BackendNotFound", f"Backend not found: {ns}/{ref.get('name')}")
            elif (group, kind) == ("", "Service"):
                if store.get("", "services", ns, ref.get("name", "")) is None:
                    last = (False, "BackendNotFound", f"backend({ref.get('name')}.{ns}.svc.cluster.local) not found")
            else:
                last = (False, "InvalidKind", f'referencing unsupported backendRef: group "{group}" kind "{kind}"')
    return last


def _gateway_accepted(old: list[dict[str, Any]] | None, listeners: list[dict[str, Any]], gen: int) -> dict[str, Any]:
    """The Gateway's Accepted condition from its listeners' (v1.4.1 ``reports.BuildGWStatus``,
    ``controller/pkg/reports/status.go``): any listener not Accepted or not Programmed makes it
    ``ListenersNotValid``, still True while another listener is accepted."""
    invalid: list[str] = []
    messages: list[str] = []
    accepted = 0
    for lst in listeners:
        for c in lst["conditions"]:
            if c["type"] == "Accepted" and c["status"] == "True":
                accepted += 1
            elif c["type"] in ("Accepted", "Programmed") and c["status"] == "False":
                if lst["name"] not in invalid:
                    invalid.append(lst["name"])
                if c["message"]:
                    messages.append(f"{lst['name']}: {c['message']}")
    if not invalid:
        return condition(old, "Accepted", True, "Accepted", "", generation=gen)
    why = "; ".join(messages) if messages else ", ".join(invalid)
    return condition(old, "Accepted", accepted > 0, "ListenersNotValid", f"Some listeners are not accepted: {why}",
                     generation=gen)


def _parent_string(ref: dict[str, Any], route_ns: str) -> str:
    """v1.4.1's sort key for parentRefs and parent statuses (``reports.ParentString``)."""
    return (f"{ref.get('group', GW_GROUP)}/{ref.get('kind', 'Gateway')}/{ref.get('name')}/"
            f"{ref.get('sectionName', '')}/{ref.get('port', 0)}.{ref.get('namespace', route_ns)}")


def _parent_key(ref: dict[str, Any]) -> tuple[Any, ...]:
    return (ref.get("group", GW_GROUP), ref.get("kind", "Gateway"), ref.get("namespace"), ref.get("name"),
            ref.get("sectionName"), ref.get("port"))


def reconcile_gateways(
    store: Any, cluster: Cluster, backends: dict[str, Any], tracing: dict[str, pc.TracingConfig],
    log_formats: dict[str, str], ready_gateways: set[str], *, load_balancer: bool = True,
    traffic: TrafficTargets | None = None,
) -> dict[str, pc.GatewayConfig]:
    """Reconcile every Gateway and HTTPRoute; return the config for each managed Gateway.

    Without a LoadBalancer implementation (``load_balancer=False``, a kind cluster) a Gateway
    publishes no address, as agentgateway does while its Service's ingress is pending, and is
    Programmed once its proxy is ready; the proxy then serves on its Pod IP only.
    """
    classes = _managed_classes(store, cluster)
    controllers = _controllers(cluster)
    views: dict[str, _GatewayView] = {}
    for gw in store.list(GW_GROUP, "gateways"):
        cls = (gw.get("spec") or {}).get("gatewayClassName", "")
        if cls not in classes:
            continue
        for group, plural, obj in _proxy_objects(gw, cls):
            ensure_object(store, obj, group=group, plural=plural)
        v = _GatewayView(gw, cls)
        for lst in (gw.get("spec") or {}).get("listeners") or []:
            v.attached[lst["name"]] = []
        views[v.key] = v

    # routes: attach and write parent status
    for route in store.list(GW_GROUP, "httproutes"):
        rmeta = route["metadata"]
        rns = rmeta["namespace"]
        spec = route.get("spec") or {}
        old_parents = (route.get("status") or {}).get("parents") or []
        resolved = _resolve_refs(route, backends, store)
        parents = [p for p in old_parents if p.get("controllerName") not in controllers]
        gen = rmeta.get("generation", 1)
        # v1.4.1 (translator/route_collections.go, ProcessParentReferences): every listener of each
        # parent Gateway is tried; the route is Accepted by a Gateway when any listener takes it,
        # else the last refusal is reported, once per Gateway, on each parentRef naming it.
        refs = [r for r in spec.get("parentRefs") or []
                if r.get("group", GW_GROUP) == GW_GROUP and r.get("kind", "Gateway") == "Gateway"
                and f"{r.get('namespace', rns)}/{r.get('name')}" in views]   # missing: no parent status
        verdicts: dict[str, tuple[bool, tuple[str, str] | None]] = {}
        for ref in sorted(refs, key=lambda r: _parent_string(r, rns)):
            gkey = f"{ref.get('namespace', rns)}/{ref.get('name')}"
            view = views[gkey]
            allowed, denied = verdicts.get(gkey, (False, None))
            for lst in (view.obj.get("spec") or {}).get("listeners") or []:
                refusal = _reference_denied(view.obj, lst, ref, rns, spec.get("hostnames") or [], store)
                if refusal is not None:
                    denied = refusal
                    continue
                allowed = True
                attached = view.attached[lst["name"]]
                if not any(r is route for r, _ in attached):
                    attached.append((route, ref.get("sectionName") or ""))
            verdicts[gkey] = (allowed, denied)
        ours = []
        for ref in refs:
            gns = ref.get("namespace", rns)
            gkey = f"{gns}/{ref.get('name')}"
            view = views[gkey]
            out_ref = {"group": GW_GROUP, "kind": "Gateway", "name": ref.get("name"), "namespace": gns}
            for k in ("sectionName", "port"):
                if k in ref:
                    out_ref[k] = ref[k]
            prev: dict[str, Any] = next((p for p in old_parents if _parent_key(p.get("parentRef") or {}) == _parent_key(out_ref)), {})
            old_conds = prev.get("conditions")
            allowed, denied = verdicts[gkey]
            if allowed or denied is None:
                accepted = condition(old_conds, "Accepted", True, "Accepted", "", generation=gen)
            else:
                accepted = condition(old_conds, "Accepted", False, denied[0], denied[1], generation=gen)
            refs_cond = condition(old_conds, "ResolvedRefs", resolved[0], resolved[1], resolved[2], generation=gen)
            ours.append({"parentRef": out_ref, "controllerName": classes[view.class_name],
                         "conditions": [accepted, refs_cond]})
        parents += sorted(ours, key=lambda p: _parent_string(p["parentRef"], rns))
        write_status(store, route, {"parents": parents})

    configs: dict[str, pc.GatewayConfig] = {}
    for key, view in views.items():
        gw = view.obj
        meta = gw["metadata"]
        gen = meta.get("generation", 1)
        address = lb_address(store, meta["namespace"], meta["name"])
        listeners_cfg = []
        listener_status = []
        old = gw.get("status") or {}
        old_ls = {ls.get("name"): ls for ls in old.get("listeners") or []}
        for lst in (gw.get("spec") or {}).get("listeners") or []:
            lname, port = lst["name"], int(lst["port"])
            routes = view.attached.get(lname, [])
            oc = (old_ls.get(lname) or {}).get("conditions")
            conflicted = condition(oc, "Conflicted", False, "NoConflicts", NO_ERRORS, generation=gen)
            resolved_refs = condition(oc, "ResolvedRefs", True, "ResolvedRefs", NO_ERRORS, generation=gen)
            if port in RESERVED_PORTS:
                conds = [condition(oc, "Accepted", False, "PortUnavailable",
                                   f"port {port} is reserved by agentgateway", generation=gen), conflicted,
                         condition(oc, "Programmed", False, "Invalid", f"port {port} is reserved by agentgateway",
                                   generation=gen), resolved_refs]
            elif lst.get("protocol", "HTTP") not in ("HTTP",):
                why = f"the sandbox serves HTTP listeners only, not {lst.get('protocol')}"
                conds = [condition(oc, "Accepted", False, "UnsupportedProtocol", why, generation=gen), conflicted,
                         condition(oc, "Programmed", False, "Invalid", why, generation=gen), resolved_refs]
            else:
                # v1.4.1 (translator/conversion.go, BuildListener): a listener is Programmed once translated
                conds = [condition(oc, "Accepted", True, "Accepted", NO_ERRORS, generation=gen), conflicted,
                         condition(oc, "Programmed", True, "Programmed", NO_ERRORS, generation=gen), resolved_refs]
                listeners_cfg.append(pc.Listener(
                    name=lname, port=port, protocol="HTTP", hostname=lst.get("hostname"),
                    routes=tuple(_translate_route(r, backends, traffic or {}, (meta["namespace"], meta["name"]))
                                 for r, _ in routes)))
            kinds, kinds_valid = _supported_kinds(lst)
            if not kinds_valid:   # v1.4.1 reportListenerCondition (translator/conditions.go)
                conds[3] = condition(oc, "ResolvedRefs", False, "InvalidRouteKinds", "Invalid route kinds",
                                     generation=gen)
            listener_status.append({
                "name": lname,
                "supportedKinds": kinds,
                "attachedRoutes": len(routes),
                "conditions": conds,
            })
        programmed = key in ready_gateways and (address is not None or not load_balancer)
        status: dict[str, Any] = {
            "attachedListenerSets": 0,
            "conditions": [
                _gateway_accepted(old.get("conditions"), listener_status, gen),
                condition(old.get("conditions"), "Programmed", programmed,
                          "Programmed" if programmed else ("Pending" if address else "AddressNotAssigned"),
                          "Successfully programmed Gateway" if programmed
                          else "waiting for the agentgateway proxy to be ready", generation=gen),
            ],
            "listeners": listener_status,
        }
        if address:
            status["addresses"] = [{"type": "IPAddress", "value": address}]
        write_status(store, gw, status)
        if address or not load_balancer:
            configs[key] = pc.GatewayConfig(
                namespace=meta["namespace"], name=meta["name"], class_name=view.class_name, address=address or "",
                listeners=tuple(listeners_cfg), tracing=tracing.get(key), log_format=log_formats.get(key, "text"),  # type: ignore[arg-type]
            )
    return configs


def _translate_route(route: dict[str, Any], backends: dict[str, Any], traffic: TrafficTargets | None = None,
                     gateway: tuple[str, str] | None = None) -> pc.Route:
    meta, spec = route["metadata"], route.get("spec") or {}
    rules = []
    for rule in spec.get("rules") or []:
        matches = []
        for m in rule.get("matches") or [{}]:
            path = m.get("path") or {}
            matches.append(pc.RouteMatch(
                path=pc.PathMatch(path.get("type", "PathPrefix"), path.get("value", "/")),
                headers=tuple(pc.HeaderMatch(h["name"], h.get("value", ""), h.get("type", "Exact"))
                              for h in m.get("headers") or []),
                query_params=tuple(pc.QueryMatch(q["name"], q.get("value", ""), q.get("type", "Exact"))
                                   for q in m.get("queryParams") or []),
                method=m.get("method"),
            ))
        rewrite = req_h = resp_h = None
        for f in rule.get("filters") or []:
            if f.get("type") == "URLRewrite":
                u = f.get("urlRewrite") or {}
                p = u.get("path") or {}
                rewrite = pc.URLRewrite(hostname=u.get("hostname"), path_type=p.get("type"),
                                        path_value=p.get("replaceFullPath") if p.get("type") == "ReplaceFullPath"
                                        else p.get("replacePrefixMatch"))
            elif f.get("type") in ("RequestHeaderModifier", "ResponseHeaderModifier"):
                body = f.get("requestHeaderModifier" if f["type"] == "RequestHeaderModifier"
                             else "responseHeaderModifier") or {}
                mod = pc.HeaderModifier(
                    set=tuple((h["name"], h["value"]) for h in body.get("set") or []),
                    add=tuple((h["name"], h["value"]) for h in body.get("add") or []),
                    remove=tuple(body.get("remove") or []))
                if f["type"] == "RequestHeaderModifier":
                    req_h = mod
                else:
                    resp_h = mod
        refs = []
        for ref in rule.get("backendRefs") or []:
            ns = ref.get("namespace", meta["namespace"])
            weight = int(ref.get("weight", 1))
            if (ref.get("group", ""), ref.get("kind", "Service")) == ("agentgateway.dev", "AgentgatewayBackend"):
                b = backends.get(f"{ns}/{ref.get('name')}")
                if b is None or ns != meta["namespace"]:
                    refs.append(pc.BackendRef(None, weight, "backend does not exist"))
                elif isinstance(b, TranslationError):
                    refs.append(pc.BackendRef(None, weight, "no valid backends"))
                else:
                    refs.append(pc.BackendRef(b, weight))
            elif (ref.get("group", ""), ref.get("kind", "Service")) == ("", "Service"):
                b = backends.get(f"svc:{ns}/{ref.get('name')}:{ref.get('port', 80)}")
                refs.append(pc.BackendRef(b, weight) if b else pc.BackendRef(None, weight, "backend does not exist"))
            else:
                refs.append(pc.BackendRef(None, weight, "backend does not exist"))
        timeout = None
        req_timeout = (rule.get("timeouts") or {}).get("request")
        if isinstance(req_timeout, str) and req_timeout:
            timeout = _duration(req_timeout)
        rules.append(pc.Rule(name=rule.get("name"), matches=tuple(matches), backends=tuple(refs),
                             url_rewrite=rewrite, request_headers=req_h, response_headers=resp_h,
                             timeout_seconds=timeout,
                             traffic=for_rule(traffic or {}, gateway, meta["namespace"], meta["name"], rule.get("name"),
                                              tuple(r.get("name", "") for r in rule.get("backendRefs") or []
                                                    if r.get("kind") == "AgentgatewayBackend"))))
    return pc.Route(namespace=meta["namespace"], name=meta["name"], hostnames=tuple(spec.get("hostnames") or []),
                    rules=tuple(rules), creation_timestamp=meta.get("creationTimestamp", ""))


def _duration(text: str) -> float | None:
    """Gateway API duration (``10s``, ``1m30s``, ``500ms``) in seconds."""
    import re

    total, matched = 0.0, False
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        matched = True
        total += float(value) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total if matched and total > 0 else None
