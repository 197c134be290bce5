"""The regex guard and the built-in recognizers, on the cases agentgateway v1.4.1 tests them with
(``crates/agentgateway/src/llm/policy/mod.rs`` ``test_apply_prompt_guard_regex_*``,
``llm/policy/pii/tests.rs``) and the recognizers' patterns (``llm/policy/pii/*_recognizer.rs``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from agwlab.sandbox.controller.prompt_guards import translate
from agwlab.sandbox.proxy.guardrails import (
    DEFAULT_REJECTION,
    Guard,
    RegexRules,
    apply_regex,
    guard_stream,
    recognize,
)


@pytest.mark.parametrize(("rules", "text", "masked"), [
    ((("builtin", "Email"),), "contact john.doe@example.com now", "contact <EMAIL_ADDRESS> now"),
    ((("builtin", "Email"),), "contact john@example.com or jane@other.com for help",
     "contact <EMAIL_ADDRESS> or <EMAIL_ADDRESS> for help"),
    ((("builtin", "Ssn"),), "My ssn is 123-45-6789 ok", "My ssn is <SSN> ok"),
    ((("builtin", "CreditCard"), ("regex", r"\d{2}")), "Card number: 4111-1111-1111-1111 or id:12-34",
     "Card number: <CREDIT_CARD> or id:<masked>-<masked>"),
    ((("builtin", "CaSin"),), "SIN 046 454 286.", "SIN <CA_SIN>."),
    ((("regex", "a*"),), "b aa b", "b <masked> b"),                # zero-width matches mask nothing
    ((("regex", "a*"),), "none here", None),
    ((("regex", "(unclosed"),), "an invalid pattern is skipped", None),
    ((("regex", r"\d(?=px)"),), "skipped: 12px", None),        # look-around: Rust's regex refuses it
    ((("regex", r"(a)\1"),), "skipped: aa", None),              # so do back-references
    ((("regex", r"[(?=]\d"),), "kept: (1", "kept: <masked>"),
])
def test_mask_as_v141_does(rules, text, masked) -> None:  # type: ignore[no-untyped-def]
    result = apply_regex(text, RegexRules("Mask", rules))
    assert result == (None if masked is None else ("mask", masked))


@pytest.mark.parametrize(("rules", "text"), [
    ((("regex", r"\d{2}"),), "id:12"),
    ((("builtin", "Email"),), "contact john.doe@example.com"),
])
def test_reject_as_v141_does(rules, text) -> None:  # type: ignore[no-untyped-def]
    assert apply_regex(text, RegexRules("Reject", rules)) == ("reject", "")


def test_the_phone_recognizer_finds_v141s_test_numbers() -> None:
    text = "Call us at (123) 456-7890 or +1-800-555-1234 or 555.123.4567"
    entity, spans = recognize("PhoneNumber", text)
    found = [text[a:b] for a, b in spans]
    assert entity == "PHONE_NUMBER"
    assert any("(123) 456-7890" in f for f in found) and any("+1-800-555-1234" in f for f in found)
    # the candidate takes trailing whitespace with it, so the mask does too (as in v1.4.1)
    assert apply_regex("call (201) 555-0123 now", RegexRules("Mask", (("builtin", "PhoneNumber"),))) == (
        "mask", "call <PHONE_NUMBER>now")


def test_the_controller_puts_matches_before_builtins_and_keeps_the_custom_response() -> None:
    """v1.4.1: controller/pkg/agentgateway/plugins/ai_policies.go processRegex, processRequestGuard."""
    pg = translate({"request": [{"regex": {"builtins": ["Email"], "matches": ["x+"]},
                                 "response": {"statusCode": 451, "message": "no"}},
                                {"webhook": {"backendRef": {"name": "w", "port": 80}, "failureMode": "FailOpen"}}],
                    "response": [{"regex": {"action": "Reject", "builtins": ["Ssn"]}}]})
    first, hook = pg.request
    assert first.regex == RegexRules("Mask", (("regex", "x+"), ("builtin", "Email")))
    assert (first.status, first.body) == (451, b"no")
    assert hook.kind == "webhook" and hook.fail_open
    assert (pg.response[0].status, pg.response[0].body) == (403, DEFAULT_REJECTION)


def _chunks(text: str, size: int) -> list[bytes]:
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    return [b"data: " + json.dumps({"choices": [{"delta": {"content": p}}]}).encode() + b"\n\n" for p in pieces]


async def _collect(chunks: list[bytes], guards: tuple[Guard, ...]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c
    return [c async for c in guard_stream(source(), guards)]


REJECT_SECRET = (Guard("regex", RegexRules("Reject", (("regex", "top-secret"),)), body=b"no"),)


def test_a_stream_is_held_back_and_released_in_windows_of_1024_bytes() -> None:
    """v1.4.1: llm/policy/streaming_guardrails.rs DEFAULT_EVAL_THRESHOLD, the held frames flushed after a pass."""
    chunks = _chunks("x" * 3000, 100)
    assert asyncio.run(_collect(chunks, REJECT_SECRET)) == chunks


def test_a_match_across_two_windows_is_caught_through_the_overlap() -> None:
    """v1.4.1: OVERLAP_BYTES (256): the previous window's tail is checked again with the next batch."""
    text = "x" * 1025 + "top-secret" + "y" * 50      # the first window ends after "top-s"
    out = asyncio.run(_collect(_chunks(text, 10), REJECT_SECRET))
    assert out[-1] == (b'data: {"error":{"type":"guardrail_blocked","code":"guardrail_intervention",'
                       b'"message":"no"}}\n\n')
    released = "".join(json.loads(c[6:])["choices"][0]["delta"]["content"] for c in out[:-1])
    assert released == "x" * 1025 + "top-s"        # the first window passed and was released
