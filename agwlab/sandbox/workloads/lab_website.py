"""The lab website: a few static pages inside the cluster for the MCP fetcher to read.

The lead deploys it as Deployment + Service ``lab-website`` in ``agwlab-system``
(Service port 80 → container port 8080), so ``fetch`` works offline on
``http://lab-website.agwlab-system.svc.cluster.local/``. It runs inside the sandbox
process and writes one access-log line per request to the Pod log.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..podlogs import PodLog
from ..runtime import PodContext, WorkloadFailed

__all__ = ["LabWebsiteWorkload", "build_app", "site_pages"]

DEFAULT_PORT = 8080
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def site_pages() -> dict[str, tuple[bytes, str]]:
    """The site's files as ``{url path: (body, content type)}``; ``/`` is ``index.html``."""
    pages: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("agwlab.sandbox").joinpath("site").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _TYPES:
            pages["/" + entry.name] = (entry.read_bytes(), _TYPES[suffix])
    if "/index.html" in pages:
        pages["/"] = pages["/index.html"]
    return pages


def build_app(log: PodLog | None = None) -> Starlette:
    """The website's ASGI app; each request is logged to ``log`` in Common Log Format."""
    pages = site_pages()

    async def serve(request: Request) -> Response:
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("method not allowed\n", status_code=405)
        elif path in pages:
            body, content_type = pages[path]
            response = Response(
                body if request.method == "GET" else b"",
                media_type=content_type,
                headers={"content-length": str(len(body))},
            )
        else:
            response = PlainTextResponse("404 page not found\n", status_code=404)
        if log is not None:
            client = request.client.host if request.client else "-"
            size = response.headers.get("content-length", "-")
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            agent = request.headers.get("user-agent", "-")
            query = f"?{request.url.query}" if request.url.query else ""
            version = request.scope.get("http_version", "1.1")
            log.write(
                f'{client} - - [{stamp}] "{request.method} {path}{query} HTTP/{version}" '
                f'{response.status_code} {size} "-" "{agent}"'
            )
        return response

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", serve, methods=methods)])


class LabWebsiteWorkload:
    """The website as a Pod: an in-process uvicorn server on ``pod.pod_ip:8080``."""

    START_TIMEOUT = 10.0

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[Any] | None = None
        self.url: str | None = None

    async def start(self, pod: PodContext) -> None:
        """Serve the site and return once it listens.

        Raises:
            WorkloadFailed: the port could not be bound.
        """
        port = DEFAULT_PORT
        for entry in pod.ports or []:
            if isinstance(entry, dict) and entry.get("containerPort"):
                port = int(entry["containerPort"])
                break
        config = uvicorn.Config(
            build_app(pod.log), host=pod.pod_ip, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only in serve(); the sandbox owns signals.
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._serve(self._server), name=f"lab-website {pod.name}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.START_TIMEOUT
        while not self._server.started:
            if self._task.done() or loop.time() > deadline:
                await self.stop()
                raise WorkloadFailed(f"lab-website could not listen on {pod.pod_ip}:{port}")
            await asyncio.sleep(0.02)
        self.url = f"http://{pod.pod_ip}:{port}"
        pod.log.write(f"serving the lab website on {self.url}")

    @staticmethod
    async def _serve(server: uvicorn.Server) -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; that must not stop the sandbox
            pass

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5.0)
        except TimeoutError:
            task.cancel()
