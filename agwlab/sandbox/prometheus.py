"""The real Prometheus (Debian's ``prometheus`` package), configured and supervised.

It scrapes every agentgateway proxy Pod on ``<podIP>:15020/metrics`` every second,
with the labels a PodMonitor from agentgateway's Helm chart would give the series
(``job="agentgateway-system/agentgateway-proxy"``, ``namespace``, ``pod``, ``container``,
``endpoint``). Targets come from a ``file_sd`` file the controller rewrites.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .network import http_ok
from .paths import SandboxPaths
from .procs import child_environment, die_with_parent

__all__ = ["PROMETHEUS_HINT", "PrometheusServer", "find_prometheus"]

_log = logging.getLogger("agwlab.sandbox.prometheus")

PROMETHEUS_HINT = "install Debian's prometheus package: sudo apt-get install -y prometheus"
JOB = "agentgateway-system/agentgateway-proxy"

_CONFIG = """\
# Written by the agwlab sandbox. Scrapes agentgateway proxies like a PodMonitor would.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    metrics_path: /metrics
    honor_labels: false
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
"""


def find_prometheus() -> str | None:
    """The prometheus binary: ``$AGWLAB_PROMETHEUS``, then PATH, then /usr/bin."""
    for candidate in (os.environ.get("AGWLAB_PROMETHEUS"), shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class PrometheusServer:
    def __init__(self, paths: SandboxPaths, address: str, port: int = 9090) -> None:
        self._dir = paths.prometheus
        self._address = address
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._started_at = 0.0
        self.binary = find_prometheus()
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://{self._address}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def targets_file(self) -> Path:
        return self._dir / "targets.json"

    def write_targets(self, targets: list[tuple[str, str, str, str]]) -> None:
        """``[(pod ip, namespace, pod, gateway)]`` -> file_sd JSON."""
        groups = [
            {"targets": [f"{ip}:15020"],
             # what a PodMonitor's relabelling adds; nothing that collides with agentgateway's own
             # labels (a target label `gateway` would turn the metric's into `exported_gateway`)
             "labels": {"namespace": ns, "pod": pod, "container": "agentgateway", "endpoint": "metrics"}}
            for ip, ns, pod, _gw in targets
        ]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1), encoding="utf-8")
        os.replace(tmp, self.targets_file)

    async def start(self) -> None:
        if self.binary is None:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        if not self.targets_file.exists():
            self.write_targets([])
        config = self._dir / "prometheus.yml"
        config.write_text(_CONFIG.format(job=JOB, targets=self.targets_file), encoding="utf-8")
        with open(self._dir / "prometheus.log", "ab") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self._dir / 'data'}",
                 f"--web.listen-address={self._address}:{self._port}", "--storage.tsdb.retention.time=2d",
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                env=child_environment(),
            )
        self._started_at = time.monotonic()
        for _ in range(300):
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with code {self._proc.returncode}; see {self._dir / 'prometheus.log'}")
            if await asyncio.to_thread(http_ok, f"{self.url}/-/ready", timeout=0.5):
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("prometheus did not become ready in 6s")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def supervise(self, on_change: Callable[[str], None], *, first_delay: float = 1.0,
                        max_delay: float = 60.0) -> None:
        """Restart Prometheus whenever it exits, waiting ``first_delay`` seconds, doubling up to
        ``max_delay`` while it keeps failing (back to ``first_delay`` after a minute up).

        ``on_change(text)`` hears what is going on: ``"running"`` or why it is restarting.
        Runs until cancelled or :meth:`stop`.
        """
        delay = first_delay
        while not self._stopping:
            await asyncio.sleep(0.2)
            if self._proc is None or self._stopping:
                continue
            code = self._proc.poll()
            if code is None:
                if time.monotonic() - self._started_at > 60:
                    delay = first_delay
                continue
            self.restarts += 1
            why = f"exited with code {code}" if code >= 0 else f"killed by signal {-code}"
            _log.warning("prometheus %s; restarting in %gs (restart %d)", why, delay, self.restarts)
            on_change(f"restarting: {why}; next try in {delay:g}s (see {self._dir / 'prometheus.log'})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            if self._stopping:
                return
            try:
                await self.start()
            except Exception as exc:  # the next round reports and retries
                _log.warning("prometheus did not come back: %s", exc)
                continue
            on_change("running")

    async def stop(self) -> None:
        self._stopping = True
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        for _ in range(250):
            if self._proc.poll() is not None:
                return
            await asyncio.sleep(0.02)
        self._proc.kill()
