"""Priority groups, eviction and retries on an LLM route, end to end with kubectl and the OpenAI SDK.

Behaviour follows agentgateway v1.4.1: ``crates/agentgateway/src/types/loadbalancer.rs`` (the
first group with a provider not evicted serves), ``crates/agentgateway/src/http/health.rs``
(``eviction_decision``: duration times evictions in a row), ``telemetry/log.rs``
(``eviction_unhealthy``), ``proxy/httpproxy.rs`` (retries: ``should_retry``, ``x-retry-attempt``,
``llm_retry_evicts_failed_priority_group_before_next_attempt``) and the controller's
``plugins/backend_policies.go`` / ``traffic_plugin.go`` (``processRetriesPolicy``).
The first provider is made to fail with the Claude stand-in's outage control.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from labtest import NS, poll, yaml_docs

GW = "agentgateway-route"
PRIMARY, BACKUP = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
OUTAGE = "/api/v1/namespaces/agwlab-system/services/anthropic-standin:443/proxy/agwlab/outage"

BACKEND = f"""apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: failover, namespace: {NS}}}
spec:
  ai:
    groups:
    - providers:
      - name: primary
        anthropic: {{model: {PRIMARY}}}
        policies:
          health:
            unhealthyCondition: "response.code >= 500"
            eviction: {{duration: 5s}}
    - providers:
      - name: backup
        anthropic: {{model: {BACKUP}}}
  policies: {{auth: {{secretRef: {{name: anthropic-secret}}}}}}
"""


def _route(name: str, prefix: str) -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {NS}}}
spec:
  parentRefs: [{{name: {GW}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: failover}}]
"""


def _outage(kubectl, tmp_path, status: int, seconds: float) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "outage.json"
    spec.write_text(json.dumps({"model": PRIMARY, "status": status, "seconds": seconds}))
    kubectl("create", "--raw", OUTAGE, "-f", str(spec))


def _ask(gateway: str, prefix: str) -> httpx.Response:
    return httpx.post(f"{gateway}{prefix}", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
                      timeout=10)


@pytest.fixture
def groups(kubectl, gateway: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_docs(BACKEND, _route("failover", "/failover")))
    poll(lambda: _ask(gateway, "/failover").status_code == 200, what="the failover route")
    yield "/failover"
    kubectl("delete", "--raw", OUTAGE)
    # other tests count the routes on this Gateway
    kubectl("delete", "httproute,agentgatewaybackend", "failover", "-n", NS, "--ignore-not-found")


def test_the_first_group_serves_while_it_is_healthy(kubectl, gateway: str, groups: str) -> None:  # type: ignore[no-untyped-def]
    backend = json.loads(kubectl("get", "agbe", "failover", "-n", NS, "-o", "json"))
    assert {c["type"]: c["status"] for c in backend["status"]["conditions"]} == {"Accepted": "True"}
    models = {_ask(gateway, groups).json()["model"] for _ in range(5)}
    assert models == {PRIMARY}


def test_a_failing_provider_is_evicted_and_traffic_comes_back(kubectl, gateway: str, groups: str,  # type: ignore[no-untyped-def]
                                                             tmp_path) -> None:
    _outage(kubectl, tmp_path, 529, 30)
    failed = _ask(gateway, groups)
    assert failed.status_code == 529                          # the answer that evicted it reaches the client
    assert failed.json()["error"]["message"] == "Overloaded"      # in OpenAI's error shape
    # evicted: the backup group serves the next requests
    assert [_ask(gateway, groups).json()["model"] for _ in range(3)] == [BACKUP] * 3
    kubectl("delete", "--raw", OUTAGE)
    # once the eviction (5s) is over, the primary serves again
    poll(lambda: _ask(gateway, groups).json()["model"] == PRIMARY, timeout=20, every=0.5,
         what="traffic to come back to the primary")


def test_a_retry_lands_on_the_backup_after_the_eviction(kubectl, gateway: str, groups: str,  # type: ignore[no-untyped-def]
                                                       tmp_path) -> None:
    policy = f"""apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {{name: failover-retry, namespace: {NS}}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: failover}}]
  traffic:
    retry: {{attempts: 1, codes: [429, 500, 529], backoff: 10ms}}
    timeouts: {{request: 20s}}
"""
    kubectl("apply", "-f", "-", input=policy)
    try:
        _outage(kubectl, tmp_path, 500, 30)
        oa = openai.OpenAI(base_url=f"{gateway}{groups}", api_key="unused", max_retries=0)

        def retried() -> bool:
            answer = oa.chat.completions.create(model="x", messages=[{"role": "user", "content": "retry me"}])
            return answer.model == BACKUP
        poll(retried, what="an answer from the backup despite the outage")

        def logged() -> str | None:
            lines = kubectl("logs", f"deploy/{GW}", "-n", NS, "--tail=100").splitlines()
            hits = [l for l in lines if f"route={NS}/failover" in l and "retry.attempt=1" in l]
            return hits[-1] if hits else None
        line = poll(logged, what="an access-log line with retry.attempt=1")
        assert "http.status=200" in line and f"gen_ai.response.model={BACKUP}" in line
    finally:
        kubectl("delete", "agentgatewaypolicy", "failover-retry", "-n", NS)
