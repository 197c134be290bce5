"""MCP authorization (``backend.mcp.authorization``), as agentgateway v1.4.1 evaluates it.

Follows ``crates/agentgateway/src/mcp/rbac.rs`` and ``http/authorization.rs`` (``RuleSets::validate``):
each rule is CEL over the request (``request.*``), the verified JWT (``jwt.sub``, ``jwt.<claim>``)
and the MCP resource: ``mcp.tool.name`` and ``mcp.tool.target`` for a tool (``mcp.prompt.*``,
``mcp.resource.*`` likewise), with the tool's own name (no target prefix). An expression that
fails (e.g. ``jwt.sub`` with no token) counts as false.

* no rules: everything is allowed;
* any ``Deny`` that holds: denied; any ``Require`` that fails: denied;
* any ``Allow`` that holds: allowed; otherwise denied when there are ``Allow`` rules (an
  allow-list), allowed when there are only ``Deny`` rules (a deny-list).

``tools/list`` leaves out what a caller may not call (``mcp/handler.rs`` ``merge_tools``); a
``tools/call`` it may not make is answered as if the tool did not exist: HTTP 400, JSON-RPC
``-32602`` ``Unknown tool: <name as the client sent it>`` (``mcp/mod.rs`` ``Error::Authorization``,
"intentionally do NOT say its not authorized").

Example:
    >>> rules = (RuleSet(allow=('mcp.tool.name == "list_notes"',)),)
    >>> allowed(rules, "tool", "notes", "list_notes", {})
    True
    >>> allowed(rules, "tool", "notes", "add_note", {})
    False
"""

from __future__ import annotations

from typing import Any

from .celexpr import holds
from .policies import RuleSet

__all__ = ["INVALID_PARAMS", "allowed", "refusal"]

INVALID_PARAMS = -32602


def allowed(rule_sets: tuple[RuleSet, ...], kind: str, target: str, name: str, variables: dict[str, Any]) -> bool:
    """Whether ``kind`` (``tool``/``prompt``/``resource``) ``name`` of ``target`` is allowed.

    Args:
        rule_sets: every policy's rules that apply (they all apply together).
        variables: the request's CEL variables (``celexpr.request_variables``).
    """
    if not any(r.allow or r.deny or r.require for r in rule_sets):
        return True
    bound = {**variables, "mcp": {kind: {"target": target, "name": name}}}
    if any(holds(e, bound) for r in rule_sets for e in r.deny):
        return False
    if any(not holds(e, bound) for r in rule_sets for e in r.require):
        return False
    if any(holds(e, bound) for r in rule_sets for e in r.allow):
        return True
    return not any(r.allow for r in rule_sets)


def refusal(msg_id: Any, kind: str, name: str) -> dict[str, Any]:
    """The JSON-RPC error of a call the rules refuse (v1.4.1 hides that the tool exists)."""
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": INVALID_PARAMS, "message": f"Unknown {kind}: {name}"}}
