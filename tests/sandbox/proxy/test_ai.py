"""OpenAI ↔ Anthropic translation and the headers sent upstream (reference §5)."""

from __future__ import annotations

import json

from starlette.requests import Request

from agwlab.sandbox.proxy.ai import (
    completions_to_messages,
    messages_to_completion,
    resolve_route_type,
    translate_error,
    upstream_headers,
)
from agwlab.sandbox.proxy.config import AIBackend, GatewayConfig, Listener
from agwlab.sandbox.proxy.context import RequestContext


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
    assert out["tools"] == [{"name": "get", "description": "", "input_schema": {"type": "object"}}]
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


def test_upstream_errors_get_openais_shape() -> None:
    body = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    assert translate_error(401, body) == {"event_id": None, "error": {"type": "invalid_request_error",
                                                                      "message": "invalid x-api-key"}}
    assert translate_error(502, b"bad gateway")["error"]["message"] == "bad gateway"


def test_route_types_resolve_by_suffix_then_wildcard() -> None:
    routes = (("/v1/messages", "Messages"), ("*", "Passthrough"))
    assert resolve_route_type("/anthropic/v1/messages", routes) == "Messages"
    assert resolve_route_type("/anthropic/v1/models", routes) == "Passthrough"
    assert resolve_route_type("/whatever", ()) == "Completions"
    assert resolve_route_type("/x", (("/v1/messages", "Messages"),)) == "Completions"


def _request(headers: dict[str, str]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/anthropic", "headers":
                    [(k.encode(), v.encode()) for k, v in headers.items()], "query_string": b""})


def _ctx() -> RequestContext:
    gw = GatewayConfig("ns", "gw", "agentgateway", "127.0.0.1", (Listener("http", 8080),))
    return RequestContext(gateway=gw, listener=gw.listeners[0], method="POST", path="/anthropic", host="h",
                          src_addr="127.0.0.1:1")


def test_upstream_headers_move_the_key_and_strip_browser_headers() -> None:
    backend = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-api03-secret")
    req = _request({"authorization": "Bearer client", "x-api-key": "client-key", "origin": "http://x",
                    "sec-fetch-mode": "cors", "access-control-request-method": "POST", "x-custom": "kept",
                    "host": "gw", "content-length": "10"})
    ctx = _ctx()
    ctx.traceparent_out = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    h = upstream_headers(req, backend, ctx)
    assert h["x-api-key"] == "sk-ant-api03-secret" and "authorization" not in h
    assert h["anthropic-version"] == "2023-06-01" and h["x-custom"] == "kept"
    assert not {"origin", "sec-fetch-mode", "access-control-request-method", "host", "content-length"} & set(h)
    assert h["traceparent"] == ctx.traceparent_out


def test_oauth_tokens_and_explicit_locations_stay_bearer() -> None:
    oat = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-oat01-token")
    h = upstream_headers(_request({}), oat, _ctx())
    assert h["authorization"] == "Bearer sk-ant-oat01-token" and "x-api-key" not in h
    explicit = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-api03-k", auth_location_explicit=True)
    assert upstream_headers(_request({}), explicit, _ctx())["authorization"] == "Bearer sk-ant-api03-k"


def test_without_backend_auth_client_headers_pass() -> None:
    backend = AIBackend(key="ns/a", provider="anthropic", api_key=None)
    h = upstream_headers(_request({"x-api-key": "sk-ant-client-key"}), backend, _ctx())
    assert h["x-api-key"] == "sk-ant-client-key" and "traceparent" not in h
