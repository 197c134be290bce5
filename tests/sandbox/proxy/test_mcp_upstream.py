"""MCP upstream sessions over the proxy's one pooled client: both transports, the Host the
upstream sees, and the reasons a failed exchange gives (v1.4.1's ``error sending request for
url (...)``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agwlab.sandbox.proxy.config import MCPTarget
from agwlab.sandbox.proxy.mcp_upstream import SSEUpstream, StreamableUpstream, UpstreamError
from agwlab.sandbox.proxy.upstream import UpstreamClient
from agwlab.sandbox.serving import serve_asgi
from harness import free_port

HOST = "127.77.2.2"


def _app(hosts: list[str], hang: asyncio.Event) -> Starlette:
    """A tiny MCP-shaped upstream: Streamable HTTP at /mcp (SSE-framed answers), /hang never
    answers after its headers, and the legacy SSE transport at /sse + /messages."""
    sse_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def mcp(request: Request) -> Response:
        hosts.append(request.headers["host"])
        message = json.loads(await request.body())
        if "id" not in message:
            return Response(status_code=202)

        async def events() -> AsyncIterator[bytes]:
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"echo": message["method"]}}
            yield f"event: message\ndata: {json.dumps(reply)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"mcp-session-id": "s1"})

    async def hang_forever(_request: Request) -> Response:
        async def silent() -> AsyncIterator[bytes]:
            await hang.wait()
            yield b""

        return StreamingResponse(silent(), media_type="text/event-stream")

    async def sse(_request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b"event: endpoint\ndata: /messages?session=1\n\n"
            while True:
                reply = await sse_out.get()
                yield f"event: message\ndata: {json.dumps(reply)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def messages(request: Request) -> Response:
        message = json.loads(await request.body())
        assert request.query_params["session"] == "1"
        await sse_out.put({"jsonrpc": "2.0", "id": message["id"], "result": {"via": "sse"}})
        return JSONResponse({}, status_code=202)

    return Starlette(routes=[Route("/mcp", mcp, methods=["POST", "DELETE"]),
                             Route("/hang", hang_forever, methods=["POST"]),
                             Route("/sse", sse), Route("/messages", messages, methods=["POST"])])


def test_both_transports_carry_requests_and_name_what_failed() -> None:
    async def scenario() -> None:
        hosts: list[str] = []
        hang = asyncio.Event()
        server = await serve_asgi(_app(hosts, hang), HOST, 0)
        base = f"http://{HOST}:{server.address[1]}"
        http = UpstreamClient()
        try:
            target = MCPTarget("t", "StreamableHTTP", f"{base}/mcp", "mcp-target:80")
            streamable = StreamableUpstream(target, http)
            answer = await streamable.request({"jsonrpc": "2.0", "id": "client-7", "method": "tools/list"})
            assert answer == {"jsonrpc": "2.0", "id": "client-7", "result": {"echo": "tools/list"}}
            assert streamable.session_id == "s1" and hosts == ["mcp-target:80"]
            await streamable.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

            sse = SSEUpstream(MCPTarget("s", "SSE", f"{base}/sse", "s:80"), http)
            await sse.connect()
            assert sse.endpoint == f"{base}/messages?session=1"
            answer = await sse.request({"jsonrpc": "2.0", "id": 3, "method": "ping"}, timeout=10)
            assert answer == {"jsonrpc": "2.0", "id": 3, "result": {"via": "sse"}}
            await sse.close()

            silent = StreamableUpstream(MCPTarget("h", "StreamableHTTP", f"{base}/hang", "h:80"), http)
            timed_out = rf"^error sending request for url \({base}/hang\): timed out$"
            with pytest.raises(UpstreamError, match=timed_out):
                await silent.request({"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=0.5)

            closed = f"http://{HOST}:{free_port(HOST)}/mcp"
            refused = StreamableUpstream(MCPTarget("c", "StreamableHTTP", closed, "c:80"), http)
            refusal = rf"^error sending request for url \({closed}\): connection refused$"
            with pytest.raises(UpstreamError, match=refusal):
                await refused.request({"jsonrpc": "2.0", "id": 1, "method": "ping"})
            with pytest.raises(UpstreamError, match="connection refused"):
                await SSEUpstream(MCPTarget("c", "SSE", closed, "c:80"), http).connect()
            await streamable.close()
        finally:
            hang.set()
            await http.close()
            await server.stop()

    asyncio.run(scenario())
