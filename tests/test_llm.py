"""Chat requests through the sandbox's Gateway: answers, streaming, errors as the gateway returns them."""

from __future__ import annotations

import re

import pytest

from agwlab import connect, kube, llm, manifests, models
from agwlab.stages import prepare


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    lab = connect()
    prepare(lab, "llm")
    return lab


def test_traceparent_is_fresh_and_sampled():
    header, trace_id, span_id = llm.new_traceparent()
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", header)
    assert header == f"00-{trace_id}-{span_id}-01"
    assert llm.new_traceparent()[1] != trace_id


def test_chat_returns_answer_tokens_model_and_trace(lab):
    result = llm.chat(lab, "What is a listener?", system="Be brief.")
    assert result.ok and result.status == 200
    assert result.answer
    # catch-up keeps the model the backend already pins (earlier tests may have pinned the seed's)
    assert result.model == (models.backend_model(lab) or manifests.DEFAULT_MODEL)
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.total_tokens == result.input_tokens + result.output_tokens
    assert len(result.trace_id) == 32 and result.latency_ms > 0
    assert "trace id" in str(result) and result.trace_id in result._repr_html_()


def test_streamed_chat_collects_chunks_and_usage(lab):
    result = llm.chat(lab, "Count to three.", stream=True)
    assert result.ok and result.streamed
    assert result.chunks > 1 and result.first_token_ms is not None
    assert result.answer and result.output_tokens > 0
    assert "data:" in result.body


def test_unrouted_path_gets_the_gateways_404(lab):
    result = llm.send_chat(lab.gateway_url("/nowhere"), "hi")
    assert (result.status, result.error) == (404, "route not found")
    assert "HTTPRoute" in result.hint and not result.ok


def test_wrong_key_gives_claudes_401_in_openai_shape_then_recovers(lab):
    kube.apply(lab, manifests.anthropic_secret("not-a-valid-key"), quiet=True)
    try:
        refused = llm.wait_for_status(lab, 401, timeout=30)
        assert refused.body.startswith('{"event_id":null,"error":{"type":"invalid_request_error"')
        assert "API key" in refused.hint
    finally:
        kube.apply(lab, manifests.anthropic_secret(lab.api_key()), quiet=True)
    assert llm.wait_for_status(lab, 200, timeout=30).ok


def test_unreachable_gateway_is_a_result_with_a_hint():
    result = llm.send_chat("http://127.0.0.1:9/anthropic", "hi", timeout=2)
    assert result.status == 0 and "ConnectError" in result.error
    assert "port-forward" in result.hint


def test_v141s_two_kinds_of_503_get_their_own_hints():
    # v1.4.1 answers 503 both for a body it cannot process and for an upstream it cannot reach
    processing = llm.hint_for(503, "processing failed: missing field: model not specified")
    assert "chat-completions body" in processing and "egress" not in processing
    unreachable = llm.hint_for(503, "upstream call failed: Connection refused (os error 111)")
    assert "egress" in unreachable
