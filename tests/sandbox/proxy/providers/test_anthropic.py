"""OpenAI <-> Anthropic translation as agentgateway v1.4.1 does it (the goldens cover the rest)."""

from __future__ import annotations

import json

import pytest

from agwlab.sandbox.proxy.providers.anthropic import (
    RequestInvalid,
    completions_to_messages,
    messages_to_completion,
    translate_error,
    wrap_error,
)


def test_basic_request_translation_matches_the_golden_shape() -> None:
    body = {"model": "x", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                       {"role": "user", "content": "What is…"}]}
    out = completions_to_messages(body, "x")
    assert json.dumps(out) == json.dumps({
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is…"}]}],
        "system": "You are a helpful assistant.", "model": "x", "max_tokens": 4096})


def test_request_options_are_mapped() -> None:
    body = {"messages": [{"role": "developer", "content": "A"}, {"role": "system", "content": [{"type": "text", "text": "B"}]},
                         {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"q\": 1}"}}]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "42"}],
            "max_completion_tokens": 77, "max_tokens": 5, "stop": "END", "temperature": 0.2, "top_p": 0.9,
            "stream": True, "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
            "tool_choice": "required", "reasoning_effort": "medium"}
    out = completions_to_messages(body, "m")
    assert out["system"] == "A\nB"
    assert out["max_tokens"] == 77 and out["stop_sequences"] == ["END"] and out["stream"] is True
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "get", "input": {"q": 1}}]}
    assert out["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "42"}
    assert out["tools"] == [{"name": "get", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "any"} and out["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_response_translation_matches_the_golden_key_order() -> None:
    msg = {"id": "msg_012JYtNYb8sv6Hb67TcGT7xW", "type": "message", "role": "assistant",
           "model": "claude-haiku-4-5-20251001", "content": [{"type": "text", "text": "Hi there!"}],
           "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 15, "cache_creation_input_tokens": 13, "cache_read_input_tokens": 12,
                     "output_tokens": 21, "service_tier": "standard"}}
    out = messages_to_completion(msg, created=1764627002)
    assert json.dumps(out, separators=(",", ":")) == (
        '{"model":"claude-haiku-4-5-20251001","service_tier":"standard",'
        '"usage":{"prompt_tokens":15,"completion_tokens":21,"total_tokens":36,'
        '"prompt_tokens_details":{"cached_tokens":12,"cache_write_tokens":13},'
        '"cache_read_input_tokens":12,"cache_creation_input_tokens":13},'
        '"choices":[{"message":{"content":"Hi there!","role":"assistant"},"index":0,"finish_reason":"stop"}],'
        '"id":"msg_012JYtNYb8sv6Hb67TcGT7xW","created":1764627002,"object":"chat.completion"}')


def test_finish_reasons_and_missing_cache_fields() -> None:
    base = {"id": "msg_1", "model": "m", "content": [], "usage": {"input_tokens": 1, "output_tokens": 2}}
    reasons = {r: messages_to_completion({**base, "stop_reason": r})["choices"][0]["finish_reason"]
               for r in ("end_turn", "stop_sequence", "pause_turn", "max_tokens", "model_context_window_exceeded",
                         "tool_use", "refusal")}
    assert reasons == {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                       "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
    out = messages_to_completion({**base, "stop_reason": "end_turn"})
    assert out["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert "service_tier" not in out
    assert out["choices"][0]["message"] == {"role": "assistant"}          # no text block: no content
    assert "finish_reason" not in messages_to_completion({**base, "stop_reason": None})["choices"][0]


def test_blank_text_and_empty_messages_are_dropped() -> None:
    out = completions_to_messages({"messages": [{"role": "system", "content": "  "},
                                                {"role": "user", "content": " "},
                                                {"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "m")
    assert out == {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                   "model": "m", "max_tokens": 4096}


def test_parallel_tool_calls_and_bad_roles() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = completions_to_messages({"messages": [], "tools": tools, "parallel_tool_calls": False}, "m")
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert out["tools"] == [{"name": "f", "input_schema": {}}]
    with pytest.raises(RequestInvalid, match="unknown variant `robot`"):
        completions_to_messages({"messages": [{"role": "robot", "content": "x"}]}, "m")


def test_upstream_errors_get_openais_shape() -> None:
    body = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    assert translate_error(body) == (b'{"event_id":null,"error":{"type":"invalid_request_error",'
                                     b'"message":"invalid x-api-key"}}')
    assert json.loads(translate_error(b"bad gateway"))["error"]["message"] == "bad gateway"


def test_native_route_errors_keep_anthropics_shape_and_wrap_anything_else() -> None:
    anthropic = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert wrap_error(529, anthropic) == anthropic
    assert json.loads(wrap_error(429, b"slow down")) == {
        "type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert json.loads(wrap_error(502, b"<html>bad gateway</html>"))["error"]["type"] == "api_error"
