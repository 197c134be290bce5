"""Plain HTTP forwarding to a Service backendRef (protocol ``http``).

The request goes as is (path after URLRewrite, query, body, headers minus hop-by-hop)
to one of the Service's ready endpoints; the answer streams back unchanged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from .config import ServiceBackend
from .context import RequestContext
from .state import ProxyState
from .upstream import UpstreamError, UpstreamTimeout

__all__ = ["HOP_BY_HOP", "forward"]

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization",
})


async def forward(request: Request, ctx: RequestContext, backend: ServiceBackend, state: ProxyState,
                  host: str | None = None) -> Response:
    """Proxy one request to a Service backend and stream the answer back.

    Args:
        request: the downstream request, path and headers already rewritten by filters.
        host: the Host header to send (the URLRewrite hostname or the original Host).
    """
    ctx.protocol = "http"
    if not backend.urls:
        ctx.reason, ctx.error = "NoHealthyBackend", "no healthy backends"
        return PlainTextResponse("no healthy backends", status_code=503)
    base = random.choice(backend.urls)
    ctx.endpoint = base.split("://", 1)[-1]
    url = base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "host"]
    headers.append(("host", host or request.headers.get("host", ctx.endpoint)))
    span = None
    if ctx.tracer is not None:
        span = ctx.tracer.start_child(f"{request.method} {backend.key}", {
            "http.method": request.method, "http.host": backend.key.rsplit(":", 1)[0],
            "http.path": request.url.path, "agentgateway.outbound.kind": "Primary",
            "agentgateway.outbound.subtype": "Http",
        })
        headers = [(k, v) for k, v in headers if k != "traceparent"]
        headers.append(("traceparent", ctx.tracer.traceparent()))
    body = await request.body()
    try:
        upstream = await state.upstream.send(request.method, url, headers, body or None)
    except asyncio.CancelledError:  # the route's timeout fired: still close the client span
        _close(span, 504)
        raise
    except UpstreamTimeout:
        _close(span, 504)
        ctx.reason, ctx.error = "Timeout", "upstream call timeout"
        return PlainTextResponse("upstream call timeout", status_code=504)
    except UpstreamError as exc:
        _close(span, 503)
        ctx.reason, ctx.error = "UpstreamFailure", f"upstream call failed: {exc}"
        return PlainTextResponse(ctx.error, status_code=503)

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.iter_raw():
                yield chunk
        finally:
            upstream.close()
            _close(span, upstream.status)

    out_headers = [(k, v) for k, v in upstream.headers if k not in HOP_BY_HOP]
    response = StreamingResponse(stream(), status_code=upstream.status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
    return response


def _close(span, status: int | None) -> None:
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.status", status)
    span.end()
