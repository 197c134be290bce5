"""The MCP notes server (``notes_server.py``), spoken to with the official mcp SDK's client over
Streamable HTTP, served by uvicorn on loopback as the sandbox's Pod does."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from agwlab.sandbox.workloads.notes_server import MAX_NOTE, Notes, build_app


def test_notes_are_numbered_and_bad_input_says_what_to_do() -> None:
    notes = Notes()
    assert notes.add("  milk\n and bread ") == "note 1 saved" and notes.listing() == "1. milk and bread"
    with pytest.raises(ValueError, match="empty"):
        notes.add("   ")
    with pytest.raises(ValueError, match=f"under {MAX_NOTE}"):
        notes.add("x" * (MAX_NOTE + 1))
    with pytest.raises(ValueError, match=r"no note 7 \(notes: 1\)"):
        notes.delete(7)
    assert notes.listing() == "1. milk and bread"   # a refused change loses nothing


def test_the_sdk_lists_and_calls_the_tools() -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def run() -> tuple[list[str], str, bool, str]:
        server = uvicorn.Server(uvicorn.Config(build_app(), host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.05)
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams,
                ClientSession(streams[0], streams[1]) as session,
            ):
                await session.initialize()
                names = [t.name for t in (await session.list_tools()).tools]
                saved = await session.call_tool("add_note", {"text": "hello"})
                missing = await session.call_tool("delete_note", {"number": 9})
                return names, saved.content[0].text, bool(missing.is_error), missing.content[0].text
        finally:
            server.should_exit = True
            await serving

    names, saved, is_error, why = asyncio.run(asyncio.wait_for(run(), 60))
    assert names == ["list_notes", "add_note", "delete_note"]
    assert saved == "note 1 saved" and is_error and "there is no note 9" in why
