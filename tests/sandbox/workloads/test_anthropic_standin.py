"""The Anthropic Messages API stand-in, driven by the official ``anthropic`` SDK."""

from __future__ import annotations

import json
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


# --- tools, thinking and the models list ---------------------------------------------------

FETCH = {"name": "fetch", "description": "Fetches a website and returns its content",
         "input_schema": {"type": "object", "required": ["url"],
                          "properties": {"url": {"type": "string", "description": "URL to fetch"}}}}
SEARCH = {"name": "search_docs", "description": "Searches the documentation",
          "input_schema": {"type": "object", "required": ["query", "limit"],
                           "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 3},
                                          "lang": {"type": "string", "enum": ["en", "de"]}}}}
SITE = "http://lab-website.agwlab-system.svc.cluster.local/"
PAGE = ("<html><head><title>A small page</title><style>p {color: red}</style></head><body><nav>Home</nav>"
        "<h1>A small page</h1><p>It explains <code>gateways</code>. And routes.</p><h2>More</h2></body></html>")


def _blocks_of(message: Any) -> list[dict[str, Any]]:
    return [b.model_dump(exclude_none=True) for b in message.content]


def test_a_question_with_a_url_gets_a_tool_call_that_fits_the_schema(standin: dict[str, Any]) -> None:
    c = client(standin)
    ask = [{"role": "user", "content": f"Please summarise {SITE} for me."}]
    msg = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ask, tools=[SEARCH, FETCH])  # type: ignore[arg-type,list-item]
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use"]   # auto: a sentence, then the call
    call = msg.content[1]
    assert call.name == "fetch" and call.input == {"url": SITE} and call.id.startswith("toolu_01")  # type: ignore[union-attr]
    # no URL and no tool named: a plain answer, tools or not
    plain = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ASK, tools=[FETCH])  # type: ignore[arg-type,list-item]
    assert plain.stop_reason == "end_turn" and [b.type for b in plain.content] == ["text"]
    # tool_choice none: never
    none = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ask, tools=[FETCH],  # type: ignore[arg-type,list-item]
                             tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn"
    # two URLs: two calls in one turn, one with disable_parallel_tool_use
    two = [{"role": "user", "content": "Compare https://a.example/x and https://b.example/y."}]
    both = c.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=two, tools=[FETCH])  # type: ignore[arg-type,list-item]
    assert [b.input for b in both.content if b.type == "tool_use"] == [{"url": "https://a.example/x"},  # type: ignore[union-attr]
                                                                        {"url": "https://b.example/y"}]
    one = c.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=two, tools=[FETCH],  # type: ignore[arg-type,list-item]
                            tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert len([b for b in one.content if b.type == "tool_use"]) == 1


def test_a_forced_tool_choice_calls_at_once_with_arguments_from_the_schema(standin: dict[str, Any]) -> None:
    c = client(standin)
    msg = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ASK, tools=[FETCH, SEARCH],  # type: ignore[arg-type,list-item]
                            tool_choice={"type": "tool", "name": "search_docs"})
    assert msg.stop_reason == "tool_use" and [b.type for b in msg.content] == ["tool_use"]
    assert msg.content[0].input == {"query": ASK[0]["content"], "limit": 3}  # optional "lang" left out  # type: ignore[union-attr]
    forced = c.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=ASK, tools=[FETCH],  # type: ignore[arg-type,list-item]
                               tool_choice={"type": "any"})
    assert forced.stop_reason == "tool_use" and isinstance(forced.content[0].input["url"], str)  # type: ignore[union-attr,index]
    assert forced.usage.output_tokens > 0


def _after(c: anthropic.Anthropic, result: str | list[dict[str, Any]], **extra: Any) -> Any:
    ask = [{"role": "user", "content": f"Please summarise {SITE} for me."}]
    first = c.messages.create(model="claude-sonnet-4-6", max_tokens=2048, messages=ask, tools=[FETCH])  # type: ignore[arg-type,list-item]
    call = next(b for b in first.content if b.type == "tool_use")
    convo = [*ask, {"role": "assistant", "content": _blocks_of(first)},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result,  # type: ignore[union-attr]
                                           **extra}]}]
    return c.messages.create(model="claude-sonnet-4-6", max_tokens=2048, messages=convo, tools=[FETCH]), convo  # type: ignore[arg-type]


def test_tool_results_are_what_the_answer_is_made_of(standin: dict[str, Any]) -> None:
    c = client(standin)
    answer, convo = _after(c, PAGE)
    text = answer.content[0].text
    assert answer.stop_reason == "end_turn" and len(answer.content) == 1
    assert f"I read {SITE} with the fetch tool ({len(PAGE)} characters)" in text
    assert 'Its title is "A small page"' in text and "It explains gateways. And routes." in text
    assert "color: red" not in text and "Home" not in text
    assert answer.usage.input_tokens > count_tokens(PAGE)
    blocks, _ = _after(c, [{"type": "text", "text": "plain words, no markup"}])
    assert "The fetch tool returned 22 characters" in blocks.content[0].text and "plain words" in blocks.content[0].text
    # forced tool use keeps calling, even with the result in hand
    again = c.messages.create(model="claude-sonnet-4-6", max_tokens=2048, messages=convo, tools=[FETCH],  # type: ignore[arg-type,list-item]
                              tool_choice={"type": "any"})
    assert again.stop_reason == "tool_use" and again.content[0].input == {"url": SITE}  # type: ignore[union-attr]


def test_a_tool_error_is_said_plainly(standin: dict[str, Any]) -> None:
    c = client(standin)
    flagged, _ = _after(c, "connection refused by 10.0.0.1", is_error=True)
    assert "The fetch tool reported an error" in flagged.content[0].text
    assert "connection refused by 10.0.0.1" in flagged.content[0].text
    # through OpenAI's tool message there is no is_error: a result that starts with "Error" is one
    unflagged, _ = _after(c, "Error fetching http://nowhere.invalid/: could not connect")
    assert "reported an error" in unflagged.content[0].text and "could not connect" in unflagged.content[0].text


def test_thinking_comes_first_and_streams_as_anthropic_streams_it(standin: dict[str, Any]) -> None:
    c = client(standin)
    ask = [{"role": "user", "content": f"What is on {SITE}?"}]
    kw: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 4096, "messages": ask, "tools": [FETCH],
                          "thinking": {"type": "enabled", "budget_tokens": 2048}}
    msg = c.messages.create(**kw)
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert f'I will call fetch with {{"url": "{SITE}"}}' in msg.content[0].thinking  # type: ignore[union-attr]
    assert msg.content[0].signature  # type: ignore[union-attr]
    with c.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    assert _blocks_of(final)[0] == _blocks_of(msg)[0] and final.content[2].input == {"url": SITE}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == msg.usage.output_tokens
    with httpx.stream("POST", f"{standin['url']}/v1/messages", json={**kw, "stream": True},
                      headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    deltas = [(e["index"], e["delta"]["type"]) for e in events if e["type"] == "content_block_delta"]
    assert deltas[0] == (0, "thinking_delta") and (0, "signature_delta") in deltas
    tool_deltas = [e["delta"]["partial_json"] for e in events
                   if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"]
    assert tool_deltas[0] == "" and len(tool_deltas) > 2 and json.loads("".join(tool_deltas)) == {"url": SITE}
    start = next(e for e in events if e["type"] == "content_block_start" and e["index"] == 2)
    assert start["content_block"]["input"] == {} and start["content_block"]["name"] == "fetch"


def test_bad_tool_requests_get_the_apis_errors(standin: dict[str, Any]) -> None:
    c = client(standin)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tools": [{"name": "has space", "input_schema": {"type": "object"}}]}, "String should match pattern"),
        ({"tools": [{"name": "x"}]}, "tools.0.custom.input_schema: Field required"),
        ({"tools": [FETCH], "tool_choice": {"type": "tool", "name": "nope"}}, "Tool 'nope' not found"),
        ({"tool_choice": {"type": "any"}}, "tool_choice may only be specified while providing tools"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048},
         "`max_tokens` must be greater than `thinking.budget_tokens`"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "tools": [FETCH], "tool_choice": {"type": "any"}},
         "Thinking may not be enabled when tool_choice forces tool use"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {}}]},
                       {"role": "user", "content": "and?"}]}, "`tool_use` ids were found without `tool_result`"),
        ({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]}, "unexpected `tool_use_id`"),
    ]
    for extra, message in cases:
        body = {"model": "claude-sonnet-4-6", "max_tokens": 4096, "messages": ASK, **extra}
        with pytest.raises(anthropic.BadRequestError) as caught:
            c.messages.create(**body)
        assert message in caught.value.response.json()["error"]["message"], (extra, caught.value)


def test_models_page_like_anthropics_api(standin: dict[str, Any]) -> None:
    from agwlab.sandbox.workloads.anthropic_standin import MODELS

    c = client(standin)
    first = c.models.list(limit=3)
    assert [m.id for m in first.data] == list(MODELS)[:3] and first.has_more and first.last_id == list(MODELS)[2]
    assert first.data[1].display_name == "Claude Sonnet 4.6" and first.data[0].type == "model"
    assert [m.id for m in c.models.list(limit=1000)] == list(MODELS)  # all pages, in order
    dates = [m.created_at for m in c.models.list(limit=1000)]
    assert dates == sorted(dates, reverse=True)                        # newest first
    nxt = c.models.list(limit=3, after_id=first.last_id)
    assert [m.id for m in nxt.data] == list(MODELS)[3:6]
    back = c.models.list(limit=2, before_id=nxt.first_id)
    assert [m.id for m in back.data] == list(MODELS)[1:3] and back.has_more
    one = c.models.retrieve("claude-sonnet-4-5")                        # an alias resolves to the dated id
    assert one.id == "claude-sonnet-4-5-20250929" and one.created_at.isoformat().startswith("2025-09-29")
    with pytest.raises(anthropic.NotFoundError):
        c.models.retrieve("claude-nonexistent-9")
    with pytest.raises(anthropic.BadRequestError):
        c.models.list(limit=0)


def test_an_outage_fails_one_model_with_anthropics_errors_until_it_ends(standin: dict[str, Any]) -> None:
    admin = f"{standin['url']}/agwlab/outage"
    sonnet, haiku = client(standin), client(standin)
    try:
        r = httpx.post(admin, json={"model": "claude-sonnet-4-5-20250929", "status": 529, "seconds": 30}, timeout=5)
        assert r.status_code == 200 and r.json()["outages"][0]["status"] == 529
        with pytest.raises(anthropic.InternalServerError) as err:
            sonnet.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=20, messages=ASK)
        assert err.value.status_code == 529
        assert err.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
        # another model is not affected
        assert haiku.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=ASK).content
        httpx.post(admin, json={"model": "*", "status": 429, "seconds": 30}, timeout=5)
        with pytest.raises(anthropic.RateLimitError) as limited:
            haiku.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=ASK)
        assert limited.value.response.headers["retry-after"] == "10"
        bad = httpx.post(admin, json={"status": 418, "seconds": 5}, timeout=5)
        assert bad.status_code == 400 and "429, 500, 529" in bad.json()["error"]
    finally:
        assert httpx.delete(admin, timeout=5).json() == {"outages": []}
    assert sonnet.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=20, messages=ASK).content
