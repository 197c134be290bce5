"""agwlab.mcpsec against the sandbox, with the real clients (the mcp SDK, httpx, kubectl): two MCP
servers behind one route, JWT authentication and MCP authorization as agentgateway v1.4.1 does them.

Each test names the v1.4.1 source it follows (agentgateway repository, tag v1.4.1).
"""

from __future__ import annotations

import json

import pytest

from agwlab import connect, kube, mcpsec, traces
from agwlab.errors import LabError
from agwlab.names import Names
from agwlab.stages import objects, prepare
from crds_v141 import admit_v141
from labtest import poll


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    lab = connect()
    prepare(lab, "llm", "mcp", "mcp-tools")
    yield lab
    mcpsec.remove_policies(lab)   # and the stage's objects, so tests that count routes see only theirs
    for m in reversed(objects("mcp-tools", names=lab.names)):
        kube.delete(lab, m.kind, m.name, m.namespace, quiet=True)


@pytest.fixture(scope="module")
def key():  # type: ignore[no-untyped-def]
    return mcpsec.make_key()


@pytest.fixture
def no_policies(lab):  # type: ignore[no-untyped-def]
    """Each test starts and ends with the /tools route open."""
    def clear() -> None:
        mcpsec.remove_policies(lab)
        poll(lambda: mcpsec.raw_initialize(lab).status == 200, timeout=30, what="the /tools route open again")
    clear()
    yield
    clear()


def _apply(lab, manifest) -> None:  # type: ignore[no-untyped-def]
    kube.apply(lab, manifest, quiet=True)


# --- the manifests ------------------------------------------------------------------------


def test_every_manifest_is_valid_for_v141s_own_crds(key) -> None:  # type: ignore[no-untyped-def]
    names = Names.for_namespace("agwlab-erin")
    backend = admit_v141(mcpsec.tools_backend(names).obj)
    assert [t["name"] for t in backend["spec"]["mcp"]["targets"]] == ["fetcher", "notes"]
    jwt = admit_v141(mcpsec.jwt_policy(names, key).obj)["spec"]["traffic"]["jwtAuthentication"]
    assert jwt["mode"] == "Strict" and json.loads(jwt["providers"][0]["jwks"]["inline"])["keys"][0]["kid"]
    authz = admit_v141(mcpsec.authorization_policy(names).obj)["spec"]["backend"]["mcp"]["authorization"]
    assert authz["action"] == "Allow" and authz["policy"]["matchExpressions"] == list(mcpsec.DEFAULT_RULES)
    assert {(m.kind, m.namespace) for m in objects("mcp-tools", names=names)} == {
        ("ConfigMap", "agwlab-erin"), ("Deployment", "agwlab-erin"), ("Service", "agwlab-erin"),
        ("AgentgatewayBackend", "agwlab-erin"),
        ("HTTPRoute", "agwlab-erin")}


def test_the_policy_holds_only_the_public_key_and_nothing_prints_a_secret(key) -> None:  # type: ignore[no-untyped-def]
    shown = mcpsec.jwt_policy(Names(), key).yaml()
    jwk = key.jwks["keys"][0]
    assert jwk["kty"] == "EC" and "d" not in jwk and '"d"' not in shown
    tok = mcpsec.token(key, "alice", role="editor")
    for text in (repr(tok), str(tok), repr(key)):
        assert tok.value not in text and "private key not shown" not in repr(tok)
    assert "alice" in repr(tok) and "private key not shown" in repr(key)


def test_bad_input_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="make_key"):
        mcpsec.jwt_policy(Names())
    with pytest.raises(ValueError, match="at least one rule"):
        mcpsec.authorization_policy(Names(), rules=[])


def test_the_manifests_pass_a_server_dry_run(kubectl, key) -> None:  # type: ignore[no-untyped-def]
    docs = "---\n".join(m.yaml() for m in (mcpsec.jwt_policy(Names(), key), mcpsec.authorization_policy(Names())))
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=docs)
    assert "agentgatewaypolicy.agentgateway.dev/mcp-tools-jwt created (server dry run)" in out
    assert "agentgatewaypolicy.agentgateway.dev/mcp-tools-authz created (server dry run)" in out


# --- two servers, one route ---------------------------------------------------------------


def test_two_targets_are_multiplexed_with_target_prefixes(lab, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/mcp/handler.rs: resource_name() joins target and tool with DELIMITER "_";
    merge_tools() lists every target's tools; parse_resource_name() splits at the first "_"."""
    tools = mcpsec.list_tools(lab)
    assert sorted(tools) == ["fetcher_fetch", "notes_add_note", "notes_delete_note", "notes_list_notes"]
    saved = mcpsec.call_tool(lab, None, "notes_add_note", {"text": "routed to the notes server"})
    assert saved.text.startswith("note ") and saved.text.endswith(" saved") and not saved.is_error
    listed = mcpsec.call_tool(lab, None, "notes_list_notes")
    assert "routed to the notes server" in listed.text


def test_an_unknown_target_is_refused_without_forwarding(lab, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/mcp/handler.rs: "unknown service {name}"; session.rs handle_error: SendError."""
    outcome = mcpsec.call_tool(lab, None, "weather_today")
    assert outcome.error_code == -32603
    assert outcome.error_message == "failed to send message: invalid request: unknown service weather"


# --- JWT authentication -------------------------------------------------------------------


def test_missing_and_bad_tokens_get_401_as_v141_words_them(lab, key, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/http/jwt.rs (TokenError, Jwt::apply) and proxy/mod.rs
    (JwtAuthenticationFailure: 401, text/plain "authentication failure: ...")."""
    _apply(lab, mcpsec.jwt_policy(lab.names, key))
    missing = poll(lambda: (lambda a: a if a.status == 401 else None)(mcpsec.raw_initialize(lab)), timeout=30,
                   what="the JWT policy to reach the proxy")
    assert missing.body == "authentication failure: no bearer token found"
    assert missing.headers["content-type"] == "text/plain" and "www-authenticate" not in missing.headers
    cases = {
        "not-a-jwt": "the token header is malformed: Error(InvalidToken)",
        mcpsec.token(key, "late", expires_in=-600).value: "the token is invalid or malformed: Error(ExpiredSignature)",
        mcpsec.token(mcpsec.make_key("someone-else"), "x").value: 'token uses the unknown key "someone-else"',
        mcpsec.token(mcpsec.make_key(key.kid), "forged").value:
            "the token is invalid or malformed: Error(InvalidSignature)",
        mcpsec.token(key, "x", issuer="https://elsewhere").value:
            "the token is invalid or malformed: Error(InvalidIssuer)",
        mcpsec.token(key, "x", audience="other-api").value: "the token is invalid or malformed: Error(InvalidAudience)",
    }
    for sent, body in cases.items():
        answer = mcpsec.raw_initialize(lab, sent)
        assert (answer.status, answer.body) == (401, f"authentication failure: {body}")
    with pytest.raises(LabError, match=r"HTTP 401.*no bearer token found.*send a valid token"):
        mcpsec.list_tools(lab)
    # proxy/mod.rs: ProxyResponseReason::JwtAuth, the error in the access log
    poll(lambda: any('error="authentication failure: no bearer token found" reason=JwtAuth' in line
                     and "http.status=401" in line for line in traces.proxy_log(lab).splitlines()),
         timeout=30, what="the 401 in the access log with reason=JwtAuth")


def test_a_valid_token_passes_and_its_sub_is_logged(lab, key, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/http/jwt.rs Jwt::apply: claims kept, log.jwt_sub set, token removed."""
    _apply(lab, mcpsec.jwt_policy(lab.names, key))
    poll(lambda: mcpsec.raw_initialize(lab).status == 401, timeout=30, what="the JWT policy to reach the proxy")
    carol = mcpsec.token(key, "carol")
    assert mcpsec.raw_initialize(lab, carol).status == 200
    assert "notes_list_notes" in mcpsec.list_tools(lab, carol)
    poll(lambda: any("jwt.sub=carol" in line and "route=agentgateway-system/mcp-tools" in line
                     for line in traces.proxy_log(lab).splitlines()),
         timeout=30, what="an access-log line with jwt.sub=carol")


# --- MCP authorization --------------------------------------------------------------------


def test_rules_filter_tools_list_and_refuse_calls_per_caller(lab, key, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/mcp/rbac.rs (mcp.tool.name, jwt.<claim>), http/authorization.rs
    (allow-list), mcp/handler.rs merge_tools (the list is filtered), mcp/session.rs + mcp/mod.rs
    Error::Authorization (-32602 "Unknown tool: <name>") and proxy/mod.rs (HTTP 400)."""
    editor, viewer = mcpsec.token(key, "alice", role="editor"), mcpsec.token(key, "bob", role="viewer")
    _apply(lab, mcpsec.jwt_policy(lab.names, key))
    _apply(lab, mcpsec.authorization_policy(lab.names))
    seen = poll(lambda: (lambda t: t if "notes_add_note" not in t else None)(mcpsec.list_tools(lab, viewer)),
                timeout=30, what="the rules to reach the proxy")
    assert sorted(seen) == ["fetcher_fetch", "notes_list_notes"]
    assert sorted(mcpsec.list_tools(lab, editor)) == [
        "fetcher_fetch", "notes_add_note", "notes_delete_note", "notes_list_notes"]
    refused = mcpsec.call_tool(lab, viewer, "notes_add_note", {"text": "from bob"})
    assert (refused.error_code, refused.error_message) == (-32602, "Unknown tool: notes_add_note")
    allowed = mcpsec.call_tool(lab, editor, "notes_add_note", {"text": "from alice"})
    assert allowed.text.endswith("saved")
    assert "from bob" not in mcpsec.call_tool(lab, viewer, "notes_list_notes").text


def test_a_refused_call_is_an_http_400_with_a_json_rpc_error(lab, key, no_policies) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/proxy/mod.rs: MCP(Authorization) -> 400, application/json body."""
    import httpx

    from agwlab.wire import jsonrpc

    viewer = mcpsec.token(key, "bob", role="viewer")
    _apply(lab, mcpsec.jwt_policy(lab.names, key))
    _apply(lab, mcpsec.authorization_policy(lab.names))
    poll(lambda: "notes_add_note" not in mcpsec.list_tools(lab, viewer), timeout=30, what="the rules in the proxy")
    headers = {**jsonrpc.STREAMABLE_HTTP_HEADERS, **viewer.header}
    url = lab.gateway_url(mcpsec.TOOLS_PATH)
    init = httpx.post(url, json=jsonrpc.initialize(1, client_name="t"), headers=headers, timeout=30)
    session = {"mcp-session-id": init.headers["mcp-session-id"]}
    httpx.post(url, json=jsonrpc.notification("notifications/initialized"), headers={**headers, **session}, timeout=30)
    call = httpx.post(url, json=jsonrpc.request(2, "tools/call", {"name": "notes_delete_note", "arguments": {"number": 1}}),
                      headers={**headers, **session}, timeout=30)
    assert call.status_code == 400 and call.headers["content-type"] == "application/json"
    assert call.json() == {"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "Unknown tool: notes_delete_note"}}


def test_rules_on_a_single_target_route_filter_and_refuse_unprefixed_names(lab) -> None:  # type: ignore[no-untyped-def]
    """crates/agentgateway/src/mcp/handler.rs merge_tools filters even one target's list (names stay
    unprefixed); session.rs authorizes tools/call after resolving the name. Rules without a JWT
    policy: ``jwt.*`` fails, so only name rules can hold."""
    from agwlab import mcp
    from agwlab.manifests import Manifest

    names = lab.names
    rules = mcpsec.authorization_policy(names, rules=['mcp.tool.name == "only-this-one"']).obj
    rules["metadata"]["name"] = "mcp-route-authz"
    rules["spec"]["targetRefs"][0]["name"] = names.mcp_route
    _apply(lab, Manifest(rules))
    try:
        url = lab.gateway_url("/mcp")
        poll(lambda: not mcp.list_tools(url).tools, timeout=30, what="the rules on /mcp in the proxy")
        with pytest.raises(mcp.MCPError) as refused:
            mcp.call_tool(url, "fetch", {"url": lab.sample_page()})
        assert (refused.value.status, refused.value.code) == (400, -32602)
        assert "Unknown tool: fetch" in str(refused.value)
    finally:
        kube.delete(lab, "AgentgatewayPolicy", "mcp-route-authz", names.namespace, quiet=True)
    poll(lambda: mcp.list_tools(lab.gateway_url("/mcp")).tools, timeout=30, what="/mcp open again")


def test_rules_can_target_the_backend_itself(lab, key, no_policies) -> None:  # type: ignore[no-untyped-def]
    """controller/pkg/agentgateway/plugins/backend_policies.go: a backend policy may target the
    AgentgatewayBackend; its MCP rules apply to every route that sends there."""
    from agwlab.manifests import Manifest

    rules = mcpsec.authorization_policy(lab.names, rules=['mcp.tool.target == "fetcher"']).obj
    rules["spec"]["targetRefs"] = [{"group": "agentgateway.dev", "kind": "AgentgatewayBackend",
                                    "name": lab.names.tools_backend}]
    admit_v141(rules)
    _apply(lab, Manifest(rules))
    poll(lambda: mcpsec.list_tools(lab) == ["fetcher_fetch"], timeout=30, what="only the fetcher's tool listed")
    assert mcpsec.call_tool(lab, None, "notes_list_notes").error_message == "Unknown tool: notes_list_notes"
