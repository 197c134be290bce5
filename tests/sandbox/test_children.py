"""The sandbox's child processes: a minimal environment (never the learner's key), Prometheus
without its lifecycle endpoints, restarted when it dies and reported by ``sandbox status``.

One sandbox of its own, started by the CLI from an environment holding a key and a cloud
credential, as a learner's shell would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agwlab.sandbox import stop
from agwlab.sandbox.paths import SandboxPaths
from agwlab.sandbox.supervisor import read_state
from labtest import poll

KEY = "sk-ant-api03-" + "E" * 90 + "AA"
CLOUD = "aws-secret-" + "s" * 30
FETCHER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: fetcher, namespace: default}
spec:
  selector: {matchLabels: {app: fetcher}}
  template:
    metadata: {labels: {app: fetcher}}
    spec: {containers: [{name: fetcher, image: "ghcr.io/peterj/mcp-website-fetcher:main"}]}
"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGWLAB_HOME": str(home), "ANTHROPIC_API_KEY": KEY, "AWS_SECRET_ACCESS_KEY": CLOUD}
    return subprocess.run([sys.executable, "-m", "agwlab", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    h = tmp_path_factory.mktemp("children-home")
    out = cli(h, "sandbox", "up", "--timeout", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    yield h
    stop(h)


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def prometheus_pid(home: Path) -> int | None:
    prom_dir = str(SandboxPaths.for_home(home).prometheus)
    for pid in Path(SandboxPaths.for_home(home).root / "children").read_text().split():
        try:
            if prom_dir in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return int(pid)
        except OSError:
            continue
    return None


def status(home: Path) -> dict:
    out = cli(home, "sandbox", "status", "--json")
    return json.loads(out.stdout)


def test_children_never_see_the_key_or_other_credentials(home: Path) -> None:
    state = read_state(SandboxPaths.for_home(home))
    kubeconfig = SandboxPaths.for_home(home).kubeconfig
    subprocess.run(["kubectl", "apply", "-f", "-"], input=FETCHER, text=True, check=True, capture_output=True,
                   env={**os.environ, "KUBECONFIG": str(kubeconfig)}, timeout=60)
    prom = prometheus_pid(home)
    assert prom is not None

    def fetcher_pid() -> int | None:
        pids = (SandboxPaths.for_home(home).root / "children").read_text().split()
        return next((int(p) for p in pids if int(p) != prom), None)

    fetcher = poll(fetcher_pid, timeout=60, what="the fetcher's process")
    for pid in (state["pid"], prom, fetcher):
        env = environ_of(pid)
        assert KEY not in env and CLOUD not in env, f"process {pid} inherited a credential"
        assert "PATH=" in env
    assert "AGWLAB_HOME=" in environ_of(state["pid"])


def test_prometheus_lifecycle_endpoints_are_off(home: Path) -> None:
    url = status(home)["prometheus_url"]
    cmdline = Path(f"/proc/{prometheus_pid(home)}/cmdline").read_bytes().decode()
    assert "--web.enable-lifecycle" not in cmdline
    resp = httpx.post(f"{url}/-/quit", timeout=10)
    assert resp.status_code == 403, resp.text  # "Lifecycle API is not enabled."
    assert httpx.get(f"{url}/-/ready", timeout=10).status_code == 200


def test_a_killed_prometheus_is_restarted_and_status_says_so(home: Path) -> None:
    old = prometheus_pid(home)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    url = status(home)["prometheus_url"]

    def back() -> int | None:
        pid = prometheus_pid(home)
        if pid and pid != old and httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
            return pid
        return None

    poll(back, timeout=60, what="Prometheus to be restarted")
    info = poll(lambda: (lambda s: s if s.get("prometheus_state") == "running" else None)(status(home)),
                timeout=20, what="status to say Prometheus runs again")
    assert info["prometheus_restarts"] == 1
    text = cli(home, "sandbox", "status").stdout
    assert "restarted 1 time(s)" in text
