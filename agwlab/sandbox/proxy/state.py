"""What one Gateway's proxy shares with its backend handlers (AI, MCP, plain HTTP).

A :class:`ProxyState` exists once per proxy Pod and lives as long as the Pod. The
server hands it to every backend handler next to the per-request
:class:`~agwlab.sandbox.proxy.context.RequestContext`. Its shape is a contract for the
MCP handler (``proxy/mcp.py``)::

    async def handle(request: starlette.requests.Request, ctx: RequestContext,
                     backend: MCPBackend, state: ProxyState) -> starlette.responses.Response

What a handler may use:

* ``state.metrics`` - :class:`~agwlab.sandbox.proxy.metrics.ProxyMetrics`; MCP records
  ``state.metrics.record_mcp_request(ctx, method=..., resource_type=..., server=...,
  resource=...)`` once per JSON-RPC message that has a method.
* ``ctx.tracer`` - a :class:`~agwlab.sandbox.proxy.tracing.RequestTracer` or ``None``
  when the request is not sampled; MCP adds one span per JSON-RPC message with
  ``ctx.tracer.message_span(name)``. Upstream calls carry ``ctx.traceparent_out`` (the
  request span's); v1.4.1 makes no span for them.
* ``state.log`` - the Pod log (what ``kubectl logs`` shows); write whole lines.
* ``state.cluster`` - cluster DNS and settings (``resolve``, ``setting``).
* ``state.config`` - the *current* GatewayConfig (``ctx.gateway`` is the one the request
  started with; prefer that one while serving a request).
* ``state.upstream`` - the proxy's one pooled HTTP client for upstream calls, a
  :class:`~agwlab.sandbox.proxy.upstream.UpstreamClient` (redirects off, no environment
  proxies, each new connection timed). The AI and plain HTTP handlers use it through
  ``outbound.send``; MCP sessions hold it for their upstream sessions.
* ``state.extra`` - a dict that survives config swaps, for handler-owned state such as
  MCP sessions (use a key named after your module, e.g. ``state.extra["mcp"]``). Values
  with an ``async def close()`` are closed when the proxy stops.
* ``state.pod`` - the PodContext (``pod.namespace``, ``pod.name``, ``pod.pod_ip``, ``pod.env``).

Example:
    >>> async def handle(request, ctx, backend, state):       # doctest: +SKIP
    ...     state.metrics.record_mcp_request(ctx, method="tools/list")
    ...     ctx.protocol = "mcp"
    ...     ctx.log["mcp.method.name"] = "tools/list"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..podlogs import PodLog
    from ..runtime import ClusterServices, PodContext
    from .config import GatewayConfig
    from .metrics import ProxyMetrics
    from .tracing import ProxyTracing
    from .upstream import UpstreamClient

__all__ = ["ProxyState"]


@dataclass
class ProxyState:
    """One proxy's long-lived parts (see the module docstring for how handlers use them)."""

    pod: PodContext
    log: PodLog
    cluster: ClusterServices
    metrics: ProxyMetrics
    tracing: ProxyTracing
    upstream: UpstreamClient
    config: GatewayConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)
