"""The controller's translation of ``spec.traffic.jwtAuthentication`` and ``spec.backend.mcp.authorization``
checked against agentgateway v1.4.1's own controller golden files (``tests/data/v141_policy_goldens``,
from ``controller/pkg/agentgateway/plugins/testdata/``; the translation is ``traffic_plugin.go``
``processJWTAuthenticationPolicy`` and the backend policy plugin's MCP authorization)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agwlab.sandbox.controller.traffic import _translate as translate
from agwlab.sandbox.controller.traffic import merge
from agwlab.sandbox.proxy.policies import RuleSet

GOLDENS = Path(__file__).resolve().parents[2] / "data" / "v141_policy_goldens"


def _golden(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    policy, output = yaml.safe_load_all((GOLDENS / name).read_text(encoding="utf-8"))
    return policy, output


def _translated(policy: dict[str, Any]) -> Any:
    spec = policy["spec"]
    return translate("default/agw", spec.get("traffic") or {}, spec.get("backend"))


@pytest.mark.parametrize("name", ["mcp-authz-route.yaml", "mcp-authz-require.yaml"])
def test_mcp_authorization_keeps_the_rules_and_their_action_as_v141(name: str) -> None:
    policy, output = _golden(name)
    expected = next(o["resource"]["policy"]["backend"]["mcpAuthorization"] for o in output["output"]
                    if "backend" in o["resource"]["policy"])
    (rules,) = _translated(policy).mcp_authorization
    assert {k: list(v) for k, v in vars(rules).items() if v} == expected


def test_jwt_authentication_keeps_mode_issuer_audiences_and_inline_jwks_as_v141() -> None:
    policy, output = _golden("jwt-pre-routing.yaml")
    expected = next(o["resource"]["policy"]["traffic"]["jwt"] for o in output["output"]
                    if "jwt" in o["resource"]["policy"].get("traffic", {}))
    jwt = _translated(policy).jwt
    assert jwt.mode.upper() == expected["mode"]
    assert {jwt.location: {"name": jwt.name}} == expected["authorizationLocation"]
    (provider,) = jwt.providers
    (want,) = expected["providers"]
    assert provider.issuer == want["issuer"] and list(provider.audiences) == want["audiences"]
    assert json.loads(provider.jwks) == json.loads(want["inline"])


def test_the_crd_default_mode_is_strict_and_rule_sets_of_every_level_all_apply() -> None:
    jwt = translate("ns/p", {"jwtAuthentication": {"providers": [{"issuer": "i", "jwks": {"inline": "{}"}}]}}).jwt
    assert jwt.mode == "Strict" and (jwt.header, jwt.prefix) == ("authorization", "Bearer ")
    gateway = translate("ns/g", {}, {"mcp": {"authorization": {"action": "Deny", "policy": {"matchExpressions": ["true"]}}}})
    route = translate("ns/r", {}, {"mcp": {"authorization": {"policy": {"matchExpressions": ["true"]}}}})
    merged = merge(gateway, route)     # http/authorization.rs RuleSets::merge: a base deny is kept
    assert merged.mcp_authorization == (RuleSet(deny=("true",)), RuleSet(allow=("true",)))
