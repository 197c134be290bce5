"""The local token bucket behaves as v1.4.1's ``crates/agentgateway/src/http/localratelimit.rs``
(its ``ratelimit`` module and tests: full at start, fill per interval capped at the size,
all-or-nothing takes, amends that never go below zero) and the controller translates
``traffic.rateLimit.local`` as ``controller/pkg/agentgateway/plugins/traffic_plugin.go``."""

from __future__ import annotations

from agwlab.sandbox.controller.traffic import local_limit
from agwlab.sandbox.proxy.ratelimit import Bucket, RateLimitExceeded


def test_a_bucket_starts_full_and_refuses_with_limit_remaining_and_reset() -> None:
    b = Bucket(max_tokens=3, tokens_per_fill=3, fill_interval=60.0, now=100.0)
    assert [b.try_take(1, now=100.5) for _ in range(3)] == [None, None, None]
    assert b.try_take(1, now=130.2) == (3, 0, 29)      # whole seconds to the next fill, rounded down


def test_fills_once_per_interval_and_never_above_the_size() -> None:
    b = Bucket(max_tokens=10, tokens_per_fill=10, fill_interval=3600.0, now=0.0)
    assert b.try_take(10, now=1.0) is None
    assert b.try_take(1, now=2.0) == (10, 0, 3598)
    # three intervals later: one fill of 30 tokens, capped at 10
    assert b.try_take(10, now=3 * 3600 + 1.0) is None
    assert b.try_take(1, now=3 * 3600 + 2.0) is not None


def test_takes_are_all_or_nothing_and_zero_or_too_many_fail_at_once() -> None:
    b = Bucket(max_tokens=20, tokens_per_fill=10, fill_interval=3600.0, now=0.0)
    assert b.try_take(15, now=1.0) is None
    assert b.try_take(6, now=1.0) == (20, 5, 3599)
    assert b.available == 5
    assert b.try_take(0, now=1.0) == (20, 5, 0)
    assert b.try_take(21, now=1.0) == (20, 5, 0)


def test_amend_takes_tokens_after_the_fact_and_stops_at_zero() -> None:
    b = Bucket(max_tokens=10, tokens_per_fill=1, fill_interval=0.01, now=0.0)
    b.amend(7)
    assert b.available == 3
    b.amend(5)
    assert b.available == 0
    assert b.check_any(now=0.005) == (10, 0, 0)
    assert b.check_any(now=0.011) is None              # one fill later a token is there again


def test_the_429_carries_the_x_ratelimit_headers() -> None:
    err = RateLimitExceeded(5, 0, 42)
    assert (err.status, err.message, err.reason) == (429, "rate limit exceeded", "RateLimit")
    assert dict(err.headers) == {"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"}


def test_the_controller_adds_burst_to_the_size_and_fills_once_per_unit() -> None:
    req = local_limit("ns/p", {"requests": 5, "unit": "Minutes", "burst": 3})
    assert (req.kind, req.max_tokens, req.tokens_per_fill, req.fill_interval) == ("requests", 8, 5, 60.0)
    tok = local_limit("ns/p", {"tokens": 1000, "unit": "Hours"})
    assert (tok.kind, tok.max_tokens, tok.tokens_per_fill, tok.fill_interval) == ("tokens", 1000, 1000, 3600.0)
