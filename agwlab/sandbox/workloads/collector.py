"""A stand-in for the OpenTelemetry Collector with an OTLP receiver and the debug exporter.

It receives traces over OTLP/gRPC (``:4317``) and OTLP/HTTP (``:4318``, ``POST
/v1/traces``, protobuf or JSON, optionally gzip) and prints every batch to the Pod log
the way the collector's ``debug`` exporter does with ``verbosity: detailed``: an info
line ``Traces {"resource spans": N, "spans": M, …}`` followed by ``ResourceSpans #0`` /
``Resource attributes:`` / ``ScopeSpans #0`` / ``Span #0`` blocks with ``Trace ID       :``,
``Parent ID      :``, … and ``-> key: Str(value)`` attribute lines. So
``kubectl logs … | grep -A 27 "Trace ID\\s\\+: <id>"`` finds a trace as it would in a cluster.

Example:
    >>> from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    >>> format_value(AnyValue(int_value=200))
    'Int(200)'
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..runtime import PodContext, WorkloadFailed
from ..serving import MAX_CONNECTIONS, BoundServer, os_error_text, serve_asgi

__all__ = [
    "COLLECTOR_VERSION",
    "GRPC_PORT",
    "HTTP_PORT",
    "CollectorWorkload",
    "create_http_app",
    "format_batch",
    "format_value",
    "parse_json_request",
]

GRPC_PORT = 4317
HTTP_PORT = 4318
COLLECTOR_VERSION = "0.127.0"
_DEBUG_FIELDS = {"otelcol.component.id": "debug", "otelcol.component.kind": "Exporter", "otelcol.signal": "traces"}
_KINDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
_STATUS = {0: "Unset", 1: "Ok", 2: "Error"}


def _ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _fields(data: dict[str, Any]) -> str:
    # Go's zap console encoder writes JSON with ", " and ": " separators.
    return json.dumps(data, separators=(", ", ": "))


def _go_time(ns: int) -> str:
    """A Unix-nanosecond time as Go prints ``time.Time`` (``2025-03-06 10:11:35.163557 +0000 UTC``)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}{'.' + digits if digits else ''} +0000 UTC"


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _double(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def format_value(value: AnyValue) -> str:
    """An attribute value as the debug exporter prints it: ``Str(x)``, ``Int(1)``, ``Bool(true)``, …"""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return f"Str({value.string_value})"
    if kind == "int_value":
        return f"Int({value.int_value})"
    if kind == "bool_value":
        return f"Bool({'true' if value.bool_value else 'false'})"
    if kind == "double_value":
        return f"Double({_double(value.double_value)})"
    if kind == "array_value":
        return f"Slice({json.dumps(_plain(value), separators=(',', ':'))})"
    if kind == "kvlist_value":
        return f"Map({json.dumps(_plain(value), separators=(',', ':'))})"
    if kind == "bytes_value":
        return f"Bytes({base64.b64encode(value.bytes_value).decode()})"
    return "Empty()"


def _attributes(attrs: Any, indent: str = "     ") -> list[str]:
    return [f"{indent}-> {kv.key}: {format_value(kv.value)}" for kv in attrs]


def _span_lines(index: int, span: Span) -> list[str]:
    lines = [
        f"Span #{index}",
        f"    Trace ID       : {span.trace_id.hex()}",
        f"    Parent ID      : {span.parent_span_id.hex()}",
        f"    ID             : {span.span_id.hex()}",
        f"    Name           : {span.name}",
        f"    Kind           : {_KINDS.get(span.kind, 'Unspecified')}",
        f"    Start time     : {_go_time(span.start_time_unix_nano)}",
        f"    End time       : {_go_time(span.end_time_unix_nano)}",
        f"    Status code    : {_STATUS.get(span.status.code, 'Unset')}",
        f"    Status message : {span.status.message}",
    ]
    if span.attributes:
        lines.append("Attributes:")
        lines.extend(_attributes(span.attributes))
    if span.events:
        lines.append("Events:")
        for i, event in enumerate(span.events):
            lines += [f"SpanEvent #{i}", f"     -> Name: {event.name}",
                      f"     -> Timestamp: {_go_time(event.time_unix_nano)}",
                      f"     -> DroppedAttributesCount: {event.dropped_attributes_count}"]
            if event.attributes:
                lines.append("     -> Attributes::")
                lines.extend(_attributes(event.attributes, "          "))
    if span.links:
        lines.append("Links:")
        for i, link in enumerate(span.links):
            lines += [f"SpanLink #{i}", f"     -> Trace ID: {link.trace_id.hex()}",
                      f"     -> ID: {link.span_id.hex()}", f"     -> TraceState: {link.trace_state}",
                      f"     -> DroppedAttributesCount: {link.dropped_attributes_count}"]
    return lines


def format_batch(request: trace_service_pb2.ExportTraceServiceRequest) -> str:
    """The debug exporter's detailed output for one export request (several lines)."""
    resource_spans = list(request.resource_spans)
    n_spans = sum(len(ss.spans) for rs in resource_spans for ss in rs.scope_spans)
    ts = _ts()
    header = f"{ts}\tinfo\tTraces\t{_fields({**_DEBUG_FIELDS, 'resource spans': len(resource_spans), 'spans': n_spans})}"
    body: list[str] = []
    for i, rs in enumerate(resource_spans):
        body += [f"ResourceSpans #{i}", f"Resource SchemaURL: {rs.schema_url}"]
        if rs.resource.attributes:
            body.append("Resource attributes:")
            body.extend(_attributes(rs.resource.attributes))
        for j, ss in enumerate(rs.scope_spans):
            body += [f"ScopeSpans #{j}", f"ScopeSpans SchemaURL: {ss.schema_url}",
                     f"InstrumentationScope {ss.scope.name} {ss.scope.version}".rstrip()]
            if ss.scope.attributes:
                body.append("InstrumentationScope attributes:")
                body.extend(_attributes(ss.scope.attributes))
            for k, span in enumerate(ss.spans):
                body.extend(_span_lines(k, span))
    detail = f"{ts}\tinfo\t" + "\n".join(body) + f"\n\t{_fields(_DEBUG_FIELDS)}"
    return header + "\n" + detail


_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def debug_verbosity(config_text: str | None) -> str:
    """How the traces pipeline's debug exporter prints, from the collector's config file:
    ``detailed``, ``normal``, ``basic`` (the exporter's default), or ``none`` when the traces
    pipeline has no debug exporter. No config file at all: ``detailed``.

    Example:
        >>> debug_verbosity("{exporters: {debug: {}}, service: {pipelines: {traces: {exporters: [debug]}}}}")
        'basic'
    """
    import yaml

    if config_text is None:
        return "detailed"
    try:
        config = yaml.safe_load(config_text) or {}
        exporters = config.get("exporters") or {}
        names = (((config.get("service") or {}).get("pipelines") or {}).get("traces") or {}).get("exporters") or []
    except (yaml.YAMLError, AttributeError):
        return "none"
    for name in names:
        if str(name) == "debug" or str(name).startswith("debug/"):
            return str((exporters.get(name) or {}).get("verbosity", "basic"))
    return "none"


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping wants base64 for bytes."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                with contextlib.suppress(ValueError):
                    v = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                v = _hex_ids_to_base64(v)
            out[k] = v
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def parse_json_request(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """Decode an OTLP/JSON trace export body.

    Raises:
        ValueError: the body is not OTLP/JSON.
    """
    data = _hex_ids_to_base64(json.loads(body))
    message = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(data, message, ignore_unknown_fields=True)
    return message


def create_http_app(emit: Callable[[trace_service_pb2.ExportTraceServiceRequest], None]) -> Starlette:
    """The OTLP/HTTP receiver (``POST /v1/traces``); ``emit`` gets every decoded request."""

    async def traces(request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                return Response("invalid gzip body", status_code=400, media_type="text/plain")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype == "application/json":
                message = parse_json_request(raw)
            elif ctype == "application/x-protobuf":
                message = trace_service_pb2.ExportTraceServiceRequest()
                message.ParseFromString(raw)
            else:
                return Response("415 unsupported media type, supported: [application/json, application/x-protobuf]",
                                status_code=415, media_type="text/plain")
        except Exception as exc:  # malformed bodies are the client's problem: 400 like the collector
            return Response(f"failed to decode request: {exc}", status_code=400, media_type="text/plain")
        emit(message)
        if ctype == "application/json":
            return JSONResponse({})
        return Response(trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
                        media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, emit: Callable[[trace_service_pb2.ExportTraceServiceRequest], None]) -> None:
        self._emit = emit

    async def Export(self, request, context):  # noqa: N802 - the gRPC method name
        self._emit(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class CollectorWorkload:
    """The collector as a sandbox workload: OTLP gRPC on ``<pod ip>:4317``, HTTP on ``:4318``.

    Args:
        grpc_port: gRPC receiver port (tests may pick another).
        http_port: HTTP receiver port.
    """

    def __init__(self, grpc_port: int = GRPC_PORT, http_port: int = HTTP_PORT) -> None:
        self.grpc_port, self.http_port = grpc_port, http_port
        self._grpc: grpc.aio.Server | None = None
        self._http: BoundServer | None = None
        self._log: Any = None
        self._stopped = False
        self.batches = 0
        self.verbosity = "detailed"

    def _emit(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.batches += 1
        if self._log is None or self.verbosity == "none":
            return
        text = format_batch(request)
        # below `detailed` the debug exporter prints only the one-line summary per batch
        self._log.write(text if self.verbosity == "detailed" else text.split("\n", 1)[0])

    async def start(self, pod: PodContext) -> None:
        """Start both receivers.

        Raises:
            WorkloadFailed: a receiver port is taken.
        """
        self._log = pod.log
        ip = pod.pod_ip
        config_path = next((a.split("=", 1)[1] for a in pod.args if a.startswith("--config=")), None)
        files = pod.extra.get("files") or {}
        self.verbosity = debug_verbosity(files.get(config_path) if config_path in files else None)
        pod.log.write(f"{_ts()}\tinfo\tservice\tStarting otelcol-contrib...\t"
                      f"{_fields({'Version': COLLECTOR_VERSION, 'NumCPU': 2})}")
        # bounded work, as the HTTP listeners (serving.py); no idle timeout: exporters keep one
        # connection open, and closing it makes gRPC log a GOAWAY line every time
        server = grpc.aio.server(maximum_concurrent_rpcs=MAX_CONNECTIONS,
                                 options=[("grpc.max_concurrent_streams", 100)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._emit), server)
        try:
            bound = server.add_insecure_port(f"{ip}:{self.grpc_port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise WorkloadFailed(f"cannot listen on {ip}:{self.grpc_port} (gRPC): address in use")
        if self.grpc_port == 0:
            self.grpc_port = bound
        await server.start()
        self._grpc = server
        receiver = {"otelcol.component.id": "otlp", "otelcol.component.kind": "Receiver"}
        pod.log.write(f"{_ts()}\tinfo\totlpreceiver\tStarting GRPC server\t"
                      f"{_fields({**receiver, 'endpoint': f'{ip}:{self.grpc_port}'})}")
        try:
            self._http = await serve_asgi(create_http_app(self._emit), ip, self.http_port)
        except OSError as exc:
            await self.stop()
            raise WorkloadFailed(f"cannot listen on {ip}:{self.http_port} (HTTP): {os_error_text(exc)}") from None
        self.http_port = self._http.address[1]
        pod.log.write(f"{_ts()}\tinfo\totlpreceiver\tStarting HTTP server\t"
                      f"{_fields({**receiver, 'endpoint': f'{ip}:{self.http_port}'})}")
        pod.log.write(f"{_ts()}\tinfo\tservice\tEverything is ready. Begin running and processing data.")

    async def stop(self) -> None:
        self._stopped = True
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
            self._grpc = None
        if self._http is not None:
            await self._http.stop()
            self._http = None

    def alive(self) -> bool:
        return not self._stopped
