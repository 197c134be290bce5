"""agwlab's notebook MCP client against a real proxy with the real fetcher behind it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agwlab import mcp
from agwlab.sandbox.podlogs import PodLog
from agwlab.sandbox.proxy import ProxyWorkload
from agwlab.sandbox.proxy.config import (
    BackendRef,
    GatewayConfig,
    Listener,
    MCPBackend,
    MCPTarget,
    PathMatch,
    Route,
    RouteMatch,
    Rule,
)
from agwlab.sandbox.proxy.mcp import shutdown
from agwlab.sandbox.runtime import Endpoint, PodContext
from agwlab.sandbox.workloads.lab_website import LabWebsiteWorkload
from agwlab.sandbox.workloads.website_fetcher import WebsiteFetcherWorkload

GW_IP = "127.212.0.1"


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class NoCluster:
    def resolve(self, host: str, port: int, *, namespace: str | None = None) -> list[Endpoint]:
        return []

    def subscribe_gateway(self, key: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    def setting(self, name: str, default: str | None = None) -> str | None:
        return default


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pod_for(tmp: Path, name: str, ip: str, port: int, env: dict[str, str] | None = None) -> PodContext:
    return PodContext(
        namespace="default",
        name=name,
        pod_ip=ip,
        labels={},
        image=name,
        env=env or {},
        ports=[{"containerPort": port}],
        args=[],
        log=PodLog(tmp / f"{name}.log"),
        cluster=NoCluster(),
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("mcp-client")
    loop = LoopThread()
    site_port, fetcher_port = free_port(), free_port()
    site, fetcher = LabWebsiteWorkload(), WebsiteFetcherWorkload()
    loop.run(site.start(pod_for(tmp, "site", "127.0.0.1", site_port)))
    loop.run(fetcher.start(pod_for(tmp, "fetcher", "127.0.0.1", fetcher_port)))
    target = MCPTarget(
        name="mcp-target",
        protocol="SSE",
        url=f"http://127.0.0.1:{fetcher_port}/sse",
        host_header="mcp-website-fetcher.default.svc.cluster.local:80",
    )
    backend = MCPBackend(key="default/mcp-backend", targets=(target,))
    rules = tuple(
        Rule(
            name=None,
            matches=(RouteMatch(path=PathMatch(kind, path)),),  # type: ignore[arg-type]
            backends=(BackendRef(backend),),
        )
        for kind, path in (("PathPrefix", "/mcp"), ("Exact", "/sse"))
    )
    port = free_port(GW_IP)
    config = GatewayConfig(
        namespace="agentgateway-system",
        name="agentgateway-route",
        class_name="agentgateway",
        address=GW_IP,
        listeners=(
            Listener(
                name="http",
                port=port,
                routes=(Route(namespace="default", name="mcp-route", hostnames=(), rules=rules),),
            ),
        ),
    )
    proxy = ProxyWorkload()
    loop.run(
        proxy.start(
            pod_for(tmp, "proxy", "127.212.1.1", 0, {"GATEWAY": "agentgateway-system/agentgateway-route"})
        )
    )
    loop.run(proxy.apply(config))
    yield {"url": f"http://{GW_IP}:{port}", "site": f"http://127.0.0.1:{site_port}"}
    loop.run(shutdown(proxy.state))
    loop.run(proxy.stop())
    loop.run(fetcher.stop())
    loop.run(site.stop())
    loop.close()


def test_session_walkthrough(gw: dict[str, str]) -> None:
    session = mcp.initialize(gw["url"] + "/mcp")
    assert session.server_name == "mcp-website-fetcher"
    assert session.session_id and session.protocol_version
    assert "tools" in session.capabilities
    assert session.exchange is not None and session.exchange.status == 200
    shown = str(session.exchange)
    assert shown.startswith("POST /mcp HTTP/1.1") and "HTTP/1.1 200 OK" in shown and "event: message" in shown
    assert session.session_id in session._repr_html_()

    notified = session.notify_initialized()
    assert notified.status == 202 and notified.response_body == ""

    tools = session.list_tools()
    assert tools.names == ["fetch"]
    assert "url: string (required)" in str(tools)
    assert "<td><code>fetch</code></td>" in tools._repr_html_()
    assert tools.exchange.request_headers["mcp-session-id"] == session.session_id

    page = session.call_tool("fetch", {"url": gw["site"] + "/mcp.html"})
    assert not page.is_error and "What an MCP server is" in page.text
    assert "<pre" in page._repr_html_() and str(page).startswith("fetch: ok")
    broken = session.call_tool("fetch", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert broken.is_error and "connection refused" in broken.text and "tool error" in broken._repr_html_()

    assert session.close().status == 202
    with pytest.raises(mcp.MCPError) as gone:
        session.list_tools()
    assert gone.value.status == 404 and "initialize again" in str(gone.value)


def test_one_shot_helpers(gw: dict[str, str]) -> None:
    assert mcp.list_tools(gw["url"] + "/mcp").names == ["fetch"]
    result = mcp.call_tool(gw["url"] + "/mcp", "fetch", {"url": gw["site"] + "/"})
    assert "agwlab" in result.text


def test_errors_say_what_to_do(gw: dict[str, str]) -> None:
    with pytest.raises(mcp.MCPError) as no_route:
        mcp.initialize(gw["url"] + "/nowhere")
    assert no_route.value.status == 404 and "no HTTPRoute matches this path" in str(no_route.value)

    with pytest.raises(mcp.MCPError) as refused:
        mcp.initialize(f"http://127.0.0.1:{free_port()}/mcp")
    assert "connection refused" in str(refused.value) and "kubectl get gateway" in str(refused.value)

    with pytest.raises(mcp.MCPError) as no_session:
        mcp.MCPSession(url=gw["url"] + "/mcp").list_tools()
    assert no_session.value.status == 400 and "initialize first" in str(no_session.value)

    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    wrong_accept = httpx.post(
        gw["url"] + "/mcp", json=message, headers={"Accept": "application/json"}, trust_env=False
    )
    assert (
        str(mcp.error_for(wrong_accept))
        == "HTTP 406: the Accept header must list both application/json and text/event-stream"
    )
    wrong_type = httpx.post(
        gw["url"] + "/mcp",
        content=json.dumps(message),
        trust_env=False,
        headers={"Accept": mcp.ACCEPT, "Content-Type": "text/plain"},
    )
    assert "Content-Type header must be application/json" in str(mcp.error_for(wrong_type))


def test_sse_handshake(gw: dict[str, str]) -> None:
    handshake = mcp.sse_handshake(gw["url"] + "/sse")
    assert handshake.endpoint.startswith("/sse?sessionId=")
    assert handshake.session_id and handshake.session_id in handshake.endpoint
    assert handshake.post_status == 202
    assert handshake.server_name == "mcp-website-fetcher"
    assert [e.event for e in handshake.events] == ["endpoint", "message"]
    assert "event: endpoint" in str(handshake) and "-> 202" in str(handshake)


def test_sse_handshake_on_a_non_sse_path_fails_clearly(gw: dict[str, str]) -> None:
    with pytest.raises(mcp.MCPError) as err:
        mcp.sse_handshake(gw["url"] + "/nowhere")
    assert "no HTTPRoute matches" in str(err.value)
