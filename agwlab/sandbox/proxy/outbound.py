"""The proxy's one outbound call: send upstream, time it, turn failures into gateway errors.

Every handler that calls an upstream over HTTP (AI providers, plain Service backends)
goes through :func:`send`. It records when the primary outbound call started and how
long it took on the request context (``server.py`` turns those into
``agentgateway_upstream_call_duration_seconds{kind,subtype}`` and the request/response
processing histograms), and raises :class:`~agwlab.sandbox.proxy.errors.GatewayError`
subclasses that ``server.py`` answers: 503 ``upstream call failed: ...`` when the
upstream cannot be reached, 504 ``upstream call timeout`` when connecting takes too long.
As in agentgateway v1.4.1 there is no tracing span for the call itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .context import RequestContext
from .errors import UpstreamCallFailed, UpstreamCallTimeout
from .state import ProxyState
from .upstream import UpstreamError, UpstreamResponse, UpstreamTimeout

__all__ = ["send"]


async def send(
    state: ProxyState,
    ctx: RequestContext,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None = None,
    *,
    subtype: str = "Http",
    decompress: bool = False,
) -> UpstreamResponse:
    """Send the request's primary outbound call and return once response headers are in.

    Args:
        subtype: ``Llm`` for AI providers, ``Http`` for Service backends (metric label).
        decompress: undo the upstream's content encoding (the AI handler reads bodies).

    Raises:
        UpstreamCallTimeout: connecting took too long.
        UpstreamCallFailed: the connection failed.
    """
    start = time.perf_counter()
    ctx.outbound_subtype = subtype
    if ctx.request_processing is None:
        ctx.request_processing = start - ctx.started
    try:
        response = await state.upstream.send(method, url, headers, body, decompress=decompress)
    except UpstreamTimeout:
        raise UpstreamCallTimeout() from None
    except UpstreamError as exc:
        raise UpstreamCallFailed(str(exc)) from None
    finally:
        ctx.upstream_duration = time.perf_counter() - start
    ctx.response_started = time.perf_counter()
    return response
