"""Priority groups of AI providers (``spec.ai.groups``): pick one, learn from its answer.

Follows agentgateway v1.4.1: ``crates/agentgateway/src/types/loadbalancer.rs`` (the
endpoint set, ``best_bucket``, ``select_provider`` in ``llm/mod.rs``, EWMA health),
``crates/agentgateway/src/http/health.rs`` (``eviction_decision``) and
``telemetry/log.rs`` (``eviction_unhealthy``):

* Requests go to the **first group that has a provider not evicted**; within it, two
  providers are drawn at random and the one with the better score (health over latency)
  serves. When every provider of every group is evicted, group 1's evicted ones serve.
* After each answer the provider's health (an EWMA, alpha 0.3, starting at 1) moves toward
  1 or 0. Unhealthy means: the ``unhealthyCondition`` CEL holds (``response.code``), else a
  5xx or no answer at all.
* Only a provider with a ``health`` policy that has ``eviction`` is ever left out: for
  ``duration`` (default 3s; without one, a 429's ``retry-after``, or the route's retry
  backoff) times the number of evictions in a row, once ``consecutiveFailures`` or
  ``healthThreshold`` (either) is reached, or at once when neither is set. A success resets
  the counts; ``restoreHealth`` sets its health when it comes back.

State lives in ``state.extra`` keyed by the backend's config, so it survives config pushes
that leave the backend alone.

Example:
    >>> from agwlab.sandbox.proxy.policies import Eviction, HealthPolicy
    >>> decide(HealthPolicy(eviction=Eviction(duration=5.0)), unhealthy=True, health=1.0,
    ...        failures=0, ejected=1, fallback=None)
    10.0
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from . import ai
from .celexpr import holds
from .config import AIBackend, AIGroups
from .context import RequestContext
from .errors import GatewayError
from .policies import HealthPolicy
from .state import ProxyState

__all__ = ["Endpoint", "ProviderSet", "decide", "handle"]

ALPHA = 0.3
_EXTRA_KEY = "failover"


def _ewma(old: float, new: float) -> float:
    return new if old == 0.0 else ALPHA * new + (1 - ALPHA) * old


@dataclass
class Endpoint:
    """One provider's standing: health, latency, failures in a row, evictions in a row."""

    provider: AIBackend
    health: float = 1.0
    latency: float = 0.0
    failures: int = 0
    ejected: int = 0
    evicted_until: float | None = None
    restore: float | None = None
    pending: int = 0

    def score(self) -> float:
        return self.health / (1.0 + self.latency * (1.0 + self.pending * 0.1))


def decide(policy: HealthPolicy | None, *, unhealthy: bool, health: float, failures: int, ejected: int,
           fallback: float | None) -> float | None:
    """Seconds to evict for, or ``None`` (v1.4.1 ``health::Policy::eviction_decision``)."""
    if policy is None or not unhealthy:
        return None
    ev = policy.eviction
    base = (ev.duration if ev is not None else None) or fallback
    if base is None and ev is not None:
        base = 3.0
    if base is None:
        return None
    if ev is not None and (ev.health_threshold is not None or ev.consecutive_failures is not None):
        below = ev.health_threshold is not None and health < ev.health_threshold
        many = bool(ev.consecutive_failures) and failures + 1 >= (ev.consecutive_failures or 0)
        if not (below or many):
            return None
    return base * (ejected + 1)


@dataclass
class ProviderSet:
    """The live standing of one grouped backend's providers."""

    groups: list[list[Endpoint]]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _restore(self, now: float) -> None:
        for group in self.groups:
            for ep in group:
                if ep.evicted_until is not None and ep.evicted_until <= now:
                    ep.evicted_until = None
                    if ep.restore is not None:
                        ep.health = min(max(ep.restore, 0.0), 1.0)

    def pick(self, now: float | None = None) -> Endpoint:
        """The provider for the next request (see the module docstring)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            self._restore(now)
            pool = next(([ep for ep in g if ep.evicted_until is None] for g in self.groups
                         if any(ep.evicted_until is None for ep in g)), None)
            if pool is None:
                pool = self.groups[0]
            a, b = random.choice(pool), random.choice(pool)
            best = a if a.score() >= b.score() else b
            best.pending += 1
            return best

    def finish(self, ep: Endpoint, *, unhealthy: bool, latency: float, fallback: float | None,
               now: float | None = None) -> float | None:
        """Record one answer; returns the eviction in seconds when this answer evicted it."""
        now = time.monotonic() if now is None else now
        with self.lock:
            ep.pending = max(0, ep.pending - 1)
            evict = decide(ep.provider.health, unhealthy=unhealthy, health=ep.health, failures=ep.failures,
                           ejected=ep.ejected, fallback=fallback)
            if unhealthy:
                ep.health = _ewma(ep.health, 0.0)
                ep.failures += 1
            else:
                ep.latency = _ewma(ep.latency, latency)
                ep.health = _ewma(ep.health, 1.0)
                ep.failures = ep.ejected = 0
            if evict is not None and ep.evicted_until is None:
                ep.ejected += 1
                ep.evicted_until = now + evict
                ep.restore = ep.provider.health.eviction.restore_health if ep.provider.health and \
                    ep.provider.health.eviction else None
                return evict
            return None


def _set(state: ProxyState, backend: AIGroups) -> ProviderSet:
    sets: dict[AIGroups, ProviderSet] = state.extra.setdefault(_EXTRA_KEY, {})
    found = sets.get(backend)
    if found is None:
        for stale in [k for k in sets if k.key == backend.key]:
            del sets[stale]
        found = sets[backend] = ProviderSet([[Endpoint(p) for p in group] for group in backend.groups])
    return found


def _retry_after(response: Response) -> float | None:
    """A 429's ``retry-after`` seconds (v1.4.1 ``http/outlierdetection.rs``, seconds form)."""
    if response.status_code != 429:
        return None
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _unhealthy(policy: HealthPolicy | None, status: int | None) -> bool:
    if policy is not None and policy.unhealthy_condition:
        return holds(policy.unhealthy_condition, {"response": {"code": status or 0}})
    return status is None or status >= 500


async def handle(request: Request, ctx: RequestContext, backend: AIGroups, state: ProxyState) -> Response:
    """Serve one request with the provider :meth:`ProviderSet.pick` chooses, then learn from it.

    Raises:
        GatewayError: as :func:`ai.handle` (the provider's standing is updated first).
    """
    providers = _set(state, backend)
    ep = providers.pick()
    started = time.monotonic()
    retry = ctx.rule.traffic.retry if ctx.rule is not None else None
    fallback_backoff = retry.backoff if retry is not None else None
    try:
        response = await ai.handle(request, ctx, ep.provider, state)
    except GatewayError:
        providers.finish(ep, unhealthy=_unhealthy(ep.provider.health, None), latency=time.monotonic() - started,
                         fallback=fallback_backoff)
        raise
    providers.finish(ep, unhealthy=_unhealthy(ep.provider.health, response.status_code),
                     latency=time.monotonic() - started, fallback=_retry_after(response) or fallback_backoff)
    return response
