"""AgentgatewayBackend: status, and translation into the proxy's backend config."""

from __future__ import annotations

import base64
from typing import Any

from ..cluster import Cluster
from ..proxy.config import AIBackend, AIGroups, MCPBackend, MCPTarget, ServiceBackend
from ..proxy.policies import Eviction, HealthPolicy
from .common import condition, labels_match, write_status
from .durations import duration_seconds

__all__ = ["ANTHROPIC_STANDIN", "reconcile_backends", "translate_backend"]

CONTROLLER = "agentgateway.dev/agentgateway"
# where the sandbox sends Anthropic traffic unless the settings say "api.anthropic.com"
ANTHROPIC_STANDIN = ("anthropic-standin", "agwlab-system", 443)

_APP_PROTOCOLS = {
    "agentgateway.dev/mcp": "StreamableHTTP",
    "agentgateway.dev/mcp-sse": "SSE",
    "kgateway.dev/mcp": "StreamableHTTP",
    "kgateway.dev/mcp-sse": "SSE",
}


class TranslationError(Exception):
    pass


def _secret_value(store: Any, ns: str, ref: dict[str, Any]) -> str:
    name = ref.get("name", "")
    key = ref.get("key") or "Authorization"
    secret = store.get("", "secrets", ns, name)
    if secret is None:
        raise TranslationError(f"failed to translate backend: failed to get secret {ns}/{name}: secret {ns}/{name} not found")
    data = secret.get("data") or {}
    if key not in data:
        raise TranslationError(f"failed to translate backend: secret {ns}/{name} missing {key} value")
    value = base64.b64decode(data[key]).decode("utf-8", "replace").strip()
    if not ref.get("key") and value.startswith("Bearer "):
        value = value[len("Bearer "):]
    return value


def _ai_backend(store: Any, cluster: Cluster, obj: dict[str, Any], blackhole: str) -> AIBackend | AIGroups:
    spec = obj.get("spec") or {}
    ai = spec.get("ai") or {}
    provider = ai.get("provider")
    if provider is not None:
        return _ai_provider(store, cluster, obj, provider, blackhole)
    groups = [g.get("providers") or [] for g in ai.get("groups") or []]
    if not groups or not all(groups):
        raise TranslationError("failed to translate backend: ai backend has no provider")
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    return AIGroups(key=f"{ns}/{name}", groups=tuple(
        tuple(_ai_provider(store, cluster, obj, p, blackhole) for p in group) for group in groups))


def _health(policies: dict[str, Any]) -> HealthPolicy | None:
    """``policies.health`` as v1.4.1's controller hands it on (``backend_policies.go``)."""
    health = policies.get("health")
    if health is None:
        return None
    ev = health.get("eviction")
    eviction = None
    if ev is not None:
        pct = {k: (None if ev.get(k) is None else int(ev[k]) / 100.0) for k in ("healthThreshold", "restoreHealth")}
        eviction = Eviction(duration=duration_seconds(ev.get("duration", "3s")),
                            consecutive_failures=ev.get("consecutiveFailures"),
                            health_threshold=pct["healthThreshold"], restore_health=pct["restoreHealth"])
    return HealthPolicy(unhealthy_condition=health.get("unhealthyCondition"), eviction=eviction)


def _ai_provider(store: Any, cluster: Cluster, obj: dict[str, Any], provider: dict[str, Any],
                 blackhole: str) -> AIBackend:
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    own = provider.get("policies") or {}
    kind = next((k for k in ("anthropic", "openai") if k in provider), None)
    if kind is None:
        other = next((k for k in provider if k not in ("host", "port", "path", "pathPrefix", "name", "policies")), "?")
        raise TranslationError(f"failed to translate backend: the sandbox serves the anthropic and openai "
                               f"providers only, not {other}")
    auth = own.get("auth") or ((spec.get("policies") or {}).get("auth")) or {}
    api_key: str | None = None
    if "secretRef" in auth:
        api_key = _secret_value(store, ns, auth["secretRef"])
    elif "key" in auth:
        api_key = str(auth["key"]).removeprefix("Bearer ")
    routes = tuple(sorted((((spec.get("policies") or {}).get("ai") or {}).get("routes") or {}).items()))
    model = (provider.get(kind) or {}).get("model")
    if provider.get("host"):
        host, port = provider["host"], int(provider.get("port", 443))
        eps = cluster.resolve(host, port, namespace=ns)
        if eps:
            url = f"http://{eps[0].ip}:{eps[0].port}"
        else:
            url = f"{'https' if port == 443 else 'http'}://{host}:{port}"
        upstream_host = f"{host}:{port}"
    elif kind == "anthropic" and cluster.setting("anthropic.upstream", "standin") == "standin":
        svc, svc_ns, port = ANTHROPIC_STANDIN
        eps = cluster.resolve(svc, port, namespace=svc_ns)
        url = f"http://{eps[0].ip}:{eps[0].port}" if eps else f"http://{blackhole}:{port}"
        upstream_host = "api.anthropic.com:443"
    elif kind == "anthropic":
        url, upstream_host = "https://api.anthropic.com", "api.anthropic.com:443"
    else:
        url, upstream_host = "https://api.openai.com", "api.openai.com:443"
    return AIBackend(
        key=f"{ns}/{name}",
        provider=kind,
        model=model,
        api_key=api_key,
        auth_location_explicit="location" in auth,
        upstream_url=url,
        upstream_host=upstream_host,
        path=provider.get("path"),
        path_prefix=provider.get("pathPrefix"),
        host_override=bool(provider.get("host")),
        routes=routes,
        provider_name=provider.get("name"),
        health=_health(own) or _health(spec.get("policies") or {}),
    )


def _mcp_targets(store: Any, cluster: Cluster, obj: dict[str, Any]) -> list[MCPTarget]:
    ns = obj["metadata"]["namespace"]
    targets: list[MCPTarget] = []
    for t in ((obj.get("spec") or {}).get("mcp") or {}).get("targets") or []:
        if "static" in t:
            st = t["static"]
            protocol: Any = st.get("protocol") or "StreamableHTTP"
            path = st.get("path") or ("/sse" if protocol == "SSE" else "/mcp")
            port = int(st.get("port", 80))
            host = st.get("host") or f"{(st.get('backendRef') or {}).get('name', '')}.{ns}.svc.cluster.local"
            eps = cluster.resolve(host, port, namespace=ns)
            if eps:
                targets.append(MCPTarget(t["name"], protocol, f"http://{eps[0].ip}:{eps[0].port}{path}", f"{host}:{port}"))
            elif cluster.service_exists(host, namespace=ns):
                targets.append(MCPTarget(t["name"], protocol, None, f"{host}:{port}",
                                         error=f"no healthy endpoints for {host}:{port}"))
            elif "." in host and not host.endswith(".cluster.local") and not host.endswith(".svc"):
                # an address outside the cluster (e.g. 127.0.0.1 or a public host)
                targets.append(MCPTarget(t["name"], protocol, f"http://{host}:{port}{path}", f"{host}:{port}"))
            else:
                targets.append(MCPTarget(t["name"], protocol, None, f"{host}:{port}",
                                         error=f"service {host} not found"))
        elif "selector" in t:
            sel = t["selector"]
            for svc in store.list("", "services"):
                smeta = svc["metadata"]
                if "namespaces" in sel:
                    nsobj = store.get("", "namespaces", None, smeta["namespace"])
                    if not labels_match(sel["namespaces"], (nsobj or {}).get("metadata", {}).get("labels")):
                        continue
                elif smeta["namespace"] != ns:
                    continue
                if "services" in sel and not labels_match(sel["services"], smeta.get("labels")):
                    continue
                ann = smeta.get("annotations") or {}
                for port in (svc.get("spec") or {}).get("ports") or []:
                    protocol = _APP_PROTOCOLS.get(port.get("appProtocol", ""))
                    if protocol is None:
                        continue
                    tname = ann.get("agentgateway.dev/mcp-target-name") or \
                        f"{smeta['name']}-{port.get('name') or port['port']}"
                    path = ann.get("agentgateway.dev/mcp-path") or ann.get("kgateway.dev/mcp-path") or \
                        ("/sse" if protocol == "SSE" else "/mcp")
                    host = f"{smeta['name']}.{smeta['namespace']}.svc.cluster.local"
                    eps = cluster.resolve(host, int(port["port"]))
                    if eps:
                        targets.append(MCPTarget(tname, protocol, f"http://{eps[0].ip}:{eps[0].port}{path}",
                                                 f"{host}:{port['port']}"))
                    else:
                        targets.append(MCPTarget(tname, protocol, None, f"{host}:{port['port']}",
                                                 error=f"no healthy endpoints for {host}:{port['port']}"))
    return targets


def translate_backend(store: Any, cluster: Cluster, obj: dict[str, Any], blackhole: str) -> Any:
    """The proxy config for one AgentgatewayBackend.

    Raises:
        TranslationError: the backend cannot be served (message as agentgateway words it).
    """
    spec = obj.get("spec") or {}
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    if "ai" in spec:
        return _ai_backend(store, cluster, obj, blackhole)
    if "mcp" in spec:
        mcp = spec["mcp"]
        return MCPBackend(
            key=f"{ns}/{name}",
            targets=tuple(_mcp_targets(store, cluster, obj)),
            session_routing=mcp.get("sessionRouting", "Stateful"),
            failure_mode=mcp.get("failureMode", "FailClosed"),
            prefix_mode=mcp.get("prefixMode", "Conditional"),
        )
    if "static" in spec:
        st = spec["static"]
        host, port = st.get("host", ""), int(st.get("port", 80))
        eps = cluster.resolve(host, port, namespace=ns)
        urls = tuple(f"http://{e.ip}:{e.port}" for e in eps) or (f"http://{host}:{port}",)
        return ServiceBackend(key=f"{ns}/{name}", urls=urls)
    kind = next(iter(spec), "?")
    raise TranslationError(f"failed to translate backend: the sandbox does not serve {kind} backends")


def reconcile_backends(store: Any, cluster: Cluster, blackhole: str) -> dict[str, Any]:
    """Write each AgentgatewayBackend's status; return ``ns/name -> config or TranslationError``."""
    out: dict[str, Any] = {}
    for obj in store.list("agentgateway.dev", "agentgatewaybackends"):
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        gen = obj["metadata"].get("generation", 1)
        old = (obj.get("status") or {}).get("conditions")
        try:
            out[key] = translate_backend(store, cluster, obj, blackhole)
            cond = condition(old, "Accepted", True, "Accepted", "Backend successfully accepted", generation=gen)
        except TranslationError as e:
            out[key] = e
            cond = condition(old, "Accepted", False, "TranslationError", str(e), generation=gen)
        write_status(store, obj, {"conditions": [cond]})
    return out
