"""Gateway API HTTPRoute matching, precedence and filters for one listener.

Precedence across every route attached to a listener follows the Gateway API spec:
the most specific matching hostname first, then the path match (Exact, then the
longest PathPrefix, then RegularExpression), a method match, the number of header
matches, the number of query matches, the oldest route, ``ns/name`` alphabetically,
and finally rule and match order.

Example:
    >>> from agwlab.sandbox.proxy.config import Listener, Route, Rule, RouteMatch, PathMatch
    >>> rule = Rule(name=None, matches=(RouteMatch(PathMatch("PathPrefix", "/anthropic")),), backends=())
    >>> router = Router(Listener("http", 8080, routes=(Route("ns", "claude", (), (rule,)),)))
    >>> router.match("POST", "/anthropic/v1", "gw", {}, {}).route.name
    'claude'
    >>> router.match("POST", "/anthropicx", "gw", {}, {}) is None
    True
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .config import BackendRef, HeaderModifier, Listener, PathMatch, Route, RouteMatch, Rule, URLRewrite

__all__ = [
    "RouteChoice",
    "Router",
    "apply_header_modifier",
    "hostname_specificity",
    "path_matches",
    "pick_backend",
    "rewrite_path",
    "span_path",
]


@dataclass(frozen=True)
class RouteChoice:
    """The route, rule and match a request was sent to."""

    route: Route
    rule: Rule
    match: RouteMatch


@dataclass(frozen=True)
class _Candidate:
    order: tuple
    route: Route
    rule: Rule
    match: RouteMatch
    path_re: re.Pattern[str] | None
    header_res: tuple[re.Pattern[str] | None, ...]
    query_res: tuple[re.Pattern[str] | None, ...]


def _prefix_matches(prefix: str, path: str) -> bool:
    base = prefix.rstrip("/")
    return base == "" or path == base or path.startswith(base + "/")


def path_matches(match: PathMatch, path: str, compiled: re.Pattern[str] | None = None) -> bool:
    """Whether a request path (no query) satisfies a Gateway API path match.

    PathPrefix matches whole segments: ``/a`` matches ``/a`` and ``/a/b``, not ``/ab``.
    """
    if match.type == "Exact":
        return path == match.value
    if match.type == "PathPrefix":
        return _prefix_matches(match.value, path)
    pattern = compiled or re.compile(match.value)
    return pattern.fullmatch(path) is not None


def hostname_specificity(patterns: tuple[str, ...], host: str) -> int | None:
    """How specifically ``host`` matches a route's hostnames, or None if it does not.

    Exact names rank above wildcards, longer wildcards above shorter; a route with no
    hostnames matches every host with the lowest rank.
    """
    if not patterns:
        return 0
    host = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host.lower()
    best: int | None = None
    for pattern in patterns:
        p = pattern.lower()
        if p == host:
            score = 10_000 + len(p)
        elif p.startswith("*.") and host.endswith(p[1:]) and len(host) > len(p) - 1:
            score = 1 + len(p)
        else:
            continue
        best = score if best is None else max(best, score)
    return best


def _path_order(match: PathMatch) -> tuple[int, int]:
    rank = {"Exact": 0, "PathPrefix": 1}.get(match.type, 2)
    return rank, -len(match.value)


def _compile(value: str, kind: str) -> re.Pattern[str] | None:
    return re.compile(value) if kind == "RegularExpression" else None


class Router:
    """Picks the route for a request among all routes attached to one listener."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        candidates: list[_Candidate] = []
        for route in listener.routes:
            created = route.creation_timestamp
            for rule_index, rule in enumerate(route.rules):
                matches = rule.matches or (RouteMatch(),)
                for match_index, match in enumerate(matches):
                    order = (
                        *_path_order(match.path),
                        0 if match.method else 1,
                        -len(match.headers),
                        -len(match.query_params),
                        created == "", created,
                        route.key,
                        rule_index,
                        match_index,
                    )
                    candidates.append(_Candidate(
                        order, route, rule, match,
                        _compile(match.path.value, match.path.type),
                        tuple(_compile(h.value, h.type) for h in match.headers),
                        tuple(_compile(q.value, q.type) for q in match.query_params),
                    ))
        candidates.sort(key=lambda c: c.order)
        self._candidates = candidates

    def match(
        self,
        method: str,
        path: str,
        host: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> RouteChoice | None:
        """The winning route/rule/match, or None (agentgateway answers 404 ``route not found``).

        Args:
            method: the HTTP method.
            path: the request path without the query string.
            host: the Host header (a port is ignored).
            headers: request headers; looked up by lower-case name.
            query: query parameters (first value of each name).
        """
        best: tuple[int, int] | None = None
        chosen: _Candidate | None = None
        for index, cand in enumerate(self._candidates):
            spec = hostname_specificity(cand.route.hostnames, host)
            if spec is None or (best is not None and spec <= best[0]):
                continue
            if self._matches(cand, method, path, headers, query):
                best = (spec, index)
                chosen = cand
        if chosen is None:
            return None
        return RouteChoice(chosen.route, chosen.rule, chosen.match)

    @staticmethod
    def _matches(
        cand: _Candidate, method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str],
    ) -> bool:
        m = cand.match
        if m.method and m.method.upper() != method.upper():
            return False
        if not path_matches(m.path, path, cand.path_re):
            return False
        for hm, rx in zip(m.headers, cand.header_res, strict=False):
            value = headers.get(hm.name.lower())
            if value is None or (rx.fullmatch(value) is None if rx else value != hm.value):
                return False
        for qm, rx in zip(m.query_params, cand.query_res, strict=False):
            value = query.get(qm.name)
            if value is None or (rx.fullmatch(value) is None if rx else value != qm.value):
                return False
        return True


def rewrite_path(path: str, match: PathMatch, rewrite: URLRewrite | None) -> str:
    """The upstream path after a URLRewrite filter (query string not included).

    ``ReplacePrefixMatch`` only applies to PathPrefix matches, as in the Gateway API.
    """
    if rewrite is None or rewrite.path_type is None or rewrite.path_value is None:
        return path
    if rewrite.path_type == "ReplaceFullPath":
        return rewrite.path_value
    if match.type != "PathPrefix":
        return path
    base = match.value.rstrip("/")
    rest = path[len(base):] if path.startswith(base) else path
    replacement = rewrite.path_value.rstrip("/")
    new = replacement + rest
    if not new.startswith("/"):
        new = "/" + new
    return new


def span_path(match: PathMatch) -> str:
    """The route path as agentgateway names server spans: PathPrefix ``/x`` → ``/x/*``."""
    if match.type == "PathPrefix":
        base = match.value.rstrip("/")
        return f"{base}/*"
    return match.value


def apply_header_modifier(
    headers: list[tuple[str, str]], modifier: HeaderModifier | None,
) -> list[tuple[str, str]]:
    """Apply a Request/ResponseHeaderModifier to ``(name, value)`` pairs; returns new pairs.

    ``set`` replaces every value of a name, ``add`` appends one more, ``remove`` drops
    them all. Names compare case-insensitively and come out lower-case.

    Example:
        >>> apply_header_modifier([("x-a", "1")], HeaderModifier(set=(("X-A", "2"),), add=(("x-b", "3"),)))
        [('x-a', '2'), ('x-b', '3')]
    """
    if modifier is None:
        return headers
    out = [(k.lower(), v) for k, v in headers]
    for name, value in modifier.set:
        key = name.lower()
        out = [(k, v) for k, v in out if k != key] + [(key, value)]
    for name, value in modifier.add:
        out.append((name.lower(), value))
    removed = {n.lower() for n in modifier.remove}
    return [(k, v) for k, v in out if k not in removed]


def pick_backend(backends: tuple[BackendRef, ...], rng: random.Random | None = None) -> BackendRef | None:
    """Choose one backendRef by weight; None when there is nothing with a weight above zero."""
    weighted = [b for b in backends if b.weight > 0]
    if not weighted:
        return None
    if len(weighted) == 1:
        return weighted[0]
    chooser = rng or random
    return chooser.choices(weighted, weights=[b.weight for b in weighted], k=1)[0]
