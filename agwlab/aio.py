"""Running the lab's async clients (the mcp SDK, httpx's async client) from plain functions.

Notebook cells and nbmake call the lab's functions synchronously, but the official MCP SDK is
async. :func:`run_sync` bridges the two, in a plain interpreter and inside Jupyter alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine that ``make()`` returns to completion and return its result.

    Jupyter's kernel already runs an event loop, in which ``asyncio.run`` refuses to start; there
    the coroutine gets a loop of its own in a worker thread, and the cell waits for it.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> run_sync(answer)
        42
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
