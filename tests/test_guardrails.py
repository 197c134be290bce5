"""agwlab.guardrails: notebook 08's policy validates against agentgateway v1.4.1's CRD schema (served by
the sandbox's API server and checked in-process against v1.4.1's own), and the prompts it ships trip
the guards as v1.4.1 runs them (``crates/agentgateway/src/llm/policy/mod.rs``, ``proxy/mod.rs``)."""

from __future__ import annotations

import openai
import pytest

from agwlab import connect, guardrails, kube, llm
from agwlab.names import Names
from agwlab.sandbox.store import Invalid
from crds_v141 import admit_v141
from labtest import poll


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm")
    return lab


def test_the_policy_guards_the_claude_route_in_order() -> None:
    obj = guardrails.guard_policy(Names()).obj
    assert obj["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                          "name": "claude"}]
    pg = obj["spec"]["backend"]["ai"]["promptGuard"]
    assert [g["regex"]["action"] for g in pg["request"]] == ["Reject", "Reject", "Mask"]
    assert pg["request"][1]["response"] == {"statusCode": 400, "message": guardrails.REJECT_MESSAGE}
    assert pg["response"] == [{"regex": {"action": "Mask", "builtins": ["Email"]}}]


def test_the_policy_passes_the_v141_schema_on_a_server_dry_run(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=guardrails.guard_policy(Names()).yaml())
    assert "agentgatewaypolicy.agentgateway.dev/llm-guardrails created (server dry run)" in out


def test_the_policy_is_valid_for_v141s_own_crd() -> None:
    admitted = admit_v141(guardrails.guard_policy(Names()).obj)
    assert admitted["spec"]["backend"]["ai"]["promptGuard"]["request"][2]["regex"]["builtins"] == ["PhoneNumber"]


def test_the_v141_check_refuses_a_builtin_v141_does_not_have() -> None:
    obj = guardrails.guard_policy(Names(), mask_response=("Url",)).obj
    with pytest.raises(Invalid, match="Unsupported value"):
        admit_v141(obj)


def test_the_notebooks_prompts_trip_the_guards(lab) -> None:  # type: ignore[no-untyped-def]
    kube.apply(lab, guardrails.guard_policy(lab.names), quiet=True)
    try:
        refused = guardrails.wait_until_guarded(lab)
        assert refused.status == 403 and refused.body == "The request was rejected due to inappropriate content"
        assert "prompt guard" in refused.hint and "nothing reached Claude" in refused.hint
        oa = openai.OpenAI(base_url=lab.gateway_url("/anthropic"), api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError) as err:
            oa.chat.completions.create(model="x", messages=[{"role": "user", "content": guardrails.CARD_PROMPT}])
        assert err.value.response.text == guardrails.REJECT_MESSAGE
        masked = llm.chat(lab, guardrails.PHONE_PROMPT, max_tokens=200)
        assert masked.ok and "<PHONE_NUMBER>" in masked.answer and "555-0123" not in masked.answer
        echoed = llm.chat(lab, guardrails.EMAIL_PROMPT, max_tokens=200)
        assert "<EMAIL_ADDRESS>" in echoed.answer and guardrails.EMAIL not in echoed.answer
        poll(lambda: guardrails.guard_count(guardrails.guard_checks(lab), "Response", "Mask") > 0, timeout=30,
             what="Prometheus to count the masked answer")
    finally:
        kube.delete(lab, "AgentgatewayPolicy", lab.names.guardrail_policy, lab.names.namespace, quiet=True)
