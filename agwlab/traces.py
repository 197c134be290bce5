"""Follow one request by its trace id: the proxy's access log, the collector's spans, a waterfall.

Example:
    >>> from agwlab import connect, llm, traces
    >>> lab = connect()
    >>> result = llm.chat(lab, "Hello")
    >>> traces.find_access_log(lab, result.trace_id)["http.status"]   # the proxy's k=v line as a dict
    '200'
    >>> spans = traces.collector_spans(lab, result.trace_id)
    >>> "Server" in set(spans["kind"])   # the gateway's span for the request it received
    True
    >>> fig = traces.waterfall(spans)
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import kube
from .errors import LabError, NotFound
from .names import OTLP_GRPC_PORT
from .redaction import redact
from .wait import poll

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .lab import Lab

__all__ = [
    "KEY_ATTRIBUTES",
    "collector_log",
    "collector_spans",
    "find_access_log",
    "parse_access_log",
    "parse_access_log_line",
    "parse_collector_log",
    "proxy_log",
    "spans_frame",
    "waterfall",
]

# The attributes worth a column of their own when showing spans.
KEY_ATTRIBUTES = (
    "http.method",
    "http.path",
    "http.status",
    "route",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "mcp.method.name",
    "mcp.target",
    "gen_ai.tool.name",
)

_KV = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_access_log_line(line: str) -> dict[str, Any] | None:
    """One access-log line of agentgateway as a dict, or ``None`` if it is not one.

    Reads the text format (``<time>\\tinfo\\trequest k=v k=v …``; quoted values are JSON
    strings) and the JSON format (``{"scope":"request",…}``). The time and level are kept
    under ``time`` and ``level``.

    Example:
        >>> parse_access_log_line('2026-01-01T00:00:00Z\\tinfo\\trequest http.status=200 duration=3ms')
        {'time': '2026-01-01T00:00:00Z', 'level': 'info', 'http.status': '200', 'duration': '3ms'}
    """
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("scope") != "request":
            return None
        return {k: v for k, v in data.items() if k != "scope"}
    parts = line.split("\t", 2)
    if len(parts) != 3 or not parts[2].startswith("request "):
        return None
    entry: dict[str, Any] = {"time": parts[0], "level": parts[1]}
    for key, value in _KV.findall(parts[2][len("request ") :]):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.strip('"')
        entry[key] = value
    return entry


def parse_access_log(text: str) -> list[dict[str, Any]]:
    """Every access-log line in a log, parsed (other lines are skipped)."""
    return [e for e in (parse_access_log_line(line) for line in text.splitlines()) if e is not None]


def proxy_log(lab: Lab, *, tail: int | None = 2000) -> str:
    """The Gateway proxy's log: every Pod labelled ``gateway.networking.k8s.io/gateway-name=<gateway>``."""
    labels = {"gateway.networking.k8s.io/gateway-name": lab.gateway_name}
    return kube.logs(lab, f"deploy/{lab.gateway_name}", lab.gateway_namespace, labels=labels, tail=tail)


def find_access_log(lab: Lab, trace_id: str, *, timeout: float = 20, interval: float = 0.5) -> dict[str, Any]:
    """The proxy's access-log entry for one trace id (polls until it appears).

    Raises:
        WaitTimeout: no line with ``trace.id=<trace_id>`` appeared in time.
    """

    def look() -> tuple[bool, dict[str, Any]]:
        text = proxy_log(lab)
        if trace_id in text:
            for entry in parse_access_log(text):
                if entry.get("trace.id") == trace_id:
                    return True, {k: redact(v) if isinstance(v, str) else v for k, v in entry.items()}
        return False, {}

    return poll(
        look,
        timeout=timeout,
        interval=interval,
        what=f"trace.id={trace_id} in the logs of deploy/{lab.gateway_name}",
        hint="trace ids are logged only for sampled requests: send the request with a traceparent "
        "(agwlab.llm does) or apply the tracing AgentgatewayPolicy",
        describe=lambda _: "no such line",
    )


_FIELD = re.compile(
    r"^\s*(Trace ID|Parent ID|ID|Name|Kind|Start time|End time|Status code|Status message)\s*:\s?(.*)$"
)
_ATTR = re.compile(r"^\s*-> ([^:]+): (\w+)\((.*)\)\s*$")
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d{4})")


def _attr_value(kind: str, raw: str) -> Any:
    if kind == "Int":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "Double":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "Bool":
        return raw == "true"
    return raw


def _timestamp(raw: str) -> pd.Timestamp | None:
    m = _TIME.search(raw)
    if not m:
        return None
    return pd.Timestamp(f"{m.group(1)}{m.group(2)}").tz_convert("UTC")


def parse_collector_log(text: str) -> list[dict[str, Any]]:
    """Every span in an OpenTelemetry collector log written by the debug exporter (detailed).

    Returns one dict per span: ``trace_id``, ``parent_id``, ``span_id``, ``name``, ``kind``,
    ``start``, ``end``, ``status``, ``attributes`` (dict) and ``resource`` (dict).
    """
    spans: list[dict[str, Any]] = []
    resource: dict[str, Any] = {}
    section = ""  # which block attribute lines belong to: "resource", "span" or other
    span: dict[str, Any] | None = None
    for raw_line in text.splitlines():
        # The first line of each exporter message follows "<time>\tinfo\t"; the rest are bare.
        line = raw_line.split("\t")[-1] if "\t" in raw_line else raw_line
        stripped = line.strip()
        if stripped.startswith("ResourceSpans #"):
            resource, section, span = {}, "", None
            continue
        if stripped == "Resource attributes:":
            section = "resource"
            continue
        if stripped.startswith("Span #"):
            span = {"attributes": {}, "resource": resource}
            spans.append(span)
            section = "span"
            continue
        if stripped == "Attributes:":
            section = "span" if span is not None else section
            continue
        if stripped in ("Events:", "Links:") or stripped.startswith(
            ("ScopeSpans #", "SpanEvent #", "SpanLink #")
        ):
            section = "other"
            continue
        m = _ATTR.match(line)
        if m:
            key, kind, value = m.group(1).strip(), m.group(2), m.group(3)
            if section == "resource":
                resource[key] = _attr_value(kind, value)
            elif section == "span" and span is not None:
                span["attributes"][key] = _attr_value(kind, value)
            continue
        m = _FIELD.match(line)
        if m and span is not None:
            field, value = m.group(1), m.group(2).strip()
            if field == "Trace ID":
                span["trace_id"] = value
            elif field == "Parent ID":
                span["parent_id"] = value
            elif field == "ID":
                span["span_id"] = value
            elif field == "Name":
                span["name"] = value
            elif field == "Kind":
                span["kind"] = value.removeprefix("SPAN_KIND_").capitalize() if value.isupper() else value
            elif field == "Start time":
                span["start"] = _timestamp(value)
            elif field == "End time":
                span["end"] = _timestamp(value)
            elif field == "Status code":
                span["status"] = value
    return [s for s in spans if s.get("trace_id")]


_COLUMNS = ["name", "kind", "span_id", "parent_id", "start", "end", "duration_ms", "service", "summary"]


def spans_frame(spans: list[dict[str, Any]]) -> pd.DataFrame:
    """Spans as a DataFrame ordered by start time.

    Columns: name, kind, span_id, parent_id, start, end, duration_ms, service, summary (the
    key attributes as ``k=v``), one column per key attribute present, and ``attributes``.
    """
    rows = []
    for s in spans:
        attrs = s.get("attributes") or {}
        start, end = s.get("start"), s.get("end")
        row: dict[str, Any] = {
            "name": s.get("name", ""),
            "kind": s.get("kind", ""),
            "span_id": s.get("span_id", ""),
            "parent_id": s.get("parent_id", ""),
            "start": start,
            "end": end,
            "duration_ms": (end - start).total_seconds() * 1000
            if start is not None and end is not None
            else None,
            "service": (s.get("resource") or {}).get("service.name", ""),
            "summary": ", ".join(f"{k}={attrs[k]}" for k in KEY_ATTRIBUTES if k in attrs),
        }
        for key in KEY_ATTRIBUTES:
            if key in attrs:
                row[key] = attrs[key]
        row["attributes"] = attrs
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else _COLUMNS)
    if rows:
        frame = frame.sort_values("start", kind="stable").reset_index(drop=True)
    return frame


def collector_log(lab: Lab, *, since_seconds: int | None = None, tail: int | None = None) -> str:
    """The collector's log (``deploy/opentelemetry-collector-traces`` in ``telemetry``: ``lab.names``),
    optionally only its newest lines (a shared collector's log grows all day).

    Raises:
        NotFound: the collector is not deployed (apply the tracing stage).
    """
    try:
        return kube.logs(lab, f"deploy/{lab.names.collector}", lab.telemetry_namespace,
                         since_seconds=since_seconds, tail=tail)
    except NotFound:
        raise NotFound(
            f"no deploy/{lab.names.collector} in namespace {lab.telemetry_namespace}: apply the tracing stage "
            "(02-traces) first"
        ) from None


def collector_spans(
    lab: Lab, trace_id: str, *, timeout: float = 30, interval: float = 0.5, min_spans: int = 1,
    since_seconds: int = 900,
) -> pd.DataFrame:
    """The spans of one trace, read from the collector's log (polls: export is batched).

    Waits until at least ``min_spans`` spans, one of them a Server span, have arrived. Only the
    last ``since_seconds`` of the log are read on each poll.

    Raises:
        WaitTimeout: the trace did not reach the collector in time.
        NotFound: there is no collector.
    """

    def look() -> tuple[bool, list[dict[str, Any]]]:
        text = collector_log(lab, since_seconds=since_seconds)
        spans = [s for s in parse_collector_log(text) if s.get("trace_id") == trace_id] if trace_id in text else []
        has_server = any(s.get("kind") == "Server" for s in spans)
        return len(spans) >= min_spans and has_server, spans

    spans = poll(
        look,
        timeout=timeout,
        interval=interval,
        what=f"{min_spans} span(s) of trace {trace_id}, a Server span among them, in the collector's log",
        hint="is the tracing AgentgatewayPolicy applied and Accepted, and does its backendRef name "
        f"{lab.names.collector_host}:{OTLP_GRPC_PORT}?",
        describe=lambda found: f"{len(found)} span(s): {', '.join(str(s.get('kind')) for s in found) or 'none'}",
    )
    frame = spans_frame(spans)
    frame.attrs["trace_id"] = trace_id
    return frame


def _depths(frame: pd.DataFrame) -> list[int]:
    parents = dict(zip(frame["span_id"], frame["parent_id"], strict=True))
    depths = []
    for span_id in frame["span_id"]:
        depth, seen, current = 0, set(), span_id
        while parents.get(current) in parents and current not in seen:
            seen.add(current)
            current = parents[current]
            depth += 1
        depths.append(depth)
    return depths


def waterfall(frame: pd.DataFrame, *, title: str | None = None, ax: Any = None) -> Figure:
    """A waterfall chart of a trace's spans: one bar per span, offset from the first start.

    Raises:
        LabError: the frame has no spans.
    """
    import matplotlib.pyplot as plt

    if frame.empty:
        raise LabError("no spans to draw: collector_spans() found none for this trace")
    t0 = frame["start"].min()
    offsets = [(s - t0).total_seconds() * 1000 for s in frame["start"]]
    durations = [d if d is not None else 0.0 for d in frame["duration_ms"]]
    depths = _depths(frame)
    # children under their parent: a tree drawn in a fixed-width font, every label padded to one width
    # (tick labels are right-aligned, so leading spaces alone would not show)
    labels = [f"{'   ' * (d - 1) + '└─ ' if d else ''}{name} ({kind})"
              for d, name, kind in zip(depths, frame["name"], frame["kind"], strict=True)]
    width = max(len(label) for label in labels)
    labels = [label.ljust(width) for label in labels]
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * len(frame)))
    else:
        fig = ax.figure
    colours = ["#8250df" if k == "Server" else "#0969da" for k in frame["kind"]]
    y = list(range(len(frame)))[::-1]
    ax.barh(y, [max(d, 0.05) for d in durations], left=offsets, color=colours, height=0.6)
    for yi, off, dur in zip(y, offsets, durations, strict=True):
        ax.text(off + max(dur, 0.05), yi, f" {dur:.1f} ms", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9, fontfamily="monospace")
    ax.set_xlabel("milliseconds since the first span started")
    ax.set_title(title or f"trace {frame.attrs.get('trace_id', '')}".strip())
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
