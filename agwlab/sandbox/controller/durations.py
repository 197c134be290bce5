"""Durations as Gateway API and agentgateway's CRDs write them (``1h2m3s``, ``500ms``)."""

from __future__ import annotations

import re

__all__ = ["duration_seconds"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str | None) -> float | None:
    """Seconds in a duration string; ``None`` for an empty, zero or unreadable one.

    Example:
        >>> duration_seconds("1m30s"), duration_seconds("250ms"), duration_seconds("")
        (90.0, 0.25, None)
    """
    total, matched = 0.0, False
    for value, unit in _PART.findall(text or ""):
        matched = True
        total += float(value) * _UNIT[unit]
    return total if matched and total > 0 else None
