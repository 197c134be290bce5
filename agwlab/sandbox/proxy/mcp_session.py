"""One downstream MCP session: its upstream sessions, routing and result merging.

The gateway is a real MCP peer in the middle, as agentgateway is: each downstream
session owns one upstream session per target. With one target, results pass through
as they are. With several (multiplexing), the gateway answers ``initialize`` itself,
prefixes tool and prompt names with ``<target>_`` and routes calls by splitting on the
first ``_`` (``prefix_mode`` changes when that happens).

:class:`SessionStore` hands out the opaque ``mcp-session-id`` values: AES-256-GCM sealed (per
proxy key) naming the local session and the upstream session ids, so ids are neither
guessable nor UUIDs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...names import TESTED_VERSION
from ...wire.jsonrpc import request
from .config import MCPBackend, MCPTarget
from .mcp_upstream import StreamableUpstream, Upstream, UpstreamError, open_upstream
from .upstream import UpstreamClient

__all__ = [
    "AGW_VERSION",
    "GATEWAY_INSTRUCTIONS",
    "KNOWN_METHODS",
    "SESSION_CLOSED",
    "Authorizer",
    "MCPSession",
    "Routing",
    "SendFailed",
    "SessionStore",
    "UpstreamHook",
    "classify",
]

AGW_VERSION = TESTED_VERSION.removeprefix("v")
GATEWAY_INSTRUCTIONS = (
    "This server is a gateway to a set of mcp servers. It is responsible for routing requests to the correct "
    "server and aggregating the results."
)

#: Put on ``MCPSession.outbound`` when the session closes, so its streams end at once.
SESSION_CLOSED: dict[str, Any] = {}

#: ``hook(target, method, name)`` wraps one upstream call (a tracing span) and yields the
#: extra headers to send (``traceparent``).
UpstreamHook = Callable[[str, str, "str | None"], AbstractContextManager[dict[str, str]]]

#: ``allow(kind, target, name)``: whether a caller may see and use a ``tool``, ``prompt`` or
#: ``resource`` (``backend.mcp.authorization``, see ``mcp_authz.py``).
Authorizer = Callable[[str, str, str], bool]

_RESOURCE_TYPES = {
    "tools/call": "tool",
    "prompts/get": "prompt",
    "resources/read": "resource",
    "resources/subscribe": "resource",
    "resources/unsubscribe": "resource",
}
#: The client request methods agentgateway v1.4.1 (rmcp) knows; anything else is refused
#: with ``unsupported method: ...`` and not forwarded.
KNOWN_METHODS = frozenset({
    "initialize", "ping", "completion/complete", "logging/setLevel", "prompts/get", "prompts/list",
    "resources/list", "resources/templates/list", "resources/read", "resources/subscribe",
    "resources/unsubscribe", "tools/call", "tools/list", "tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
})
_LIST_KEYS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
# what authorization calls a listed item, and which of its fields names it
_LIST_ITEMS = {"tools": ("tool", "name"), "prompts": ("prompt", "name"), "resources": ("resource", "uri"),
               "resourceTemplates": ("resource", "uriTemplate")}


@dataclass
class Routing:
    """Where one JSON-RPC message goes, and what logs and metrics call it."""

    method: str
    resource_type: str = "unknown"  # tool / prompt / resource / unknown
    target: str | None = None  # the target a call goes to (None: all or none)
    resource: str | None = None  # tool or prompt name (unprefixed) or resource URI
    message: dict[str, Any] = field(default_factory=dict)  # rewritten for the upstream
    error: str | None = None  # routing failed (unknown tool, …)


class SendFailed(Exception):
    """A request the gateway could not send (agentgateway's ``failed to send message: ...``):
    HTTP 500 with JSON-RPC ``-32603`` on Streamable HTTP, the same error on a legacy stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"failed to send message: {reason}")


def _no_hook(target: str, method: str, name: str | None) -> AbstractContextManager[dict[str, str]]:
    return contextlib.nullcontext({})


def classify(message: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(method, resource_type, resource)`` of a message, before any target is known."""
    method = str(message.get("method", ""))
    params = message.get("params") or {}
    resource_type = _RESOURCE_TYPES.get(method, "unknown")
    resource = None
    if resource_type in ("tool", "prompt"):
        resource = params.get("name") if isinstance(params.get("name"), str) else None
    elif resource_type == "resource":
        resource = params.get("uri") if isinstance(params.get("uri"), str) else None
    return method, resource_type, resource


class MCPSession:
    """A downstream session and its upstream sessions (one per target).

    Args:
        backend: the MCP backend as it was when the session started.
        http: the proxy's pooled upstream client.
        sid: the session's local key.
        version: the gateway version for a multiplexed ``serverInfo``.
    """

    def __init__(
        self, backend: MCPBackend, http: UpstreamClient, sid: str | None = None, version: str | None = None
    ) -> None:
        self.backend = backend
        self.version = version or AGW_VERSION
        self.http = http
        self.sid = sid or uuid.uuid4().hex
        self.upstreams: dict[str, Upstream] = {}
        self.outbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # server → client messages
        self.initialized = False
        self.closed = False
        self.last_used = time.monotonic()
        self.open_streams = 0  # GET streams being served
        self._pumps: list[asyncio.Task[None]] = []
        self._server_requests: dict[str, tuple[str, Any]] = {}  # downstream id -> (target, upstream id)
        self._owners: dict[str, str] = {}  # unprefixed name -> target (Never)

    @property
    def multiplexed(self) -> bool:
        return len(self.backend.targets) > 1

    @property
    def prefixed(self) -> bool:
        mode = self.backend.prefix_mode
        return mode == "Always" or (mode == "Conditional" and self.multiplexed)

    def who(self, name: str) -> str:
        """How errors name a target: ``upstream mcp-target (mcp-website-fetcher.default…:80)``."""
        target = next((t for t in self.backend.targets if t.name == name), None)
        host = f" ({target.host_header})" if target is not None and target.host_header else ""
        return f"upstream {name}{host}"

    # -- lifecycle -----------------------------------------------------------------------

    async def initialize(self, message: dict[str, Any], hook: UpstreamHook = _no_hook) -> dict[str, Any]:
        """Open every target and send it ``initialize``; returns the downstream result.

        Raises:
            UpstreamError: a target failed and ``failure_mode`` is FailClosed, or every
                target failed.
        """
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}

        async def one(target: MCPTarget) -> None:
            upstream = open_upstream(target, self.http)
            try:
                with hook(target.name, "initialize", None) as headers:
                    await upstream.connect(headers)
                    response = await upstream.request(message, headers)
            except UpstreamError as e:
                await upstream.close()
                errors[target.name] = f"{self.who(target.name)}: {e}"
                return
            if "error" in response:
                await upstream.close()
                errors[target.name] = (
                    f"{self.who(target.name)}: {response['error'].get('message', 'initialize failed')}"
                )
                return
            result = response.get("result") or {}
            upstream.protocol_version = result.get("protocolVersion")
            self.upstreams[target.name] = upstream
            results[target.name] = result

        await asyncio.gather(*(one(t) for t in self.backend.targets))
        if errors and (self.backend.failure_mode == "FailClosed" or not results):
            await self.close()
            raise UpstreamError("; ".join(errors.values()))
        for name, upstream in self.upstreams.items():
            self._pumps.append(asyncio.create_task(self._pump(name, upstream), name=f"mcp-pump {name}"))
        self.initialized = True
        if not self.multiplexed:
            return next(iter(results.values()))
        requested = (message.get("params") or {}).get("protocolVersion")
        return self._merge_initialize(results, requested if isinstance(requested, str) else None)

    def _merge_initialize(self, results: dict[str, dict[str, Any]], requested: str | None) -> dict[str, Any]:
        """v1.4.1's multiplexed answer: the lowest of the client's and the upstreams' protocol
        versions; tools, prompts and resources with ``listChanged`` (resources also
        ``subscribe`` when sessions are stateful), whatever the upstreams offer."""
        versions = sorted(r.get("protocolVersion", "") for r in results.values() if r.get("protocolVersion"))
        if requested:
            versions = sorted([*versions, requested])
        resources: dict[str, Any] = {"subscribe": True} if self.backend.session_routing != "Stateless" else {}
        capabilities: dict[str, Any] = {
            "prompts": {"listChanged": True},
            "resources": {**resources, "listChanged": True},
            "tools": {"listChanged": True},
        }
        instructions = GATEWAY_INSTRUCTIONS
        for name, result in results.items():
            if result.get("instructions"):
                instructions += f"\n\n[{name}]\n{result['instructions']}"
        merged: dict[str, Any] = {
            "protocolVersion": versions[0] if versions else "2025-03-26",
            "capabilities": capabilities,
            "serverInfo": {"name": "agentgateway", "version": self.version},
            "instructions": instructions,
        }
        return merged

    async def _pump(self, name: str, upstream: Upstream) -> None:
        """Forward server-initiated messages of one upstream to the downstream client."""
        while True:
            message = await upstream.incoming.get()
            if message.get("id") is not None and "method" in message:
                # A server-to-client request: give it an id unique across targets.
                downstream_id = f"{name}:{message['id']}" if self.multiplexed else message["id"]
                self._server_requests[json.dumps(downstream_id)] = (name, message["id"])
                message = {**message, "id": downstream_id}
            await self.outbound.put(message)

    async def close(self) -> None:
        """Close every upstream session (DELETE for Streamable HTTP targets)."""
        if not self.closed:
            self.outbound.put_nowait(SESSION_CLOSED)  # wakes the streams that serve ``outbound``
        self.closed = True
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*(u.close() for u in self.upstreams.values()), return_exceptions=True)

    def upstream_session_ids(self) -> dict[str, str]:
        return {
            n: u.session_id
            for n, u in self.upstreams.items()
            if isinstance(u, StreamableUpstream) and u.session_id
        }

    # -- routing -------------------------------------------------------------------------

    async def route(self, message: dict[str, Any], hook: UpstreamHook = _no_hook) -> Routing:
        """Decide where a request or notification goes (``Never`` mode may list tools to know)."""
        method, resource_type, resource = classify(message)
        routing = Routing(method=method, resource_type=resource_type, resource=resource, message=message)
        if resource_type not in ("tool", "prompt"):
            if len(self.upstreams) == 1 and resource_type == "resource":
                routing.target = next(iter(self.upstreams))
            return routing
        name = resource or ""
        if not self.prefixed:
            if len(self.upstreams) == 1:
                routing.target = next(iter(self.upstreams))
            else:
                routing.target = await self._owner(name, resource_type, hook)
                if routing.target is None:
                    routing.error = f"invalid request: unknown {resource_type} {name}"
            return routing
        target, sep, bare = name.partition("_")
        if not sep:
            routing.error = "invalid request: invalid resource name"
            return routing
        if target not in self.upstreams:
            routing.error = f"invalid request: unknown service {target}"
            return routing
        routing.target, routing.resource = target, bare
        routing.message = {**message, "params": {**(message.get("params") or {}), "name": bare}}
        return routing

    async def _owner(self, name: str, resource_type: str, hook: UpstreamHook) -> str | None:
        """``Never`` mode: find the target that has ``name`` by listing every target."""
        method = "tools/list" if resource_type == "tool" else "prompts/list"
        key = _LIST_KEYS[method]
        for target, upstream in self.upstreams.items():
            try:
                with hook(target, method, None) as headers:
                    response = await upstream.request(request(0, method), headers)
            except UpstreamError:
                continue
            for item in (response.get("result") or {}).get(key, []):
                if item.get("name") == name:
                    return target
        return None

    # -- dispatch ------------------------------------------------------------------------

    async def request(self, routing: Routing, hook: UpstreamHook = _no_hook,
                      allow: Authorizer | None = None) -> dict[str, Any]:
        """Answer one request (the upstream's answer, JSON-RPC errors included); lists leave
        out what ``allow`` refuses.

        Raises:
            SendFailed: the request cannot be sent: an unknown method or tool, or no
                upstream could be reached (as v1.4.1, nothing is forwarded then).
        """
        message, msg_id = routing.message, routing.message.get("id")
        if routing.method == "ping":
            return {"jsonrpc": "2.0", "id": msg_id, "result": {}}
        if routing.method not in KNOWN_METHODS:
            raise SendFailed(f"unsupported method: {routing.method}")
        if routing.error:
            raise SendFailed(routing.error)
        if routing.method in _LIST_KEYS:
            return await self._list(routing, hook, allow)
        targets = [routing.target] if routing.target else list(self.upstreams)
        if not targets:
            raise SendFailed("no upstream is available")
        failures: list[str] = []
        for target in targets:
            try:
                with hook(
                    target, routing.method, routing.resource if routing.resource_type == "tool" else None
                ) as headers:
                    response = await self.upstreams[target].request(message, headers)
            except UpstreamError as e:
                failures.append(f"{self.who(target)}: {e}")
                continue
            if routing.target or "error" not in response or target == targets[-1]:
                return response
        raise SendFailed("; ".join(failures))

    async def _list(self, routing: Routing, hook: UpstreamHook, allow: Authorizer | None = None) -> dict[str, Any]:
        key = _LIST_KEYS[routing.method]
        kind, field_name = _LIST_ITEMS[key]

        def visible(target: str, item: Any) -> bool:
            return allow is None or not isinstance(item, dict) or allow(kind, target, str(item.get(field_name)))

        msg_id = routing.message.get("id")
        names = [t.name for t in self.backend.targets if t.name in self.upstreams]  # in the backend's order

        async def one(target: str) -> dict[str, Any]:
            with hook(target, routing.method, None) as headers:
                return await self.upstreams[target].request(routing.message, headers)

        answers = await asyncio.gather(*(one(t) for t in names), return_exceptions=True)
        if not self.prefixed and len(answers) == 1:
            answer = answers[0]
            if isinstance(answer, BaseException):
                raise SendFailed(f"{self.who(names[0])}: {answer}")
            result = answer.get("result")
            if allow is not None and isinstance(result, dict) and isinstance(result.get(key), list):
                answer = {**answer, "result": {**result, key: [i for i in result[key] if visible(names[0], i)]}}
            return answer
        items: list[dict[str, Any]] = []
        for target, answer in zip(names, answers, strict=True):
            if isinstance(answer, BaseException) or "error" in answer:
                reason = answer if isinstance(answer, BaseException) else answer["error"].get("message")
                if self.backend.failure_mode == "FailClosed":
                    raise SendFailed(f"{self.who(target)}: {reason}")
                continue
            for item in (answer.get("result") or {}).get(key, []):
                if not visible(target, item):
                    continue
                if self.prefixed and key in ("tools", "prompts") and isinstance(item.get("name"), str):
                    item = {**item, "name": f"{target}_{item['name']}"}
                items.append(item)
        return {"jsonrpc": "2.0", "id": msg_id, "result": {key: items}}

    async def notify(self, message: dict[str, Any], hook: UpstreamHook = _no_hook) -> None:
        """Deliver a client notification to every target (failures are dropped, as HTTP 202 promised)."""
        method = str(message.get("method"))

        async def one(target: str, upstream: Upstream) -> None:
            with hook(target, method, None) as headers:
                await upstream.send(message, headers)

        await asyncio.gather(*(one(t, u) for t, u in self.upstreams.items()), return_exceptions=True)

    async def respond(self, message: dict[str, Any]) -> None:
        """Deliver the client's response to a server-initiated request."""
        owner = self._server_requests.pop(json.dumps(message.get("id")), None)
        if owner is None:
            return
        target, upstream_id = owner
        upstream = self.upstreams.get(target)
        if upstream is not None:
            with contextlib.suppress(UpstreamError):
                await upstream.send({**message, "id": upstream_id})


class SessionStore:
    """The sessions of one proxy, named by opaque, encrypted ids (as v1.4.1: AES-256-GCM,
    a random 12-byte nonce before the ciphertext, standard base64).

    Example:
        >>> store = SessionStore()
        >>> sid = store.add(session)            # doctest: +SKIP
        >>> store.get(sid) is session           # doctest: +SKIP
        True
    """

    #: Sessions nobody used for this long (and with no open stream) are closed.
    IDLE_TIMEOUT = 30 * 60.0
    #: Open sessions one proxy keeps (each may hold upstream streams from a pool of 1000).
    MAX_SESSIONS = 500
    #: At the cap, sessions idle this long (and with no open stream) make room for new ones.
    EVICT_IDLE_AFTER = 60.0

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = AESGCM(key or AESGCM.generate_key(bit_length=256))
        self._sessions: dict[str, MCPSession] = {}
        self._reserved = 0  # slots make_room handed out for sessions still initializing

    def encode(self, session: MCPSession) -> str:
        payload = {"s": session.sid, "u": session.upstream_session_ids()}
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(payload, separators=(",", ":")).encode(), None)
        return base64.b64encode(nonce + sealed).decode()

    def _decode(self, session_id: str) -> Any:
        raw = base64.b64decode(session_id.encode(), validate=True)
        return json.loads(self._aead.decrypt(raw[:12], raw[12:], None))

    def add(self, session: MCPSession) -> str:
        """Keep ``session`` (in the slot :meth:`make_room` reserved); returns its ``mcp-session-id``."""
        self.release()
        self._sessions[session.sid] = session
        return self.encode(session)

    def get(self, session_id: str) -> MCPSession | None:
        """The live session an id names, or None (bad token, closed, or from another proxy)."""
        try:
            payload = self._decode(session_id)
        except (InvalidTag, ValueError, TypeError):
            return None
        return self.get_local(str(payload.get("s")))

    def get_local(self, sid: str) -> MCPSession | None:
        """A session by its local key (the legacy SSE ``sessionId``)."""
        session = self._sessions.get(sid)
        if session is None or session.closed:
            return None
        session.last_used = time.monotonic()
        return session

    def add_local(self, session: MCPSession) -> None:
        self.release()
        self._sessions[session.sid] = session

    def release(self) -> None:
        """Give back a slot :meth:`make_room` reserved (the session did not come to be)."""
        self._reserved = max(0, self._reserved - 1)

    async def remove(self, session: MCPSession) -> None:
        self._sessions.pop(session.sid, None)
        await session.close()

    async def expire_idle(self, now: float | None = None) -> int:
        """Close sessions idle for :attr:`IDLE_TIMEOUT` (clients that never sent DELETE).

        Returns:
            How many sessions were closed.
        """
        now = time.monotonic() if now is None else now
        idle = [
            s
            for s in self._sessions.values()
            if s.open_streams == 0 and now - s.last_used > self.IDLE_TIMEOUT
        ]
        for session in idle:
            await self.remove(session)
        return len(idle)

    async def make_room(self, now: float | None = None) -> bool:
        """Whether a new session fits under :attr:`MAX_SESSIONS`, closing the longest-idle
        sessions (idle over :attr:`EVICT_IDLE_AFTER`, no open stream) to make room. When it
        fits, a slot is reserved until :meth:`add` or :meth:`add_local` (or :meth:`release`),
        so sessions still initializing count too.

        Closing a session releases its upstream sessions and streams.
        """
        if len(self._sessions) + self._reserved >= self.MAX_SESSIONS:
            now = time.monotonic() if now is None else now
            idle = sorted((s for s in self._sessions.values()
                           if s.open_streams == 0 and now - s.last_used > self.EVICT_IDLE_AFTER),
                          key=lambda s: s.last_used)
            for session in idle[: len(self._sessions) + self._reserved - self.MAX_SESSIONS + 1]:
                await self.remove(session)
        if len(self._sessions) + self._reserved >= self.MAX_SESSIONS:
            return False
        self._reserved += 1
        return True

    async def close_all(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._sessions)
