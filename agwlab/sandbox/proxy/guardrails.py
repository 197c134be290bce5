"""Prompt guards (``backend.ai.promptGuard``) on LLM requests and responses, as agentgateway v1.4.1 runs them.

Follows ``crates/agentgateway/src/llm/policy/mod.rs`` (``apply_prompt_guard``,
``apply_prompt_guard_regex``, ``apply_response_prompt_guard``), the recognizers in
``llm/policy/pii/`` and where ``llm/mod.rs`` and ``proxy/httpproxy.rs`` call them:

* Request guards run in order on the client's own body (an OpenAI chat completion or an
  Anthropic Messages request), before it is translated for the provider: every message's
  text except ``tool`` messages (and the Messages ``system`` prompt). Response guards run on
  the answer in the client's format (``choices[].message.content`` or ``content[].text``).
* Streamed answers pass unguarded unless ``streaming: Enabled``
  (``llm/policy/streaming_guardrails.rs``): then the text deltas are held back and checked
  each time 1024 bytes of text have gathered (and at the end), with the last 256 bytes of
  the previous window in front; a window a response guard rejects ends the stream with one
  ``data: {"error":{"type":"guardrail_blocked","code":"guardrail_intervention","message":...}}``
  event in place of the held chunks. Masking does not apply to streams, and streamed
  windows are not counted in ``guardrail_checks``.
* A ``regex`` guard holds custom patterns (``matches``, first) and built-in recognizers
  (``builtins``: ``Ssn``, ``CreditCard``, ``PhoneNumber``, ``Email``, ``CaSin``). ``Mask``
  replaces each custom match with ``<masked>`` and each built-in match with its entity,
  e.g. ``<EMAIL_ADDRESS>``; ``Reject`` answers with the guard's rejection: status 403 and
  ``The request was rejected due to inappropriate content`` unless ``response`` sets
  ``statusCode``/``message``, with no ``content-type``.
* A rejected request never reaches the provider: reason ``Guardrail`` and
  ``error="request rejected by regex guardrail"`` in the access log, no ``gen_ai.*``
  fields. A rejected response replaces the provider's answer; the log shows it like an
  answer (reason ``Upstream``) without response model or token usage.
* ``agentgateway_guardrail_checks_total{phase, action}`` counts each guard evaluated:
  ``Allow``, ``Mask`` or ``Reject`` (evaluation stops at the first ``Reject``).

Guards that call a service (``webhook``, ``openAIModeration``, ``bedrockGuardrails``,
``googleModelArmor``) are not run by the sandbox: they behave as when the service cannot be
reached (a ``webhook`` with ``failureMode: FailOpen`` lets the request through and counts
``FailOpen``; otherwise ``503 processing failed: prompt guard failed``).

Example:
    >>> rules = RegexRules(action="Mask", rules=(("builtin", "Email"), ("regex", r"\\d{2}")))
    >>> apply_regex("mail jane@example.com or call 12", rules)
    ('mask', 'mail <EMAIL_ADDRESS> or call <masked>')
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from starlette.responses import Response

from .context import RequestContext
from .errors import ProcessingFailed
from .state import ProxyState

__all__ = [
    "BUILTINS",
    "DEFAULT_REJECTION",
    "Guard",
    "PromptGuard",
    "RegexRules",
    "apply_regex",
    "guard_request",
    "guard_response",
    "guard_stream",
    "recognize",
]

DEFAULT_REJECTION = b"The request was rejected due to inappropriate content"
BUILTINS = ("Ssn", "CreditCard", "PhoneNumber", "Email", "CaSin")
Rule = tuple[Literal["builtin", "regex"], str]


@dataclass(frozen=True)
class RegexRules:
    """A ``regex`` guard: ``action`` and its rules, ``("regex", pattern)`` then ``("builtin", name)``."""

    action: Literal["Mask", "Reject"] = "Mask"
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Guard:
    """One entry of ``promptGuard.request`` or ``.response``.

    Args:
        kind: ``regex``, or the name of a guard that calls a service (``webhook`` ...).
        regex: the rules of a ``regex`` guard.
        status: the rejection's status (``response.statusCode``, default 403).
        body: the rejection's body (``response.message``).
        fail_open: a ``webhook`` guard with ``failureMode: FailOpen``.
    """

    kind: str
    regex: RegexRules | None = None
    status: int = 403
    body: bytes = DEFAULT_REJECTION
    fail_open: bool = False


@dataclass(frozen=True)
class PromptGuard:
    """``backend.ai.promptGuard`` as the proxy holds it."""

    request: tuple[Guard, ...] = ()
    response: tuple[Guard, ...] = ()
    streaming: bool = False


# --- the built-in recognizers (llm/policy/pii/*.rs): entity type and patterns, in order -------------------

_PATTERNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Ssn": ("SSN", (
        r"\b([0-9]{5})-([0-9]{4})\b",
        r"\b([0-9]{3})-([0-9]{6})\b",
        r"\b(([0-9]{3})-([0-9]{2})-([0-9]{4}))\b",
        r"\b[0-9]{9}\b",
        r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b",
    )),
    "CreditCard": ("CREDIT_CARD", (
        r"\b4\d{3}[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
        r"\b5[0-5]\d{2}[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
        r"\b6\d{3}[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
        r"\b3\d{3}[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
        r"\b1\d{3}[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{4,5})\b",
    )),
    "Email": ("EMAIL_ADDRESS", (r"[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9\-.]+",)),
    "CaSin": ("CA_SIN", (r"\b([0-9]{3})[- ]([0-9]{3})[- ]([0-9]{3})\b", r"\b[0-9]{9}\b")),
}
_PHONE_CANDIDATE = re.compile(r"(?i)(^|[^0-9])([+()]?[0-9][0-9\s().\-]{6,30})")
_PHONE_REGIONS = ("US", "GB", "DE", "IL", "IN", "CA", "BR")


_UNSUPPORTED_GROUPS = ("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?>")


def _rust_can_compile(pattern: str) -> bool:
    """False for what Python's ``re`` has and Rust's ``regex`` crate refuses: look-around,
    back-references and atomic groups."""
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if not in_class and pattern[i + 1:i + 2].isdigit() and pattern[i + 1] != "0":
                return False
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":
                i += 1
        elif pattern.startswith(_UNSUPPORTED_GROUPS, i):
            return False
        i += 1
    return True


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """The pattern compiled, or ``None`` where v1.4.1 skips it (a warning in the proxy's log)."""
    if not _rust_can_compile(pattern):
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Phone numbers as v1.4.1 finds them: a loose candidate, valid in one of seven regions."""
    import phonenumbers

    spans = []
    for m in _PHONE_CANDIDATE.finditer(text):
        candidate = m.group(2)
        for region in _PHONE_REGIONS:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                spans.append((m.start(2), m.end(2)))
                break
    return sorted(set(spans))


def recognize(builtin: str, text: str) -> tuple[str, list[tuple[int, int]]]:
    """The entity type of a built-in and the spans it finds in ``text`` (every pattern, in order).

    Example:
        >>> recognize("Ssn", "ssn 123-45-6789")
        ('SSN', [(4, 15), (4, 15)])
    """
    if builtin == "PhoneNumber":
        return "PHONE_NUMBER", _phone_spans(text)
    entity, patterns = _PATTERNS[builtin]
    spans = []
    for pattern in patterns:
        compiled = _compiled(pattern)
        assert compiled is not None
        spans += [(m.start(), m.end()) for m in compiled.finditer(text)]
    return entity, spans


def _coalesced(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Overlapping spans merged, last first (so replacing them keeps earlier offsets)."""
    ordered = sorted(spans, key=lambda s: (-s[0], s[1]))
    current = ordered[0]
    for start, end in ordered[1:]:
        if end > current[0]:
            current = (start, max(current[1], end))
        else:
            yield current
            current = (start, end)
    yield current


def apply_regex(text: str, rules: RegexRules) -> tuple[str, str] | None:
    """One text through a regex guard: ``("reject", "")``, ``("mask", masked)`` or ``None``."""
    working: str | None = None
    for kind, value in rules.rules:
        content = text if working is None else working
        if kind == "builtin":
            entity, spans = recognize(value, content)
            if not spans:
                continue
            if rules.action == "Reject":
                return "reject", ""
            for start, end in _coalesced(spans):
                content = content[:start] + f"<{entity}>" + content[end:]
            working = content
            continue
        pattern = _compiled(value)
        if pattern is None:
            continue
        if rules.action == "Reject":
            if pattern.search(content):
                return "reject", ""
            continue
        matches = [(m.start(), m.end()) for m in pattern.finditer(content) if m.end() > m.start()]
        for start, end in reversed(matches):
            content = content[:start] + "<masked>" + content[end:]
        if matches:
            working = content
    return None if working is None else ("mask", working)


# --- where the text is: the client's request and response bodies ------------------------------------------

def _runs(parts: list[Any], sep: str, visit: Callable[[str], str | None]) -> bool:
    """Consecutive text parts joined with ``sep`` and guarded as one; a changed run collapses into its last part.

    Returns True when ``visit`` asked to stop (a rejection).
    """
    def text_of(part: Any) -> str | None:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            return str(part["text"])
        return None

    if len(parts) == 1:
        text = text_of(parts[0])
        if text is not None:
            new = visit(text)
            if new is None:
                return True
            parts[0]["text"] = new
        return False
    i = 0
    while i < len(parts):
        end = i
        texts = []
        while end < len(parts) and (t := text_of(parts[end])) is not None:
            texts.append(t)
            end += 1
        if end == i:
            i += 1
            continue
        joined = sep.join(texts)
        new = visit(joined)
        if new is None:
            return True
        if new != joined:
            parts[end - 1]["text"] = new
            del parts[i:end - 1]
            i += 1
        else:
            i = end
    return False


def _visit_request(body: dict[str, Any], messages_api: bool, visit: Callable[[str], str | None]) -> None:
    if messages_api:
        system = body.get("system")
        if isinstance(system, str):
            new = visit(system)
            if new is None:
                return
            body["system"] = new
        elif isinstance(system, list) and _runs(system, "\n", visit):
            return
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict) or (not messages_api and msg.get("role") == "tool"):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            new = visit(content)
            if new is None:
                return
            msg["content"] = new
        elif isinstance(content, list) and _runs(content, " ", visit):
            return


def _visit_response(body: dict[str, Any], messages_api: bool, visit: Callable[[str], str | None]) -> None:
    if messages_api:
        holders = [(b, "text") for b in body.get("content") or [] if isinstance(b, dict) and isinstance(b.get("text"), str)]
    else:
        holders = [(c["message"], "content") for c in body.get("choices") or []
                   if isinstance(c, dict) and isinstance(c.get("message"), dict)
                   and isinstance(c["message"].get("content"), str)]
    for holder, key in holders:
        new = visit(holder[key])
        if new is None:
            return
        holder[key] = new


def _run(guard: Guard, visitor: Callable[[Callable[[str], str | None]], None]) -> str:
    """One guard over a body (changed in place when masked): ``Allow``, ``Mask``, ``Reject`` or ``FailOpen``."""
    if guard.kind != "regex" or guard.regex is None:
        if guard.kind == "webhook" and guard.fail_open:
            return "FailOpen"
        raise ProcessingFailed("prompt guard failed")
    rules = guard.regex
    outcome = "Allow"

    def visit(text: str) -> str | None:
        nonlocal outcome
        result = apply_regex(text, rules)
        if result is None:
            return text
        if result[0] == "reject":
            outcome = "Reject"
            return None
        outcome = "Mask"
        return result[1]

    visitor(visit)
    return outcome


def _rejection(guard: Guard) -> Response:
    """The guard's rejection as v1.4.1 sends it: its status and body, no ``content-type``."""
    return Response(guard.body, status_code=guard.status, media_type=None)


def guard_request(state: ProxyState, ctx: RequestContext, guard: PromptGuard | None, body: dict[str, Any],
                  messages_api: bool) -> Response | None:
    """Run the request guards over the client's body; a rejection to send back, or ``None`` to go on.

    A rejection sets the access log's reason ``Guardrail`` and ``error``.

    Raises:
        ProcessingFailed: a guard that calls a service failed closed.
    """
    if guard is None:
        return None
    for g in guard.request:
        outcome = _run(g, lambda visit: _visit_request(body, messages_api, visit))
        state.metrics.guardrail_checks.labels("Request", outcome).inc()
        if outcome == "Reject":
            ctx.reason, ctx.error = "Guardrail", f"request rejected by {g.kind} guardrail"
            return _rejection(g)
    return None


def guard_response(state: ProxyState, guard: PromptGuard | None, body: dict[str, Any],
                   messages_api: bool) -> Response | None:
    """Run the response guards over the answer (in the client's format); a rejection, or ``None``."""
    if guard is None:
        return None
    for g in guard.response:
        outcome = _run(g, lambda visit: _visit_response(body, messages_api, visit))
        state.metrics.guardrail_checks.labels("Response", outcome).inc()
        if outcome == "Reject":
            return _rejection(g)
    return None


# --- streamed answers (llm/policy/streaming_guardrails.rs) ------------------------------------------------

EVAL_THRESHOLD = 1024        # bytes of text gathered before a window is checked
OVERLAP_BYTES = 256          # the previous window's tail checked again, for matches across windows
BUFFER_LIMIT = 2_097_152     # held bytes that force a check (v1.4.1's default response buffer limit)
_STREAM_FAILED = b"Content blocked by guardrail policy"


def _delta_text(data: bytes) -> str | None:
    """The text a streamed event adds: Responses, chat-completion and Messages deltas."""
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("type") == "response.output_text.delta" and isinstance(event.get("delta"), str):
        return str(event["delta"])
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        content = (choices[0].get("delta") or {}).get("content")
        if isinstance(content, str):
            return content
    delta = event.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("text"), str):
        return str(delta["text"])
    return None


def _tail(text: str, max_bytes: int) -> str:
    raw = text.encode()
    return text if len(raw) <= max_bytes else raw[-max_bytes:].decode(errors="ignore")


def _window_blocked(guards: tuple[Guard, ...], window: str) -> bytes | None:
    for g in guards:
        if g.kind == "regex" and g.regex is not None:
            result = apply_regex(window, g.regex)
            if result is not None and result[0] == "reject":
                return g.body
        elif g.kind == "webhook" and not g.fail_open:
            return _STREAM_FAILED          # the service cannot be reached; a webhook fails closed
    return None


def _blocked_event(body: bytes) -> bytes:
    error = {"error": {"type": "guardrail_blocked", "code": "guardrail_intervention",
                       "message": body.decode(errors="replace")}}
    return f"data: {json.dumps(error, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def _events(buffer: bytes, at_eof: bool) -> tuple[list[bytes], bytes]:
    """Complete SSE events' ``data`` in ``buffer``, and what is left of it."""
    found = []
    normalized = buffer.replace(b"\r\n", b"\n")
    *complete, rest = normalized.split(b"\n\n")
    if at_eof and rest.strip():
        complete.append(rest)
        rest = b""
    for event in complete:
        data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if data:
            found.append(b"\n".join(data))
    return found, rest


async def guard_stream(events: AsyncIterator[bytes], guards: tuple[Guard, ...]) -> AsyncIterator[bytes]:
    """A streamed answer with ``streaming: Enabled`` response guards (see the module docstring)."""
    held: list[bytes] = []
    held_bytes = 0
    pending = ""
    overlap = ""
    buffer = b""
    async for chunk in events:
        held.append(chunk)
        held_bytes += len(chunk)
        found, buffer = _events(buffer + chunk, at_eof=False)
        pending += "".join(t for t in map(_delta_text, found) if t is not None)
        if len(pending.encode()) < EVAL_THRESHOLD and held_bytes < BUFFER_LIMIT:
            continue
        if pending:
            window = overlap + pending
            overlap, pending = _tail(window, OVERLAP_BYTES), ""
            blocked = _window_blocked(guards, window)
            if blocked is not None:
                yield _blocked_event(blocked)
                return
        for frame in held:
            yield frame
        held, held_bytes = [], 0
    found, _ = _events(buffer, at_eof=True)
    pending += "".join(t for t in map(_delta_text, found) if t is not None)
    if pending:
        blocked = _window_blocked(guards, overlap + pending)
        if blocked is not None:
            yield _blocked_event(blocked)
            return
    for frame in held:
        yield frame
