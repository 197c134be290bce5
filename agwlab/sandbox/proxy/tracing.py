"""Request tracing like agentgateway's (reference §4.2), exported with the OpenTelemetry SDK.

Sampling (:func:`should_sample`): without a client ``traceparent`` a request is sampled
only when ``randomSampling`` says so; with one it is sampled unless ``clientSampling``
says otherwise. Sampled requests get one SERVER span (continuing the client's trace when
there is one) named ``"<METHOD> <path match>"``; as in agentgateway v1.4.1 there is no
span for the upstream call. MCP requests add one SERVER child span per JSON-RPC message
(named after the method, ``tools/call <target>`` for tool calls, no attributes). Spans
go to the Gateway's OTLP endpoint (gRPC or HTTP) through a batch processor with a short
delay, with the resource of agentgateway's Rust SDK and the scope ``agentgateway``.
Without a tracing policy ids are still made (they show in the access log) but nothing
is exported.

Example:
    >>> should_sample(None, has_traceparent=True)
    True
    >>> should_sample(None, has_traceparent=False)
    False
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .config import GatewayConfig, TracingConfig
from .context import RequestContext

__all__ = [
    "ProxyTracing",
    "RequestTracer",
    "cel_literal",
    "default_resource_attributes",
    "format_traceparent",
    "parse_traceparent",
    "should_sample",
]

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
EXPORT_DELAY_MS = 100
#: The resource attributes agentgateway's OpenTelemetry SDK (Rust, opentelemetry_sdk 0.32) sets.
RUST_SDK = {"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "rust",
            "telemetry.sdk.version": "0.32.1"}


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, parent_span_id, flags)`` from a W3C ``traceparent``, or None if invalid."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if not m or m.group(1) == "ff":
        return None
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(m.group(4), 16)


def format_traceparent(trace_id: int, span_id: int) -> str:
    """A sampled W3C ``traceparent`` header value."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def cel_literal(expression: str | None) -> Any:
    """Evaluate the CEL literals the sandbox understands: booleans, numbers, quoted strings.

    Anything else returns None (the sandbox does not run CEL).
    """
    if expression is None:
        return None
    text = expression.strip()
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        return None


def _decide(expression: str | None, default: bool) -> bool:
    if expression is None:
        return default
    value = cel_literal(expression)
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return random.random() < value
    return False


def should_sample(tracing: TracingConfig | None, *, has_traceparent: bool) -> bool:
    """agentgateway's sampling decision for one request (see the module docstring)."""
    if has_traceparent:
        return _decide(tracing.client_sampling if tracing else None, True)
    return _decide(tracing.random_sampling if tracing else None, False)


class RequestTracer:
    """The spans of one sampled request.

    The server span starts when the request arrives; MCP adds per-message spans with
    :meth:`message_span`; the server finishes the server span with :meth:`finish`.
    """

    def __init__(self, tracer: trace.Tracer, parent: tuple[int, int, int] | None) -> None:
        self._tracer = tracer
        parent_ctx: Context | None = None
        if parent is not None:
            span_ctx = SpanContext(parent[0], parent[1], is_remote=True, trace_flags=TraceFlags(0x01))
            parent_ctx = trace.set_span_in_context(NonRecordingSpan(span_ctx))
        self.server_span = tracer.start_span("request", context=parent_ctx, kind=SpanKind.SERVER)
        sc = self.server_span.get_span_context()
        self.trace_id = f"{sc.trace_id:032x}"
        self.span_id = f"{sc.span_id:016x}"
        self._messages: list[trace.Span] = []

    def traceparent(self) -> str:
        """The ``traceparent`` sent upstream: the server span's."""
        sc = self.server_span.get_span_context()
        return format_traceparent(sc.trace_id, sc.span_id)

    def message_span(self, name: str) -> trace.Span:
        """Start a SERVER span without attributes under the request's span (one MCP
        message); it ends when the request's span does, as agentgateway buffers it.

        Example:
            >>> ctx.tracer.message_span("tools/call mcp-target")    # doctest: +SKIP
        """
        span = self._tracer.start_span(name, context=trace.set_span_in_context(self.server_span),
                                       kind=SpanKind.SERVER)
        self._messages.append(span)
        return span

    def finish(self, name: str, attributes: Mapping[str, Any], status: int | None) -> None:
        """End the server span with its final name and the access-log attributes."""
        for message in self._messages:
            message.end()
        span = self.server_span
        span.update_name(name)
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if status is not None and status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class ProxyTracing:
    """One proxy's tracer provider, rebuilt when the Gateway's tracing policy changes.

    Args:
        resource_attributes: the Pod's resource attributes (``k8s.pod.name``, …);
            ``service.name``/``service.namespace`` come from the Gateway.
        version: the agentgateway version shown as ``service.version``.
    """

    def __init__(self, resource_attributes: Mapping[str, str], version: str) -> None:
        self._base = dict(resource_attributes)
        self._version = version
        self._config: TracingConfig | None = None
        self._gateway: tuple[str, str] | None = None
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._retired: list[TracerProvider] = []
        self._log = logging.getLogger(__name__)

    def configure(self, config: GatewayConfig) -> None:
        """Use ``config.tracing``; a no-op when neither it nor the Gateway name changed."""
        gateway = (config.namespace, config.name)
        if self._provider is not None and config.tracing == self._config and gateway == self._gateway:
            return
        old = self._provider
        self._config, self._gateway = config.tracing, gateway
        attrs: dict[str, Any] = {
            **RUST_SDK,
            "service.name": config.name,
            "service.namespace": config.namespace,
            "service.version": self._version,
            **self._base,
        }
        for name, expr in (config.tracing.resources if config.tracing else ()):
            value = cel_literal(expr)
            attrs[name] = value if value is not None else expr
        provider = TracerProvider(resource=Resource.create(attrs))
        exporter = _exporter(config.tracing)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
        self._provider = provider
        self._tracer = provider.get_tracer("agentgateway")
        if old is not None:
            self._retired.append(old)

    def start(self, ctx: RequestContext, traceparent: str | None) -> RequestTracer | None:
        """Decide sampling for a new request; when sampled set ``ctx`` ids and return its tracer."""
        parent = parse_traceparent(traceparent)
        if self._tracer is None or not should_sample(self._config, has_traceparent=parent is not None):
            return None
        rt = RequestTracer(self._tracer, parent)
        ctx.tracer = rt
        ctx.trace_id, ctx.span_id = rt.trace_id, rt.span_id
        ctx.traceparent_out = rt.traceparent()
        return rt

    @property
    def policy_attributes(self) -> dict[str, Any]:
        """The policy's extra span attributes (literal values only)."""
        out: dict[str, Any] = {}
        for name, expr in (self._config.attributes if self._config else ()):
            value = cel_literal(expr)
            if value is not None:
                out[name] = value
        return out

    def flush_retired(self) -> None:
        """Shut down providers replaced by newer configs (blocking: call from a thread)."""
        retired, self._retired = self._retired, []
        for provider in retired:
            provider.shutdown()

    def force_flush(self, timeout_ms: int = 2000) -> None:
        """Export everything pending now (blocking)."""
        if self._provider is not None:
            self._provider.force_flush(timeout_ms)

    async def shutdown(self) -> None:
        """Flush and stop every provider (runs the blocking part in a thread)."""
        if self._provider is not None:
            self._retired.append(self._provider)
            self._provider, self._tracer = None, None
        await asyncio.to_thread(self.flush_retired)


def _exporter(config: TracingConfig | None):
    """The OTLP exporter for a tracing policy, or None when there is nowhere to send."""
    if config is None or not config.endpoint or config.error:
        return None
    endpoint = config.endpoint.rstrip("/")
    if config.protocol == "HTTP":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter

        return HTTPExporter(endpoint=endpoint + (config.path or "/v1/traces"), timeout=5)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter

    target = endpoint.split("://", 1)[-1]
    return GRPCExporter(endpoint=target, insecure=True, timeout=5)


def default_resource_attributes(namespace: str, pod_name: str, pod_ip: str) -> dict[str, str]:
    """The Kubernetes resource attributes agentgateway sets for its spans."""
    return {
        "service.instance.id": pod_name,
        "k8s.pod.name": pod_name,
        "k8s.namespace.name": namespace,
        "k8s.node.name": "agwlab-sandbox",
        "k8s.pod.ip": pod_ip,
        "host.name": pod_name or socket.gethostname(),
    }
