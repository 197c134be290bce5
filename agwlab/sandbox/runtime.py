"""What the sandbox's kubelet gives a workload, and what it expects back.

A Pod in the sandbox runs a *workload*: an object chosen by the Pod's container image
(see ``images.py``). Workloads either run inside the sandbox process (the agentgateway
proxy, the OpenTelemetry collector, the Anthropic stand-in, the lab website) or as a
child process (the MCP website fetcher). The kubelet starts a workload with a
:class:`PodContext` and stops it when the Pod goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .podlogs import PodLog

__all__ = ["ClusterServices", "Endpoint", "PodContext", "Workload", "WorkloadFailed"]


@dataclass(frozen=True)
class Endpoint:
    """One address a Service name resolves to: a ready Pod's IP and the target port."""

    ip: str
    port: int


class ClusterServices(Protocol):
    """What the cluster offers every workload (cluster DNS, config push, settings)."""

    def resolve(self, host: str, port: int, *, namespace: str | None = None) -> list[Endpoint]:
        """Resolve a Service host name the way cluster DNS plus kube-proxy would.

        ``host`` may be ``svc``, ``svc.ns``, ``svc.ns.svc`` or ``svc.ns.svc.cluster.local``;
        ``namespace`` is the caller's namespace, used for the bare ``svc`` form. ``port``
        is the *Service* port; endpoints carry the Pod IP and the matching target port.
        Returns ``[]`` when the name is not a Service or has no ready endpoints. Names
        that are not cluster names (e.g. ``api.anthropic.com``, an IP) also return ``[]``.
        """
        ...

    def subscribe_gateway(self, key: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Receive every new ``GatewayConfig`` for gateway ``ns/name`` (the current one at
        once, if there is one). Returns a function that unsubscribes."""
        ...

    def setting(self, name: str, default: str | None = None) -> str | None:
        """A sandbox setting (ConfigMap ``sandbox-settings`` in ``agwlab-system``)."""
        ...


@dataclass
class PodContext:
    """Everything a workload needs to run as one Pod."""

    namespace: str
    name: str
    pod_ip: str
    labels: dict[str, str]
    image: str
    env: dict[str, str]
    ports: list[dict[str, Any]]          # the container's `ports` as in the Pod spec
    args: list[str]
    log: PodLog
    cluster: ClusterServices
    home: Any = None                     # SandboxPaths of this sandbox
    extra: dict[str, Any] = field(default_factory=dict)


class WorkloadFailed(Exception):
    """A workload could not start; the message is shown in the Pod's status."""


class Workload(Protocol):
    """A running container. ``start`` returns once the workload is ready to serve."""

    async def start(self, pod: PodContext) -> None: ...

    async def stop(self) -> None: ...

    def alive(self) -> bool:
        """False once the workload died on its own (the kubelet then restarts it)."""
        ...
