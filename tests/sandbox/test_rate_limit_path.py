"""Local rate limits on an LLM route, end to end with kubectl, httpx and the OpenAI SDK.

What a client sees follows agentgateway v1.4.1: ``crates/agentgateway/src/http/localratelimit.rs``
(bucket, request and token checks), ``crates/agentgateway/src/proxy/mod.rs`` (429 ``rate limit
exceeded`` as ``text/plain`` with ``x-ratelimit-limit/remaining/reset``, reason ``RateLimit``),
``crates/agentgateway/src/llm/mod.rs`` (``amend_tokens``: token limits count the response's
input and output tokens) and ``controller/pkg/agentgateway/plugins/traffic_plugin.go``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from labtest import NS, poll, poll_object, yaml_docs

GW = "agentgateway-route"


def _route(name: str, prefix: str) -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {NS}}}
spec:
  parentRefs: [{{name: {GW}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
    filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplaceFullPath, replaceFullPath: /v1/chat/completions}}}}}}]
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: anthropic}}]
"""


def _policy(name: str, route: str, rate_limit: str) -> str:
    return f"""apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {{name: {name}, namespace: {NS}}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {route}}}]
  traffic:
    rateLimit: {rate_limit}
"""


def _ask(gateway: str, prefix: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway}{prefix}", json={"messages": [{"role": "user", "content": "hello"}]},
                      headers=headers, timeout=10)


def _until_limited(gateway: str, prefix: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """Requests until the first 429 (the policy may take a moment to reach the proxy)."""
    seen: list[httpx.Response] = []

    def one() -> bool:
        seen.append(_ask(gateway, prefix, headers))
        return seen[-1].status_code == 429
    poll(one, timeout=20, what=f"a 429 on {prefix}", every=0.05)
    return seen


@pytest.fixture(scope="module", autouse=True)
def _cleanup(kubectl) -> Iterator[None]:  # type: ignore[no-untyped-def]
    yield
    # other tests count the routes on this Gateway
    for name in ("rl-requests", "rl-tokens", "rl-clients"):
        kubectl("delete", "httproute,agentgatewaypolicy", name, "-n", NS, "--ignore-not-found")


@pytest.fixture(scope="module")
def limited(kubectl, gateway: str) -> str:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_docs(
        _route("rl-requests", "/rl-requests"),
        _policy("rl-requests", "rl-requests", "{local: [{requests: 3, unit: Minutes}]}")))
    poll(lambda: _ask(gateway, "/rl-requests").status_code in (200, 429), what="the rl-requests route")
    return "/rl-requests"


def test_the_policy_is_accepted_and_attached(kubectl, limited: str) -> None:  # type: ignore[no-untyped-def]
    pol = poll_object(kubectl, "agentgatewaypolicy", "rl-requests", NS,
                      until=lambda p: (p.get("status") or {}).get("ancestors"), what="the policy's status")
    conds = {c["type"]: c["status"] for c in pol["status"]["ancestors"][0]["conditions"]}
    assert conds == {"Accepted": "True", "Attached": "True"}


def test_a_request_limit_answers_429_with_v141_headers(gateway: str, limited: str) -> None:
    seen = _until_limited(gateway, limited)
    r = seen[-1]
    assert r.status_code == 429
    assert r.text == "rate limit exceeded"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-ratelimit-limit"] == "3"
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert 0 <= int(r.headers["x-ratelimit-reset"]) < 60
    # the requests that got through carry no rate-limit headers (v1.4.1 adds them only on refusal)
    assert all("x-ratelimit-limit" not in ok.headers for ok in seen if ok.status_code == 200)


def test_the_openai_sdk_sees_a_rate_limit_error(gateway: str, limited: str) -> None:
    _until_limited(gateway, limited)
    oa = openai.OpenAI(base_url=f"{gateway}{limited}", api_key="unused", max_retries=0)
    with pytest.raises(openai.RateLimitError) as err:
        oa.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 429
    assert err.value.response.headers["x-ratelimit-limit"] == "3"


def test_the_access_log_and_metrics_say_ratelimit(kubectl, gateway: str, limited: str) -> None:  # type: ignore[no-untyped-def]
    _until_limited(gateway, limited)

    def logged() -> str | None:
        lines = kubectl("logs", f"deploy/{GW}", "-n", NS, "--tail=200").splitlines()
        hits = [l for l in lines if "route=agentgateway-system/rl-requests" in l and "http.status=429" in l]
        return hits[-1] if hits else None
    line = poll(logged, what="a 429 access-log line")
    assert 'error="rate limit exceeded" reason=RateLimit duration=' in line
    pod = json.loads(kubectl("get", "pods", "-n", NS, "-l", f"gateway.networking.k8s.io/gateway-name={GW}",
                             "-o", "json"))["items"][0]
    text = httpx.get(f"http://{pod['status']['podIP']}:15020/metrics", timeout=5).text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    limited_samples = [s for s in fams["agentgateway_requests"].samples
                       if s.labels.get("route") == "agentgateway-system/rl-requests" and s.labels["status"] == "429"]
    assert limited_samples and limited_samples[0].labels["reason"] == "RateLimit"
    assert limited_samples[0].labels["backend"] == "agentgateway-system/anthropic"


def test_a_token_limit_lets_one_call_through_then_counts_its_tokens(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_docs(
        _route("rl-tokens", "/rl-tokens"),
        _policy("rl-tokens", "rl-tokens", "{local: [{tokens: 20, unit: Hours}]}")))
    oa = openai.OpenAI(base_url=f"{gateway}/rl-tokens", api_key="unused", max_retries=0)
    first: Any = poll(lambda: oa.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}]),
                      what="the rl-tokens route")
    assert first.usage.total_tokens > 20           # one answer costs more than the whole bucket
    with pytest.raises(openai.RateLimitError) as err:
        oa.chat.completions.create(model="x", messages=[{"role": "user", "content": "again"}])
    headers = err.value.response.headers
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("20", "0")
    assert 3000 < int(headers["x-ratelimit-reset"]) < 3600


def test_conditional_limits_give_each_client_its_own_bucket(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    rate_limit = """
      conditional:
      - condition: 'request.headers["x-client"] == "team-a"'
        policy: {local: [{requests: 2, unit: Minutes}]}
      - policy: {local: [{requests: 5, unit: Minutes}]}"""
    kubectl("apply", "-f", "-", input=yaml_docs(
        _route("rl-clients", "/rl-clients"), _policy("rl-clients", "rl-clients", rate_limit)))
    a = _until_limited(gateway, "/rl-clients", {"x-client": "team-a"})
    assert a[-1].headers["x-ratelimit-limit"] == "2"
    # team-a's bucket is empty; everyone else still has theirs
    other = _ask(gateway, "/rl-clients", {"x-client": "team-b"})
    assert other.status_code == 200
    b = _until_limited(gateway, "/rl-clients", {"x-client": "team-b"})
    assert b[-1].headers["x-ratelimit-limit"] == "5"
    assert len([r for r in b if r.status_code == 200]) + 1 <= 5


def test_a_bad_limit_is_refused_by_the_crd_schema(kubectl) -> None:  # type: ignore[no-untyped-def]
    bad = _policy("rl-bad", "rl-requests", "{local: [{requests: 3, tokens: 5, unit: Minutes}]}")
    with pytest.raises(AssertionError) as err:
        kubectl("apply", "-f", "-", input=bad)
    assert "exactly one of the fields in [requests tokens] must be set" in str(err.value)
