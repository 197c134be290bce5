"""The agent loop through the sandbox's gateway, with the real openai and mcp SDKs: one trace per
run, the gateway's metrics counting exactly what the run sent, tool errors and the step limit."""

from __future__ import annotations

from typing import Any

import pytest

from agwlab import agent
from agwlab.errors import LabError

SITE = "http://lab-website.agwlab-system.svc.cluster.local/"


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    from agwlab import connect
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm", "tracing", "mcp")
    return lab


def test_the_tools_as_the_model_sees_them(lab: Any) -> None:
    (fetch,) = agent.list_tools(lab)
    assert fetch["type"] == "function" and fetch["function"]["name"] == "fetch"
    assert fetch["function"]["parameters"]["required"] == ["url"]
    assert fetch["function"]["parameters"]["properties"]["url"]["type"] == "string"


def test_a_run_fetches_and_summarises_in_one_trace_counted_exactly(lab: Any) -> None:
    before = agent.gateway_counts(lab)
    run = agent.run(lab, f"Summarise {SITE} in a few sentences.")
    assert run.stopped == "answer" and run.ok
    assert [s.kind for s in run.steps] == ["model", "tool", "model"]
    first, fetched, last = run.steps
    assert first.finish_reason == "tool_calls" and first.tool_calls[0][1:] == ("fetch", {"url": SITE})
    assert fetched.arguments == {"url": SITE} and not fetched.is_error and fetched.result_chars > 500
    assert last.finish_reason == "stop" and last.messages == 3 and last.input_tokens > first.input_tokens
    assert 'Its title is "agwlab: a hands-on lab for agentgateway"' in run.answer
    assert run.input_tokens == first.input_tokens + last.input_tokens
    # every request of the run is in the access log with the run's one trace id, and nothing else is
    lines = agent.access_log(lab, run)
    assert len(lines) == len(run.requests) >= 7
    assert sorted(f"{e['http.method']} {e['http.path']}" for e in lines) == sorted(
        " ".join(r.split()[:2]) for r in run.requests
    )
    assert {e["route"] for e in lines} == {"agentgateway-system/claude", "agentgateway-system/mcp-route"}
    # ... and the collector has each of their spans in that trace
    frame = agent.spans(lab, run)
    assert {e["span.id"] for e in lines} <= set(frame["span_id"])
    assert frame.attrs["trace_id"] == run.trace_id
    # the gateway's metrics count exactly what the run sent: MCP messages by method, tokens, calls
    counted = agent.wait_for_counts(lab, run, before)
    assert counted.mcp_requests == {
        "initialize": 1,
        "notifications/initialized": 1,
        "tools/list": 1,
        "tools/call": 1,
    }
    assert counted.tool_calls == {"fetch": 1}
    assert (counted.llm_requests, counted.input_tokens, counted.output_tokens) == (
        2,
        run.input_tokens,
        run.output_tokens,
    )
    assert (agent.compare_counts(run, counted)["same"] == "✅").all()
    text = run.transcript()
    assert f"trace {run.trace_id}" in text and 'fetch({"url": "' + SITE + '"}) -> 1' in text
    assert "<table>" in run._repr_html_()


def test_a_tool_error_goes_back_to_the_model_and_the_answer_says_so(lab: Any) -> None:
    run = agent.run(lab, "Summarise http://127.0.0.1:9/ please.")
    assert run.stopped == "answer"
    tool = run.tool_steps[0]
    assert tool.is_error and tool.text.startswith("Error fetching http://127.0.0.1:9/")
    assert "reported an error" in run.answer and "could not connect" in run.answer


def test_the_step_limit_stops_a_model_that_keeps_calling_tools(lab: Any) -> None:
    run = agent.run(lab, f"Summarise {SITE}", tool_choice="required", max_steps=3)
    assert run.stopped == "step_limit" and run.answer == "" and not run.ok
    assert len(run.model_steps) == 3 and len(run.tool_steps) == 2  # the third call is not executed
    assert all(s.finish_reason == "tool_calls" for s in run.model_steps)
    assert "stopped at the step limit (3 model calls)" in run.transcript()


def test_bad_arguments_are_refused_before_anything_is_sent(lab: Any) -> None:
    with pytest.raises(LabError, match="max_steps must be at least 1"):
        agent.run(lab, "hi", max_steps=0)
    with pytest.raises(LabError, match="the question is empty"):
        agent.run(lab, "   ")
