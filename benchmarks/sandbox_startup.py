"""Sandbox start-up, applying the lab's objects, and the sandbox process's memory.

For each of ``RUNS`` fresh ``AGWLAB_HOME`` directories:

1. ``python -m agwlab sandbox up`` is started as a learner would; meanwhile this script polls
   for the moment the API server answers an authenticated ``GET /api/v1/namespaces`` (the
   "API ready" time). When ``up`` returns, Prometheus ``/-/ready`` and the collector Pod's
   Ready condition are checked at once: ``up`` must return only when they are ready.
2. With a warm ``kubernetes`` client (discovery done, connection open), the lab's nine objects
   are applied with server-side apply, timed; then applied again unchanged, timed.
3. The sandbox process's ``VmRSS`` is read from ``/proc/<pid>/status``: right after ``up``, and
   again after the lab's objects are programmed and a few requests went through the gateway.
   This is the whole sandbox process (API server, controller, kubelet, the Gateway's proxy and
   the in-process workloads), not the API server alone; Prometheus and the fetcher are separate
   processes and are shown apart.

Run: ``.venv/bin/python benchmarks/sandbox_startup.py``
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    FETCHER_NS,
    NS,
    REPO,
    descendants,
    gateway_base,
    header,
    kube_clients,
    lab_objects,
    median,
    poll,
    relocate,
    report,
    server_side_apply,
)

from agwlab.sandbox import status, stop
from agwlab.sandbox.paths import SandboxPaths

__all__ = ["main", "one_run"]

RUNS = 5
WARM_NS = "bench-second-lab"
UP_TIMEOUT = 60.0


def _kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _wait_api(paths: SandboxPaths, proc: subprocess.Popen[bytes], t0: float) -> float | None:
    """Seconds from ``t0`` until the API answers an authenticated list; None if ``up`` ended first."""
    client: httpx.Client | None = None
    try:
        while time.perf_counter() - t0 < UP_TIMEOUT:
            try:
                state = json.loads(paths.state.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                state = {}
            if state.get("apiserver") and state.get("token") and state.get("ca_file"):
                if client is None:
                    client = httpx.Client(verify=ssl.create_default_context(cafile=state["ca_file"]),
                                          headers={"Authorization": f"Bearer {state['token']}"}, timeout=2)
                try:
                    if client.get(f"{state['apiserver']}/api/v1/namespaces").status_code == 200:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
            if proc.poll() is not None:
                return None
            time.sleep(0.005)
    finally:
        if client is not None:
            client.close()
    return None


def one_run() -> dict[str, Any]:
    """Start a sandbox in a fresh home, measure, stop it, remove the home."""
    home = Path(tempfile.mkdtemp(prefix="agwlab-bench-up-"))
    paths = SandboxPaths.for_home(home)
    env = {**os.environ, "AGWLAB_HOME": str(home)}
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "agwlab", "sandbox", "up", "--timeout", str(UP_TIMEOUT)],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        api = _wait_api(paths, proc, t0)
        output, _ = proc.communicate(timeout=UP_TIMEOUT)
        out["up_s"] = time.perf_counter() - t0
        out["api_s"] = api
        if proc.returncode != 0:
            raise RuntimeError(f"sandbox up failed ({proc.returncode}):\n{output.decode(errors='replace')}")
        info = status(home)
        # what must already hold when `up` returns
        prom_ok = bool(info.prometheus_url) and httpx.get(f"{info.prometheus_url}/-/ready", timeout=2).status_code == 200
        api_client, core, dyn = kube_clients(info)
        pods = core.list_namespaced_pod("telemetry",
                                        label_selector="app.kubernetes.io/name=opentelemetry-collector-traces").items
        coll_ok = any({c.type: c.status for c in (p.status.conditions or [])}.get("Ready") == "True" for p in pods)
        out.update(prom_ready=prom_ok, collector_ready=coll_ok, pid=info.pid)
        out["rss_up_kib"] = _kib(info.pid, "VmRSS")
        objs = lab_objects()
        # warm the client: discovery for every kind, one request on the open connection
        for o in objs:
            dyn.resources.get(api_version=o["apiVersion"], kind=o["kind"])
        core.list_namespace()
        per: list[tuple[str, float]] = []
        t = time.perf_counter()
        server_side_apply(dyn, objs, timings=per)
        out["apply_s"] = time.perf_counter() - t
        out["apply_each"] = per
        t = time.perf_counter()
        server_side_apply(dyn, objs)
        out["reapply_s"] = time.perf_counter() - t
        out["objects"] = len(objs)
        # let the sandbox do its work, then send a little traffic, then read memory again
        base = gateway_base(api_client)
        poll(lambda: httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]},
                                timeout=5).status_code == 200, what="the gateway to serve /anthropic")
        poll(lambda: any({c.type: c.status for c in (p.status.conditions or [])}.get("Ready") == "True"
                         for p in core.list_namespaced_pod(FETCHER_NS, label_selector="app=mcp-website-fetcher")
                         .items), what="the fetcher Pod to be Ready")
        for _ in range(20):
            httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]}, timeout=5)
        out["rss_lab_kib"] = _kib(info.pid, "VmRSS")
        out["hwm_kib"] = _kib(info.pid, "VmHWM")
        out["children"] = [(p, _kib(p, "VmRSS"), _cmd(p)) for p in descendants(info.pid)]
        # the same objects again, created in a second namespace: what a create costs once the
        # sandbox has done its one-time work for these kinds (imports, the first Pods)
        server_side_apply(dyn, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WARM_NS}}])
        time.sleep(1.0)  # let the controller and kubelet settle after the first lab
        t = time.perf_counter()
        server_side_apply(dyn, relocate(objs, WARM_NS))
        out["apply_warm_s"] = time.perf_counter() - t
        api_client.close()
        return out
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)


def api_server_alone() -> tuple[float, float]:
    """``(VmRSS MiB, apply ms)`` of the API server run on its own, after the lab's objects
    (and their namespace) were applied to it: what the API server itself costs."""
    from kubernetes import config, dynamic

    root = Path(tempfile.mkdtemp(prefix="agwlab-apiserver-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "agwlab.sandbox.apiserver", "--root", str(root),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ready"):
            raise RuntimeError(f"the API server did not start: {line}")
        dyn = dynamic.DynamicClient(config.new_client_from_config(config_file=str(root / "kubeconfig")))
        server_side_apply(dyn, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
        t0 = time.perf_counter()
        server_side_apply(dyn, lab_objects())
        took = (time.perf_counter() - t0) * 1000
        return _kib(proc.pid, "VmRSS") / 1024, took
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    header(f"sandbox start-up: {RUNS} runs, each in a fresh AGWLAB_HOME")
    runs = []
    for i in range(RUNS):
        r = one_run()
        runs.append(r)
        api = f"{r['api_s']:.2f}s" if r["api_s"] is not None else "n/a"
        print(f"  run {i + 1}: API {api}  up returned {r['up_s']:.2f}s  prometheus ready={r['prom_ready']}  "
              f"collector ready={r['collector_ready']}  apply {r['apply_s'] * 1000:.0f}ms "
              f"(unchanged {r['reapply_s'] * 1000:.0f}ms, 2nd namespace {r['apply_warm_s'] * 1000:.0f}ms)  VmRSS {r['rss_up_kib'] / 1024:.0f}->"
              f"{r['rss_lab_kib'] / 1024:.0f} MiB", flush=True)
    print()
    print("figures (median of runs)")
    apis = [r["api_s"] for r in runs if r["api_s"] is not None]
    if apis:
        report("sandbox up -> API answers (authenticated list)", median(apis), "s", 2.0)
    report("sandbox up returned (Prometheus + collector ready)", median([r["up_s"] for r in runs]), "s", 3.0)
    ok = all(r["prom_ready"] and r["collector_ready"] for r in runs)
    print(f"  {'at return: Prometheus /-/ready and collector Pod Ready':<56} {'all runs' if ok else 'NOT ALL'}"
          f"  {'PASS' if ok else 'MISS'}")
    n = runs[0]["objects"]
    report(f"server-side apply of the lab's {n} objects (create)", median([r["apply_s"] for r in runs]) * 1000,
           "ms", 100.0)
    report(f"server-side apply of the same {n} objects (unchanged)",
           median([r["reapply_s"] for r in runs]) * 1000, "ms")
    report(f"server-side apply of {n} objects, created in a 2nd namespace",
           median([r["apply_warm_s"] for r in runs]) * 1000, "ms")
    print("  first create, per object (run 1 .. run 5, ms):")
    for j, (what, _) in enumerate(runs[0]["apply_each"]):
        print(f"     {what:<44} " + " ".join(f"{r['apply_each'][j][1] * 1000:6.0f}" for r in runs))
    report("sandbox process VmRSS right after up", median([r["rss_up_kib"] for r in runs]) / 1024, "MiB", 100.0)
    report("sandbox process VmRSS with the lab applied + traffic", median([r["rss_lab_kib"] for r in runs]) / 1024,
           "MiB", 100.0)
    report("sandbox process VmHWM (peak) with the lab applied", median([r["hwm_kib"] for r in runs]) / 1024, "MiB")
    rss, took = api_server_alone()
    report("API server alone: lab's objects applied (no controller)", took, "ms", 100.0)
    report("API server alone: VmRSS with the lab's objects stored", rss, "MiB", 100.0)
    print("  (VmRSS is the whole sandbox process: API server, controller, kubelet, the Gateway's proxy and the")
    print("   in-process workloads. Separate processes, not included above, in the last run:)")
    for pid, kib, cmd in runs[-1]["children"]:
        print(f"     pid {pid:<7} {kib / 1024:7.0f} MiB  {cmd[:90]}")


if __name__ == "__main__":
    main()
