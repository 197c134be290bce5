"""Where a sandbox keeps its state.

Everything lives under ``$AGWLAB_HOME`` (default ``~/.agwlab``), so two homes give two
independent sandboxes::

    $AGWLAB_HOME/sandbox/
        state.json          addresses, token, pid (written by the supervisor)
        store.db            every object the API server acknowledged (SQLite, WAL)
        kubeconfig          a kubeconfig for kubectl and the kubernetes client
        daemon.log          the supervisor's own log
        logs/<ns>/<pod>.log what `kubectl logs` shows for each Pod
        prometheus/         the real Prometheus: config, file_sd targets, TSDB
        cluster-services.json  Service name -> endpoints, for Pods that dial Services
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxPaths", "agwlab_home"]


def agwlab_home() -> Path:
    """The agwlab home directory: ``$AGWLAB_HOME`` or ``~/.agwlab``."""
    value = os.environ.get("AGWLAB_HOME")
    return Path(value).expanduser().resolve() if value else (Path.home() / ".agwlab").resolve()


@dataclass(frozen=True)
class SandboxPaths:
    """The files of one sandbox, all below ``root``."""

    root: Path

    @classmethod
    def for_home(cls, home: Path | None = None) -> SandboxPaths:
        return cls((home or agwlab_home()) / "sandbox")

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def store(self) -> Path:
        return self.root / "store.db"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def daemon_log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def pod_log(self, namespace: str, pod: str) -> Path:
        """The log file of one Pod (one container per Pod in the sandbox)."""
        return self.logs / namespace / f"{pod}.log"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def cluster_services(self) -> Path:
        return self.root / "cluster-services.json"

    def ensure(self) -> None:
        for d in (self.root, self.logs, self.prometheus):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
