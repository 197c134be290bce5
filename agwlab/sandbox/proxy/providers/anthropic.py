"""Anthropic: chat completions translated to and from the Messages API as agentgateway v1.4.1 does.

Request side (:func:`completions_to_messages`): system and developer messages join into
``system``; blank text is dropped and so are messages left empty; tool calls become
``tool_use`` blocks and tool messages ``tool_result`` blocks; ``reasoning_effort`` becomes
a ``thinking`` budget and ``response_format`` an ``output_config``.

Response side (:func:`messages_to_completion`): text blocks join into ``content`` (left
out when there is none), ``thinking`` becomes ``reasoning_content``, ``tool_use`` becomes
``tool_calls`` (``type, id, function``, compact JSON arguments), ``finish_reason`` only
when ``stop_reason`` is set.

Streams (:meth:`AnthropicProvider.translate_stream`): one ``chat.completion.chunk`` per
text, thinking or tool delta, no ``role``, usage only on the chunk made from
``message_delta`` (whose delta is ``{"content":null}``), no ``data: [DONE]``; events the
translator does not know (``ping``, ``error``, signature deltas) are dropped.

Example:
    >>> completions_to_messages({"messages": [{"role": "system", "content": "Be brief."},
    ...                                       {"role": "user", "content": "Hi"}]}, "m")
    {'messages': [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}], 'system': 'Be brief.', 'model': 'm', 'max_tokens': 4096}
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ..context import LLMCall
from .base import Provider, compact_json

__all__ = [
    "ANTHROPIC_VERSION",
    "AnthropicProvider",
    "RequestInvalid",
    "completions_to_messages",
    "messages_to_completion",
    "translate_error",
    "wrap_error",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestInvalid(ValueError):
    """The body is not a chat-completions request agentgateway can parse."""


# -- request ------------------------------------------------------------------------------------


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        raise RequestInvalid("failed to parse request: data did not match any variant of untagged enum "
                             "content")
    return content


def _system_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content if content.strip() else None
    text = "\n".join(p.get("text", "") for p in _parts(content)
                     if p.get("type") == "text" and p.get("text", "").strip())
    return text if text.strip() else None


def _image(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text_block(content)] if content.strip() else []
    blocks = []
    for part in _parts(content):
        if part.get("type") == "text" and part.get("text", "").strip():
            blocks.append(_text_block(part["text"]))
        elif part.get("type") == "image_url":
            blocks.append(_image(part))
    return blocks


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content.strip():
            blocks.append(_text_block(content))
    elif content is not None:
        for part in _parts(content):
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if isinstance(text, str) and text.strip():
                blocks.append(_text_block(text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        blocks.append(_text_block(refusal))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        arguments = fn.get("arguments", "")
        try:
            tool_input = json.loads(arguments)
        except (TypeError, ValueError):
            tool_input = arguments
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""),
                       "input": tool_input})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, str):
        content = [{"type": "text", "text": p.get("text", "")} for p in _parts(content)]
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": content}


def _tool_choice(body: dict[str, Any], has_tools: bool) -> dict[str, Any] | None:
    parallel = body.get("parallel_tool_calls")
    extra = {} if parallel is None else {"disable_parallel_tool_use": not parallel}
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        return {"type": "tool", "name": choice["function"]["name"], **extra}
    if choice == "auto" or (choice is None and extra and has_tools):
        return {"type": "auto", **extra}
    if choice == "required":
        return {"type": "any", **extra}
    if choice == "none":
        return {"type": "none"}
    return None


def _output_config(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return {"format": {"type": "json_schema", "schema": schema}}
    if fmt.get("type") == "json_object":
        return {"format": {"type": "json_schema", "schema": {"type": "object", "additionalProperties": True}}}
    return None


def completions_to_messages(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat-completions body as the Anthropic Messages body v1.4.1 sends (key order included).

    Raises:
        RequestInvalid: the body is not a chat-completions request (agentgateway's
            ``failed to parse request: ...``).
    """
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise RequestInvalid("failed to parse request: missing field `messages`")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for m in raw:
        if not isinstance(m, dict) or "role" not in m:
            raise RequestInvalid("failed to parse request: missing field `role`")
        role = m["role"]
        if role not in _ROLES:
            expected = ", ".join(f"`{r}`" for r in _ROLES)
            raise RequestInvalid(f"failed to parse request: unknown variant `{role}`, expected one of {expected}")
        if role in ("system", "developer"):
            text = _system_text(m.get("content"))
            if text is not None:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(m.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(m)
        elif role == "tool":
            blocks = [_tool_result(m)]
        else:
            content = m.get("content")
            blocks = [_text_block(content)] if isinstance(content, str) and content.strip() else []
        if blocks:
            messages.append({"role": "assistant" if role == "assistant" else "user", "content": blocks})
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = "\n".join(system)
    out["model"] = model
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = int(max_tokens) if max_tokens else DEFAULT_MAX_TOKENS
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    tools = None
    if isinstance(body.get("tools"), list):
        tools = []
        for tool in body["tools"]:
            if not isinstance(tool, dict) or tool.get("type", "function") != "function":
                continue
            fn = tool.get("function") or {}
            entry: dict[str, Any] = {"name": fn.get("name", "")}
            if fn.get("description") is not None:
                entry["description"] = fn["description"]
            entry["input_schema"] = fn.get("parameters") if fn.get("parameters") is not None else {}
            tools.append(entry)
        out["tools"] = tools
    choice = _tool_choice(body, bool(tools))
    if choice is not None:
        out["tool_choice"] = choice
    if body.get("user") is not None:
        out["metadata"] = {"user_id": body["user"]}
    budget = THINKING_BUDGET.get(body.get("reasoning_effort") or "")
    if budget:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    config = _output_config(body)
    if config is not None:
        out["output_config"] = config
    return out


# -- response -----------------------------------------------------------------------------------


def _usage(usage: dict[str, Any], *, streamed: bool) -> dict[str, Any]:
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    if read is not None or write is not None:
        details: dict[str, Any] = {}
        if read is not None or streamed:       # the stream's typed struct always writes cached_tokens
            details["cached_tokens"] = read
        if write is not None:
            details["cache_write_tokens"] = write
        out["prompt_tokens_details"] = details
    if read is not None:
        out["cache_read_input_tokens"] = read
    if write is not None:
        out["cache_creation_input_tokens"] = write
    return out


def messages_to_completion(msg: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """An Anthropic Messages response as v1.4.1's ``chat.completion`` (key order included).

    Example:
        >>> out = messages_to_completion({"id": "msg_1", "model": "m", "stop_reason": None,
        ...     "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
        ...     "usage": {"input_tokens": 1, "output_tokens": 2}}, created=0)
        >>> out["choices"]
        [{'message': {'role': 'assistant', 'tool_calls': [{'type': 'function', 'id': 't1', 'function': {'name': 'f', 'arguments': '{"a":1}'}}]}, 'index': 0}]
    """
    text: str | None = None
    reasoning: str | None = None
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text = (text or "") + block.get("text", "")
        elif kind in ("tool_use", "server_tool_use"):
            calls.append({"type": "function", "id": block.get("id", ""), "function": {
                "name": block.get("name", ""), "arguments": compact_json(block.get("input")).decode()}})
        elif kind == "thinking":
            reasoning = block.get("thinking", "")
    message: dict[str, Any] = {}
    if text is not None:
        message["content"] = text
    message["role"] = "assistant"
    if calls:
        message["tool_calls"] = calls
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    usage = msg.get("usage") or {}
    out: dict[str, Any] = {"model": msg.get("model", "")}
    if usage.get("service_tier") is not None:
        out["service_tier"] = usage["service_tier"]
    out["usage"] = _usage(usage, streamed=False)
    choice: dict[str, Any] = {"message": message, "index": 0}
    if msg.get("stop_reason"):
        choice["finish_reason"] = FINISH_REASONS.get(msg["stop_reason"], "stop")
    out["choices"] = [choice]
    out["id"] = msg.get("id", "")
    out["created"] = int(time.time()) if created is None else created
    out["object"] = "chat.completion"
    return out


def translate_error(body: bytes) -> bytes:
    """An upstream error body in OpenAI's shape (``type`` is always ``invalid_request_error``)."""
    message = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) and "message" in parsed["error"]:
            message = str(parsed["error"]["message"])
    except ValueError:
        pass
    return compact_json({"event_id": None, "error": {"type": "invalid_request_error", "message": message}})


def wrap_error(status: int, body: bytes) -> bytes:
    """An error body on the native Messages route: Anthropic's own passes as is, anything
    else is wrapped in Anthropic's error shape (v1.4.1's ``translate_anthropic_error``).

    Example:
        >>> wrap_error(502, b"bad gateway")
        b'{"type":"error","error":{"type":"api_error","message":"bad gateway"}}'
    """
    try:
        parsed = json.loads(body)
        if (isinstance(parsed, dict) and isinstance(parsed.get("type"), str)
                and isinstance(parsed.get("error"), dict) and isinstance(parsed["error"].get("type"), str)
                and isinstance(parsed["error"].get("message"), str)):
            return body
    except ValueError:
        pass
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "authentication_error",
            404: "not_found_error", 429: "rate_limit_error"}.get(status, "api_error")
    return compact_json({"type": "error", "error": {"type": kind, "message": body.decode("utf-8", "replace")}})


class _StreamState:
    """What the stream translator remembers between events."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model = ""
        self.tier: str | None = None
        self.created = int(time.time())
        self.tools: dict[int, int] = {}
        self.next_tool = 0

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        return b"data: " + compact_json({
            "id": self.id if self.id is not None else "unknown", "choices": choices, "created": self.created,
            "model": self.model, "service_tier": self.tier, "system_fingerprint": None,
            "object": "chat.completion.chunk", "usage": usage,
        }) + b"\n\n"


def _delta(**fields: Any) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": {"content": None, **fields}}]


class AnthropicProvider(Provider):
    """``ai.provider.anthropic``: ``/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""

    name = "anthropic"
    native_route = "Messages"
    paths: ClassVar[dict[str, str]] = {"Completions": "/messages", "Messages": "/messages", "AnthropicTokenCount": "/messages/count_tokens",
             "Models": "/models"}

    def set_auth(self, headers: dict[str, str], key: str, explicit_location: bool) -> None:
        """``x-api-key``, except OAuth tokens (``sk-ant-oat...``) and explicit locations stay Bearer."""
        if key.startswith("sk-ant-oat") or explicit_location:
            super().set_auth(headers, key, explicit_location)
            return
        headers.pop("authorization", None)
        headers["x-api-key"] = key

    def extra_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION}

    def translate_request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return completions_to_messages(body, model)

    def translate_response(self, data: dict[str, Any]) -> dict[str, Any]:
        return messages_to_completion(data)

    def translate_error(self, body: bytes) -> bytes:
        return translate_error(body)

    def native_error(self, status: int, body: bytes) -> bytes:
        return wrap_error(status, body)

    def read_usage(self, call: LLMCall, data: dict[str, Any]) -> None:
        call.response_model = data.get("model") or call.response_model
        usage = data.get("usage") or {}
        for src, kind in (("input_tokens", "input"), ("output_tokens", "output"),
                          ("cache_read_input_tokens", "input_cache_read"),
                          ("cache_creation_input_tokens", "input_cache_write")):
            if isinstance(usage.get(src), int):
                call.tokens[kind] = usage[src]

    def read_stream_event(self, call: LLMCall, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.read_usage(call, event.get("message") or {})
        elif kind == "message_delta":
            usage = event.get("usage") or {}
            for src, key in (("output_tokens", "output"), ("cache_read_input_tokens", "input_cache_read"),
                             ("cache_creation_input_tokens", "input_cache_write")):
                if isinstance(usage.get(src), int):
                    call.tokens[key] = usage[src]
        elif kind == "content_block_delta" and call.first_token_at is None:
            call.first_token_at = time.perf_counter()

    async def translate_stream(self, lines: AsyncIterator[str], call: LLMCall) -> AsyncIterator[bytes]:
        state = _StreamState()
        async for line in lines:
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            out = self._event(state, call, event)
            if out is not None:
                yield out

    def _event(self, state: _StreamState, call: LLMCall, event: dict[str, Any]) -> bytes | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            state.id, state.model = message.get("id", ""), message.get("model", "")
            state.tier = (message.get("usage") or {}).get("service_tier")
            self.read_stream_event(call, event)
            return None
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") not in ("tool_use", "server_tool_use"):
                return None
            index = state.tools[event.get("index", 0)] = state.next_tool
            state.next_tool += 1
            return state.chunk(_delta(tool_calls=[{"index": index, "id": block.get("id", ""), "type": "function",
                                                   "function": {"name": block.get("name", "")}}]), None)
        if kind == "content_block_delta":
            self.read_stream_event(call, event)
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return state.chunk([{"index": 0, "delta": {"content": delta.get("text", "")}}], None)
            if delta.get("type") == "thinking_delta":
                return state.chunk(_delta(reasoning_content=delta.get("thinking", "")), None)
            if delta.get("type") == "input_json_delta" and event.get("index", 0) in state.tools:
                index = state.tools[event.get("index", 0)]
                return state.chunk(_delta(tool_calls=[{"index": index, "id": None, "type": None, "function": {
                    "arguments": delta.get("partial_json", "")}}]), None)
            return None
        if kind == "content_block_stop":
            state.tools.pop(event.get("index", 0), None)
            return None
        if kind == "message_delta":
            self.read_stream_event(call, event)
            reason = (event.get("delta") or {}).get("stop_reason")
            choices = _delta() if reason else []
            if reason:
                choices[0]["finish_reason"] = FINISH_REASONS.get(reason, "stop")
            return state.chunk(choices, _usage(event.get("usage") or {}, streamed=True))
        return None        # message_stop, ping, error and anything unknown
