"""The gateway's side of one MCP target: an upstream session over SSE or Streamable HTTP.

An :class:`Upstream` carries arbitrary JSON-RPC messages to one target and back, which
is what a proxy needs (the SDK's client transports want to own the session instead).
Request ids are rewritten to the upstream's own counter, so requests the gateway sends
on its own (fan-out, lookups) never collide with the client's ids; responses get the
caller's id back.

* SSE (``protocol: SSE``): ``GET <url>`` with ``Accept: text/event-stream``, wait for
  ``event: endpoint``, ``POST`` each message there, read answers from the stream.
* Streamable HTTP: ``POST <url>`` accepting JSON and SSE, keep ``mcp-session-id``,
  read a JSON or SSE-framed answer, ``DELETE`` on close.

Both go through the proxy's one pooled client (:class:`~.upstream.UpstreamClient`), so MCP
upstream connections are pooled, timed and verified like those of AI and HTTP backends.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
from typing import Any
from urllib.parse import urljoin

import aiohttp

from ...wire.jsonrpc import is_response
from ...wire.sse import SSEEvent, aiter_sse
from .config import MCPTarget
from .upstream import UpstreamClient, UpstreamError, UpstreamResponse

__all__ = ["SSEUpstream", "StreamableUpstream", "Upstream", "UpstreamError", "open_upstream"]

CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 120.0


# UpstreamError (from .upstream, the proxy's one class for it): the target could not be
# reached or broke the session. Its text is the reason only; MCPSession adds which target.


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(exc))
        exc = nxt
    return exc


def _describe(error: UpstreamError, url: str) -> str:
    """A short, true reason for a failed exchange (from the client error behind ``error``)."""
    exc: BaseException = error.__cause__ or error
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        reason = "connection timed out"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        root = _root_cause(exc)
        if isinstance(root, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(root, OSError) and root.strerror:
            reason = root.strerror.lower()
        else:
            reason = str(exc) or "connection failed"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                          aiohttp.ClientOSError)):
        reason = "connection closed by the upstream"
    else:
        reason = str(exc) or type(exc).__name__
    return f"error sending request for url ({url}): {reason}"


async def _exchange(
    http: UpstreamClient, method: str, url: str, headers: dict[str, str], body: str | None, timeout: float
) -> tuple[int, bytes]:
    """One whole request and answer within ``timeout`` seconds.

    Raises:
        UpstreamError: it could not be sent or its answer not read (the reason says which).
    """
    try:
        response = await http.send(method, url, headers.items(), body.encode() if body is not None else None,
                                   decompress=True, timeout=timeout)
        return response.status, await response.read()
    except UpstreamError as e:
        raise UpstreamError(_describe(e, url)) from None


class Upstream(abc.ABC):
    """One MCP session with one target. Subclasses implement the transport."""

    def __init__(self, target: MCPTarget, http: UpstreamClient) -> None:
        self.target = target
        self.http = http
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # server-initiated messages
        self.closed = False
        self.protocol_version: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        if self.target.url is None:
            raise UpstreamError(self.target.error or "the target has no address")
        return self.target.url

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"host": self.target.host_header} if self.target.host_header else {}
        headers.update(extra or {})
        return headers

    async def connect(self, headers: dict[str, str] | None = None) -> None:
        """Open the transport (a no-op for Streamable HTTP).

        Raises:
            UpstreamError: the target is unresolved or unreachable.
        """
        if self.target.error:
            raise UpstreamError(self.target.error)

    @abc.abstractmethod
    async def request(
        self, message: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request and return its response, carrying ``message``'s id.

        Raises:
            UpstreamError: the request could not be delivered or no answer came.
        """

    @abc.abstractmethod
    async def send(self, message: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Deliver a notification or a response to a server-initiated request.

        Raises:
            UpstreamError: the message could not be delivered.
        """

    async def close(self) -> None:
        self.closed = True
        self._fail_pending("session closed")

    # -- helpers -------------------------------------------------------------------------

    def _new_id(self) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        upstream_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[json.dumps(upstream_id)] = future
        return upstream_id, future

    def _deliver(self, message: Any) -> None:
        """Route one message from the upstream: a response to its waiter, else to ``incoming``."""
        if not isinstance(message, dict):
            return
        if is_response(message):
            future = self._pending.pop(json.dumps(message.get("id")), None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        self.incoming.put_nowait(message)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(UpstreamError(reason))
        self._pending.clear()

    async def _await(
        self, future: asyncio.Future[dict[str, Any]], key: int, original_id: Any, timeout: float
    ) -> dict[str, Any]:
        try:
            response = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise UpstreamError(f"no response within {timeout:g}s") from None
        finally:
            self._pending.pop(json.dumps(key), None)
        return {**response, "id": original_id}


class SSEUpstream(Upstream):
    """The legacy SSE transport: one long GET stream plus a POST endpoint."""

    def __init__(self, target: MCPTarget, http: UpstreamClient) -> None:
        super().__init__(target, http)
        self.endpoint: str | None = None
        self._closed_reason = "session closed"
        self._response: UpstreamResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, headers: dict[str, str] | None = None) -> None:
        await super().connect(headers)
        url = self.url
        try:
            response = await self.http.send(
                "GET", url, self._headers({"accept": "text/event-stream", **(headers or {})}).items(),
                decompress=True,
            )
        except UpstreamError as e:
            raise UpstreamError(_describe(e, url)) from None
        if response.status != 200:
            response.close()
            raise UpstreamError(f"{url} answered {response.status} to the SSE connect")
        self._response = response
        endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(response, endpoint), name=f"mcp-sse {self.target.name}")
        try:
            path = await asyncio.wait_for(endpoint, CONNECT_TIMEOUT)
        except (TimeoutError, UpstreamError) as e:
            await self.close()
            raise UpstreamError(
                str(e) or f"{url} sent no endpoint event within {CONNECT_TIMEOUT:g}s"
            ) from None
        self.endpoint = urljoin(url, path)

    async def _read(self, response: UpstreamResponse, endpoint: asyncio.Future[str]) -> None:
        reason = "closed the SSE stream"
        try:
            async for event in aiter_sse(response.iter_lines()):
                self._on_event(event, endpoint)
        except UpstreamError:
            reason = "connection lost"
        except asyncio.CancelledError:
            reason = "session closed"
            raise
        finally:
            self.closed = True
            self._closed_reason = reason
            if not endpoint.done():
                endpoint.set_exception(UpstreamError(f"{self.url}: stream ended before the endpoint event"))
            self._fail_pending(reason)
            response.close()

    def _on_event(self, event: SSEEvent, endpoint: asyncio.Future[str]) -> None:
        if event.event == "endpoint":
            if not endpoint.done():
                endpoint.set_result(event.data.strip())
            return
        if event.event == "message":
            with contextlib.suppress(ValueError):  # not JSON: nothing a client could use
                self._deliver(event.json())

    async def _post(self, message: dict[str, Any], headers: dict[str, str] | None) -> None:
        if self.closed or self.endpoint is None:
            raise UpstreamError(self._closed_reason)
        status, body = await _exchange(
            self.http, "POST", self.endpoint,
            self._headers({"content-type": "application/json", **(headers or {})}), json.dumps(message),
            CONNECT_TIMEOUT,
        )
        if status >= 300:
            raise UpstreamError(
                f"{self.endpoint} answered {status}: {body.decode(errors='replace').strip()[:200]}"
            )

    async def request(
        self, message: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> dict[str, Any]:
        key, future = self._new_id()
        try:
            await self._post({**message, "id": key}, headers)
        except UpstreamError:
            self._pending.pop(json.dumps(key), None)
            raise
        return await self._await(future, key, message.get("id"), timeout)

    async def send(self, message: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        await self._post(message, headers)

    async def close(self) -> None:
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._response is not None:
            self._response.close()


class StreamableUpstream(Upstream):
    """Streamable HTTP: one POST per message, the session named by ``mcp-session-id``."""

    def __init__(self, target: MCPTarget, http: UpstreamClient) -> None:
        super().__init__(target, http)
        self.session_id: str | None = None

    def _stream_headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version:
            headers["mcp-protocol-version"] = self.protocol_version
        return self._headers({**headers, **(extra or {})})

    async def request(
        self, message: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> dict[str, Any]:
        if self.closed:
            raise UpstreamError("session closed")
        key, future = self._new_id()
        url = self.url
        try:
            response = await self.http.send(
                "POST", url, self._stream_headers(headers).items(),
                json.dumps({**message, "id": key}).encode(),
                decompress=True, read_timeout=timeout,
            )
        except UpstreamError as e:
            self._pending.pop(json.dumps(key), None)
            raise UpstreamError(_describe(e, url)) from None
        try:
            if response.header("mcp-session-id"):
                self.session_id = response.header("mcp-session-id")
            content_type = response.header("content-type") or ""
            if response.status == 404 and self.session_id:
                raise UpstreamError("the upstream no longer knows this session (did the MCP server restart?)")
            if content_type.startswith("text/event-stream") and response.status < 300:
                async for event in aiter_sse(response.iter_lines()):
                    if event.event == "message" and event.data:
                        with contextlib.suppress(ValueError):
                            self._deliver(event.json())
                    if future.done():
                        break
            else:
                body = await response.read()
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise UpstreamError(
                        f"{url} answered {response.status}: {body[:200].decode(errors='replace')}"
                    ) from None
                for item in parsed if isinstance(parsed, list) else [parsed]:
                    self._deliver(item)
        except UpstreamError as e:
            self._pending.pop(json.dumps(key), None)
            if e.__cause__ is not None:  # the client's own error: say what happened to the exchange
                raise UpstreamError(_describe(e, url)) from None
            raise
        finally:
            response.close()
        if not future.done():
            self._pending.pop(json.dumps(key), None)
            raise UpstreamError(f"{url} answered {response.status} without a response to the request")
        return {**future.result(), "id": message.get("id")}

    async def send(self, message: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        url = self.url
        status, body = await _exchange(self.http, "POST", url, self._stream_headers(headers),
                                       json.dumps(message), CONNECT_TIMEOUT)
        if status >= 300:
            raise UpstreamError(f"{url} answered {status}: {body.decode(errors='replace').strip()[:200]}")

    async def close(self) -> None:
        was_open = not self.closed
        await super().close()
        if was_open and self.session_id and self.target.url:
            with contextlib.suppress(UpstreamError):
                await _exchange(self.http, "DELETE", self.target.url, self._stream_headers(None), None, 2.0)


def open_upstream(target: MCPTarget, http: UpstreamClient) -> Upstream:
    """The right :class:`Upstream` for ``target.protocol`` (not yet connected)."""
    return SSEUpstream(target, http) if target.protocol == "SSE" else StreamableUpstream(target, http)
