"""HTTPRoute matching, precedence and filters."""

from __future__ import annotations

import random
from collections import Counter

from agwlab.sandbox.proxy.config import (
    BackendRef,
    HeaderMatch,
    HeaderModifier,
    Listener,
    PathMatch,
    QueryMatch,
    Route,
    RouteMatch,
    Rule,
    ServiceBackend,
    URLRewrite,
)
from agwlab.sandbox.proxy.routing import (
    Router,
    apply_header_modifier,
    path_matches,
    pick_backend,
    rewrite_path,
    span_path,
)


def m(kind: str = "PathPrefix", value: str = "/", **kw) -> RouteMatch:  # type: ignore[no-untyped-def]
    return RouteMatch(PathMatch(kind, value), **kw)  # type: ignore[arg-type]


def rule(*matches: RouteMatch, name: str | None = None) -> Rule:
    return Rule(name=name, matches=matches, backends=())


def route(name: str, *rules: Rule, ns: str = "ns", hosts: tuple[str, ...] = (), created: str = "2026-01-01") -> Route:
    return Route(ns, name, hosts, rules, creation_timestamp=created)


def pick(routes: list[Route], path: str, method: str = "GET", host: str = "gw", headers=None, query=None):  # type: ignore[no-untyped-def]
    choice = Router(Listener("http", 8080, routes=tuple(routes))).match(method, path, host, headers or {}, query or {})
    return None if choice is None else (choice.route.name, choice.route.rules.index(choice.rule))


def test_path_prefix_matches_whole_segments() -> None:
    p = PathMatch("PathPrefix", "/anthropic")
    assert [path_matches(p, x) for x in ("/anthropic", "/anthropic/", "/anthropic/v1", "/anthropicx", "/")] == \
        [True, True, True, False, False]
    assert path_matches(PathMatch("PathPrefix", "/anthropic/"), "/anthropic")
    assert path_matches(PathMatch("PathPrefix", "/"), "/anything")
    assert path_matches(PathMatch("Exact", "/a"), "/a") and not path_matches(PathMatch("Exact", "/a"), "/a/")
    assert path_matches(PathMatch("RegularExpression", "/v[0-9]+/.*"), "/v1/x")
    assert not path_matches(PathMatch("RegularExpression", "/v[0-9]+"), "/v1/x")


def test_exact_beats_longest_prefix_beats_shorter_prefix_beats_regex() -> None:
    routes = [route("root", rule(m(value="/"))), route("regex", rule(m("RegularExpression", "/a/.*"))),
              route("a", rule(m(value="/a"))), route("ab", rule(m(value="/a/b"))), route("exact", rule(m("Exact", "/a/b")))]
    assert pick(routes, "/a/b") == ("exact", 0)
    assert pick(routes, "/a/b/c") == ("ab", 0)
    assert pick(routes, "/a/c") == ("a", 0)
    assert pick(routes, "/z") == ("root", 0)
    assert pick([routes[1], routes[0]], "/a/q") == ("root", 0)   # any prefix outranks a regex


def test_method_then_headers_then_query_break_ties() -> None:
    routes = [
        route("plain", rule(m(value="/x"))),
        route("post", rule(m(value="/x", method="POST"))),
        route("hdr", rule(m(value="/x", headers=(HeaderMatch("x-env", "dev"),)))),
        route("query", rule(m(value="/x", query_params=(QueryMatch("v", "2"),)))),
    ]
    assert pick(routes, "/x", "POST", headers={"x-env": "dev"}) == ("post", 0)
    assert pick(routes, "/x", "GET", headers={"x-env": "dev"}, query={"v": "2"}) == ("hdr", 0)
    assert pick(routes, "/x", "GET", query={"v": "2"}) == ("query", 0)
    assert pick(routes, "/x", "GET") == ("plain", 0)


def test_oldest_route_then_name_then_rule_order() -> None:
    old = route("zz", rule(m(value="/x")), created="2025-01-01T00:00:00Z")
    new = route("aa", rule(m(value="/x")), created="2026-01-01T00:00:00Z")
    assert pick([new, old], "/x") == ("zz", 0)
    same_a, same_b = route("bb", rule(m(value="/x"))), route("aa", rule(m(value="/x")))
    assert pick([same_a, same_b], "/x") == ("aa", 0)
    two_rules = route("r", rule(m(value="/x"), name="first"), rule(m(value="/x"), name="second"))
    assert pick([two_rules], "/x") == ("r", 0)


def test_hostnames_exact_beats_wildcard_beats_none() -> None:
    routes = [route("any", rule(m(value="/"))), route("wild", rule(m(value="/")), hosts=("*.example.com",)),
              route("exact", rule(m(value="/")), hosts=("api.example.com",))]
    assert pick(routes, "/", host="api.example.com:8080") == ("exact", 0)
    assert pick(routes, "/", host="www.example.com") == ("wild", 0)
    assert pick(routes, "/", host="other.org") == ("any", 0)
    assert pick(routes[1:], "/", host="other.org") is None
    # a less specific host still wins when the more specific route's path does not match
    routes2 = [route("host-a", rule(m(value="/a")), hosts=("h.io",)), route("any-b", rule(m(value="/b")))]
    assert pick(routes2, "/b", host="h.io") == ("any-b", 0)


def test_no_match_is_none() -> None:
    assert pick([route("a", rule(m(value="/anthropic")))], "/anthropicx") is None


def test_rewrites() -> None:
    prefix = PathMatch("PathPrefix", "/anthropic")
    assert rewrite_path("/anthropic/v1/x", prefix, URLRewrite(path_type="ReplacePrefixMatch", path_value="/v2")) == "/v2/v1/x"
    assert rewrite_path("/anthropic", prefix, URLRewrite(path_type="ReplacePrefixMatch", path_value="/")) == "/"
    assert rewrite_path("/anthropic/x", prefix, URLRewrite(path_type="ReplacePrefixMatch", path_value="/")) == "/x"
    assert rewrite_path("/anthropic/x", prefix,
                        URLRewrite(path_type="ReplaceFullPath", path_value="/v1/chat/completions")) == "/v1/chat/completions"
    assert rewrite_path("/anthropic/x", prefix, None) == "/anthropic/x"
    assert rewrite_path("/anthropic/x", prefix, URLRewrite(hostname="h")) == "/anthropic/x"


def test_span_path_names() -> None:
    assert span_path(PathMatch("PathPrefix", "/anthropic")) == "/anthropic/*"
    assert span_path(PathMatch("PathPrefix", "/")) == "/*"
    assert span_path(PathMatch("Exact", "/mcp")) == "/mcp"


def test_header_modifier_set_add_remove() -> None:
    mod = HeaderModifier(set=(("X-Env", "prod"),), add=(("x-tag", "b"),), remove=("x-secret",))
    out = apply_header_modifier([("x-env", "dev"), ("x-tag", "a"), ("X-Secret", "s"), ("host", "h")], mod)
    assert sorted(out) == [("host", "h"), ("x-env", "prod"), ("x-tag", "a"), ("x-tag", "b")]


def test_weighted_backends() -> None:
    a = BackendRef(ServiceBackend("a:80", ()), weight=3)
    b = BackendRef(ServiceBackend("b:80", ()), weight=1)
    zero = BackendRef(ServiceBackend("z:80", ()), weight=0)
    rng = random.Random(7)
    counts = Counter(pick_backend((a, b, zero), rng).backend.key for _ in range(4000))  # type: ignore[union-attr]
    assert set(counts) == {"a:80", "b:80"}
    assert 2.4 < counts["a:80"] / counts["b:80"] < 3.6
    assert pick_backend((zero,)) is None and pick_backend(()) is None
