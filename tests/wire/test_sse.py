"""SSE framing and parsing."""

from __future__ import annotations

from agwlab.wire.sse import SSEEvent, SSEParser, iter_sse, sse_frame


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


def test_iter_sse_yields_events_as_lines_complete() -> None:
    lines = iter(["event: endpoint", "data: /sse?sessionId=1", "", "data: {}", ""])
    events = iter_sse(lines)
    assert next(events) == SSEEvent("endpoint", "/sse?sessionId=1")
    assert next(lines) == "data: {}"  # the first event came before the rest was read
