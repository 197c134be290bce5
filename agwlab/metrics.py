"""agentgateway's Prometheus metrics as DataFrames and charts, names and labels discovered first.

Every panel first asks Prometheus which metric names and labels exist, so a chart never
stays silently empty because a name is wrong; when there is no data it says why (Prometheus
down, no scrape target, target down, no traffic yet, or a label that is not there).

Example:
    >>> from agwlab import connect, llm, metrics
    >>> lab = connect()
    >>> answer = llm.chat(lab, "Hello")
    >>> samples = metrics.wait_for_metric(lab, "agentgateway_requests_total")
    >>> metrics.metric_names(lab)[:2]
    ['agentgateway_build_info', 'agentgateway_downstream_connections_total']
    >>> fig = metrics.request_rate(lab).plot()   # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from .errors import PrometheusUnavailable, WaitTimeout
from .wait import attempt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .lab import Lab

__all__ = [
    "Panel",
    "explain_no_data",
    "gateway_matcher",
    "instant",
    "label_names",
    "latency_percentiles",
    "mcp_requests_by_method",
    "metric_names",
    "prometheus",
    "proxy_targets",
    "range_query",
    "request_rate",
    "scrape_interval",
    "targets",
    "token_usage",
    "tool_calls_by_tool",
    "wait_for_metric",
    "wait_seconds",
]

MCP_REQUESTS = "agentgateway_mcp_requests_total"
REQUESTS = "agentgateway_requests_total"
TOKEN_USAGE = "agentgateway_gen_ai_client_token_usage_sum"
DURATION_BUCKETS = "agentgateway_request_duration_seconds_bucket"


def gateway_matcher(lab: Lab | str) -> str:
    """``gateway="<namespace>/<name>"``: the learner's own Gateway, so on a shared Prometheus the
    charts show only their traffic (empty for a bare Prometheus URL).

    Example:
        >>> gateway_matcher("http://127.0.0.1:9090")
        ''
    """
    return "" if isinstance(lab, str) else f'gateway="{lab.names.gateway_ref}"'


def _sel(lab: Lab | str, *matchers: str) -> str:
    """A ``{…}`` selector of ``matchers`` plus the learner's Gateway (empty when there is nothing)."""
    parts = [m for m in (*matchers, gateway_matcher(lab)) if m]
    return "{" + ",".join(parts) + "}" if parts else ""


def _url(lab: Lab | str) -> str:
    return lab if isinstance(lab, str) else lab.prometheus_url()


def _access(lab: Lab | str) -> Any:
    """Credentials for the lab's Prometheus (the kubeconfig's when it is reached through the
    API server's service proxy; none for a plain URL)."""
    from .locate import ApiHttp

    return ApiHttp() if isinstance(lab, str) else lab.prometheus_http()


def prometheus(lab: Lab | str) -> PrometheusConnect:
    """A ``PrometheusConnect`` for the lab's Prometheus (or a URL)."""
    access = _access(lab)
    return PrometheusConnect(
        _url(lab), headers=access.headers or None, session=access.requests_session(),
        retry=Retry(total=1, backoff_factor=0.1), timeout=10,
    )


def _api(lab: Lab | str, path: str, params: Mapping[str, str] | tuple[tuple[str, str], ...] | None = None) -> Any:
    url = _url(lab)
    access = _access(lab)
    try:
        response = httpx.get(f"{url}{path}", params=params, timeout=10, headers=access.headers,
                             verify=access.ssl_context())
    except httpx.HTTPError as exc:
        raise PrometheusUnavailable(
            f"Prometheus at {url} does not answer ({type(exc).__name__}): is it running?"
        ) from None
    if response.status_code != 200:
        raise PrometheusUnavailable(
            f"Prometheus at {url} answered {response.status_code} to {path}: {response.text[:200]}"
        )
    return response.json().get("data")


def metric_names(lab: Lab | str, prefix: str = "agentgateway_") -> list[str]:
    """Every metric name Prometheus has, starting with ``prefix``."""
    names = _api(lab, "/api/v1/label/__name__/values") or []
    return sorted(n for n in names if n.startswith(prefix))


def label_names(lab: Lab | str, metric: str) -> list[str]:
    """The label names the series of one metric carry (``__name__`` left out)."""
    series = _api(lab, "/api/v1/series", (("match[]", metric),)) or []
    return sorted({k for s in series for k in s if k != "__name__"})


def targets(lab: Lab | str) -> pd.DataFrame:
    """Prometheus's scrape targets and whether each is up (the ``up`` metric)."""
    rows = [{**r["metric"], "up": float(r["value"][1])} for r in prometheus(lab).custom_query("up")]
    return pd.DataFrame(rows)


def proxy_targets(lab: Lab) -> pd.DataFrame:
    """The scrape targets of the lab's own proxy Pods (``up{namespace=…, pod=~"<gateway>-.*"}``),
    not just any target: a cluster's Prometheus scrapes dozens of others."""
    query = f'up{{namespace="{lab.gateway_namespace}", pod=~"{lab.gateway_name}-.*"}}'
    rows = [{**r["metric"], "up": float(r["value"][1])} for r in prometheus(lab).custom_query(query)]
    return pd.DataFrame(rows)


def explain_no_data(lab: Lab | str, metric: str) -> str:
    """Why a metric has no data, in one sentence that says what to do."""
    try:
        up = targets(lab) if isinstance(lab, str) else proxy_targets(lab)
    except Exception as exc:
        return f"Prometheus does not answer ({type(exc).__name__}): check it runs and AGWLAB_PROMETHEUS_URL."
    if up.empty:
        return (
            "Prometheus has no scrape target for the gateway's proxy Pods yet. It finds them a few seconds "
            "after the Gateway is Programmed; if it never does, Prometheus does not select agentgateway's "
            "PodMonitor: install kube-prometheus-stack with "
            "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false, or agentgateway with "
            "monitoring.serviceMonitor.extraLabels.release=<your kube-prometheus-stack release> "
            "(python -m agwlab cluster plan)."
        )
    if not (up["up"] == 1).any():
        return (
            "every scrape target is down (up == 0): is the Gateway's proxy Pod running? "
            "Port 15020 serves /metrics."
        )
    names = metric_names(lab, prefix="")
    if metric not in names:
        return (
            f"{metric} has no samples yet: agentgateway creates it with the first matching request. "
            "Send some traffic, then wait for the next scrape (a few seconds)."
        )
    return f"{metric} exists, but this query matched no series: check the label values in the query."


@dataclass
class Panel:
    """One query's result: a DataFrame, the PromQL that made it, and why it is empty if it is.

    Attributes:
        title: what the panel shows.
        query: the PromQL (or several, one per line).
        frame: the data (instant panels: labels + ``value``; range panels: ``time``, ``series``, ``value``).
        note: why there is no data ("" when there is).
        by: the label columns that name a bar or line.
    """

    title: str
    query: str
    frame: pd.DataFrame
    note: str = ""
    by: list[str] = field(default_factory=list)
    kind: str = "bar"

    @property
    def empty(self) -> bool:
        return self.frame.empty

    def plot(self, ax: Any = None) -> Figure | None:
        """Draw the panel with matplotlib (a bar chart, or lines over time). ``None`` when empty."""
        import matplotlib.pyplot as plt

        if self.frame.empty:
            print(f"{self.title}: no data. {self.note}")
            return None
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 3.2))
        else:
            fig = ax.figure
        if self.kind == "line":
            wide = self.frame.pivot_table(index="time", columns="series", values="value", aggfunc="sum")
            for column in wide.columns:
                ax.plot(wide.index, wide[column], label=str(column), marker=".")
            ax.legend(fontsize=8, loc="upper left")
            ax.set_xlabel("time (UTC)")
            fig.autofmt_xdate()
        elif self.kind == "grouped":
            wide = self.frame.pivot_table(index=self.by[0], columns=self.by[1], values="value", aggfunc="sum")
            wide.plot.bar(ax=ax, rot=0)
        else:
            labels = [" / ".join(str(r[c]) for c in self.by) for _, r in self.frame.iterrows()]
            ax.bar(labels, self.frame["value"], color="#8250df")
            ax.tick_params(axis="x", labelrotation=20)
        ax.set_title(self.title)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        return fig

    def __str__(self) -> str:
        head = f"{self.title}\n  query: {self.query}"
        if self.frame.empty:
            return f"{head}\n  no data: {self.note}"
        return f"{head}\n{self.frame.to_string(index=False)}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        body = (
            f"<p><b>No data.</b> {html.escape(self.note)}</p>"
            if self.frame.empty
            else self.frame.to_html(index=False)
        )
        return f"<h4>{html.escape(self.title)}</h4><pre>{html.escape(self.query)}</pre>{body}"


def instant(lab: Lab | str, query: str) -> pd.DataFrame:
    """An instant query as a DataFrame: one row per series, its labels as columns plus ``value``."""
    try:
        result = prometheus(lab).custom_query(query)
    except Exception as exc:
        raise PrometheusUnavailable(f"query failed ({type(exc).__name__}: {exc}): {query}") from None
    rows = [{**r["metric"], "value": float(r["value"][1])} for r in result]
    return pd.DataFrame(rows)


def range_query(
    lab: Lab | str, query: str, *, minutes: float = 10, step: str = "5s", series: Sequence[str] = ()
) -> pd.DataFrame:
    """A range query as a long DataFrame: ``time`` (UTC), ``series``, ``value``.

    ``series`` is made of the values of the labels named in ``series``.
    """
    end = datetime.now(UTC)
    start = end - timedelta(minutes=minutes)
    try:
        result = prometheus(lab).custom_query_range(query, start_time=start, end_time=end, step=step)
    except Exception as exc:
        raise PrometheusUnavailable(f"range query failed ({type(exc).__name__}: {exc}): {query}") from None
    rows = []
    for r in result:
        name = " / ".join(str(r["metric"].get(s, "")) for s in series) or query
        for ts, value in r["values"]:
            rows.append(
                {"time": pd.Timestamp(float(ts), unit="s", tz="UTC"), "series": name, "value": float(value)}
            )
    return pd.DataFrame(rows, columns=["time", "series", "value"])


def _prepare(lab: Lab | str, metric: str, needed: Sequence[str]) -> str:
    """ "" when the metric exists with the needed labels, else why not."""
    if metric not in metric_names(lab, prefix=""):
        return explain_no_data(lab, metric)
    present = label_names(lab, metric)
    missing = [label for label in needed if label not in present]
    if missing:
        return (
            f"{metric} has no label {', '.join(missing)} here (it has: {', '.join(present)}); "
            "this agentgateway version names its labels differently."
        )
    return ""


def _instant_panel(lab: Lab | str, title: str, metric: str, query: str, by: list[str]) -> Panel:
    note = _prepare(lab, metric, by)
    frame = pd.DataFrame(columns=[*by, "value"]) if note else instant(lab, query)
    if not note and frame.empty:
        note = explain_no_data(lab, metric)
    if not frame.empty:
        frame = frame[[c for c in by if c in frame.columns] + ["value"]].sort_values("value", ascending=False)
        frame = frame.reset_index(drop=True)
    return Panel(title, query, frame, note, by)


def mcp_requests_by_method(lab: Lab | str) -> Panel:
    """MCP JSON-RPC messages by method (``initialize``, ``tools/list`` …), since the proxy started."""
    query = f"sum by (method) ({MCP_REQUESTS}{_sel(lab)})"
    return _instant_panel(lab, "MCP requests by method", MCP_REQUESTS, query, ["method"])


def tool_calls_by_tool(lab: Lab | str) -> Panel:
    """``tools/call`` requests by MCP target (``server``) and tool (``resource``)."""
    selector = _sel(lab, 'method="tools/call"')
    query = f"sum by (server, resource) ({MCP_REQUESTS}{selector})"
    return _instant_panel(lab, "MCP tool calls by tool", MCP_REQUESTS, query, ["server", "resource"])


def token_usage(lab: Lab | str) -> Panel:
    """LLM tokens by type (``input``/``output``) and requested model, since the proxy started."""
    query = f"sum by (gen_ai_token_type, gen_ai_request_model) ({TOKEN_USAGE}{_sel(lab)})"
    return _instant_panel(
        lab, "LLM token usage", TOKEN_USAGE, query, ["gen_ai_token_type", "gen_ai_request_model"]
    )


def request_rate(lab: Lab | str, *, minutes: float = 10, step: str = "5s", by: str = "route") -> Panel:
    """Requests per second through the Gateway over time, one line per ``by`` label value."""
    query = f"sum by ({by}) (rate({REQUESTS}{_sel(lab)}[1m]))"
    note = _prepare(lab, REQUESTS, [by])
    frame = (
        pd.DataFrame(columns=["time", "series", "value"])
        if note
        else range_query(lab, query, minutes=minutes, step=step, series=[by])
    )
    if not note and frame.empty:
        note = explain_no_data(lab, REQUESTS)
    return Panel(f"Requests per second by {by}", query, frame, note, [by], kind="line")


def latency_percentiles(
    lab: Lab | str,
    *,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    by: str = "route",
    window: str | None = None,
) -> Panel:
    """Request latency percentiles (seconds) per ``by`` label, from the duration histogram.

    Args:
        quantiles: which percentiles.
        by: the label to split by.
        window: a rate window such as ``"5m"``; ``None`` uses every request since the proxy started.
    """
    buckets = f"rate({DURATION_BUCKETS}{_sel(lab)}[{window}])" if window else DURATION_BUCKETS + _sel(lab)
    queries = [f"histogram_quantile({q}, sum by (le, {by}) ({buckets}))" for q in quantiles]
    note = _prepare(lab, DURATION_BUCKETS, ["le", by])
    frames = []
    if not note:
        for q, query in zip(quantiles, queries, strict=True):
            frame = instant(lab, query)
            if not frame.empty:
                frame["quantile"] = f"p{round(q * 100):d}"
                frames.append(frame)
    columns = [by, "quantile", "value"]
    frame = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    frame = frame.dropna(subset=["value"]) if not frame.empty else frame
    if not note and frame.empty:
        note = explain_no_data(lab, DURATION_BUCKETS)
    return Panel(
        "Request latency percentiles (seconds)",
        "\n".join(queries),
        frame,
        note,
        [by, "quantile"],
        kind="grouped",
    )


def scrape_interval(lab: Lab) -> float:
    """Seconds between scrapes of the lab's proxy, as Prometheus reports its targets (the
    PodMonitor's ``interval``; agentgateway's chart sets 15s). 15 when it cannot be read."""
    try:
        data = _api(lab, "/api/v1/targets", {"state": "active"})
    except PrometheusUnavailable:
        return 15.0
    for target in (data or {}).get("activeTargets") or []:
        labels = target.get("labels") or {}
        if labels.get("namespace") == lab.gateway_namespace and str(labels.get("pod", "")).startswith(
                f"{lab.gateway_name}-"):
            text = str(target.get("scrapeInterval") or "15s")
            units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            for unit in ("ms", "s", "m", "h"):
                if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
                    return float(text[: -len(unit)]) * units[unit]
    return 15.0


def wait_seconds(lab: Lab, *, base: float = 20) -> float:
    """How long to wait for a new sample: ``base`` seconds, or four scrape intervals when
    Prometheus scrapes the proxy less often (a rate over a window needs two samples)."""
    return max(base, 4 * scrape_interval(lab))


def wait_for_metric(
    lab: Lab | str, metric: str, *, match: str = "", timeout: float | None = None, interval: float = 1.0
) -> pd.DataFrame:
    """Wait until Prometheus has samples of a metric (optionally matching ``{label="…"}``).

    Args:
        match: a label matcher such as ``'{method="tools/call"}'``.
        timeout: seconds; default :func:`wait_seconds` (scaled to the proxy's scrape interval).

    Returns:
        The matching series (instant query).

    Raises:
        WaitTimeout: none arrived in time; the message says why, as far as can be told.
    """
    if timeout is None:
        timeout = 30.0 if isinstance(lab, str) else wait_seconds(lab, base=30)
    query = f"{metric}{match}"

    def step() -> tuple[bool, pd.DataFrame]:
        try:
            frame = instant(lab, query)
        except PrometheusUnavailable:
            frame = pd.DataFrame()
        return not frame.empty, frame

    done, frame = attempt(step, timeout=timeout, interval=interval)
    if done:
        return frame
    reason = explain_no_data(lab, metric)
    raise WaitTimeout(f"waited {timeout:g}s for samples of {query}; {reason}", last_seen=reason)
