"""Fixtures shared by the whole suite: one real sandbox per test session.

The session's sandbox lives in its own ``AGWLAB_HOME`` (a temp directory), so a
learner's own sandbox is never touched; it is stopped when the session ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AGWLAB_STRICT", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the second, kind-profile sandbox run last and together: that sandbox (with its
    Prometheus and Pods) then runs only while they do, not beside every later test."""
    on_kind = [item for item in items if "kind_sandbox" in getattr(item, "fixturenames", ())]
    if on_kind:
        items[:] = [item for item in items if item not in on_kind] + on_kind


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key anywhere: ``ANTHROPIC_API_KEY`` unset and no key typed into the key box, before and after."""
    from agwlab import secrets

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    secrets.forget_entered_key()
    yield
    secrets.forget_entered_key()


@pytest.fixture(scope="session")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("agwlab-home")
    old = os.environ.get("AGWLAB_HOME")
    os.environ["AGWLAB_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("AGWLAB_HOME", None)
    else:
        os.environ["AGWLAB_HOME"] = old


@pytest.fixture(scope="session")
def sandbox(sandbox_home: Path):  # type: ignore[no-untyped-def]
    """A running sandbox (``SandboxInfo``) for the whole session."""
    from agwlab.sandbox import ensure_running, stop

    info = ensure_running(sandbox_home, timeout=60)
    yield info
    stop(sandbox_home)


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed (./lab test installs it)")
    return path


class Kubectl:
    """Runs the real kubectl against one kubeconfig."""

    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run([self.binary, *args], input=input, capture_output=True, text=True,
                              env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def __call__(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).stdout  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def kubectl(sandbox, kubectl_bin: str) -> Kubectl:  # type: ignore[no-untyped-def]
    return Kubectl(kubectl_bin, sandbox.kubeconfig)


@pytest.fixture(scope="session")
def api_client(sandbox):  # type: ignore[no-untyped-def]
    from kubernetes import config

    return config.new_client_from_config(config_file=str(sandbox.kubeconfig))


@pytest.fixture(scope="session")
def core_v1(api_client):  # type: ignore[no-untyped-def]
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client):  # type: ignore[no-untyped-def]
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def kind_sandbox(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A second sandbox with ``--profile kind`` (no LoadBalancer, Prometheus in-cluster only),
    started with the CLI as a learner would; stopped when the session ends."""
    from agwlab.sandbox import status, stop

    home = tmp_path_factory.mktemp("agwlab-kind")
    env = {**os.environ, "AGWLAB_HOME": str(home)}
    env.pop("AGWLAB_SANDBOX_PROFILE", None)
    import sys

    proc = subprocess.run([sys.executable, "-m", "agwlab", "sandbox", "up", "--profile", "kind"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "profile      kind" in proc.stdout, proc.stdout
    yield status(home)
    stop(home)
