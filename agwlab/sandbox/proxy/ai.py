"""AI backends: agentgateway's LLM route behaviour for Anthropic (and OpenAI) providers.

Reference §5. With no ``ai.routes`` every request is an OpenAI chat completion: the body
is translated to Anthropic Messages, sent to ``/v1/messages`` with the backend's key as
``x-api-key``, and the answer translated back to a ``chat.completion`` (or, with
``"stream": true``, to ``chat.completion.chunk`` server-sent events ending in
``data: [DONE]``). ``ai.routes`` can instead pass native Anthropic bodies through
(``Messages``), pass anything through (``Passthrough``) or list models (``Models``).

Gateway-made errors are ``text/plain`` as agentgateway's; upstream errors keep their
status with the body in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from .config import AIBackend
from .context import RequestContext
from .state import ProxyState
from .upstream import UpstreamError, UpstreamResponse, UpstreamTimeout

__all__ = [
    "ANTHROPIC_VERSION",
    "LLMRequestError",
    "completions_to_messages",
    "handle",
    "messages_to_completion",
    "resolve_route_type",
    "translate_error",
    "upstream_headers",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}
_DROP_REQUEST_HEADERS = {
    "host", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
    "trailer", "upgrade", "accept-encoding", "origin", "referer",
}
_DROP_RESPONSE_HEADERS = {
    "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive", "content-type",
}


class LLMRequestError(Exception):
    """A request the gateway refuses before calling the provider (400 ``text/plain``)."""


# -- request side -------------------------------------------------------------------------------


def resolve_route_type(path: str, routes: tuple[tuple[str, str], ...]) -> str:
    """The ``ai.routes`` type for a request path: a suffix match, else ``*``, else Completions."""
    if not routes:
        return "Completions"
    wildcard = None
    for suffix, kind in routes:
        if suffix == "*":
            wildcard = wildcard or kind
        elif path.endswith(suffix):
            return kind
    return wildcard or "Completions"


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise LLMRequestError("failed to parse request: invalid type for message content")


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise LLMRequestError("failed to parse request: invalid type for message content")
    blocks = []
    for part in content:
        if not isinstance(part, dict):
            raise LLMRequestError("failed to parse request: invalid content part")
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part))
    return blocks


def _tool_input(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments else {}
        except json.JSONDecodeError:
            return {}
    return arguments or {}


def completions_to_messages(body: dict[str, Any], model: str) -> dict[str, Any]:
    """Translate an OpenAI chat-completions body into an Anthropic Messages body.

    Raises:
        LLMRequestError: the body is not a valid chat-completions request.

    Example:
        >>> completions_to_messages({"messages": [{"role": "system", "content": "Be brief."},
        ...                                       {"role": "user", "content": "Hi"}]}, "m")
        {'messages': [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}], 'system': 'Be brief.', 'model': 'm', 'max_tokens': 4096}
    """
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise LLMRequestError("failed to parse request: missing field `messages`")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for m in raw_messages:
        if not isinstance(m, dict) or "role" not in m:
            raise LLMRequestError("failed to parse request: missing field `role`")
        role, content = m["role"], m.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content))
        elif role == "user":
            messages.append({"role": "user", "content": _blocks(content)})
        elif role == "assistant":
            blocks = _blocks(content)
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append({
                    "type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""),
                    "input": _tool_input(fn.get("arguments")),
                })
            messages.append({"role": "assistant", "content": blocks})
        elif role in ("tool", "function"):
            messages.append({"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": m.get("tool_call_id", ""), "content": _text_of(content),
            }]})
        else:
            raise LLMRequestError(f"failed to parse request: unknown variant `{role}`")
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
    if body.get("tools"):
        out["tools"] = [
            {
                "name": (t.get("function") or {}).get("name", ""),
                "description": (t.get("function") or {}).get("description", ""),
                "input_schema": (t.get("function") or {}).get("parameters") or {"type": "object"},
            }
            for t in body["tools"] if isinstance(t, dict)
        ]
    choice = body.get("tool_choice")
    if choice == "auto":
        out["tool_choice"] = {"type": "auto"}
    elif choice == "required":
        out["tool_choice"] = {"type": "any"}
    elif choice == "none":
        out["tool_choice"] = {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    effort = body.get("reasoning_effort")
    if effort in THINKING_BUDGET:
        out["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGET[effort]}
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    return out


def upstream_headers(request: Request, backend: AIBackend, ctx: RequestContext) -> dict[str, str]:
    """The headers sent to the provider: client headers minus hop-by-hop and browser ones,
    plus the backend's key (``x-api-key`` for Anthropic) and ``anthropic-version``."""
    headers = {
        k: v for k, v in request.headers.items()
        if k not in _DROP_REQUEST_HEADERS and not k.startswith(("sec-fetch-", "access-control-request-"))
    }
    key = backend.api_key
    if key is not None:
        if backend.provider == "anthropic" and not (key.startswith("sk-ant-oat") or backend.auth_location_explicit):
            headers.pop("authorization", None)
            headers["x-api-key"] = key
        else:
            headers.pop("x-api-key", None)
            headers["authorization"] = f"Bearer {key}"
    if backend.provider == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    headers["content-type"] = "application/json"
    if ctx.tracer is not None:
        headers["traceparent"] = ctx.tracer.traceparent()
    elif ctx.traceparent_out:
        headers["traceparent"] = ctx.traceparent_out
    return headers


def _upstream_path(backend: AIBackend, route_type: str, request_path: str) -> str:
    if route_type == "Passthrough":
        return request_path
    if backend.provider == "openai":
        suffix = "/models" if route_type == "Models" else "/chat/completions"
    elif route_type == "Models":
        suffix = "/models"
    elif route_type == "AnthropicTokenCount":
        suffix = "/messages/count_tokens"
    else:
        suffix = "/messages"
    if backend.path:
        return backend.path
    return (backend.path_prefix.rstrip("/") if backend.path_prefix else "/v1") + suffix


# -- response side ------------------------------------------------------------------------------


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    if read is not None or write is not None:
        details: dict[str, Any] = {}
        if read is not None:
            details["cached_tokens"] = read
        if write is not None:
            details["cache_write_tokens"] = write
        out["prompt_tokens_details"] = details
        if read is not None:
            out["cache_read_input_tokens"] = read
        if write is not None:
            out["cache_creation_input_tokens"] = write
    return out


def _tool_calls(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": b.get("id", ""), "type": "function",
         "function": {"name": b.get("name", ""), "arguments": json.dumps(b.get("input") or {})}}
        for b in content if b.get("type") == "tool_use"
    ]


def messages_to_completion(msg: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """Translate an Anthropic Messages response into an OpenAI ``chat.completion``
    (agentgateway's key order: model, service_tier, usage, choices, id, created, object)."""
    content = msg.get("content") or []
    text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    message: dict[str, Any] = {"content": text}
    calls = _tool_calls(content)
    if calls:
        message["tool_calls"] = calls
    message["role"] = "assistant"
    usage = msg.get("usage") or {}
    out: dict[str, Any] = {"model": msg.get("model", "")}
    if usage.get("service_tier"):
        out["service_tier"] = usage["service_tier"]
    out["usage"] = _usage(usage)
    out["choices"] = [{
        "message": message, "index": 0,
        "finish_reason": FINISH_REASONS.get(msg.get("stop_reason") or "", "stop"),
    }]
    out["id"] = msg.get("id", "")
    out["created"] = int(time.time()) if created is None else created
    out["object"] = "chat.completion"
    return out


def translate_error(status: int, body: bytes) -> dict[str, Any]:
    """An upstream error body in OpenAI's shape (``type`` is always ``invalid_request_error``)."""
    message = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            message = str(parsed["error"].get("message", message))
    except ValueError:
        pass
    return {"event_id": None, "error": {"type": "invalid_request_error", "message": message}}


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _error(ctx: RequestContext, status: int, message: str, reason: str) -> Response:
    ctx.reason = reason
    ctx.error = message
    return PlainTextResponse(message, status_code=status)


# -- the handler --------------------------------------------------------------------------------


@dataclass
class _Call:
    """What one LLM call records in the log and metrics."""

    system: str
    request_model: str | None
    response_model: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    first_token_at: float | None = None


def _log_request_fields(ctx: RequestContext, call: _Call, body: dict[str, Any]) -> None:
    ctx.log["gen_ai.operation.name"] = "chat"
    ctx.log["gen_ai.provider.name"] = call.system
    ctx.log["gen_ai.request.model"] = call.request_model
    for src, key in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p"),
                     ("frequency_penalty", "gen_ai.request.frequency_penalty"),
                     ("presence_penalty", "gen_ai.request.presence_penalty"), ("seed", "gen_ai.request.seed")):
        if body.get(src) is not None:
            ctx.log[key] = body[src]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        ctx.log["gen_ai.request.max_tokens"] = max_tokens


def _record_usage(ctx: RequestContext, call: _Call, usage: dict[str, Any]) -> None:
    """Merge Anthropic/OpenAI usage numbers into the call and the log fields."""
    pairs = (
        ("input_tokens", "input", "gen_ai.usage.input_tokens"),
        ("prompt_tokens", "input", "gen_ai.usage.input_tokens"),
        ("cache_creation_input_tokens", "input_cache_write", "gen_ai.usage.cache_creation.input_tokens"),
        ("cache_read_input_tokens", "input_cache_read", "gen_ai.usage.cache_read.input_tokens"),
        ("output_tokens", "output", "gen_ai.usage.output_tokens"),
        ("completion_tokens", "output", "gen_ai.usage.output_tokens"),
    )
    for src, token_type, log_key in pairs:
        value = usage.get(src)
        if isinstance(value, int):
            call.tokens[token_type] = value
            ctx.log[log_key] = value


def _finish(ctx: RequestContext, state: ProxyState, call: _Call) -> None:
    now = time.perf_counter()
    ctx.log["gen_ai.response.model"] = call.response_model
    ttft = tpot = None
    if call.first_token_at is not None:
        ttft = call.first_token_at - ctx.started
        out = call.tokens.get("output") or 0
        if out > 0:
            tpot = (now - call.first_token_at) / out
        ctx.log["agw.ai.time_to_first_token"] = f"{round(ttft * 1000)}ms"
        if tpot is not None:
            ctx.log["agw.ai.time_per_output_token"] = f"{round(tpot * 1000)}ms"
    state.metrics.record_gen_ai(
        ctx, system=call.system, request_model=call.request_model, response_model=call.response_model,
        tokens=call.tokens, duration=now - ctx.started, time_to_first_token=ttft, time_per_output_token=tpot,
    )


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LLMRequestError(
            f"failed to parse request: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise LLMRequestError("failed to parse request: invalid UTF-8") from None
    if not isinstance(body, dict):
        raise LLMRequestError("failed to parse request: invalid type: expected a JSON object")
    return body


async def handle(request: Request, ctx: RequestContext, backend: AIBackend, state: ProxyState) -> Response:
    """Serve one request routed to an AI backend (see the module docstring).

    Fills ``ctx`` (protocol ``llm``, endpoint, gen_ai log fields) and records the gen_ai
    metrics; the caller writes the access log and request metrics.
    """
    ctx.protocol = "llm"
    ctx.endpoint = backend.upstream_host
    route_type = resolve_route_type(request.url.path, backend.routes)
    raw = await request.body()
    system = backend.provider
    if route_type in ("Passthrough", "Models"):
        return await _passthrough(request, ctx, backend, state, route_type, raw)
    try:
        body = _parse_body(raw)
        model = backend.model if backend.model is not None else body.get("model")
        if model is None:
            raise LLMRequestError("missing field: model not specified")
        if route_type == "Messages" or backend.provider == "openai" or route_type == "AnthropicTokenCount":
            upstream_body = dict(body)
            upstream_body["model"] = model
            translate = False
        else:
            upstream_body = completions_to_messages(body, model)
            translate = True
    except LLMRequestError as exc:
        return _error(ctx, 400, f"failed to process LLM request: {exc}", "InvalidRequest")
    call = _Call(system=system, request_model=model)
    _log_request_fields(ctx, call, body)
    stream = bool(body.get("stream"))
    path = _upstream_path(backend, route_type, request.url.path)
    url = backend.upstream_url.rstrip("/") + path
    span = _llm_span(ctx, "POST", backend, path)
    headers = upstream_headers(request, backend, ctx)
    content = json.dumps(upstream_body, separators=(",", ":"), ensure_ascii=False).encode()
    upstream, failed = await _send_upstream(state, ctx, span, "POST", url, headers, content, decompress=True)
    if failed is not None:
        return failed
    if upstream.status >= 300:
        try:
            err = await upstream.read()
        except UpstreamError:
            err = b""
        finally:
            _end(span, upstream.status)
        if translate:
            return _json_response(translate_error(upstream.status, err), upstream.status)
        return Response(err, upstream.status, media_type=upstream.header("content-type"))
    passthrough_headers = {k: v for k, v in upstream.headers if k not in _DROP_RESPONSE_HEADERS}
    if stream:
        gen = _stream_translated(upstream, ctx, state, call, span) if translate else \
            _stream_passthrough(upstream, ctx, state, call, span)
        passthrough_headers.setdefault("cache-control", "no-cache")
        return StreamingResponse(gen, status_code=upstream.status, headers=passthrough_headers,
                                 media_type="text/event-stream")
    try:
        data = await upstream.read()
    except UpstreamError as exc:
        _end(span, 502)
        return _error(ctx, 502, f"failed to process LLM response: {exc}", "UpstreamFailure")
    _end(span, None)
    try:
        msg = json.loads(data)
        if not isinstance(msg, dict):
            raise ValueError("expected a JSON object")
    except ValueError as exc:
        return _error(ctx, 502, f"failed to process LLM response: {exc}", "UpstreamFailure")
    call.response_model = msg.get("model")
    _record_usage(ctx, call, msg.get("usage") or {})
    _finish(ctx, state, call)
    if not translate:
        return _json_response(msg, upstream.status, passthrough_headers)
    return _json_response(messages_to_completion(msg), upstream.status, passthrough_headers)



def _llm_span(ctx: RequestContext, method: str, backend: AIBackend, path: str) -> Any:
    """The client span for the upstream LLM call, when the request is sampled."""
    if ctx.tracer is None:
        return None
    return ctx.tracer.start_child(f"{method} {backend.upstream_host}", {
        "http.method": method, "http.host": backend.upstream_host.rsplit(":", 1)[0], "http.path": path,
        "agentgateway.outbound.kind": "Primary", "agentgateway.outbound.subtype": "Llm",
    })


async def _send_upstream(state: ProxyState, ctx: RequestContext, span: Any, method: str, url: str,
                         headers: dict[str, str], body: bytes | None,
                         **kw: Any) -> tuple[UpstreamResponse | None, Response | None]:
    """Send the upstream request: ``(response, None)``, or ``(None, the gateway's error)``
    (503 when the upstream cannot be reached, 504 on its timeout), the span closed."""
    try:
        upstream = await state.upstream.send(method, url, headers.items(), body, **kw)
    except asyncio.CancelledError:  # the route's timeout fired: still close the client span
        _end(span, 504)
        raise
    except UpstreamTimeout:
        _end(span, 504)
        return None, _error(ctx, 504, "upstream call timeout", "Timeout")
    except UpstreamError as exc:
        _end(span, 503)
        return None, _error(ctx, 503, f"upstream call failed: {exc}", "UpstreamFailure")
    if span is not None:
        span.set_attribute("http.status", upstream.status)
    return upstream, None


def _end(span: Any, status: int | None) -> None:
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.status", status)
    span.end()


async def _passthrough(
    request: Request, ctx: RequestContext, backend: AIBackend, state: ProxyState, route_type: str, raw: bytes,
) -> Response:
    """``Passthrough``/``Models`` routes: forward with the backend's auth, body untouched."""
    path = _upstream_path(backend, route_type, request.url.path)
    url = backend.upstream_url.rstrip("/") + path
    if request.url.query:
        url += "?" + request.url.query
    headers = upstream_headers(request, backend, ctx)
    if not raw:
        headers.pop("content-type", None)
    span = _llm_span(ctx, request.method, backend, path)
    if ctx.tracer is not None:
        headers["traceparent"] = ctx.tracer.traceparent()
    upstream, failed = await _send_upstream(state, ctx, span, request.method, url, headers, raw or None)
    if failed is not None:
        return failed

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.iter_raw():
                yield chunk
        finally:
            upstream.close()
            _end(span, None)

    headers_out = {k: v for k, v in upstream.headers
                   if k not in _DROP_RESPONSE_HEADERS - {"content-type", "content-encoding"}}
    return StreamingResponse(body(), status_code=upstream.status, headers=headers_out)


async def _sse_events(upstream: UpstreamResponse) -> AsyncIterator[tuple[str | None, str]]:
    """(event, data) pairs of an SSE stream."""
    event: str | None = None
    data: list[str] = []
    async for line in upstream.iter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield event, "\n".join(data)


def _chunk(msg_id: str, created: int, model: str, tier: str | None, choices: list, usage: Any) -> bytes:
    out: dict[str, Any] = {"id": msg_id, "choices": choices, "created": created, "model": model}
    if tier:
        out["service_tier"] = tier
    out["system_fingerprint"] = None
    out["object"] = "chat.completion.chunk"
    out["usage"] = usage
    return b"data: " + json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


async def _stream_translated(
    upstream: UpstreamResponse, ctx: RequestContext, state: ProxyState, call: _Call, span: Any,
) -> AsyncIterator[bytes]:
    """Anthropic stream events → OpenAI ``chat.completion.chunk`` events, then ``[DONE]``."""
    created = int(time.time())
    msg_id, model, tier = "", call.request_model or "", None
    usage: dict[str, Any] = {}
    role_sent = False
    tool_index: dict[int, int] = {}
    try:
        async for _event, data in _sse_events(upstream):
            try:
                ev = json.loads(data)
            except ValueError:
                continue
            kind = ev.get("type")
            if kind == "message_start":
                message = ev.get("message") or {}
                msg_id = message.get("id", "")
                model = message.get("model") or model
                call.response_model = message.get("model")
                usage.update(message.get("usage") or {})
                tier = usage.get("service_tier")
            elif kind == "content_block_start":
                block = ev.get("content_block") or {}
                if block.get("type") == "tool_use":
                    idx = tool_index.setdefault(ev.get("index", 0), len(tool_index))
                    delta: dict[str, Any] = {"tool_calls": [{
                        "index": idx, "id": block.get("id", ""), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""},
                    }]}
                    if not role_sent:
                        delta["role"], role_sent = "assistant", True
                    yield _chunk(msg_id, created, model, tier, [{"index": 0, "delta": delta}], None)
            elif kind == "content_block_delta":
                d = ev.get("delta") or {}
                delta = {}
                if d.get("type") == "text_delta":
                    delta["content"] = d.get("text", "")
                    if call.first_token_at is None:
                        call.first_token_at = time.perf_counter()
                elif d.get("type") == "input_json_delta":
                    idx = tool_index.get(ev.get("index", 0), 0)
                    delta["tool_calls"] = [{"index": idx, "function": {"arguments": d.get("partial_json", "")}}]
                else:
                    continue
                if not role_sent:
                    delta["role"], role_sent = "assistant", True
                yield _chunk(msg_id, created, model, tier, [{"index": 0, "delta": delta}], None)
            elif kind == "message_delta":
                usage.update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})
                reason = FINISH_REASONS.get((ev.get("delta") or {}).get("stop_reason") or "", "stop")
                yield _chunk(msg_id, created, model, tier,
                             [{"index": 0, "delta": {}, "finish_reason": reason}], _usage(usage))
            elif kind == "error":
                err = ev.get("error") or {}
                ctx.error = str(err.get("message", "stream error"))
                yield b"data: " + json.dumps(
                    {"event_id": None, "error": {"type": "invalid_request_error", "message": ctx.error}}
                ).encode() + b"\n\n"
            elif kind == "message_stop":
                break
        yield b"data: [DONE]\n\n"
    finally:
        upstream.close()
        _end(span, None)
        _record_usage(ctx, call, usage)
        _finish(ctx, state, call)


async def _stream_passthrough(
    upstream: UpstreamResponse, ctx: RequestContext, state: ProxyState, call: _Call, span: Any,
) -> AsyncIterator[bytes]:
    """A native (Messages/OpenAI) stream passed through as is, reading usage on the way."""
    usage: dict[str, Any] = {}
    buffer = b""
    try:
        async for chunk in upstream.iter_raw():
            if call.first_token_at is None:
                call.first_token_at = time.perf_counter()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                try:
                    ev = json.loads(line[5:])
                except ValueError:
                    continue
                if not isinstance(ev, dict):
                    continue
                if ev.get("type") == "message_start":
                    call.response_model = (ev.get("message") or {}).get("model")
                    usage.update((ev.get("message") or {}).get("usage") or {})
                elif ev.get("type") == "message_delta":
                    usage.update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})
                elif ev.get("object") == "chat.completion.chunk":
                    call.response_model = ev.get("model") or call.response_model
                    if ev.get("usage"):
                        usage.update(ev["usage"])
            yield chunk
    finally:
        upstream.close()
        _end(span, None)
        _record_usage(ctx, call, usage)
        _finish(ctx, state, call)
