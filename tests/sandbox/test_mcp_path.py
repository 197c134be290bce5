"""The tutorial's second half against the sandbox: the website fetcher behind the gateway.

First as the tutorial types it (and where it fails, how), then corrected: any MCP client
reaches the fetcher through the gateway, and the MCP metrics land in Prometheus."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from labtest import DATA, NS, has_status, http_route_yaml, poll, poll_object

SITE = "http://lab-website.agwlab-system.svc.cluster.local/"


@pytest.fixture(scope="module")
def seed_mcp(kubectl, gateway: str) -> Any:  # type: ignore[no-untyped-def]
    return kubectl.run("apply", "-f", str(DATA / "seed_mcp.yaml"), check=False)


def test_seed_mcp_backend_is_refused_for_its_unknown_field(seed_mcp) -> None:  # type: ignore[no-untyped-def]
    assert seed_mcp.returncode != 0
    assert "deployment.apps/mcp-website-fetcher" in seed_mcp.stdout
    assert "service/mcp-website-fetcher" in seed_mcp.stdout
    assert 'unknown field "spec.type"' in seed_mcp.stderr, seed_mcp.stderr


def test_seed_mcp_route_does_not_attach(kubectl, seed_mcp) -> None:  # type: ignore[no-untyped-def]
    # its parentRef names a Gateway "agentgateway" that does not exist: v1.4.1 writes no parent status.
    # A route applied after it gets its status in a later reconcile pass than the one that saw mcp-route.
    kubectl("apply", "-f", "-", input=http_route_yaml("after-mcp-route", NS, "agentgateway-route",
                                                      prefix="/after-mcp-route", service=("nowhere", 80)))
    poll_object(kubectl, "httproute", "after-mcp-route", NS, until=has_status("parents"), what="the later route")
    kubectl("delete", "httproute", "after-mcp-route", "-n", NS)
    route = json.loads(kubectl("get", "httproute", "mcp-route", "-n", NS, "-o", "json"))
    assert not (route.get("status") or {}).get("parents")


def test_the_fetcher_runs_as_a_pod(kubectl, seed_mcp) -> None:  # type: ignore[no-untyped-def]
    kubectl("rollout", "status", "deploy/mcp-website-fetcher", "-n", "default", "--timeout=30s")
    kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=mcp-website-fetcher", "-n", "default", "--timeout=30s")
    logs = kubectl("logs", "deploy/mcp-website-fetcher", "-n", "default")
    assert "8000" in logs


def test_an_unknown_image_waits_in_image_pull_back_off(kubectl) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "deployment", "mystery", "--image=example.com/not-in-the-sandbox:1", "-n", "default")
    try:
        pod = poll(lambda: next((p for p in json.loads(kubectl("get", "pods", "-n", "default", "-l", "app=mystery",
                                                              "-o", "json"))["items"]
                                 if ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
                                 .get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff"), None),
                   what="ImagePullBackOff")
        msg = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert "ghcr.io/peterj/mcp-website-fetcher" in msg
    finally:
        kubectl("delete", "deployment", "mystery", "-n", "default")


@pytest.fixture(scope="module")
def mcp_url(kubectl, seed_mcp, gateway: str) -> str:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", str(DATA / "mcp_fixed.yaml"))
    url = f"{gateway}/mcp"

    def ready() -> bool:
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                  "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                             "clientInfo": {"name": "probe", "version": "0"}}},
                       headers={"Accept": "application/json, text/event-stream"}, timeout=10)
        return r.status_code == 200
    poll(ready, timeout=30, what="the MCP route to answer initialize")
    return url


async def _sdk_roundtrip(transport: Any) -> tuple[str, list[str], str]:
    async with transport as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("fetch", {"url": SITE})
            text = "".join(getattr(c, "text", "") for c in result.content)
            return init.server_info.name, [t.name for t in tools.tools], text


def test_mcp_sdk_over_streamable_http(mcp_url: str) -> None:
    name, tools, text = anyio.run(_sdk_roundtrip, streamable_http_client(mcp_url))
    assert name == "mcp-website-fetcher"
    assert tools == ["fetch"]
    assert "agentgateway" in text.lower()


def test_mcp_sdk_over_legacy_sse(mcp_url: str) -> None:
    sse = mcp_url.removesuffix("/mcp") + "/sse"
    name, tools, text = anyio.run(_sdk_roundtrip, sse_client(sse))
    assert name == "mcp-website-fetcher"
    assert tools == ["fetch"]
    assert text


def test_mcp_metrics_and_log_lines(kubectl, mcp_url: str) -> None:  # type: ignore[no-untyped-def]
    def scrape() -> dict[tuple[str, str], float]:
        pod = json.loads(kubectl("get", "pods", "-n", NS, "-l",
                                 "gateway.networking.k8s.io/gateway-name=agentgateway-route", "-o", "json"))["items"][0]
        text = httpx.get(f"http://{pod['status']['podIP']}:15020/metrics", timeout=5).text
        out: dict[tuple[str, str], float] = {}
        for fam in text_string_to_metric_families(text):
            if fam.name == "agentgateway_mcp_requests":
                for s in fam.samples:
                    if s.labels.get("route") == f"{NS}/mcp-route":
                        key = (s.labels["method"], s.labels["resource"])
                        out[key] = out.get(key, 0) + s.value
        return out

    before = scrape()
    anyio.run(_sdk_roundtrip, streamable_http_client(mcp_url))
    after = scrape()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert delta[("initialize", "unknown")] == 1
    assert delta[("notifications/initialized", "unknown")] == 1
    assert delta[("tools/list", "unknown")] == 1
    assert delta[("tools/call", "fetch")] == 1
    logs = kubectl("logs", "deploy/agentgateway-route", "-n", NS, "--tail=30")
    call = [l for l in logs.splitlines() if "mcp.method.name=tools/call" in l][-1]
    assert "protocol=mcp" in call and "mcp.target=mcp-target" in call and "gen_ai.tool.name=fetch" in call


def test_a_killed_fetcher_fails_clearly_and_recovers(kubectl, mcp_url: str) -> None:  # type: ignore[no-untyped-def]
    # kill the fetcher's process, as a crash would; the kubelet restarts it (restartPolicy: Always)
    pod = json.loads(kubectl("get", "pods", "-n", "default", "-l", "app=mcp-website-fetcher", "-o", "json"))["items"][0]
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    ip = pod["status"]["podIP"]
    import subprocess

    pids = subprocess.run(["pgrep", "-f", f"website_fetcher --host {ip}"], capture_output=True, text=True).stdout.split()
    assert pids, "the fetcher's process was not found"
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    poll(lambda: json.loads(kubectl("get", "pod", pod["metadata"]["name"], "-n", "default", "-o", "json"))
         ["status"]["containerStatuses"][0]["restartCount"] > restarts, timeout=30, what="the Pod to restart")
    kubectl("wait", "--for=condition=Ready", f"pod/{pod['metadata']['name']}", "-n", "default", "--timeout=30s")
    _name, tools, _text = poll(lambda: anyio.run(_sdk_roundtrip, streamable_http_client(mcp_url)), timeout=30,
                             what="MCP through the gateway after the restart")
    assert tools == ["fetch"]


def test_fetcher_scaled_down_gives_a_clear_error_then_recovers(kubectl, mcp_url: str) -> None:  # type: ignore[no-untyped-def]
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    kubectl("scale", "deploy/mcp-website-fetcher", "-n", "default", "--replicas=0")
    try:
        r = poll(lambda: (lambda r: r if r.status_code >= 500 or "error" in r.text else None)(
            httpx.post(mcp_url, json=body, headers=headers, timeout=10)), timeout=20, what="an error from the gateway")
        assert r.status_code >= 500 or '"error"' in r.text
        assert "mcp-website-fetcher" in r.text or "upstream" in r.text or "endpoints" in r.text, r.text
    finally:
        kubectl("scale", "deploy/mcp-website-fetcher", "-n", "default", "--replicas=1")
    poll(lambda: httpx.post(mcp_url, json=body, headers=headers, timeout=10).status_code == 200, timeout=30,
         what="MCP to answer again")
