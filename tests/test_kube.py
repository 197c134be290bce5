"""apply / get / wait_for / delete / logs against the real sandbox API server."""

from __future__ import annotations

import uuid

import pytest

from agwlab import connect, kube
from agwlab.errors import InvalidObject, NotFound, ResourceTypeMissing, WaitTimeout

NS = "agwlab-test-kube"


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    lab = connect("sandbox")
    kube.apply(lab, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, quiet=True)
    yield lab
    kube.delete(lab, "Namespace", NS, quiet=True)


def _configmap(name: str, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def test_apply_creates_then_leaves_unchanged_then_configures(lab, capsys):
    name = f"cm-{uuid.uuid4().hex[:6]}"
    assert [a.action for a in kube.apply(lab, _configmap(name, a="1"))] == ["created"]
    assert [a.action for a in kube.apply(lab, _configmap(name, a="1"))] == ["unchanged"]
    assert [a.action for a in kube.apply(lab, _configmap(name, a="2"))] == ["configured"]
    out = capsys.readouterr().out.splitlines()
    assert out == [f"configmap/{name} created", f"configmap/{name} unchanged", f"configmap/{name} configured"]
    stored = kube.get(lab, "cm", name, NS)
    assert stored["data"] == {"a": "2"}
    fields = stored["metadata"]["managedFields"]
    assert any(f["manager"] == "agwlab" and f["operation"] == "Apply" for f in fields)


def test_apply_takes_yaml_with_several_documents(lab):
    names = [f"y-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    text = "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}, namespace: {NS}}}\ndata: {{k: v}}"
        for n in names
    )
    applied = kube.apply(lab, text, quiet=True)
    assert [a.name for a in applied] == names
    assert all(kube.get(lab, "ConfigMap", n, NS)["data"] == {"k": "v"} for n in names)


def test_unknown_field_is_refused_and_named(lab):
    obj = _configmap(f"bad-{uuid.uuid4().hex[:6]}", a="1")
    obj["spec"] = {"type": "MCP"}
    with pytest.raises(InvalidObject) as err:
        kube.apply(lab, obj, quiet=True)
    assert "spec" in " ".join(err.value.fields) or "spec" in str(err.value)
    assert kube.get(lab, "ConfigMap", obj["metadata"]["name"], NS, missing_ok=True) is None


def test_dry_run_validates_without_saving(lab):
    name = f"dry-{uuid.uuid4().hex[:6]}"
    (applied,) = kube.apply(lab, _configmap(name, a="1"), dry_run=True, quiet=True)
    assert applied.action == "valid (dry run)"
    assert kube.get(lab, "ConfigMap", name, NS, missing_ok=True) is None


def test_a_kind_the_cluster_does_not_serve_says_what_to_install(lab):
    with pytest.raises(ResourceTypeMissing, match="doesn't have a resource type Widget"):
        kube.get(lab, "Widget", "w", NS, api_version="example.com/v1")
    missing_agw = "agentgateway.dev/v9"
    with pytest.raises(ResourceTypeMissing, match="agentgateway-crds"):
        kube.get(lab, "AgentgatewayBackend", "x", NS, api_version=missing_agw)


def test_get_missing_object_raises_not_found_naming_it(lab):
    with pytest.raises(NotFound, match=f"ConfigMap/nope not found in namespace {NS}"):
        kube.get(lab, "ConfigMap", "nope", NS)


def test_wait_for_reports_progress_and_returns_the_object(lab, capsys):
    gc = kube.wait_for(lab, "GatewayClass", "agentgateway", condition="Accepted", timeout=10)
    assert kube.conditions(gc)["Accepted"]["status"] == "True"
    assert "✓ gatewayclass/agentgateway Accepted=True" in capsys.readouterr().out


def test_wait_for_times_out_saying_what_it_last_saw(lab):
    name = f"never-{uuid.uuid4().hex[:6]}"
    with pytest.raises(WaitTimeout) as err:
        kube.wait_for(lab, "ConfigMap", name, NS, condition="exists", timeout=0.5, quiet=True)
    assert err.value.last_seen == "does not exist"
    assert str(err.value).startswith(f"waited 0.5s for configmap/{name} to exist; last seen: does not exist")


def test_delete_ignores_missing_objects_and_can_wait(lab):
    name = f"del-{uuid.uuid4().hex[:6]}"
    kube.apply(lab, _configmap(name), quiet=True)
    assert kube.delete(lab, "ConfigMap", name, NS, wait=True, quiet=True) is True
    assert kube.get(lab, "ConfigMap", name, NS, missing_ok=True) is None
    assert kube.delete(lab, "ConfigMap", name, NS, quiet=True) is False
    assert kube.delete(lab, "Widget", "w", NS, api_version="example.com/v1", quiet=True) is False


def test_logs_of_a_deployment_hold_what_its_pods_wrote(lab):
    from agwlab import llm
    from agwlab.stages import prepare

    prepare(lab, "llm")
    result = llm.chat(lab, "hello")
    tail = kube.logs(lab, "deploy/agentgateway-route", "agentgateway-system", tail=20)
    assert f"trace.id={result.trace_id}" in tail
    assert len(tail.splitlines()) <= 20
    with pytest.raises(NotFound):
        kube.logs(lab, "deploy/does-not-exist", NS)


def test_conditions_reads_route_parents_and_skips_stale_generations():
    route = {
        "metadata": {"generation": 3},
        "status": {
            "parents": [
                {"conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 3}]},
            ],
            "conditions": [{"type": "Old", "status": "True", "observedGeneration": 2}],
        },
    }
    conds = kube.conditions(route)
    assert set(conds) == {"Accepted"}


def test_malformed_yaml_is_refused_before_anything_is_applied(lab):  # type: ignore[no-untyped-def]
    from agwlab.errors import InvalidObject

    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first-of-two, namespace: default}\n---\nkind: [unclosed\n"
    with pytest.raises(InvalidObject, match=r"not valid YAML at line \d+, column \d+.*nothing was applied"):
        kube.apply(lab, text)
    assert kube.get(lab, "ConfigMap", "first-of-two", "default", missing_ok=True) is None


def test_a_missing_namespace_is_named_with_the_fix(lab):  # type: ignore[no-untyped-def]
    from agwlab.errors import NotFound

    with pytest.raises(NotFound, match=r"namespace no-such-namespace does not exist.*kubectl create namespace"):
        kube.apply(lab, {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "x", "namespace": "no-such-namespace"}})
