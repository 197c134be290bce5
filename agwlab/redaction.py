"""Keeping secrets out of text: every key agwlab has handled, and anything shaped like one.

A leaf module (it imports nothing from agwlab), so errors, logs and renderers anywhere can
pass their text through :func:`redact`. :mod:`agwlab.secrets` decides where keys come from
and registers each one here with :func:`remember`.
"""

from __future__ import annotations

import re
import threading

__all__ = ["mask", "redact", "remember"]

_ANTHROPIC_KEY = re.compile(r"sk-ant-[A-Za-z0-9]+-[A-Za-z0-9_\-]{4,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}")
_X_API_KEY = re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{8,})")

_lock = threading.Lock()
_known: set[str] = set()


def mask(key: str) -> str:
    """A key as it may be shown: its kind and last four characters.

    Example:
        >>> mask("sk-ant-api03-abcdefghijklmnopqrstuvwxyz-1234")
        'sk-ant-…1234'
    """
    key = key.strip()
    if not key:
        return "(empty)"
    tail = key[-4:] if len(key) >= 12 else ""
    head = "sk-ant-" if key.startswith("sk-ant-") else ""
    return f"{head}…{tail}"


def remember(value: str) -> None:
    """Redact ``value`` from now on, wherever it appears (values shorter than 8 characters are ignored)."""
    if len(value) >= 8:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Replace every secret in ``text`` with its masked form.

    Covers every key agwlab has handled, anything shaped like an Anthropic key,
    ``Bearer`` tokens and ``x-api-key`` values.

    Example:
        >>> redact("key sk-ant-api03-SECRETSECRETSECRET-wxyz here")
        'key sk-ant-…wxyz here'
    """
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, mask(value))
    text = _ANTHROPIC_KEY.sub(lambda m: mask(m.group(0)), text)
    text = _BEARER.sub(lambda m: m.group(1) + "***", text)
    text = _X_API_KEY.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    return text
