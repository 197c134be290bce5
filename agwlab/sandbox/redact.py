"""Masking API keys wherever the sandbox could echo one: access logs, its own log, error
messages (a key pasted as the model name, or into the wrong field, must not be written out).

Example:
    >>> mask_keys("model=sk-ant-api03-abcdefghijklmnopqrstuvwxyz-1234 status=404")
    'model=sk-ant-…1234 status=404'
"""

from __future__ import annotations

import re

__all__ = ["mask_keys"]

_KEY = re.compile(r"sk-ant-[A-Za-z0-9]+-[A-Za-z0-9_\-]{4,}")


def mask_keys(text: str) -> str:
    """``text`` with every Anthropic-shaped key replaced by its kind and last four characters."""
    if "sk-ant-" not in text:
        return text
    return _KEY.sub(lambda m: f"sk-ant-…{m.group(0)[-4:]}", text)
