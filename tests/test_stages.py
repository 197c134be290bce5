"""Stages: prepare (idempotent), preflight and cleanup, against the sandbox."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agwlab import connect, kube, models
from agwlab.errors import GatewayAddressUnavailable, LabError, WaitTimeout
from agwlab.names import Names
from agwlab.stages import REGISTRY, cleanup, leftovers, objects, preflight, prepare
from labtest import DATA, KEY


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
        "scrape",
    ]
    assert all(results)
    assert "version v1.4.1" in results[3].detail


def test_cleanup_removes_only_what_the_lab_made(lab):
    prepare(lab, "llm", "tracing", "mcp")
    lines = cleanup(lab)
    assert "gateway/agentgateway-system/agentgateway-route: deleted (the lab's)" in lines
    assert "deployment/telemetry/opentelemetry-collector-traces: installed by Helm, left alone" in lines
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
    assert "gateway/agwlab-dana/agentgateway-route: deleted (the lab's)" in lines
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


def _tutorial_kubectl_steps(kubectl_bin: str, kubeconfig: str, key: str = "") -> None:
    """The tutorial's kubectl steps as typed (the MCP backend's spec.type is refused, as on a cluster)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "ANTHROPIC_API_KEY": key}
    llm = (DATA / "seed_llm.yaml").read_text().replace("${ANTHROPIC_API_KEY}", key)
    subprocess.run([kubectl_bin, "apply", "-f", "-"], input=llm, text=True, env=env, check=True, capture_output=True)
    subprocess.run([kubectl_bin, "apply", "-f", str(DATA / "seed_mcp.yaml")], env=env, check=False,
                   capture_output=True)


def test_cleanup_finds_what_the_tutorials_kubectl_steps_made(lab, sandbox, kubectl_bin):
    cleanup(lab)
    _tutorial_kubectl_steps(kubectl_bin, sandbox.kubeconfig, KEY)
    lines = cleanup(lab)
    by_kubectl = "deleted (applied with kubectl, as the tutorial's steps do)"
    for made in ("gateway/agentgateway-system/agentgateway-route", "secret/agentgateway-system/anthropic-secret",
                 "agentgatewaybackend/agentgateway-system/anthropic", "httproute/agentgateway-system/claude",
                 "deployment/default/mcp-website-fetcher", "service/default/mcp-website-fetcher",
                 "httproute/agentgateway-system/mcp-route"):
        assert f"{made}: {by_kubectl}" in lines, lines
    assert "agentgatewaybackend/agentgateway-system/mcp-backend: not there" in lines  # refused by the API server
    assert "deployment/telemetry/opentelemetry-collector-traces: installed by Helm, left alone" in lines
    assert leftovers(lab) == []


def test_an_object_under_a_lab_name_made_some_other_way_is_left_and_reported(lab):
    from kubernetes import client

    cleanup(lab)
    core = client.CoreV1Api(lab.api_client)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mcp-website-fetcher"},
           "spec": {"selector": {"app": "someone-else"}, "ports": [{"port": 80}]}}
    core.create_namespaced_service("default", svc, field_manager="someone-elses-tool")
    try:
        lines = cleanup(lab)
        assert ("service/default/mcp-website-fetcher: not the lab's (no app.kubernetes.io/part-of=agwlab label, "
                "made by someone-elses-tool), left alone") in lines
        assert kube.get(lab, "Service", "mcp-website-fetcher", "default") is not None
        assert leftovers(lab) == []  # not the lab's, so not a leftover of it
    finally:
        core.delete_namespaced_service("mcp-website-fetcher", "default")


def test_a_wait_that_runs_out_names_the_real_object_in_its_hint(lab):
    with pytest.raises(WaitTimeout) as caught:
        kube.wait_for(lab, "Deployment", "no-such-app", "default", condition="Available", timeout=0.3, quiet=True)
    message = str(caught.value)
    assert "kubectl get pods -n default and kubectl logs deploy/no-such-app" in message
    assert "<" not in message
    prepare(lab, "llm")
    with pytest.raises(WaitTimeout) as caught:
        kube.wait_for(lab, "Gateway", "agentgateway-route", "agentgateway-system", condition="deleted",
                      timeout=0.3, quiet=True)
    assert "kubectl get gateway agentgateway-route -n agentgateway-system -o yaml" in str(caught.value)


def test_catch_up_keeps_the_key_in_the_secret_and_the_chosen_model(lab, no_api_key, capsys):
    """A kernel that was never given a key (a later notebook) leaves the Secret and the model alone."""
    from agwlab import manifests, secrets

    prepare(lab, "llm")
    secrets.accept_key(KEY)  # notebook 01: the learner types a key, applies the Secret, picks a model
    kube.apply(lab, [manifests.anthropic_secret(lab.api_key(), lab.names),
                     manifests.anthropic_backend(lab.names, model="claude-opus-4-7")], quiet=True)
    rv = kube.get(lab, "Secret", "anthropic-secret", "agentgateway-system")["metadata"]["resourceVersion"]
    secrets.forget_entered_key()  # a fresh kernel: no key typed, none in the environment
    key = lab.api_key()
    assert (key.source, key.reveal()) == ("secret", KEY)
    assert "already in the cluster's Secret" in key.describe() and KEY not in key.describe()
    capsys.readouterr()
    prepare(lab, "llm")
    assert " 0 changed" in capsys.readouterr().out
    after = kube.get(lab, "Secret", "anthropic-secret", "agentgateway-system")
    assert after["metadata"]["resourceVersion"] == rv
    assert models.backend_model(lab) == "claude-opus-4-7"
    kube.apply(lab, manifests.anthropic_backend(lab.names), quiet=True)  # back to the default
    assert models.backend_model(lab) == models.DEFAULT_MODEL
