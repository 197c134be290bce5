"""The Anthropic Messages API stand-in, driven by the official ``anthropic`` SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from agwlab.sandbox.runtime import PodContext, WorkloadFailed
from agwlab.sandbox.workloads.anthropic_standin import AnthropicStandinWorkload, count_tokens, mask_key
from harness import LoopThread, free_port, make_pod

IP = "127.78.1.9"
KEY = "sk-ant-api03-" + "k" * 30 + "wxyz"


def pod(tmp: Path, name: str, port: int) -> PodContext:
    return make_pod(tmp, name, IP, namespace="agwlab-system", image="agwlab.local/anthropic-standin:latest",
                    env={"STREAM_DELAY_MS": "0"}, ports=[{"containerPort": port, "name": "https"}])


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("standin")
    port = free_port(IP)
    loop, workload, p = LoopThread(), AnthropicStandinWorkload(), pod(tmp, "anthropic-standin", port)
    loop.run(workload.start(p))
    yield {"url": f"http://{IP}:{port}", "port": port, "log": p.log.path, "loop": loop, "tmp": tmp}
    loop.run(workload.stop())
    loop.close()


def client(standin: dict[str, Any], key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=standin["url"], max_retries=0, timeout=10)


ASK = [{"role": "user", "content": "How does agentgateway route LLM traffic?"}]


def test_messages_answer_is_deterministic_and_consistent(standin: dict[str, Any]) -> None:
    c = client(standin)
    first = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ASK)  # type: ignore[arg-type]
    second = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ASK)  # type: ignore[arg-type]
    other = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024,
                              messages=[{"role": "user", "content": "Something else entirely"}])
    text = first.content[0].text  # type: ignore[union-attr]
    assert first.model == "claude-sonnet-4-6" and first.id.startswith("msg_") and first.id != second.id
    assert text == second.content[0].text != other.content[0].text  # type: ignore[union-attr]
    assert text.startswith("(agwlab sandbox model claude-sonnet-4-6)")
    assert "How does agentgateway route LLM traffic?" in text
    assert first.stop_reason == "end_turn"
    assert "gateway" in text and "Istio" not in text
    mesh = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024,  # type: ignore[arg-type]
                             messages=[{"role": "user", "content": "Write me a paragraph about Istio Ambient Mesh"}])
    assert "ztunnel" in mesh.content[0].text  # type: ignore[union-attr]
    assert first.usage.output_tokens == count_tokens(text)
    assert first.usage.input_tokens > count_tokens(ASK[0]["content"])
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens == 0


def test_max_tokens_truncates_and_stop_sequences_stop(standin: dict[str, Any]) -> None:
    c = client(standin)
    full = c.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=ASK).content[0].text  # type: ignore[union-attr,arg-type]
    short = c.messages.create(model="claude-haiku-4-5", max_tokens=6, messages=ASK)  # type: ignore[arg-type]
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 6
    assert full.startswith(short.content[0].text)  # type: ignore[union-attr]
    stopped = c.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=ASK,  # type: ignore[arg-type]
                                stop_sequences=["You asked"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "You asked"
    assert "You asked" not in stopped.content[0].text  # type: ignore[union-attr]


def test_streaming_events_follow_anthropics_order(standin: dict[str, Any]) -> None:
    c = client(standin)
    plain = c.messages.create(model="claude-opus-4-1", max_tokens=1024, messages=ASK)  # type: ignore[arg-type]
    with c.messages.stream(model="claude-opus-4-1", max_tokens=1024, messages=ASK) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens and final.stop_reason == "end_turn"
    with httpx.stream("POST", f"{standin['url']}/v1/messages", json={
            "model": "claude-opus-4-1", "max_tokens": 100, "stream": True, "messages": ASK},
            headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}) as r:
        events = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert set(events[3:-3]) == {"content_block_delta"} and len(events) > 6
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_errors_have_anthropics_shapes(standin: dict[str, Any]) -> None:
    for key in ("", "sk-wrong-shape", "not-a-key-at-all"):
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client(standin, key or "x").messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=ASK)  # type: ignore[arg-type]
        body = caught.value.response.json()
        assert body["type"] == "error" and body["error"] == {"type": "authentication_error",
                                                              "message": "invalid x-api-key"}
        assert body["request_id"].startswith("req_")
    with pytest.raises(anthropic.NotFoundError) as nf:
        client(standin).messages.create(model="claude-nonexistent-9", max_tokens=10, messages=ASK)  # type: ignore[arg-type]
    assert nf.value.response.json()["error"] == {"type": "not_found_error", "message": "model: claude-nonexistent-9"}
    r = httpx.post(f"{standin['url']}/v1/messages", json={"model": "claude-sonnet-4-6", "messages": ASK},
                   headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    r = httpx.post(f"{standin['url']}/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 5,
                                                          "messages": ASK}, headers={"x-api-key": KEY})
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]


def test_the_key_never_reaches_the_log(standin: dict[str, Any]) -> None:
    client(standin).messages.create(model="claude-3-5-haiku-latest", max_tokens=5, messages=ASK)  # type: ignore[arg-type]
    log = standin["log"].read_text()
    assert KEY not in log and KEY[:20] not in log
    assert mask_key(KEY) in log and mask_key(KEY) == "sk-ant-…wxyz"
    assert "serving the Messages API" in log


def test_models_and_token_count(standin: dict[str, Any]) -> None:
    ids = [m.id for m in client(standin).models.list()]
    assert "claude-sonnet-4-6" in ids and "claude-sonnet-4-5-20250929" in ids and "claude-haiku-4-5-20251001" in ids
    counted = client(standin).messages.count_tokens(model="claude-sonnet-4-6", messages=ASK)  # type: ignore[arg-type]
    made = client(standin).messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=ASK)  # type: ignore[arg-type]
    assert counted.input_tokens == made.usage.input_tokens


def test_a_taken_port_fails_the_workload(standin: dict[str, Any]) -> None:
    with pytest.raises(WorkloadFailed, match="cannot listen"):
        standin["loop"].run(AnthropicStandinWorkload().start(pod(standin["tmp"], "second", standin["port"])))
