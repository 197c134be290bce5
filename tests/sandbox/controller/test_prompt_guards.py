"""The controller's translation of ``spec.backend.ai.promptGuard`` checked against agentgateway v1.4.1's
own controller golden file (``tests/data/v141_policy_goldens/ai.yaml``, from
``controller/pkg/agentgateway/plugins/testdata/backendpolicy/``; the translation is ``ai_policies.go``
and ``backend_policies.go``, the status ``traffic_plugin.go`` ``PolicyConditionMap``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from agwlab.sandbox.controller.prompt_guards import translate
from agwlab.sandbox.proxy.guardrails import RegexRules
from labtest import poll

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "v141_policy_goldens" / "ai.yaml"
GW = ("gateway.networking.k8s.io", "v1")
AGW = ("agentgateway.dev", "v1alpha1")


def _golden() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    policy, service, output = yaml.safe_load_all(GOLDEN.read_text(encoding="utf-8"))
    return policy, service, output


def test_request_guards_translate_as_v141s_golden() -> None:
    policy, _, output = _golden()
    expected = next(o["resource"]["policy"]["backend"]["ai"]["promptGuard"] for o in output["output"]
                    if "backend" in o["resource"]["policy"])
    guards = translate({"request": policy["spec"]["backend"]["ai"]["promptGuard"]["request"]}).request
    # the golden's kinds, in order (proto names): regex, openaiModeration, bedrockGuardrails, ...
    assert [g.kind.lower() for g in guards] == [next(iter(k for k in e if k != "rejection")).lower()
                                                 for e in expected["request"]]
    regex = expected["request"][0]
    assert guards[0].regex == RegexRules("Mask", tuple(
        ("builtin", "CreditCard") if "builtin" in r else ("regex", r["regex"]) for r in regex["regex"]["rules"]))
    assert guards[0].body == base64.b64decode(regex["rejection"]["body"])
    assert guards[0].status == 403                      # no status in the golden: the proxy answers 403
    assert guards[-1].fail_open and expected["request"][-1]["webhook"]["failureMode"] == "FAIL_OPEN"
    assert "response" not in expected                   # its webhook's Service is missing: see below


def test_a_webhook_without_its_service_drops_that_side_and_is_partially_valid(custom, ns: str) -> None:  # type: ignore[no-untyped-def]
    policy, service, output = _golden()
    custom.create_namespaced_custom_object(*GW, ns, "gateways", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "test", "namespace": ns},
        "spec": {"gatewayClassName": "agentgateway", "listeners": [{"name": "http", "protocol": "HTTP", "port": 8080}]}})
    custom.create_namespaced_custom_object(*GW, ns, "httproutes", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "test", "namespace": ns},
        "spec": {"parentRefs": [{"name": "test"}], "rules": [{"backendRefs": [{"name": "webhook", "port": 80}]}]}})
    from kubernetes import client

    service["metadata"]["namespace"] = ns
    client.CoreV1Api(custom.api_client).create_namespaced_service(ns, service)
    policy["metadata"]["namespace"] = ns
    custom.create_namespaced_custom_object(*AGW, ns, "agentgatewaypolicies", policy)

    def conditions() -> list[dict[str, Any]] | None:
        pol = custom.get_namespaced_custom_object(*AGW, ns, "agentgatewaypolicies", "agw")
        ancestors = (pol.get("status") or {}).get("ancestors") or []
        return ancestors[0]["conditions"] if ancestors else None

    got = [(c["type"], c["status"], c["reason"], c["message"]) for c in poll(conditions, what="the policy's status")]
    want = output["status"][0]["status"]["ancestors"][0]["conditions"]
    assert got == [(c["type"], c["status"], c["reason"], c["message"].replace("default/", f"{ns}/")) for c in want]
