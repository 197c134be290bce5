"""AgentgatewayPolicy ``spec.backend.ai.promptGuard``: translated and attached to route rules.

Follows agentgateway v1.4.1's ``controller/pkg/agentgateway/plugins/ai_policies.go``
(``processRequestGuard``, ``processResponseGuard``, ``processRegex``) and the proxy's reading
of it (``crates/agentgateway/src/types/agent_xds.rs``, ``convert_regex_rules``):

* ``regex.matches`` become custom rules first, then ``regex.builtins``; ``action`` defaults
  to ``Mask``. A pattern that does not compile is skipped.
* ``response`` (``message``, ``statusCode``) becomes the guard's rejection; without it the
  rejection is 403 ``The request was rejected due to inappropriate content``.
* Guards that call a service keep only their kind (and a webhook's ``failureMode``); the
  sandbox does not call them (see ``proxy/guardrails.py``). A webhook whose Service does not
  exist drops that whole list (``request`` or ``response``) and the policy is Accepted with
  reason ``PartiallyValid``: ``failed to build webhook: unable to find the Service <ns>/<name>``
  (``plugins/backend_policies.go``, ``PolicyConditionMap``).

A policy can target a Gateway, an HTTPRoute, one rule of it (``sectionName``) or an
AgentgatewayBackend, and a backend can carry its own (``spec.policies.ai.promptGuard``). As in
v1.4.1's ``store/binds.rs`` (``internal_backend_policies``, ``merge_llm_policies``), the guard
comes from the first of: the backend's own, the rule, the route, the backend as a target, the
Gateway; between policies on one target the oldest wins.

Example:
    >>> translate({"request": [{"regex": {"action": "Reject", "builtins": ["Ssn"]}}]}).request[0].regex
    RegexRules(action='Reject', rules=(('builtin', 'Ssn'),))
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from ..proxy.config import GatewayConfig, Rule
from ..proxy.guardrails import BUILTINS, DEFAULT_REJECTION, Guard, PromptGuard, RegexRules
from ..proxy.guardrails import Rule as GuardRule

__all__ = ["attach_prompt_guards", "prompt_guard_errors", "reconcile_prompt_guards", "translate"]

_SERVICE_GUARDS = ("webhook", "openAIModeration", "bedrockGuardrails", "googleModelArmor", "azureContentSafety")
# (kind, namespace, name, sectionName or "") -> the guard aimed at it
GuardTargets = dict[tuple[str, str, str, str], PromptGuard]


def _guard(entry: dict[str, Any]) -> Guard:
    custom = entry.get("response") or {}
    status = int(custom.get("statusCode") or 403) if custom else 403
    body = str(custom["message"]).encode() if custom.get("message") is not None else DEFAULT_REJECTION
    regex = entry.get("regex")
    if regex is not None:
        rules: tuple[GuardRule, ...] = tuple(("regex", str(m)) for m in regex.get("matches") or ()) + tuple(
            ("builtin", str(b)) for b in regex.get("builtins") or () if b in BUILTINS)
        action: Literal["Mask", "Reject"] = "Reject" if regex.get("action") == "Reject" else "Mask"
        return Guard("regex", RegexRules(action, rules), status=status, body=body)
    kind = next((k for k in _SERVICE_GUARDS if entry.get(k) is not None), "unknown")
    fail_open = kind == "webhook" and (entry.get("webhook") or {}).get("failureMode") == "FailOpen"
    return Guard(kind, status=status, body=body, fail_open=fail_open)


def translate(prompt_guard: dict[str, Any]) -> PromptGuard:
    """``backend.ai.promptGuard`` as the proxy's :class:`PromptGuard` (see the module docstring)."""
    return PromptGuard(
        request=tuple(_guard(e) for e in prompt_guard.get("request") or ()),
        response=tuple(_guard(e) for e in prompt_guard.get("response") or ()),
        streaming=prompt_guard.get("streaming") == "Enabled",
    )


def _webhook_errors(store: Any, namespace: str, entries: list[dict[str, Any]]) -> list[str]:
    errors = []
    for entry in entries:
        ref = (entry.get("webhook") or {}).get("backendRef") or {}
        if not ref or (ref.get("group") or "", ref.get("kind") or "Service") != ("", "Service"):
            continue
        ns = ref.get("namespace") or namespace
        if store.get("", "services", ns, ref.get("name", "")) is None:
            errors.append(f"failed to build webhook: unable to find the Service {ns}/{ref.get('name', '')}")
    return errors


def prompt_guard_errors(store: Any, policy: dict[str, Any]) -> list[str]:
    """Why part of a policy's ``backend.ai.promptGuard`` was dropped (one message per side), or ``[]``."""
    pg = (((policy.get("spec") or {}).get("backend") or {}).get("ai") or {}).get("promptGuard") or {}
    ns = policy["metadata"]["namespace"]
    return [e for side in ("request", "response") for e in _webhook_errors(store, ns, pg.get(side) or [])[:1]]


def _usable(store: Any, namespace: str, prompt_guard: dict[str, Any]) -> dict[str, Any]:
    """The promptGuard without a side whose webhook cannot be built (v1.4.1 drops that side)."""
    return {k: v for k, v in prompt_guard.items()
            if k not in ("request", "response") or not _webhook_errors(store, namespace, v or [])}


def reconcile_prompt_guards(store: Any) -> GuardTargets:
    """Each targeted Gateway, HTTPRoute, route rule and AgentgatewayBackend with its prompt guard."""
    found: dict[tuple[str, str, str, str], list[tuple[str, PromptGuard]]] = {}
    for pol in store.list("agentgateway.dev", "agentgatewaypolicies"):
        meta, spec = pol["metadata"], pol.get("spec") or {}
        pg = ((spec.get("backend") or {}).get("ai") or {}).get("promptGuard")
        if not pg:
            continue
        guard = translate(_usable(store, meta["namespace"], pg))
        for ref in spec.get("targetRefs") or []:
            if ref.get("kind") not in ("Gateway", "HTTPRoute", "AgentgatewayBackend"):
                continue
            target = (ref["kind"], meta["namespace"], ref.get("name", ""), ref.get("sectionName") or "")
            found.setdefault(target, []).append((meta.get("creationTimestamp", ""), guard))
    for backend in store.list("agentgateway.dev", "agentgatewaybackends"):
        meta = backend["metadata"]
        own = (((backend.get("spec") or {}).get("policies") or {}).get("ai") or {}).get("promptGuard")
        if own:
            found[("inline", meta["namespace"], meta["name"], "")] = [("", translate(_usable(store, meta["namespace"], own)))]
    return {target: min(entries, key=lambda e: e[0])[1] for target, entries in found.items()}


def _for_rule(targets: GuardTargets, cfg: GatewayConfig, namespace: str, route: str, rule: Rule) -> PromptGuard | None:
    backends = []
    for ref in rule.backends:
        key = getattr(ref.backend, "key", None)
        if isinstance(key, str) and "/" in key:
            ns, name = key.split("/", 1)
            backends.append((ns, name))
    keys = [("inline", ns, name, "") for ns, name in backends]
    if rule.name:
        keys.append(("HTTPRoute", namespace, route, rule.name))
    keys.append(("HTTPRoute", namespace, route, ""))
    keys += [("AgentgatewayBackend", ns, name, "") for ns, name in backends]
    keys.append(("Gateway", cfg.namespace, cfg.name, ""))
    return next((targets[k] for k in keys if k in targets), None)


def attach_prompt_guards(configs: dict[str, GatewayConfig], targets: GuardTargets) -> dict[str, GatewayConfig]:
    """The Gateways' configs with each route rule's prompt guard set (unchanged when there is none)."""
    if not targets:
        return configs
    out = {}
    for key, cfg in configs.items():
        listeners = tuple(
            replace(lst, routes=tuple(
                replace(r, rules=tuple(replace(rule, prompt_guard=_for_rule(targets, cfg, r.namespace, r.name, rule))
                                       for rule in r.rules))
                for r in lst.routes))
            for lst in cfg.listeners)
        out[key] = replace(cfg, listeners=listeners)
    return out
