"""The proxy's MCP handling: what agentgateway does for routes whose backend is MCP.

``server.py`` calls :func:`handle` for every request routed to an :class:`MCPBackend`.
The path it checks is the one after HTTPRoute filters (``request.scope["path"]``):

* exactly ``/sse`` → the legacy SSE transport (``GET /sse`` opens a stream whose first
  event names ``/sse?sessionId=<uuid>``; ``POST`` there answers 202 and the reply comes
  on the stream);
* anything else → Streamable HTTP (``POST`` JSON-RPC, replies SSE-framed, the session
  named by the ``mcp-session-id`` header; ``GET`` opens the server-notification stream;
  ``DELETE`` ends the session).

Each JSON-RPC message that has a method is counted in ``agentgateway_mcp_requests_total``
and described in the access log (``mcp.method.name``, ``mcp.target``, …); when the
request is sampled each message also gets a SERVER span without attributes under the
request's span, named after the method (``tools/call <target>`` for tool calls), as in
agentgateway v1.4.1. Upstream calls carry the request span's ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from ...wire.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    accepts,
    error_message,
    initialize,
    notification,
)
from ...wire.sse import sse_frame
from .celexpr import request_variables
from .config import MCPBackend
from .context import RequestContext
from .mcp_authz import allowed, refusal
from .mcp_session import (
    SESSION_CLOSED,
    Authorizer,
    MCPSession,
    Routing,
    SendFailed,
    SessionStore,
    UpstreamHook,
    classify,
)
from .mcp_upstream import UpstreamError

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["SESSION_HEADER", "MCPGateway", "gateway_for", "handle", "shutdown"]

SESSION_HEADER = "mcp-session-id"
_STATE_KEY = "mcp"
_SSE_HEADERS = {"cache-control": "no-cache"}
_DEFAULT_PROTOCOL = "2025-03-26"


class MCPGateway:
    """A proxy's MCP state: its sessions (kept across config swaps)."""

    def __init__(self) -> None:
        self.sessions = SessionStore()
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """End every session (the proxy is stopping)."""
        for task in list(self.tasks):
            task.cancel()
        await self.sessions.close_all()


def _count_sessions(state: ProxyState, gateway: MCPGateway) -> None:
    """Show the open sessions on the proxy's /metrics (a sandbox-only gauge: v1.4.1 has none)."""
    with contextlib.suppress(ValueError, AttributeError):  # already registered / no registry
        Gauge("agwlab_sandbox_mcp_sessions", "Open MCP sessions in this proxy (sandbox only, not an "
              "agentgateway metric).", registry=state.metrics.registry).set_function(lambda: len(gateway.sessions))


def _too_many_sessions(ctx: RequestContext, gateway: MCPGateway) -> Response:
    limit = gateway.sessions.MAX_SESSIONS
    return _reject(ctx, 503, f"mcp: too many open sessions (limit {limit}); end sessions you no longer use "
                             "(DELETE with their mcp-session-id) and retry")


def gateway_for(state: ProxyState) -> MCPGateway:
    """The MCP state of one proxy, created on first use in ``state.extra["mcp"]``."""
    gateway = state.extra.get(_STATE_KEY)
    if gateway is None:
        gateway = state.extra[_STATE_KEY] = MCPGateway()
        _count_sessions(state, gateway)
    return gateway


async def shutdown(state: ProxyState) -> None:
    """End the proxy's MCP sessions and their upstream sessions (call when the proxy stops)."""
    gateway = state.extra.pop(_STATE_KEY, None)
    if gateway is not None:
        await gateway.close()


def _version(state: ProxyState) -> str | None:
    """The agentgateway version the proxy shows (multiplexed ``serverInfo.version``)."""
    version = getattr(state, "version", None)
    if version:
        return str(version)
    env = getattr(getattr(state, "pod", None), "env", None) or {}
    return env.get("AGENTGATEWAY_VERSION", "").removeprefix("v") or None


# --- logs, metrics, spans ------------------------------------------------------------


def _reject(ctx: RequestContext, status: int, text: str) -> Response:
    """A request the gateway refuses itself (not the upstream's answer)."""
    ctx.reason = "MCP"
    ctx.error = text
    return PlainTextResponse(text, status_code=status)


def _describe(ctx: RequestContext, state: ProxyState, routing: Routing, session_id: str | None) -> None:
    """Access-log fields, the message's span and the mcp_requests metric for one message."""
    if ctx.tracer is not None:
        name = f"{routing.method} {routing.target}" if routing.method == "tools/call" and routing.target \
            else routing.method
        ctx.tracer.message_span(name)
    ctx.log["mcp.method.name"] = routing.method
    if routing.target:
        ctx.log["mcp.target"] = routing.target
    if routing.resource_type != "unknown":
        ctx.log["mcp.resource.type"] = routing.resource_type
    if routing.resource:
        key = {"tool": "gen_ai.tool.name", "prompt": "gen_ai.prompt.name"}.get(
            routing.resource_type, "mcp.resource.uri"
        )
        ctx.log[key] = routing.resource
    if session_id:
        ctx.log["mcp.session.id"] = session_id
    metrics = getattr(state, "metrics", None)
    if metrics is not None:
        with_target = routing.resource_type != "unknown"
        metrics.record_mcp_request(
            ctx,
            method=routing.method,
            resource_type=routing.resource_type,
            server=(routing.target or "unknown") if with_target else "unknown",
            resource=(routing.resource or "unknown") if with_target else "unknown",
        )


def _note_error(ctx: RequestContext, response: dict[str, Any] | None) -> None:
    if response and isinstance(response.get("error"), dict):
        ctx.log["mcp.error.code"] = response["error"].get("code")
        ctx.log["mcp.error.message"] = response["error"].get("message")


def _hook(ctx: RequestContext) -> UpstreamHook:
    """The ``traceparent`` upstream calls carry (the request span's; no span per call)."""

    @contextlib.contextmanager
    def hook(target: str, method: str, name: str | None) -> Iterator[dict[str, str]]:
        yield {"traceparent": ctx.traceparent_out} if ctx.traceparent_out else {}

    return hook


def _authorizer(request: Request, ctx: RequestContext) -> Authorizer | None:
    """The route's ``backend.mcp.authorization`` for this request (its JWT claims and headers),
    or None when no rules apply (see ``mcp_authz.py``)."""
    rules = ctx.rule.traffic.mcp_authorization if ctx.rule is not None else ()
    if not rules:
        return None
    variables = request_variables(ctx.method, ctx.path, ctx.host, dict(request.headers), ctx.src_addr,
                                  ctx.jwt_claims)
    return lambda kind, target, name: allowed(rules, kind, target, name, variables)


def _refused(routing: Routing, allow: Authorizer | None) -> bool:
    """Whether the rules refuse the tool or prompt a message names (v1.4.1 checks after routing)."""
    return (allow is not None and routing.target is not None and routing.error is None
            and routing.resource_type in ("tool", "prompt") and routing.resource is not None
            and not allow(routing.resource_type, routing.target, routing.resource))


def _refusal(message: dict[str, Any], routing: Routing) -> dict[str, Any]:
    return refusal(message.get("id"), routing.resource_type, str((message.get("params") or {}).get("name")))


# --- entry point ---------------------------------------------------------------------


async def handle(request: Request, ctx: RequestContext, backend: MCPBackend, state: ProxyState) -> Response:
    """Serve one request routed to an MCP backend (see the module docstring).

    Args:
        request: the downstream request; ``scope["path"]`` is the path after URLRewrite.
        ctx: the request's context; MCP fields are added to ``ctx.log``.
        backend: the route's MCP backend.
        state: the proxy's long-lived parts (metrics, http client, ``extra`` for sessions).
    """
    ctx.protocol = "mcp"
    gateway = gateway_for(state)
    if request.scope.get("path") == "/sse":
        return await _legacy_sse(request, ctx, backend, state, gateway)
    return await _streamable(request, ctx, backend, state, gateway)


async def _read_message(request: Request, ctx: RequestContext) -> dict[str, Any] | Response:
    """One JSON-RPC message, or v1.4.1's 400 ``mcp: fail to deserialize request body: ...``."""
    body = await request.body()
    try:
        message = json.loads(body)
        problem = None
    except json.JSONDecodeError as e:
        message, problem = None, f"{e.msg.lower()} at line {e.lineno} column {e.colno}"
    except UnicodeDecodeError:
        message, problem = None, "invalid UTF-8"
    if problem is None and (
        not isinstance(message, dict)
        or message.get("jsonrpc") != "2.0"
        or ("method" not in message and "result" not in message and "error" not in message)
    ):
        problem = "data did not match any variant of untagged enum JsonRpcMessage"
    if problem is not None:
        return _reject(ctx, 400, f"mcp: fail to deserialize request body: {problem}")
    return message


def _send_failed(ctx: RequestContext, msg_id: Any, exc: SendFailed) -> dict[str, Any]:
    """The JSON-RPC error of a request the gateway could not send (noted for the log)."""
    reply = error_message(msg_id, INTERNAL_ERROR, str(exc))
    _note_error(ctx, reply)
    ctx.reason, ctx.error = "MCP", str(exc)
    return reply


#: The protocol versions v1.4.1 accepts in ``MCP-Protocol-Version``.
KNOWN_PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
UNSUPPORTED_PROTOCOL_VERSION = -32022
HEADER_MISMATCH = -32020


def _check_protocol_version(
    ctx: RequestContext, header: str | None, message: dict[str, Any], is_initialize: bool
) -> Response | None:
    """v1.4.1's 400s for an unknown ``MCP-Protocol-Version`` or one the body contradicts
    (a JSON-RPC error when the message is a request, else ``text/plain``)."""
    if header is None:
        return None
    msg_id = message.get("id") if "method" in message else None
    if header not in KNOWN_PROTOCOL_VERSIONS:
        text = f"unsupported MCP protocol version: {header}"
        if msg_id is None:
            return _reject(ctx, 400, f"mcp: {text}")
        error: dict[str, Any] = {"code": UNSUPPORTED_PROTOCOL_VERSION, "message": text}
        if not is_initialize:
            error["data"] = {"supported": list(KNOWN_PROTOCOL_VERSIONS), "requested": header}
        return _json_400(ctx, {"jsonrpc": "2.0", "id": msg_id, "error": error})
    body = ((message.get("params") or {}).get("protocolVersion") if is_initialize
            else ((message.get("params") or {}).get("_meta") or {}).get("protocolVersion"))
    if body is not None and body != header:
        text = "MCP protocol version header/body mismatch"
        if msg_id is None:
            return _reject(ctx, 400, f"mcp: {text}")
        return _json_400(ctx, {"jsonrpc": "2.0", "id": msg_id, "error": {"code": HEADER_MISMATCH, "message": text}})
    return None


def _json_400(ctx: RequestContext, reply: dict[str, Any]) -> Response:
    _note_error(ctx, reply)
    ctx.reason, ctx.error = "MCP", reply["error"]["message"]
    return Response(json.dumps(reply, separators=(",", ":")), status_code=400, media_type="application/json")


def _json_error(reply: dict[str, Any]) -> Response:
    """v1.4.1 answers a request it could not send with HTTP 500 and the JSON-RPC error."""
    body = json.dumps(reply, separators=(",", ":"))
    return Response(body, status_code=500, media_type="application/json")


def _sse_reply(message: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        sse_frame(message),
        status_code=200,
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **(headers or {})},
    )


# --- Streamable HTTP -----------------------------------------------------------------


async def _streamable(
    request: Request, ctx: RequestContext, backend: MCPBackend, state: ProxyState, gateway: MCPGateway
) -> Response:
    stateless = backend.session_routing == "Stateless"
    method = request.method.upper()
    if method == "POST":
        return await _streamable_post(request, ctx, backend, state, gateway, stateless)
    if method in ("GET", "DELETE") and not stateless:
        if method == "GET" and not accepts(request.headers.get("accept"), "text/event-stream"):
            return _reject(ctx, 406, "mcp: client must accept text/event-stream")
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            return _reject(ctx, 400, "mcp: session ID is required")
        ctx.log["mcp.session.id"] = session_id
        session = gateway.sessions.get(session_id)
        if method == "DELETE":          # v1.4.1 accepts the DELETE of a session it does not know
            if session is not None:
                await gateway.sessions.remove(session)
            return Response(status_code=202)
        if session is None:
            return _reject(ctx, 404, "mcp: session not found")
        return StreamingResponse(
            _notifications(session), media_type="text/event-stream", headers=_SSE_HEADERS
        )
    return _reject(ctx, 405, "mcp: method not allowed; must be GET, POST, or DELETE")


async def _outbound_frames(session: MCPSession) -> AsyncIterator[bytes]:
    """The session's outbound messages as SSE frames (a keep-alive comment every 15 s of
    silence) until the session ends."""
    while not session.closed:
        try:
            message = await asyncio.wait_for(session.outbound.get(), timeout=15.0)
        except TimeoutError:
            yield b": keep-alive\n\n"
            continue
        if message is SESSION_CLOSED:
            break
        yield sse_frame(message)


async def _notifications(session: MCPSession) -> AsyncIterator[bytes]:
    """The GET stream: server-initiated messages until the session ends."""
    session.open_streams += 1
    try:
        async for frame in _outbound_frames(session):
            yield frame
    finally:
        session.open_streams -= 1


async def _streamable_post(
    request: Request,
    ctx: RequestContext,
    backend: MCPBackend,
    state: ProxyState,
    gateway: MCPGateway,
    stateless: bool,
) -> Response:
    if not accepts(request.headers.get("accept"), "application/json", "text/event-stream"):
        return _reject(ctx, 406, "mcp: client must accept both application/json and text/event-stream")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return _reject(ctx, 415, "mcp: client must send application/json")
    message = await _read_message(request, ctx)
    if isinstance(message, Response):
        return message
    hook = _hook(ctx)
    session_id = request.headers.get(SESSION_HEADER)
    is_initialize = message.get("method") == "initialize"
    refused = _check_protocol_version(ctx, request.headers.get("mcp-protocol-version"), message, is_initialize)
    if refused is not None:
        return refused

    if is_initialize and (stateless or not session_id):
        if not stateless and not await gateway.sessions.make_room():
            return _too_many_sessions(ctx, gateway)
        session = MCPSession(backend, state.upstream, version=_version(state))
        routing = Routing(method="initialize", message=message)
        try:
            result = await session.initialize(message, hook)
        except UpstreamError as e:
            if not stateless:
                gateway.sessions.release()  # the slot make_room reserved
            _describe(ctx, state, routing, None)
            return _json_error(_send_failed(ctx, message.get("id"), SendFailed(str(e))))
        except BaseException:
            if not stateless:
                gateway.sessions.release()
            raise
        reply = {"jsonrpc": "2.0", "id": message.get("id"), "result": result}
        if stateless:
            await session.close()
            _describe(ctx, state, routing, None)
            return _sse_reply(reply)
        new_id = gateway.sessions.add(session)
        gateway.spawn(gateway.sessions.expire_idle())
        _describe(ctx, state, routing, new_id)
        return _sse_reply(reply, {SESSION_HEADER: new_id})

    if stateless:
        return await _stateless_message(request, ctx, backend, state, message, hook, _authorizer(request, ctx))
    if not session_id:
        return _reject(ctx, 400, "mcp: session header is required for non-initialize requests")
    live = gateway.sessions.get(session_id)
    if live is None:
        ctx.log["mcp.session.id"] = session_id
        return _reject(ctx, 404, "mcp: session not found")
    return await _in_session(ctx, state, live, session_id, message, hook, _authorizer(request, ctx))


async def _in_session(
    ctx: RequestContext,
    state: ProxyState,
    session: MCPSession,
    session_id: str | None,
    message: dict[str, Any],
    hook: UpstreamHook,
    allow: Authorizer | None = None,
) -> Response:
    if "method" not in message:  # the client's answer to a server-initiated request
        if session_id:
            ctx.log["mcp.session.id"] = session_id
        await session.respond(message)
        return Response(status_code=202)
    routing = await session.route(message, hook)
    _describe(ctx, state, routing, session_id)
    if message.get("id") is None:
        await session.notify(message, hook)
        return Response(status_code=202)
    if _refused(routing, allow):
        return _json_400(ctx, _refusal(message, routing))
    try:
        reply = await session.request(routing, hook, allow)
    except SendFailed as e:
        return _json_error(_send_failed(ctx, message.get("id"), e))
    _note_error(ctx, reply)
    return _sse_reply(reply)


async def _stateless_message(
    request: Request,
    ctx: RequestContext,
    backend: MCPBackend,
    state: ProxyState,
    message: dict[str, Any],
    hook: UpstreamHook,
    allow: Authorizer | None = None,
) -> Response:
    """``sessionRouting: Stateless``: a fresh upstream session for every request."""
    if message.get("id") is None or "method" not in message:
        if "method" in message:
            method, resource_type, resource = classify(message)
            _describe(
                ctx, state, Routing(method=method, resource_type=resource_type, resource=resource), None
            )
        return Response(status_code=202)
    session = MCPSession(backend, state.upstream, version=_version(state))
    version = request.headers.get("mcp-protocol-version") or _DEFAULT_PROTOCOL
    init = initialize(0, client_name="agentgateway", client_version="1", protocol_version=version)
    try:
        try:
            await session.initialize(init, hook)
        except UpstreamError as e:
            method, resource_type, resource = classify(message)
            _describe(
                ctx, state, Routing(method=method, resource_type=resource_type, resource=resource), None
            )
            return _json_error(_send_failed(ctx, message.get("id"), SendFailed(str(e))))
        await session.notify(notification("notifications/initialized"))
        return await _in_session(ctx, state, session, None, message, hook, allow)
    finally:
        await session.close()


# --- legacy SSE ----------------------------------------------------------------------


async def _legacy_sse(
    request: Request, ctx: RequestContext, backend: MCPBackend, state: ProxyState, gateway: MCPGateway
) -> Response:
    method = request.method.upper()
    if method == "GET":
        if not await gateway.sessions.make_room():
            return _too_many_sessions(ctx, gateway)
        session = MCPSession(backend, state.upstream, sid=str(uuid.uuid4()), version=_version(state))
        session.open_streams = 1  # the session lives as long as this stream
        gateway.sessions.add_local(session)
        ctx.log["mcp.session.id"] = session.sid
        original_path = ctx.path.split("?", 1)[0] or "/sse"
        return StreamingResponse(
            _legacy_stream(gateway, session, f"{original_path}?sessionId={session.sid}"),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )
    if method != "POST":
        return _reject(ctx, 405, "mcp: method not allowed; must be GET, POST, or DELETE")
    sid = request.query_params.get("sessionId")
    if not sid:
        return _reject(ctx, 422, "mcp: sessionId query parameter is required")
    ctx.log["mcp.session.id"] = sid
    live = gateway.sessions.get_local(sid)
    if live is None:
        return _reject(ctx, 404, "mcp: session not found")
    session = live
    message = await _read_message(request, ctx)
    if isinstance(message, Response):
        return message
    hook = _hook(ctx)
    if "method" not in message:
        await session.respond(message)
        return Response(status_code=202)
    if message["method"] == "initialize":
        routing = Routing(method="initialize", message=message)
        _describe(ctx, state, routing, sid)
        if session.initialized:
            reply = error_message(message.get("id"), INVALID_REQUEST, "session is already initialized")
        else:
            try:
                reply = {
                    "jsonrpc": "2.0",
                    "id": message.get("id"),
                    "result": await session.initialize(message, hook),
                }
            except UpstreamError as e:
                reply = error_message(message.get("id"), INTERNAL_ERROR, f"failed to send message: {e}")
        _note_error(ctx, reply)
        await session.outbound.put(reply)
        return Response(status_code=202)
    if not session.initialized:
        method_name, resource_type, resource = classify(message)
        _describe(
            ctx, state, Routing(method=method_name, resource_type=resource_type, resource=resource), sid
        )
        if message.get("id") is not None:
            reply = error_message(
                message["id"], INVALID_REQUEST, "session is not initialized: send initialize first"
            )
            _note_error(ctx, reply)
            await session.outbound.put(reply)
        return Response(status_code=202)
    routing = await session.route(message, hook)
    _describe(ctx, state, routing, sid)
    if message.get("id") is None:
        await session.notify(message, hook)
        return Response(status_code=202)
    allow = _authorizer(request, ctx)
    if _refused(routing, allow):
        reply = _refusal(message, routing)
        _note_error(ctx, reply)
        await session.outbound.put(reply)
        return Response(status_code=202)

    async def answer() -> None:
        try:
            reply = await session.request(routing, hook, allow)
        except SendFailed as e:
            reply = error_message(message.get("id"), INTERNAL_ERROR, str(e))
        await session.outbound.put(reply)

    gateway.spawn(answer())
    return Response(status_code=202)


async def _legacy_stream(gateway: MCPGateway, session: MCPSession, endpoint: str) -> AsyncIterator[bytes]:
    try:
        yield sse_frame(endpoint, event="endpoint")
        async for frame in _outbound_frames(session):
            yield frame
    finally:
        # The client went away: the session and its upstream sessions go with it.
        gateway.spawn(gateway.sessions.remove(session))
