"""Serving an ASGI app on a socket inside the sandbox process.

The sandbox runs many servers in one asyncio process, so this wraps uvicorn with: the
socket bound up front (a taken port is an ``OSError`` the caller can report, never a
silently different port), no signal handling (the sandbox owns signals), no changes
to the process's logging configuration, and the limits a real server has so that one
client cannot starve the others (they share one process and its file descriptors):

* at most :data:`MAX_CONNECTIONS` open connections per listener; the next one is answered
  ``503`` with the reason and closed at once, so it costs no descriptor;
* a request's head must arrive within :data:`HEADER_TIMEOUT` seconds of the connection
  opening (or of its first byte on a kept-alive connection): slow or silent clients are
  disconnected;
* an idle keep-alive connection is closed after :data:`IDLE_TIMEOUT` seconds;
* a request line that is not HTTP/1.0 or HTTP/1.1 is answered ``505``.

Example:
    >>> server = await serve_asgi(app, "127.0.0.1", 8443)   # doctest: +SKIP
    >>> await server.stop()                                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HEADER_TIMEOUT",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS",
    "ASGIApp",
    "BoundServer",
    "OnClose",
    "OnConnect",
    "bind_socket",
    "guarded_protocol",
    "os_error_text",
    "serve_asgi",
]

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]
OnClose = Callable[[int, int], None]
"""Called once when an accepted connection closes, with the bytes ``(sent, received)`` on it."""
OnConnect = Callable[[], "OnClose | None"]
"""Called for every accepted connection; may return an :data:`OnClose` for its byte counts."""

MAX_CONNECTIONS = 1000
"""Open connections one listener accepts before it answers 503 (like a proxy's connection limit)."""
HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a complete request head (hyper's ``header_read_timeout``)."""
IDLE_TIMEOUT = 30
"""Seconds an idle keep-alive connection stays open."""


def _refusal(status: str, text: str) -> bytes:
    body = text.encode() + b"\n"
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


def guarded_protocol(*, max_connections: int = MAX_CONNECTIONS, header_timeout: float = HEADER_TIMEOUT,
                     on_connect: OnConnect | None = None) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a connection cap, a request-head deadline and HTTP/1.x only.

    Args:
        max_connections: open connections this listener keeps; the next is answered 503.
        header_timeout: seconds to receive a complete request head.
        on_connect: called for every connection accepted under the cap (connection metrics); what it
            returns, if not None, is called with the bytes sent and received when the connection closes.
    """
    full = _refusal("503 Service Unavailable",
                    f"too many open connections to this listener (limit {max_connections}); "
                    "close idle connections and retry")
    bad_version = _refusal("505 HTTP Version Not Supported", "unsupported protocol version")

    class GuardedProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _on_close: OnClose | None = None

        def connection_made(self, transport):
            if len(self.server_state.connections) >= max_connections:
                self.transport = transport
                transport.write(full)
                transport.close()
                self._refused = True
                return
            self._refused = False
            self._on_close = on_connect() if on_connect is not None else None
            self._sent = self._received = 0
            if self._on_close is not None:
                write = transport.write

                def counting_write(data: bytes | bytearray | memoryview) -> None:
                    self._sent += len(data)
                    write(data)

                transport.write = counting_write
            super().connection_made(transport)
            next_event = self.conn.next_event

            def checked_next_event():
                event = next_event()
                if isinstance(event, h11.Request) and event.http_version not in (b"1.0", b"1.1"):
                    self.transport.write(bad_version)
                    self.transport.close()
                    return h11.NEED_DATA
                return event

            self.conn.next_event = checked_next_event  # type: ignore[method-assign]  # h11 has no hook for this check
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._received += len(data)
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_timer()  # the head is complete
            elif self._head_timer is None and not self.transport.is_closing():
                self._arm_head_timer()  # the first bytes of a later request on a kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._disarm_head_timer()
            super().connection_lost(exc)
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close(self._sent, self._received)

        def eof_received(self) -> None:
            if not self._refused:
                super().eof_received()

    return GuardedProtocol


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def os_error_text(exc: OSError) -> str:
    """An OS error as agentgateway (Rust) prints it: ``Address already in use (os error 98)``."""
    code = exc.errno or errno.EADDRINUSE
    return f"{os.strerror(code)} (os error {code})"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port``.

    Raises:
        OSError: the address cannot be bound (taken, or not a local address).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class BoundServer:
    """One uvicorn server on an already-bound socket.

    Args:
        app: the ASGI app.
        sock: from :func:`bind_socket`; closed by :meth:`stop`.
        on_connect: called for every accepted connection (connection metrics); see :func:`guarded_protocol`.
        max_connections: open connections kept (see :data:`MAX_CONNECTIONS`).
        header_timeout: seconds for a request head (see :data:`HEADER_TIMEOUT`).
        idle_timeout: seconds an idle keep-alive connection stays open.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, on_connect: OnConnect | None = None, *,
                 max_connections: int = MAX_CONNECTIONS, header_timeout: float = HEADER_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        protocol: Any = guarded_protocol(max_connections=max_connections, header_timeout=header_timeout,
                                         on_connect=on_connect)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, log_config=None, http=protocol,
            server_header=False, timeout_graceful_shutdown=1, timeout_keep_alive=idle_timeout, backlog=2048,  # type: ignore[arg-type]  # uvicorn annotates int; fractions work (a timer)
            interface="asgi3", proxy_headers=False,
        )
        self.server = _QuietServer(config)
        self.sock = sock
        self.task: asyncio.Task | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually bound."""
        host, port = self.sock.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Start serving; returns once the server accepts connections.

        Raises:
            RuntimeError: the server stopped or did not start within 10 s.
        """
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        deadline = time.monotonic() + 10
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 10s")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (1 s grace) and close the socket."""
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()


async def serve_asgi(app: ASGIApp, host: str, port: int, on_connect: OnConnect | None = None,
                     **limits: Any) -> BoundServer:
    """Bind ``host:port`` and serve ``app`` there (port 0 picks a free port).

    ``limits`` are :class:`BoundServer`'s keyword arguments (``max_connections``, ...).

    Raises:
        OSError: the address cannot be bound.
    """
    server = BoundServer(app, bind_socket(host, port), on_connect, **limits)
    await server.start()
    return server
