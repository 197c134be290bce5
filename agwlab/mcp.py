"""A small MCP client for the lab's notebooks: the protocol as it travels, no SDK magic.

Every call is one plain HTTP exchange with the gateway, kept on the result so a cell can
show it (status, headers, the SSE-framed body). Streamable HTTP::

    from agwlab import mcp
    session = mcp.initialize("http://127.64.255.1:8080/mcp")   # POST initialize
    session                                                     # server info, session id
    session.notify_initialized()                                # POST notifications/initialized → 202
    session.list_tools()                                        # POST tools/list → a table
    session.call_tool("fetch", {"url": "http://lab-website.agwlab-system.svc.cluster.local/"})
    session.close()                                             # DELETE → 202

The legacy SSE transport: ``mcp.sse_handshake("http://…:8080/sse")``.

Errors are :class:`MCPError` with a message that says what went wrong and what to check.
"""

from __future__ import annotations

import contextlib
import html
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import LabError
from .names import MCP_PROTOCOL_VERSION, MCP_SESSION_HEADER
from .wire import jsonrpc
from .wire.sse import SSEEvent, SSEParser

__all__ = [
    "DEFAULT_PROTOCOL_VERSION",
    "HTTPExchange",
    "MCPError",
    "MCPSession",
    "SSEHandshake",
    "Tool",
    "ToolList",
    "ToolResult",
    "call_tool",
    "error_for",
    "initialize",
    "list_tools",
    "sse_handshake",
]

DEFAULT_PROTOCOL_VERSION = MCP_PROTOCOL_VERSION
ACCEPT = "application/json, text/event-stream"
_TEXT_LIMIT = 4000


# --- what travelled -----------------------------------------------------------------------


@dataclass(repr=False)
class HTTPExchange:
    """One HTTP request and its response, as text a learner can read."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int
    reason: str
    response_headers: dict[str, str]
    response_body: str

    @classmethod
    def of(cls, response: httpx.Response, body: str | None = None) -> HTTPExchange:
        request = response.request
        return cls(
            method=request.method,
            url=str(request.url),
            request_headers=dict(request.headers.items()),
            request_body=request.content.decode(errors="replace") if request.content else "",
            status=response.status_code,
            reason=response.reason_phrase,
            response_headers=dict(response.headers.items()),
            response_body=body if body is not None else response.text,
        )

    @property
    def events(self) -> list[SSEEvent]:
        """The response body's SSE events (empty when it is not an event stream)."""
        if not self.response_headers.get("content-type", "").startswith("text/event-stream"):
            return []
        return SSEParser().feed_text(self.response_body)

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        path = httpx.URL(self.url).raw_path.decode()
        shown = ("content-type", "accept", "mcp-session-id", "mcp-protocol-version", "traceparent")
        lines = [f"{self.method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.request_headers.items() if k.lower() in shown]
        if self.request_body:
            lines += ["", self.request_body]
        lines += ["", f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [
            f"{k}: {v}"
            for k, v in self.response_headers.items()
            if k.lower() in ("content-type", "mcp-session-id", "cache-control", "content-length")
        ]
        if self.response_body:
            lines += ["", self.response_body.rstrip("\n")]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class MCPError(LabError):
    """An MCP call failed; ``str()`` says what went wrong and what to check.

    Attributes:
        status: the HTTP status (None when no answer came).
        code: the JSON-RPC error code, when the answer carried one.
        exchange: the HTTP exchange, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        exchange: HTTPExchange | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.exchange = exchange


def _connect_error(url: str, exc: httpx.HTTPError) -> MCPError:
    u = httpx.URL(url)
    where = f"{u.host}:{u.port or 80}"
    if isinstance(exc, httpx.TimeoutException):
        what = f"no answer from {where} in time"
    else:
        what = f"cannot connect to {where} (connection refused)"
    return MCPError(
        f"{what}. The gateway's listener should be there: check that the Gateway is programmed and has this "
        "address (kubectl get gateway -A) and that its proxy runs "
        "(kubectl get pods -A -l gateway.networking.k8s.io/gateway-name)."
    )


def _http_error(exchange: HTTPExchange) -> MCPError:
    status, body = exchange.status, exchange.response_body.strip()
    code = None
    detail = body
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            code = payload["error"].get("code")
            detail = str(payload["error"].get("message", body))
    except ValueError:
        pass
    if status == 406:
        text = "the Accept header must list both application/json and text/event-stream"
    elif status == 415:
        text = "the Content-Type header must be application/json"
    elif status == 400 and "session header" in body:
        text = "this request needs the mcp-session-id header that initialize returned: initialize first"
    elif status == 404 and body == "route not found":
        text = (
            "no HTTPRoute matches this path: check the route's path match, its parentRefs and that it is "
            "Accepted (kubectl get httproute -A)"
        )
    elif status == 404:
        text = "the session is gone (the gateway restarted or the session was deleted): initialize again"
    elif status == 405:
        text = f"the gateway does not allow {exchange.method} here ({detail or 'method not allowed'})"
    elif status >= 500:
        text = f"the gateway could not serve this MCP request: {detail}"
    else:
        text = detail or exchange.reason
    return MCPError(f"HTTP {status}: {text}", status=status, code=code, exchange=exchange)


def error_for(response: httpx.Response) -> MCPError:
    """Explain a failed HTTP answer from an MCP endpoint (e.g. from a hand-written httpx call).

    Example:
        >>> r = httpx.post(url, json=msg, headers={"Accept": "application/json"})   # doctest: +SKIP
        >>> print(error_for(r))                                                    # doctest: +SKIP
        HTTP 406: the Accept header must list both application/json and text/event-stream
    """
    response.read()
    return _http_error(HTTPExchange.of(response))


def _reply_of(exchange: HTTPExchange, request_id: Any) -> dict[str, Any]:
    """The JSON-RPC response to ``request_id`` in an SSE-framed or plain JSON body."""
    candidates: list[Any] = []
    if exchange.events:
        for event in exchange.events:
            try:
                candidates.append(event.json())
            except ValueError:
                continue
    else:
        with contextlib.suppress(ValueError):
            candidates.append(json.loads(exchange.response_body))
    for message in candidates:
        if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
            if isinstance(message.get("error"), dict):
                err = message["error"]
                raise MCPError(
                    f"JSON-RPC error {err.get('code')}: {err.get('message')}",
                    status=exchange.status,
                    code=err.get("code"),
                    exchange=exchange,
                )
            return message
    raise MCPError(
        f"HTTP {exchange.status}: the answer carried no JSON-RPC response to request {request_id}",
        status=exchange.status,
        exchange=exchange,
    )


# --- results -------------------------------------------------------------------------------


@dataclass
class Tool:
    """One tool as ``tools/list`` describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def arguments(self) -> str:
        """``url: string (required)``-style summary of the input schema."""
        props = self.input_schema.get("properties", {}) or {}
        required = set(self.input_schema.get("required", []) or [])
        return ", ".join(
            f"{n}: {p.get('type', 'any')}{' (required)' if n in required else ''}" for n, p in props.items()
        )


@dataclass(repr=False)
class ToolList:
    """The answer to ``tools/list``."""

    tools: list[Tool]
    exchange: HTTPExchange

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def __iter__(self) -> Any:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if not self.tools:
            return "(no tools)"
        return "\n".join(f"{t.name}({t.arguments}) - {t.description}" for t in self.tools)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(t.name)}</code></td><td>{html.escape(t.description)}</td>"
            f"<td>{html.escape(t.arguments)}</td></tr>"
            for t in self.tools
        )
        return (
            "<table><thead><tr><th>tool</th><th>description</th><th>arguments</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


@dataclass(repr=False)
class ToolResult:
    """The answer to ``tools/call``: its text content and whether the tool reported an error."""

    name: str
    content: list[dict[str, Any]]
    is_error: bool
    exchange: HTTPExchange

    @property
    def text(self) -> str:
        return "".join(block.get("text", "") for block in self.content if block.get("type") == "text")

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        head = f"{self.name}: {'tool error' if self.is_error else 'ok'}"
        return f"{head}\n{self.text}"

    def _repr_html_(self) -> str:
        text = self.text
        more = ""
        if len(text) > _TEXT_LIMIT:
            more = f"<p><i>… {len(text) - _TEXT_LIMIT} more characters (see <code>.text</code>)</i></p>"
            text = text[:_TEXT_LIMIT]
        status = "<b style='color:#b00'>tool error</b>" if self.is_error else "<b>ok</b>"
        return (
            f"<p><code>{html.escape(self.name)}</code>: {status}, {len(self.content)} content block(s)</p>"
            f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>{more}"
        )


# --- the session ---------------------------------------------------------------------------


@dataclass(repr=False)
class MCPSession:
    """A Streamable HTTP session with an MCP endpoint, created by :func:`initialize`.

    Attributes:
        url: the endpoint (``http://<gateway>:8080/mcp``).
        session_id: the ``mcp-session-id`` header the server chose (None if stateless).
        server_name, server_version, protocol_version, capabilities, instructions: from
            the ``initialize`` result.
        exchange: the ``initialize`` HTTP exchange; ``history`` holds every exchange since.
    """

    url: str
    session_id: str | None = None
    server_name: str = ""
    server_version: str = ""
    protocol_version: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    instructions: str | None = None
    exchange: HTTPExchange | None = None
    history: list[HTTPExchange] = field(default_factory=list)
    timeout: float = 60.0
    initialized_sent: bool = False
    _next_id: int = field(default=1, repr=False)

    # -- transport ----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            headers[MCP_SESSION_HEADER] = self.session_id
        if self.protocol_version and self.exchange is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    def _send(self, method: str, message: dict[str, Any] | None = None) -> HTTPExchange:
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                if method == "POST":
                    response = client.post(self.url, content=json.dumps(message), headers=self._headers())
                else:
                    response = client.request(method, self.url, headers=self._headers())
        except httpx.HTTPError as e:
            raise _connect_error(self.url, e) from None
        exchange = HTTPExchange.of(response)
        self.history.append(exchange)
        if response.status_code >= 300:
            raise _http_error(exchange)
        return exchange

    def request(
        self, method: str, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], HTTPExchange]:
        """Send any JSON-RPC request; returns its response message and the exchange.

        Raises:
            MCPError: an HTTP error, or a JSON-RPC error response.
        """
        if method != "initialize" and not self.initialized_sent:
            self.notify_initialized()
        request_id, self._next_id = self._next_id, self._next_id + 1
        exchange = self._send("POST", jsonrpc.request(request_id, method, params))
        return _reply_of(exchange, request_id), exchange

    # -- the protocol ---------------------------------------------------------------------

    def _initialize(self, client_name: str, client_version: str, protocol_version: str) -> MCPSession:
        params = jsonrpc.initialize_params(
            client_name=client_name, client_version=client_version, protocol_version=protocol_version
        )
        reply, exchange = self.request("initialize", params)
        result = reply.get("result") or {}
        self.exchange = exchange
        self.session_id = exchange.response_headers.get(MCP_SESSION_HEADER)
        info = result.get("serverInfo") or {}
        self.server_name, self.server_version = str(info.get("name", "")), str(info.get("version", ""))
        self.protocol_version = str(result.get("protocolVersion", ""))
        self.capabilities = dict(result.get("capabilities") or {})
        self.instructions = result.get("instructions")
        return self

    def notify_initialized(self) -> HTTPExchange:
        """POST ``notifications/initialized`` (the server answers 202, no body)."""
        exchange = self._send("POST", jsonrpc.notification("notifications/initialized"))
        self.initialized_sent = True
        return exchange

    def list_tools(self) -> ToolList:
        """``tools/list``: the tools the endpoint offers."""
        reply, exchange = self.request("tools/list")
        tools = [
            Tool(
                name=t.get("name", ""),
                description=t.get("description") or "",
                input_schema=t.get("inputSchema") or {},
            )
            for t in (reply.get("result") or {}).get("tools", [])
        ]
        return ToolList(tools, exchange)

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """``tools/call``; a tool's own failure comes back as ``is_error=True``, not an exception."""
        reply, exchange = self.request("tools/call", {"name": name, "arguments": arguments or {}})
        result = reply.get("result") or {}
        return ToolResult(name, list(result.get("content") or []), bool(result.get("isError")), exchange)

    def close(self) -> HTTPExchange:
        """DELETE the session (202); later calls get 404 "session is gone"."""
        return self._send("DELETE")

    def __enter__(self) -> MCPSession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.session_id:
            with contextlib.suppress(MCPError):
                self.close()

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        caps = ", ".join(sorted(self.capabilities)) or "none"
        return (
            f"server: {self.server_name} {self.server_version}\nprotocol: {self.protocol_version}\n"
            f"capabilities: {caps}\nmcp-session-id: {self.session_id or '(none)'}"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("server", f"{self.server_name} {self.server_version}"),
            ("protocol", self.protocol_version),
            ("capabilities", ", ".join(sorted(self.capabilities)) or "none"),
            ("mcp-session-id", self.session_id or "(none)"),
        ]
        if self.instructions:
            rows.append(("instructions", self.instructions))
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"


def initialize(
    url: str,
    *,
    client_name: str = "agwlab",
    client_version: str = "1.0",
    protocol_version: str = DEFAULT_PROTOCOL_VERSION,
    timeout: float = 60.0,
) -> MCPSession:
    """POST ``initialize`` to a Streamable HTTP endpoint and return the new session.

    Raises:
        MCPError: the gateway refused or could not reach the MCP server (the message says why).

    Example:
        >>> s = initialize("http://127.64.255.1:8080/mcp")     # doctest: +SKIP
        >>> s.server_name, s.session_id is not None              # doctest: +SKIP
        ('mcp-website-fetcher', True)
    """
    return MCPSession(url=url, timeout=timeout)._initialize(client_name, client_version, protocol_version)


def list_tools(url: str) -> ToolList:
    """Initialize, list the tools, and close the session: a one-line look at an endpoint."""
    with initialize(url) as session:
        return session.list_tools()


def call_tool(url: str, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
    """Initialize, call one tool, and close the session."""
    with initialize(url) as session:
        return session.call_tool(name, arguments)


# --- the legacy SSE transport ---------------------------------------------------------------


@dataclass(repr=False)
class SSEHandshake:
    """What the legacy SSE transport showed: the endpoint event, the 202, the reply event."""

    url: str
    endpoint: str
    session_id: str
    post_status: int
    events: list[SSEEvent]
    result: dict[str, Any]

    @property
    def server_name(self) -> str:
        return str((self.result.get("serverInfo") or {}).get("name", ""))

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        lines = [f"GET {httpx.URL(self.url).raw_path.decode()}  (Accept: text/event-stream)"]
        for event in self.events[:1]:
            lines += [f"  event: {event.event}", f"  data: {event.data}"]
        lines.append(f"POST {self.endpoint}  initialize  -> {self.post_status}")
        for event in self.events[1:]:
            lines += [f"  event: {event.event}", f"  data: {event.data}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def sse_handshake(
    url: str,
    *,
    client_name: str = "agwlab",
    protocol_version: str = DEFAULT_PROTOCOL_VERSION,
    timeout: float = 30.0,
) -> SSEHandshake:
    """Walk the legacy SSE transport once: ``GET /sse``, read the ``endpoint`` event, POST
    ``initialize`` there, read the answer from the stream, close.

    Raises:
        MCPError: the stream did not open, or no endpoint or answer came.
    """
    message = jsonrpc.initialize(1, client_name=client_name, protocol_version=protocol_version)
    events: list[SSEEvent] = []
    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False) as client,
            client.stream("GET", url, headers={"Accept": "text/event-stream"}) as stream,
        ):
            if stream.status_code != 200:
                stream.read()
                raise _http_error(HTTPExchange.of(stream))
            parser, lines = SSEParser(), stream.iter_lines()

            def next_event() -> SSEEvent:
                for line in lines:
                    found = parser.feed(line)
                    if found:
                        events.append(found[0])
                        return found[0]
                raise MCPError("the SSE stream ended early: is this path an MCP /sse endpoint?")

            first = next_event()
            if first.event != "endpoint":
                raise MCPError(f"expected an 'endpoint' event first, got {first.event!r}")
            endpoint = first.data.strip()
            post = client.post(
                str(httpx.URL(url).join(endpoint)),
                content=json.dumps(message),
                headers={"Content-Type": "application/json"},
            )
            if post.status_code >= 300:
                raise _http_error(HTTPExchange.of(post))
            while True:
                event = next_event()
                if event.event == "message":
                    reply = event.json()
                    if isinstance(reply, dict) and reply.get("id") == 1:
                        break
    except httpx.HTTPError as e:
        raise _connect_error(url, e) from None
    if isinstance(reply.get("error"), dict):
        raise MCPError(
            f"JSON-RPC error {reply['error'].get('code')}: {reply['error'].get('message')}",
            code=reply["error"].get("code"),
        )
    session_id = httpx.URL(str(httpx.URL(url).join(endpoint))).params.get("sessionId", "")
    return SSEHandshake(
        url=url,
        endpoint=endpoint,
        session_id=session_id,
        post_status=post.status_code,
        events=events,
        result=reply.get("result") or {},
    )
