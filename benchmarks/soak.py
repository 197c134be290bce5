"""A bounded soak: connection floods, abandoned MCP sessions and a stream of completions against
one fresh sandbox, printing what held, what was refused or failed, and the sandbox process's
memory and open descriptors over time.

Phases (loopback only; every phase bounded in count and time):

1. Idle flood: ``IDLE`` connections to the gateway's listener that never send a byte. Up to the
   listener's cap they are held; past it each is answered 503 and closed at once. Meanwhile the
   API server (another listener) must keep answering. The idle ones are dropped after the
   header deadline without the client closing them.
2. Slow headers: ``SLOW`` connections that send half a request head and stop; all must be
   dropped by the server within the header deadline (plus a margin).
3. Abandoned sessions: ``SESSIONS`` MCP sessions opened through the gateway and never ended
   (more than the per-proxy cap): each is answered, either a session (sessions idle for a
   minute make room) or a 503 that says why; none hangs, and the proxy's
   ``agwlab_sandbox_mcp_sessions`` gauge stays at the cap.
4. Requests: ``REQUESTS`` chat completions through the gateway, ``CONCURRENCY`` at a time.

Run: ``.venv/bin/python benchmarks/soak.py``   (~2-3 min)
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import yaml
from benchlib import (
    MCP_OBJECTS,
    NS,
    fetcher_objects,
    fresh_sandbox,
    gateway_base,
    header,
    kube_clients,
    llm_objects,
    pod_ip,
    poll,
    report,
    server_side_apply,
)

from agwlab.sandbox.proxy.mcp_session import SessionStore
from agwlab.sandbox.serving import HEADER_TIMEOUT, MAX_CONNECTIONS

__all__ = ["main"]

IDLE = MAX_CONNECTIONS + 300
SLOW = 300
SESSIONS = SessionStore.MAX_SESSIONS + 50
REQUESTS = 2000
CONCURRENCY = 32
PHASE_BUDGET_S = 240.0
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "soak", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def count(label: str, got: int, want: int | None = None, note: str = "") -> None:
    """Print one count, with PASS/MISS when it has a target."""
    target = f"     target = {want}  {'PASS' if got == want else 'MISS'}" if want is not None else ""
    print(f"  {label:<56} {got:>10d}{target}{('  ' + note) if note else ''}", flush=True)


class Sampler:
    """The sandbox process's resident memory and open descriptors, sampled along the way."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0 = time.monotonic()
        self.rows: list[tuple[float, str, float, int]] = []

    def sample(self, label: str) -> None:
        rss = 0.0
        with open(f"/proc/{self.pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        self.rows.append((time.monotonic() - self.t0, label, rss, fds))
        print(f"  [{self.rows[-1][0]:6.1f}s] {label:<44} VmRSS {rss:6.1f} MiB   open fds {fds:5d}")


async def _read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(4096), timeout)
    except TimeoutError:
        return b"<still open>"


async def idle_flood(host: str, port: int, api: str, token: str, ca: str) -> dict[str, Any]:
    """Phase 1. Returns counts of held/refused connections and the API's answers meanwhile."""
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed = 0
    for _ in range(IDLE):
        try:
            opened.append(await asyncio.wait_for(asyncio.open_connection(host, port), 5))
        except (OSError, TimeoutError):
            failed += 1
    # a refused connection is answered at once; a held one says nothing
    first = await asyncio.gather(*(_read_all(r, 0.5) for r, _ in opened))
    refused = sum(1 for b in first if b.startswith(b"HTTP/1.1 503 "))
    held = sum(1 for b in first if b == b"<still open>")
    ssl_ctx = httpx.create_ssl_context(verify=ca)
    async with httpx.AsyncClient(verify=ssl_ctx, headers={"Authorization": f"Bearer {token}"}) as client:
        api_ok = sum([(await client.get(f"{api}/api/v1/namespaces", timeout=5)).status_code == 200
                      for _ in range(20)])
    started = time.monotonic()
    rest = await asyncio.gather(*(_read_all(r, HEADER_TIMEOUT + 10) for (r, _w), b in zip(opened, first, strict=True)
                                  if b == b"<still open>"))
    dropped = sum(1 for b in rest if b != b"<still open>")
    for _, w in opened:
        w.close()
    return {"held": held, "refused": refused, "failed": failed, "api_ok": api_ok, "dropped": dropped,
            "drop_s": time.monotonic() - started}


async def slow_headers(host: str, port: int) -> tuple[int, float]:
    """Phase 2. Returns how many the server dropped, and the time until the last one."""
    conns = [await asyncio.open_connection(host, port) for _ in range(SLOW)]
    for _, w in conns:
        w.write(b"POST /anthropic HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
        await w.drain()
    started = time.monotonic()
    ends = await asyncio.gather(*(_read_all(r, HEADER_TIMEOUT + 10) for r, _ in conns))
    for _, w in conns:
        w.close()
    return sum(1 for b in ends if b != b"<still open>"), time.monotonic() - started


async def sessions(url: str) -> dict[str, Any]:
    """Phase 3. Counts of sessions opened, 503s that say why, timeouts and other outcomes, and the
    median and slowest answer."""
    out = {"ok": 0, "full": 0, "timeout": 0, "other": 0}
    times: list[float] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=20), timeout=20) as client:
        sem = asyncio.Semaphore(10)

        async def one() -> None:
            async with sem:
                t = time.monotonic()
                try:
                    r = await client.post(url, json=INIT, headers=MCP_HEADERS)
                except httpx.TimeoutException:
                    out["timeout"] += 1
                    return
                except httpx.HTTPError:
                    out["other"] += 1
                    return
                times.append(time.monotonic() - t)
                if r.status_code == 200 and r.headers.get("mcp-session-id"):
                    out["ok"] += 1
                elif r.status_code == 503 and "too many open sessions" in r.text:
                    out["full"] += 1
                else:
                    out["other"] += 1

        tasks = [asyncio.ensure_future(one()) for _ in range(SESSIONS)]
        _done, pending = await asyncio.wait(tasks, timeout=PHASE_BUDGET_S)
        for task in pending:  # the phase's time is up: whatever has no answer yet counts as hung
            task.cancel()
        out["timeout"] += len(pending)
    times.sort()
    return {**out, "p50": times[len(times) // 2] if times else 0.0, "max": times[-1] if times else 0.0}


async def completions(url: str, sampler: Sampler) -> tuple[int, int, float]:
    """Phase 4. Returns (answered 200, failed, wall seconds)."""
    ok = failed = 0
    body = {"messages": [{"role": "user", "content": "What is agentgateway?"}]}
    started = time.monotonic()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY), timeout=30) as client:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one() -> None:
            nonlocal ok, failed
            async with sem:
                try:
                    r = await client.post(url, json=body)
                    ok += r.status_code == 200
                    failed += r.status_code != 200
                except httpx.HTTPError:
                    failed += 1

        for chunk in range(0, REQUESTS, 500):
            await asyncio.wait_for(asyncio.gather(*(one() for _ in range(min(500, REQUESTS - chunk)))),
                                   PHASE_BUDGET_S)
            sampler.sample(f"requests: {chunk + min(500, REQUESTS - chunk)} sent")
    return ok, failed, time.monotonic() - started


def main() -> None:
    header(f"Soak: {IDLE} idle connections, {SLOW} slow heads, {SESSIONS} abandoned MCP sessions, "
           f"{REQUESTS} completions")
    with fresh_sandbox() as info:
        api, _core, dyn = kube_clients(info)
        server_side_apply(dyn, llm_objects() + fetcher_objects() + [d for d in yaml.safe_load_all(MCP_OBJECTS) if d])
        base = gateway_base(api)
        host, port = base.removeprefix("http://").split(":")
        poll(lambda: httpx.post(f"{base}/mcp", json=INIT, headers=MCP_HEADERS, timeout=10).status_code == 200,
             what="the MCP route")
        poll(lambda: httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]},
                                timeout=10).status_code == 200, what="the LLM route")
        from agwlab.sandbox.paths import SandboxPaths
        from agwlab.sandbox.supervisor import read_state

        state = read_state(SandboxPaths.for_home(info.home))
        sampler = Sampler(int(state["pid"]))
        print(f"  gateway {base}   API {info.apiserver}   sandbox pid {sampler.pid}\n")
        sampler.sample("start (lab applied)")

        flood = asyncio.run(idle_flood(host, int(port), info.apiserver or "", state["token"], state["ca_file"]))
        sampler.sample("after the idle flood")
        dropped, slow_s = asyncio.run(slow_headers(host, int(port)))
        sampler.sample("after the slow heads")
        sess = asyncio.run(sessions(f"{base}/mcp"))
        metrics = f"http://{pod_ip(_core, NS, 'gateway.networking.k8s.io/gateway-name=agentgateway-route')}:15020/metrics"
        gauge = [ln for ln in httpx.get(metrics, timeout=10).text.splitlines()
                 if ln.startswith("agwlab_sandbox_mcp_sessions ")]
        open_sessions = int(float(gauge[0].split()[1])) if gauge else -1
        sampler.sample("after the abandoned sessions")
        r_ok, r_failed, r_wall = asyncio.run(completions(f"{base}/anthropic", sampler))
        after = httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        sampler.sample("end")

        print(f"\n1. {IDLE} idle connections to the gateway listener (cap {MAX_CONNECTIONS})")
        count("held", flood["held"], MAX_CONNECTIONS)
        count("answered 503 at once and closed", flood["refused"], IDLE - MAX_CONNECTIONS)
        count("failed to connect", flood["failed"], 0)
        count("API server answers meanwhile (of 20)", flood["api_ok"], 20)
        count("held ones dropped by the server's header deadline", flood["dropped"], flood["held"],
              note=f"after {flood['drop_s']:.1f}s (deadline {HEADER_TIMEOUT:g}s)")
        print(f"\n2. {SLOW} slow request heads")
        count("dropped by the server", dropped, SLOW, note=f"within {slow_s:.1f}s")
        print(f"\n3. {SESSIONS} MCP sessions opened and abandoned (cap {SessionStore.MAX_SESSIONS})")
        count("answered: a session, or 503 'too many open sessions'", sess["ok"] + sess["full"], SESSIONS)
        count("  of which sessions (idle ones over 60 s made room)", sess["ok"])
        count("  of which 503", sess["full"])
        count("open at the end (agwlab_sandbox_mcp_sessions)", open_sessions, SessionStore.MAX_SESSIONS)
        count(f"no answer (20 s each; or the phase's {PHASE_BUDGET_S:g} s ran out)", sess["timeout"], 0)
        count("anything else (errors)", sess["other"], 0)
        report("answer time p50", sess["p50"] * 1000, "ms")
        report("answer time, slowest", sess["max"] * 1000, "ms")
        print(f"\n4. {REQUESTS} chat completions, {CONCURRENCY} at a time, in {r_wall:.1f}s")
        count("answered 200", r_ok, REQUESTS)
        count("failed", r_failed, 0)
        count("status of a request after the soak", after.status_code, 200)
        first, last = sampler.rows[0], sampler.rows[-1]
        report("VmRSS growth start -> end", last[2] - first[2], "MiB")
        report("open descriptors start -> end", last[3] - first[3], "")
        api.close()


if __name__ == "__main__":
    main()
