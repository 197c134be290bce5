"""AgentgatewayPolicy ``spec.traffic``: translated per target into the proxy's TrafficPolicies.

Follows agentgateway v1.4.1's ``controller/pkg/agentgateway/plugins/traffic_plugin.go``
(``processLocalRateLimitTraffic``): a local limit of N ``requests`` or ``tokens`` per ``unit``
becomes a bucket of ``N + burst`` that gains N once per unit; only the first ``local``
entry is used. ``conditional`` entries keep their CEL ``condition`` and order.

A policy applies to a Gateway (every route attached to it), an HTTPRoute, or one rule of
an HTTPRoute (``sectionName``); for each field the most specific target wins (rule, then
route, then Gateway), and between policies at the same level the oldest wins. MCP
authorization rules (``backend.mcp.authorization``) of every level, an AgentgatewayBackend
target included, all apply together.

Example:
    >>> local_limit("default/p", {"requests": 5, "unit": "Minutes", "burst": 2})
    LocalRateLimit(policy='default/p', kind='requests', max_tokens=7, tokens_per_fill=5, fill_interval=60.0, condition=None)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from ..proxy.policies import (
    JwtAuthentication,
    JwtProvider,
    LocalRateLimit,
    RetryPolicy,
    RuleSet,
    TrafficPolicies,
)
from .durations import duration_seconds

__all__ = ["TrafficTargets", "for_rule", "local_limit", "merge", "reconcile_traffic"]

_UNITS = {"Seconds": 1.0, "Minutes": 60.0, "Hours": 3600.0}
# (kind, namespace, name, sectionName or "") -> the policy's translated traffic fields
TrafficTargets = dict[tuple[str, str, str, str], TrafficPolicies]


def local_limit(policy: str, entry: dict[str, Any], condition: str | None = None) -> LocalRateLimit:
    """One ``local`` rate-limit entry as the proxy's bucket (see the module docstring)."""
    kind: Literal["requests", "tokens"]
    if entry.get("requests") is not None:
        kind, amount = "requests", int(entry["requests"])
    else:
        kind, amount = "tokens", int(entry.get("tokens") or 0)
    return LocalRateLimit(policy=policy, kind=kind, max_tokens=amount + int(entry.get("burst") or 0),
                          tokens_per_fill=amount, fill_interval=_UNITS.get(entry.get("unit", ""), 1.0),
                          condition=condition)


def _rate_limits(key: str, rate_limit: dict[str, Any]) -> tuple[LocalRateLimit, ...]:
    if rate_limit.get("local"):
        return (local_limit(key, rate_limit["local"][0]),)
    out = []
    for i, entry in enumerate(rate_limit.get("conditional") or []):
        local = (entry.get("policy") or {}).get("local")
        if local:
            out.append(local_limit(f"{key}#{i}", local[0], entry.get("condition")))
    return tuple(out)


def _retry(retry: dict[str, Any]) -> RetryPolicy:
    """``traffic.retry`` as ``processRetriesPolicy`` passes it on (attempts capped at 255)."""
    return RetryPolicy(attempts=min(int(retry.get("attempts") or 1), 255),
                       codes=tuple(int(c) for c in retry.get("codes") or ()),
                       backoff=duration_seconds(retry.get("backoff")))


def _jwt(key: str, jwt: dict[str, Any]) -> JwtAuthentication:
    """``traffic.jwtAuthentication`` as ``processJWTAuthenticationPolicy`` passes it on (inline JWKS;
    a remote JWKS needs the controller to fetch it, which the sandbox does not: such a provider is
    left out, as v1.4.1 leaves out one it could not resolve)."""
    location = jwt.get("location") or {}
    providers = tuple(
        JwtProvider(issuer=p.get("issuer", ""), jwks=(p.get("jwks") or {})["inline"],
                    audiences=tuple(p["audiences"]) if p.get("audiences") else None)
        for p in jwt.get("providers") or [] if (p.get("jwks") or {}).get("inline"))
    policy = JwtAuthentication(providers=providers, mode=jwt.get("mode") or "Strict", policy=key)
    if location.get("header"):     # a header named without a prefix is read whole (no "Bearer ")
        return replace(policy, header=location["header"]["name"].lower(), prefix=location["header"].get("prefix"))
    for kind in ("queryParameter", "cookie"):
        if location.get(kind):
            return replace(policy, location=kind, name=location[kind]["name"])
    if location.get("expression"):
        return replace(policy, location="expression")
    return policy


def _rule_set(authorization: dict[str, Any]) -> RuleSet:
    """An ``authorization`` block (``action`` + ``policy.matchExpressions``) as one rule set."""
    expressions = tuple((authorization.get("policy") or {}).get("matchExpressions") or ())
    action = authorization.get("action") or "Allow"
    return RuleSet(**{action.lower(): expressions}) if action in ("Allow", "Deny", "Require") else RuleSet()


def _translate(key: str, traffic: dict[str, Any], backend: dict[str, Any] | None = None) -> TrafficPolicies:
    policies = TrafficPolicies()
    authorization = ((backend or {}).get("mcp") or {}).get("authorization")
    if authorization:
        policies = replace(policies, mcp_authorization=(_rule_set(authorization),))
    if traffic.get("jwtAuthentication"):
        policies = replace(policies, jwt=_jwt(key, traffic["jwtAuthentication"]))
    if traffic.get("rateLimit"):
        policies = replace(policies, rate_limits=_rate_limits(key, traffic["rateLimit"]))
    if traffic.get("retry") is not None:
        policies = replace(policies, retry=_retry(traffic["retry"]))
    timeout = duration_seconds((traffic.get("timeouts") or {}).get("request"))
    if timeout:
        policies = replace(policies, request_timeout=timeout)
    return policies


def reconcile_traffic(store: Any) -> TrafficTargets:
    """Each targeted Gateway, HTTPRoute and route rule with the traffic fields aimed at it."""
    found: dict[tuple[str, str, str, str], list[tuple[str, TrafficPolicies]]] = {}
    for pol in store.list("agentgateway.dev", "agentgatewaypolicies"):
        meta, spec = pol["metadata"], pol.get("spec") or {}
        traffic = spec.get("traffic")
        backend = spec.get("backend")
        if not traffic and not ((backend or {}).get("mcp") or {}).get("authorization"):
            continue
        key = f"{meta['namespace']}/{meta['name']}"
        translated = _translate(key, traffic or {}, backend)
        for ref in spec.get("targetRefs") or []:
            kind = ref.get("kind")
            if kind not in ("Gateway", "HTTPRoute", "AgentgatewayBackend"):
                continue
            # a backend takes only the policy's backend fields (here: MCP authorization)
            policies = translated if kind != "AgentgatewayBackend" else \
                TrafficPolicies(mcp_authorization=translated.mcp_authorization)
            target = (kind, meta["namespace"], ref.get("name", ""), ref.get("sectionName") or "")
            found.setdefault(target, []).append((meta.get("creationTimestamp", ""), policies))
    out: TrafficTargets = {}
    for target, entries in found.items():
        merged = TrafficPolicies()
        for _, policies in sorted(entries, key=lambda e: e[0], reverse=True):  # oldest applied last
            merged = merge(merged, policies)
        out[target] = merged
    return out


def merge(base: TrafficPolicies, over: TrafficPolicies) -> TrafficPolicies:
    """``over``'s fields where it sets them, else ``base``'s."""
    return TrafficPolicies(rate_limits=over.rate_limits or base.rate_limits, retry=over.retry or base.retry,
                           request_timeout=over.request_timeout or base.request_timeout,
                           jwt=over.jwt or base.jwt,
                           # MCP authorization rule sets all apply (v1.4.1 RuleSets::merge)
                           mcp_authorization=base.mcp_authorization + over.mcp_authorization)


def for_rule(targets: TrafficTargets, gateway: tuple[str, str] | None, namespace: str, route: str,
             rule: str | None, backends: tuple[str, ...] = ()) -> TrafficPolicies:
    """The traffic policies of one route rule: Gateway, then route, then rule targets, then the
    AgentgatewayBackends it sends to (their MCP authorization rules)."""
    merged = TrafficPolicies()
    if gateway is not None:
        merged = merge(merged, targets.get(("Gateway", *gateway, ""), TrafficPolicies()))
    merged = merge(merged, targets.get(("HTTPRoute", namespace, route, ""), TrafficPolicies()))
    if rule:
        merged = merge(merged, targets.get(("HTTPRoute", namespace, route, rule), TrafficPolicies()))
    for backend in backends:
        merged = merge(merged, targets.get(("AgentgatewayBackend", namespace, backend, ""), TrafficPolicies()))
    return merged
