"""The sandbox's life cycle through its CLI: up, status, kubeconfig, down, kill, two homes."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from agwlab.sandbox import ensure_running, status, stop
from agwlab.sandbox.paths import SandboxPaths
from agwlab.sandbox.supervisor import read_state
from labtest import poll


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGWLAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "agwlab", "sandbox", *args], capture_output=True, text=True,
                          env=env, timeout=90)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    yield h
    stop(h)


def _core(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def test_up_status_kubeconfig_down(home: Path) -> None:
    up = cli(home, "up")
    assert up.returncode == 0, up.stderr
    assert "API server" in up.stdout and "127." in up.stdout
    st = json.loads(cli(home, "status", "--json").stdout)
    assert st["running"] is True
    assert st["apiserver"].startswith("https://127.")
    assert Path(st["kubeconfig"]).is_file()
    kc = cli(home, "kubeconfig").stdout.strip().splitlines()[-1]
    assert kc == st["kubeconfig"]
    # the kubeconfig works with the official client
    names = {n.metadata.name for n in _core(Path(kc)).list_namespace().items}
    assert {"default", "agentgateway-system", "telemetry"} <= names
    pid = st["pid"]
    again = cli(home, "up")
    assert again.returncode == 0
    assert json.loads(cli(home, "status", "--json").stdout)["pid"] == pid, "up is idempotent"
    down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    st = json.loads(cli(home, "status", "--json").stdout)
    assert st["running"] is False
    assert cli(home, "status").returncode == 3


# Tests that only need a running sandbox use the session's: each sandbox start costs seconds.

def test_requires_the_bearer_token(sandbox) -> None:  # type: ignore[no-untyped-def]
    info = sandbox
    verify = ssl.create_default_context(cafile=str(info.ca_file))
    r = httpx.get(f"{info.apiserver}/api/v1/namespaces", timeout=5, verify=verify)
    assert r.status_code == 401
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "Unauthorized"
    r = httpx.get(f"{info.apiserver}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}, timeout=5,
                  verify=verify)
    assert r.status_code == 401


def test_binds_loopback_only(sandbox, sandbox_home: Path) -> None:  # type: ignore[no-untyped-def]
    state = read_state(SandboxPaths.for_home(sandbox_home))
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    mine = [line for line in out.splitlines() if f"pid={state['pid']}," in line]
    assert mine, out
    for line in mine:
        local = line.split()[3].removeprefix("[::ffff:")
        assert local.startswith("127."), line


def test_objects_survive_down_up_and_a_killed_process(home: Path) -> None:
    info = ensure_running(home)
    core = _core(info.kubeconfig)
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="keep-me"),
                                                                     data={"a": "1"}))
    stop(home)
    info = ensure_running(home)
    assert _core(info.kubeconfig).read_namespaced_config_map("keep-me", "default").data == {"a": "1"}
    _core(info.kubeconfig).create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after-kill"), data={"b": "2"}))
    os.kill(info.pid, signal.SIGKILL)
    poll(lambda: not status(home).running, timeout=10, what="the killed sandbox to count as stopped", every=0.05)
    info = ensure_running(home)
    core = _core(info.kubeconfig)
    assert core.read_namespaced_config_map("after-kill", "default").data == {"b": "2"}
    assert core.read_namespaced_config_map("keep-me", "default").data == {"a": "1"}


def test_two_homes_are_two_sandboxes(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    a = sandbox
    try:
        b = ensure_running(other)
        assert a.apiserver != b.apiserver
        _core(a.kubeconfig).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="only-in-a")))
        names_b = {n.metadata.name for n in _core(b.kubeconfig).list_namespace().items}
        assert "only-in-a" not in names_b
    finally:
        stop(other)
        _core(a.kubeconfig).delete_namespace("only-in-a")


def test_logs_shows_the_daemon_log(sandbox, sandbox_home: Path) -> None:  # type: ignore[no-untyped-def]
    out = cli(sandbox_home, "logs", "--tail", "0")
    assert out.returncode == 0
    assert "sandbox ready" in out.stdout


def test_a_home_that_is_a_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("keep me", encoding="utf-8")
    out = cli(home, "up")
    assert out.returncode == 1
    assert "AGWLAB_HOME" in out.stderr and "Traceback" not in out.stderr
    assert home.read_text(encoding="utf-8") == "keep me"


def test_down_without_a_sandbox_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "never-used"
    out = cli(home, "down")
    assert out.returncode == 0 and "not running" in out.stdout
    assert not home.exists()


def test_a_home_owned_by_another_user_is_refused_with_the_fix(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("making a folder another user owns needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, 65534, 65534)
    out = cli(theirs, "up", "--timeout", "5")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "not to you" in out.stderr and "AGWLAB_HOME" in out.stderr and "chown" in out.stderr
    assert not (theirs / "sandbox").exists()  # nothing was written there


def test_down_on_a_full_disk_says_so_without_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "full"
    paths = SandboxPaths.for_home(home)
    paths.ensure()
    paths.state.write_text(json.dumps({"pid": None, "ready": True}))
    # every write of the new state file lands on /dev/full: ENOSPC, as on a full disk
    paths.state.with_suffix(".tmp").symlink_to("/dev/full")
    out = cli(home, "down")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "disk is full" in out.stderr and "No space left" in out.stderr
