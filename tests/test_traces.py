"""Parsing agentgateway's access log and the collector's debug output, and drawing a trace."""

import matplotlib

matplotlib.use("Agg")

from agwlab import traces

TRACE = "2864d2f682a85ba0c44cb5122d2d11e5"

ACCESS_LOG = (
    "2026-08-21T16:04:05.123456Z\tinfo\trequest gateway=agentgateway-system/agentgateway-route listener=http "
    "route=agentgateway-system/claude endpoint=api.anthropic.com:443 http.method=POST http.path=/anthropic "
    f"http.status=200 trace.id={TRACE} span.id=947515b6316f7931 protocol=llm "
    "gen_ai.usage.input_tokens=33 gen_ai.usage.output_tokens=156 duration=4213ms\n"
    "2026-08-21T16:04:06.000000Z\tinfo\tsomething else happened\n"
    "2026-08-21T16:05:00.001002Z\tinfo\trequest route=default/mcp-route http.status=500 "
    'error="upstream call failed: connection refused" duration=3ms\n'
    '{"level":"info","time":"2026-08-21T16:06:00Z","scope":"request","http.status":404,"reason":"NotFound"}\n'
)

COLLECTOR_LOG = f"""\
2026-08-21T16:04:10.000Z\tinfo\tTraces\t{{"otelcol.component.kind": "exporter", "resource spans": 1, "spans": 2}}
2026-08-21T16:04:10.000Z\tinfo\tResourceSpans #0
Resource SchemaURL:
Resource attributes:
     -> service.name: Str(agentgateway-route)
     -> k8s.namespace.name: Str(agentgateway-system)
ScopeSpans #0
ScopeSpans SchemaURL:
InstrumentationScope agentgateway
Span #0
    Trace ID       : {TRACE}
    Parent ID      : 00f067aa0ba902b7
    ID             : 947515b6316f7931
    Name           : POST /mcp/*
    Kind           : Server
    Start time     : 2026-08-21 16:04:00.918000123 +0000 UTC
    End time       : 2026-08-21 16:04:05.131000000 +0000 UTC
    Status code    : Unset
    Status message :
Attributes:
     -> http.method: Str(POST)
     -> http.status: Int(200)
     -> route: Str(agentgateway-system/mcp)
Span #1
    Trace ID       : {TRACE}
    Parent ID      : 947515b6316f7931
    ID             : 1111111111111111
    Name           : tools/call mcp-target
    Kind           : Server
    Start time     : 2026-08-21 16:04:01.000000 +0000 UTC
    End time       : 2026-08-21 16:04:05.100000 +0000 UTC
    Status code    : Unset
    Status message :
Events:
SpanEvent #0
     -> Name: retry
     -> not.a.span.attribute: Bool(true)
\t{{"otelcol.component.kind": "exporter"}}
2026-08-21T16:04:11.000Z\tinfo\tResourceSpans #0
Resource attributes:
     -> service.name: Str(agentgateway-route)
ScopeSpans #0
Span #0
    Trace ID       : ffffffffffffffffffffffffffffffff
    Parent ID      :
    ID             : 2222222222222222
    Name           : tools/call
    Kind           : Server
    Start time     : 2026-08-21 16:04:11 +0000 UTC
    End time       : 2026-08-21 16:04:11.5 +0000 UTC
Attributes:
     -> mcp.method.name: Str(tools/call)
"""


def test_access_log_text_line_becomes_a_dict():
    entry = traces.parse_access_log_line(ACCESS_LOG.splitlines()[0])
    assert entry["trace.id"] == TRACE
    assert entry["route"] == "agentgateway-system/claude"
    assert entry["gen_ai.usage.output_tokens"] == "156"
    assert entry["time"] == "2026-08-21T16:04:05.123456Z"
    assert entry["duration"] == "4213ms"


def test_access_log_quoted_values_are_unquoted():
    entry = traces.parse_access_log_line(ACCESS_LOG.splitlines()[2])
    assert entry["error"] == "upstream call failed: connection refused"
    assert entry["duration"] == "3ms"


def test_access_log_skips_other_lines_and_reads_json_format():
    entries = traces.parse_access_log(ACCESS_LOG)
    assert len(entries) == 3
    assert entries[-1]["http.status"] == 404 and "scope" not in entries[-1]
    assert traces.parse_access_log_line("2026\tinfo\tlistening on 8080") is None


def test_collector_log_spans_keep_their_fields_and_attributes():
    spans = traces.parse_collector_log(COLLECTOR_LOG)
    assert [s["span_id"] for s in spans] == ["947515b6316f7931", "1111111111111111", "2222222222222222"]
    server = spans[0]
    assert (server["name"], server["kind"], server["parent_id"]) == (
        "POST /mcp/*",
        "Server",
        "00f067aa0ba902b7",
    )
    assert server["attributes"] == {
        "http.method": "POST",
        "http.status": 200,
        "route": "agentgateway-system/mcp",
    }
    assert spans[1]["attributes"] == {}              # v1.4.1's per-message spans carry none
    assert server["resource"]["service.name"] == "agentgateway-route"
    assert "not.a.span.attribute" not in spans[1]["attributes"]
    assert spans[2]["parent_id"] == ""


def test_spans_frame_orders_by_start_and_computes_durations():
    spans = [s for s in traces.parse_collector_log(COLLECTOR_LOG) if s["trace_id"] == TRACE]
    frame = traces.spans_frame(spans)
    assert list(frame["name"]) == ["POST /mcp/*", "tools/call mcp-target"]
    assert abs(frame["duration_ms"][0] - 4212.999877) < 0.01
    assert frame["http.status"][0] == 200
    assert frame["service"][1] == "agentgateway-route"
    assert "route=agentgateway-system/mcp" in frame["summary"][0]


def test_waterfall_draws_one_bar_per_span_indented_by_depth():
    spans = [s for s in traces.parse_collector_log(COLLECTOR_LOG) if s["trace_id"] == TRACE]
    fig = traces.waterfall(traces.spans_frame(spans), title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 2
    ticks = ax.get_yticklabels()
    by_y = {t.get_position()[1]: t.get_text() for t in ticks}
    # The first span is drawn on top; its child is drawn as a branch under it. Every label has
    # one width in a fixed-width font, so the branch shows as an indent although labels are
    # right-aligned.
    assert [by_y[y].rstrip() for y in sorted(by_y, reverse=True)] == [
        "POST /mcp/* (Server)",
        "└─ tools/call mcp-target (Server)",
    ]
    assert len({len(t.get_text()) for t in ticks}) == 1
    assert all(t.get_fontfamily() == ["monospace"] for t in ticks)


def test_a_request_is_found_in_the_access_log_and_the_collector(sandbox):
    from agwlab import connect, llm
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm", "tracing")
    result = llm.chat(lab, "trace me")
    entry = traces.find_access_log(lab, result.trace_id, timeout=20)
    assert entry["route"] == "agentgateway-system/claude" and entry["http.status"] == "200"
    spans = traces.collector_spans(lab, result.trace_id, min_spans=1, timeout=30)
    # v1.4.1: one Server span for an LLM request, no span for the upstream call
    assert list(spans["kind"]) == ["Server"] and list(spans["name"]) == ["POST /anthropic/*"]
    server = spans.iloc[0]
    assert server["span_id"] == entry["span.id"]
    assert server["parent_id"] == result.parent_span_id  # the gateway continued our traceparent
    assert spans.attrs["trace_id"] == result.trace_id
