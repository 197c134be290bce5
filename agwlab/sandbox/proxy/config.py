"""The proxy's configuration: what the controller pushes to each Gateway's proxy.

This plays the part of agentgateway's xDS resources. The controller (``controller/``)
translates Gateway, HTTPRoute, AgentgatewayBackend, AgentgatewayPolicy, Service and
Secret objects into one :class:`GatewayConfig` per Gateway and pushes it through
``ClusterServices.subscribe_gateway``; the proxy (``proxy/server.py``) swaps it in
atomically. Everything here is already resolved and validated: the proxy never reads
Kubernetes objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .policies import HealthPolicy, TrafficPolicies

if TYPE_CHECKING:
    from .guardrails import PromptGuard

__all__ = [
    "AIBackend",
    "AIGroups",
    "BackendRef",
    "GatewayConfig",
    "HeaderMatch",
    "HeaderModifier",
    "Listener",
    "MCPBackend",
    "MCPTarget",
    "PathMatch",
    "QueryMatch",
    "Route",
    "RouteMatch",
    "Rule",
    "ServiceBackend",
    "TracingConfig",
    "URLRewrite",
]


@dataclass(frozen=True)
class PathMatch:
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = "/"


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    value: str
    type: Literal["Exact", "RegularExpression"] = "Exact"


@dataclass(frozen=True)
class QueryMatch:
    name: str
    value: str
    type: Literal["Exact", "RegularExpression"] = "Exact"


@dataclass(frozen=True)
class RouteMatch:
    """One entry of an HTTPRoute rule's ``matches`` (defaults already applied)."""

    path: PathMatch = PathMatch()
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryMatch, ...] = ()
    method: str | None = None


@dataclass(frozen=True)
class URLRewrite:
    """The Gateway API ``URLRewrite`` filter."""

    hostname: str | None = None
    path_type: Literal["ReplaceFullPath", "ReplacePrefixMatch"] | None = None
    path_value: str | None = None


@dataclass(frozen=True)
class HeaderModifier:
    """``RequestHeaderModifier`` / ``ResponseHeaderModifier``."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class AIBackend:
    """An ``AgentgatewayBackend`` with ``spec.ai.provider`` (one provider).

    ``upstream_url`` is where requests go, without the path, e.g.
    ``https://api.anthropic.com`` or the sandbox's stand-in ``http://127.64.1.9:8443``.
    The proxy applies the provider's path (``/v1/messages`` for Anthropic; ``path`` /
    ``path_prefix`` override it). ``api_key`` is the Secret's value with ``Bearer ``
    already stripped; ``None`` means the backend has no auth policy.
    """

    key: str                                  # "<ns>/<name>", the metric/log `backend`
    provider: Literal["anthropic", "openai"]
    model: str | None = None                  # provider.<p>.model override
    api_key: str | None = None
    auth_location_explicit: bool = False
    upstream_url: str = "https://api.anthropic.com"
    upstream_host: str = "api.anthropic.com:443"   # what the access log calls the endpoint
    path: str | None = None
    path_prefix: str | None = None
    host_override: bool = False               # provider.host set: the client's path is kept
    routes: tuple[tuple[str, str], ...] = ()  # ai.routes: (path suffix or "*", route type)
    provider_name: str | None = None          # the provider's name within spec.ai.groups
    health: HealthPolicy | None = None        # policies.health (provider's, else the backend's)


@dataclass(frozen=True)
class AIGroups:
    """An ``AgentgatewayBackend`` with ``spec.ai.groups``: priority groups of providers.

    The first group with a provider not evicted serves (``failover.py``); each provider is an
    :class:`AIBackend` with the backend's ``key``.
    """

    key: str
    groups: tuple[tuple[AIBackend, ...], ...]


@dataclass(frozen=True)
class MCPTarget:
    """One MCP target, resolved to a URL the proxy can dial.

    ``url`` is absolute (``http://<pod ip>:<target port><path>``). ``error`` is set
    instead when the target cannot be resolved right now (no such Service, no ready
    endpoints); the proxy then fails requests to it as agentgateway does.
    ``host_header`` is the Host the upstream should see (``<host>:<port>`` as written
    in the backend).
    """

    name: str
    protocol: Literal["SSE", "StreamableHTTP"]
    url: str | None
    host_header: str
    error: str | None = None


@dataclass(frozen=True)
class MCPBackend:
    """An ``AgentgatewayBackend`` with ``spec.mcp``."""

    key: str                                  # "<ns>/<name>"
    targets: tuple[MCPTarget, ...]
    session_routing: Literal["Stateful", "Stateless"] = "Stateful"
    failure_mode: Literal["FailClosed", "FailOpen"] = "FailClosed"
    prefix_mode: Literal["Conditional", "Always", "Never"] = "Conditional"


@dataclass(frozen=True)
class ServiceBackend:
    """A plain ``Service`` backendRef: HTTP to the Service's endpoints."""

    key: str                                  # "<svc-host>:<port>", e.g. "httpbin.default.svc.cluster.local:8000"
    urls: tuple[str, ...]                     # http://<pod ip>:<target port> for each ready endpoint


Backend = AIBackend | AIGroups | MCPBackend | ServiceBackend


@dataclass(frozen=True)
class BackendRef:
    """A rule's backendRef. ``backend`` is None when it did not resolve; ``error`` then
    holds agentgateway's message (``backend does not exist`` / ``no valid backends``)."""

    backend: Backend | None
    weight: int = 1
    error: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str | None                          # the rule's `name`, or None (-> "unknown")
    matches: tuple[RouteMatch, ...]
    backends: tuple[BackendRef, ...]
    url_rewrite: URLRewrite | None = None
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    timeout_seconds: float | None = None      # rules[].timeouts.request
    traffic: TrafficPolicies = field(default_factory=TrafficPolicies)   # AgentgatewayPolicy spec.traffic (policies.py)
    prompt_guard: PromptGuard | None = None   # AgentgatewayPolicy backend.ai.promptGuard (guardrails.PromptGuard)


@dataclass(frozen=True)
class Route:
    namespace: str
    name: str
    hostnames: tuple[str, ...]
    rules: tuple[Rule, ...]
    creation_timestamp: str = ""              # for Gateway API precedence ties

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str = "HTTP"
    hostname: str | None = None
    routes: tuple[Route, ...] = ()            # routes attached to this listener


@dataclass(frozen=True)
class TracingConfig:
    """AgentgatewayPolicy ``frontend.tracing`` targeting the Gateway.

    ``endpoint`` is resolved: ``http://<ip>:<port>`` of the collector. Sampling values
    are the policy's CEL strings; the sandbox evaluates literals (``"true"``,
    ``"false"``, ``"0.25"``); ``None`` means unset (see reference §4.2).
    """

    endpoint: str | None
    protocol: Literal["GRPC", "HTTP"] = "GRPC"
    path: str = "/v1/traces"
    random_sampling: str | None = None
    client_sampling: str | None = None
    resources: tuple[tuple[str, str], ...] = ()    # (name, CEL literal) pairs
    attributes: tuple[tuple[str, str], ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything one Gateway's proxy serves."""

    namespace: str
    name: str
    class_name: str
    address: str                              # the IP listeners bind (the LB address)
    listeners: tuple[Listener, ...]
    tracing: TracingConfig | None = None
    log_format: Literal["text", "json"] = "text"
    version: int = 0                          # bumps on every push

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
