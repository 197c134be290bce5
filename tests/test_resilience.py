"""agwlab.resilience: notebook 06's backend, route and policy are valid for agentgateway v1.4.1's own
CRDs, and the stand-in's outage control is reached through the API server's service proxy; without it, an outage patches the failover backend."""

from __future__ import annotations

import pytest

from agwlab import connect, kube, prepare, resilience, traces
from agwlab.errors import LabError
from agwlab.names import Names
from crds_v141 import admit_v141


def test_the_backend_has_two_groups_and_an_eviction_on_the_primary_only() -> None:
    spec = resilience.failover_backend(Names(), eviction="4s").obj["spec"]
    primary, backup = (g["providers"][0] for g in spec["ai"]["groups"])
    assert primary["policies"]["health"]["eviction"] == {"duration": "4s"}
    assert "policies" not in backup
    assert spec["policies"]["auth"]["secretRef"]["name"] == "anthropic-secret"


@pytest.mark.parametrize("make", [resilience.failover_backend, resilience.retry_policy])
def test_each_object_is_valid_for_v141s_own_crd(make) -> None:  # type: ignore[no-untyped-def]
    assert admit_v141(make(Names()).obj)["spec"]


def test_the_route_and_policy_pass_a_server_dry_run(kubectl) -> None:  # type: ignore[no-untyped-def]
    for m in (resilience.failover_backend(), resilience.failover_route(), resilience.retry_policy()):
        assert "(server dry run)" in kubectl("apply", "--dry-run=server", "-f", "-", input=m.yaml())


def test_an_outage_is_set_and_ended_through_the_service_proxy(sandbox) -> None:  # type: ignore[no-untyped-def]
    lab = connect()
    try:
        shown = resilience.outage(lab, model=resilience.BACKUP_MODEL, status=500, seconds=30)
        assert shown["outages"][0]["model"] == resilience.BACKUP_MODEL and shown["outages"][0]["status"] == 500
    finally:
        assert resilience.end_outage(lab) == {"outages": []}


NO_STANDIN = "agwlab-system/no-such-standin:443"  # a Service that is not there: as on a cluster with the real API


def test_without_a_stand_in_or_a_failover_backend_an_outage_says_what_to_do(sandbox) -> None:  # type: ignore[no-untyped-def]
    lab = connect(namespace="outage-nothing-here")
    with pytest.raises(LabError, match=r"no Claude stand-in .* apply resilience.failover_backend"):
        resilience.outage(lab, standin=NO_STANDIN)
    assert resilience.end_outage(lab, standin=NO_STANDIN) == {"outages": []}


def test_without_the_stand_in_the_primary_asks_for_a_refused_model(sandbox) -> None:  # type: ignore[no-untyped-def]
    """The real-API way: the proxy really forwards the refused model, the stand-in answers 404 as Anthropic does."""
    lab = connect()
    names = lab.names
    prepare(lab, "llm")
    backend = resilience.failover_backend(names, eviction="3s")
    kube.apply(lab, [backend, resilience.failover_route(names)], quiet=True)
    try:
        resilience.wait_for_model(lab, resilience.PRIMARY_MODEL, timeout=30)
        shown = resilience.outage(lab, seconds=60, standin=NO_STANDIN)
        sent = shown["sent"]
        assert shown["outages"][0]["status"] == 404
        # every request before the last was the primary's (the patch not yet in force); the last met the 404
        assert sent.models[:-1] == [resilience.PRIMARY_MODEL] * (len(sent.models) - 1)
        failed = resilience.first_failover(sent)
        assert failed is sent.results[-1] and failed.status == 404 and resilience.REFUSED_MODEL in failed.error
        stored = kube.get(lab, "AgentgatewayBackend", names.failover_backend, names.namespace)
        primary = stored["spec"]["ai"]["groups"][0]["providers"][0]
        assert primary["anthropic"]["model"] == resilience.REFUSED_MODEL
        assert primary["policies"]["health"]["unhealthyCondition"].endswith("|| response.code == 404")
        assert resilience.sample(lab, 2).models == [resilience.BACKUP_MODEL] * 2      # evicted
        assert resilience.end_outage(lab, standin=NO_STANDIN) == {"outages": []}
        restored = kube.get(lab, "AgentgatewayBackend", names.failover_backend, names.namespace)
        assert restored["spec"] == backend.obj["spec"]
        assert "agwlab.dev/outage-restore" not in (restored["metadata"].get("annotations") or {})
        resilience.wait_for_model(lab, resilience.PRIMARY_MODEL, timeout=30)

        # with retries (404 among the codes) the request that meets the failure is answered by the backup,
        # and the outage ends by itself
        kube.apply(lab, resilience.retry_policy(names, backoff="10ms"), quiet=True)
        kube.wait_for(lab, "AgentgatewayPolicy", names.resilience_policy, names.namespace, condition="Accepted",
                      timeout=60)
        retried = resilience.first_failover(resilience.outage(lab, seconds=2, standin=NO_STANDIN)["sent"])
        assert retried.status == 200 and retried.model == resilience.BACKUP_MODEL
        assert traces.find_access_log(lab, retried.trace_id).get("retry.attempt") == "1"
        resilience.wait_for_model(lab, resilience.PRIMARY_MODEL, timeout=30)
        restored = kube.get(lab, "AgentgatewayBackend", names.failover_backend, names.namespace)
        assert restored["spec"] == backend.obj["spec"]
    finally:
        resilience.end_outage(lab, standin=NO_STANDIN)
        for kind, name in [("AgentgatewayPolicy", names.resilience_policy), ("HTTPRoute", names.failover_route),
                           ("AgentgatewayBackend", names.failover_backend)]:
            kube.delete(lab, kind, name, names.namespace)
