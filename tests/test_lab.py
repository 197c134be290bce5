"""connect() and the Lab's addresses, against the sandbox."""

from __future__ import annotations

import pytest

from agwlab import connect
from agwlab.errors import LabError, PrometheusUnavailable


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    return connect()


def test_connect_defaults_to_the_sandbox(lab, sandbox):
    assert lab.target == "sandbox"
    assert lab.server == sandbox.apiserver
    assert (lab.gateway_class, lab.edition) == ("agentgateway", "oss")
    assert lab.prometheus_url() == sandbox.prometheus_url.rstrip("/")


def test_target_and_class_come_from_the_environment(sandbox, monkeypatch):
    monkeypatch.setenv("AGWLAB_GATEWAY_CLASS", "enterprise-agentgateway")
    lab = connect()
    assert (lab.gateway_class, lab.edition) == ("enterprise-agentgateway", "enterprise")
    monkeypatch.setenv("AGWLAB_TARGET", "moon")
    with pytest.raises(LabError, match="unknown target 'moon'"):
        connect()


def test_a_cluster_target_uses_the_kubeconfig_and_says_how_to_reach_prometheus(sandbox, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    monkeypatch.delenv("AGWLAB_PROMETHEUS_URL", raising=False)
    cluster = connect("cluster")
    assert cluster.target == "cluster" and cluster.server == sandbox.apiserver
    with pytest.raises(PrometheusUnavailable, match="AGWLAB_PROMETHEUS_URL"):
        cluster.prometheus_url()
    monkeypatch.setenv("AGWLAB_PROMETHEUS_URL", "http://127.0.0.1:9090/")
    assert cluster.prometheus_url() == "http://127.0.0.1:9090"


def test_address_override_for_port_forwards(lab, monkeypatch):
    monkeypatch.setenv("AGWLAB_GATEWAY_ADDRESS", "127.0.0.1")
    assert lab.gateway_url("/mcp") == "http://127.0.0.1:8080/mcp"


