"""Prometheus panels over the sandbox's real Prometheus: names and labels first, 'no data' explained."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from agwlab import connect, llm, mcp, metrics
from agwlab.stages import prepare
from labtest import poll


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    lab = connect()
    prepare(lab, "llm", "mcp")
    llm.chat(lab, "count me", max_tokens=50)
    with mcp.initialize(lab.gateway_url("/mcp")) as session:
        session.call_tool("fetch", {"url": "http://lab-website.agwlab-system.svc.cluster.local/"})
    metrics.wait_for_metric(lab, "agentgateway_mcp_requests_total", match='{method="tools/call"}', timeout=30)
    metrics.wait_for_metric(lab, "agentgateway_gen_ai_client_token_usage_sum", timeout=30)
    return lab


def test_names_and_labels_are_discovered(lab):
    names = metrics.metric_names(lab)
    assert "agentgateway_requests_total" in names and all(n.startswith("agentgateway_") for n in names)
    labels = metrics.label_names(lab, "agentgateway_mcp_requests_total")
    assert {"method", "resource", "server", "route"} <= set(labels) and "__name__" not in labels


def test_mcp_panels_count_methods_and_tools(lab):
    by_method = metrics.mcp_requests_by_method(lab)
    assert not by_method.empty and by_method.note == ""
    counts = dict(zip(by_method.frame["method"], by_method.frame["value"], strict=True))
    assert counts["tools/call"] >= 1 and counts["initialize"] >= 1
    by_tool = metrics.tool_calls_by_tool(lab)
    assert ("mcp-target", "fetch") in set(zip(by_tool.frame["server"], by_tool.frame["resource"], strict=True))
    fig = by_tool.plot()
    assert len(fig.axes[0].patches) == len(by_tool.frame)


def test_token_usage_and_latency(lab):
    tokens = metrics.token_usage(lab)
    types = set(tokens.frame["gen_ai_token_type"])
    assert {"input", "output"} <= types
    latency = metrics.latency_percentiles(lab, quantiles=(0.5, 0.99))
    assert set(latency.frame["quantile"]) == {"p50", "p99"}
    assert (latency.frame["value"] > 0).all()
    assert latency.plot() is not None


def test_request_rate_is_a_time_series(lab):
    panel = metrics.request_rate(lab, minutes=5, step="2s")
    # A rate needs two scrapes after the first request.
    panel = poll(lambda: (lambda p: None if p.empty else p)(metrics.request_rate(lab, minutes=5, step="2s")),
                 timeout=20, what="a request rate with data points", every=1)
    assert list(panel.frame.columns) == ["time", "series", "value"]
    assert str(panel.frame["time"].dt.tz) == "UTC"
    assert panel.plot() is not None


def test_no_data_is_explained(lab):
    reason = metrics.explain_no_data(lab, "agentgateway_tool_calls_total")
    assert "no samples yet" in reason and "traffic" in reason
    panel = metrics._instant_panel(
        lab, "t", "agentgateway_requests_total", "sum by (nope) (agentgateway_requests_total)", ["nope"]
    )
    assert panel.empty and "no label nope" in panel.note
    assert "No data" in panel._repr_html_() and panel.plot() is None


def test_unreachable_prometheus_is_explained():
    assert "does not answer" in metrics.explain_no_data("http://127.0.0.1:9", "x")
