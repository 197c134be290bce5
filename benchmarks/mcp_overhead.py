"""What the sandbox's proxy (its stand-in for agentgateway) adds to an MCP ``tools/call``, and
whether it counts every message under load. Figures of the Python sandbox, not of agentgateway.

1. Latency: two sessions of the official ``mcp`` SDK client over the same transport (legacy
   SSE), kept open: one through the proxy (``/sse`` on the Gateway), one straight to the
   website fetcher's Pod (``<pod ip>:8000/sse``). ``tools/call fetch`` of the lab website,
   interleaved one by one, after a warm-up. The added latency is a percentile of the per-pair
   differences; p50(proxy) - p50(direct) is printed beside it, named as such.
2. Load: ``SESSIONS`` concurrent sessions through the gateway, each ``initialize`` and one
   ``tools/call fetch``. None may be lost, and ``agentgateway_mcp_requests_total`` for the
   route must go up by exactly ``SESSIONS`` for ``initialize``, ``notifications/initialized``
   and ``tools/call`` (``resource=fetch``).

Run: ``.venv/bin/python benchmarks/mcp_overhead.py``
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import anyio
import httpx
import yaml
from benchlib import (
    FETCHER_NS,
    MCP_OBJECTS,
    NS,
    SITE,
    counter_values,
    fetcher_objects,
    fresh_sandbox,
    gateway_base,
    header,
    kube_clients,
    llm_objects,
    percentile,
    pod_ip,
    poll,
    report,
    server_side_apply,
)
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from agwlab.wire import jsonrpc

__all__ = ["main"]

N = 200
WARMUP = 20
SESSIONS = 100
TIME_BUDGET_S = 120.0
ROUTE = f"{NS}/mcp-route"


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _ok(result: Any) -> bool:
    return not result.is_error and "agentgateway" in _text(result).lower()


async def _sequential(gateway_url: str, direct_url: str) -> tuple[list[float], list[float], int]:
    gw_t: list[float] = []
    dir_t: list[float] = []
    bad = 0
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for transport in (sse_client(gateway_url), sse_client(direct_url)):
            streams = await stack.enter_async_context(transport)
            session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
            await session.initialize()
            await session.list_tools()
            sessions.append(session)
        gw, d = sessions

        async def timed(session: ClientSession) -> float:
            nonlocal bad
            t = time.perf_counter()
            result = await session.call_tool("fetch", {"url": SITE})
            el = time.perf_counter() - t
            bad += not _ok(result)
            return el

        for _ in range(WARMUP):
            await timed(gw)
            await timed(d)
        bad = 0
        deadline = time.monotonic() + TIME_BUDGET_S
        for i in range(N):
            if time.monotonic() > deadline:
                print(f"  (time budget reached after {i} pairs)")
                break
            if i % 2:
                gw_t.append(await timed(gw))
                dir_t.append(await timed(d))
            else:
                dir_t.append(await timed(d))
                gw_t.append(await timed(gw))
    return gw_t, dir_t, bad


async def _concurrent(url: str, n: int) -> tuple[int, list[str], float]:
    """``n`` sessions at once; returns how many got a good answer, the errors, the wall time."""
    good = 0
    errors: list[str] = []

    async def one() -> None:
        nonlocal good
        try:
            with anyio.fail_after(60):
                async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as s:
                    await s.initialize()
                    result = await s.call_tool("fetch", {"url": SITE})
                    if _ok(result):
                        good += 1
                    else:
                        errors.append(f"bad result: {_text(result)[:120]}")
        except Exception as e:  # count every way a session can be lost
            errors.append(f"{type(e).__name__}: {str(e)[:160]}")

    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return good, errors, time.perf_counter() - t


def main() -> None:
    # agentgateway answers a session's DELETE with 202 (as the sandbox does); the SDK logs a
    # warning for anything but 200/204, once per closed session
    logging.getLogger("mcp.client.streamable_http").setLevel(logging.ERROR)
    header(f"MCP overhead: {N} interleaved tools/call each way, then {SESSIONS} concurrent sessions")
    with fresh_sandbox() as info:
        api, core, dyn = kube_clients(info)
        server_side_apply(dyn, llm_objects() + fetcher_objects() + [d for d in yaml.safe_load_all(MCP_OBJECTS) if d])
        base = gateway_base(api)
        url = f"{base}/mcp"
        fetcher = pod_ip(core, FETCHER_NS, "app=mcp-website-fetcher")
        direct = f"http://{fetcher}:8000/sse"
        init = jsonrpc.initialize(1, client_name="probe")
        poll(lambda: httpx.post(url, json=init, headers={"Accept": "application/json, text/event-stream"},
                                timeout=10).status_code == 200, what="the MCP route to answer initialize")
        metrics = f"http://{pod_ip(core, NS, 'gateway.networking.k8s.io/gateway-name=agentgateway-route')}:15020/metrics"
        print(f"  gateway {url}   fetcher {direct}   metrics {metrics}")

        gw_t, dir_t, bad = anyio.run(_sequential, f"{base}/sse", direct)
        ms = 1000.0
        g50, d50 = percentile(gw_t, 50) * ms, percentile(dir_t, 50) * ms
        print(f"\nsequential, {len(gw_t)} pairs of tools/call fetch ({bad} results wrong)")
        report("direct to the fetcher (SSE) p50", d50, "ms")
        report("direct to the fetcher (SSE) p99", percentile(dir_t, 99) * ms, "ms")
        report("through the sandbox's proxy (SSE) p50", g50, "ms")
        report("through the sandbox's proxy (SSE) p99", percentile(gw_t, 99) * ms, "ms")
        diffs = [(g - d) * ms for g, d in zip(gw_t, dir_t, strict=True)]
        report("added by the sandbox's proxy p50 (of per-pair differences)", percentile(diffs, 50), "ms", 5.0)
        report("added by the sandbox's proxy p99 (of per-pair differences)", percentile(diffs, 99), "ms")
        report("p50 through it - p50 direct (not a percentile of added time)", g50 - d50, "ms")

        def counts() -> dict[tuple[str, ...], float]:
            return counter_values(metrics, "agentgateway_mcp_requests", ("method", "resource"), route=ROUTE)
        before = counts()
        good, errors, wall = anyio.run(_concurrent, url, SESSIONS)
        want = {("initialize", "unknown"): SESSIONS, ("notifications/initialized", "unknown"): SESSIONS,
                ("tools/call", "fetch"): SESSIONS}

        def delta() -> dict[tuple[str, ...], float]:
            after = counts()
            return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
                    if after.get(k, 0) != before.get(k, 0)}
        try:
            d = poll(lambda: (lambda x: x if all(x.get(k, 0) >= v for k, v in want.items()) else None)(delta()),
                     timeout=5, what="the MCP counters")
        except TimeoutError:
            d = delta()
        print(f"\n{SESSIONS} concurrent sessions (initialize + tools/call fetch) through the gateway in {wall:.2f}s")
        print(f"  {'sessions answered with the page':<56} {good:>10d}     target = {SESSIONS}  "
              f"{'PASS' if good == SESSIONS else 'MISS'}")
        for e in sorted(set(errors))[:5]:
            print(f"     lost: {errors.count(e)} x {e}")
        for (method, resource), v in want.items():
            got = d.get((method, resource), 0)
            label = f"agentgateway_mcp_requests_total {method}" + (f" ({resource})" if resource != "unknown" else "")
            print(f"  {label:<56} {got:>10.0f}     target = {v}  {'PASS' if got == v else 'MISS'}")
        extra = {k: v for k, v in d.items() if k not in want}
        if extra:
            print(f"  other MCP methods counted: {', '.join(f'{m} ({r}) {v:.0f}' for (m, r), v in sorted(extra.items()))}")
        api.close()


if __name__ == "__main__":
    main()
