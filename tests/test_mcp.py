"""agwlab's notebook MCP client against a real proxy with the real fetcher behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from agwlab import mcp
from agwlab.sandbox.proxy import ProxyWorkload
from agwlab.sandbox.proxy.config import MCPBackend
from agwlab.sandbox.proxy.mcp import shutdown
from agwlab.sandbox.workloads.lab_website import LabWebsiteWorkload
from agwlab.sandbox.workloads.website_fetcher import WebsiteFetcherWorkload
from harness import LoopThread, free_port, make_pod, mcp_gateway, mcp_rule, sse_target

GW_IP = "127.212.0.1"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("mcp-client")
    loop = LoopThread()
    site_port, fetcher_port = free_port(), free_port()
    site, fetcher = LabWebsiteWorkload(), WebsiteFetcherWorkload()
    loop.run(site.start(make_pod(tmp, "site", port=site_port)))
    loop.run(fetcher.start(make_pod(tmp, "fetcher", port=fetcher_port)))
    backend = MCPBackend(key="default/mcp-backend", targets=(sse_target("mcp-target", fetcher_port),))
    port = free_port(GW_IP)
    config = mcp_gateway(GW_IP, port, (mcp_rule("/mcp", backend), mcp_rule("/sse", backend, "Exact")))
    proxy = ProxyWorkload()
    loop.run(proxy.start(make_pod(tmp, "proxy", "127.212.1.1", port=0, env={"GATEWAY": config.key})))
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
