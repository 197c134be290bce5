"""Route retries (``traffic.retry``), as agentgateway v1.4.1 makes them.

Follows ``crates/agentgateway/src/proxy/httpproxy.rs`` (the attempt loop, ``should_retry``)
and ``proxy/mod.rs`` (``ProxyError::is_retryable``): a request is tried ``attempts + 1``
times at most; another try follows an answer whose status is in ``codes``, or a failure to
reach the upstream at all (``upstream call failed`` / ``upstream call timeout``), after
``backoff``. Later tries carry ``x-retry-attempt: <n>`` upstream and the access log notes
``retry.attempt=<n>``. A body over 64 KiB is not buffered for replay, so it is tried once.
Each try picks its backend afresh (a priority group may have evicted a provider meanwhile).

Example:
    >>> from agwlab.sandbox.proxy.errors import UpstreamCallFailed, ProcessingFailed
    >>> retryable(UpstreamCallFailed("connection refused")), retryable(ProcessingFailed("x"))
    (True, False)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .context import RequestContext
from .errors import GatewayError, UpstreamCallFailed, UpstreamCallTimeout
from .policies import RetryPolicy

__all__ = ["MAX_REPLAY_BYTES", "retryable", "with_retries"]

MAX_REPLAY_BYTES = 64 * 1024
Attempt = Callable[[Request], Awaitable[Response]]


def retryable(exc: GatewayError) -> bool:
    """Whether a failed try may be tried again (the upstream was not reached or timed out)."""
    return isinstance(exc, UpstreamCallFailed | UpstreamCallTimeout)


def _again(request: Request, attempt: int, body: bytes) -> Request:
    scope = dict(request.scope)
    scope["headers"] = [*(h for h in request.scope["headers"] if h[0] != b"x-retry-attempt"),
                        (b"x-retry-attempt", str(attempt).encode())]
    again = Request(scope, request.receive)
    again._body = body  # the buffered body, replayed
    return again


async def _discard(response: Response) -> None:
    close = getattr(getattr(response, "body_iterator", None), "aclose", None)
    if close is not None:
        await close()


async def with_retries(ctx: RequestContext, policy: RetryPolicy | None, request: Request,
                       attempt: Attempt) -> Response:
    """Run ``attempt`` once, or as ``policy`` says (see the module docstring)."""
    if policy is None:
        return await attempt(request)
    body = await request.body()
    if len(body) > MAX_REPLAY_BYTES:
        return await attempt(request)
    tries = policy.attempts + 1
    for n in range(tries):
        last = n == tries - 1
        current = request
        if n > 0:
            ctx.log["retry.attempt"] = n
            current = _again(request, n, body)
        try:
            response = await attempt(current)
        except GatewayError as exc:
            if last or not retryable(exc):
                raise
        else:
            if last or response.status_code not in policy.codes:
                return response
            await _discard(response)
        if policy.backoff:
            await asyncio.sleep(policy.backoff)
    raise AssertionError("unreachable: the last try returns or raises")
