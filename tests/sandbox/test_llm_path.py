"""The tutorial's first half, typed as it is, against the sandbox: a Gateway, a Secret, an
AgentgatewayBackend and an HTTPRoute give Claude through the gateway, with agentgateway's
access log, metrics (scraped by the real Prometheus) and traces."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from labtest import (
    DATA,
    NS,
    SEED_MODEL,
    anthropic_backend_yaml,
    condition,
    http_route_yaml,
    poll,
    poll_object,
    secret_yaml,
    yaml_docs,
)


def test_seed_gateway_is_programmed_with_an_address(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    gw = json.loads(kubectl("get", "gateway", "agentgateway-route", "-n", NS, "-o", "json"))
    conds = {c["type"]: c["status"] for c in gw["status"]["conditions"]}
    assert conds == {"Accepted": "True", "Programmed": "True"}
    # the seed's route, plus whatever routes earlier tests left on this Gateway in the session sandbox
    routes = json.loads(kubectl("get", "httproute", "-A", "-o", "json"))["items"]
    attached = [r for r in routes
                if any(p.get("name") == "agentgateway-route" and p.get("namespace", r["metadata"]["namespace"]) == NS
                       for p in r["spec"].get("parentRefs", []))]
    assert "claude" in {r["metadata"]["name"] for r in attached}
    assert gw["status"]["listeners"][0]["attachedRoutes"] == len(attached)
    svc = json.loads(kubectl("get", "svc", "agentgateway-route", "-n", NS, "-o", "json"))
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == gw["status"]["addresses"][0]["value"]
    assert [p["name"] for p in svc["spec"]["ports"]] == ["listener-8080"]
    pod = json.loads(kubectl("get", "pods", "-n", NS, "-l", "gateway.networking.k8s.io/gateway-name=agentgateway-route",
                             "-o", "json"))["items"][0]
    assert pod["metadata"]["labels"]["gateway.networking.k8s.io/gateway-class-name"] == "agentgateway"
    kubectl("rollout", "status", "deploy/agentgateway-route", "-n", NS, "--timeout=20s")
    backend = json.loads(kubectl("get", "agentgatewaybackend", "anthropic", "-n", NS, "-o", "json"))
    assert backend["status"]["conditions"][0]["type"] == "Accepted"
    assert backend["status"]["conditions"][0]["status"] == "True"
    route = json.loads(kubectl("get", "httproute", "claude", "-n", NS, "-o", "json"))
    parent = route["status"]["parents"][0]
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}


def test_openai_sdk_gets_a_completion(gateway: str) -> None:
    oa = openai.OpenAI(base_url=f"{gateway}/anthropic", api_key="unused-the-gateway-holds-the-key")
    resp = oa.chat.completions.create(
        model="ignored-because-the-backend-pins-one",
        messages=[{"role": "system", "content": "You are a skilled cloud-native network engineer."},
                  {"role": "user", "content": "Write me a paragraph about Istio Ambient Mesh"}],
    )
    assert resp.object == "chat.completion"
    assert resp.model == SEED_MODEL
    assert resp.id.startswith("msg_")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.role == "assistant"
    assert "sandbox" in resp.choices[0].message.content.lower()
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_openai_sdk_streams(gateway: str) -> None:
    oa = openai.OpenAI(base_url=f"{gateway}/anthropic", api_key="unused")
    chunks = list(oa.chat.completions.create(
        model="x", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Say hello in five words"}]))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "sandbox" in text.lower()
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    raw = httpx.post(f"{gateway}/anthropic", json={"stream": True, "messages": [{"role": "user", "content": "hi"}]},
                     timeout=10)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in raw.text                       # v1.4.1 ends with the usage chunk
    last = json.loads(raw.text.rstrip().rsplit("data: ", 1)[1])
    assert last["choices"][0]["delta"] == {"content": None} and last["usage"]["completion_tokens"] > 0


def _apply(kubectl, yaml_text: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_text)


def test_a_wrong_key_gives_401_in_openai_error_shape(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    _apply(kubectl, yaml_docs(
        secret_yaml("wrong-key", NS, {"Authorization": "Bearer not-an-anthropic-key"}),
        anthropic_backend_yaml("wrong-key", NS, "wrong-key", model=SEED_MODEL),
        http_route_yaml("wrong-key", NS, "agentgateway-route", prefix="/wrong-key", backend="wrong-key"),
    ))
    poll(lambda: httpx.post(f"{gateway}/wrong-key", json={"messages": [{"role": "user", "content": "x"}]},
                            timeout=5).status_code != 404, what="the wrong-key route")
    oa = openai.OpenAI(base_url=f"{gateway}/wrong-key", api_key="unused")
    with pytest.raises(openai.AuthenticationError) as err:
        oa.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    body = err.value.response.json()
    assert body["event_id"] is None
    assert body["error"]["type"] == "invalid_request_error"
    assert "x-api-key" in body["error"]["message"]
    assert "not-an-anthropic-key" not in err.value.response.text


def test_a_missing_secret_leaves_the_backend_not_accepted(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    _apply(kubectl, yaml_docs(
        anthropic_backend_yaml("no-secret", NS, "does-not-exist"),
        http_route_yaml("no-secret", NS, "agentgateway-route", prefix="/no-secret", backend="no-secret"),
    ))
    backend = poll_object(kubectl, "agbe", "no-secret", NS, until=lambda b: condition(b, "Accepted"),
                          what="the backend's Accepted condition")
    cond: dict = condition(backend, "Accepted")  # type: ignore[assignment,type-arg]
    assert cond["status"] == "False" and cond["reason"] == "TranslationError"
    assert "does-not-exist" in cond["message"]
    table = kubectl("get", "agbe", "no-secret", "-n", NS)
    assert "False" in table
    r = poll(lambda: (lambda r: r if r.status_code != 404 else None)(
        httpx.post(f"{gateway}/no-secret", json={"messages": [{"role": "user", "content": "x"}]}, timeout=5)),
        what="the no-secret route")
    assert (r.status_code, r.text) == (500, "service not found")
    assert r.headers["content-type"].startswith("text/plain")


def test_unknown_path_gives_404_route_not_found(gateway: str) -> None:
    r = httpx.get(f"{gateway}/nothing-here", timeout=5)
    assert r.status_code == 404
    assert r.text.strip() == "route not found"


def test_gateway_errors_for_bad_requests(gateway: str) -> None:
    r = httpx.post(f"{gateway}/anthropic", content=b"{not json", headers={"content-type": "application/json"}, timeout=5)
    assert r.status_code == 503
    assert r.text.startswith("processing failed: failed to parse request")


def test_stand_in_down_gives_503_and_recovers(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    body = {"messages": [{"role": "user", "content": "are you there?"}]}
    kubectl("scale", "deploy/anthropic-standin", "-n", "agwlab-system", "--replicas=0")
    try:
        r = poll(lambda: (lambda r: r if r.status_code == 503 else None)(
            httpx.post(f"{gateway}/anthropic", json=body, timeout=10)), what="a 503 with the stand-in down")
        assert r.text.startswith("upstream call failed")
    finally:
        kubectl("scale", "deploy/anthropic-standin", "-n", "agwlab-system", "--replicas=1")
    poll(lambda: httpx.post(f"{gateway}/anthropic", json=body, timeout=10).status_code == 200,
         what="the stand-in to answer again")


def test_access_log_has_agentgateway_fields(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{gateway}/anthropic", json={"messages": [{"role": "user", "content": "log me"}]}, timeout=10)
    lines = poll(lambda: [l for l in kubectl("logs", "deploy/agentgateway-route", "-n", NS, "--tail=50").splitlines()
                          if "\tinfo\trequest " in l and "route=agentgateway-system/claude" in l],
                 what="an access-log line")
    line = lines[-1]
    ts, _level, rest = line.split("\t", 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ts)
    fields = dict(kv.split("=", 1) for kv in rest.removeprefix("request ").split(" ") if "=" in kv)
    keys = list(fields)
    order = ["gateway", "listener", "route", "endpoint", "src.addr", "http.method", "http.host", "http.path",
             "http.version", "http.status", "protocol", "gen_ai.operation.name", "gen_ai.provider.name",
             "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
             "gen_ai.usage.output_tokens", "duration"]
    present = [k for k in order if k in keys]
    assert present == [k for k in keys if k in order], keys
    assert fields["gateway"] == "agentgateway-system/agentgateway-route"
    assert fields["listener"] == "http"
    assert fields["http.path"] == "/anthropic"
    assert fields["http.status"] == "200"
    assert fields["protocol"] == "llm"
    assert fields["gen_ai.provider.name"] == "anthropic"
    assert fields["gen_ai.request.model"] == SEED_MODEL
    assert re.fullmatch(r"\d+ms", fields["duration"])
    assert "trace.id" not in fields  # no tracing policy and no traceparent: not sampled


def _scrape(kubectl) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    pod = json.loads(kubectl("get", "pods", "-n", NS, "-l", "gateway.networking.k8s.io/gateway-name=agentgateway-route",
                             "-o", "json"))["items"][0]
    text = httpx.get(f"http://{pod['status']['podIP']}:15020/metrics", timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_have_the_reference_names_and_labels(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{gateway}/anthropic", json={"messages": [{"role": "user", "content": "count me"}]}, timeout=10)
    fams = _scrape(kubectl)
    req = fams["agentgateway_requests"]
    assert req.type == "counter"
    sample = next(s for s in req.samples if s.labels.get("route") == "agentgateway-system/claude"
                  and s.labels.get("status") == "200")
    assert list(sample.labels)[:5] == ["backend", "protocol", "method", "status", "reason"]
    assert sample.labels["backend"] == "agentgateway-system/anthropic"
    assert sample.labels["protocol"] == "llm"
    assert sample.labels["bind"] == "8080/agentgateway-system/agentgateway-route"
    assert sample.labels["gateway"] == "agentgateway-system/agentgateway-route"
    assert sample.labels["listener"] == "http"
    assert sample.labels["route_rule"] == "unknown"
    tokens = fams["agentgateway_gen_ai_client_token_usage"]
    assert tokens.type == "histogram"
    types = {s.labels["gen_ai_token_type"] for s in tokens.samples}
    assert {"input", "output"} <= types
    s = next(s for s in tokens.samples if s.name.endswith("_sum"))
    assert s.labels["gen_ai_system"] == "anthropic" and s.labels["gen_ai_operation_name"] == "chat"
    assert "agentgateway_request_duration_seconds" in fams
    assert "agentgateway_gen_ai_server_request_duration" in fams


def test_prometheus_scrapes_the_proxy(sandbox, gateway: str) -> None:  # type: ignore[no-untyped-def]
    assert sandbox.prometheus_url, "Prometheus is not running in the sandbox"
    prom = sandbox.prometheus_url

    def query(q: str) -> list[dict[str, Any]]:
        return httpx.get(f"{prom}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]

    poll(lambda: any(r["value"][1] == "1" for r in query('up{job="agentgateway-system/agentgateway-proxy"}')),
         timeout=30, what="Prometheus to scrape the proxy")
    before = sum(float(r["value"][1]) for r in query('agentgateway_requests_total{route="agentgateway-system/claude"}'))
    for _ in range(3):
        assert httpx.post(f"{gateway}/anthropic", json={"messages": [{"role": "user", "content": "x"}]},
                          timeout=10).status_code == 200
    poll(lambda: sum(float(r["value"][1]) for r in
                     query('agentgateway_requests_total{route="agentgateway-system/claude"}')) >= before + 3,
         timeout=15, what="Prometheus to see three more requests")
    result = query('agentgateway_requests_total{route="agentgateway-system/claude"}')[0]["metric"]
    assert result["namespace"] == NS and result["pod"].startswith("agentgateway-route-")
    # the metric's own labels survive the scrape unchanged (no exported_* renames)
    assert result["gateway"] == "agentgateway-system/agentgateway-route"
    assert not any(k.startswith("exported_") for k in result), result


def test_a_client_traceparent_is_found_in_the_log_and_the_collector(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", str(DATA / "tracing_policy.yaml"))
    trace_id = secrets.token_hex(16)
    parent = secrets.token_hex(8)

    def send() -> bool:
        r = httpx.post(f"{gateway}/anthropic", json={"messages": [{"role": "user", "content": "trace me"}]},
                       headers={"traceparent": f"00-{trace_id}-{parent}-01"}, timeout=10)
        return r.status_code == 200

    assert send()
    line = poll(lambda: next((l for l in kubectl("logs", "deploy/agentgateway-route", "-n", NS, "--tail=100").splitlines()
                              if f"trace.id={trace_id}" in l), None), what="the trace id in the access log")
    assert "span.id=" in line
    collector = poll(lambda: (lambda t: t if f"Trace ID       : {trace_id}" in t else None)(
        kubectl("logs", "deploy/opentelemetry-collector-traces", "-n", "telemetry")), timeout=20,
        what="the trace in the collector's log")
    block = collector[collector.index(f"Trace ID       : {trace_id}"):]
    assert "Name           : POST /anthropic/*" in collector
    assert "Kind           : Server" in block
    assert "-> http.status: Int(200)" in collector
    assert f"Parent ID      : {parent}" in block


def test_one_setting_sends_claude_traffic_to_the_real_api(kubectl, gateway: str) -> None:  # type: ignore[no-untyped-def]
    def patch(value: str) -> None:
        kubectl("patch", "configmap", "sandbox-settings", "-n", "agwlab-system", "--type", "merge",
                "-p", json.dumps({"data": {"anthropic.upstream": value}}))

    body = {"messages": [{"role": "user", "content": "who answers?"}]}
    patch("api.anthropic.com")
    try:
        r = poll(lambda: (lambda r: r if "sandbox model" not in r.text else None)(
            httpx.post(f"{gateway}/anthropic", json=body, timeout=30)), timeout=40, what="traffic to leave the sandbox")
        # offline: the gateway cannot reach Anthropic (503); online: Anthropic refuses the test key (401)
        assert r.status_code in (401, 503), (r.status_code, r.text)
        if r.status_code == 503:
            assert r.text.startswith("upstream call failed")
    finally:
        patch("standin")
    poll(lambda: "sandbox model" in httpx.post(f"{gateway}/anthropic", json=body, timeout=10).text,
         what="the stand-in to answer again")
