"""Type checks of an OpenAI chat-completions request, worded as agentgateway v1.4.1's serde
errors, so a bad field gets the gateway's text and never a Python message.

v1.4.1 reads a request in two steps, and so does :func:`check_completions_request`:

1. into its loose request struct (``crates/llm/src/types/completions.rs``, ``Request``):
   ``max_tokens: Option<u32>``, ``temperature: Option<f32>``, ``stream: Option<bool>``, ...
   A wrong type is ``failed to parse request: invalid type: string "abc", expected u32 at
   line 1 column 31``, positioned where serde_json stopped reading;
2. for a translated provider, into the full typed request (async-openai's), where ``stop`` must
   be a string or a list of strings and ``n`` a ``u8``: ``failed to marshal request: data did
   not match any variant of untagged enum StopConfiguration`` (no position: it converts a value).

Both become 503 ``processing failed: ...`` (:class:`~.errors.ProcessingFailed`).

Example:
    >>> check_completions_request(b'{"max_tokens":"abc"}', {"max_tokens": "abc"})
    Traceback (most recent call last):
    agwlab.sandbox.proxy.errors.ProcessingFailed: processing failed: failed to parse request: invalid type: string "abc", expected u32 at line 1 column 19
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import ProcessingFailed

__all__ = ["check_completions_request", "check_typed_request"]

# field -> serde's name of the type it expects (the loose struct of v1.4.1)
_LOOSE = {
    "messages": "a sequence", "model": "a string", "top_p": "f32", "temperature": "f32", "stream": "a boolean",
    "frequency_penalty": "f32", "presence_penalty": "f32", "seed": "i64", "max_tokens": "u32",
    "max_completion_tokens": "u32", "tools": "a sequence", "user": "a string", "stream_options": "struct StreamOptions",
}
# fields the typed (async-openai) request reads more strictly than the loose one
_TYPED = {"n": "u8", "top_logprobs": "u8", "logprobs": "a boolean", "parallel_tool_calls": "a boolean",
          "store": "a boolean"}
_RANGES = {"u32": (0, 2**32 - 1), "u8": (0, 255), "i64": (-(2**63), 2**63 - 1)}


def _unexpected(value: Any) -> str:
    """How serde names the value it did not expect."""
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "unit value"


def _problem(value: Any, expected: str) -> str | None:
    """serde's complaint about ``value`` for a field of type ``expected`` (``None``: fine)."""
    if value is None:
        return None  # every field is optional
    if expected in _RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            lo, hi = _RANGES[expected]
            return None if lo <= value <= hi else f"invalid value: {_unexpected(value)}, expected {expected}"
        return f"invalid type: {_unexpected(value)}, expected {expected}"
    if expected == "f32":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return None
        return f"invalid type: {_unexpected(value)}, expected f32"
    ok = {"a string": str, "a boolean": bool, "a sequence": list, "struct StreamOptions": dict}[expected]
    if isinstance(value, ok) and not (ok is not bool and isinstance(value, bool)):
        return None
    return f"invalid type: {_unexpected(value)}, expected {expected}"


def _value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Each top-level key's value span ``(start, end)`` in the JSON object ``text``."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    i = text.index("{") + 1

    def skip(j: int) -> int:
        while j < len(text) and text[j] in " \t\r\n":
            j += 1
        return j

    while True:
        i = skip(i)
        if i >= len(text) or text[i] == "}":
            return spans
        key, i = decoder.raw_decode(text, i)
        i = skip(i) + 1  # the colon
        start = skip(i)
        _, end = decoder.raw_decode(text, start)
        spans[key] = (start, end)
        i = skip(end)
        if i < len(text) and text[i] == ",":
            i += 1


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return f"line {line} column {column}"


def check_completions_request(raw: bytes, body: dict[str, Any]) -> None:
    """Refuse what v1.4.1's loose request struct cannot hold (step 1 above).

    Raises:
        ProcessingFailed: a field has the wrong type, worded as serde_json words it.
    """
    bad = [(key, problem) for key, expected in _LOOSE.items()
           if key in body and (problem := _problem(body[key], expected))]
    if not bad:
        return
    text = raw.decode("utf-8")
    spans = _value_spans(text)
    key, problem = min(bad, key=lambda kp: spans.get(kp[0], (0, 0))[0])  # serde stops at the first
    start, end = spans.get(key, (0, 0))
    at = start if isinstance(body[key], (list, dict)) else end  # serde_json's position for each kind
    raise ProcessingFailed(f"failed to parse request: {problem} at {_position(text, at)}")


def check_typed_request(body: dict[str, Any]) -> None:
    """Refuse what the typed request of a translating provider cannot hold (step 2 above).

    Raises:
        ProcessingFailed: ``stop``, ``n``, ... have the wrong type.
    """
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or
                                 (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise ProcessingFailed("failed to marshal request: data did not match any variant of untagged enum "
                               "StopConfiguration")
    for key, expected in _TYPED.items():
        problem = _problem(body.get(key), expected)
        if problem:
            raise ProcessingFailed(f"failed to marshal request: {problem}")
