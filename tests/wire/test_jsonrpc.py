"""JSON-RPC messages as MCP uses them: building, telling apart, Accept checks."""

from __future__ import annotations

from agwlab.names import MCP_PROTOCOL_VERSION
from agwlab.wire.jsonrpc import (
    accepts,
    error_message,
    initialize,
    is_notification,
    is_request,
    is_response,
    notification,
    request,
)


def test_accepts() -> None:
    both = ("application/json", "text/event-stream")
    assert accepts("application/json, text/event-stream", *both)
    assert accepts("text/event-stream;q=0.9,application/json", *both)
    assert not accepts("*/*", *both)  # curl's default is not enough
    assert not accepts("application/json", *both)
    assert not accepts(None, *both)


def test_message_kinds() -> None:
    assert is_request({"jsonrpc": "2.0", "id": 0, "method": "ping"})
    assert is_notification({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert not is_request({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert is_response({"jsonrpc": "2.0", "id": 1, "result": {}})
    assert is_response(error_message(1, -32603, "failed to send message: x"))
    assert error_message(3, -32602, "bad", {"k": 1})["error"] == {
        "code": -32602,
        "message": "bad",
        "data": {"k": 1},
    }


def test_built_messages_are_the_kinds_they_claim() -> None:
    init = initialize(7, client_name="lab", protocol_version="2025-03-26")
    assert is_request(init) and init["params"]["protocolVersion"] == "2025-03-26"
    assert initialize(1, client_name="lab")["params"]["protocolVersion"] == MCP_PROTOCOL_VERSION
    assert is_request(request(2, "tools/list")) and "params" not in request(2, "tools/list")
    assert is_notification(notification("notifications/initialized"))
    assert is_response(error_message(3, -32601, "no such method"))
