"""Serving an ASGI app on a socket inside the sandbox process.

The sandbox runs many servers in one asyncio process, so this wraps uvicorn with: the
socket bound up front (a taken port is an ``OSError`` the caller can report, never a
silently different port), no signal handling (the sandbox owns signals) and no changes
to the process's logging configuration.

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

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ASGIApp", "BoundServer", "bind_socket", "os_error_text", "serve_asgi"]

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
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
        on_connect: called for every accepted connection (connection metrics).
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, on_connect: Callable[[], None] | None = None) -> None:
        protocol: Any = H11Protocol
        if on_connect is not None:
            class CountingProtocol(H11Protocol):
                def connection_made(self, transport):  # type: ignore[override]
                    on_connect()
                    super().connection_made(transport)

            protocol = CountingProtocol
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, log_config=None, http=protocol,
            server_header=False, timeout_graceful_shutdown=1, timeout_keep_alive=30, backlog=2048,
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


async def serve_asgi(app: ASGIApp, host: str, port: int, on_connect: Callable[[], None] | None = None) -> BoundServer:
    """Bind ``host:port`` and serve ``app`` there (port 0 picks a free port).

    Raises:
        OSError: the address cannot be bound.
    """
    server = BoundServer(app, bind_socket(host, port), on_connect)
    await server.start()
    return server
