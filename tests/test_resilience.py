"""agwlab.resilience: notebook 06's backend, route and policy are valid for agentgateway v1.4.1's own
CRDs, and the stand-in's outage control is reached through the API server's service proxy."""

from __future__ import annotations

import pytest

from agwlab import connect, resilience
from agwlab.errors import LabError
from agwlab.names import Names
from agwlab.wait import attempt
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


def test_without_the_stand_in_an_outage_says_what_to_do_instead(sandbox, kubectl) -> None:  # type: ignore[no-untyped-def]
    lab = connect()
    kubectl("scale", "deploy/anthropic-standin", "-n", "agwlab-system", "--replicas=0")
    try:
        with pytest.raises(LabError, match="outages need the sandbox's stand-in"):
            _wait_refused(lab)
        assert resilience.end_outage(lab) == {"outages": []}
    finally:
        kubectl("scale", "deploy/anthropic-standin", "-n", "agwlab-system", "--replicas=1")
        kubectl("rollout", "status", "deploy/anthropic-standin", "-n", "agwlab-system", "--timeout=60s")


def _wait_refused(lab) -> None:  # type: ignore[no-untyped-def]
    """Call the outage control until it is refused (the stand-in's Pod takes a moment to go)."""
    # outage() raises LabError once the stand-in is gone
    attempt(lambda: (False, resilience.outage(lab, seconds=1)), timeout=30, interval=0.2)
