"""MCP through the proxy: the real ProxyWorkload, the real fetcher child process upstream,
an in-process Streamable HTTP MCP server as a second target, and the official SDK client."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from agwlab.sandbox.proxy import ProxyWorkload
from agwlab.sandbox.proxy.config import MCPBackend, MCPTarget, TracingConfig
from agwlab.sandbox.proxy.mcp import shutdown
from agwlab.sandbox.workloads.collector import create_http_app
from agwlab.sandbox.workloads.lab_website import LabWebsiteWorkload
from agwlab.sandbox.workloads.website_fetcher import WebsiteFetcherWorkload
from agwlab.wait import attempt
from agwlab.wire.sse import SSEParser
from harness import LoopThread, free_port, make_pod, mcp_gateway, mcp_rule, sse_target

GW_IP = "127.211.0.1"
PROXY_POD_IP = "127.211.1.1"
ACCEPT_BOTH = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def echo_app(seen_headers: list[dict[str, str]]) -> Any:
    server = MCPServer("echo-server", instructions="Echoes text back.")

    @server.tool(description="Echo the text back")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @server.tool(description="Log the text as a notification, then return it in capitals")
    async def shout(text: str, ctx: Context) -> str:
        await ctx.info(f"shouting {text}")
        return text.upper()

    app = server.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )

    async def recording(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen_headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    return recording


async def serve(app: Any, port: int, **config: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` with uvicorn on ``127.0.0.1:port``; returns once it accepts connections."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, **config)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mcp-proxy")
    loop = LoopThread()
    site_port, fetcher_port, fragile_port, echo_port = (free_port() for _ in range(4))
    site = LabWebsiteWorkload()
    loop.run(site.start(make_pod(tmp, "lab-website", port=site_port)))
    fetcher = WebsiteFetcherWorkload()
    loop.run(fetcher.start(make_pod(tmp, "fetcher", port=fetcher_port)))
    fragile_pod = make_pod(tmp, "fragile", port=fragile_port)
    fragile = WebsiteFetcherWorkload()
    loop.run(fragile.start(fragile_pod))
    echo_headers: list[dict[str, str]] = []
    echo_server, echo_task = loop.run(serve(echo_app(echo_headers), echo_port))

    # A real OTLP/HTTP receiver (the collector workload's) to see the proxy's spans.
    batches: list[Any] = []
    otlp_port = free_port()
    otlp_server, otlp_task = loop.run(serve(create_http_app(batches.append), otlp_port, lifespan="off"))

    async def stop_echo() -> None:
        echo_server.should_exit = otlp_server.should_exit = True
        await echo_task
        await otlp_task

    main = sse_target("mcp-target", fetcher_port)
    echo = MCPTarget(
        name="echo",
        protocol="StreamableHTTP",
        url=f"http://127.0.0.1:{echo_port}/mcp",
        host_header="echo.default.svc.cluster.local:80",
    )
    dead = MCPTarget(
        name="dead", protocol="SSE", url=f"http://127.0.0.1:{free_port()}/sse", host_header="dead:80"
    )
    unresolved = MCPTarget(
        name="gone",
        protocol="SSE",
        url=None,
        host_header="gone.default.svc.cluster.local:80",
        error="Service default/gone not found",
    )
    rules = (
        mcp_rule("/sse", MCPBackend(key="default/mcp-backend", targets=(main,)), "Exact"),
        mcp_rule("/mcp", MCPBackend(key="default/mcp-backend", targets=(main,))),
        mcp_rule("/multi", MCPBackend(key="default/multi", targets=(main, echo))),
        mcp_rule("/never", MCPBackend(key="default/never", targets=(main, echo), prefix_mode="Never")),
        mcp_rule("/always", MCPBackend(key="default/always", targets=(main,), prefix_mode="Always")),
        mcp_rule("/failopen", MCPBackend(key="default/fo", targets=(main, dead), failure_mode="FailOpen")),
        mcp_rule("/failclosed", MCPBackend(key="default/fc", targets=(main, dead))),
        mcp_rule("/unresolved", MCPBackend(key="default/gone", targets=(unresolved,))),
        mcp_rule("/stateless", MCPBackend(key="default/sl", targets=(main,), session_routing="Stateless")),
        mcp_rule(
            "/fragile", MCPBackend(key="default/fragile", targets=(sse_target("mcp-target", fragile_port),))
        ),
        mcp_rule("/echo", MCPBackend(key="default/echo", targets=(echo,))),
    )
    gw_port = free_port(GW_IP)
    config = mcp_gateway(
        GW_IP,
        gw_port,
        rules,
        # Requests with a traceparent are sampled; the others are not (no randomSampling).
        tracing=TracingConfig(endpoint=f"http://127.0.0.1:{otlp_port}", protocol="HTTP"),
    )
    proxy = ProxyWorkload()
    proxy_pod = make_pod(tmp, "agentgateway-route", PROXY_POD_IP, port=0, env={"GATEWAY": config.key})
    loop.run(proxy.start(proxy_pod))
    loop.run(proxy.apply(config))
    yield {
        "gw": f"http://{GW_IP}:{gw_port}",
        "site": f"http://127.0.0.1:{site_port}",
        "loop": loop,
        "proxy": proxy,
        "proxy_log": proxy_pod.log.path,
        "batches": batches,
        "fragile": fragile,
        "fragile_pod": fragile_pod,
        "echo_headers": echo_headers,
    }
    loop.run(shutdown(proxy.state))
    loop.run(proxy.stop())
    loop.run(stop_echo())
    for workload in (fetcher, site):
        loop.run(workload.stop())
    if fragile.alive():
        loop.run(fragile.stop())
    loop.close()


# --- helpers ----------------------------------------------------------------------------


def rpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        message["id"] = id_
    if params is not None:
        message["params"] = params
    return message


INIT = rpc(
    1,
    "initialize",
    {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "lab", "version": "1.0"}},
)


def sse_json(response: httpx.Response) -> dict[str, Any]:
    events = SSEParser().feed_text(response.text)
    assert [e.event for e in events] == ["message"], response.text
    return events[0].json()


def open_session(client: httpx.Client, url: str) -> str:
    response = client.post(url, json=INIT, headers=ACCEPT_BOTH)
    assert response.status_code == 200, response.text
    sid = response.headers["mcp-session-id"]
    assert (
        client.post(
            url, json=rpc(None, "notifications/initialized"), headers={**ACCEPT_BOTH, "mcp-session-id": sid}
        ).status_code
        == 202
    )
    return sid


def call(client: httpx.Client, url: str, sid: str | None, message: dict[str, Any]) -> dict[str, Any]:
    headers = {**ACCEPT_BOTH, **({"mcp-session-id": sid} if sid else {})}
    response = client.post(url, json=message, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_json(response)


def call_tool(
    client: httpx.Client, url: str, sid: str | None, id_: int, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return call(client, url, sid, rpc(id_, "tools/call", {"name": name, "arguments": arguments}))


def refused(client: httpx.Client, url: str, sid: str, message: dict[str, Any]) -> dict[str, Any]:
    """A request v1.4.1 could not send: HTTP 500 with the JSON-RPC error as JSON."""
    response = client.post(url, json=message, headers={**ACCEPT_BOTH, "mcp-session-id": sid})
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def tool_names(reply: dict[str, Any]) -> list[str]:
    return sorted(t["name"] for t in reply["result"]["tools"])


def text_of(reply: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in reply["result"]["content"])


def wait_for_log(path: Path, needle: str, timeout: float = 5.0) -> str:
    return attempt(lambda: (lambda text: (needle in text, text))(path.read_text()), timeout=timeout, interval=0.05)[1]


def listen_in_thread(
    url: str, sid: str, *, first_event_only: bool = False
) -> tuple[queue.Queue[Any], threading.Thread]:
    """Read the session's GET stream in a thread.

    The queue gets the status code, then each SSE event; with ``first_event_only`` the
    thread stops after the first event, otherwise it puts the time the stream ended.
    """
    out: queue.Queue[Any] = queue.Queue()

    def listen() -> None:
        with httpx.Client(timeout=30, trust_env=False) as listener, listener.stream(
            "GET", url, headers={"Accept": "text/event-stream", "mcp-session-id": sid}
        ) as r:
            out.put(r.status_code)
            parser = SSEParser()
            for line in r.iter_lines():
                for event in parser.feed(line):
                    out.put(event)
                    if first_event_only:
                        return
        out.put(time.monotonic())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    return out, thread


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as c:
        yield c


# --- the official SDK client --------------------------------------------------------------


async def _sdk_fetch(transport: Callable[[str], Any], url: str, page: str) -> tuple[Any, Any, Any]:
    """Initialize, list tools and fetch ``page`` with the SDK's ``ClientSession`` over ``transport``."""
    async with transport(url) as streams, ClientSession(streams[0], streams[1]) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("fetch", {"url": page})
    return init, tools, result


def test_sdk_client_over_streamable_http(lab: dict[str, Any]) -> None:
    init, tools, result = asyncio.run(_sdk_fetch(streamable_http_client, lab["gw"] + "/mcp", lab["site"] + "/gateway.html"))
    assert init.server_info.name == "mcp-website-fetcher"  # one target: passed through
    assert [t.name for t in tools.tools] == ["fetch"]  # one target: no prefix
    assert not result.is_error and "What a Gateway is" in result.content[0].text

    log = wait_for_log(lab["proxy_log"], "gen_ai.tool.name=fetch")
    call_line = next(line for line in log.splitlines() if "mcp.method.name=tools/call" in line)
    assert (
        "protocol=mcp mcp.method.name=tools/call mcp.target=mcp-target mcp.resource.type=tool "
        "gen_ai.tool.name=fetch mcp.session.id=" in call_line
    )
    assert "route=default/mcp-route" in call_line and "http.status=200" in call_line

    metrics = lab["proxy"].state.metrics.exposition()
    labels = 'resource_type="tool",server="mcp-target",resource="fetch"'
    assert f'agentgateway_mcp_requests_total{{method="tools/call",{labels}' in metrics
    for method in ("initialize", "notifications/initialized", "tools/list"):
        assert (
            f'agentgateway_mcp_requests_total{{method="{method}",resource_type="unknown",server="unknown",'
            f'resource="unknown",bind=' in metrics
        )


def test_sdk_client_over_legacy_sse(lab: dict[str, Any]) -> None:
    init, tools, result = asyncio.run(_sdk_fetch(sse_client, lab["gw"] + "/sse", lab["site"] + "/lab.html"))
    assert init.server_info.name == "mcp-website-fetcher"
    assert [t.name for t in tools.tools] == ["fetch"]
    assert "What the lab covers" in result.content[0].text


async def _sdk_auto(url: str) -> tuple[str | None, list[str]]:
    from mcp import Client

    async with Client(url) as c:
        tools = await c.list_tools()
        return (c.server_info.name if c.server_info else None), [t.name for t in tools.tools]


def test_sdk_high_level_client_falls_back_to_initialize(lab: dict[str, Any]) -> None:
    name, tools = asyncio.run(_sdk_auto(lab["gw"] + "/mcp"))
    assert name == "mcp-website-fetcher" and tools == ["fetch"]


# --- status codes ---------------------------------------------------------------------------


def test_streamable_http_status_codes(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/mcp"
    r = client.post(
        url, json=INIT, headers={"Accept": "application/json", "Content-Type": "application/json"}
    )
    assert r.status_code == 406
    assert r.text == "mcp: client must accept both application/json and text/event-stream"
    r = client.post(
        url, content=json.dumps(INIT), headers={"Accept": ACCEPT_BOTH["Accept"], "Content-Type": "text/plain"}
    )
    assert (r.status_code, r.text) == (415, "mcp: client must send application/json")
    r = client.post(url, json=rpc(2, "tools/list"), headers=ACCEPT_BOTH)
    assert r.status_code == 400 and r.text == "mcp: session header is required for non-initialize requests"
    r = client.post(url, json=rpc(2, "tools/list"), headers={**ACCEPT_BOTH, "mcp-session-id": "bogus"})
    assert r.status_code == 404 and r.text == "mcp: session not found"
    r = client.post(url, json=INIT, headers={**ACCEPT_BOTH, "MCP-Protocol-Version": "2024-11-05"})
    assert r.status_code == 400 and r.json()["error"] == {
        "code": -32020, "message": "MCP protocol version header/body mismatch"}
    r = client.post(url, json=INIT, headers={**ACCEPT_BOTH, "MCP-Protocol-Version": "1999-01-01"})
    assert r.status_code == 400 and r.json()["error"] == {
        "code": -32022, "message": "unsupported MCP protocol version: 1999-01-01"}
    r = client.post(url, content=b"{not json", headers=ACCEPT_BOTH)
    assert r.status_code == 400 and r.text.startswith("mcp: fail to deserialize request body: ")
    r = client.put(url, json=INIT, headers=ACCEPT_BOTH)
    assert (r.status_code, r.text) == (405, "mcp: method not allowed; must be GET, POST, or DELETE")
    r = client.get(url, headers={"Accept": "text/event-stream"})
    assert (r.status_code, r.text) == (400, "mcp: session ID is required")
    assert client.delete(url, headers={"mcp-session-id": "never-issued"}).status_code == 202

    r = client.post(url, json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.text.startswith("event: message\ndata: {")
    sid = r.headers["mcp-session-id"]
    with pytest.raises(ValueError, match="hexadecimal UUID"):  # opaque, not a UUID
        uuid.UUID(sid)
    reply = sse_json(r)
    assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "mcp-website-fetcher"
    r = client.post(
        url, json=rpc(None, "notifications/initialized"), headers={**ACCEPT_BOTH, "mcp-session-id": sid}
    )
    assert r.status_code == 202 and r.content == b""
    assert call(client, url, sid, rpc(7, "tools/list"))["id"] == 7
    assert call(client, url, sid, rpc(8, "ping")) == {"jsonrpc": "2.0", "id": 8, "result": {}}

    r = client.delete(url, headers={"mcp-session-id": sid})
    assert r.status_code == 202
    r = client.post(url, json=rpc(9, "tools/list"), headers={**ACCEPT_BOTH, "mcp-session-id": sid})
    assert r.status_code == 404


def test_get_opens_the_notification_stream(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/mcp"
    sid = open_session(client, url)
    assert client.get(url, headers={"Accept": "application/json", "mcp-session-id": sid}).status_code == 406
    assert client.get(url, headers={"Accept": "text/event-stream"}).status_code == 400
    stream, _ = listen_in_thread(url, sid)
    assert stream.get(timeout=10) == 200
    deleted = time.monotonic()
    assert client.delete(url, headers={"mcp-session-id": sid}).status_code == 202
    ended = next(item for item in iter(lambda: stream.get(timeout=10), None) if isinstance(item, float))
    assert ended - deleted < 5  # the stream ends with the session


def test_legacy_sse_status_codes(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/sse"
    assert client.post(url, json=INIT).status_code == 422
    assert client.post(url + "?sessionId=00000000-0000-4000-8000-000000000000", json=INIT).status_code == 404
    with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        parser, lines = SSEParser(), stream.iter_lines()
        events: list[Any] = []
        while not events:
            events = parser.feed(next(lines))
        assert events[0].event == "endpoint"
        endpoint = events[0].data
        assert endpoint.startswith("/sse?sessionId=")
        session_id = endpoint.split("=", 1)[1]
        assert len(session_id) == 36 and session_id[14] == "4"  # a UUID v4
        r = client.post(lab["gw"] + endpoint, json=INIT)
        assert r.status_code == 202 and r.content == b""
        reply: list[Any] = []
        while not reply:
            reply = parser.feed(next(lines))
        assert (
            reply[0].event == "message"
            and reply[0].json()["result"]["serverInfo"]["name"] == "mcp-website-fetcher"
        )


def test_stateless_session_routing(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/stateless"
    r = client.post(url, json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 200 and "mcp-session-id" not in r.headers
    assert tool_names(call(client, url, None, rpc(2, "tools/list"))) == ["fetch"]
    reply = call_tool(client, url, None, 3, "fetch", {"url": lab["site"] + "/"})
    assert "agwlab" in text_of(reply)
    assert client.get(url, headers={"Accept": "text/event-stream", "mcp-session-id": "x"}).status_code == 405
    assert client.delete(url, headers={"mcp-session-id": "x"}).status_code == 405


# --- several targets ------------------------------------------------------------------------


def test_two_targets_prefix_names_and_route_calls(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/multi"
    r = client.post(url, json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 200
    result = sse_json(r)["result"]
    assert result["serverInfo"] == {"name": "agentgateway", "version": "1.4.1"}
    assert result["instructions"].startswith("This server is a gateway to a set of mcp servers.")
    assert "[echo]\nEchoes text back." in result["instructions"]
    assert result["capabilities"]["tools"] == {"listChanged": True}
    sid = r.headers["mcp-session-id"]
    assert tool_names(call(client, url, sid, rpc(2, "tools/list"))) == [
        "echo_echo",
        "echo_shout",
        "mcp-target_fetch",
    ]
    reply = call_tool(client, url, sid, 3, "echo_echo", {"text": "hi"})
    assert text_of(reply) == "echo: hi"
    reply = call_tool(client, url, sid, 4, "mcp-target_fetch", {"url": lab["site"] + "/mcp.html"})
    assert "What an MCP server is" in text_of(reply)
    reply = refused(client, url, sid, rpc(5, "tools/call", {"name": "nobody_fetch", "arguments": {}}))
    assert reply == {"jsonrpc": "2.0", "id": 5, "error": {
        "code": -32603, "message": "failed to send message: invalid request: unknown service nobody"}}
    reply = refused(client, url, sid, rpc(6, "tools/call", {"name": "fetch", "arguments": {}}))
    assert reply["error"]["message"] == "failed to send message: invalid request: invalid resource name"
    reply = refused(client, url, sid, rpc(7, "foo/bar"))
    assert reply["error"] == {"code": -32603, "message": "failed to send message: unsupported method: foo/bar"}
    log = wait_for_log(lab["proxy_log"], "mcp.target=echo")
    assert "mcp.method.name=tools/call mcp.target=echo mcp.resource.type=tool gen_ai.tool.name=echo" in log
    metrics = lab["proxy"].state.metrics.exposition()
    assert 'method="tools/call",resource_type="tool",server="echo",resource="echo"' in metrics
    # The Streamable HTTP upstream kept its own session id and saw the Service host name.
    assert any(
        h.get("mcp-session-id") and h.get("host") == "echo.default.svc.cluster.local:80"
        for h in lab["echo_headers"]
    )


def test_prefix_modes(lab: dict[str, Any], client: httpx.Client) -> None:
    never = lab["gw"] + "/never"
    sid = open_session(client, never)
    assert tool_names(call(client, never, sid, rpc(2, "tools/list"))) == ["echo", "fetch", "shout"]
    assert text_of(call_tool(client, never, sid, 3, "echo", {"text": "x"})) == "echo: x"
    always = lab["gw"] + "/always"
    sid = open_session(client, always)
    assert tool_names(call(client, always, sid, rpc(2, "tools/list"))) == ["mcp-target_fetch"]
    reply = call_tool(client, always, sid, 3, "mcp-target_fetch", {"url": lab["site"] + "/"})
    assert "agwlab" in text_of(reply)


def test_failure_modes(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/failopen"
    sid = open_session(client, url)
    assert tool_names(call(client, url, sid, rpc(2, "tools/list"))) == ["mcp-target_fetch"]
    r = client.post(lab["gw"] + "/failclosed", json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == -32603 and error["message"].startswith(
        "failed to send message: upstream dead (dead:80): "
    )
    assert "connection refused" in error["message"]
    r = client.post(lab["gw"] + "/unresolved", json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 500 and "Service default/gone not found" in r.json()["error"]["message"]


def test_upstream_killed_then_restarted(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/fragile"
    loop, fragile = lab["loop"], lab["fragile"]
    sid = open_session(client, url)
    loop.run(fragile.stop())
    reply = refused(client, url, sid, rpc(2, "tools/call", {"name": "fetch", "arguments": {"url": lab["site"]}}))
    assert reply["error"]["code"] == -32603
    assert reply["error"]["message"].startswith("failed to send message: ")
    log = wait_for_log(lab["proxy_log"], "mcp.error.code=-32603")
    assert 'mcp.error.message="failed to send message: ' in log
    r = client.post(url, json=INIT, headers=ACCEPT_BOTH)
    assert r.status_code == 500 and "connection refused" in r.json()["error"]["message"]

    loop.run(fragile.start(lab["fragile_pod"]))
    sid = open_session(client, url)
    assert tool_names(call(client, url, sid, rpc(3, "tools/list"))) == ["fetch"]


def test_traceparent_goes_upstream_and_each_message_gets_a_server_span(
    lab: dict[str, Any], client: httpx.Client
) -> None:
    url = lab["gw"] + "/echo"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {**ACCEPT_BOTH, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    r = client.post(url, json=INIT, headers=headers)
    assert r.status_code == 200
    sid = r.headers["mcp-session-id"]
    call_headers = {**headers, "mcp-session-id": sid}
    r = client.post(
        url, json=rpc(2, "tools/call", {"name": "echo", "arguments": {"text": "t"}}), headers=call_headers
    )
    assert text_of(sse_json(r)) == "echo: t"
    sent = [h["traceparent"] for h in lab["echo_headers"] if "traceparent" in h]
    assert sent and all(tp.startswith(f"00-{trace_id}-") for tp in sent)
    # The span id sent upstream is the gateway's request span, not the caller's.
    assert all("00f067aa0ba902b7" not in tp for tp in sent)
    log = wait_for_log(lab["proxy_log"], f"trace.id={trace_id}")
    assert f"trace.id={trace_id}" in log

    def spans() -> list[Any]:
        return [span for batch in lab["batches"] for resource_spans in batch.resource_spans
                for scope_spans in resource_spans.scope_spans for span in scope_spans.spans
                if span.trace_id.hex() == trace_id]

    def flushed() -> tuple[bool, list[Any]]:
        lab["proxy"].state.tracing.force_flush()
        return "tools/call echo" in {s.name for s in spans()}, spans()

    found = attempt(flushed, timeout=10, interval=0.05)[1]
    by_name = {s.name: s for s in found}
    # v1.4.1: one Server span per HTTP request, one Server span per JSON-RPC message under it
    # (named after the method, tools/call <target>), no attributes, and no span per upstream call.
    assert {"initialize", "tools/call echo"} <= set(by_name)
    requests = [s for s in found if s.name.startswith("POST ")]
    assert len(requests) == 2 and len(found) == 4
    server_kind = 2   # SPAN_KIND_SERVER in OTLP
    assert all(s.kind == server_kind for s in found)
    message = by_name["tools/call echo"]
    assert list(message.attributes) == []
    parent = next(s for s in requests if s.span_id == message.parent_span_id)
    assert any(tp.split("-")[2] == parent.span_id.hex() for tp in sent)


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
def test_server_notifications_arrive_on_the_get_stream(lab: dict[str, Any], client: httpx.Client) -> None:
    url = lab["gw"] + "/echo"
    sid = open_session(client, url)
    events, thread = listen_in_thread(url, sid, first_event_only=True)
    assert events.get(timeout=10) == 200
    reply = call_tool(client, url, sid, 2, "shout", {"text": "hey"})
    assert text_of(reply) == "HEY"
    event = events.get(timeout=10)
    message = event.json()
    assert message["method"] == "notifications/message" and message["params"]["data"] == "shouting hey"
    thread.join(5)
    client.delete(url, headers={"mcp-session-id": sid})
