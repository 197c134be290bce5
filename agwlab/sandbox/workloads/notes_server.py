"""The MCP notes server: a second MCP server for the lab, in one self-contained file.

An MCP server built on the official ``mcp`` SDK's :class:`~mcp.server.mcpserver.MCPServer`,
named ``mcp-notes``, that keeps short notes in memory and serves them over Streamable HTTP at
``/mcp``. Three tools:

* ``list_notes``: every note, numbered;
* ``add_note(text)``: keeps a note and says its number;
* ``delete_note(number)``: removes one.

Notebook 09 puts it behind the same route as the website fetcher, so the gateway multiplexes
two servers, and lets only some callers change notes.

The file imports nothing but the standard library and the ``mcp`` SDK (with the starlette and
uvicorn it brings), so a stock ``python`` image runs it as it is: notebook 09 ships this very file
in a ConfigMap, and the container installs the pinned ``mcp`` release and starts it::

    pip install mcp==2.3.0 && python notes_server.py --port 8000

The sandbox's kubelet runs the same file from the same ConfigMap with its own Python.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

__all__ = ["MAX_NOTE", "MAX_NOTES", "SERVER_NAME", "Notes", "build_app", "build_server", "main"]

SERVER_NAME = "mcp-notes"
MAX_NOTES = 100
MAX_NOTE = 500


class Notes:
    """Short notes kept in memory, numbered from 1 in the order they were added.

    Example:
        >>> notes = Notes()
        >>> notes.add("buy milk")
        'note 1 saved'
        >>> notes.listing()
        '1. buy milk'
        >>> notes.delete(1)
        'note 1 deleted'
    """

    def __init__(self) -> None:
        self._notes: dict[int, str] = {}
        self._next = 1

    def add(self, text: str) -> str:
        text = " ".join(text.split())
        if not text:
            raise ValueError("the note is empty: give it some text")
        if len(text) > MAX_NOTE:
            raise ValueError(f"the note has {len(text)} characters; keep it under {MAX_NOTE}")
        if len(self._notes) >= MAX_NOTES:
            raise ValueError(f"there are already {MAX_NOTES} notes: delete some first")
        number, self._next = self._next, self._next + 1
        self._notes[number] = text
        return f"note {number} saved"

    def listing(self) -> str:
        if not self._notes:
            return "no notes yet"
        return "\n".join(f"{n}. {text}" for n, text in self._notes.items())

    def delete(self, number: int) -> str:
        if self._notes.pop(number, None) is None:
            known = ", ".join(map(str, self._notes)) or "none"
            raise ValueError(f"there is no note {number} (notes: {known})")
        return f"note {number} deleted"


def build_server(notes: Notes | None = None) -> MCPServer:
    """The notes server with its three tools (errors come back as tool results with ``isError``)."""
    notes = notes or Notes()
    server = MCPServer(SERVER_NAME, instructions="Keeps short notes. list_notes reads them; add_note and "
                                                 "delete_note change them.")

    @server.tool(description="List every note, numbered")
    async def list_notes() -> str:
        return notes.listing()

    @server.tool(description="Keep a short note (at most 500 characters); answers its number")
    async def add_note(text: str) -> str:
        try:
            return notes.add(text)
        except ValueError as e:
            raise ToolError(str(e)) from None

    @server.tool(description="Delete the note with this number")
    async def delete_note(number: int) -> str:
        try:
            return notes.delete(number)
        except ValueError as e:
            raise ToolError(str(e)) from None

    return server


def build_app(server: MCPServer | None = None) -> Starlette:
    """The server's ASGI app: Streamable HTTP at ``/mcp``.

    DNS-rebinding protection is off: the gateway connects with the Service's cluster DNS name as
    ``Host``, which a loopback allow-list would refuse.
    """
    server = server or build_server()
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return server.streamable_http_app(transport_security=security)


def main(argv: list[str] | None = None) -> None:
    """Serve the notes with uvicorn (the container's entry point)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="notes_server", description="The MCP notes server.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="info", use_colors=False)


if __name__ == "__main__":
    main()
