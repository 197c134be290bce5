"""The per-Gateway proxy workload: listeners, stats and readiness servers, request dispatch.

:class:`ProxyWorkload` is what the kubelet runs for a Gateway's proxy Pod. It subscribes
to its Gateway's :class:`~agwlab.sandbox.proxy.config.GatewayConfig`, binds one HTTP
server per distinct listener port on ``config.address`` (a port that cannot be bound is
reported in the Pod log and retried on the next config), serves ``/metrics`` and
``/stats/prometheus`` on ``<pod ip>:15020`` and ``/healthz/ready`` on ``<pod ip>:15021``.

Each request reads the config snapshot current when it arrives (swaps are atomic; a
request in flight finishes on the config it started with), is routed (``routing.py``),
dispatched to the AI, MCP or plain HTTP handler, and when its response is finished
produces one access-log line, the request metrics and, when sampled, one server span
(:meth:`ProxyWorkload._finish`, the only place that records them). Handlers raise
:class:`~agwlab.sandbox.proxy.errors.GatewayError` for the answers the gateway makes
itself; :meth:`ProxyWorkload._serve` turns them into ``text/plain`` responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...names import TESTED_VERSION
from ..runtime import PodContext, WorkloadFailed
from ..serving import ASGIApp, BoundServer, OnClose, OnConnect, bind_socket, os_error_text
from . import accesslog, failover, ratelimit, retry
from .config import AIBackend, AIGroups, GatewayConfig, Listener, MCPBackend, ServiceBackend
from .context import RequestContext
from .errors import GatewayError, NoBackend, ProcessingFailed, RequestTimeout
from .metrics import ProxyMetrics, content_type_for
from .routing import (
    Router,
    apply_header_modifier,
    hostname_specificity,
    pick_backend,
    rewrite_path,
    span_path,
)
from .state import ProxyState
from .tracing import ProxyTracing, default_resource_attributes
from .upstream import UpstreamClient

__all__ = ["DEFAULT_VERSION", "READINESS_PORT", "STATS_PORT", "ProxyWorkload"]

STATS_PORT = 15020
READINESS_PORT = 15021
DEFAULT_VERSION = TESTED_VERSION.removeprefix("v")
RETIRE_AFTER_S = 10.0
_log = logging.getLogger(__name__)


def _log_line(level: str, target: str, message: str, **fields: str) -> str:
    extra = "".join(f"\t{k}={v}" for k, v in fields.items())
    return f"{accesslog.timestamp()}\t{level}\t{target}\t{message}{extra}"


@dataclass(frozen=True)
class _PortView:
    """What one bound port serves: the listeners on it, each with its router."""

    listeners: tuple[tuple[Listener, Router], ...]

    def pick(self, host: str) -> tuple[Listener, Router]:
        best, best_score = self.listeners[0], -1
        for listener, router in self.listeners:
            score = hostname_specificity((listener.hostname,) if listener.hostname else (), host)
            if score is not None and score > best_score:
                best, best_score = (listener, router), score
        return best


@dataclass(frozen=True)
class _Snapshot:
    config: GatewayConfig
    ports: dict[int, _PortView]


class ProxyWorkload:
    """agentgateway's data plane for one Gateway (``pod.env["GATEWAY"]``: the Gateway's name, as
    v1.4.1's chart sets it, in the Pod's namespace; ``"<ns>/<name>"`` is accepted too).

    Example:
        >>> wl = ProxyWorkload()                      # doctest: +SKIP
        >>> await wl.start(pod)                       # doctest: +SKIP
        >>> await wl.stop()                           # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.state: ProxyState | None = None
        self._snapshot: _Snapshot | None = None
        self._servers: dict[tuple[str, int], BoundServer] = {}
        self._aux: list[BoundServer] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._apply_lock = asyncio.Lock()
        self._pending: GatewayConfig | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._failed_binds: set[tuple[str, int]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._mcp: Any = None
        self.version = DEFAULT_VERSION

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, pod: PodContext) -> None:
        """Start the stats and readiness servers and subscribe to the Gateway's config.

        Raises:
            WorkloadFailed: ``GATEWAY`` is missing or the Pod's stats/readiness ports are taken.
        """
        key = pod.env.get("GATEWAY")
        if not key:
            raise WorkloadFailed("env GATEWAY must be set to the Gateway's name")
        if "/" not in key:
            key = f"{pod.namespace}/{key}"
        self._loop = asyncio.get_running_loop()
        self.version = _version_of(pod)
        metrics = ProxyMetrics(tag=self.version)
        tracing = ProxyTracing(default_resource_attributes(pod.namespace, pod.name, pod.pod_ip), self.version)
        self.state = ProxyState(pod=pod, log=pod.log, cluster=pod.cluster, metrics=metrics, tracing=tracing,
                                upstream=UpstreamClient(on_connect=metrics.record_upstream_connect))
        pod.log.write(_log_line("info", "agentgateway", f"version {self.version}", gateway=key))
        try:
            for port, app in ((STATS_PORT, self._stats_app), (READINESS_PORT, self._readiness_app)):
                server = BoundServer(app, bind_socket(pod.pod_ip, port))
                await server.start()
                self._aux.append(server)
        except OSError as exc:
            await self.stop()
            raise WorkloadFailed(f"cannot listen on {pod.pod_ip}: {os_error_text(exc)}") from None
        pod.log.write(_log_line("info", "app", f"serving stats at http://{pod.pod_ip}:{STATS_PORT}/metrics"))
        self._unsubscribe = pod.cluster.subscribe_gateway(key, self._on_config)

    async def stop(self) -> None:
        """Close every server and the upstream client, and flush pending spans."""
        self._stopped = True
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._tasks):
            task.cancel()
        for timer in self._timers:
            timer.cancel()
        servers = list(self._servers.values()) + self._aux
        self._servers, self._aux = {}, []
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        if self.state is not None:
            # Handler-owned state (e.g. MCP sessions) closes before the upstream client does.
            for value in list(self.state.extra.values()):
                close = getattr(value, "close", None)
                if close is not None and asyncio.iscoroutinefunction(close):
                    with contextlib.suppress(Exception):
                        await close()
            await self.state.upstream.close()
            await self.state.tracing.shutdown()

    def alive(self) -> bool:
        """The proxy only stops when told to."""
        return not self._stopped

    @property
    def ready(self) -> bool:
        """True once a config has been applied."""
        return self._snapshot is not None

    @property
    def bound(self) -> list[tuple[str, int]]:
        """The listener addresses currently served."""
        return sorted(self._servers)

    # -- configuration -----------------------------------------------------------------------

    def _on_config(self, config: GatewayConfig) -> None:
        """Called by the cluster with each new config, possibly from another thread."""
        loop = self._loop
        if loop is None or self._stopped:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._schedule(config)
        else:
            loop.call_soon_threadsafe(self._schedule, config)

    def _schedule(self, config: GatewayConfig) -> None:
        self._pending = config
        task = asyncio.ensure_future(self._apply_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_pending(self) -> None:
        async with self._apply_lock:
            config, self._pending = self._pending, None
            if config is None or self._stopped:
                return
            try:
                await self.apply(config)
            except Exception:
                _log.exception("applying gateway config failed")

    async def apply(self, config: GatewayConfig) -> None:
        """Swap in a new config and (re)bind listener ports to match it."""
        state = self.state
        assert state is not None, "start() first"
        ports: dict[int, list[tuple[Listener, Router]]] = {}
        for listener in config.listeners:
            ports.setdefault(listener.port, []).append((listener, Router(listener)))
        state.tracing.configure(config)
        state.config = config
        first = self._snapshot is None
        self._snapshot = _Snapshot(config, {p: _PortView(tuple(v)) for p, v in ports.items()})
        if first:
            state.log.write(_log_line("info", "readiness", "marking server ready"))
        # Every listener port on the Pod IP (where a port-forward reaches it), and on the
        # LoadBalancer address when the Gateway has one.
        hosts = {state.pod.pod_ip, *([config.address] if config.address else [])}
        desired = {(host, p) for host in hosts for p in ports}
        for addr in [a for a in self._servers if a not in desired]:
            server = self._servers.pop(addr)
            await server.stop()
        for addr in sorted(desired - set(self._servers)):
            host, port = addr
            bind_name = f"{port}/{config.namespace}/{config.name}"
            try:
                sock = bind_socket(host, port)
            except OSError as exc:
                state.log.write(_log_line("warn", "proxy::gateway", "failed to bind",
                                          bind=f'"{bind_name}"', address=f"{host}:{port}",
                                          error=f'"{os_error_text(exc)}"'))
                self._failed_binds.add(addr)
                continue
            server = BoundServer(self._listener_app(port), sock, self._connection_counter(port))
            await server.start()
            self._servers[addr] = server
            self._failed_binds.discard(addr)
            state.log.write(_log_line("info", "proxy::gateway", "started bind", bind=f'"{bind_name}"'))
        # Providers replaced by this config still serve requests in flight: retire them later.
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        self._timers.append(loop.call_later(
            RETIRE_AFTER_S, lambda: loop.run_in_executor(None, state.tracing.flush_retired)))

    def _connection_counter(self, port: int) -> OnConnect:
        """Count each accepted connection, and its bytes when it closes, under the same labels."""
        def count() -> OnClose | None:
            snap, state = self._snapshot, self.state
            if snap is None or state is None:
                return None
            view = snap.ports.get(port)
            labels = {"bind": f"{port}/{snap.config.namespace}/{snap.config.name}", "gateway": snap.config.key,
                      "listener": view.listeners[0][0].name if view else "unknown", "protocol": "http"}
            state.metrics.record_connection(**labels)
            metrics = state.metrics
            return lambda sent, received: metrics.record_connection_closed(**labels, sent=sent, received=received)
        return count

    # -- stats and readiness -----------------------------------------------------------------

    async def _stats_app(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.url.path not in ("/metrics", "/stats/prometheus"):
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)
            return
        assert self.state is not None
        body = self.state.metrics.exposition()
        ctype = content_type_for(request.headers.get("accept"))
        await Response(body, media_type=None, headers={"content-type": ctype})(scope, receive, send)

    async def _readiness_app(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/healthz/ready":
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)
        elif self.ready:
            await PlainTextResponse("ready\n")(scope, receive, send)
        else:
            await PlainTextResponse("not ready: waiting for configuration\n", status_code=503)(scope, receive, send)

    # -- requests ----------------------------------------------------------------------------

    def _listener_app(self, port: int) -> ASGIApp:
        async def app(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http":
                return
            await self._serve(port, scope, receive, send)
        return app

    async def _serve(self, port: int, scope: dict, receive: Callable, send: Callable) -> None:
        snap, state = self._snapshot, self.state
        if snap is None or state is None or port not in snap.ports:
            await PlainTextResponse("listener not found", status_code=404)(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        header_map: dict[str, str] = {}
        for k, v in headers:
            header_map.setdefault(k, v)
        host = header_map.get("host", "")
        listener, router = snap.ports[port].pick(host)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        full_path = raw_path.decode("latin-1") + (f"?{query}" if query else "")
        client = scope.get("client")
        ctx = RequestContext(
            gateway=snap.config, listener=listener, method=scope["method"], path=full_path, host=host,
            src_addr=f"{client[0]}:{client[1]}" if client else "unknown",
            http_version=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        state.tracing.start(ctx, header_map.get("traceparent"))
        response: Response
        match = None
        try:
            choice = router.match(scope["method"], scope["path"], host, header_map, dict(parse_qsl(query)))
            if choice is None:
                raise GatewayError(404, "route not found", "NotFound")
            match = choice.match
            ctx.route, ctx.rule = choice.route, choice.rule
            response = await self._dispatch(ctx, state, choice, scope, receive, headers)
        except GatewayError as exc:
            response = _gateway_error(ctx, exc)
        except Exception as exc:  # a handler bug must still answer and log
            _log.exception("proxy request failed")
            response = _gateway_error(ctx, ProcessingFailed(str(exc) or type(exc).__name__))
        if ctx.rule is not None and ctx.rule.response_headers is not None:
            raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
            response.raw_headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in apply_header_modifier(raw, ctx.rule.response_headers)
            ]
        sent = 0

        async def counting_send(message: MutableMapping[str, Any]) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
                ctx.response_headers_at = time.perf_counter()
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await response(scope, receive, counting_send)
        finally:
            if ctx.status is None:
                ctx.status = response.status_code
            self._finish(ctx, state, sent, match)

    async def _dispatch(self, ctx: RequestContext, state: ProxyState, choice: Any, scope: dict,
                        receive: Callable, headers: list[tuple[str, str]]) -> Response:
        rule = choice.rule
        ref = pick_backend(rule.backends)
        ctx.backend_ref = ref
        if ref is None or ref.backend is None:
            raise NoBackend("service not found")
        backend = ref.backend
        if rule.traffic.jwt is not None:  # v1.4.1 authenticates before it rate-limits
            from .jwtauth import authenticate
            ctx.jwt_claims, headers, query = authenticate(rule.traffic.jwt, headers,
                                                          scope.get("query_string", b"").decode("latin-1"))
            if query != scope.get("query_string", b"").decode("latin-1"):
                scope = {**scope, "query_string": query.encode("latin-1")}
            if ctx.jwt_claims is not None and isinstance(ctx.jwt_claims.get("sub"), str):
                ctx.log["jwt.sub"] = ctx.jwt_claims["sub"]
        ratelimit.check_request(state, ctx, dict(reversed(headers)))
        new_path = rewrite_path(scope["path"], choice.match.path, rule.url_rewrite)
        new_headers = apply_header_modifier(headers, rule.request_headers)
        if ctx.traceparent_out:  # the one place the upstream traceparent is set: the server span
            new_headers = [(k, v) for k, v in new_headers if k != "traceparent"]
            new_headers.append(("traceparent", ctx.traceparent_out))
        sub_scope = dict(scope)
        sub_scope["path"] = new_path
        sub_scope["raw_path"] = new_path.encode("latin-1", "replace")
        sub_scope["headers"] = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in new_headers]
        request = Request(sub_scope, receive)
        host = rule.url_rewrite.hostname if rule.url_rewrite and rule.url_rewrite.hostname else None

        async def run(request: Request) -> Response:
            if isinstance(backend, AIBackend):
                from . import ai
                return await ai.handle(request, ctx, backend, state)
            if isinstance(backend, AIGroups):
                return await failover.handle(request, ctx, backend, state)
            if isinstance(backend, MCPBackend):
                handler = self._mcp_handler()
                if handler is None:
                    raise NoBackend("service not found")
                ctx.protocol = "mcp"
                return await handler(request, ctx, backend, state)
            if isinstance(backend, ServiceBackend):
                from .forward import forward
                return await forward(request, ctx, backend, state, host=host)
            raise NoBackend("service not found")

        # traffic.retry tries again (each try picks its backend afresh); the request timeout
        # (traffic.timeouts, else the rule's timeouts.request) covers every try
        timeout = rule.traffic.request_timeout or rule.timeout_seconds
        if timeout:
            try:
                async with asyncio.timeout(timeout):
                    return await retry.with_retries(ctx, rule.traffic.retry, request, run)
            except TimeoutError:
                raise RequestTimeout() from None
        return await retry.with_retries(ctx, rule.traffic.retry, request, run)

    def _mcp_handler(self) -> Any:
        if self._mcp is None:
            try:
                from . import mcp as mcp_module
            except ImportError:
                return None
            self._mcp = getattr(mcp_module, "handle", None)
        return self._mcp

    def _finish(self, ctx: RequestContext, state: ProxyState, sent: int, match: Any) -> None:
        """The one place a finished request is recorded: access log, metrics, server span."""
        duration = time.perf_counter() - ctx.started
        ms = int(duration * 1000)
        try:
            state.log.write(accesslog.format_line(ctx, ms, ctx.gateway.log_format))
            state.metrics.record_request(ctx, response_bytes=sent, duration=duration)
            state.metrics.record_outbound(ctx)
            if ctx.llm is not None:
                state.metrics.record_gen_ai(ctx, ctx.llm, duration=duration)
                ratelimit.amend_after_response(state, ctx)
            if ctx.tracer is not None:
                fields = accesslog.access_fields(ctx, ms)
                attrs = {k: v for k, v in fields.items() if k not in ("error", "duration")}
                attrs["url.scheme"] = "http"
                attrs["network.protocol.version"] = ctx.http_version.removeprefix("HTTP/")
                attrs.update(state.tracing.policy_attributes)
                name = f"{ctx.method} {span_path(match.path)}" if match is not None else ctx.method
                ctx.tracer.finish(name, attrs, ctx.status)
        except Exception:
            _log.exception("recording request failed")


def _gateway_error(ctx: RequestContext, exc: GatewayError) -> Response:
    """The gateway's own answer: ``text/plain``, extra headers (``x-ratelimit-*``), with ``error`` and ``reason`` noted for the log."""
    ctx.reason, ctx.error = exc.reason, exc.message
    # v1.4.1 labels these bare ``text/plain`` (proxy/mod.rs), without a charset parameter
    return Response(exc.message, status_code=exc.status, media_type=None,
                    headers={**dict(exc.headers), "content-type": "text/plain"})


def _version_of(pod: PodContext) -> str:
    """The agentgateway version this Pod pretends to be: env, else the image tag, else the default."""
    if pod.env.get("AGENTGATEWAY_VERSION"):
        return pod.env["AGENTGATEWAY_VERSION"].removeprefix("v")
    image = pod.image or ""
    tail = image.rsplit("/", 1)[-1]
    if ":" in tail:
        tag = tail.rsplit(":", 1)[1].removeprefix("v")
        if tag and tag[0].isdigit():
            return tag
    return DEFAULT_VERSION
