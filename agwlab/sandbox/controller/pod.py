"""The Pod of agentgateway's controller Deployment.

The reconciling itself happens in the sandbox process (``controller/__init__.py``); this
workload only gives ``kubectl logs deploy/agentgateway -n agentgateway-system`` the
controller's log, which the controller writes to while it works.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...names import TESTED_VERSION
from ..runtime import PodContext

__all__ = ["ControllerPodWorkload", "controller_log_line"]

_ACTIVE: list[PodContext] = []


def controller_log_line(level: str, msg: str, **fields: str) -> str:
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    return f"{ts}\t{level}\t{msg}{extra}"


def log_to_controller(level: str, msg: str, **fields: str) -> None:
    """Append a line to the running controller Pod's log (if there is one)."""
    for pod in _ACTIVE:
        pod.log.write(controller_log_line(level, msg, **fields))


class ControllerPodWorkload:
    def __init__(self) -> None:
        self._pod: PodContext | None = None

    async def start(self, pod: PodContext) -> None:
        self._pod = pod
        _ACTIVE.append(pod)
        pod.log.write(controller_log_line("info", "starting agentgateway controller", version=TESTED_VERSION))
        pod.log.write(controller_log_line("info", "xds server listening", address=f"{pod.pod_ip}:9978"))
        pod.log.write(controller_log_line("info", "watching GatewayClass controller", name="agentgateway.dev/agentgateway"))

    async def stop(self) -> None:
        if self._pod in _ACTIVE:
            _ACTIVE.remove(self._pod)

    def alive(self) -> bool:
        return True
