"""What the sandbox's proxy (its stand-in for agentgateway) adds to a chat completion, and
whether it counts every request under load. These are figures of the Python sandbox, not of
agentgateway itself.

1. Latency: the same question sent ``N`` times through the gateway (OpenAI Chat Completions
   body to ``/anthropic``) and ``N`` times straight to the Anthropic stand-in's Pod
   (Anthropic Messages body to ``<pod ip>:8443/v1/messages``), interleaved one by one so both
   see the same machine, each over its own keep-alive ``httpx`` connection, after a warm-up.
   The added latency is a percentile of the per-pair differences (gateway minus direct, the
   two requests of a pair sent back to back); p50(gateway) - p50(direct) is printed too.
2. Load: ``CONCURRENT`` requests at once through the gateway (asyncio + httpx); all must be
   answered 200, and ``agentgateway_requests_total`` for the route, scraped from the proxy
   Pod's ``:15020/metrics``, must go up by exactly that many.

Run: ``.venv/bin/python benchmarks/proxy_overhead.py``
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from benchlib import (
    KEY,
    NS,
    SEED_MODEL,
    counter_values,
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

__all__ = ["main"]

N = 300
WARMUP = 30
CONCURRENT = 200
TIME_BUDGET_S = 120.0   # the sequential loop stops early rather than run longer than this
QUESTION = "Write me a paragraph about Istio Ambient Mesh"
MAX_TOKENS = 1024
ROUTE = f"{NS}/claude"


def _selector(core: Any, namespace: str, service: str) -> tuple[str, int]:
    """Label selector and target port of a Service."""
    svc = core.read_namespaced_service(service, namespace)
    sel = ",".join(f"{k}={v}" for k, v in sorted((svc.spec.selector or {}).items()))
    return sel, int(svc.spec.ports[0].target_port)


def _sequential(base: str, direct: str) -> tuple[list[float], list[float], int]:
    gw_body = {"model": "any", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": QUESTION}]}
    direct_body = {"model": SEED_MODEL, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": QUESTION}]}
    direct_headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    gw_t: list[float] = []
    dir_t: list[float] = []
    bad = 0
    with httpx.Client(timeout=30) as gw, httpx.Client(timeout=30, headers=direct_headers) as d:
        def via_gateway() -> float:
            nonlocal bad
            t = time.perf_counter()
            r = gw.post(f"{base}/anthropic", json=gw_body)
            el = time.perf_counter() - t
            bad += r.status_code != 200 or r.json()["object"] != "chat.completion"
            return el

        def straight() -> float:
            nonlocal bad
            t = time.perf_counter()
            r = d.post(f"{direct}/v1/messages", json=direct_body)
            el = time.perf_counter() - t
            bad += r.status_code != 200 or r.json()["type"] != "message"
            return el

        for _ in range(WARMUP):
            via_gateway()
            straight()
        bad = 0
        deadline = time.monotonic() + TIME_BUDGET_S
        for i in range(N):
            if time.monotonic() > deadline:
                print(f"  (time budget reached after {i} pairs)")
                break
            # alternate who goes first, so neither always follows the other
            if i % 2:
                gw_t.append(via_gateway())
                dir_t.append(straight())
            else:
                dir_t.append(straight())
                gw_t.append(via_gateway())
    return gw_t, dir_t, bad


async def _concurrent(base: str, n: int) -> tuple[list[int], float]:
    body = {"messages": [{"role": "user", "content": QUESTION}]}
    limits = httpx.Limits(max_connections=n + 50, max_keepalive_connections=n + 50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one() -> int:
            try:
                return (await client.post(f"{base}/anthropic", json=body)).status_code
            except httpx.HTTPError as e:
                return -1 if not isinstance(e, httpx.TimeoutException) else -2
        t = time.perf_counter()
        codes = await asyncio.gather(*(one() for _ in range(n)))
        return list(codes), time.perf_counter() - t


def main() -> None:
    header(f"proxy overhead: {N} interleaved requests each way, then {CONCURRENT} concurrent")
    with fresh_sandbox() as info:
        api, core, dyn = kube_clients(info)
        server_side_apply(dyn, llm_objects())
        base = gateway_base(api)
        poll(lambda: httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]},
                                timeout=5).status_code == 200, what="the gateway to serve /anthropic")
        sel, port = _selector(core, "agwlab-system", "anthropic-standin")
        direct = f"http://{pod_ip(core, 'agwlab-system', sel)}:{port}"
        metrics = f"http://{pod_ip(core, NS, 'gateway.networking.k8s.io/gateway-name=agentgateway-route')}:15020/metrics"
        print(f"  gateway {base}/anthropic   stand-in {direct}/v1/messages   metrics {metrics}")

        gw_t, dir_t, bad = _sequential(base, direct)
        ms = 1000.0
        g50, g99 = percentile(gw_t, 50) * ms, percentile(gw_t, 99) * ms
        d50, d99 = percentile(dir_t, 50) * ms, percentile(dir_t, 99) * ms
        diffs = [(g - d) * ms for g, d in zip(gw_t, dir_t, strict=True)]
        print(f"\nsequential, {len(gw_t)} pairs ({bad} answers not 200 or wrong shape)")
        report("direct to the stand-in p50", d50, "ms")
        report("direct to the stand-in p99", d99, "ms")
        report("through the sandbox's proxy p50", g50, "ms")
        report("through the sandbox's proxy p99", g99, "ms")
        report("added by the sandbox's proxy p50 (of per-pair differences)", percentile(diffs, 50), "ms", 2.0)
        report("added by the sandbox's proxy p99 (of per-pair differences)", percentile(diffs, 99), "ms", 10.0)
        report("p50 through it - p50 direct (not a percentile of added time)", g50 - d50, "ms")
        report("p99 through it - p99 direct (not a percentile of added time)", g99 - d99, "ms")

        def count() -> float:
            return sum(counter_values(metrics, "agentgateway_requests", ("status",), route=ROUTE).values())
        before = count()
        codes, wall = asyncio.run(_concurrent(base, CONCURRENT))
        ok = codes.count(200)
        # the counter is written when the response ends; give the scrape a moment to see the last ones
        try:
            after = poll(lambda: (lambda v: v if v >= before + CONCURRENT else None)(count()), timeout=5,
                         what="the counter")
        except TimeoutError:
            after = count()
        delta = after - before
        others = {c: codes.count(c) for c in set(codes) if c != 200}
        print(f"\n{CONCURRENT} concurrent requests through the gateway in {wall:.2f}s "
              f"({CONCURRENT / wall:.0f} req/s); other answers: {others or 'none'}")
        print(f"  {'answered 200':<56} {ok:>10d}     target = {CONCURRENT}  {'PASS' if ok == CONCURRENT else 'MISS'}")
        print(f"  {'agentgateway_requests_total delta (route claude)':<56} {delta:>10.0f}     target = {CONCURRENT}  "
              f"{'PASS' if delta == CONCURRENT else 'MISS'}")
        api.close()


if __name__ == "__main__":
    main()
