"""Server-Sent Events: parsing a stream into events, and writing one event.

Example:
    >>> events = SSEParser().feed_text("event: endpoint\\ndata: /sse?sessionId=1\\n\\n")
    >>> events[0].event, events[0].data
    ('endpoint', '/sse?sessionId=1')
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEEvent", "SSEParser", "aiter_sse", "iter_sse", "sse_frame"]


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


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Events from lines (e.g. ``httpx.Response.iter_lines()``), as they complete."""
    parser = SSEParser()
    for line in lines:
        yield from parser.feed(line.rstrip("\r\n"))
