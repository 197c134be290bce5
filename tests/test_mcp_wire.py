"""SSE framing and parsing, Accept checks and JSON-RPC helpers."""

from __future__ import annotations

from agwlab.mcp_wire import (
    SSEEvent,
    SSEParser,
    accepts,
    error_message,
    is_notification,
    is_request,
    is_response,
    sse_frame,
)


def test_frame_round_trips_through_the_parser() -> None:
    message = {"jsonrpc": "2.0", "id": 1, "result": {"text": "two\nlines"}}
    frame = sse_frame(message)
    assert frame.startswith(b"event: message\ndata: {") and frame.endswith(b"\n\n")
    events = SSEParser().feed_text(frame.decode())
    assert events == [SSEEvent("message", frame.decode().split("data: ", 1)[1].rstrip("\n"))]
    assert events[0].json() == message


def test_multiline_data_comments_and_crlf() -> None:
    text = (
        ": keep-alive\r\n\r\nevent: endpoint\r\ndata: /sse?sessionId=abc\r\n\r\n"
        "data: a\r\ndata: b\r\nid: 7\r\n\r\n"
    )
    events = SSEParser().feed_text(text)
    assert events == [SSEEvent("endpoint", "/sse?sessionId=abc"), SSEEvent("message", "a\nb", "7")]
    assert sse_frame("x\ny", event="endpoint") == b"event: endpoint\ndata: x\ndata: y\n\n"


def test_parser_keeps_state_across_feeds() -> None:
    parser = SSEParser()
    assert parser.feed("event: message") == []
    assert parser.feed('data: {"a":1}') == []
    assert parser.feed("") == [SSEEvent("message", '{"a":1}')]
    assert parser.feed("") == []


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
