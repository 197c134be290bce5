"""Bad fields in an LLM request get the gateway's own 503 text, worded as v1.4.1's serde errors
(never a Python message), through the sandbox's real Gateway."""

from __future__ import annotations

import httpx
import pytest

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
