"""The MCP website fetcher as a child process, driven by the official MCP SDK client over SSE."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client

from agwlab.sandbox.runtime import WorkloadFailed
from agwlab.sandbox.workloads.lab_website import LabWebsiteWorkload
from agwlab.sandbox.workloads.website_fetcher import (
    SERVICES_ENV,
    ClusterDNSTransport,
    ServiceTable,
    WebsiteFetcherWorkload,
)
from harness import LoopThread, free_port, make_pod


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fetcher")
    loop = LoopThread()
    site = LabWebsiteWorkload()
    site_port = free_port()
    loop.run(site.start(make_pod(tmp, "lab-website", port=site_port)))
    services = tmp / "cluster-services.json"
    services.write_text(
        json.dumps(
            {
                "services": {
                    "lab-website.agwlab-system.svc.cluster.local": {"80": [f"127.0.0.1:{site_port}"]},
                    "empty.agwlab-system.svc.cluster.local": {"80": []},
                }
            }
        )
    )
    fetcher = WebsiteFetcherWorkload()
    fetcher_port = free_port()
    fetcher_pod = make_pod(tmp, "mcp-website-fetcher", port=fetcher_port, env={SERVICES_ENV: str(services)})
    loop.run(fetcher.start(fetcher_pod))
    yield {
        "loop": loop,
        "fetcher": fetcher,
        "fetcher_pod": fetcher_pod,
        "site_url": f"http://127.0.0.1:{site_port}",
        "url": f"http://127.0.0.1:{fetcher_port}",
        "services": services,
    }
    loop.run(fetcher.stop())
    loop.run(site.stop())
    loop.close()


async def _session(
    url: str, calls: list[tuple[str, dict[str, Any]]], host: str | None = None
) -> tuple[Any, Any, list[Any]]:
    headers = {"Host": host} if host else None
    async with (
        sse_client(f"{url}/sse", headers=headers) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        init = await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
    return init, tools, results


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def test_lists_fetch_and_reads_a_page(cluster: dict[str, Any]) -> None:
    init, tools, results = asyncio.run(
        _session(cluster["url"], [("fetch", {"url": cluster["site_url"] + "/mcp.html"})])
    )
    assert init.server_info.name == "mcp-website-fetcher"
    assert [t.name for t in tools.tools] == ["fetch"]
    tool = tools.tools[0]
    assert tool.description == "Fetches a website and returns its content"
    assert tool.input_schema["required"] == ["url"]
    assert tool.input_schema["properties"]["url"]["type"] == "string"
    page = (Path(__file__).parents[3] / "agwlab/sandbox/site/mcp.html").read_text()
    assert not results[0].is_error
    assert _text(results[0]) == page


def test_fetch_errors_are_tool_errors(cluster: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    calls = [
        ("fetch", {"url": dead}),
        ("fetch", {"url": cluster["site_url"] + "/missing.html"}),
        ("fetch", {"url": "not a url"}),
        ("fetch", {}),
        ("fetch", {"url": "http://no-such-service.agwlab-system/"}),
        ("fetch", {"url": "http://no-such-host.invalid/"}),  # RFC 2606: never resolves
    ]
    _, _, results = asyncio.run(_session(cluster["url"], calls))
    assert all(r.is_error for r in results)
    assert "127.0.0.1" in _text(results[0]) and dead in _text(results[0])
    assert "404" in _text(results[1])
    assert "invalid URL" in _text(results[2])
    assert "url" in _text(results[3])
    assert "could not connect to no-such-host.invalid" in _text(results[5])
    assert "lab-website.agwlab-system.svc.cluster.local" in _text(results[5])  # the offline hint
    assert cluster["fetcher"].alive()


def test_cluster_dns_names_and_service_host_header(cluster: dict[str, Any]) -> None:
    calls = [
        ("fetch", {"url": "http://lab-website.agwlab-system.svc.cluster.local/"}),
        ("fetch", {"url": "http://lab-website.agwlab-system/gateway.html"}),
        ("fetch", {"url": "http://lab-website.agwlab-system.svc/lab.html"}),
        ("fetch", {"url": "http://empty.agwlab-system/"}),
    ]
    # The gateway connects with the Service name as Host: DNS-rebinding protection must allow it.
    _, _, results = asyncio.run(
        _session(cluster["url"], calls, host="mcp-website-fetcher.default.svc.cluster.local:80")
    )
    assert "agwlab: a hands-on lab for agentgateway" in _text(results[0])
    assert "What a Gateway is" in _text(results[1])
    assert "What the lab covers" in _text(results[2])
    assert results[3].is_error and "no ready endpoint" in _text(results[3])
    site_log = (cluster["fetcher_pod"].log.path.parent / "lab-website.log").read_text()
    assert '"GET /gateway.html HTTP/1.1" 200' in site_log


def test_pod_log_has_uvicorn_lines(cluster: dict[str, Any]) -> None:
    log = cluster["fetcher_pod"].log.path.read_text()
    assert "Uvicorn running on http://127.0.0.1:" in log
    assert '"GET /sse HTTP/1.1" 200' in log


def test_streamable_http_is_served_too(cluster: dict[str, Any]) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    response = httpx.post(
        cluster["url"] + "/mcp",
        json=body,
        trust_env=False,
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["mcp-session-id"]
    assert "mcp-website-fetcher" in response.text


def test_transport_resolves_only_known_services(tmp_path: Path) -> None:
    table_file = tmp_path / "services.json"
    table_file.write_text(json.dumps({"services": {"a.b.svc.cluster.local": {"80": ["127.0.0.9:8080"]}}}))
    table = ServiceTable(table_file)
    assert table.lookup("a.b", 80) == ["127.0.0.9:8080"]
    assert table.lookup("a.b.svc", 80) == ["127.0.0.9:8080"]
    assert table.lookup("a.b.svc.cluster.local", 81) == []
    assert ServiceTable.canonical("example.com") == "example.com.svc.cluster.local"  # looks like svc.ns
    assert not table.known("example.com")
    assert ServiceTable.canonical("127.0.0.1") is None
    table_file.write_text(json.dumps({"services": {"c.d.svc.cluster.local": {"80": ["127.0.0.8:80"]}}}))
    assert table.lookup("c.d", 80) == ["127.0.0.8:80"]
    assert isinstance(ClusterDNSTransport(table), httpx.AsyncBaseTransport)


def test_stop_ends_the_process(tmp_path: Path) -> None:
    loop = LoopThread()
    try:
        fetcher = WebsiteFetcherWorkload()
        loop.run(fetcher.start(make_pod(tmp_path, "f2", port=free_port())))
        assert fetcher.alive()
        loop.run(fetcher.stop())
        assert not fetcher.alive()
    finally:
        loop.close()


def test_start_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    loop = LoopThread()
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            fetcher = WebsiteFetcherWorkload()
            fetcher_pod = make_pod(tmp_path, "busy", port=taken.getsockname()[1])
            with pytest.raises(WorkloadFailed, match="exited with code"):
                loop.run(fetcher.start(fetcher_pod))
            assert not fetcher.alive()
            assert "address already in use" in fetcher_pod.log.path.read_text().lower()
    finally:
        loop.close()
