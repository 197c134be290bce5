"""The AI handler's route types, upstream URL and headers (reference §5, v1.4.1)."""

from __future__ import annotations

from starlette.requests import Request

from agwlab.sandbox.proxy.ai import resolve_route_type, upstream_headers, upstream_url
from agwlab.sandbox.proxy.config import AIBackend
from agwlab.sandbox.proxy.providers import provider_for

ANTHROPIC = provider_for("anthropic")


def test_route_types_resolve_by_suffix_then_wildcard() -> None:
    routes = (("/v1/messages", "Messages"), ("*", "Passthrough"))
    assert resolve_route_type("/anthropic/v1/messages", routes) == "Messages"
    assert resolve_route_type("/anthropic/v1/models", routes) == "Passthrough"
    assert resolve_route_type("/whatever", ()) == "Completions"
    assert resolve_route_type("/x", (("/v1/messages", "Messages"),)) == "Completions"


def _request(headers: dict[str, str], path: str = "/anthropic", query: bytes = b"") -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "headers":
                    [(k.encode(), v.encode()) for k, v in headers.items()], "query_string": query})


def test_upstream_headers_move_the_key_and_strip_browser_headers() -> None:
    backend = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-api03-secret")
    req = _request({"authorization": "Bearer client", "x-api-key": "client-key", "origin": "http://x",
                    "sec-fetch-mode": "cors", "access-control-request-method": "POST", "x-custom": "kept",
                    "host": "gw", "content-length": "10"})
    h = upstream_headers(req, backend, ANTHROPIC)
    assert h["x-api-key"] == "sk-ant-api03-secret" and "authorization" not in h
    assert h["anthropic-version"] == "2023-06-01" and h["x-custom"] == "kept"
    assert not {"origin", "sec-fetch-mode", "access-control-request-method", "host", "content-length"} & set(h)


def test_oauth_tokens_and_explicit_locations_stay_bearer() -> None:
    oat = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-oat01-token")
    h = upstream_headers(_request({}), oat, ANTHROPIC)
    assert h["authorization"] == "Bearer sk-ant-oat01-token" and "x-api-key" not in h
    explicit = AIBackend(key="ns/a", provider="anthropic", api_key="sk-ant-api03-k", auth_location_explicit=True)
    assert upstream_headers(_request({}), explicit, ANTHROPIC)["authorization"] == "Bearer sk-ant-api03-k"


def test_without_backend_auth_client_headers_pass() -> None:
    backend = AIBackend(key="ns/a", provider="anthropic", api_key=None)
    h = upstream_headers(_request({"x-api-key": "sk-ant-client-key"}), backend, ANTHROPIC)
    assert h["x-api-key"] == "sk-ant-client-key" and "traceparent" not in h


def test_upstream_url_keeps_the_client_path_only_with_a_host_override() -> None:
    plain = AIBackend(key="ns/a", provider="anthropic", upstream_url="http://up")
    request = _request({}, "/anthropic/v1/chat/completions", b"beta=true")
    assert upstream_url(plain, ANTHROPIC, "Completions", request) == "http://up/v1/messages?beta=true"
    host = AIBackend(key="ns/a", provider="anthropic", upstream_url="http://up", host_override=True)
    assert upstream_url(host, ANTHROPIC, "Completions", request) == \
        "http://up/anthropic/v1/chat/completions?beta=true"
    prefixed = AIBackend(key="ns/a", provider="anthropic", upstream_url="http://up", host_override=True,
                         path_prefix="/proxy/")
    assert upstream_url(prefixed, ANTHROPIC, "Completions", request) == "http://up/proxy/messages?beta=true"
