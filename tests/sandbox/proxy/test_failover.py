"""Provider selection and eviction follow v1.4.1's ``types/loadbalancer.rs`` (first group with a
provider not evicted; all evicted: group 1's), ``http/health.rs`` (``eviction_decision``) and
``telemetry/log.rs`` (default unhealthy: 5xx or no answer)."""

from __future__ import annotations

from agwlab.sandbox.proxy.config import AIBackend
from agwlab.sandbox.proxy.failover import Endpoint, ProviderSet, _unhealthy, decide
from agwlab.sandbox.proxy.policies import Eviction, HealthPolicy

EVICT = HealthPolicy(eviction=Eviction(duration=3.0))


def _set(health: HealthPolicy | None = EVICT) -> ProviderSet:
    a = AIBackend(key="ns/b", provider="anthropic", model="a", provider_name="a", health=health)
    b = AIBackend(key="ns/b", provider="anthropic", model="b", provider_name="b")
    return ProviderSet([[Endpoint(a)], [Endpoint(b)]])


def test_the_first_group_serves_until_its_provider_is_evicted_then_comes_back() -> None:
    s = _set()
    first = s.pick(now=0.0)
    assert first.provider.model == "a"
    assert s.finish(first, unhealthy=True, latency=0.1, fallback=None, now=0.0) == 3.0
    assert s.pick(now=1.0).provider.model == "b"
    assert s.pick(now=3.5).provider.model == "a"


def test_without_an_eviction_policy_a_failing_provider_keeps_its_traffic() -> None:
    s = _set(health=None)
    ep = s.pick(now=0.0)
    assert s.finish(ep, unhealthy=True, latency=0.1, fallback=None, now=0.0) is None
    assert s.pick(now=0.1).provider.model == "a" and abs(ep.health - 0.7) < 1e-9   # EWMA, alpha 0.3


def test_when_every_provider_is_evicted_the_first_group_serves() -> None:
    s = _set()
    s.groups[1][0].evicted_until = 100.0
    s.finish(s.pick(now=0.0), unhealthy=True, latency=0.1, fallback=None, now=0.0)
    assert s.pick(now=1.0).provider.model == "a"


def test_evictions_in_a_row_get_longer_and_a_success_resets_them() -> None:
    assert decide(EVICT, unhealthy=True, health=1.0, failures=0, ejected=0, fallback=None) == 3.0
    assert decide(EVICT, unhealthy=True, health=1.0, failures=0, ejected=2, fallback=None) == 9.0
    assert decide(EVICT, unhealthy=False, health=1.0, failures=5, ejected=2, fallback=None) is None
    s = _set()
    ep = s.groups[0][0]
    ep.ejected, ep.failures = 2, 3
    s.finish(ep, unhealthy=False, latency=0.1, fallback=None, now=0.0)
    assert (ep.ejected, ep.failures, ep.health) == (0, 0, 1.0)


def test_thresholds_and_fallback_durations() -> None:
    three = HealthPolicy(eviction=Eviction(duration=None, consecutive_failures=3))
    assert decide(three, unhealthy=True, health=1.0, failures=1, ejected=0, fallback=None) is None
    assert decide(three, unhealthy=True, health=1.0, failures=2, ejected=0, fallback=None) == 3.0
    # a health policy without eviction evicts only for a retry-after / retry backoff
    bare = HealthPolicy(unhealthy_condition="response.code == 429")
    assert decide(bare, unhealthy=True, health=1.0, failures=0, ejected=0, fallback=None) is None
    assert decide(bare, unhealthy=True, health=1.0, failures=0, ejected=0, fallback=10.0) == 10.0
    low = HealthPolicy(eviction=Eviction(health_threshold=0.5))
    assert decide(low, unhealthy=True, health=0.6, failures=0, ejected=0, fallback=None) is None
    assert decide(low, unhealthy=True, health=0.4, failures=0, ejected=0, fallback=None) == 3.0


def test_what_counts_as_unhealthy() -> None:
    assert _unhealthy(None, 529) and _unhealthy(None, None) and not _unhealthy(None, 429)
    only_429 = HealthPolicy(unhealthy_condition="response.code == 429")
    assert _unhealthy(only_429, 429) and not _unhealthy(only_429, 500)
