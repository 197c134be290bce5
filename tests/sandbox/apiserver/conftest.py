"""A real API server for the tests: a Store in ``tmp_path`` served by uvicorn on loopback.

The fixture ``apiserver`` yields an object with ``.url``, ``.token``, ``.kubeconfig`` (a
path) and ``.store``. Tests write through the API (kubectl or the client) and may read
``.store`` directly to check what was stored.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml

from agwlab.sandbox.apiserver import create_app
from agwlab.sandbox.apiserver.tls import ensure_tls
from agwlab.sandbox.paths import SandboxPaths
from agwlab.sandbox.store import Store
from agwlab.wait import poll

__all__ = ["ApiServer", "free_port", "write_kubeconfig"]


@dataclass
class ApiServer:
    url: str
    token: str
    kubeconfig: Path
    store: Store
    paths: SandboxPaths
    ca_cert: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_kubeconfig(path: Path, url: str, token: str, ca_data: str) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "agwlab",
        "clusters": [{"name": "agwlab", "cluster": {"server": url, "certificate-authority-data": ca_data}}],
        "users": [{"name": "agwlab", "user": {"token": token}}],
        "contexts": [{"name": "agwlab", "context": {"cluster": "agwlab", "user": "agwlab", "namespace": "default"}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def _signing_key(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One ServiceAccount signing key (RSA 2048) for every test API server: making one takes a
    good part of a second, and each test's server would otherwise make its own."""
    from agwlab.sandbox.apiserver.tokens import _load_key

    path = tmp_path_factory.mktemp("sa") / "sa.key"
    _load_key(path)
    return path.read_bytes()


@pytest.fixture
def apiserver(tmp_path: Path, _signing_key: bytes) -> Iterator[ApiServer]:
    paths = SandboxPaths(tmp_path / "sandbox")
    paths.ensure()
    key = paths.root / "pki" / "sa.key"  # where the API server keeps it (apiserver/app.py)
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(_signing_key)
    key.chmod(0o600)
    store = Store(paths.store)
    token = secrets.token_hex(16)
    port = free_port()
    app = create_app(store, token=token, paths=paths)
    tls = ensure_tls(tmp_path / "pki", ["127.0.0.1"])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="wsproto", lifespan="off",
                            timeout_graceful_shutdown=0.3, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    def started() -> tuple[bool, str]:
        if not thread.is_alive():
            raise RuntimeError("the test API server stopped while starting")
        return server.started, "not started"

    poll(started, timeout=10, interval=0.01, what="the test API server to start")
    url = f"https://127.0.0.1:{port}"
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, token, tls.ca_data())
    try:
        yield ApiServer(url=url, token=token, kubeconfig=kubeconfig, store=store, paths=paths, ca_cert=tls.ca_cert)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
        assert not thread.is_alive(), "the API server did not shut down (a stream is still open?)"


@pytest.fixture
def kubectl_bin() -> str:
    """kubectl on PATH, or skip."""
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not on PATH")
    return found


@pytest.fixture(scope="session")
def kubectl_120() -> str:
    """Debian's kubectl 1.20, the oldest the sandbox supports: ``./lab test`` unpacks it beside the
    venv and names it in ``AGWLAB_KUBECTL_120``. Skips when it is not there."""
    found = os.environ.get("AGWLAB_KUBECTL_120") or str(
        Path(__file__).resolve().parents[3] / ".venv" / "kubectl-1.20" / "usr" / "bin" / "kubectl")
    if not Path(found).is_file():
        pytest.skip("Debian's kubectl 1.20 is not unpacked (./lab test does it: apt-get download kubernetes-client)")
    return found
