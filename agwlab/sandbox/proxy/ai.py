"""AI backends: one LLM request, from the client's body to the provider and back.

The steps are the same for every provider (``providers/``); what differs per provider
is looked up there. With no ``ai.routes`` every request is an OpenAI chat completion:
translated to the provider's native API when it has another one (Anthropic Messages),
sent with the backend's key, and the answer translated back (streams as
``chat.completion.chunk`` events, without ``data: [DONE]`` as in v1.4.1). ``ai.routes``
can pass native bodies through (``Messages``), pass anything through (``Passthrough``);
``Models`` answers 501 as v1.4.1 does.
Prompt guards (``guardrails.py``) run on the client's body before translation and on the
answer after it.

Requests the gateway cannot process raise
:class:`~agwlab.sandbox.proxy.errors.ProcessingFailed` (503 ``processing failed: ...``);
upstream error responses keep their status and headers with the body translated.
``ctx.llm`` carries what the server records in the access log and gen_ai metrics.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from . import guardrails, outbound, ratelimit
from .config import AIBackend
from .context import LLMCall, RequestContext
from .errors import ProcessingFailed
from .llm_fields import check_completions_request, check_typed_request
from .providers import Provider, provider_for
from .providers.anthropic import RequestInvalid
from .providers.base import compact_json
from .state import ProxyState
from .upstream import UpstreamError, UpstreamResponse

__all__ = ["handle", "resolve_route_type", "upstream_headers", "upstream_url"]

_DROP_REQUEST_HEADERS = frozenset({
    "host", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
    "trailer", "upgrade", "accept-encoding", "origin", "referer",
})
# The body is re-framed (and decompressed) here: only these upstream headers are not passed on.
_DROP_RESPONSE_HEADERS = frozenset({
    "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
})
_NOT_IMPLEMENTED = b'{"error":"Route \'Models\' not implemented"}'


def resolve_route_type(path: str, routes: tuple[tuple[str, str], ...]) -> str:
    """The ``ai.routes`` type for a request path: a suffix match, else ``*``, else Completions.

    Example:
        >>> resolve_route_type("/anthropic/v1/messages", (("/v1/messages", "Messages"),))
        'Messages'
    """
    if not routes:
        return "Completions"
    wildcard = None
    for suffix, kind in routes:
        if suffix == "*":
            wildcard = wildcard or kind
        elif path.endswith(suffix):
            return kind
    return wildcard or "Completions"


def upstream_headers(request: Request, backend: AIBackend, provider: Provider) -> dict[str, str]:
    """The headers sent to the provider: the client's minus hop-by-hop and browser ones,
    plus the backend's key and the provider's own headers (``traceparent`` passes as the
    server set it)."""
    headers = {
        k: v for k, v in request.headers.items()
        if k not in _DROP_REQUEST_HEADERS and not k.startswith(("sec-fetch-", "access-control-request-"))
    }
    if backend.api_key is not None:
        provider.set_auth(headers, backend.api_key, backend.auth_location_explicit)
    headers.update(provider.extra_headers())
    return headers


def upstream_url(backend: AIBackend, provider: Provider, route_type: str, request: Request) -> str:
    """Where the call goes: the provider's path unless a ``host`` override without
    ``pathPrefix`` keeps the client's path (as v1.4.1); the query string is kept."""
    path = request.url.path
    if backend.path:
        path = backend.path
    elif route_type == "Passthrough":
        if backend.path_prefix:
            rest = path.removeprefix(provider.base_path) if path.startswith(provider.base_path + "/") else path
            path = backend.path_prefix.rstrip("/") + rest
    elif not (backend.host_override and not backend.path_prefix):
        default = provider.path(route_type)
        path = (backend.path_prefix.rstrip("/") + default.removeprefix(provider.base_path)
                if backend.path_prefix else default)
    url = backend.upstream_url.rstrip("/") + path
    if request.url.query:
        url += ("&" if "?" in path else "?") + request.url.query
    return url


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise ProcessingFailed("failed to parse request: EOF while parsing a value at line 1 column 0")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProcessingFailed(
            f"failed to parse request: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ProcessingFailed("failed to parse request: invalid UTF-8") from None
    if not isinstance(body, dict):
        raise ProcessingFailed("missing field: request must be an object")
    return body


def _note_request(ctx: RequestContext, call: LLMCall, body: dict[str, Any]) -> None:
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


async def handle(request: Request, ctx: RequestContext, backend: AIBackend, state: ProxyState) -> Response:
    """Serve one request routed to an AI backend (see the module docstring).

    Raises:
        GatewayError: the request cannot be processed or the provider cannot be reached.
    """
    ctx.protocol = "llm"
    ctx.endpoint = backend.upstream_host
    provider = provider_for(backend.provider)
    route_type = resolve_route_type(request.url.path, backend.routes)
    if route_type == "Models":
        return Response(_NOT_IMPLEMENTED, status_code=501, media_type="application/json")
    raw = await request.body()
    url = upstream_url(backend, provider, route_type, request)
    headers = upstream_headers(request, backend, provider)
    if route_type == "Passthrough":
        if not raw:
            headers.pop("content-type", None)
        upstream = await outbound.send(state, ctx, request.method, url, headers.items(), raw or None, subtype="Llm")
        return _relay(upstream)
    body = _parse(raw)
    if route_type == "Completions":
        check_completions_request(raw, body)
    model = backend.model if backend.model is not None else body.get("model")
    if model is None:
        raise ProcessingFailed("missing field: model not specified")
    translate = provider.translates(route_type)
    if translate and route_type == "Completions":
        check_typed_request(body)
    prompt_guard = ctx.rule.prompt_guard if ctx.rule is not None else None
    rejected = guardrails.guard_request(state, ctx, prompt_guard, body, messages_api=route_type == "Messages")
    if rejected is not None:
        return rejected
    try:
        native = provider.translate_request(body, model) if translate else {**body, "model": model}
    except RequestInvalid as exc:
        raise ProcessingFailed(str(exc)) from None
    call = ctx.llm = LLMCall(system=provider.name, request_model=model)
    _note_request(ctx, call, body)
    ratelimit.check_llm_request(state, ctx)
    headers["content-type"] = "application/json"
    upstream = await outbound.send(state, ctx, "POST", url, headers.items(), compact_json(native),
                                   subtype="Llm", decompress=True)
    kept = [(k, v) for k, v in upstream.headers if k not in _DROP_RESPONSE_HEADERS]
    if upstream.status >= 300:
        try:
            err = await upstream.read()
        except UpstreamError:
            err = b""
        body_out = provider.translate_error(err) if translate else provider.native_error(upstream.status, err)
        return _respond(body_out, upstream.status, kept)
    if body.get("stream"):
        if translate:
            events = provider.translate_stream(upstream.iter_lines(), call)
        else:
            events = _watch(provider, upstream, call)
        if prompt_guard is not None and prompt_guard.streaming and prompt_guard.response:
            events = guardrails.guard_stream(events, prompt_guard.response)
        return _respond(_closing(events, upstream), upstream.status, kept)
    try:
        data = json.loads(await upstream.read())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
    except (UpstreamError, ValueError) as exc:
        raise ProcessingFailed(f"failed to parse response: {exc}") from None
    answer = provider.translate_response(data) if translate else data
    rejected = guardrails.guard_response(state, prompt_guard, answer, messages_api=route_type == "Messages")
    if rejected is not None:
        ctx.llm = None   # v1.4.1 records no response model or usage for a rejected answer
        return rejected
    provider.read_usage(call, data)
    return _respond(compact_json(answer), upstream.status, kept)


def _respond(body: bytes | AsyncIterator[bytes], status: int, headers: list[tuple[str, str]]) -> Response:
    """A response with the upstream's headers kept as they came (only the framing is new)."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if not any(k == "content-type" for k, _ in headers):
        raw.append((b"content-type", b"application/json"))
    if isinstance(body, bytes):
        response: Response = Response(body, status_code=status)
        response.raw_headers = [(b"content-length", str(len(body)).encode()), *raw]
        return response
    response = StreamingResponse(body, status_code=status)
    response.raw_headers = raw
    return response


async def _closing(events: AsyncIterator[bytes], upstream: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in events:
            yield chunk
    finally:
        upstream.close()


async def _watch(provider: Provider, upstream: UpstreamResponse, call: LLMCall) -> AsyncIterator[bytes]:
    """A native stream passed through as is, reading usage on the way."""
    buffer = b""
    async for chunk in upstream.iter_raw():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                try:
                    event = json.loads(line[5:])
                except ValueError:
                    continue
                if isinstance(event, dict):
                    provider.read_stream_event(call, event)
        yield chunk


def _relay(upstream: UpstreamResponse) -> Response:
    """A ``Passthrough`` answer streamed back untouched."""
    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.iter_raw():
                yield chunk
        finally:
            upstream.close()

    kept = [(k, v) for k, v in upstream.headers if k not in ("content-length", "transfer-encoding", "connection")]
    return _respond(body(), upstream.status, kept)
