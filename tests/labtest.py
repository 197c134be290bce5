"""Helpers the end-to-end tests share: constants of the lab and a polling wait."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
KEY = "sk-ant-api03-" + "T" * 86 + "AA"      # shaped like an Anthropic key; the stand-in checks only the shape
SEED_MODEL = "claude-sonnet-4-5-20250929"
NS = "agentgateway-system"


def poll(fn: Any, *, timeout: float = 20, what: str = "condition") -> Any:
    """Call ``fn`` until it returns something truthy; fail with the last thing seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # keep polling; report the last thing seen
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last saw: {last!r}")
