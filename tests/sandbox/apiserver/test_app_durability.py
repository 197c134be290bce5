"""Everything the API server acknowledged survives a clean restart and a SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from kubernetes import client, config


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "agwlab.sandbox.apiserver", "--root", str(root),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise AssertionError(f"API server did not start: {line!r} {proc.stderr.read()}")
    return proc


def core_api(root: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(root / "kubeconfig")))


def test_acknowledged_writes_survive_sigkill_and_restart(tmp_path):
    root = tmp_path / "sandbox"
    port = free_port()
    proc = start(root, port)
    try:
        core = core_api(root)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="lab")))
        acked = []
        for i in range(20):
            cm = core.create_namespaced_config_map("lab", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"c{i}"), data={"i": str(i)}))
            acked.append((cm.metadata.name, cm.metadata.resource_version))
        core.patch_namespaced_config_map("c0", "lab", {"data": {"i": "patched"}})
        proc.send_signal(signal.SIGKILL)  # no chance to flush or close anything
        proc.wait(timeout=10)
        proc = start(root, port)
        core = core_api(root)
        items = {c.metadata.name: c for c in core.list_namespaced_config_map("lab").items}
        assert sorted(items) == sorted(name for name, _ in acked)
        assert items["c0"].data == {"i": "patched"}
        assert items["c5"].data == {"i": "5"}
        # resourceVersions keep growing after the restart
        fresh = core.create_namespaced_config_map("lab", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="z")))
        assert int(fresh.metadata.resource_version) > max(int(rv) for _, rv in acked)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        proc = start(root, port)
        assert "z" in {c.metadata.name for c in core_api(root).list_namespaced_config_map("lab").items}
    finally:
        proc.kill()
        proc.wait(timeout=10)
