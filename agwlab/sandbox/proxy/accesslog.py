"""The proxy's access log: one line per request, as agentgateway prints it (reference §4.1).

Text format: ``<RFC3339 UTC with µs>Z<TAB>info<TAB>request k=v k=v …`` in agentgateway's key
order, empty fields left out, ``error`` and ``mcp.error.message`` JSON-quoted, ``reason``
only when it is not ``Upstream``, ``duration=<ms>ms``. JSON format:
``{"level":"info","time":…,"scope":"request",<k>:<v>…}``.

Example:
    >>> fields = {"gateway": "ns/gw", "http.status": 200, "duration": "3ms"}
    >>> format_text(fields, "2026-01-01T00:00:00.000000Z")
    '2026-01-01T00:00:00.000000Z\\tinfo\\trequest gateway=ns/gw http.status=200 duration=3ms'
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..redact import mask_keys
from .context import RequestContext

__all__ = ["KEY_ORDER", "access_fields", "format_json", "format_line", "format_text", "timestamp"]

KEY_ORDER: tuple[str, ...] = ("gateway", "listener", "route_rule", "route", "endpoint", "src.addr", "src.identity", "http.method", "http.host", "http.path", "http.version", "http.status", "grpc.status", "tls.sni", "trace.id", "span.id", "jwt.sub", "protocol", "a2a.method", "a2a.context.id", "mcp.method.name", "mcp.target", "mcp.resource.type", "mcp.resource.uri", "gen_ai.tool.name", "gen_ai.prompt.name", "mcp.session.id", "mcp.error.code", "mcp.error.message", "inferencepool.selected_endpoint", "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.reasoning_tokens", "agw.ai.time_to_first_token", "agw.ai.time_per_output_token", "agw.ai.usage.cost.total", "gen_ai.usage.output_image_tokens", "gen_ai.usage.input_audio_tokens", "gen_ai.usage.output_audio_tokens", "gen_ai.request.temperature", "gen_ai.embeddings.dimension.count", "gen_ai.request.encoding_formats", "gen_ai.request.top_p", "gen_ai.request.max_tokens", "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty", "gen_ai.request.seed", "retry.attempt", "error", "reason", "duration")
_QUOTED = {"error", "mcp.error.message"}
_TOKEN_KEYS = {
    "input": "gen_ai.usage.input_tokens",
    "input_cache_write": "gen_ai.usage.cache_creation.input_tokens",
    "input_cache_read": "gen_ai.usage.cache_read.input_tokens",
    "output": "gen_ai.usage.output_tokens",
}
_RANK = {k: i for i, k in enumerate(KEY_ORDER)}


def timestamp(now: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``, as agentgateway's logger writes it."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _host_only(host: str) -> str:
    """The Host header without its port, as agentgateway logs ``http.host``."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def access_fields(ctx: RequestContext, duration_ms: int) -> dict[str, Any]:
    """The request's log fields in agentgateway's key order, empty ones left out.

    Handler-set keys (``ctx.log``) not in agentgateway's list (e.g. policy attributes)
    go just before ``error``.
    """
    fields: dict[str, Any] = {
        "gateway": ctx.gateway.key,
        "listener": ctx.listener.name,
        "route_rule": ctx.rule.name if ctx.rule else None,
        "route": ctx.route.key if ctx.route else None,
        "endpoint": ctx.endpoint,
        "src.addr": ctx.src_addr,
        "http.method": ctx.method,
        "http.host": _host_only(ctx.host),
        "http.path": ctx.path,
        "http.version": ctx.http_version,
        "http.status": ctx.status,
        "trace.id": ctx.trace_id,
        "span.id": ctx.span_id,
        "protocol": ctx.protocol,
        "error": ctx.error,
        "reason": ctx.reason if ctx.reason != "Upstream" else None,
        "duration": f"{duration_ms}ms",
    }
    if ctx.llm is not None:
        fields["gen_ai.response.model"] = ctx.llm.response_model
        for token_type, key in _TOKEN_KEYS.items():
            fields[key] = ctx.llm.tokens.get(token_type)
    for key, value in ctx.log.items():
        if key not in fields or fields[key] is None:
            fields[key] = value
    present = {k: v for k, v in fields.items() if v is not None and v != ""}
    before_error = _RANK["error"] - 0.5
    return dict(sorted(present.items(), key=lambda kv: _RANK.get(kv[0], before_error)))


def _text_value(key: str, value: Any) -> str:
    if key in _QUOTED:
        return json.dumps(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_text(fields: dict[str, Any], ts: str | None = None) -> str:
    """One text-format access-log line (no trailing newline)."""
    body = " ".join(f"{k}={_text_value(k, v)}" for k, v in fields.items())
    return f"{ts or timestamp()}\tinfo\trequest {body}"


def format_json(fields: dict[str, Any], ts: str | None = None) -> str:
    """One JSON-format access-log line (no trailing newline)."""
    record: dict[str, Any] = {"level": "info", "time": ts or timestamp(), "scope": "request"}
    record.update(fields)
    return json.dumps(record, separators=(",", ":"))


def format_line(ctx: RequestContext, duration_ms: int, log_format: str = "text") -> str:
    """The access-log line for a finished request in the Gateway's configured format."""
    fields = access_fields(ctx, duration_ms)
    # a key sent as the model name (or anywhere else in a logged field) is never written out
    return mask_keys(format_json(fields) if log_format == "json" else format_text(fields))
