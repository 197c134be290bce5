"""Local rate limits (``traffic.rateLimit.local``), as agentgateway v1.4.1 enforces them.

Follows ``crates/agentgateway/src/http/localratelimit.rs`` and where v1.4.1 calls it
(``proxy/httpproxy.rs``, ``llm/mod.rs``):

* Each limit is a token bucket that starts full (``max_tokens``) and gains
  ``tokens_per_fill`` once per ``fill_interval`` (the first fill one interval after the
  bucket is made), never above ``max_tokens``.
* ``requests`` limits take one token per request when the route's policies run, before
  the backend is called; ``tokens`` limits only apply to LLM requests: one is let through
  while the bucket holds at least one token, and after the response its input plus output
  tokens are taken out (never below zero).
* A refused request gets ``429 rate limit exceeded`` (``text/plain``) with
  ``x-ratelimit-limit`` (the bucket size), ``x-ratelimit-remaining`` (tokens left) and
  ``x-ratelimit-reset`` (whole seconds to the next fill), reason ``RateLimit`` in the access
  log and ``agentgateway_requests_total``. Successful answers carry no rate-limit headers.
* With ``conditional`` entries the first whose CEL condition holds is applied; each entry
  is a bucket of its own, shared by every request it selects.

Buckets live in ``state.extra`` keyed by their config, so a config push that leaves a
policy alone keeps its bucket, and a changed, removed or re-created policy starts a full one
(as a new xDS policy does).

Example:
    >>> bucket = Bucket(max_tokens=2, tokens_per_fill=2, fill_interval=60.0, now=0.0)
    >>> bucket.try_take(1, now=1.0), bucket.try_take(1, now=1.0), bucket.try_take(1, now=1.0)
    (None, None, (2, 0, 59))
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from .celexpr import holds, request_variables
from .context import RequestContext
from .errors import GatewayError
from .policies import LocalRateLimit
from .state import ProxyState

__all__ = ["Bucket", "RateLimitExceeded", "amend_after_response", "check_llm_request", "check_request"]

_EXTRA_KEY = "ratelimit"


class RateLimitExceeded(GatewayError):
    """429 with v1.4.1's ``x-ratelimit-*`` headers and reason ``RateLimit``."""

    def __init__(self, limit: int, remaining: int, reset_seconds: int) -> None:
        super().__init__(429, "rate limit exceeded", "RateLimit")
        self.headers = (("x-ratelimit-limit", str(limit)), ("x-ratelimit-remaining", str(remaining)),
                        ("x-ratelimit-reset", str(reset_seconds)))


class Bucket:
    """One token bucket (thread-safe; times are ``time.monotonic()`` seconds).

    Args:
        max_tokens: capacity, and what the bucket starts with.
        tokens_per_fill: tokens added at each fill.
        fill_interval: seconds between fills.
        now: the creation time (tests pass one; default: now).
    """

    def __init__(self, max_tokens: int, tokens_per_fill: int, fill_interval: float,
                 now: float | None = None) -> None:
        self.capacity = max_tokens
        self.fill = tokens_per_fill
        self.interval = fill_interval
        self.available = max_tokens
        self.refill_at = (time.monotonic() if now is None else now) + fill_interval
        self._lock = threading.Lock()

    def _refill(self, now: float) -> bool:
        if now < self.refill_at:
            return False
        intervals = math.floor((now - self.refill_at) / self.interval) + 1
        self.refill_at += intervals * self.interval
        self.available = min(self.capacity, self.available + intervals * self.fill)
        return True

    def _reset_seconds(self, now: float) -> int:
        return max(0, math.floor(self.refill_at - now))

    def try_take(self, n: int, now: float | None = None) -> tuple[int, int, int] | None:
        """Take ``n`` tokens; ``None`` when taken, else ``(limit, remaining, reset seconds)``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if n == 0 or n > self.capacity:
                return self.capacity, self.available, 0
            self._refill(now)
            if self.available < n:
                return self.capacity, self.available, self._reset_seconds(now)
            self.available -= n
            return None

    def check_any(self, now: float | None = None) -> tuple[int, int, int] | None:
        """At least one token left (taking none): ``None``, else ``(limit, 0, reset seconds)``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._refill(now)
            if self.available > 0:
                return None
            return self.capacity, self.available, self._reset_seconds(now)

    def amend(self, tokens: int) -> None:
        """Take ``tokens`` out after the fact (never below zero; negative gives them back)."""
        with self._lock:
            self.available = max(0, self.available - tokens)


def _buckets(state: ProxyState) -> dict[LocalRateLimit, Bucket]:
    """The live buckets; on a new config, those of limits it no longer has are dropped."""
    entry = state.extra.get(_EXTRA_KEY)
    config = state.config
    if entry is None or entry[0] is not config:
        live = {limit for listener in (config.listeners if config else ()) for route in listener.routes
                for rule in route.rules for limit in rule.traffic.rate_limits}
        kept = {k: v for k, v in (entry[1] if entry else {}).items() if k in live}
        entry = state.extra[_EXTRA_KEY] = (config, kept)
    return entry[1]


def _bucket(state: ProxyState, limit: LocalRateLimit) -> Bucket:
    buckets = _buckets(state)
    bucket = buckets.get(limit)
    if bucket is None:
        bucket = buckets[limit] = Bucket(limit.max_tokens, limit.tokens_per_fill, limit.fill_interval)
    return bucket


def _select(limits: tuple[LocalRateLimit, ...], variables: Any) -> LocalRateLimit | None:
    for limit in limits:
        if limit.condition is None or holds(limit.condition, variables()):
            return limit
    return None


def check_request(state: ProxyState, ctx: RequestContext, headers: dict[str, str]) -> None:
    """Apply the rule's rate limit to a request (``requests`` limits take one token).

    The selected limit is remembered on ``ctx.log`` for the LLM checks that follow.

    Raises:
        RateLimitExceeded: the bucket is empty.
    """
    rule = ctx.rule
    limits = rule.traffic.rate_limits if rule is not None else ()
    if not limits:
        return
    cached: dict[str, Any] = {}

    def variables() -> dict[str, Any]:
        if not cached:
            cached.update(request_variables(ctx.method, ctx.path, ctx.host, headers, ctx.src_addr, ctx.jwt_claims))
        return cached

    limit = _select(limits, variables)
    if limit is None:
        return
    ctx.rate_limit = limit
    if limit.kind != "requests":
        return
    refused = _bucket(state, limit).try_take(1)
    if refused is not None:
        raise RateLimitExceeded(*refused)


def check_llm_request(state: ProxyState, ctx: RequestContext) -> None:
    """Before an LLM call: a ``tokens`` limit lets it through while a token is left.

    Raises:
        RateLimitExceeded: the bucket is empty.
    """
    limit = ctx.rate_limit
    if limit is None or limit.kind != "tokens":
        return
    refused = _bucket(state, limit).check_any()
    if refused is not None:
        raise RateLimitExceeded(*refused)


def amend_after_response(state: ProxyState, ctx: RequestContext) -> None:
    """After an LLM response: take its input and output tokens out of a ``tokens`` bucket."""
    limit = ctx.rate_limit
    if limit is None or limit.kind != "tokens" or ctx.llm is None:
        return
    used = ctx.llm.tokens.get("input", 0) + ctx.llm.tokens.get("output", 0)
    if used:
        _bucket(state, limit).amend(used)
