"""The proxy's Prometheus metrics, named and labelled like agentgateway's (reference §3).

Values are kept in ``prometheus_client`` metric objects (one private registry per proxy);
the text is written here, in the shape agentgateway's Rust encoder produces: OpenMetrics
text with ``# HELP`` / ``# TYPE`` / ``# UNIT`` lines, counters sampled as ``_total``,
histograms as ``_sum``, ``_count`` then buckets with ``le`` first, no ``_created``
samples, and a final ``# EOF``. Unset label values are ``unknown``. The 21 families
agentgateway v1.4.1 registers are all there, in its order, with HELP and TYPE even when
nothing was recorded (the sandbox has no TLS listeners or cost catalog, so those stay
empty; ``guardrails.py`` counts ``guardrail_checks``).

Example:
    >>> m = ProxyMetrics(tag="1.4.1")
    >>> m.exposition().endswith("# EOF\\n")
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

from .context import LLMCall, RequestContext

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "ProxyMetrics",
    "content_type_for",
]

TEXT_CONTENT_TYPE = "text/plain;charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

ROUTE_LABELS = ("bind", "gateway", "listener", "route", "route_rule")
REQUEST_LABELS = ("backend", "protocol", "method", "status", "reason", *ROUTE_LABELS)
MCP_LABELS = ("method", "resource_type", "server", "resource", *ROUTE_LABELS)
GEN_AI_LABELS = (
    "gen_ai_operation_name", "gen_ai_system", "gen_ai_request_model", "gen_ai_response_model", *ROUTE_LABELS,
)
TOKEN_LABELS = ("gen_ai_token_type", *GEN_AI_LABELS)
CONNECTION_LABELS = ("bind", "gateway", "listener", "protocol")
MINIMAL_LABELS = ("backend", *ROUTE_LABELS)
OUTBOUND_LABELS = ("kind", "subtype")
GUARDRAIL_LABELS = ("phase", "action")
COST_LOOKUP_LABELS = ("status", *GEN_AI_LABELS)

REQUEST_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 80)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))          # 1, 4, 16, ... 67108864
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.001, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
PROCESSING_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
CONNECT_BUCKETS = (0.0005, 0.0015, 0.0043, 0.0126, 0.0368, 0.108, 0.316, 0.924, 2.71, 8.0)


def _v(value: object) -> str:
    """A label value: empty or missing values become ``unknown`` as in agentgateway."""
    if value is None or value == "":
        return "unknown"
    return str(value)


def content_type_for(accept: str | None) -> str:
    """The scrape's Content-Type: OpenMetrics when the scraper asks for it, else text/plain."""
    return OPENMETRICS_CONTENT_TYPE if accept and "application/openmetrics-text" in accept else TEXT_CONTENT_TYPE


class ProxyMetrics:
    """All metric families of one proxy.

    Args:
        tag: the ``agentgateway_build_info{tag=…}`` value (the agentgateway version shown).
    """

    def __init__(self, tag: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.build = Info("agentgateway_build", "Agentgateway build information.", registry=r)
        self.build.info({"tag": tag})
        self.token_usage = Histogram(
            "agentgateway_gen_ai_client_token_usage", "Number of tokens used per request.",
            TOKEN_LABELS, buckets=TOKEN_BUCKETS, registry=r,
        )
        self.cost = Counter(
            "agentgateway_gen_ai_client_cost", "Cumulative USD cost of generative AI requests.",
            GEN_AI_LABELS, unit="usd", registry=r,
        )
        self.gen_ai_duration = Histogram(
            "agentgateway_gen_ai_server_request_duration", "Duration of generative AI request.",
            GEN_AI_LABELS, buckets=GEN_AI_DURATION_BUCKETS, registry=r,
        )
        self.time_per_output_token = Histogram(
            "agentgateway_gen_ai_server_time_per_output_token",
            "Time to generate each output token for a given request.",
            GEN_AI_LABELS, buckets=TPOT_BUCKETS, registry=r,
        )
        self.time_to_first_token = Histogram(
            "agentgateway_gen_ai_server_time_to_first_token", "Time to generate the first token for a given request.",
            GEN_AI_LABELS, buckets=TTFT_BUCKETS, registry=r,
        )
        self.requests = Counter(
            "agentgateway_requests", "The total number of HTTP requests sent.", REQUEST_LABELS, registry=r,
        )
        self.guardrail_checks = Counter(
            "agentgateway_guardrail_checks", "Total number of guardrail checks.", GUARDRAIL_LABELS, registry=r,
        )
        self.cost_catalog_lookups = Counter(
            "agentgateway_cost_catalog_lookups", "Total number of model cost catalog lookups by resolution status.",
            COST_LOOKUP_LABELS, registry=r,
        )
        self.downstream_connections = Counter(
            "agentgateway_downstream_connections", "The total number of downstream connections established.",
            CONNECTION_LABELS, registry=r,
        )
        self.mcp_requests = Counter(
            "agentgateway_mcp_requests", "Total number of MCP tool calls.", MCP_LABELS, registry=r,
        )
        self.response_bytes = Counter(
            "agentgateway_response_bytes", "Total HTTP response bytes received.", REQUEST_LABELS,
            unit="bytes", registry=r,
        )
        self.request_duration = Histogram(
            "agentgateway_request_duration_seconds", "Duration of HTTP requests (seconds).", REQUEST_LABELS,
            unit="seconds", buckets=REQUEST_DURATION_BUCKETS, registry=r,
        )
        self.request_processing = Histogram(
            "agentgateway_request_processing_seconds",
            "Duration from receiving an HTTP request to sending the primary outbound call (seconds).",
            MINIMAL_LABELS, unit="seconds", buckets=PROCESSING_BUCKETS, registry=r,
        )
        self.response_processing = Histogram(
            "agentgateway_response_processing_seconds",
            "Duration from receiving the primary outbound response to sending the HTTP response (seconds).",
            MINIMAL_LABELS, unit="seconds", buckets=PROCESSING_BUCKETS, registry=r,
        )
        self.downstream_received = Counter(
            "agentgateway_downstream_received", "Total TCP bytes received per connection labels.",
            CONNECTION_LABELS, unit="bytes", registry=r,
        )
        self.downstream_sent = Counter(
            "agentgateway_downstream_sent", "Total TCP bytes transmitted per connection labels.",
            CONNECTION_LABELS, unit="bytes", registry=r,
        )
        self.upstream_connect_duration = Histogram(
            "agentgateway_upstream_connect_duration_seconds", "Duration to establish upstream connection (seconds).",
            ("transport",), unit="seconds", buckets=CONNECT_BUCKETS, registry=r,
        )
        self.upstream_call_duration = Histogram(
            "agentgateway_upstream_call_duration_seconds",
            "Duration of outbound calls made by agentgateway (seconds).",
            OUTBOUND_LABELS, unit="seconds", buckets=REQUEST_DURATION_BUCKETS, registry=r,
        )
        self.tls_handshake_duration = Histogram(
            "agentgateway_tls_handshake_duration_seconds",
            "Duration to complete inbound TLS/HTTPS handshake (seconds).",
            CONNECTION_LABELS, unit="seconds", buckets=CONNECT_BUCKETS, registry=r,
        )
        # The sandbox never retries, but the family is there as in agentgateway (no samples).
        self.retries = Counter(
            "agentgateway_retries", "The total number of request retries.", REQUEST_LABELS, registry=r,
        )
        self._text: dict[int, str] = {}
        self._watched: set[int] = set()
        self._changed: set[int] = set()
        for metric in vars(self).values():
            if isinstance(metric, (Counter, Histogram)):
                self._watch(metric)

    # -- recording -------------------------------------------------------------------------

    def record_request(self, ctx: RequestContext, *, response_bytes: int, duration: float) -> None:
        """Count one finished downstream request (requests, bytes, duration)."""
        labels = (
            ctx.backend_key, _v(ctx.protocol), _v(ctx.method), _v(ctx.status), _v(ctx.reason),
            *ctx.labels.as_dict().values(),
        )
        labels = tuple(_v(x) for x in labels)
        self.requests.labels(*labels).inc()
        self.response_bytes.labels(*labels).inc(response_bytes)
        self.request_duration.labels(*labels).observe(duration)

    def record_mcp_request(
        self,
        ctx: RequestContext,
        *,
        method: str,
        resource_type: str | None = None,
        server: str | None = None,
        resource: str | None = None,
    ) -> None:
        """Count one MCP JSON-RPC message that has a method (``agentgateway_mcp_requests_total``).

        Args:
            ctx: the request it arrived in (gives the route labels).
            method: the JSON-RPC method, e.g. ``tools/call``.
            resource_type: ``tool``/``prompt``/``resource``/``templates``/``task`` or None.
            server: the MCP target name, or None for list/initialize.
            resource: the tool/prompt name or resource URI, or None.
        """
        self.mcp_requests.labels(
            _v(method), _v(resource_type), _v(server), _v(resource), *map(_v, ctx.labels.as_dict().values())
        ).inc()

    def record_gen_ai(self, ctx: RequestContext, call: LLMCall, *, duration: float) -> None:
        """Record one LLM request: token usage by type, duration and (streams) token timings.

        As in v1.4.1 the duration is observed for upstream error responses too, with the
        response model ``unknown``.
        """
        base = (
            "chat", _v(call.system), _v(call.request_model), _v(call.response_model),
            *map(_v, ctx.labels.as_dict().values()),
        )
        for token_type in ("input", "output", "input_cache_read", "input_cache_write"):
            if token_type in call.tokens:
                self.token_usage.labels(token_type, *base).observe(call.tokens[token_type])
        self.gen_ai_duration.labels(*base).observe(duration)
        if call.first_token_at is not None:
            self.time_to_first_token.labels(*base).observe(call.first_token_at - ctx.started)
            output = call.tokens.get("output") or 0
            if output > 0:
                end = ctx.started + duration
                self.time_per_output_token.labels(*base).observe((end - call.first_token_at) / output)

    def record_outbound(self, ctx: RequestContext) -> None:
        """The primary outbound call's duration and the processing time either side of it."""
        if ctx.outbound_subtype is None:
            return
        minimal = (ctx.backend_key, *map(_v, ctx.labels.as_dict().values()))
        if ctx.upstream_duration is not None:
            self.upstream_call_duration.labels("Primary", ctx.outbound_subtype).observe(ctx.upstream_duration)
        if ctx.request_processing is not None:
            self.request_processing.labels(*minimal).observe(ctx.request_processing)
        if ctx.response_started is not None and ctx.response_headers_at is not None:
            self.response_processing.labels(*minimal).observe(max(0.0, ctx.response_headers_at - ctx.response_started))

    def record_connection(self, *, bind: str, gateway: str, listener: str, protocol: str = "http") -> None:
        """Count one accepted downstream connection."""
        self.downstream_connections.labels(_v(bind), _v(gateway), _v(listener), _v(protocol)).inc()

    def record_connection_closed(self, *, bind: str, gateway: str, listener: str, protocol: str = "http",
                                 sent: int, received: int) -> None:
        """Add a closed downstream connection's bytes (``downstream_sent``/``received_bytes``).

        v1.4.1 counts the bytes a downstream socket writes and reads, and adds them under the
        connection's labels (those of ``downstream_connections``) when the socket is dropped
        (``transport/stream.rs``, ``impl Drop for Metrics``; labels from ``proxy/gateway.rs``).
        """
        labels = (_v(bind), _v(gateway), _v(listener), _v(protocol))
        self.downstream_sent.labels(*labels).inc(sent)
        self.downstream_received.labels(*labels).inc(received)

    def record_upstream_connect(self, transport: str, seconds: float) -> None:
        """Observe one new upstream connection (``upstream_connect_duration_seconds{transport}``).

        As v1.4.1's connector (``client/mod.rs``, ``Connector::connect``): once per connection it
        opens (a pooled connection reused is not observed, a failed connect is not either), from
        dialling to the end of the TLS handshake, in whole milliseconds; ``transport`` is
        ``plaintext`` or ``tls``.
        """
        self.upstream_connect_duration.labels(_v(transport)).observe(int(seconds * 1000) / 1000)

    # -- exposition ------------------------------------------------------------------------

    def _watch(self, metric: Counter | Histogram) -> None:
        """Mark ``metric`` changed whenever a labelled child of it is taken (every update goes
        through ``labels(...)``), so :meth:`exposition` re-renders only what changed."""
        labels, key = metric.labels, id(metric)
        self._watched.add(key)
        self._changed.add(key)

        def marking_labels(*values: str, **named: str) -> Any:
            self._changed.add(key)
            return labels(*values, **named)

        metric.labels = marking_labels  # type: ignore[method-assign, assignment]

    def exposition(self) -> str:
        """The scrape body (OpenMetrics text in agentgateway's layout, ending ``# EOF``).

        Prometheus scrapes every proxy each second, and one rendering of a proxy that has
        served traffic takes milliseconds; with many Gateways in one sandbox process (a
        workshop) that adds up to most of its event loop. So each family's text is kept
        and rendered again only when the family changed; collectors registered by others
        (e.g. the MCP sessions gauge) are always rendered fresh.
        """
        collectors = getattr(self.registry, "_collector_to_names", None)
        if collectors is None:  # another prometheus_client layout: render everything
            return "".join(_format_families(self.registry.collect())) + "# EOF\n"
        parts = []
        for collector in list(collectors):
            key = id(collector)
            if key not in self._watched:
                parts.append("".join(_format_families(collector.collect())))
                continue
            if key in self._changed or key not in self._text:
                self._changed.discard(key)  # before rendering: a change meanwhile marks it again
                self._text[key] = "".join(_format_families(collector.collect()))
            parts.append(self._text[key])
        return "".join(parts) + "# EOF\n"


def _number(value: float, *, integer: bool) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if integer and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_families(families: Iterable) -> Iterable[str]:
    for family in families:
        name = family.name
        yield f"# HELP {name} {_escape(family.documentation)}\n"
        yield f"# TYPE {name} {family.type}\n"
        if family.unit:
            yield f"# UNIT {name} {family.unit}\n"
        for sample in _ordered(family):
            labels = dict(sample.labels)
            ordered = {}
            if "le" in labels:
                ordered["le"] = _number(float(labels.pop("le")), integer=False)
            ordered.update(labels)
            label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in ordered.items())
            integer = not sample.name.endswith("_sum")
            value = _number(sample.value, integer=integer)
            yield f"{sample.name}{{{label_text}}} {value}\n" if label_text else f"{sample.name} {value}\n"


def _ordered(family) -> Iterable:
    """Samples in the Rust encoder's order: per label set ``_sum``, ``_count``, then buckets."""
    samples = [s for s in family.samples if not s.name.endswith("_created")]
    if family.type != "histogram":
        return samples
    groups: dict[tuple, list] = {}
    for sample in samples:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        groups.setdefault(key, []).append(sample)
    rank = {"_sum": 0, "_count": 1, "_bucket": 2}
    out = []
    for group in groups.values():
        out.extend(sorted(group, key=lambda s: rank.get(s.name[len(family.name):], 3)))
    return out
