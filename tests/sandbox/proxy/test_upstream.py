"""The proxy's upstream client reports each connection it opens, as v1.4.1's connector observes
``upstream_connect_duration`` (``crates/agentgateway/src/client/mod.rs``, ``Connector::connect``):
once per new connection, none for a pooled one reused or a connect that failed."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from agwlab.sandbox.proxy.upstream import UpstreamClient, UpstreamError
from agwlab.sandbox.serving import serve_asgi
from harness import free_port

HOST = "127.77.2.1"


def _app() -> Starlette:
    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")
    return Starlette(routes=[Route("/{p:path}", hello)])


def test_each_opened_connection_is_reported_once() -> None:
    async def scenario() -> list[tuple[str, float]]:
        server = await serve_asgi(_app(), HOST, 0)
        url = f"http://{HOST}:{server.address[1]}/x"
        closed_port = free_port(HOST)
        seen: list[tuple[str, float]] = []
        upstream = UpstreamClient(on_connect=lambda t, s: seen.append((t, s)))
        try:
            for _ in range(2):                                   # the second request reuses the connection
                response = await upstream.send("GET", url, [])
                assert await response.read() == b"hello"
            with contextlib.suppress(UpstreamError):  # nothing listens: no connection, no report
                await upstream.send("GET", f"http://{HOST}:{closed_port}/", [])
        finally:
            await upstream.close()
            await server.stop()
        return seen

    seen = asyncio.run(scenario())
    assert [t for t, _ in seen] == ["plaintext"]
    assert 0 <= seen[0][1] < 5
