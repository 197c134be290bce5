"""The collector stand-in: spans sent with the official OTLP exporters (gRPC and HTTP) come
out in the debug exporter's detailed format."""

from __future__ import annotations

import gzip
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from agwlab.sandbox.workloads.collector import CollectorWorkload
from harness import LoopThread, free_port, make_pod
from labtest import poll

IP = "127.78.1.20"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("collector")
    loop = LoopThread()
    workload = CollectorWorkload(grpc_port=free_port(IP), http_port=free_port(IP))
    pod = make_pod(tmp, "opentelemetry-collector-traces", IP, namespace="telemetry",
                   image="otel/opentelemetry-collector-contrib:0.127.0")
    loop.run(workload.start(pod), timeout=10)
    yield {"workload": workload, "log": pod.log.path}
    loop.run(workload.stop(), timeout=10)
    loop.close()


def wait_for(path: Path, needle: str, timeout: float = 10.0) -> str:
    return poll(lambda: (lambda text: text if needle in text else None)(path.read_text()),
                timeout=timeout, what=f"{needle!r} in the collector log", every=0.02)


def send_spans(exporter: Any) -> tuple[str, str, str]:
    """A server span with a client child, exported through ``exporter``; returns the ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": "agentgateway-route",
                                                        "k8s.pod.name": "agentgateway-route-abc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agentgateway", "1.4.1")
    with (
        tracer.start_as_current_span("POST /anthropic/*", kind=SpanKind.SERVER, attributes={
            "gateway": "agentgateway-system/agentgateway-route", "http.status": 200, "cached": False,
            "ratio": 0.5, "whole": 2.0, "tags": ["a", "b"]}) as server,
        tracer.start_as_current_span("POST api.anthropic.com:443", kind=SpanKind.CLIENT) as client,
    ):
        client.set_status(Status(StatusCode.ERROR, "boom"))
        client.add_event("retry", {"attempt": 1})
    provider.shutdown()
    sc, cc = server.get_span_context(), client.get_span_context()
    return f"{sc.trace_id:032x}", f"{sc.span_id:016x}", f"{cc.span_id:016x}"


def check_detailed(log: str, trace_id: str, server_id: str, client_id: str) -> None:
    start = log.index(f"    ID             : {server_id}\n")
    server_block = log[start - 200: start + 1000]
    assert f"Trace ID       : {trace_id}" in server_block
    assert re.search(r"\tinfo\tTraces\t\{\"otelcol.component.id\": \"debug\", \"otelcol.component.kind\": "
                     r"\"Exporter\", \"otelcol.signal\": \"traces\", \"resource spans\": 1, \"spans\": 1\}", log)
    assert "\tinfo\tResourceSpans #0\nResource SchemaURL: \nResource attributes:\n" in log
    assert "     -> service.name: Str(agentgateway-route)" in log
    assert "InstrumentationScope agentgateway 1.4.1" in log
    client_start = log.index(f"ID             : {client_id}")
    client_block = log[client_start - 200: client_start + 900]
    assert f"    Parent ID      : {server_id}\n" in client_block
    assert "    Kind           : Client\n" in client_block
    assert "    Status code    : Error\n    Status message : boom\n" in client_block
    assert "SpanEvent #0\n     -> Name: retry" in client_block and "          -> attempt: Int(1)" in client_block
    assert f"    ID             : {server_id}\n    Name           : POST /anthropic/*\n    Kind           : Server\n" \
        in server_block
    assert "    Parent ID      : \n" in server_block
    assert re.search(r"    Start time     : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC\n", server_block)
    for line in ("-> gateway: Str(agentgateway-system/agentgateway-route)", "-> http.status: Int(200)",
                 "-> cached: Bool(false)", "-> ratio: Double(0.5)", "-> whole: Double(2)", '-> tags: Slice(["a","b"])'):
        assert line in server_block, line


def test_grpc_export(collector: dict[str, Any]) -> None:
    wl = collector["workload"]
    ids = send_spans(GRPCExporter(endpoint=f"{IP}:{wl.grpc_port}", insecure=True, timeout=5))
    check_detailed(wait_for(collector["log"], f"Trace ID       : {ids[0]}"), *ids)


def test_http_protobuf_export_with_gzip(collector: dict[str, Any]) -> None:
    wl = collector["workload"]
    ids = send_spans(HTTPExporter(endpoint=f"http://{IP}:{wl.http_port}/v1/traces", compression=Compression.Gzip,
                                  timeout=5))
    check_detailed(wait_for(collector["log"], f"Trace ID       : {ids[0]}"), *ids)


def test_http_json_export(collector: dict[str, Any]) -> None:
    wl = collector["workload"]
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
                               "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
                                   "traceId": trace_id, "spanId": span_id, "name": "GET /json", "kind": 2,
                                   "startTimeUnixNano": "1700000000123456789", "endTimeUnixNano": "1700000000223456000",
                                   "attributes": [{"key": "http.status", "value": {"intValue": "204"}}]}]}]}]}
    r = httpx.post(f"http://{IP}:{wl.http_port}/v1/traces", content=gzip.compress(json.dumps(body).encode()),
                   headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200 and r.json() == {}
    log = wait_for(collector["log"], f"Trace ID       : {trace_id}")
    block = log[log.index(f"Trace ID       : {trace_id}"):][:700]
    assert f"ID             : {span_id}" in block and "Name           : GET /json" in block
    assert "Start time     : 2023-11-14 22:13:20.123456789 +0000 UTC" in block
    assert "End time       : 2023-11-14 22:13:20.223456 +0000 UTC" in block
    assert "-> http.status: Int(204)" in block


def test_http_rejects_other_media_types(collector: dict[str, Any]) -> None:
    wl = collector["workload"]
    r = httpx.post(f"http://{IP}:{wl.http_port}/v1/traces", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(f"http://{IP}:{wl.http_port}/v1/traces", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_startup_lines(collector: dict[str, Any]) -> None:
    log = collector["log"].read_text()
    wl = collector["workload"]
    assert f'"endpoint": "{IP}:{wl.grpc_port}"' in log and f'"endpoint": "{IP}:{wl.http_port}"' in log
    assert "Everything is ready. Begin running and processing data." in log
