"""The MCP website fetcher as a Pod: a child process the kubelet starts and watches.

Kept apart from ``website_fetcher.py`` (the server itself) so that the sandbox process,
which only launches the child, never imports the MCP SDK.
"""

from __future__ import annotations

import asyncio
import os
import sys

from ..procs import child_environment
from ..runtime import PodContext, WorkloadFailed

__all__ = ["PARENT_ENV", "SERVICES_ENV", "WebsiteFetcherWorkload"]

SERVICES_ENV = "AGWLAB_CLUSTER_SERVICES"
PARENT_ENV = "AGWLAB_SANDBOX_PID"


def _cpu_seconds(pid: int, fallback: float) -> float:
    """CPU seconds (user + system) process ``pid`` has used; ``fallback`` when /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return fallback


def _container_port(pod: PodContext, default: int = 8000) -> int:
    for port in pod.ports or []:
        if isinstance(port, dict) and port.get("containerPort"):
            return int(port["containerPort"])
    return default


class WebsiteFetcherWorkload:
    """The fetcher as a Pod: a child process bound to the Pod IP and container port.

    ``start`` returns once ``GET /sse`` answers; stdout and stderr go to the Pod log.
    """

    START_TIMEOUT = 20.0
    """Seconds of its own CPU time the child may spend starting (imports, binding) before it must
    answer. CPU time, not wall time: when many Pods start at once on a small machine (a workshop)
    each child gets a slice of the CPU, and a wall-clock deadline killed children that were still
    making progress, started them again from nothing, and none ever came up."""
    MAX_START = 180.0
    """Wall-clock seconds after which a child that has not answered is given up, whatever its CPU."""
    #: what the child runs (``python -m MODULE``), what errors call it, and where it answers
    MODULE = "agwlab.sandbox.workloads.website_fetcher"
    NAME = "mcp-website-fetcher"
    READY_PATH = "/sse"

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        self._host, self._port = "", 0

    async def start(self, pod: PodContext) -> None:
        """Start the child process and wait until it serves ``/sse``.

        Raises:
            WorkloadFailed: the process exited or did not answer in time.
        """
        port = _container_port(pod)
        # the child arranges to die with the sandbox itself (no preexec_fn, so the spawn can
        # use vfork instead of copying a ~100 MB process)
        env = child_environment({**pod.env, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())})
        if pod.home is not None and SERVICES_ENV not in env:
            env[SERVICES_ENV] = str(pod.home.cluster_services)
        with open(pod.log.path, "ab") as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.MODULE,
                "--host", pod.pod_ip, "--port", str(port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
            )  # fmt: skip
        self.url = f"http://{pod.pod_ip}:{port}"
        self._host, self._port = pod.pod_ip, port
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self.url is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.MAX_START
        while loop.time() < deadline and _cpu_seconds(self._proc.pid, loop.time() - started) < self.START_TIMEOUT:
            if self._proc.returncode is not None:
                raise WorkloadFailed(
                    f"{self.NAME} exited with code {self._proc.returncode}; see the Pod log"
                )
            if await self._ready():
                return
            await asyncio.sleep(0.1)
        waited = loop.time() - started
        cpu = _cpu_seconds(self._proc.pid, waited)
        await self.stop()
        raise WorkloadFailed(
            f"{self.NAME} did not answer on {self.url}{self.READY_PATH} after {waited:.0f}s ({cpu:.1f}s of CPU)"
        )

    async def _ready(self) -> bool:
        return await _answers(self._host, self._port, self.READY_PATH)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _answers(host: str, port: int, path: str) -> bool:
    """True when ``GET <path>`` (accepting an event stream) answers 200, or 400/405 for a
    Streamable HTTP endpoint that wants a session (a readiness probe in plain asyncio: the
    sandbox process need not load an HTTP client's async stack just to wait for a child)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 2.0)
        return status.split(b" ")[1:2] in ([b"200"], [b"400"], [b"405"])
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()

