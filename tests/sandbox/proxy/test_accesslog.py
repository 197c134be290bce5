"""Access-log lines (reference §4.1)."""

from __future__ import annotations

import json
import re

from agwlab.sandbox.proxy.accesslog import KEY_ORDER, access_fields, format_line
from agwlab.sandbox.proxy.config import GatewayConfig, Listener, PathMatch, Route, RouteMatch, Rule
from agwlab.sandbox.proxy.context import RequestContext


def ctx(**kw) -> RequestContext:  # type: ignore[no-untyped-def]
    gw = GatewayConfig("agentgateway-system", "agentgateway-route", "agentgateway", "127.0.0.1",
                       (Listener("http", 8080),))
    rule = Rule(name="main", matches=(RouteMatch(PathMatch("PathPrefix", "/anthropic")),), backends=())
    c = RequestContext(gateway=gw, listener=gw.listeners[0], method="POST", path="/anthropic?x=1",
                       host="127.0.0.1:8080", src_addr="127.0.0.1:5000",
                       route=Route("agentgateway-system", "claude", (), (rule,)), rule=rule)
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def test_text_line_has_reference_keys_in_order() -> None:
    c = ctx(status=200, protocol="llm", endpoint="api.anthropic.com:443", trace_id="a" * 32, span_id="b" * 16)
    c.log.update({"gen_ai.usage.output_tokens": 9, "gen_ai.provider.name": "anthropic", "gen_ai.usage.input_tokens": 3,
                  "custom.attr": "x"})
    line = format_line(c, 42)
    ts, level, msg = line.split("\t")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ts) and level == "info"
    pairs = [p.split("=", 1) for p in msg.removeprefix("request ").split(" ")]
    keys = [k for k, _ in pairs]
    assert keys == ["gateway", "listener", "route_rule", "route", "endpoint", "src.addr", "http.method", "http.host",
                    "http.path", "http.version", "http.status", "trace.id", "span.id", "protocol",
                    "gen_ai.provider.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "custom.attr",
                    "duration"]
    assert dict(pairs)["http.path"] == "/anthropic?x=1" and dict(pairs)["duration"] == "42ms"
    assert dict(pairs)["http.host"] == "127.0.0.1"
    assert dict(pairs)["route"] == "agentgateway-system/claude" and dict(pairs)["route_rule"] == "main"


def test_error_is_quoted_and_reason_only_when_not_upstream() -> None:
    line = format_line(ctx(status=503, reason="UpstreamFailure", error='upstream call failed: "x" refused'), 3)
    assert 'error="upstream call failed: \\"x\\" refused" reason=UpstreamFailure duration=3ms' in line
    assert "reason=" not in format_line(ctx(status=200), 1)
    assert "trace.id" not in format_line(ctx(status=200), 1)


def test_json_format() -> None:
    record = json.loads(format_line(ctx(status=404, reason="NotFound", error="route not found"), 0, "json"))
    assert list(record)[:3] == ["level", "time", "scope"] and record["scope"] == "request"
    assert record["http.status"] == 404 and record["error"] == "route not found" and record["reason"] == "NotFound"


def test_every_known_key_is_ordered() -> None:
    c = ctx(status=200)
    c.log.update({k: "v" for k in reversed(KEY_ORDER) if k not in access_fields(c, 0)})
    assert list(access_fields(c, 0)) == list(KEY_ORDER)
