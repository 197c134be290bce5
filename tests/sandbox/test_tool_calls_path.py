"""The Claude stand-in's tool calls through the gateway, read with the openai SDK: Anthropic
``tool_use`` comes out as OpenAI ``tool_calls`` with ``finish_reason: "tool_calls"``, plain and
streamed, and ``tool`` messages go back as ``tool_result`` blocks the answer is made of."""

from __future__ import annotations

import json
from typing import Any

import openai

SITE = "http://lab-website.agwlab-system.svc.cluster.local/"
FETCH: Any = {
    "type": "function",
    "function": {
        "name": "fetch",
        "description": "Fetches a website and returns its content",
        "parameters": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
    },
}
ASK: Any = [{"role": "user", "content": f"Summarise {SITE} in two sentences."}]


def _client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway}/anthropic", api_key="unused-the-gateway-holds-the-key", max_retries=0
    )


def test_tool_use_comes_out_as_tool_calls(gateway: str) -> None:
    resp = _client(gateway).chat.completions.create(model="x", messages=ASK, tools=[FETCH])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "fetch" and call.id.startswith("toolu_")
    assert json.loads(call.function.arguments) == {"url": SITE}
    assert resp.usage is not None and resp.usage.completion_tokens > 0


def test_required_and_named_tool_choice_force_a_call(gateway: str) -> None:
    plain: Any = [{"role": "user", "content": "What is a gateway?"}]
    oa = _client(gateway)
    assert (
        oa.chat.completions.create(model="x", messages=plain, tools=[FETCH]).choices[0].finish_reason
        == "stop"
    )
    for choice in ("required", {"type": "function", "function": {"name": "fetch"}}):
        forced = oa.chat.completions.create(model="x", messages=plain, tools=[FETCH], tool_choice=choice)  # type: ignore[arg-type]
        assert forced.choices[0].finish_reason == "tool_calls", choice
        assert "url" in json.loads(forced.choices[0].message.tool_calls[0].function.arguments)  # type: ignore[index]
    never = oa.chat.completions.create(model="x", messages=ASK, tools=[FETCH], tool_choice="none")
    assert never.choices[0].finish_reason == "stop"


def test_tool_calls_stream_as_argument_pieces(gateway: str) -> None:
    chunks = list(
        _client(gateway).chat.completions.create(model="x", messages=ASK, tools=[FETCH], stream=True)
    )
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert pieces[0].id and pieces[0].function and pieces[0].function.name == "fetch"
    arguments = "".join((p.function.arguments or "") for p in pieces if p.function)
    assert json.loads(arguments) == {"url": SITE} and len(pieces) > 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]


def test_tool_messages_go_back_and_the_answer_uses_them(gateway: str) -> None:
    oa = _client(gateway)
    first = oa.chat.completions.create(model="x", messages=ASK, tools=[FETCH])
    call = (first.choices[0].message.tool_calls or [])[0]
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    page = "<html><head><title>Lab site</title></head><body><p>Gateways route traffic.</p></body></html>"
    done = oa.chat.completions.create(
        model="x",
        tools=[FETCH],
        messages=[*ASK, assistant, {"role": "tool", "tool_call_id": call.id, "content": page}],
    )
    answer = done.choices[0].message.content or ""
    assert done.choices[0].finish_reason == "stop"
    assert 'Its title is "Lab site"' in answer and "Gateways route traffic." in answer
    failed = oa.chat.completions.create(
        model="x",
        tools=[FETCH],
        messages=[
            *ASK,
            assistant,
            {"role": "tool", "tool_call_id": call.id, "content": "Error fetching x: connection refused"},
        ],
    )
    assert "reported an error" in (failed.choices[0].message.content or "")


def test_thinking_comes_out_as_reasoning_content(gateway: str) -> None:
    oa = _client(gateway)
    resp = oa.chat.completions.create(model="x", messages=ASK, tools=[FETCH], reasoning_effort="low")
    message = resp.choices[0].message
    reasoning = getattr(message, "reasoning_content", None) or ""
    assert (
        reasoning.startswith("The user asks:") and f'I will call fetch with {{"url": "{SITE}"}}' in reasoning
    )
    assert resp.choices[0].finish_reason == "tool_calls"
    chunks = list(
        oa.chat.completions.create(
            model="x", messages=ASK, tools=[FETCH], reasoning_effort="low", stream=True
        )
    )
    streamed = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert streamed == reasoning
