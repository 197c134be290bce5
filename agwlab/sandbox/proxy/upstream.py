"""The proxy's one pooled upstream HTTP client (aiohttp), for AI, MCP and plain HTTP backends.

aiohttp keeps up with hundreds of concurrent proxied requests on one event loop, where
a single pooled httpx client serialises badly; handlers only see the small surface here.
TLS upstreams are verified against Mozilla's roots (certifi), the list agentgateway's
webpki roots carry.

Example:
    >>> client = UpstreamClient()                                          # doctest: +SKIP
    >>> resp = await client.send("POST", "http://127.0.0.1:8443/v1/messages",
    ...                          [("content-type", "application/json")], b"{}")   # doctest: +SKIP
    >>> body = await resp.read()                                           # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
import certifi

__all__ = ["OnUpstreamConnect", "UpstreamClient", "UpstreamError", "UpstreamResponse", "UpstreamTimeout",
           "connect_timing"]

# One TLS context for every proxy's upstream client: building one per client loads the CA
# bundle again (~60 ms on the event loop, when a Gateway's Pod starts).
_TLS = ssl.create_default_context(cafile=certifi.where())


class UpstreamError(Exception):
    """An upstream could not be reached or broke the exchange; the text is the reason.

    The HTTP handlers answer it with 503 ``upstream call failed: ...`` (``outbound.send``),
    the MCP handler with ``failed to send message: ...``.
    """


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time (agentgateway: 504)."""


def _os_text(exc: BaseException) -> str:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "errno", None)
        if isinstance(code, int) and code:
            return f"{os.strerror(code)} (os error {code})"
        cur = getattr(cur, "os_error", None) or cur.__cause__ or cur.__context__
    text = str(exc)
    if "refused" in text.lower():
        return f"{os.strerror(errno.ECONNREFUSED)} (os error {errno.ECONNREFUSED})"
    return text or type(exc).__name__


class UpstreamResponse:
    """A response whose body has not been read yet; read it once, then it is released."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._r = response
        self.status: int = response.status
        self.headers: list[tuple[str, str]] = [(k.lower(), v) for k, v in response.headers.items()]

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        return self._r.headers.get(name)

    async def read(self) -> bytes:
        """The whole body.

        Raises:
            UpstreamError: the connection broke while reading.
        """
        try:
            return await self._r.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(_os_text(exc)) from exc
        finally:
            self._r.release()

    async def iter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives.

        Raises:
            UpstreamError: the connection broke, or a read timed out, while reading.
        """
        try:
            async for chunk in self._r.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(_os_text(exc)) from exc
        finally:
            self._r.release()

    async def iter_lines(self) -> AsyncIterator[str]:
        """The body line by line (without line endings), for server-sent events.

        Raises:
            UpstreamError: the connection broke, or a read timed out, while reading.
        """
        try:
            async for raw in self._r.content:
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(_os_text(exc)) from exc
        finally:
            self._r.release()

    def close(self) -> None:
        """Drop the connection (when the body will not be read)."""
        self._r.close()


OnUpstreamConnect = Callable[[str, float], None]
"""Called once per new upstream connection with its transport (``plaintext``/``tls``) and the seconds
from dialling to the end of the TLS handshake."""


def connect_timing(on_connect: OnUpstreamConnect) -> aiohttp.TraceConfig:
    """An aiohttp trace that reports each connection the pool opens (not one it reuses or fails to open)."""
    trace = aiohttp.TraceConfig()

    async def request_start(_session: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        ctx.transport = "tls" if params.url.scheme in ("https", "wss") else "plaintext"

    async def create_start(_session: Any, ctx: Any, _params: Any) -> None:
        ctx.dialled = time.perf_counter()

    async def create_end(_session: Any, ctx: Any, _params: Any) -> None:
        on_connect(getattr(ctx, "transport", "plaintext"), time.perf_counter() - ctx.dialled)

    trace.on_request_start.append(request_start)
    trace.on_connection_create_start.append(create_start)
    trace.on_connection_create_end.append(create_end)
    trace.freeze()
    return trace


class UpstreamClient:
    """One proxy's connection pool to every upstream (created lazily inside the running loop).

    Args:
        connect_timeout: seconds to open a connection.
        on_connect: told of each connection opened (the proxy's ``upstream_connect_duration``).
    """

    def __init__(self, connect_timeout: float = 10.0, on_connect: OnUpstreamConnect | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._on_connect = on_connect
        self._session: aiohttp.ClientSession | None = None

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=30, ssl=_TLS),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                auto_decompress=False, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                trace_configs=[connect_timing(self._on_connect)] if self._on_connect else None,
            )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None = None,
        *,
        decompress: bool = False,
        read_timeout: float | None = None,
        timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send a request and return once the response headers are in.

        Args:
            decompress: undo the upstream's content encoding.
            read_timeout: seconds the upstream may stay silent, waiting for the headers or
                between chunks of the body (default: no limit).
            timeout: seconds for the whole exchange, body included (default: no limit).

        Raises:
            UpstreamTimeout: connecting, or waiting for the headers, took too long.
            UpstreamError: the connection failed.
        """
        per_call: dict[str, Any] = {}
        if read_timeout is not None or timeout is not None:
            per_call["timeout"] = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout,
                                                        sock_read=read_timeout)
        try:
            response = await self._get().request(
                method, url, headers=list(headers), data=body, allow_redirects=False,
                auto_decompress=decompress, **per_call,
            )
        except (TimeoutError, aiohttp.ConnectionTimeoutError) as exc:
            raise UpstreamTimeout("upstream call timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(_os_text(exc)) from exc
        return UpstreamResponse(response)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
