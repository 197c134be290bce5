"""The proxy end to end on loopback: the real ProxyWorkload, the Anthropic stand-in, the
collector, and the official ``openai`` SDK / httpx as clients."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from agwlab.sandbox.proxy import ProxyWorkload
from agwlab.sandbox.proxy.accesslog import KEY_ORDER
from agwlab.sandbox.proxy.config import (
    AIBackend,
    BackendRef,
    GatewayConfig,
    HeaderModifier,
    Listener,
    PathMatch,
    Route,
    RouteMatch,
    Rule,
    ServiceBackend,
    TracingConfig,
    URLRewrite,
)
from agwlab.sandbox.serving import serve_asgi
from agwlab.sandbox.workloads.anthropic_standin import AnthropicStandinWorkload
from agwlab.sandbox.workloads.collector import CollectorWorkload
from harness import AGENTGATEWAY_IMAGE, FakeCluster, LoopThread, free_port, make_pod
from labtest import poll

NS, GW = "agentgateway-system", "agentgateway-route"
GW_IP = "127.77.255.1"
PROXY_IP = "127.77.1.1"
STANDIN_IP = "127.77.1.9"
SPARE_STANDIN_IP = "127.77.1.10"
COLLECTOR_IP = "127.77.1.20"
ECHO_IP = "127.77.1.30"
KEY = "sk-ant-api03-" + "x" * 20 + "abcd"
MODEL = "claude-sonnet-4-5-20250929"


def ai_backend(name: str, url: str, **kw: Any) -> AIBackend:
    return AIBackend(key=f"{NS}/{name}", provider="anthropic", upstream_url=url, **kw)


def prefix_rule(path: str, *refs: BackendRef, **kw: Any) -> Rule:
    return Rule(name=None, matches=(RouteMatch(PathMatch("PathPrefix", path)),), backends=refs, **kw)


def route(name: str, *rules: Rule, ns: str = NS) -> Route:
    return Route(ns, name, (), rules, creation_timestamp="2026-01-01T00:00:00Z")


def echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        if "slow" in request.url.path:
            await asyncio.sleep(2)
        body = await request.body()
        return JSONResponse({"path": request.url.path, "query": request.url.query,
                             "headers": dict(request.headers), "body": body.decode()},
                            headers={"x-upstream": "echo"})

    return Starlette(routes=[StarletteRoute("/{p:path}", echo, methods=["GET", "POST"])])


class Lab:
    """Everything a test needs: addresses, logs and the running pieces."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = LoopThread()
        self.cluster = FakeCluster()
        self.port = free_port(GW_IP)
        self.standin_port = free_port(STANDIN_IP)
        self.spare_port = free_port(SPARE_STANDIN_IP)
        self.echo_port = free_port(ECHO_IP)
        self.standin = AnthropicStandinWorkload()
        self.spare = AnthropicStandinWorkload()
        self.collector = CollectorWorkload(grpc_port=free_port(COLLECTOR_IP), http_port=free_port(COLLECTOR_IP))
        self.proxy = ProxyWorkload()
        self.standin_pod = make_pod(tmp, "anthropic-standin", STANDIN_IP, port=self.standin_port,
                                    env={"STREAM_DELAY_MS": "1"}, namespace=NS)
        self.spare_pod = make_pod(tmp, "spare-standin", SPARE_STANDIN_IP, port=self.spare_port, namespace=NS)
        self.collector_pod = make_pod(tmp, "collector", COLLECTOR_IP, namespace="telemetry")
        self.proxy_pod = make_pod(tmp, GW, PROXY_IP, cluster=self.cluster, env={"GATEWAY": f"{NS}/{GW}"},
                                  namespace=NS, image=AGENTGATEWAY_IMAGE)
        self.echo_server: Any = None

    @property
    def base(self) -> str:
        return f"http://{GW_IP}:{self.port}"

    def config(self, version: int = 1, **kw: Any) -> GatewayConfig:
        standin = f"http://{STANDIN_IP}:{self.standin_port}"
        routes = (
            route("claude", prefix_rule("/anthropic", BackendRef(ai_backend(
                "anthropic", standin, model=MODEL, api_key=KEY)))),
            route("metered", prefix_rule("/metered", BackendRef(ai_backend(
                "metered", standin, model=MODEL, api_key=KEY)))),
            route("bad-key", prefix_rule("/badkey", BackendRef(ai_backend(
                "bad-key", standin, model=MODEL, api_key="not-an-anthropic-key")))),
            route("no-model", prefix_rule("/nomodel", BackendRef(ai_backend("no-model", standin, api_key=KEY)))),
            route("spare", prefix_rule("/spare", BackendRef(ai_backend(
                "spare", f"http://{SPARE_STANDIN_IP}:{self.spare_port}", model=MODEL, api_key=KEY)))),
            route("native", prefix_rule("/native", BackendRef(ai_backend(
                "native", standin, api_key=KEY, routes=(("/v1/messages", "Messages"), ("/v1/models", "Models"), ("*", "Passthrough")))))),
            route("missing", prefix_rule("/missing", BackendRef(None, error="backend does not exist"))),
            route("no-endpoints", prefix_rule("/no-endpoints", BackendRef(ServiceBackend("gone.default.svc.cluster.local:80", ())))),
            route("echo", prefix_rule(
                "/echo", BackendRef(ServiceBackend("echo.default.svc.cluster.local:80",
                                                   (f"http://{ECHO_IP}:{self.echo_port}",))),
                url_rewrite=URLRewrite(path_type="ReplacePrefixMatch", path_value="/v2"),
                request_headers=HeaderModifier(set=(("x-added", "yes"),), remove=("x-drop",)),
                response_headers=HeaderModifier(add=(("x-gateway", "agwlab"),)),
                timeout_seconds=1.0,
            )),
        )
        tracing = TracingConfig(endpoint=f"http://{COLLECTOR_IP}:{self.collector.grpc_port}", protocol="GRPC")
        defaults: dict[str, Any] = {
            "namespace": NS, "name": GW, "class_name": "agentgateway", "address": GW_IP,
            "listeners": (Listener("http", self.port, routes=routes),), "tracing": tracing, "version": version,
        }
        defaults.update(kw)
        return GatewayConfig(**defaults)

    def start(self) -> None:
        async def up() -> None:
            await self.standin.start(self.standin_pod)
            await self.spare.start(self.spare_pod)
            await self.collector.start(self.collector_pod)
            self.echo_server = await serve_asgi(echo_app(), ECHO_IP, self.echo_port)
            self.cluster.push(self.config())
            await self.proxy.start(self.proxy_pod)

        self.loop.run(up())
        poll(lambda: self.proxy.bound, what="the listener to bind")

    def stop(self) -> None:
        async def down() -> None:
            await self.proxy.stop()
            for wl in (self.standin, self.spare, self.collector):
                await wl.stop()
            await self.echo_server.stop()

        self.loop.run(down())
        self.loop.close()

    def proxy_log(self) -> str:
        return self.proxy_pod.log.path.read_text()

    def access_line(self, *needles: str, timeout: float = 5.0) -> str:
        """The last access-log line containing every needle (waits for it: the line is
        written just after the response is sent)."""
        def find() -> str | None:
            lines = [line for line in self.proxy_log().splitlines()
                     if "\trequest " in line and all(n in line for n in needles)]
            return lines[-1] if lines else None
        return poll(find, timeout=timeout, what=f"an access-log line with {needles!r}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("proxy"))
    lab.start()
    yield lab
    lab.stop()


def oai(lab: Lab, prefix: str = "/anthropic", key: str = "unused-by-the-gateway") -> openai.OpenAI:
    return openai.OpenAI(base_url=lab.base + prefix, api_key=key, max_retries=0, timeout=10)


MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is agentgateway?"}]


def test_completion_through_the_openai_sdk(lab: Lab) -> None:
    reply = oai(lab).chat.completions.create(model="ignored-by-backend", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    assert reply.id.startswith("msg_")
    assert abs(reply.created - time.time()) < 60
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "agwlab sandbox model" in (choice.message.content or "")
    assert "What is agentgateway?" in (choice.message.content or "")
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_completion_json_has_agentgateways_key_order(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/anthropic", json={"messages": MESSAGES}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["model", "service_tier", "usage", "choices", "id", "created", "object"]
    assert list(body["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                                   "cache_read_input_tokens", "cache_creation_input_tokens"]
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert list(body["choices"][0]) == ["message", "index", "finish_reason"]


def test_max_tokens_truncates_with_finish_reason_length(lab: Lab) -> None:
    reply = oai(lab).chat.completions.create(model="x", messages=MESSAGES, max_tokens=5)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5


def test_stream_through_the_openai_sdk_matches_the_plain_answer(lab: Lab) -> None:
    client = oai(lab)
    plain = client.chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    chunks = list(client.chat.completions.create(model="x", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.choices[0].delta.role is None for c in chunks if c.choices)   # v1.4.1 sends no role
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_is_sse_ending_with_the_usage_chunk_and_no_done(lab: Lab) -> None:
    with httpx.stream("POST", f"{lab.base}/anthropic/streamed", json={"messages": MESSAGES, "stream": True},
                      timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in data
    last = json.loads(data[-1])
    assert last["choices"] == [{"index": 0, "delta": {"content": None}, "finish_reason": "stop"}]
    usage = last["usage"]
    line = lab.access_line("http.path=/anthropic/streamed")
    assert f"gen_ai.usage.output_tokens={usage['completion_tokens']} " in line
    assert "agw.ai.time_to_first_token" not in line     # v1.4.1 logs no token timings
    first = json.loads(data[0])
    assert list(first) == ["id", "choices", "created", "model", "service_tier", "system_fingerprint", "object",
                           "usage"]
    assert first["id"].startswith("msg_") and first["usage"] is None


def test_wrong_key_is_a_401_in_openais_error_shape(lab: Lab) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        oai(lab, "/badkey").chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 401
    assert caught.value.response.json() == {
        "event_id": None, "error": {"type": "invalid_request_error", "message": "invalid x-api-key"}}
    assert caught.value.response.headers["request-id"].startswith("req_")   # upstream headers are kept
    # v1.4.1 observes the gen_ai duration for upstream errors too, with the response model unknown
    scrape = httpx.get(f"http://{PROXY_IP}:15020/metrics", timeout=5).text
    assert re.search(r'^agentgateway_gen_ai_server_request_duration_count\{[^}]*gen_ai_response_model="unknown"'
                     r'[^}]*route="agentgateway-system/bad-key"[^}]*\} 1$', scrape, re.M), scrape
    assert "not-an-anthropic-key" not in (lab.tmp / "anthropic-standin.log").read_text()


def test_unknown_route_is_404_route_not_found(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/nothing-here", json={}, timeout=5)
    assert (r.status_code, r.text) == (404, "route not found")
    assert r.headers["content-type"].startswith("text/plain")
    r = httpx.post(f"{lab.base}/anthropicx", json={}, timeout=5)
    assert r.status_code == 404
    line = lab.access_line("http.path=/anthropicx", "http.status=404")
    assert "reason=NotFound" in line and 'error="route not found"' in line


def test_missing_backend_is_500_and_no_endpoints_503(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/missing", json={}, timeout=5)
    assert (r.status_code, r.text) == (500, "service not found")
    r = httpx.get(f"{lab.base}/no-endpoints", timeout=5)
    assert (r.status_code, r.text) == (503, "no healthy backends")


def test_json_log_format(lab: Lab) -> None:
    lab.cluster.push(lab.config(version=20, log_format="json"))
    try:
        def json_line() -> dict[str, Any] | None:
            httpx.get(f"{lab.base}/echo/json-format", timeout=5)
            for line in reversed(lab.proxy_log().splitlines()):
                if line.startswith("{") and "/echo/json-format" in line:
                    return json.loads(line)
            return None
        record = poll(json_line, what="a JSON access-log line")
        assert list(record)[:3] == ["level", "time", "scope"]
        assert record["scope"] == "request" and record["http.status"] == 200 and record["protocol"] == "http"
    finally:
        lab.cluster.push(lab.config(version=21))


def test_bad_json_is_503_processing_failed(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/anthropic", content=b"{not json", headers={"content-type": "application/json"},
                   timeout=5)
    assert r.status_code == 503
    assert r.text.startswith("processing failed: failed to parse request: ")
    assert "reason=Internal" in lab.access_line("http.status=503", "processing failed")


def test_no_model_anywhere_is_503_processing_failed(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/nomodel", json={"messages": MESSAGES}, timeout=5)
    assert (r.status_code, r.text) == (503, "processing failed: missing field: model not specified")
    assert r.headers["content-type"].startswith("text/plain")
    ok = httpx.post(f"{lab.base}/nomodel", json={"model": "claude-haiku-4-5", "messages": MESSAGES}, timeout=5)
    assert ok.status_code == 200 and ok.json()["model"] == "claude-haiku-4-5-20251001"


def test_stopped_upstream_is_503(lab: Lab) -> None:
    assert httpx.post(f"{lab.base}/spare", json={"messages": MESSAGES}, timeout=5).status_code == 200
    lab.loop.run(lab.spare.stop())
    r = httpx.post(f"{lab.base}/spare", json={"messages": MESSAGES}, timeout=5)
    assert r.status_code == 503
    assert r.text.startswith("upstream call failed: ")
    line = lab.access_line("route=agentgateway-system/spare", "http.status=503")
    assert "reason=UpstreamFailure" in line and 'error="upstream call failed: ' in line


def test_native_messages_route_passes_anthropic_bodies_through(lab: Lab) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{lab.base}/native/v1/messages", json=body, timeout=5)
    assert r.status_code == 200
    assert r.json()["type"] == "message" and r.json()["content"][0]["type"] == "text"
    models = httpx.get(f"{lab.base}/native/v1/models", timeout=5)      # v1.4.1 does not implement Models
    assert (models.status_code, models.text) == (501, '{"error":"Route \'Models\' not implemented"}')
    passthrough = httpx.get(f"{lab.base}/native/elsewhere", timeout=5)  # sent as is: the provider's own 404
    assert passthrough.status_code == 404 and passthrough.json()["error"]["type"] == "not_found_error"


def test_service_backend_rewrites_filters_and_times_out(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/echo/a/b?x=1", content=b"payload", headers={"x-drop": "1"}, timeout=5)
    assert r.status_code == 200
    seen = r.json()
    assert seen["path"] == "/v2/a/b" and seen["query"] == "x=1" and seen["body"] == "payload"
    assert seen["headers"]["x-added"] == "yes" and "x-drop" not in seen["headers"]
    assert r.headers["x-upstream"] == "echo" and r.headers["x-gateway"] == "agwlab"
    line = lab.access_line("http.path=/echo/a/b?x=1")
    assert "protocol=http" in line and f"endpoint={ECHO_IP}:{lab.echo_port}" in line
    slow = httpx.get(f"{lab.base}/echo/slow", timeout=5)  # the rule's timeout is 1 s, the upstream takes 2
    assert (slow.status_code, slow.text) == (504, "request timeout")
    assert "reason=Timeout" in lab.access_line("http.path=/echo/slow", "http.status=504")


def _families(text: str, parser: Any) -> dict[str, Any]:
    return {f.name: f for f in parser(text)}


def test_metrics_have_the_reference_names_and_labels(lab: Lab) -> None:
    reply = oai(lab, "/metered").chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    url = f"http://{PROXY_IP}:15020/metrics"
    plain = httpx.get(url, timeout=5)
    assert plain.headers["content-type"] == "text/plain;charset=utf-8"
    assert plain.text.endswith("# EOF\n")
    om = httpx.get(f"http://{PROXY_IP}:15020/stats/prometheus",
                   headers={"accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}, timeout=5)
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    families = _families(om.text, parse_openmetrics)
    _families(plain.text, parse_text)  # the classic parser accepts it too
    assert {"agentgateway_build", "agentgateway_requests", "agentgateway_response_bytes",
            "agentgateway_request_duration_seconds", "agentgateway_gen_ai_client_token_usage",
            "agentgateway_gen_ai_server_request_duration", "agentgateway_mcp_requests",
            "agentgateway_downstream_connections"} <= set(families)
    assert families["agentgateway_build"].samples[0].labels == {"tag": "1.4.1"}
    route_labels = {"bind": f"{lab.port}/{NS}/{GW}", "gateway": f"{NS}/{GW}", "listener": "http",
                    "route": f"{NS}/metered", "route_rule": "unknown"}
    requests = [s for s in families["agentgateway_requests"].samples if s.labels.get("route") == f"{NS}/metered"]
    assert len(requests) == 1 and requests[0].name == "agentgateway_requests_total" and requests[0].value == 1
    assert list(requests[0].labels) == ["backend", "protocol", "method", "status", "reason", *route_labels]
    assert requests[0].labels == {"backend": f"{NS}/metered", "protocol": "llm", "method": "POST", "status": "200",
                                  "reason": "Upstream", **route_labels}
    tokens = {s.labels["gen_ai_token_type"]: s.value for s in families["agentgateway_gen_ai_client_token_usage"].samples
              if s.name.endswith("_sum") and s.labels.get("route") == f"{NS}/metered"}
    assert reply.usage is not None
    assert tokens["input"] == reply.usage.prompt_tokens and tokens["output"] == reply.usage.completion_tokens
    sample = next(s for s in families["agentgateway_gen_ai_client_token_usage"].samples
                  if s.name.endswith("_count") and s.labels.get("route") == f"{NS}/metered")
    assert list(sample.labels) == ["gen_ai_token_type", "gen_ai_operation_name", "gen_ai_system",
                                   "gen_ai_request_model", "gen_ai_response_model", *route_labels]
    assert sample.labels["gen_ai_system"] == "anthropic" and sample.labels["gen_ai_response_model"] == MODEL
    connections = families["agentgateway_downstream_connections"].samples
    assert connections and list(connections[0].labels) == ["bind", "gateway", "listener", "protocol"]
    assert re.search(r'^agentgateway_request_duration_seconds_bucket\{le="0\.001",backend=', om.text, re.M)


def test_access_log_keys_are_in_agentgateways_order(lab: Lab) -> None:
    oai(lab, "/anthropic/ordered").chat.completions.create(model="x", messages=[{"role": "user", "content": "order"}])
    line = lab.access_line("http.path=/anthropic/ordered/chat/completions")
    ts, level, rest = line.split("\t", 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ts) and level == "info"
    assert rest.startswith("request ")
    keys = [kv.split("=", 1)[0] for kv in rest.removeprefix("request ").split(" ")]
    assert keys == sorted(keys, key=KEY_ORDER.index)
    for key in ("gateway", "listener", "route", "endpoint", "src.addr", "http.method", "http.host", "http.path",
                "http.version", "http.status", "protocol", "gen_ai.operation.name", "gen_ai.provider.name",
                "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
                "gen_ai.usage.output_tokens", "duration"):
        assert key in keys, key
    assert "trace.id" not in keys and "reason" not in keys
    assert "endpoint=api.anthropic.com:443" in line and "protocol=llm" in line
    assert re.search(r" duration=\d+ms$", line)


def test_client_traceparent_reaches_the_log_and_the_collector(lab: Lab) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.post(f"{lab.base}/anthropic", json={"messages": MESSAGES},
                   headers={"traceparent": f"00-{trace_id}-{parent}-01"}, timeout=10)
    assert r.status_code == 200
    line = lab.access_line(f"trace.id={trace_id}")
    span_id = re.search(r"span\.id=([0-9a-f]{16})", line).group(1)  # type: ignore[union-attr]
    standin_log = (lab.tmp / "anthropic-standin.log").read_text()
    assert f"traceparent=00-{trace_id}-{span_id}-01" in standin_log    # the upstream sees the request span
    log = poll(lambda: (lambda t: t if f"Trace ID       : {trace_id}" in t else None)(
        (lab.tmp / "collector.log").read_text()), timeout=10, what="the span in the collector log")
    blocks = [b for b in re.split(r"\nSpan #\d+\n", log) if f"Trace ID       : {trace_id}" in b]
    assert len(blocks) == 1                  # one Server span; v1.4.1 makes no span for the LLM call
    server = blocks[0]
    assert "Kind           : Server" in server
    assert f"Parent ID      : {parent}" in server and f"ID             : {span_id}" in server
    assert "Name           : POST /anthropic/*" in server
    for attr in ("-> http.status: Int(200)", f"-> gateway: Str({NS}/{GW})", "-> url.scheme: Str(http)",
                 f"-> trace.id: Str({trace_id})", "-> protocol: Str(llm)"):
        assert attr in server, attr
    assert "-> telemetry.sdk.language: Str(rust)" in log
    assert re.search(r"\tinfo\tTraces\t\{.*\"resource spans\": 1", log)
    assert f"-> service.name: Str({GW})" in log and "-> k8s.pod.name: Str(" in log


def test_no_traceparent_and_no_random_sampling_is_not_traced(lab: Lab) -> None:
    r = httpx.post(f"{lab.base}/anthropic/untraced", json={"messages": [{"role": "user", "content": "x"}]},
                   timeout=10)
    assert r.status_code == 200
    line = lab.access_line("http.path=/anthropic/untraced")
    assert "trace.id=" not in line


def test_200_concurrent_requests_are_all_answered(lab: Lab) -> None:
    async def burst() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
            async def one(i: int) -> tuple[int, str]:
                async with session.post(f"{lab.base}/anthropic",
                                        json={"messages": [{"role": "user", "content": f"question {i}"}]}) as r:
                    return r.status, (await r.json())["choices"][0]["message"]["content"]
            return await asyncio.gather(*(one(i) for i in range(200)))

    results = asyncio.run(burst())
    assert [status for status, _ in results] == [200] * 200
    assert all(f'"question {i}"' in text for i, (_, text) in enumerate(results))


def test_config_swap_rebinds_and_reroutes(lab: Lab) -> None:
    new_port = free_port(GW_IP)
    cfg = lab.config(version=2)
    only_echo = replace(cfg.listeners[0], port=new_port, routes=tuple(
        r for r in cfg.listeners[0].routes if r.name == "echo"))
    lab.cluster.push(replace(cfg, listeners=(only_echo,)))
    poll(lambda: (GW_IP, new_port) in lab.proxy.bound and (GW_IP, lab.port) not in lab.proxy.bound,
         what="the new port to replace the old one")
    assert httpx.get(f"http://{GW_IP}:{new_port}/echo/x", timeout=5).status_code == 200
    assert httpx.post(f"http://{GW_IP}:{new_port}/anthropic", json={}, timeout=5).status_code == 404
    lab.cluster.push(lab.config(version=3))
    poll(lambda: (GW_IP, lab.port) in lab.proxy.bound, what="the original port to come back")


def test_a_taken_port_is_logged_and_retried(lab: Lab) -> None:
    import socket

    blocker = socket.socket()
    blocker.bind((GW_IP, 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    cfg = lab.config(version=4)
    extra = Listener("other", taken, routes=cfg.listeners[0].routes)
    try:
        lab.cluster.push(replace(cfg, listeners=(*cfg.listeners, extra)))
        poll(lambda: "failed to bind" in lab.proxy_log() and f"{taken}/{NS}/{GW}" in lab.proxy_log(),
             what="the bind failure in the pod log")
        assert (GW_IP, taken) not in lab.proxy.bound
    finally:
        blocker.close()
    lab.cluster.push(replace(cfg, listeners=(*cfg.listeners, extra), version=5))
    poll(lambda: (GW_IP, taken) in lab.proxy.bound, what="the retried bind")
    assert httpx.get(f"http://{GW_IP}:{taken}/echo/x", timeout=5).status_code == 200
    lab.cluster.push(lab.config(version=6))
    poll(lambda: (GW_IP, taken) not in lab.proxy.bound, what="the extra listener to close")


def test_readiness_and_startup_lines(lab: Lab) -> None:
    r = httpx.get(f"http://{PROXY_IP}:15021/healthz/ready", timeout=5)
    assert r.status_code == 200
    log = lab.proxy_log()
    assert f'started bind\tbind="{lab.port}/{NS}/{GW}"' in log


def test_random_sampling_over_otlp_http(lab: Lab) -> None:
    http_tracing = TracingConfig(endpoint=f"http://{COLLECTOR_IP}:{lab.collector.http_port}", protocol="HTTP",
                                 random_sampling="true", resources=(("deployment.environment.name", '"lab"'),))
    lab.cluster.push(lab.config(version=7, tracing=http_tracing))
    try:
        def sampled() -> str | None:
            httpx.post(f"{lab.base}/anthropic/sampled", json={"messages": MESSAGES}, timeout=10)
            lines = [x for x in lab.proxy_log().splitlines() if "http.path=/anthropic/sampled" in x]
            return lines[-1] if lines and "trace.id=" in lines[-1] else None
        line = poll(sampled, what="a randomly sampled request")
        trace_id = re.search(r"trace\.id=([0-9a-f]{32})", line).group(1)  # type: ignore[union-attr]
        log = poll(lambda: (lambda t: t if f"Trace ID       : {trace_id}" in t else None)(
            (lab.tmp / "collector.log").read_text()), timeout=10, what="the sampled trace in the collector")
        assert "-> deployment.environment.name: Str(lab)" in log
        server = next(b for b in re.split(r"\nSpan #\d+\n", log)
                      if f"Trace ID       : {trace_id}" in b and "Kind           : Server" in b)
        assert "Parent ID      : \n" in server  # a new trace: the gateway made the root span
    finally:
        lab.cluster.push(lab.config(version=8))


def _connection_samples(name: str) -> list[Any]:
    text = httpx.get(f"http://{PROXY_IP}:15020/metrics", timeout=5).text
    return [s for f in parse_openmetrics(text) if f.name == name for s in f.samples]


def test_connection_bytes_and_upstream_connects_are_counted_as_v141_does(lab: Lab) -> None:
    """v1.4.1 adds a downstream socket's bytes when the socket closes (``transport/stream.rs``,
    ``impl Drop for Metrics``), under the labels of ``downstream_connections`` (``proxy/gateway.rs``),
    and observes ``upstream_connect_duration`` once per upstream connection it opens
    (``client/mod.rs``, ``Connector::connect``)."""
    import socket

    port, upstream_port = free_port(GW_IP), free_port(ECHO_IP)
    upstream = lab.loop.run(serve_asgi(echo_app(), ECHO_IP, upstream_port))
    cfg = lab.config(version=20)
    fresh = prefix_rule("/fresh", BackendRef(ServiceBackend("fresh.default.svc.cluster.local:80",
                                                            (f"http://{ECHO_IP}:{upstream_port}",))))
    counted = Listener("counted", port, routes=(route("fresh", fresh),))
    labels = {"bind": f"{port}/{NS}/{GW}", "gateway": f"{NS}/{GW}", "listener": "counted", "protocol": "http"}

    def connects() -> float:
        return sum(s.value for s in _connection_samples("agentgateway_upstream_connect_duration_seconds")
                   if s.name.endswith("_count") and s.labels == {"transport": "plaintext"})

    try:
        lab.cluster.push(replace(cfg, listeners=(*cfg.listeners, counted)))
        poll(lambda: (GW_IP, port) in lab.proxy.bound, what="the counted listener to bind")
        opened = connects()
        request = (f"GET /fresh/a HTTP/1.1\r\nhost: {GW_IP}:{port}\r\n\r\n"
                   f"GET /fresh/b HTTP/1.1\r\nhost: {GW_IP}:{port}\r\nconnection: close\r\n\r\n").encode()
        with socket.create_connection((GW_IP, port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        sent = poll(lambda: [s for s in _connection_samples("agentgateway_downstream_sent_bytes")
                             if s.labels == labels] or None, what="the closed connection's bytes")
        received = [s for s in _connection_samples("agentgateway_downstream_received_bytes") if s.labels == labels]
        assert [s.name for s in sent] == ["agentgateway_downstream_sent_bytes_total"]
        assert sent[0].value == len(answer) and received[0].value == len(request)
        assert [s.labels for s in _connection_samples("agentgateway_downstream_connections")
                if s.labels["listener"] == "counted"] == [labels]
        # two requests, one new upstream connection (the second reused it)
        assert connects() == opened + 1
    finally:
        lab.cluster.push(lab.config(version=21))
        poll(lambda: (GW_IP, port) not in lab.proxy.bound, what="the counted listener to close")
        lab.loop.run(upstream.stop())
