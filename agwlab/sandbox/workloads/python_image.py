"""The stock ``python`` image as a Pod: run a script from a ConfigMap, as the image's Python would.

A real node pulls ``python:3.12-slim`` and runs the container's command. The sandbox cannot pull
images, but it has a Python and the packages the lab depends on, so it runs the same script with
them. It understands the commands a lab manifest uses for this image and nothing else:

* ``python SCRIPT ARGS...``, or
* ``sh -c "pip install [--flags] NAME==VERSION... && exec python SCRIPT ARGS..."``.

``SCRIPT`` must come from a ConfigMap volume the container mounts. Each ``pip install`` pin must
match what the sandbox's Python has installed (a different pin fails the container with a message
saying both versions, instead of running something else than the manifest asks for). The process
runs in a child (``script_runner.py``) that binds ``0.0.0.0`` to the Pod's IP, as the Pod's network
namespace would. The container runs as soon as its process does; the kubelet then probes its
``readinessProbe`` (``tcpSocket`` or ``httpGet``) for as long as it runs, or counts it ready at
once when it has none, as on a real node.

Example:
    >>> parse_command(["sh", "-c", "pip install --quiet mcp==2.3.0 && exec python /app/s.py --port 8000"])
    (['mcp==2.3.0'], ['/app/s.py', '--port', '8000'])
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from ..procs import child_environment
from ..runtime import PodContext, WorkloadFailed
from .website_fetcher_pod import PARENT_ENV, SERVICES_ENV, WebsiteFetcherWorkload, _container_port

__all__ = ["PythonImageWorkload", "parse_command"]

_USAGE = ('the sandbox runs the python image with `python SCRIPT ARGS` or `sh -c "pip install NAME==VERSION ... '
          '&& exec python SCRIPT ARGS"`, SCRIPT mounted from a ConfigMap')


def parse_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(pins, [script, *args])`` from a container's command and args.

    Raises:
        WorkloadFailed: a command the sandbox cannot run faithfully.
    """
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"], ["/bin/bash", "-c"]) and len(argv) == 3:
        segments: list[list[str]] = [[]]
        for token in shlex.split(argv[2]):
            if token == "&&":
                segments.append([])
            else:
                segments[-1].append(token)
    else:
        segments = [list(argv)]
    pins: list[str] = []
    run: list[str] | None = None
    for segment in segments:
        if segment[:1] == ["exec"]:
            segment = segment[1:]
        if segment[:2] in (["pip", "install"], ["pip3", "install"]) and run is None:
            pins += [t for t in segment[2:] if not t.startswith("-")]
        elif segment[:1] in (["python"], ["python3"]) and len(segment) > 1 and run is None:
            run = segment[1:]
        else:
            raise WorkloadFailed(f"cannot run {shlex.join(segment)!r}: {_USAGE}")
    if run is None or run[0].startswith("-"):
        raise WorkloadFailed(f"no `python SCRIPT` in the command: {_USAGE}")
    for pin in pins:
        if "==" not in pin:
            raise WorkloadFailed(f"pip install {pin!r}: the sandbox installs nothing, so it needs exact pins "
                                 "(NAME==VERSION) to check against its own packages")
    return pins, run


def _check_pins(pins: list[str]) -> list[str]:
    """Log lines saying each pin is what the sandbox's Python has; WorkloadFailed when one is not."""
    lines = []
    for pin in pins:
        name, _, wanted = pin.partition("==")
        try:
            have = importlib.metadata.version(name.split("[", 1)[0])
        except importlib.metadata.PackageNotFoundError:
            raise WorkloadFailed(f"pip install {pin}: the sandbox's Python does not have {name}") from None
        if have != wanted:
            raise WorkloadFailed(f"pip install {pin}: the sandbox's Python has {name} {have}, not {wanted}; "
                                 f"pin {name}=={have} in the manifest")
        lines.append(f"Requirement already satisfied: {pin} (the sandbox's Python)")
    return lines


class PythonImageWorkload(WebsiteFetcherWorkload):
    """A script from a ConfigMap, run with the sandbox's Python as the stock image would run it."""

    MODULE = "agwlab.sandbox.workloads.script_runner"
    NAME = "python"
    READINESS_BY_KUBELET = True
    """``start`` returns once the process runs; the kubelet probes readiness from then on."""

    def __init__(self) -> None:
        super().__init__()
        self._root: Path | None = None

    async def start(self, pod: PodContext) -> None:
        pins, (script, *args) = parse_command(pod.args)
        files: dict[str, str] = pod.extra.get("files") or {}
        if script not in files:
            mounted = ", ".join(sorted(files)) or "none"
            raise WorkloadFailed(f"python: can't open file {script!r}: the sandbox runs scripts from ConfigMap "
                                 f"volumes only (mounted: {mounted})")
        # the container's files live in the sandbox's own directory (private to its user), not in /tmp
        where = pod.home.root / "containers" if pod.home is not None else None
        if where is not None:
            where.mkdir(mode=0o700, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix=f"{pod.namespace}.{pod.name}.", dir=where))
        for name, content in files.items():
            target = self._root / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        for line in _check_pins(pins):
            pod.log.write(line)
        env = child_environment({**pod.env, "PYTHONUNBUFFERED": "1", "POD_IP": pod.pod_ip,
                                 PARENT_ENV: str(os.getpid())})
        if pod.home is not None and SERVICES_ENV not in env:
            env[SERVICES_ENV] = str(pod.home.cluster_services)
        with open(pod.log.path, "ab") as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.MODULE, str(self._root / script.lstrip("/")), *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env, cwd=self._root,
            )  # fmt: skip
        self._host, self._port = pod.pod_ip, _container_port(pod)
        self.url = f"http://{pod.pod_ip}:{self._port}"

    async def stop(self) -> None:
        await super().stop()
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
