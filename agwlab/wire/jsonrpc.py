"""JSON-RPC 2.0 as MCP uses it: building messages, telling them apart, error codes.

Every MCP message the lab or the sandbox writes is built here, ``initialize`` included.

Example:
    >>> initialize(1, client_name="agwlab-probe")["params"]["clientInfo"]
    {'name': 'agwlab-probe', 'version': '1.0'}
    >>> notification("notifications/initialized")
    {'jsonrpc': '2.0', 'method': 'notifications/initialized'}
"""

from __future__ import annotations

from typing import Any

from ..names import MCP_PROTOCOL_VERSION

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "STREAMABLE_HTTP_HEADERS",
    "accepts",
    "error_message",
    "initialize",
    "initialize_params",
    "is_notification",
    "is_request",
    "is_response",
    "notification",
    "request",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# What a Streamable HTTP client sends with every POST: agentgateway wants both types named.
STREAMABLE_HTTP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def request(id_: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC request (``params`` left out when ``None``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC notification: a method and no ``id``."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def initialize_params(
    *,
    client_name: str,
    client_version: str = "1.0",
    protocol_version: str = MCP_PROTOCOL_VERSION,
    capabilities: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``params`` of MCP's ``initialize``: protocol version, capabilities, who the client is."""
    return {
        "protocolVersion": protocol_version,
        "capabilities": capabilities or {},
        "clientInfo": {"name": client_name, "version": client_version},
    }


def initialize(
    id_: Any,
    *,
    client_name: str,
    client_version: str = "1.0",
    protocol_version: str = MCP_PROTOCOL_VERSION,
    capabilities: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """MCP's ``initialize`` request, the first message of every session."""
    params = initialize_params(
        client_name=client_name,
        client_version=client_version,
        protocol_version=protocol_version,
        capabilities=capabilities,
    )
    return request(id_, "initialize", params)


def accepts(header: str | None, *media_types: str) -> bool:
    """True when an ``Accept`` header names every one of ``media_types``.

    Wildcards do not count: agentgateway wants both types spelled out, so curl's default
    ``Accept: */*`` gets a 406.
    """
    listed = {part.split(";")[0].strip().lower() for part in (header or "").split(",")}
    return all(m in listed for m in media_types)


def is_request(message: Any) -> bool:
    """A JSON-RPC request: has a ``method`` and an ``id``."""
    return isinstance(message, dict) and "method" in message and message.get("id") is not None


def is_notification(message: Any) -> bool:
    """A JSON-RPC notification: has a ``method`` and no ``id``."""
    return isinstance(message, dict) and "method" in message and message.get("id") is None


def is_response(message: Any) -> bool:
    """A JSON-RPC response: an ``id`` with a ``result`` or an ``error``, no ``method``."""
    return (
        isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)
    )


def error_message(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": error}
