"""Fixtures for the sandbox's end-to-end tests."""

from __future__ import annotations

import re

import httpx
import pytest

from labtest import DATA, KEY, NS, poll


@pytest.fixture(scope="session")
def gateway(kubectl) -> str:  # type: ignore[no-untyped-def]
    # The tutorial's YAML with one change, as the lab makes it: open-source agentgateway v1.4.1
    # has no enterprise-agentgateway class (see test_the_tutorials_enterprise_class_is_not_programmed).
    manifest = (DATA / "seed_llm.yaml").read_text(encoding="utf-8").replace("${ANTHROPIC_API_KEY}", KEY)
    manifest = manifest.replace("gatewayClassName: enterprise-agentgateway", "gatewayClassName: agentgateway")
    out = kubectl("apply", "-f", "-", input=manifest)
    assert "gateway.gateway.networking.k8s.io/agentgateway-route created" in out or "configured" in out or "unchanged" in out
    again = kubectl("apply", "-f", "-", input=manifest).splitlines()
    # applying twice changes nothing; kubectl still says "configured" where the server defaulted
    # fields inside a list (HTTPRoute) or folded stringData (Secret), as a real cluster does
    assert len(again) == 4 and all(l.endswith((" unchanged", " configured")) for l in again), again
    kubectl("wait", "--for=condition=Programmed", "gateway/agentgateway-route", "-n", NS, "--timeout=30s")
    addr = kubectl("get", "gateway", "agentgateway-route", "-n", NS, "-o", "jsonpath={.status.addresses[0].value}")
    assert re.fullmatch(r"127\.\d+\.255\.\d+", addr), addr
    base = f"http://{addr}:8080"
    # Accepted is the control plane's word; wait for the data plane to serve the route too
    poll(lambda: httpx.post(f"{base}/anthropic", json={"messages": [{"role": "user", "content": "hi"}]},
                            timeout=5).status_code == 200, what="the proxy to serve /anthropic")
    return base


