"""Stages: prepare (idempotent), preflight and cleanup, against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from agwlab import connect, kube
from agwlab.errors import GatewayAddressUnavailable, LabError
from agwlab.names import Names
from agwlab.stages import REGISTRY, cleanup, leftovers, objects, preflight, prepare


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    return connect()


def test_prepare_is_idempotent_and_the_gateway_gets_an_address(lab, capsys):
    prepare(lab, "llm", "tracing", "mcp")
    capsys.readouterr()
    prepare(lab, "llm", "tracing", "mcp")
    out = capsys.readouterr().out
    assert out.count(" 0 changed") == 3, out
    address = lab.gateway_address()
    svc = kube.get(lab, "Service", "agentgateway-route", "agentgateway-system")
    assert address == svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert lab.gateway_url("/anthropic") == f"http://{address}:8080/anthropic"


def test_prepare_refuses_an_unknown_stage(lab):
    with pytest.raises(LabError, match="unknown stage"):
        prepare(lab, "dessert")


def test_preflight_passes_on_the_sandbox(lab):
    results = preflight(lab)
    assert [r.step for r in results] == [
        "api",
        "gateway-api",
        "agentgateway-crds",
        "controller",
        "gatewayclass",
        "collector",
        "prometheus",
    ]
    assert all(results)
    assert "version v1.4.1" in results[3].detail


def test_cleanup_removes_only_what_the_lab_made(lab):
    prepare(lab, "llm", "tracing", "mcp")
    lines = cleanup(lab)
    assert "gateway/agentgateway-route: deleted" in lines
    assert "deployment/opentelemetry-collector-traces: not created by the lab, left alone" in lines
    assert leftovers(lab) == []
    assert kube.get(lab, "Deployment", "opentelemetry-collector-traces", "telemetry") is not None
    with pytest.raises(GatewayAddressUnavailable, match="01-claude-llm-connection"):
        lab.gateway_address()
    assert all(line.endswith("not there") or "left alone" in line for line in cleanup(lab))


def test_a_learner_in_their_own_namespace_gets_the_whole_lab_there(sandbox, monkeypatch):
    monkeypatch.setenv("AGWLAB_NAMESPACE", "agwlab-dana")
    dana = connect()
    assert dana.names.gateway_ref == "agwlab-dana/agentgateway-route"
    kube.apply(dana, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agwlab-dana"}}, quiet=True)
    prepare(dana, "llm", "mcp")
    assert kube.get(dana, "Deployment", "agentgateway-route", "agwlab-dana") is not None
    assert kube.get(dana, "Deployment", "mcp-website-fetcher", "agwlab-dana") is not None
    lines = cleanup(dana)
    assert "gateway/agentgateway-route: deleted" in lines
    assert kube.get(dana, "Gateway", "agentgateway-route", "agwlab-dana", missing_ok=True) is None


def test_a_lab_cannot_be_given_a_gateway_name_its_manifests_would_not_use(lab):
    with pytest.raises(TypeError):
        type(lab)(target="sandbox", api_client=lab.api_client, dynamic=lab.dynamic, gateway_name="other")


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.name)
def test_a_stage_waits_only_for_objects_it_applies_and_has_its_notebook(spec):
    names = Names.for_namespace("agwlab-erin")
    applied = {(m.kind, m.name, m.namespace) for m in objects(spec.name, names=names)}
    if spec.prerequisite:
        applied |= {(m.kind, m.name, m.namespace) for m in spec.prerequisite.build(names)}
    for wait in spec.ready(names):
        assert (wait.kind, wait.name, wait.namespace) in applied, wait
    assert (Path(__file__).parents[1] / "notebooks" / f"{spec.notebook}.ipynb").is_file()
    if spec.probe:
        routes = [m for m in objects(spec.name, names=names) if m.kind == "HTTPRoute"]
        prefixes = [match["path"]["value"] for r in routes for rule in r.obj["spec"]["rules"]
                    for match in rule["matches"]]
        assert any(spec.probe.path.startswith(p) for p in prefixes), prefixes
