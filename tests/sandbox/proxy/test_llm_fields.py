"""Bad fields in an LLM request get the gateway's own 503 text, worded as v1.4.1's serde errors
(never a Python message), through the sandbox's real Gateway."""

from __future__ import annotations

import httpx
import pytest

from labtest import NS, anthropic_backend_yaml, http_route_yaml, poll, yaml_docs

MSG = '"messages":[{"role":"user","content":"hi"}]'


@pytest.mark.parametrize(("body", "text"), [
    ('{' + MSG + ',"max_tokens":"abc"}',
     'failed to parse request: invalid type: string "abc", expected u32 at line 1 column 63'),
    ('{' + MSG + ',"max_tokens":-5}',
     "failed to parse request: invalid value: integer `-5`, expected u32 at line 1 column 60"),
    ('{' + MSG + ',\n"temperature":"hot"}',
     'failed to parse request: invalid type: string "hot", expected f32 at line 2 column 19'),
    ('{' + MSG + ',"stream":"yes"}',
     'failed to parse request: invalid type: string "yes", expected a boolean at line 1 column 59'),
    ('{"messages":"hi"}',
     'failed to parse request: invalid type: string "hi", expected a sequence at line 1 column 16'),
    ('{' + MSG + ',"stop":5}',
     "failed to marshal request: data did not match any variant of untagged enum StopConfiguration"),
    ('{' + MSG + ',"n":"2"}', 'failed to marshal request: invalid type: string "2", expected u8'),
])
def test_bad_fields_get_the_gateways_text(gateway: str, body: str, text: str) -> None:
    resp = httpx.post(f"{gateway}/anthropic", content=body, headers={"content-type": "application/json"},
                      timeout=10)
    assert (resp.status_code, resp.text) == (503, f"processing failed: {text}")
    assert resp.headers["content-type"].startswith("text/plain")


def test_good_fields_still_work(gateway: str) -> None:
    body = '{' + MSG + ',"max_tokens":5,"temperature":0.5,"stop":["x"],"n":1,"stream":false}'
    resp = httpx.post(f"{gateway}/anthropic", content=body, headers={"content-type": "application/json"},
                      timeout=20)
    assert resp.status_code == 200, resp.text


def test_a_key_sent_as_the_model_is_masked_in_answers_and_logs(gateway: str, kubectl) -> None:  # type: ignore[no-untyped-def]
    pasted = "sk-ant-api03-" + "P" * 90 + "wxyz"
    kubectl("apply", "-f", "-", input=yaml_docs(
        anthropic_backend_yaml("unpinned", NS, "anthropic-secret"),
        http_route_yaml("unpinned", NS, "agentgateway-route", prefix="/unpinned", backend="unpinned")))

    def answer() -> httpx.Response | None:
        resp = httpx.post(f"{gateway}/unpinned", json={"model": pasted, "messages": [{"role": "user", "content": "hi"}]},
                          timeout=10)
        return resp if resp.status_code != 404 or "model" in resp.text else None  # the route is live

    resp = poll(answer, what="the unpinned route")
    assert pasted not in resp.text and "sk-ant-…wxyz" in resp.text, resp.text
    logs = poll(lambda: (lambda t: t if "/unpinned" in t else None)(
        kubectl("logs", "deploy/agentgateway-route", "-n", NS)), what="the access log line")
    assert pasted not in logs and "sk-ant-…wxyz" in logs
    kubectl("delete", "httproute/unpinned", "agbe/unpinned", "-n", NS)
