"""agwlab.ratelimits: notebook 07's policies validate against agentgateway v1.4.1's CRD schema
(served by the sandbox's API server, checked with kubectl's server-side dry run), and a burst
reads the gateway's 429s and ``x-ratelimit-*`` headers as v1.4.1 sends them
(``crates/agentgateway/src/proxy/mod.rs``, ``http/localratelimit.rs``)."""

from __future__ import annotations

import pytest

from agwlab import connect, kube, ratelimits
from agwlab.names import Names
from agwlab.sandbox.store import BadRequest, Invalid
from crds_v141 import admit_v141
from labtest import poll


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm")
    return lab


def test_the_policies_target_the_claude_route_and_say_what_they_limit() -> None:
    names = Names()
    req = ratelimits.request_limit(names, requests=4, unit="Seconds", burst=1).obj
    assert req["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                          "name": "claude"}]
    assert req["spec"]["traffic"]["rateLimit"] == {"local": [{"requests": 4, "unit": "Seconds", "burst": 1}]}
    assert ratelimits.token_limit(names, tokens=9).obj["spec"]["traffic"]["rateLimit"] == {
        "local": [{"tokens": 9, "unit": "Minutes"}]}
    cond = ratelimits.per_client_limits(names, limits={"a": 1, "b": 2}, others=3).obj
    entries = cond["spec"]["traffic"]["rateLimit"]["conditional"]
    assert [e.get("condition") for e in entries] == ['request.headers["x-client"] == "a"',
                                                     'request.headers["x-client"] == "b"', None]


@pytest.mark.parametrize("make", [ratelimits.request_limit, ratelimits.token_limit, ratelimits.per_client_limits])
def test_each_policy_passes_the_v141_schema_on_a_server_dry_run(kubectl, make) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=make(Names()).yaml())
    assert "agentgatewaypolicy.agentgateway.dev/llm-rate-limit created (server dry run)" in out


@pytest.mark.parametrize("make", [ratelimits.request_limit, ratelimits.token_limit, ratelimits.per_client_limits])
def test_each_policy_is_valid_for_v141s_own_crd(make) -> None:  # type: ignore[no-untyped-def]
    admitted = admit_v141(make(Names()).obj)
    assert admitted["spec"]["traffic"]["rateLimit"]


def test_the_v141_check_refuses_what_v141_does_not_have() -> None:
    later = ratelimits.request_limit(Names()).obj
    later["spec"]["traffic"]["rateLimit"] = {"global": {"url": "http://rls:8081", "domain": "d", "descriptors": [
        {"entries": [{"name": "a", "expression": "1"}]}]}}        # `url` came after v1.4.1
    with pytest.raises(BadRequest, match="unknown field"):
        admit_v141(later)
    both = ratelimits.request_limit(Names()).obj
    both["spec"]["traffic"]["rateLimit"]["local"][0]["tokens"] = 5
    with pytest.raises(Invalid, match=r"exactly one of the fields in \[requests tokens\] must be set"):
        admit_v141(both)


def test_a_burst_reads_the_429_and_its_headers(lab) -> None:  # type: ignore[no-untyped-def]
    kube.apply(lab, ratelimits.request_limit(lab.names, requests=2, unit="Hours"), quiet=True)
    try:
        run = ratelimits.until_limited(lab, timeout=30)
        refused = run.limited[0]
        assert run.allowed >= 2 and run.rows[-1]["status"] == 429
        assert ratelimits.headers_of(refused)["x-ratelimit-limit"] == "2"
        assert 3000 < int(ratelimits.headers_of(refused)["x-ratelimit-reset"]) <= 3600
        assert "rate limit" in refused.hint and refused.body == "rate limit exceeded"
        poll(lambda: ratelimits.limited_count(ratelimits.allowed_vs_limited(lab)) > 0, timeout=30,
             what="Prometheus to count the 429")
    finally:
        kube.delete(lab, "AgentgatewayPolicy", lab.names.rate_limit_policy, lab.names.namespace, quiet=True)
