"""The metrics registry and its exposition (reference §3)."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from agwlab.sandbox.proxy.config import GatewayConfig, Listener
from agwlab.sandbox.proxy.context import LLMCall, RequestContext
from agwlab.sandbox.proxy.metrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ProxyMetrics,
    content_type_for,
)


def ctx() -> RequestContext:
    gw = GatewayConfig("ns", "gw", "agentgateway", "127.0.0.1", (Listener("http", 8080),))
    return RequestContext(gateway=gw, listener=gw.listeners[0], method="POST", path="/mcp", host="h",
                          src_addr="127.0.0.1:1", status=200, protocol="mcp")


def test_unset_labels_are_unknown_and_values_add_up() -> None:
    m = ProxyMetrics(tag="1.4.1")
    c = ctx()
    m.record_request(c, response_bytes=10, duration=0.002)
    m.record_request(c, response_bytes=5, duration=0.2)
    m.record_mcp_request(c, method="tools/call", resource_type="tool", server="mcp-target", resource="fetch")
    m.record_mcp_request(c, method="tools/list")
    fams = {f.name: f for f in text_string_to_metric_families(m.exposition())}
    req = fams["agentgateway_requests"].samples
    assert len(req) == 1 and req[0].value == 2
    assert req[0].labels == {"backend": "unknown", "protocol": "mcp", "method": "POST", "status": "200",
                             "reason": "Upstream", "bind": "8080/ns/gw", "gateway": "ns/gw", "listener": "http",
                             "route": "unknown", "route_rule": "unknown"}
    assert fams["agentgateway_response_bytes"].samples[0].value == 15
    mcp = {s.labels["method"]: s.labels for s in fams["agentgateway_mcp_requests"].samples}
    assert mcp["tools/list"]["server"] == "unknown" and mcp["tools/call"]["resource"] == "fetch"
    buckets = {s.labels["le"]: s.value for s in fams["agentgateway_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 0 and buckets["0.005"] == 1 and buckets["+Inf"] == 2


def test_text_layout_matches_agentgateways_encoder() -> None:
    m = ProxyMetrics(tag="1.4.1")
    c = ctx()
    m.record_gen_ai(c, LLMCall("anthropic", "a", "a", {"input": 33, "output": 156}, first_token_at=c.started + 0.3),
                    duration=4.2)
    text = m.exposition()
    assert text.endswith("# EOF\n") and "_created" not in text
    assert "# TYPE agentgateway_build info\nagentgateway_build_info{tag=\"1.4.1\"} 1\n" in text
    assert "# TYPE agentgateway_requests counter\n" in text
    assert "# UNIT agentgateway_request_duration_seconds seconds\n" in text
    assert 'agentgateway_gen_ai_client_token_usage_bucket{le="64.0",gen_ai_token_type="input",' in text
    assert 'agentgateway_gen_ai_client_token_usage_sum{gen_ai_token_type="output",gen_ai_operation_name="chat",' \
           'gen_ai_system="anthropic",gen_ai_request_model="a",gen_ai_response_model="a",bind="8080/ns/gw",' \
           'gateway="ns/gw",listener="http",route="unknown",route_rule="unknown"} 156.0\n' in text
    assert "agentgateway_gen_ai_server_time_to_first_token_count{" in text
    assert "agentgateway_gen_ai_server_time_per_output_token_count{" in text
    # histograms: _sum, _count, then the buckets (the Rust encoder's order)
    block = text[text.index("# TYPE agentgateway_gen_ai_server_request_duration histogram"):]
    lines = block.splitlines()[1:4]
    assert lines[0].startswith("agentgateway_gen_ai_server_request_duration_sum{")
    assert lines[1].startswith("agentgateway_gen_ai_server_request_duration_count{")
    assert lines[2].startswith('agentgateway_gen_ai_server_request_duration_bucket{le="0.01",')


V141_FAMILIES = [
    "build", "gen_ai_client_token_usage", "gen_ai_client_cost_usd", "gen_ai_server_request_duration",
    "gen_ai_server_time_per_output_token", "gen_ai_server_time_to_first_token", "requests", "guardrail_checks",
    "cost_catalog_lookups", "downstream_connections", "mcp_requests", "response_bytes", "request_duration_seconds",
    "request_processing_seconds", "response_processing_seconds", "downstream_received_bytes",
    "downstream_sent_bytes", "upstream_connect_duration_seconds", "upstream_call_duration_seconds",
    "tls_handshake_duration_seconds", "retries",
]


def test_the_21_v141_families_print_help_and_type_in_order_even_when_empty() -> None:
    text = ProxyMetrics(tag="1.4.1").exposition()
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert types == ["agentgateway_" + name for name in V141_FAMILIES]
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    assert len(helps) == 21 and all(h.endswith(".") for h in helps)
    assert "# UNIT agentgateway_gen_ai_client_cost_usd usd" in text


def test_upstream_call_and_processing_times_are_recorded() -> None:
    m = ProxyMetrics(tag="1.4.1")
    c = ctx()
    c.outbound_subtype, c.request_processing, c.upstream_duration = "Llm", 0.0002, 0.3
    c.response_started, c.response_headers_at = 10.0, 10.001
    m.record_outbound(c)
    fams = {f.name: f for f in text_string_to_metric_families(m.exposition())}
    call = [s for s in fams["agentgateway_upstream_call_duration_seconds"].samples if s.name.endswith("_count")]
    assert call[0].labels == {"kind": "Primary", "subtype": "Llm"} and call[0].value == 1
    proc = [s for s in fams["agentgateway_request_processing_seconds"].samples if s.name.endswith("_count")]
    assert proc[0].labels["backend"] == "unknown" and proc[0].labels["gateway"] == "ns/gw"
    assert [s for s in fams["agentgateway_response_processing_seconds"].samples if s.name.endswith("_count")]


def test_content_type_negotiation() -> None:
    assert content_type_for(None) == TEXT_CONTENT_TYPE == "text/plain;charset=utf-8"
    assert content_type_for("*/*") == TEXT_CONTENT_TYPE
    assert content_type_for("application/openmetrics-text;version=1.0.0,text/plain;q=0.5") == OPENMETRICS_CONTENT_TYPE


def test_each_scrape_shows_every_change_since_the_last() -> None:
    # the text of an unchanged family is reused between scrapes; a change must never be missed
    m = ProxyMetrics(tag="1.4.1")
    c = ctx()
    m.record_request(c, response_bytes=10, duration=0.002)
    first = m.exposition()
    assert m.exposition() == first
    m.record_request(c, response_bytes=5, duration=0.2)
    m.record_mcp_request(c, method="tools/list")
    fams = {f.name: f for f in text_string_to_metric_families(m.exposition())}
    assert fams["agentgateway_requests"].samples[0].value == 2
    assert fams["agentgateway_response_bytes"].samples[0].value == 15
    assert [s.labels["method"] for s in fams["agentgateway_mcp_requests"].samples] == ["tools/list"]
    fresh = ProxyMetrics(tag="1.4.1")  # rendered from scratch, the same text
    fresh.record_request(c, response_bytes=10, duration=0.002)
    fresh.record_request(c, response_bytes=5, duration=0.2)
    fresh.record_mcp_request(c, method="tools/list")
    assert fresh.exposition() == m.exposition()
