"""Helpers for the proxy tests: a loop in a thread, a hand-made Pod, a tiny cluster seam.

The proxy, the Anthropic stand-in and the collector run in one event loop in a
background thread, so tests can use blocking clients (``openai``, ``httpx``) freely.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agwlab.sandbox.podlogs import PodLog
from agwlab.sandbox.runtime import Endpoint, PodContext


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FakeCluster:
    """The cluster seam: pushes configs to subscribers when a test calls :meth:`push`."""

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
        self.current[config.key] = config
        for callback in list(self.subscribers.get(config.key, [])):
            callback(config)

    def setting(self, name: str, default: str | None = None) -> str | None:
        return default


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_pod(tmp: Path, name: str, ip: str, *, cluster: Any = None, env: dict[str, str] | None = None,
             ports: list[dict[str, Any]] | None = None, namespace: str = "agentgateway-system") -> PodContext:
    return PodContext(namespace=namespace, name=name, pod_ip=ip, labels={}, image="cr.agentgateway.dev/agentgateway:v1.4.1",
                      env=env or {}, ports=ports or [], args=[], log=PodLog(tmp / f"{name}.log"),
                      cluster=cluster or FakeCluster())


def poll(fn: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Call ``fn`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
