"""Harness for tests that run workloads by hand: a loop in a thread, free ports, Pods, a cluster seam,
and the few proxy configs the MCP tests apply directly.

Workloads (the proxy, the stand-ins, the collector, the fetcher) run in one event loop in a
background thread, so tests can use blocking clients (``openai``, ``httpx``) freely.

Example:
    loop = LoopThread()
    site = LabWebsiteWorkload()
    loop.run(site.start(make_pod(tmp_path, "lab-website", port=free_port())))
    ...
    loop.run(site.stop())
    loop.close()
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agwlab.sandbox.podlogs import PodLog
from agwlab.sandbox.proxy.config import (
    BackendRef,
    GatewayConfig,
    Listener,
    MCPBackend,
    MCPTarget,
    PathMatch,
    Route,
    RouteMatch,
    Rule,
)
from agwlab.sandbox.runtime import Endpoint, PodContext

__all__ = [
    "AGENTGATEWAY_IMAGE",
    "FETCHER_HOST",
    "FakeCluster",
    "LoopThread",
    "free_port",
    "make_pod",
    "mcp_gateway",
    "mcp_rule",
    "sse_target",
]

#: The image a gateway's proxy Pod runs (the proxy reads its version from the tag).
AGENTGATEWAY_IMAGE = "cr.agentgateway.dev/agentgateway:v1.4.1"
#: The Host the proxy sends to the website fetcher, as its Service name in the tutorial.
FETCHER_HOST = "mcp-website-fetcher.default.svc.cluster.local:80"


class LoopThread:
    """An asyncio loop running in a daemon thread, for workloads that outlive one ``asyncio.run``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what is still running on the loop, then stop it."""
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FakeCluster:
    """The cluster seam (``ClusterServices``) for Pods started by hand.

    Nothing resolves, settings are their defaults, and a gateway's config reaches its
    subscribers only when a test calls :meth:`push`; a proxy whose configs a test applies
    directly simply never hears from it.
    """

    def __init__(self) -> None:
        self.subscribers: dict[str, list[Callable[[Any], None]]] = {}
        self.current: dict[str, Any] = {}

    def resolve(self, host: str, port: int, *, namespace: str | None = None) -> list[Endpoint]:
        return []

    def subscribe_gateway(self, key: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        self.subscribers.setdefault(key, []).append(callback)
        if key in self.current:
            callback(self.current[key])
        return lambda: self.subscribers[key].remove(callback)

    def push(self, config: Any) -> None:
        """Make ``config`` the current one for its gateway and hand it to the subscribers."""
        self.current[config.key] = config
        for callback in list(self.subscribers.get(config.key, [])):
            callback(config)

    def setting(self, name: str, default: str | None = None) -> str | None:
        return default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_pod(tmp: Path, name: str, ip: str = "127.0.0.1", *, port: int | None = None,
             ports: list[dict[str, Any]] | None = None, env: dict[str, str] | None = None,
             namespace: str = "default", image: str | None = None, cluster: Any = None) -> PodContext:
    """A Pod for a workload started by hand; its log is ``tmp/<name>.log``.

    Args:
        tmp: Directory for the Pod's log.
        name: Pod name; also the image unless ``image`` is given.
        ip: Pod IP (a loopback address).
        port: Shorthand for ``ports=[{"containerPort": port}]``.
        ports: The container's ports as in a Pod spec (default: none).
        env: The container's environment.
        namespace: Pod namespace.
        image: Container image.
        cluster: The cluster seam (default: a fresh :class:`FakeCluster`).

    Raises:
        ValueError: both ``port`` and ``ports`` were given.
    """
    if port is not None and ports is not None:
        raise ValueError("give port or ports, not both")
    if port is not None:
        ports = [{"containerPort": port}]
    return PodContext(namespace=namespace, name=name, pod_ip=ip, labels={}, image=image or name,
                      env=env or {}, ports=ports or [], args=[], log=PodLog(tmp / f"{name}.log"),
                      cluster=cluster or FakeCluster())


def sse_target(name: str, port: int) -> MCPTarget:
    """An MCP target reached over legacy SSE on ``127.0.0.1:port`` (the website fetcher)."""
    return MCPTarget(name=name, protocol="SSE", url=f"http://127.0.0.1:{port}/sse", host_header=FETCHER_HOST)


def mcp_rule(path: str, backend: MCPBackend, kind: str = "PathPrefix") -> Rule:
    """A route rule sending requests whose path matches ``path`` to ``backend``."""
    return Rule(name=None, matches=(RouteMatch(path=PathMatch(kind, path)),),  # type: ignore[arg-type]
                backends=(BackendRef(backend),))


def mcp_gateway(address: str, port: int, rules: tuple[Rule, ...], **kw: Any) -> GatewayConfig:
    """The lab's Gateway (``agentgateway-system/agentgateway-route``) with one listener on
    ``address:port`` and one HTTPRoute, ``default/mcp-route``, holding ``rules``.

    Args:
        address: The address the listener binds.
        port: The listener's port.
        rules: The route's rules.
        **kw: Other :class:`GatewayConfig` fields (``tracing``...).
    """
    route = Route(namespace="default", name="mcp-route", hostnames=(), rules=rules)
    listener = Listener(name="http", port=port, routes=(route,))
    return GatewayConfig(namespace="agentgateway-system", name="agentgateway-route",
                         class_name="agentgateway", address=address, listeners=(listener,), **kw)
