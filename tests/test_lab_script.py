"""The README's first command: ``./lab start`` starts the sandbox and JupyterLab at the learner's copy
of the first notebook; what JupyterLab saves there never touches the tracked notebooks."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import httpx

from agwlab.sandbox import status, stop
from harness import free_port
from labtest import wait_for_jupyterlab

ROOT = Path(__file__).resolve().parents[1]


def _lab_start(args: list[str], env: dict[str, str], port: int, token: str) -> subprocess.Popen[str]:
    """``./lab start [args]`` in its own process group, JupyterLab on ``port`` with ``token``."""
    return subprocess.Popen(
        [str(ROOT / "lab"), "start", *args, "--no-browser", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_lab_start_serves_the_first_notebook(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tracked_before = (ROOT / "notebooks" / "00-setup.ipynb").read_bytes()
    copy = ROOT / "my-lab" / "notebooks" / "00-setup.ipynb"
    kept = copy.read_bytes() if copy.exists() else None  # a developer's own copy is put back afterwards
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "AGWLAB_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    proc = _lab_start([], env, port, token)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_jupyterlab(proc, base, token, output=lambda: proc.stdout.read() if proc.stdout else "")
        nb = httpx.get(f"{base}/api/contents/notebooks/00-setup.ipynb", params={"token": token}, timeout=10)
        assert nb.status_code == 200 and nb.json()["type"] == "notebook"
        # JupyterLab's autosave, as after running a cell: outputs go into the learner's copy only
        saved = nb.json()
        cell = next(c for c in saved["content"]["cells"] if c["cell_type"] == "code")
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
        cell["execution_count"] = 1
        put = httpx.put(f"{base}/api/contents/notebooks/00-setup.ipynb", params={"token": token}, timeout=10,
                        json={"type": "notebook", "format": "json", "content": saved["content"]})
        assert put.status_code == 200, put.text
        assert '"ran\\n"' in (ROOT / "my-lab" / "notebooks" / "00-setup.ipynb").read_text()
        assert tracked_before == (ROOT / "notebooks" / "00-setup.ipynb").read_bytes()
        outside = httpx.get(f"{base}/api/contents/README.md", params={"token": token}, timeout=10)
        assert outside.status_code == 404, "JupyterLab should show the learner's copy, not the repository"
        lab_page = httpx.get(f"{base}/lab/tree/notebooks/00-setup.ipynb", params={"token": token}, timeout=10)
        assert lab_page.status_code == 200
        assert status(home).running, "./lab start should leave the sandbox running"
        kernels = httpx.get(f"{base}/api/kernelspecs", params={"token": token}, timeout=10).json()
        assert "python3" in kernels["kernelspecs"]
    finally:
        if kept is not None:
            copy.write_bytes(kept)
        else:
            copy.unlink(missing_ok=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        stop(home)


def test_lab_start_cluster_starts_no_sandbox(tmp_path: Path, kind_sandbox) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    copy = ROOT / "my-lab" / "notebooks" / "00-setup.ipynb"
    kept = copy.read_bytes() if copy.exists() else None
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "AGWLAB_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "KUBECONFIG": str(kind_sandbox.kubeconfig)}
    env.pop("AGWLAB_TARGET", None)
    proc = _lab_start(["--cluster"], env, port, token)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_jupyterlab(proc, base, token, output=lambda: proc.stdout.read() if proc.stdout else "")
        assert not status(home).running and not (home / "sandbox" / "state.json").exists()
        # ./lab execs JupyterLab, whose kernels inherit its environment: the cluster is the target
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert b"AGWLAB_TARGET=cluster" in environ.split(b"\0")
    finally:
        if kept is not None:
            copy.write_bytes(kept)
        else:
            copy.unlink(missing_ok=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_lab_start_cluster_without_a_kubeconfig_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "AGWLAB_HOME": str(tmp_path / "home"), "KUBECONFIG": str(tmp_path / "missing.yaml")}
    proc = subprocess.run([str(ROOT / "lab"), "start", "--cluster", "--no-browser"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no usable kubeconfig" in proc.stderr and "cluster plan" in proc.stderr
