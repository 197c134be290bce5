"""The lab website: a few static pages inside the cluster for the MCP fetcher to read.

The sandbox deploys it as Deployment + Service ``lab-website`` in ``agwlab-system``
(Service port 80 → container port 8080), so ``fetch`` works offline on
``http://lab-website.agwlab-system.svc.cluster.local/``. It runs inside the sandbox
process and writes one access-log line per request to the Pod log.
"""

from __future__ import annotations

import time
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..podlogs import PodLog
from ..runtime import PodContext, WorkloadFailed
from ..serving import BoundServer, os_error_text, serve_asgi

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
    """The website as a Pod: an in-process server on ``pod.pod_ip:8080``."""

    def __init__(self) -> None:
        self._server: BoundServer | None = None
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
        try:
            self._server = await serve_asgi(build_app(pod.log), pod.pod_ip, port)
        except OSError as exc:
            raise WorkloadFailed(
                f"lab-website could not listen on {pod.pod_ip}:{port}: {os_error_text(exc)}"
            ) from None
        self.url = f"http://{pod.pod_ip}:{port}"
        pod.log.write(f"serving the lab website on {self.url}")

    def alive(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
