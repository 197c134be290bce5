"""Plain HTTP forwarding to a Service backendRef (protocol ``http``).

The request goes as is (path after URLRewrite, query, body, headers minus hop-by-hop)
to one of the Service's ready endpoints; the answer streams back unchanged.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from . import outbound
from .config import ServiceBackend
from .context import RequestContext
from .errors import NoBackend
from .state import ProxyState

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

    Raises:
        GatewayError: no endpoint, or the upstream cannot be reached.
    """
    ctx.protocol = "http"
    if not backend.urls:
        raise NoBackend("no healthy backends", status=503)
    base = random.choice(backend.urls)
    ctx.endpoint = base.split("://", 1)[-1]
    url = base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = [(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "host"]
    headers.append(("host", host or request.headers.get("host", ctx.endpoint)))
    body = await request.body()
    upstream = await outbound.send(state, ctx, request.method, url, headers, body or None)

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.iter_raw():
                yield chunk
        finally:
            upstream.close()

    response = StreamingResponse(stream(), status_code=upstream.status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in upstream.headers if k not in HOP_BY_HOP]
    return response
