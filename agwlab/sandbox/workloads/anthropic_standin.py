"""A local stand-in for Anthropic's Messages API (``POST /v1/messages``), for the sandbox.

It checks what the real API checks first (an API key shaped like an Anthropic key, sent as
``x-api-key`` or ``Authorization: Bearer``,
the ``anthropic-version`` header, a known model, ``max_tokens``) and answers with the
same shapes, including streaming events. Answers are deterministic: they say they come
from the sandbox model, quote the question and add sentences picked by a hash of the
prompt, so the same request always gets the same answer.

It also calls tools and thinks, by the rules in :mod:`.standin_turns`: with ``tools`` and a
forced ``tool_choice``, or a question that contains a URL a tool can take, it answers with
``tool_use`` blocks (``stop_reason: "tool_use"``); given ``tool_result`` blocks, it answers
from them and says so when a tool failed; with ``thinking`` on, a ``thinking`` block comes
first. ``GET /v1/models`` lists the models as Anthropic's API does (newest first,
``limit``/``after_id``/``before_id`` paging), ``GET /v1/models/{id}`` shows one.

Outages on demand (for resilience exercises): ``POST /agwlab/outage`` with
``{"model": "<model or *>", "status": 429|500|529, "seconds": N}`` makes ``/v1/messages`` for
that model answer with Anthropic's error for that status (``rate_limit_error`` with
``retry-after``, ``api_error``, ``overloaded_error``) for N seconds; ``DELETE /agwlab/outage``
ends every outage. ``GET /agwlab/outage`` lists the active ones.

Token counts use a simple, documented estimate (:func:`count_tokens`): one token per word,
number or punctuation mark. Keys are never logged; at most ``sk-ant-…abcd``.

Run it alone::

    python -m agwlab.sandbox.workloads.anthropic_standin --host 127.0.0.1 --port 8443

Example:
    >>> count_tokens("Hello, world!")
    4
    >>> mask_key("sk-ant-api03-abcdefghijklmnop-wxyz")
    'sk-ant-…wxyz'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..redact import mask_keys
from ..runtime import PodContext, WorkloadFailed
from ..serving import BoundServer, os_error_text, serve_asgi
from .standin_turns import (
    Turn,
    plan_turn,
    question_of,
    summarise_outcomes,
    thinking_signature,
    thinking_text,
    validate_tools,
)

__all__ = [
    "ALIASES",
    "DEFAULT_PORT",
    "MODELS",
    "AnthropicStandinWorkload",
    "answer_for",
    "content_for",
    "count_tokens",
    "create_app",
    "list_models",
    "mask_key",
    "resolve_model",
]

DEFAULT_PORT = 8443
_VERSION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Model ids the stand-in serves, with their display names.
MODELS: dict[str, str] = {
    "claude-opus-4-7": "Claude Opus 4.7",
    "claude-sonnet-4-6": "Claude Sonnet 4.6",
    "claude-opus-4-6": "Claude Opus 4.6",
    "claude-opus-4-5-20251101": "Claude Opus 4.5",
    "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
    "claude-sonnet-4-5-20250929": "Claude Sonnet 4.5",
    "claude-opus-4-1-20250805": "Claude Opus 4.1",
    "claude-opus-4-20250514": "Claude Opus 4",
    "claude-sonnet-4-20250514": "Claude Sonnet 4",
    "claude-3-7-sonnet-20250219": "Claude Sonnet 3.7",
    "claude-3-5-haiku-20241022": "Claude Haiku 3.5",
    "claude-3-haiku-20240307": "Claude Haiku 3",
}
#: Aliases the API accepts, and the dated id each resolves to.
ALIASES: dict[str, str] = {
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
_MODEL_DATES = {m: m.rsplit("-", 1)[1] for m in MODELS if m[-8:].isdigit()}

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_KEY_SHAPE = re.compile(r"^sk-ant-[A-Za-z0-9_\-]{8,}$")
_SENTENCES = (
    "A gateway in front of the model gives you one place for keys, routing, limits and telemetry.",
    "The request went through the sandbox, so no real model was called and no tokens were billed.",
    "Try asking the same question with \"stream\": true to watch the answer arrive in chunks.",
    "Every call is counted, so the token usage shows up in the gateway's metrics.",
    "Send a traceparent header and you can follow this request from the gateway to the collector.",
    "The same prompt always gets the same answer here, which keeps the lab's outputs repeatable.",
    "In a real cluster this answer would come from Anthropic's API; the shape of the response is the same.",
    "Short, specific questions make the token counts in the access log easy to compare.",
)
#: Topic sentences chosen by words in the question, so answers read as on-topic.
_TOPICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("istio", "ambient", "mesh", "ztunnel", "waypoint"),
     "Istio's ambient mode takes the mesh out of the sidecars: a per-node ztunnel handles mTLS and L4 "
     "traffic, and optional waypoint proxies add L7 policy only where it is needed."),
    (("kubernetes", "k8s", "cluster", "pod", "deployment", "kubectl"),
     "On Kubernetes the gateway is an ordinary Deployment and Service, so kubectl shows its pods, logs "
     "and endpoints like those of any other workload."),
    (("agentgateway", "gateway", "proxy", "route", "routing"),
     "agentgateway sits between clients and model or tool servers: it picks the route, injects the "
     "provider's key, translates OpenAI requests into Anthropic's format and records each call."),
    (("mcp", "tool", "tools", "agent", "agents"),
     "MCP gives an agent one way to discover and call tools; a gateway can put several tool servers "
     "behind a single endpoint and log every call."),
    (("trace", "tracing", "span", "opentelemetry", "otel", "collector"),
     "With tracing on, each request carries a W3C traceparent, so its server and client spans can be "
     "followed from the gateway into the collector."),
    (("metric", "metrics", "prometheus", "grafana", "dashboard"),
     "Prometheus scrapes the gateway's /metrics endpoint, where token usage per model appears as "
     "agentgateway_gen_ai_client_token_usage."),
    (("token", "tokens", "cost", "usage", "billing"),
     "Tokens are counted on the way in and out, which is what usage limits and cost reports are built on."),
    (("security", "secret", "key", "auth", "authentication"),
     "Keeping the provider key in a Kubernetes Secret that only the gateway reads means clients never "
     "need to hold it."),
    (("hello", "hi", "hey", "greetings"),
     "Hello! This is the sandbox model answering through the gateway."),
    (("python", "code", "function", "script"),
     "Any OpenAI-compatible client library can call the gateway; only its base URL has to change."),
)


def list_models() -> list[dict[str, str]]:
    """The models as ``GET /v1/models`` lists them: newest first, with display names and release dates.

    Example:
        >>> list_models()[0]["type"], list_models()[-1]["id"]
        ('model', 'claude-3-haiku-20240307')
    """
    return [
        {"type": "model", "id": m, "display_name": name,
         "created_at": (f"{_MODEL_DATES[m][:4]}-{_MODEL_DATES[m][4:6]}-{_MODEL_DATES[m][6:]}T00:00:00Z"
                        if m in _MODEL_DATES else "2026-01-01T00:00:00Z")}
        for m, name in MODELS.items()
    ]


def count_tokens(text: str) -> int:
    """The stand-in's token estimate: one token per word, number or punctuation mark."""
    return len(_TOKEN.findall(text))


def mask_key(key: str | None) -> str:
    """A key as it may appear in logs: ``sk-ant-…abcd`` (never more)."""
    if not key:
        return "<none>"
    prefix = "sk-ant-" if key.startswith("sk-ant-") else ""
    return f"{prefix}…{key[-4:]}" if len(key) >= 12 else f"{prefix}…"


def resolve_model(model: str) -> str | None:
    """The dated model id for an id or alias, or None for a model the API does not know."""
    if model in MODELS:
        return model
    return ALIASES.get(model)


def _random_id(prefix: str, n: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                kind = block.get("type")
                if kind == "text":
                    parts.append(str(block.get("text", "")))
                elif kind == "tool_result":
                    parts.append(_text_of(block.get("content", "")))
                elif kind == "tool_use":
                    parts.append(f"{block.get('name', '')} {json.dumps(block.get('input') or {})}")
                elif kind == "thinking":
                    parts.append(str(block.get("thinking", "")))
        return "\n".join(parts)
    return ""


def _prompt_texts(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    system = _text_of(body.get("system", ""))
    messages = [(str(m.get("role", "")), _text_of(m.get("content"))) for m in body.get("messages") or []
                if isinstance(m, dict)]
    return system, messages


def input_tokens_for(body: dict[str, Any]) -> int:
    """Input tokens of a Messages body: its texts (tool calls and results included) plus 3 per
    message, 1 for the system prompt, and the tool definitions as JSON."""
    system, messages = _prompt_texts(body)
    total = count_tokens(system) + (1 if system else 0)
    for _role, text in messages:
        total += count_tokens(text) + 3
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += count_tokens(json.dumps(tools))
    return max(total, 1)


def answer_for(model: str, body: dict[str, Any], turn: Turn | None = None) -> str:
    """The deterministic answer to a Messages body (same prompt, same answer).

    It names the sandbox model, quotes the question, adds up to two sentences on the topics
    the question mentions, and one or two general ones picked by a hash of the prompt. When
    the last message carries tool results, it answers from them instead (see
    :func:`.standin_turns.summarise_outcomes`).
    """
    system, _messages = _prompt_texts(body)
    question = question_of(body.get("messages") or []).strip()
    turn = turn if turn is not None else plan_turn(body)
    digest = hashlib.sha256(f"{model}\n{system}\n{question}".encode()).digest()
    quoted = " ".join(question.split())
    if len(quoted) > 120:
        quoted = quoted[:117].rstrip() + "..."
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    topical = [sentence for keys, sentence in _TOPICS if words.intersection(keys)][:2]
    general = list(dict.fromkeys(_SENTENCES[digest[i] % len(_SENTENCES)] for i in range(3)))
    general = general[: 1 + digest[3] % 2]
    opening = f'You asked: "{quoted}".' if quoted else "You sent no question."
    style = f" (Following the system prompt: {' '.join(system.split())[:80]})" if system else ""
    if turn.outcomes:
        return f"(agwlab sandbox model {model}) {opening}{style} {summarise_outcomes(turn.outcomes)}"
    return f"(agwlab sandbox model {model}) {opening}{style} " + " ".join(topical + general)


def _tool_use_id() -> str:
    return _random_id("toolu_01", 22)


def _thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def content_for(model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks of the answer to a (valid) Messages body, and its stop reason.

    Blocks come in the API's order: ``thinking`` (when on), ``text``, then ``tool_use``
    blocks (stop reason ``tool_use``); or ``thinking`` and the answer's ``text``
    (``end_turn``). A forced ``tool_choice`` gets no text before its ``tool_use`` blocks.
    """
    turn = plan_turn(body)
    blocks: list[dict[str, Any]] = []
    if _thinking_on(body):
        thought = thinking_text(turn)
        blocks.append({"type": "thinking", "thinking": thought, "signature": thinking_signature(thought)})
    if turn.calls:
        if not turn.forced:
            names = sorted({c.name for c in turn.calls})
            blocks.append({"type": "text", "text": f"I'll use the {' and '.join(names)} tool"
                           f"{'s' if len(names) > 1 else ''} to answer that."})
        blocks += [{"type": "tool_use", "id": _tool_use_id(), "name": c.name, "input": c.input} for c in turn.calls]
        return blocks, "tool_use"
    blocks.append({"type": "text", "text": answer_for(model, body, turn)})
    return blocks, "end_turn"


def _block_tokens(block: dict[str, Any]) -> int:
    if block["type"] == "text":
        return count_tokens(block["text"])
    if block["type"] == "thinking":
        return count_tokens(block["thinking"])
    return count_tokens(f"{block['name']} {json.dumps(block['input'])}")


def _truncate(text: str, max_tokens: int) -> tuple[str, int, bool]:
    matches = list(_TOKEN.finditer(text))
    if len(matches) <= max_tokens:
        return text, len(matches), False
    if max_tokens <= 0:
        return "", 0, True
    return text[: matches[max_tokens - 1].end()], max_tokens, True


# what Anthropic answers for each status an outage can have: (error type, message)
_OUTAGE_ERRORS = {
    429: ("rate_limit_error", "This request would exceed your organization's rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _error(status: int, kind: str, message: str, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": mask_keys(message)}, "request_id": request_id},
        status_code=status, headers={"request-id": request_id},
    )


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def create_app(
    log: Callable[[str], None] | None = None,
    *,
    stream_delay: float = 0.01,
    response_delay: float = 0.0,
) -> Starlette:
    """The stand-in's ASGI app.

    Args:
        log: receives one line per request (keys masked); ``None`` logs nothing.
        stream_delay: seconds between streamed text chunks (makes time-to-first-token real).
        response_delay: seconds to wait before a non-streaming answer.
    """

    def write(line: str) -> None:
        if log is not None:
            ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            log(f"{ts} INFO {line}")

    def check_headers(request: Request, request_id: str) -> tuple[Response | None, str | None]:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not key or not _KEY_SHAPE.match(key):
            return _error(401, "authentication_error", "invalid x-api-key", request_id), key
        version = request.headers.get("anthropic-version")
        if not version:
            return _error(400, "invalid_request_error", "anthropic-version: header is required", request_id), key
        if not _VERSION_SHAPE.match(version):
            return _error(400, "invalid_request_error",
                          f"anthropic-version: invalid version {version}", request_id), key
        return None, key

    async def parse_body(request: Request, request_id: str) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid_request_error", "The request body is not valid JSON.", request_id)
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "The request body must be a JSON object.", request_id)
        return body

    async def messages(request: Request) -> Response:
        request_id = _random_id("req_011C")
        bad, key = check_headers(request, request_id)
        if bad is not None:
            write(f"POST /v1/messages {bad.status_code} key={mask_key(key)}")
            return bad
        body = await parse_body(request, request_id)
        if isinstance(body, Response):
            write(f"POST /v1/messages 400 key={mask_key(key)}")
            return body
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                write(f"POST /v1/messages 400 key={mask_key(key)} missing={field}")
                return _error(400, "invalid_request_error", f"{field}: Field required", request_id)
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return _error(400, "invalid_request_error", "max_tokens: Input should be a valid integer >= 1",
                          request_id)
        if not isinstance(body["messages"], list) or not body["messages"]:
            return _error(400, "invalid_request_error", "messages: at least one message is required", request_id)
        model = resolve_model(str(body["model"]))
        if model is None:
            write(f"POST /v1/messages 404 key={mask_key(key)} model={body['model']}")
            return _error(404, "not_found_error", f"model: {body['model']}", request_id)
        down = outage_for(model)
        if down is not None:
            kind, message = _OUTAGE_ERRORS[down]
            write(f"POST /v1/messages {down} key={mask_key(key)} model={model} outage")
            failed = _error(down, kind, message, request_id)
            if down == 429:
                failed.headers["retry-after"] = "10"
            return failed
        problem = validate_tools(body)
        if problem is not None:
            write(f"POST /v1/messages 400 key={mask_key(key)} error={problem[:80]!r}")
            return _error(400, "invalid_request_error", problem, request_id)
        blocks, stop_reason = content_for(model, body)
        stop_sequence: str | None = None
        budget = int(body["max_tokens"])
        out_tokens = 0
        for block in blocks:
            if block["type"] != "text":
                out_tokens += _block_tokens(block)
                continue
            text = block["text"]
            for seq in body.get("stop_sequences") or []:
                if stop_reason == "end_turn" and isinstance(seq, str) and seq and seq in text:
                    text, stop_reason, stop_sequence = text[: text.index(seq)], "stop_sequence", seq
                    break
            text, used, truncated = _truncate(text, max(budget - out_tokens, 0))
            block["text"], out_tokens = text, out_tokens + used
            if truncated:
                stop_reason, stop_sequence = "max_tokens", None
                blocks = blocks[: blocks.index(block) + 1]
                break
        in_tokens = input_tokens_for(body)
        msg_id = _random_id("msg_01", 22)
        usage = {
            "input_tokens": in_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "output_tokens": out_tokens, "service_tier": "standard",
        }
        calls = sum(b["type"] == "tool_use" for b in blocks)
        write(f"POST /v1/messages 200 key={mask_key(key)} model={model} stream={bool(body.get('stream'))} "
              f"input_tokens={in_tokens} output_tokens={out_tokens} stop_reason={stop_reason} tool_calls={calls} "
              f"traceparent={request.headers.get('traceparent', '-')}")
        headers = {"request-id": request_id}
        if body.get("stream"):
            return StreamingResponse(
                _stream(msg_id, model, blocks, usage, stop_reason, stop_sequence, stream_delay),
                media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"},
            )
        if response_delay:
            await asyncio.sleep(response_delay)
        return JSONResponse({
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": blocks,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage,
        }, headers=headers)

    async def count(request: Request) -> Response:
        request_id = _random_id("req_011C")
        bad, _key = check_headers(request, request_id)
        if bad is not None:
            return bad
        body = await parse_body(request, request_id)
        if isinstance(body, Response):
            return body
        if resolve_model(str(body.get("model", ""))) is None:
            return _error(404, "not_found_error", f"model: {body.get('model')}", request_id)
        return JSONResponse({"input_tokens": input_tokens_for(body)})

    async def models(request: Request) -> Response:
        request_id = _random_id("req_011C")
        bad, _key = check_headers(request, request_id)
        if bad is not None:
            return bad
        query = request.query_params
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            return _error(400, "invalid_request_error", "limit: Input should be a valid integer", request_id)
        if not 1 <= limit <= 1000:
            return _error(400, "invalid_request_error",
                          "limit: Input should be greater than or equal to 1 and less than or equal to 1000",
                          request_id)
        data = list_models()
        ids = [m["id"] for m in data]
        for param in ("after_id", "before_id"):
            if param in query and query[param] not in ids:
                return _error(404, "not_found_error", f"{param}: {query[param]}", request_id)
        if "before_id" in query:
            end = ids.index(query["before_id"])
            page = data[max(end - limit, 0):end]
            has_more = end - limit > 0
        else:
            start = ids.index(query["after_id"]) + 1 if "after_id" in query else 0
            page = data[start:start + limit]
            has_more = start + limit < len(data)
        return JSONResponse({
            "data": page, "has_more": has_more,
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
        }, headers={"request-id": request_id})

    async def model(request: Request) -> Response:
        request_id = _random_id("req_011C")
        bad, _key = check_headers(request, request_id)
        if bad is not None:
            return bad
        wanted = resolve_model(request.path_params["model_id"])
        found = next((m for m in list_models() if m["id"] == wanted), None)
        if found is None:
            return _error(404, "not_found_error", f"model: {request.path_params['model_id']}", request_id)
        return JSONResponse(found, headers={"request-id": request_id})

    async def not_found(request: Request) -> Response:
        return _error(404, "not_found_error", "Not Found", _random_id("req_011C"))

    outages: dict[str, tuple[float, int]] = {}      # model (or "*") -> (monotonic end, status)

    def outage_for(model: str) -> int | None:
        now = time.monotonic()
        for name in (model, "*"):
            until, status = outages.get(name, (0.0, 0))
            if until > now:
                return status
        return None

    async def outage(request: Request) -> Response:
        if request.method == "DELETE":
            outages.clear()
            write("outages cleared")
            return JSONResponse({"outages": []})
        if request.method == "POST":
            try:
                spec = json.loads(await request.body())
                model = str(spec.get("model", "*"))
                status, seconds = int(spec["status"]), float(spec["seconds"])
            except (ValueError, KeyError, TypeError, AttributeError):
                return JSONResponse({"error": 'send {"model": "<model or *>", "status": 429|500|529, '
                                              '"seconds": N}'}, status_code=400)
            if status not in _OUTAGE_ERRORS or not 0 < seconds <= 3600:
                return JSONResponse({"error": f"status must be one of {sorted(_OUTAGE_ERRORS)} and seconds "
                                              "between 0 and 3600"}, status_code=400)
            name = "*" if model == "*" else (resolve_model(model) or model)
            outages[name] = (time.monotonic() + seconds, status)
            write(f"outage model={name} status={status} seconds={seconds:g}")
        now = time.monotonic()
        return JSONResponse({"outages": [{"model": m, "status": st, "seconds_left": round(until - now, 1)}
                                         for m, (until, st) in outages.items() if until > now]})

    return Starlette(routes=[
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id}", model, methods=["GET"]),
        Route("/agwlab/outage", outage, methods=["GET", "POST", "DELETE"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ])


def _pieces(text: str, n: int = 4) -> list[str]:
    words = re.findall(r"\S+\s*", text)
    return ["".join(words[i:i + n]) for i in range(0, len(words), n)]


async def _stream(msg_id: str, model: str, blocks: list[dict[str, Any]], usage: dict[str, Any], stop_reason: str,
                  stop_sequence: str | None, delay: float) -> AsyncIterator[bytes]:
    """The answer as Anthropic's stream events: thinking and text deltas word by word, tool
    inputs as ``input_json_delta`` pieces of their JSON (the first one empty, as the API sends)."""
    start_usage = dict(usage, output_tokens=1)
    yield _sse("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage,
    }})
    for index, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        if index == 0:
            yield _sse("ping", {"type": "ping"})
        if kind == "text":
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"], 6)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            raw = json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)
            step = max(len(raw) // 3, 1)
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": raw[i:i + step]} for i in range(0, len(raw), step)]
        for delta in deltas:
            if delay:
                await asyncio.sleep(delay)
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                                 "usage": {"output_tokens": usage["output_tokens"]}})
    yield _sse("message_stop", {"type": "message_stop"})


class AnthropicStandinWorkload:
    """The stand-in as a sandbox workload: serves on ``<pod ip>:<container port>`` (default 8443).

    Pod env ``STREAM_DELAY_MS`` (default 10) and ``RESPONSE_DELAY_MS`` (default 0) set the
    simulated latencies.
    """

    def __init__(self) -> None:
        self._server: BoundServer | None = None
        self._stopped = False

    async def start(self, pod: PodContext) -> None:
        """Serve until :meth:`stop`.

        Raises:
            WorkloadFailed: the port is taken.
        """
        port = next((int(p["containerPort"]) for p in pod.ports if p.get("containerPort")), DEFAULT_PORT)
        app = create_app(
            pod.log.write,
            stream_delay=float(pod.env.get("STREAM_DELAY_MS", "10")) / 1000,
            response_delay=float(pod.env.get("RESPONSE_DELAY_MS", "0")) / 1000,
        )
        try:
            self._server = await serve_asgi(app, pod.pod_ip, port)
        except OSError as exc:
            raise WorkloadFailed(f"cannot listen on {pod.pod_ip}:{port}: {os_error_text(exc)}") from None
        pod.log.write(f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} INFO anthropic stand-in "
                      f"serving the Messages API on http://{pod.pod_ip}:{port}/v1/messages "
                      f"({len(MODELS)} models)")

    async def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def alive(self) -> bool:
        return not self._stopped


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in alone (logs to stdout)."""
    parser = argparse.ArgumentParser(description="Anthropic Messages API stand-in (no real model).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)

    async def run() -> None:
        server = await serve_asgi(create_app(print), args.host, args.port)
        print(f"serving on http://{args.host}:{server.address[1]}/v1/messages", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
