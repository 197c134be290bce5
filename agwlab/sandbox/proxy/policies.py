"""Traffic policies the controller resolves onto a route rule (``Rule.traffic``).

These are the proxy-side shapes of ``AgentgatewayPolicy`` ``spec.traffic`` fields, already
translated the way agentgateway v1.4.1's controller translates them
(``controller/pkg/agentgateway/plugins/traffic_plugin.go``). The proxy never reads the
policy objects; the modules that act on these live next to this one (``ratelimit.py``).

Example:
    >>> limit = LocalRateLimit(policy="default/limits", kind="requests", max_tokens=3,
    ...                        tokens_per_fill=3, fill_interval=60.0)
    >>> TrafficPolicies(rate_limits=(limit,)).rate_limits[0].kind
    'requests'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LocalRateLimit", "TrafficPolicies"]


@dataclass(frozen=True)
class LocalRateLimit:
    """One local token bucket, as v1.4.1's controller hands it to the proxy.

    ``traffic.rateLimit.local[0]`` becomes ``max_tokens = requests|tokens + burst``,
    ``tokens_per_fill = requests|tokens`` and ``fill_interval`` = one ``unit``; only the
    first entry of ``local`` is used (the v1.4.1 controller's ``TODO: support multiple``).
    ``condition`` is the CEL expression of a ``conditional`` entry (``None``: unconditional).

    Args:
        policy: ``<namespace>/<name>`` of the AgentgatewayPolicy (with the entry's index
            for conditional entries); each distinct bucket has its own key.
        kind: ``requests`` (each request costs 1) or ``tokens`` (LLM tokens, counted after
            the response).
    """

    policy: str
    kind: Literal["requests", "tokens"]
    max_tokens: int
    tokens_per_fill: int
    fill_interval: float
    condition: str | None = None


@dataclass(frozen=True)
class TrafficPolicies:
    """Everything ``spec.traffic`` contributes to one route rule.

    ``rate_limits`` holds the candidate buckets in order: conditional entries first (the
    first whose condition holds is applied), then at most one unconditional entry.
    """

    rate_limits: tuple[LocalRateLimit, ...] = ()
