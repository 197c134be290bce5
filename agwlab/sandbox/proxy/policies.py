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

__all__ = ["Eviction", "HealthPolicy", "JwtAuthentication", "JwtProvider", "LocalRateLimit", "RetryPolicy",
           "RuleSet", "TrafficPolicies"]


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
class RetryPolicy:
    """``traffic.retry``: ``attempts`` retries after the first try (v1.4.1 caps it at 255), for
    responses with a status in ``codes`` or connection failures, ``backoff`` seconds apart."""

    attempts: int = 1
    codes: tuple[int, ...] = ()
    backoff: float | None = None


@dataclass(frozen=True)
class JwtProvider:
    """One trusted issuer of ``traffic.jwtAuthentication.providers``: its ``iss``, the accepted
    ``aud`` values (``None``: not checked) and its JSON Web Key Set (the inline JSON)."""

    issuer: str
    jwks: str
    audiences: tuple[str, ...] | None = None


@dataclass(frozen=True)
class JwtAuthentication:
    """``traffic.jwtAuthentication`` (v1.4.1 ``http/jwt.rs``): ``mode`` ``Strict`` (a valid token
    is required; the CRD's default), ``Optional`` (checked when present) or ``Permissive`` (never
    refused); the token is read from ``header`` after ``prefix`` (default ``Authorization:
    Bearer``), or from the query parameter or cookie ``name`` (``location``). ``policy`` is
    ``<namespace>/<name>`` of the AgentgatewayPolicy."""

    providers: tuple[JwtProvider, ...]
    mode: Literal["Strict", "Optional", "Permissive"] = "Strict"
    header: str = "authorization"
    prefix: str | None = "Bearer "
    policy: str = ""
    location: Literal["header", "queryParameter", "cookie", "expression"] = "header"
    name: str = ""                            # the query parameter's or cookie's name


@dataclass(frozen=True)
class RuleSet:
    """One policy's CEL rules (v1.4.1 ``http/authorization.rs``), e.g. ``backend.mcp.authorization``:
    ``matchExpressions`` with ``action`` Allow (the default), Deny or Require."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    require: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrafficPolicies:
    """Everything ``spec.traffic`` contributes to one route rule.

    ``rate_limits`` holds the candidate buckets in order: conditional entries first (the
    first whose condition holds is applied), then at most one unconditional entry.
    ``request_timeout`` is ``traffic.timeouts.request`` in seconds.
    ``mcp_authorization`` holds the ``backend.mcp.authorization`` rule sets of the rule's
    policies (Gateway, route and rule level together: a deny anywhere denies).
    """

    rate_limits: tuple[LocalRateLimit, ...] = ()
    retry: RetryPolicy | None = None
    request_timeout: float | None = None
    jwt: JwtAuthentication | None = None           # traffic.jwtAuthentication
    mcp_authorization: tuple[RuleSet, ...] = ()    # backend.mcp.authorization of every level, all apply


@dataclass(frozen=True)
class Eviction:
    """``policies.health.eviction`` of a backend or provider (v1.4.1 ``http/health.rs``).

    ``health_threshold`` and ``restore_health`` are fractions (the CRD's percent / 100).
    """

    duration: float | None = 3.0
    consecutive_failures: int | None = None
    health_threshold: float | None = None
    restore_health: float | None = None


@dataclass(frozen=True)
class HealthPolicy:
    """``policies.health``: when a response is unhealthy (CEL ``unhealthy_condition``, default
    5xx or no response) and how long the provider is then left out (``eviction``)."""

    unhealthy_condition: str | None = None
    eviction: Eviction | None = None
