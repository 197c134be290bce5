"""MCP on the wire: Server-Sent Events framing and JSON-RPC message helpers.

Protocol only, no state: shared by the lab's MCP client (``agwlab.mcp``), which shows
learners the frames exactly as they travel, and the sandbox gateway's MCP handling
(``agwlab.sandbox.proxy.mcp``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SSEEvent",
    "SSEParser",
    "accepts",
    "aiter_sse",
    "error_message",
    "is_notification",
    "is_request",
    "is_response",
    "sse_frame",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event: ``event`` defaults to ``message``; ``data`` lines joined by ``\\n``."""

    event: str = "message"
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON.

        Raises:
            ValueError: the data is not JSON.
        """
        return json.loads(self.data)


def sse_frame(data: str | dict[str, Any], event: str = "message") -> bytes:
    """Encode one event the way agentgateway writes it: ``event: …`` / ``data: …`` / blank line.

    Example:
        >>> sse_frame({"jsonrpc": "2.0", "id": 1, "result": {}})
        b'event: message\\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\\n\\n'
    """
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


class SSEParser:
    """An incremental SSE parser: feed lines (without line endings), collect events.

    Example:
        >>> p = SSEParser()
        >>> [e for line in ["event: endpoint", "data: /sse?sessionId=1", ""] for e in p.feed(line)]
        [SSEEvent(event='endpoint', data='/sse?sessionId=1', id=None)]
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> list[SSEEvent]:
        """Take one line; returns the event it completes, if any."""
        if line == "":
            if not self._data and not self._event:
                return []
            event = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return [event]
        if line.startswith(":"):
            return []  # a comment, e.g. a keep-alive ping
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return []

    def feed_text(self, text: str) -> list[SSEEvent]:
        """Parse a whole SSE body (or a complete prefix of one)."""
        events: list[SSEEvent] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            events.extend(self.feed(line))
        return events


async def aiter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Events from an async iterator of lines (e.g. ``httpx.Response.aiter_lines()``)."""
    parser = SSEParser()
    async for line in lines:
        for event in parser.feed(line.rstrip("\r\n")):
            yield event


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
