"""MCP sessions are bounded: at the cap the gateway answers a clear 503 at once (never hangs),
idle sessions make room and release their upstream sessions, and /metrics shows the count.

The real proxy in front of a real MCP server (the official SDK's streamable HTTP app).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from agwlab.sandbox.proxy import ProxyWorkload
from agwlab.sandbox.proxy.config import MCPBackend, MCPTarget
from agwlab.sandbox.proxy.mcp import gateway_for, shutdown
from agwlab.sandbox.proxy.mcp_session import SessionStore
from harness import LoopThread, free_port, make_pod, mcp_gateway, mcp_rule
from labtest import poll

GW_IP = "127.212.0.1"
PROXY_POD_IP = "127.212.1.1"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


class Upstream:
    """The MCP server behind the gateway, counting the sessions it has open."""

    def __init__(self) -> None:
        server = MCPServer("echo")

        @server.tool(description="Echo the text back")
        def echo(text: str) -> str:
            return text

        self.app = server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.open: set[str] = set()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sid = dict(scope["headers"]).get(b"mcp-session-id", b"").decode()
            if scope["method"] == "DELETE" and sid:
                self.open.discard(sid)

            async def recording_send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    new = dict(message.get("headers") or []).get(b"mcp-session-id")
                    if new and not sid:  # a session the server just opened
                        self.open.add(new.decode())
                await send(message)

            return await self.app(scope, receive, recording_send)
        return await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mcp-limits")
    loop = LoopThread()
    upstream = Upstream()
    port = free_port()

    async def serve() -> tuple[uvicorn.Server, asyncio.Task[None]]:
        server = uvicorn.Server(uvicorn.Config(upstream, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        return server, task

    server, task = loop.run(serve())
    target = MCPTarget(name="echo", protocol="StreamableHTTP", url=f"http://127.0.0.1:{port}/mcp",
                       host_header="echo.default.svc.cluster.local:80")
    gw_port = free_port(GW_IP)
    config = mcp_gateway(GW_IP, gw_port, (mcp_rule("/mcp", MCPBackend(key="default/echo", targets=(target,))),))
    proxy = ProxyWorkload()
    loop.run(proxy.start(make_pod(tmp, "agentgateway-route", PROXY_POD_IP, port=0, env={"GATEWAY": config.key})))
    loop.run(proxy.apply(config))
    yield {"gw": f"http://{GW_IP}:{gw_port}/mcp", "proxy": proxy, "upstream": upstream, "loop": loop}
    loop.run(shutdown(proxy.state))
    loop.run(proxy.stop())

    async def stop_upstream() -> None:
        server.should_exit = True
        await task

    loop.run(stop_upstream())
    loop.close()


def initialize(client: httpx.Client, url: str) -> httpx.Response:
    return client.post(url, json=INIT, headers=HEADERS, timeout=10)


def sessions_metric(proxy: ProxyWorkload) -> float | None:
    text = httpx.get(f"http://{PROXY_POD_IP}:15020/metrics", timeout=5).text
    line = next((ln for ln in text.splitlines() if ln.startswith("agwlab_sandbox_mcp_sessions ")), None)
    return float(line.split()[1]) if line else None


def test_the_cap_answers_503_at_once_and_idle_sessions_make_room(lab: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SessionStore, "MAX_SESSIONS", 5)
    monkeypatch.setattr(SessionStore, "EVICT_IDLE_AFTER", 3600.0)
    store = gateway_for(lab["proxy"].state).sessions
    with httpx.Client() as client:
        ids = []
        for _ in range(5 - len(store)):
            resp = initialize(client, lab["gw"])
            assert resp.status_code == 200, resp.text
            ids.append(resp.headers["mcp-session-id"])
        assert sessions_metric(lab["proxy"]) == 5
        full = initialize(client, lab["gw"])  # answered at once, never queued
        assert full.status_code == 503 and "too many open sessions (limit 5)" in full.text
        assert "DELETE" in full.text
        upstream_before = len(lab["upstream"].open)

        # sessions idle long enough make room; the one closed releases its upstream session
        monkeypatch.setattr(SessionStore, "EVICT_IDLE_AFTER", 0.2)
        fresh = poll(lambda: (lambda r: r if r.status_code == 200 else None)(initialize(client, lab["gw"])),
                     timeout=10, what="an idle session to make room")
        assert fresh.headers["mcp-session-id"] not in ids
        assert sessions_metric(lab["proxy"]) == 5
        poll(lambda: len(lab["upstream"].open) == upstream_before, timeout=10,
             what="the evicted session's upstream session to be closed")
        evicted = [i for i in ids if store.get(i) is None]
        assert len(evicted) == 1
        gone = client.post(lab["gw"], json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                           headers={**HEADERS, "mcp-session-id": evicted[0]}, timeout=10)
        assert gone.status_code == 404 and gone.text == "mcp: session not found"


def test_concurrent_initializes_never_overshoot_the_cap(lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = gateway_for(lab["proxy"].state).sessions
    lab["loop"].run(store.close_all())
    monkeypatch.setattr(SessionStore, "MAX_SESSIONS", 5)
    monkeypatch.setattr(SessionStore, "EVICT_IDLE_AFTER", 3600.0)

    def one(_: int) -> int:
        with httpx.Client() as client:
            return initialize(client, lab["gw"]).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = sorted(pool.map(one, range(12)))
    assert codes == [200] * 5 + [503] * 7, codes
    assert len(store) == 5 and sessions_metric(lab["proxy"]) == 5
