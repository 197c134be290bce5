"""The MCP website fetcher: the lab's MCP server, run as a child process of the sandbox.

It plays the container image ``mcp-website-fetcher``: an MCP server built on the
official ``mcp`` SDK's low-level ``Server`` named ``mcp-website-fetcher`` with exactly
one tool, ``fetch``, served over the legacy SSE transport (``GET /sse`` and
``POST /messages/?session_id=…``). Streamable HTTP is served at ``/mcp`` as well, which
the real image does not have; SSE stays the transport the lab's manifests use.

Run it as the kubelet does::

    python -m agwlab.sandbox.workloads.website_fetcher --host 127.64.1.5 --port 8000

Cluster DNS: when ``AGWLAB_CLUSTER_SERVICES`` names the controller's Service table,
``fetch`` resolves Service names (``lab-website.agwlab-system.svc.cluster.local``,
``lab-website.agwlab-system``, ``…svc``) through it (:class:`ClusterDNSTransport`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from ..procs import die_with_parent
from .website_fetcher_pod import PARENT_ENV, SERVICES_ENV, WebsiteFetcherWorkload

__all__ = [
    "SERVER_NAME",
    "SERVICES_ENV",
    "ClusterDNSTransport",
    "ServiceTable",
    "WebsiteFetcherWorkload",
    "build_app",
    "build_server",
    "fetch_text",
    "main",
]

SERVER_NAME = "mcp-website-fetcher"
FETCH_DESCRIPTION = "Fetches a website and returns its content"
FETCH_TIMEOUT = 20.0
OFFLINE_SITE = "http://lab-website.agwlab-system.svc.cluster.local/"
USER_AGENT = "ModelContextProtocol/1.0 (mcp-website-fetcher; +https://github.com/modelcontextprotocol)"


# --- cluster DNS ---------------------------------------------------------------------


class ServiceTable:
    """The controller's Service table file, re-read whenever it changes on disk.

    The file is shaped ``{"services": {"<svc>.<ns>.svc.cluster.local":
    {"<service port>": ["<pod ip>:<target port>", …]}}}``.

    Example:
        >>> table = ServiceTable(Path("cluster-services.json"))      # doctest: +SKIP
        >>> table.lookup("lab-website.agwlab-system", 80)            # doctest: +SKIP
        ['127.64.1.7:8080']
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._services: dict[str, dict[str, list[str]]] = {}

    def _load(self) -> dict[str, dict[str, list[str]]]:
        try:
            st = self.path.stat()
        except OSError:
            return {}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # the controller swaps the file in with rename
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._services = dict(data.get("services", {}))
                self._stamp = stamp
            except (OSError, ValueError):
                # A torn read while the controller rewrites the file: keep the last table.
                pass
        return self._services

    @staticmethod
    def canonical(host: str) -> str | None:
        """``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local`` → the full name, else None."""
        host = host.lower().rstrip(".")
        parts = host.split(".")
        if any(not p for p in parts) or parts[-1].isdigit():
            return None
        if len(parts) == 2:
            return f"{host}.svc.cluster.local"
        if len(parts) == 3 and parts[2] == "svc":
            return f"{host}.cluster.local"
        if len(parts) == 5 and parts[2:] == ["svc", "cluster", "local"]:
            return host
        return None

    def known(self, host: str) -> bool:
        """True when ``host`` is a Service in the table (any port)."""
        name = self.canonical(host)
        return name is not None and name in self._load()

    def lookup(self, host: str, port: int) -> list[str]:
        """Endpoints (``ip:port``) of a Service name and *Service* port; ``[]`` when none."""
        name = self.canonical(host)
        if name is None:
            return []
        return list(self._load().get(name, {}).get(str(port), []))


class ClusterDNSTransport(httpx.AsyncBaseTransport):
    """An httpx transport that dials Service names at their Pod endpoints.

    The request keeps its ``Host`` header (built from the original URL), as it would
    through cluster DNS and kube-proxy. Names that are not in the Service table go out
    unchanged, so real URLs still work where there is a network.

    Args:
        table: the Service table; ``None`` reads ``$AGWLAB_CLUSTER_SERVICES`` and
            resolves nothing when it is unset.
        inner: the transport that really sends; a default ``AsyncHTTPTransport``.

    Raises:
        httpx.ConnectError: from ``handle_async_request`` when a Service has no ready
            endpoint on the requested port (what a refused connection looks like).
    """

    def __init__(
        self, table: ServiceTable | None = None, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if table is None:
            path = os.environ.get(SERVICES_ENV)
            table = ServiceTable(Path(path)) if path else None
        self.table = table
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._next = itertools.count()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self.table is not None and self.table.known(url.host):
            port = url.port or (443 if url.scheme == "https" else 80)
            endpoints = self.table.lookup(url.host, port)
            if not endpoints:
                raise httpx.ConnectError(
                    f"connection refused: Service {url.host} has no ready endpoint on port {port}",
                    request=request,
                )
            ip, _, target_port = endpoints[next(self._next) % len(endpoints)].rpartition(":")
            request.url = url.copy_with(host=ip, port=int(target_port))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the MCP server ------------------------------------------------------------------


class FetchError(Exception):
    """A page could not be fetched; the message is what the tool result shows."""


_CLIENTS: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def _new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=ClusterDNSTransport(),
        follow_redirects=True,
        timeout=FETCH_TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def _shared_client() -> httpx.AsyncClient:
    """One pooled client per event loop: building one (and its TLS context) per fetch
    costs tens of milliseconds of CPU."""
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None or client.is_closed:
        client = _CLIENTS[loop] = _new_client()
    return client


async def fetch_text(url: str, *, client: httpx.AsyncClient | None = None) -> str:
    """Fetch ``url`` (following redirects) and return its body as text.

    Raises:
        FetchError: bad URL, DNS failure, refused connection, timeout or a non-2xx status.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as e:
        raise FetchError(f"invalid URL {url!r}: {e}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(f"invalid URL {url!r}: only absolute http:// and https:// URLs can be fetched")
    own = client is None
    if client is None:
        client = _new_client()
    try:
        response = await client.get(url)
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {FETCH_TIMEOUT:g}s fetching {url}") from None
    except httpx.ConnectError as e:
        reason = _connect_reason(e)
        if isinstance(_root_cause(e), socket.gaierror):
            reason += f" (this machine may have no internet access; {OFFLINE_SITE} works offline)"
        raise FetchError(f"could not connect to {parsed.host}: {reason}") from None
    except httpx.HTTPError as e:
        raise FetchError(f"fetching {url} failed: {e or type(e).__name__}") from None
    finally:
        if own:
            await client.aclose()
    if not response.is_success:
        raise FetchError(f"{url} answered {response.status_code} {response.reason_phrase}")
    return response.text


def _root_cause(exc: BaseException) -> BaseException:
    root, seen = exc, 0
    while (nxt := root.__cause__ or root.__context__) is not None and seen < 10:
        root, seen = nxt, seen + 1
    return root


def _connect_reason(exc: BaseException) -> str:
    """``connection refused`` / ``name or service not known`` / … from an httpx ConnectError."""
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, OSError) and root.strerror:
        return root.strerror.lower()
    return str(exc) or "connection failed"


FETCH_TOOL = types.Tool(
    name="fetch",
    description=FETCH_DESCRIPTION,
    input_schema={
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string", "description": "URL to fetch"}},
    },
)


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def build_server() -> Server[Any]:
    """The low-level MCP server with the ``fetch`` tool."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[FETCH_TOOL])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name != "fetch":
            return _tool_error(f"Unknown tool: {params.name}")
        url = (params.arguments or {}).get("url")
        if not isinstance(url, str) or not url:
            return _tool_error("Missing required argument 'url'")
        try:
            text = await fetch_text(url, client=_shared_client())
        except FetchError as e:
            return _tool_error(f"Error fetching {url}: {e}")
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return Server(
        SERVER_NAME,
        version=importlib.metadata.version("mcp"),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def build_app(server: Server[Any] | None = None) -> Starlette:
    """The fetcher's ASGI app: SSE at ``/sse`` + ``/messages/``, Streamable HTTP at ``/mcp``.

    DNS-rebinding protection is off: the server sits inside the cluster and the gateway
    connects with the Service name (``mcp-website-fetcher.default.svc.cluster.local:80``)
    as ``Host``, which a loopback allow-list would refuse with 421.
    """
    server = server or build_server()
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    sse = SseServerTransport("/messages/", security_settings=security)
    sessions = StreamableHTTPSessionManager(app=server, security_settings=security)

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (reader, writer):
            await server.run(reader, writer, server.create_initialization_options())
        return Response()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sessions.run():
            yield

    return Starlette(
        routes=[
            Route("/sse", endpoint=handle_sse, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
            Route("/mcp", endpoint=StreamableHTTPASGIApp(sessions)),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the fetcher with uvicorn (the container's entry point)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="website_fetcher", description="The MCP website fetcher.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    parent = os.environ.get(PARENT_ENV)
    if parent:  # started as a sandbox Pod: go when the sandbox goes, even if it is SIGKILLed
        die_with_parent()
        if os.getppid() != int(parent):
            sys.exit("the sandbox that started this Pod is gone")
    from ..serving import IDLE_TIMEOUT, guarded_protocol

    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="info", use_colors=False,
                http=guarded_protocol(), timeout_keep_alive=IDLE_TIMEOUT)


if __name__ == "__main__":
    main()
