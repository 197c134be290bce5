"""Per-request state shared by the proxy's parts (routing, AI, MCP, logs, metrics, traces).

``server.py`` creates one :class:`RequestContext` when a request arrives, fills in the
route it matched, hands it to the backend handler (``ai.py``, ``mcp.py`` or the plain
HTTP forwarder), and when the response is finished writes the access log line, the
request metrics and the server span from it. Handlers add what they know:

* ``log`` - access-log fields in agentgateway's key order is handled by ``accesslog.py``;
  handlers just set keys such as ``mcp.method.name`` or ``gen_ai.usage.input_tokens``.
* ``protocol`` - ``http`` / ``llm`` / ``mcp``.
* ``tracer`` - the request's server span (sampled requests only); agentgateway v1.4.1
  makes no span for the upstream call.
* ``llm`` - what an LLM call recorded (:class:`LLMCall`); the server turns it into the
  gen_ai metrics and access-log fields when the response is finished.
* ``outbound_subtype``, ``request_processing``, ``upstream_duration``,
  ``response_started`` - set by ``outbound.send`` for the processing and upstream-call
  histograms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .config import BackendRef, GatewayConfig, Listener, Route, Rule

__all__ = ["LLMCall", "RequestContext", "RouteLabels"]


@dataclass(frozen=True)
class RouteLabels:
    """agentgateway's RouteIdentifier labels: ``bind, gateway, listener, route, route_rule``."""

    bind: str = "unknown"
    gateway: str = "unknown"
    listener: str = "unknown"
    route: str = "unknown"
    route_rule: str = "unknown"

    def as_dict(self) -> dict[str, str]:
        return {
            "bind": self.bind,
            "gateway": self.gateway,
            "listener": self.listener,
            "route": self.route,
            "route_rule": self.route_rule,
        }


@dataclass
class LLMCall:
    """What one LLM request records: provider, models, token counts, first-token time."""

    system: str
    request_model: str | None
    response_model: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    first_token_at: float | None = None


@dataclass
class RequestContext:
    gateway: GatewayConfig
    listener: Listener
    method: str
    path: str                                  # original downstream path + query
    host: str
    src_addr: str
    http_version: str = "HTTP/1.1"
    route: Route | None = None
    rule: Rule | None = None
    backend_ref: BackendRef | None = None
    protocol: str = "http"
    status: int | None = None
    reason: str = "Upstream"                   # metric `reason`; logged only when not Upstream
    endpoint: str | None = None                # access-log `endpoint` (upstream host:port)
    error: str | None = None                   # access-log `error`
    log: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None                # set when the request is sampled
    span_id: str | None = None
    traceparent_out: str | None = None         # header to send upstream when sampled
    tracer: Any = None                         # tracing.RequestTracer or None
    llm: LLMCall | None = None
    outbound_subtype: str | None = None        # "Llm" / "Http" once an upstream call was made
    request_processing: float | None = None    # seconds from arrival to the outbound call
    upstream_duration: float | None = None     # seconds the outbound call took (to headers)
    response_started: float | None = None      # perf_counter when the upstream answered
    response_headers_at: float | None = None   # perf_counter when the client got the response headers
    started: float = field(default_factory=time.perf_counter)
    rate_limit: Any = None                     # the policies.LocalRateLimit selected for this request
    jwt_claims: dict[str, Any] | None = None   # a verified JWT's claims (traffic.jwtAuthentication)

    @property
    def labels(self) -> RouteLabels:
        gw = self.gateway
        return RouteLabels(
            bind=f"{self.listener.port}/{gw.namespace}/{gw.name}",
            gateway=gw.key,
            listener=self.listener.name,
            route=self.route.key if self.route else "unknown",
            route_rule=(self.rule.name if self.rule and self.rule.name else "unknown"),
        )

    @property
    def backend_key(self) -> str:
        b = self.backend_ref.backend if self.backend_ref else None
        return b.key if b is not None else "unknown"
