"""A workshop on one machine: N attendees run notebook 01 at the same time on one sandbox.

The instructor's ``workshop.create`` makes the attendees (namespace, ServiceAccount token,
RBAC, kubeconfig). Then every attendee's notebook 01 runs in its own Jupyter kernel, all at
once, as on a JupyterHub where each attendee has a kernel: ``AGWLAB_TARGET=cluster``, only
their kubeconfig, a key shaped like Anthropic's (the sandbox's stand-in accepts it) and
``AGWLAB_STRICT=1`` so any failed check fails the run. Printed: how long creating the
attendees took, the wall time until the last notebook finished, each attendee's time
(median, 95th percentile, slowest), how many passed (from the progress the checks recorded,
as the instructor sees it), and memory: the sandbox process (API server, controller and
every Gateway's proxy) and its child processes, and the kernels, sampled at their peak.

With ``--through 04`` each attendee runs notebooks 01 to 04 one after the other (each in a
new kernel, as a learner opens the next notebook), with ``AGWLAB_PROMETHEUS_URL`` set to the
sandbox's Prometheus and the lab website as the page to fetch, as the instructor hands out.

Run: ``.venv/bin/python benchmarks/workshop_attendees.py [N] [--through 04]`` (default 30, 01)
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import nbformat
from benchlib import KEY, REPO, descendants, fresh_sandbox, header, percentile, report
from jupyter_client import KernelManager
from nbclient import NotebookClient

__all__ = ["main"]

NOTEBOOKS = REPO / "notebooks"
ORDER = ["01-claude-llm-connection.ipynb", "02-traces.ipynb", "03-mcp-server.ipynb", "04-mcp-metrics.ipynb"]
TARGET_S = 600.0  # 30 attendees through notebook 01 on a 2-core machine


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Peak(threading.Thread):
    """Samples every second: memory of the sandbox (and its children) and of this process's kernels,
    and how long the API server takes to answer ``GET /version`` (its event loop's lag, as seen
    from outside: every part of the sandbox shares that loop)."""

    def __init__(self, sandbox_pid: int, apiserver: str, ca_file: str | None) -> None:
        super().__init__(daemon=True)
        self.sandbox_pid = sandbox_pid
        self.sandbox = self.children = self.kernels = 0.0
        self.api_latencies: list[float] = []
        self.api_failures = 0
        self.stop = threading.Event()
        self._client = httpx.Client(base_url=apiserver, verify=ca_file or False, timeout=30.0)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            start = time.perf_counter()
            try:
                self._client.get("/version").raise_for_status()
                self.api_latencies.append(time.perf_counter() - start)
            except httpx.HTTPError:
                self.api_failures += 1
            self.sandbox = max(self.sandbox, _rss_mib(self.sandbox_pid))
            self.children = max(self.children, sum(_rss_mib(p) for p in descendants(self.sandbox_pid)))
            self.kernels = max(self.kernels, sum(_rss_mib(p) for p in descendants(os.getpid())))


def main(n: int = 30, through: str = "01") -> int:
    order = [nb for nb in ORDER if nb[:2] <= through]
    shown = "notebook 01" if len(order) == 1 else f"notebooks 01-{through}"
    header(f"workshop: {n} attendees run {shown} at once on one sandbox")
    with fresh_sandbox() as info:
        from agwlab import workshop
        from agwlab.lab import connect

        lab = connect(target="sandbox", namespace="default")
        work = Path(tempfile.mkdtemp(prefix="agwlab-workshop-bench-"))
        names = [f"a{i:02d}" for i in range(1, n + 1)]
        t0 = time.perf_counter()
        made = workshop.create(lab, names, out_dir=work / "kubeconfigs")
        created = time.perf_counter() - t0
        prometheus = lab.prometheus_url()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AGWLAB_", "KUBECONFIG"))}
        times: dict[str, float] = {}
        errors: dict[str, str] = {}
        peak = _Peak(info.pid, info.apiserver or "", str(info.ca_file) if info.ca_file else None)
        peak.start()

        def attendee(name: str, kubeconfig: Path) -> None:
            env = {**base, "KUBECONFIG": str(kubeconfig), "AGWLAB_TARGET": "cluster", "AGWLAB_STRICT": "1",
                   "ANTHROPIC_API_KEY": KEY, "AGWLAB_HOME": str(work / name), "MPLBACKEND": "agg",
                   "IPYTHONDIR": str(work / name / "ipython"), "AGWLAB_PROMETHEUS_URL": prometheus,
                   "AGWLAB_FETCH_URL": "http://lab-website.agwlab-system.svc.cluster.local/"}
            (work / name).mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            for notebook in order:
                nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
                # IPC sockets under the attendee's own directory: N kernels started at once on TCP
                # pick random ports and can collide ("Address already in use"), killing a kernel.
                km = KernelManager(kernel_name="python3", transport="ipc", ip=str(work / name / "kernel"))
                try:
                    NotebookClient(nb, km=km, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute(env=env)
                except Exception as exc:  # noqa: BLE001 - counted and shown below
                    errors[name] = f"{notebook}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
                    break
            times[name] = time.perf_counter() - start

        t1 = time.perf_counter()
        threads = [threading.Thread(target=attendee, args=(a.name, a.kubeconfig)) for a in made]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t1
        peak.stop.set()
        report(f"create {n} attendees (namespace, token, RBAC, kubeconfig)", created, "s")
        report(f"all {n} attendees done (wall, from the first kernel start)", wall, "s", TARGET_S)
        durations = sorted(times.values())
        report(f"one attendee's {shown}: median", percentile(durations, 50), "s")
        report(f"one attendee's {shown}: 95th percentile", percentile(durations, 95), "s")
        report(f"one attendee's {shown}: slowest", durations[-1], "s")
        report(f"attendees whose {shown} ran to the end (of {n})", n - len(errors), "")
        report("sandbox process peak VmRSS (API server, controller, all proxies)", peak.sandbox, "MiB")
        report("sandbox child processes peak VmRSS (Prometheus, fetchers)", peak.children, "MiB")
        report(f"{n} Jupyter kernels peak VmRSS, together", peak.kernels, "MiB")
        lat = sorted(peak.api_latencies) or [float("nan")]
        report("API server GET /version while they ran: median", percentile(lat, 50) * 1000, "ms")
        report("API server GET /version while they ran: slowest", lat[-1] * 1000, "ms", 5000.0)
        report("API server GET /version unanswered (30 s timeout)", peak.api_failures, "", 0)
        report("load average (1 min) when the last notebook finished", os.getloadavg()[0], "")
        for name, err in sorted(errors.items())[:5]:
            print(f"  FAILED {name}: {err}", flush=True)
        try:
            progress = workshop.progress(lab, names)
        except Exception as exc:  # noqa: BLE001 - say what happened to the sandbox
            print(f"  the sandbox did not answer afterwards: {exc}", flush=True)
            log = Path(info.daemon_log or "")
            if info.daemon_log and log.exists():
                print("  sandbox log, last lines:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
            return 1
        passed = [a for a in names if a not in errors and progress[a] and all(e["ok"] for e in progress[a].values())]
        steps = sorted({s for rows in progress.values() for s in rows})
        report(f"attendees whose every recorded check passed (of {n}, {len(steps)} steps)", len(passed), "")
        workshop.delete(lab, names)
    return 0 if len(passed) == n else 1


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="N workshop attendees run the lab's notebooks at once")
    parser.add_argument("n", nargs="?", type=int, default=30, help="attendees (default 30)")
    parser.add_argument("--through", choices=["01", "02", "03", "04"], default="01",
                        help="the last notebook each attendee runs (default 01)")
    args = parser.parse_args()
    sys.exit(main(args.n, args.through))
