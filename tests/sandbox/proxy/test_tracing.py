"""Sampling decisions and the spans a sampled request produces (reference §4.2)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agwlab.sandbox.proxy.config import TracingConfig
from agwlab.sandbox.proxy.tracing import RequestTracer, cel_literal, parse_traceparent, should_sample

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_sampling_rules() -> None:
    none = TracingConfig(endpoint="http://c:4317")
    assert should_sample(None, has_traceparent=False) is False
    assert should_sample(None, has_traceparent=True) is True
    assert should_sample(none, has_traceparent=False) is False
    assert should_sample(none, has_traceparent=True) is True
    assert should_sample(TracingConfig(None, random_sampling="true"), has_traceparent=False) is True
    assert should_sample(TracingConfig(None, random_sampling="false"), has_traceparent=False) is False
    assert should_sample(TracingConfig(None, client_sampling="false"), has_traceparent=True) is False
    assert should_sample(TracingConfig(None, random_sampling="1.0"), has_traceparent=False) is True
    assert should_sample(TracingConfig(None, random_sampling="0.0"), has_traceparent=False) is False
    hits = sum(should_sample(TracingConfig(None, random_sampling="0.5"), has_traceparent=False) for _ in range(2000))
    assert 800 < hits < 1200


def test_traceparent_parsing_and_literals() -> None:
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-01") == (int(TRACE, 16), int(PARENT, 16), 1)
    for bad in (None, "", "garbage", f"00-{'0' * 32}-{PARENT}-01", f"ff-{TRACE}-{PARENT}-01", f"00-{TRACE}-{PARENT}"):
        assert parse_traceparent(bad) is None
    assert cel_literal('"lab"') == "lab" and cel_literal("true") is True and cel_literal("0.25") == 0.25
    assert cel_literal("request.path") is None


def test_server_span_continues_the_client_trace_and_message_spans_nest() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = RequestTracer(provider.get_tracer("agentgateway"), parse_traceparent(f"00-{TRACE}-{PARENT}-01"))
    assert rt.trace_id == TRACE and rt.traceparent() == f"00-{TRACE}-{rt.span_id}-01"
    rt.message_span("tools/call mcp-target")
    assert rt.traceparent() == f"00-{TRACE}-{rt.span_id}-01"     # upstream calls carry the request span
    assert exporter.get_finished_spans() == ()                    # message spans end with the request
    rt.finish("POST /mcp/*", {"http.status": 200, "gateway": "ns/gw", "skip": None}, 200)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server, message = spans["POST /mcp/*"], spans["tools/call mcp-target"]
    assert server.kind == SpanKind.SERVER and message.kind == SpanKind.SERVER
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT
    assert message.parent is not None and message.parent.span_id == server.context.span_id
    assert server.attributes == {"http.status": 200, "gateway": "ns/gw"}
    assert not message.attributes
