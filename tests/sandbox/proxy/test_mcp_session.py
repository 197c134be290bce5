"""Session ids, idle expiry, and how messages are classified and routed to targets."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from agwlab.sandbox.proxy.config import MCPBackend, MCPTarget
from agwlab.sandbox.proxy.mcp_session import MCPSession, SendFailed, SessionStore, classify
from agwlab.sandbox.proxy.mcp_upstream import open_upstream
from agwlab.sandbox.proxy.upstream import UpstreamClient


def _target(name: str) -> MCPTarget:
    return MCPTarget(name=name, protocol="SSE", url=f"http://127.0.0.1:9/{name}", host_header=f"{name}:80")


def _session(*names: str, prefix_mode: str = "Conditional") -> MCPSession:
    backend = MCPBackend(key="default/b", targets=tuple(_target(n) for n in names), prefix_mode=prefix_mode)  # type: ignore[arg-type]
    session = MCPSession(backend, UpstreamClient())
    session.upstreams = {n: open_upstream(_target(n), session.http) for n in names}
    return session


def test_session_ids_are_opaque_and_bound_to_their_proxy() -> None:
    async def scenario() -> None:
        store, other = SessionStore(), SessionStore()
        session = _session("a")
        sid = store.add(session)
        assert session.sid not in sid  # encrypted, not the local key
        assert len(base64.b64decode(sid, validate=True)) > 12 + 16   # v1.4.1: AES-GCM, standard base64
        assert store.get(sid) is session
        assert other.get(sid) is None  # another proxy's key
        assert store.get("not-a-token") is None
        assert store.get(sid[:-4] + "AAAA") is None  # tampered
        await store.remove(session)
        assert store.get(sid) is None and len(store) == 0

    asyncio.run(scenario())


def test_idle_sessions_expire_but_streaming_ones_stay() -> None:
    async def scenario() -> None:
        store = SessionStore()
        idle, streaming, fresh = _session("a"), _session("a"), _session("a")
        for s in (idle, streaming, fresh):
            store.add(s)
        streaming.open_streams = 1
        later = time.monotonic() + SessionStore.IDLE_TIMEOUT + 1
        fresh.last_used = later
        assert await store.expire_idle(now=later) == 1
        assert idle.closed and not streaming.closed and not fresh.closed
        assert store.get_local(idle.sid) is None and store.get_local(streaming.sid) is streaming

    asyncio.run(scenario())


def test_classify() -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "fetch", "arguments": {}}}
    assert classify(call) == ("tools/call", "tool", "fetch")
    assert classify({"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": "p"}}) == (
        "prompts/get",
        "prompt",
        "p",
    )
    assert classify(
        {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "file:///x"}}
    ) == ("resources/read", "resource", "file:///x")
    assert classify({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}) == ("tools/list", "unknown", None)


def test_routing_by_prefix() -> None:
    async def scenario() -> None:
        multi = _session("mcp-target", "echo")
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "mcp-target_fetch_page", "arguments": {"url": "x"}},
        }
        routing = await multi.route(call)
        # split on the first "_" only; the upstream sees the bare name
        assert (routing.target, routing.resource) == ("mcp-target", "fetch_page")
        assert routing.message["params"] == {"name": "fetch_page", "arguments": {"url": "x"}}
        unknown = await multi.route({**call, "params": {"name": "nobody_x"}})
        assert unknown.error == "invalid request: unknown service nobody"
        plain = await multi.route({**call, "params": {"name": "plain"}})
        assert plain.error == "invalid request: invalid resource name"
        with pytest.raises(SendFailed, match=r"^failed to send message: invalid request: invalid resource name$"):
            await multi.request(plain)
        with pytest.raises(SendFailed, match=r"^failed to send message: unsupported method: foo/bar$"):
            await multi.request(await multi.route({"jsonrpc": "2.0", "id": 2, "method": "foo/bar"}))

        single = _session("mcp-target")
        routing = await single.route({**call, "params": {"name": "fetch"}})
        assert (routing.target, routing.resource, routing.error) == ("mcp-target", "fetch", None)

        always = _session("mcp-target", prefix_mode="Always")
        routing = await always.route({**call, "params": {"name": "mcp-target_fetch"}})
        assert (routing.target, routing.resource) == ("mcp-target", "fetch")
        for s in (multi, single, always):
            await s.http.close()

    asyncio.run(scenario())


def test_merged_initialize_takes_the_lowest_version_and_joins_instructions() -> None:
    session = _session("a", "b")
    merged = session._merge_initialize(
        {
            "a": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {"listChanged": False}, "logging": {}},
                "serverInfo": {"name": "a", "version": "1"},
                "instructions": "A does things.",
            },
            "b": {
                "protocolVersion": "2025-03-26",
                "capabilities": {"prompts": {}},
                "serverInfo": {"name": "b", "version": "2"},
            },
        },
        "2025-06-18",
    )
    assert merged["protocolVersion"] == "2025-03-26"
    assert session._merge_initialize({"a": {"protocolVersion": "2025-06-18"}}, "2024-11-05")["protocolVersion"] \
        == "2024-11-05"                                   # the client's, when it is the lowest
    assert merged["serverInfo"] == {"name": "agentgateway", "version": session.version}
    assert merged["capabilities"] == {          # v1.4.1 offers these, whatever the upstreams do
        "prompts": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": True},
        "tools": {"listChanged": True},
    }
    assert merged["instructions"].endswith("\n\n[a]\nA does things.")
    asyncio.run(session.http.close())
