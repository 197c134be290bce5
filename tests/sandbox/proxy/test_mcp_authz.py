"""MCP authorization rules as v1.4.1 evaluates them: ``crates/agentgateway/src/http/authorization.rs``
(``RuleSets::validate``) with the variables of ``crates/agentgateway/src/mcp/rbac.rs``
(``mcp.tool.name``/``mcp.tool.target``, ``jwt.<claim>``), and its tests' cases."""

from __future__ import annotations

from agwlab.sandbox.proxy.celexpr import request_variables
from agwlab.sandbox.proxy.mcp_authz import allowed, refusal
from agwlab.sandbox.proxy.policies import RuleSet


def _vars(claims=None):  # type: ignore[no-untyped-def]
    return request_variables("POST", "/mcp", "example.com", {}, "127.0.0.1:5000", claims)


def test_no_rules_allow_everything() -> None:
    """rbac.rs test_mcp_authorization_empty_rules_short_circuits."""
    assert allowed((), "tool", "server", "increment", _vars())
    assert allowed((RuleSet(),), "tool", "server", "increment", _vars())


def test_a_jwt_claim_and_the_tool_name_decide() -> None:
    """rbac.rs test_mcp_authorization_jwt_claim_match / _nested_claim_mismatch / _required_but_missing."""
    rule = (RuleSet(allow=('mcp.tool.name == "increment" && jwt.sub == "1234567890"',)),)
    assert allowed(rule, "tool", "server", "increment", _vars({"sub": "1234567890"}))
    assert not allowed(rule, "tool", "server", "increment", _vars())          # no token: jwt.sub fails
    nested = (RuleSet(allow=('mcp.tool.name == "increment" && jwt.user.role == "admin"',)),)
    assert not allowed(nested, "tool", "server", "increment", _vars({"user": {"role": "viewer"}}))
    assert allowed((RuleSet(allow=('mcp.tool.target == "server"',)),), "tool", "server", "x", _vars())


def test_deny_wins_require_must_hold_and_a_deny_list_allows_the_rest() -> None:
    """authorization.rs RuleSets::validate and rbac.rs test_backend_policies_merge_composes_mcp_authorization."""
    deny_all, allow_all = RuleSet(deny=("true",)), RuleSet(allow=("true",))
    assert not allowed((deny_all, allow_all), "tool", "s", "t", _vars())
    assert not allowed((RuleSet(require=('jwt.sub == "a"',)), allow_all), "tool", "s", "t", _vars({"sub": "b"}))
    deny_one = (RuleSet(deny=('mcp.tool.name == "rm"',)),)
    assert allowed(deny_one, "tool", "s", "ls", _vars()) and not allowed(deny_one, "tool", "s", "rm", _vars())
    assert not allowed((RuleSet(allow=('mcp.tool.name == "ls"',)),), "tool", "s", "rm", _vars())


def test_a_prompt_rule_does_not_match_a_tool() -> None:
    """rbac.rs ResourceType: a tool binds only ``mcp.tool`` (``mcp.prompt.name`` fails, so false)."""
    rules = (RuleSet(allow=('mcp.prompt.name == "t"',)),)
    assert not allowed(rules, "tool", "s", "t", _vars())
    assert allowed(rules, "prompt", "s", "t", _vars())


def test_a_refusal_hides_that_the_tool_exists() -> None:
    """mcp/mod.rs Error::Authorization: "Unknown {type}: {name}", code INVALID_PARAMS."""
    assert refusal(7, "tool", "notes_add_note") == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "Unknown tool: notes_add_note"}}
