"""Rate limits on the Claude route (notebook 07): the policies, a burst of requests, the chart.

agentgateway's local rate limits are token buckets in each proxy (``traffic.rateLimit.local``
of an ``AgentgatewayPolicy``): N ``requests`` or N LLM ``tokens`` per ``Seconds``, ``Minutes``
or ``Hours``, plus an optional ``burst``. A refused request gets ``429 rate limit exceeded``
with ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset``;
``conditional`` entries give each kind of client its own bucket (the first whose CEL
``condition`` holds).

Example:
    >>> print(request_limit(requests=3).yaml())   # doctest: +ELLIPSIS
    apiVersion: agentgateway.dev/v1alpha1
    kind: AgentgatewayPolicy
    ...
          - requests: 3
            unit: Minutes
    <BLANKLINE>
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import llm
from .lab import Lab
from .manifests import Manifest
from .names import DEFAULT_NAMES, LAB_LABEL, Names
from .wait import attempt

if TYPE_CHECKING:  # pandas and Prometheus load only when a table or chart is asked for
    import pandas as pd

    from . import metrics

__all__ = [
    "CLIENT_HEADER",
    "Burst",
    "allowed_vs_limited",
    "burst",
    "headers_of",
    "limited_count",
    "per_client_limits",
    "request_limit",
    "token_limit",
    "until_limited",
]

Unit = Literal["Seconds", "Minutes", "Hours"]
CLIENT_HEADER = "x-client"
_RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _policy(names: Names, rate_limit: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": {"name": names.rate_limit_policy, "namespace": names.namespace, "labels": dict(LAB_LABEL)},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": names.llm_route}],
            "traffic": {"rateLimit": rate_limit},
        },
    }


def _entry(kind: str, amount: int, unit: Unit, burst: int) -> dict[str, Any]:
    entry: dict[str, Any] = {kind: amount, "unit": unit}
    if burst:
        entry["burst"] = burst
    return entry


def request_limit(names: Names = DEFAULT_NAMES, *, requests: int = 3, unit: Unit = "Minutes",
                  burst: int = 0) -> Manifest:
    """The policy: at most ``requests`` per ``unit`` (plus ``burst``) on the Claude route.

    Args:
        names: the lab's names (``lab.names``).
        requests: requests added to the bucket each ``unit``.
        unit: ``Seconds``, ``Minutes`` or ``Hours``.
        burst: extra room on top of ``requests`` (the bucket holds ``requests + burst``).
    """
    return Manifest(_policy(names, {"local": [_entry("requests", requests, unit, burst)]}))


def token_limit(names: Names = DEFAULT_NAMES, *, tokens: int = 200, unit: Unit = "Minutes",
                burst: int = 0) -> Manifest:
    """The policy: at most ``tokens`` LLM tokens (input + output) per ``unit`` on the Claude route."""
    return Manifest(_policy(names, {"local": [_entry("tokens", tokens, unit, burst)]}))


def per_client_limits(names: Names = DEFAULT_NAMES, *, limits: Mapping[str, int] | None = None,
                      others: int = 5, unit: Unit = "Minutes") -> Manifest:
    """The policy: a request bucket per client named in the ``x-client`` header, one for the rest.

    Args:
        limits: requests per ``unit`` by ``x-client`` value (default ``{"team-a": 2}``).
        others: requests per ``unit`` for everyone else (one shared bucket).
    """
    entries: list[dict[str, Any]] = [
        {"condition": f'request.headers["{CLIENT_HEADER}"] == "{client}"',
         "policy": {"local": [_entry("requests", amount, unit, 0)]}}
        for client, amount in (limits or {"team-a": 2}).items()
    ]
    entries.append({"policy": {"local": [_entry("requests", others, unit, 0)]}})
    return Manifest(_policy(names, {"conditional": entries}))


@dataclass
class Burst:
    """What a burst of requests got back: one row per request.

    Attributes:
        rows: ``n``, ``client``, ``status``, the ``x-ratelimit-*`` headers and the body (errors).
        results: the :class:`~agwlab.llm.ChatResult` of each request.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    results: list[llm.ChatResult] = field(default_factory=list)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.results]

    @property
    def allowed(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    @property
    def limited(self) -> list[llm.ChatResult]:
        """The refused requests (429)."""
        return [r for r in self.results if r.status == 429]

    @property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def __str__(self) -> str:
        head = f"{self.allowed} allowed, {len(self.limited)} limited"
        return f"{head}\n{self.frame.to_string(index=False)}" if self.rows else head

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p><b>{self.allowed} allowed, {len(self.limited)} limited</b></p>{self.frame.to_html(index=False)}"


def burst(lab: Lab, count: int = 5, *, client: str | None = None, prompt: str = "Say hi in three words.",
          path: str = "/anthropic", max_tokens: int = 50) -> Burst:
    """Send ``count`` chat requests one after another and tabulate what came back.

    Args:
        lab: the lab.
        count: how many requests.
        client: sent as the ``x-client`` header (for :func:`per_client_limits`).
        prompt: the user message.
        path: the route's path on the Gateway.
        max_tokens: caps each answer.
    """
    out = Burst()
    headers = {CLIENT_HEADER: client} if client else None
    for n in range(1, count + 1):
        result = llm.send_chat(lab.gateway_url(path), prompt, max_tokens=max_tokens, names=lab.names,
                               headers=headers)
        out.results.append(result)
        row: dict[str, Any] = {"n": n}
        if client:
            row["client"] = client
        row["status"] = result.status
        row["tokens"] = result.total_tokens if result.ok else ""
        for name in _RATE_HEADERS:
            row[name] = result.headers.get(name, "")
        row["body"] = "" if result.ok else html.unescape(result.body)[:60]
        out.rows.append(row)
    return out


def until_limited(lab: Lab, *, client: str | None = None, timeout: float = 60, at_most: int = 30,
                  path: str = "/anthropic") -> Burst:
    """Send requests one after another until the gateway answers 429 (or ``at_most`` were sent).

    A new policy reaches the proxy a moment after it is Accepted; sending until the first 429
    shows the bucket running dry however soon that is.
    """
    out = Burst()

    def send_one() -> tuple[bool, None]:
        one = burst(lab, 1, client=client, path=path)
        one.rows[0]["n"] = len(out.results) + 1
        out.rows += one.rows
        out.results += one.results
        return one.results[0].status == 429 or len(out.results) >= at_most, None

    attempt(send_one, timeout=timeout, interval=0)
    return out


def allowed_vs_limited(lab: Lab, route: str | None = None) -> metrics.Panel:
    """Requests on the Claude route by status and reason, from Prometheus (since the proxy started).

    ``reason`` is ``Upstream`` for answers from Claude and ``RateLimit`` for the gateway's 429s.
    """
    from . import metrics

    ref = lab.names.route_ref(route or lab.names.llm_route)
    query = f'sum by (status, reason) (agentgateway_requests_total{{route="{ref}"}})'
    frame = metrics.instant(lab, query)
    note = "" if not frame.empty else metrics.explain_no_data(lab, "agentgateway_requests_total")
    if not frame.empty:
        frame = frame[["status", "reason", "value"]].sort_values("status").reset_index(drop=True)
    return metrics.Panel("Requests on the Claude route: allowed vs limited", query, frame, note,
                         ["status", "reason"])


def limited_count(panel: metrics.Panel) -> float:
    """How many 429s with reason ``RateLimit`` a :func:`allowed_vs_limited` panel counted."""
    frame = panel.frame
    if frame.empty:
        return 0.0
    hits = frame[(frame["status"] == "429") & (frame["reason"] == "RateLimit")]
    return float(hits["value"].sum())


def headers_of(result: llm.ChatResult, names: Sequence[str] = _RATE_HEADERS) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of one answer (empty values when absent)."""
    return {n: result.headers.get(n, "") for n in names}
