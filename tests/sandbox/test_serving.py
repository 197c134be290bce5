"""The sandbox's servers hold their own under connection floods: a real uvicorn server on
loopback (in a thread with its own event loop), raw sockets and httpx as clients."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from agwlab.sandbox import serving
from agwlab.sandbox.serving import BoundServer, bind_socket
from labtest import poll


async def _hello(scope: dict, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


class Running:
    """A :class:`BoundServer` on its own loop thread."""

    def __init__(self, **limits: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = BoundServer(_hello, bind_socket("127.0.0.1", 0), **limits)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        host, port = self.server.address
        self.addr = (host, port)
        self.url = f"http://{host}:{port}/"

    def connect(self) -> socket.socket:
        return socket.create_connection(self.addr, timeout=5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    server = Running(**getattr(request, "param", {}))
    yield server
    server.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (recv sees EOF or a reset)."""
    sock.settimeout(0.05)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_every_server_has_limits_by_default() -> None:
    server = BoundServer(_hello, bind_socket("127.0.0.1", 0))
    try:
        config = server.server.config
        assert config.timeout_keep_alive == serving.IDLE_TIMEOUT
    finally:
        server.sock.close()


@pytest.mark.parametrize("running", [{"max_connections": 20}], indirect=True)
def test_connections_over_the_cap_get_a_503_and_the_listener_recovers(running: Running) -> None:
    with ExitStack() as held:
        for _ in range(20):
            held.enter_context(running.connect())
        poll(lambda: len(running.server.server.server_state.connections) == 20, what="20 connections held")
        refused = []
        for _ in range(30):  # a flood beyond the cap costs the server nothing: each is answered and closed
            with running.connect() as extra:
                extra.settimeout(5)
                data = b""
                while chunk := extra.recv(4096):
                    data += chunk
                refused.append(data)
        assert all(r.startswith(b"HTTP/1.1 503 ") and b"too many open connections" in r for r in refused), refused[0]
        assert len(running.server.server.server_state.connections) == 20
    # the held connections closed: the listener answers again
    assert poll(lambda: httpx.get(running.url, timeout=2).text == "hello", what="an answer after the flood")


@pytest.mark.parametrize("running", [{"header_timeout": 0.5}], indirect=True)
def test_slow_and_silent_clients_are_disconnected(running: Running) -> None:
    silent = running.connect()
    slow = running.connect()
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
    started = time.monotonic()
    assert poll(lambda: closed_by_server(silent) and closed_by_server(slow), timeout=10,
                what="the server to drop the silent and the slow client")
    assert time.monotonic() - started < 5
    silent.close()
    slow.close()
    # a prompt client on a kept-alive connection is unaffected by the head deadline
    with httpx.Client() as client:
        assert client.get(running.url).text == "hello"
        assert client.get(running.url).text == "hello"


@pytest.mark.parametrize("running", [{"idle_timeout": 0.5}], indirect=True)
def test_idle_keep_alive_connections_are_closed(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        assert poll(lambda: closed_by_server(sock), timeout=10, what="the idle connection to be closed")


def test_http_versions_other_than_1x_are_refused(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 505 "), answer
    assert httpx.get(running.url, timeout=5).status_code == 200
