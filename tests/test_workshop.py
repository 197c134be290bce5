"""``python -m agwlab workshop`` against the session's sandbox: attendees, isolation, the placed
key, progress, reset and delete, with the real CLI, kubectl and the kubernetes client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from agwlab import checks, kube, stages
from agwlab.errors import PrometheusUnavailable
from agwlab.lab import connect
from labtest import KEY

LAB_KINDS = [
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("agentgateway.dev/v1alpha1", "AgentgatewayBackend"), ("agentgateway.dev/v1alpha1", "AgentgatewayPolicy"),
    ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "Pod"), ("apps/v1", "Deployment"),
    ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
]


class Ran:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Ran:
    """``python -m agwlab workshop ARGS`` in this process (the same code as the command, without
    paying for a new interpreter each time); ``env`` changes the environment meanwhile."""
    import contextlib
    import io

    from agwlab.cli import main

    saved = {k: os.environ.get(k) for k in ["AGWLAB_TARGET", "AGWLAB_NAMESPACE", "KUBECONFIG", *(env or {})]}
    os.environ["AGWLAB_TARGET"] = "sandbox"
    os.environ.pop("AGWLAB_NAMESPACE", None)
    os.environ.pop("KUBECONFIG", None)
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["workshop", *args])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ran = Ran(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"workshop {' '.join(args)} failed ({code}): {ran.stdout}\n{ran.stderr}")
    return ran


@pytest.fixture(scope="module")
def attendees(sandbox):  # type: ignore[no-untyped-def]
    """alice and bob (their own keys), and carol (the instructor's key placed): name -> kubeconfig."""
    proc = subprocess.run([sys.executable, "-m", "agwlab", "workshop", "create", "alice", "bob"],
                          check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AGWLAB_TARGET": "sandbox", "AGWLAB_NAMESPACE": ""})
    out = proc.stdout.splitlines()
    assert proc.returncode == 0 and out[-1].startswith("2 attendee(s) ready"), (out, proc.stderr)
    placed = cli("create", "carol", "--place-key", env={"ANTHROPIC_API_KEY": KEY})
    assert KEY not in placed.stdout + placed.stderr
    paths = {}
    for name in ("alice", "bob", "carol"):
        last = cli("kubeconfig", name).stdout.splitlines()[-1]
        paths[name] = Path(last)
        assert paths[name].exists() and oct(paths[name].stat().st_mode & 0o777) == "0o600"
    yield paths
    checks.record_results(None)
    cli("delete", "alice", "bob", "carol")


def _dyn(kubeconfig: Path) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)))


def test_create_is_idempotent_and_names_are_checked(attendees, sandbox):
    again = cli("create", "alice")
    assert "agwlab-alice" in again.stdout
    bad = cli("create", "Bad_Name", check=False)
    assert bad.returncode == 1 and "attendee name 'Bad_Name' cannot be used" in bad.stderr
    assert cli("create", check=False).returncode == 1
    assert "name the attendees to delete, or --all" in cli("delete", check=False).stderr
    missing = cli("reset", "nobody", check=False)
    assert missing.returncode == 1 and "there is no attendee 'nobody'" in missing.stderr
    placed = cli("create", "dave", "--place-key", env={"ANTHROPIC_API_KEY": ""}, check=False)
    assert placed.returncode == 2 and "ANTHROPIC_API_KEY" in placed.stderr
    kc = yaml_load(attendees["alice"])
    assert kc["contexts"][0]["context"]["namespace"] == "agwlab-alice"


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_every_verb_on_another_attendee_is_refused(attendees):
    alice = _dyn(attendees["alice"])
    admin = _dyn(Path(os.environ["AGWLAB_HOME"]) / "sandbox" / "kubeconfig")
    cm = admin.resources.get(api_version="v1", kind="ConfigMap")
    cm.create(namespace="agwlab-bob", body={"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "bobs"}, "data": {"a": "1"}})
    user = "system:serviceaccount:agwlab-alice:attendee"
    for api_version, kind in LAB_KINDS:
        res = alice.resources.get(api_version=api_version, kind=kind)
        body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
        calls = {
            "get": lambda res=res: res.get(name="x", namespace="agwlab-bob"),
            "list": lambda res=res: res.get(namespace="agwlab-bob"),
            "watch": lambda res=res: next(iter(res.watch(namespace="agwlab-bob", timeout=1))),
            "create": lambda res=res, body=body: res.create(body=body, namespace="agwlab-bob"),
            "update": lambda res=res, body=body: res.replace(body=body, namespace="agwlab-bob"),
            "patch": lambda res=res, body=body: res.patch(body=body, name="x", namespace="agwlab-bob",
                                                          content_type="application/merge-patch+json"),
            "delete": lambda res=res: res.delete(name="x", namespace="agwlab-bob"),
            "deletecollection": lambda res=res: res.delete(namespace="agwlab-bob", label_selector="a=b"),
        }
        for verb, call in calls.items():
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403, (kind, verb, err.value.body)
            assert f'User "{user}" cannot {verb} resource "{res.name}"' in json.loads(err.value.body)["message"]
    assert cm.get(name="bobs", namespace="agwlab-bob").data.a == "1"
    # nothing cluster-wide either, beyond reading GatewayClasses
    with pytest.raises(ApiException) as err:
        alice.resources.get(api_version="v1", kind="Secret").get()
    assert err.value.status == 403
    assert alice.resources.get(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass").get().items
    # nor the shared collector: its log carries everyone's spans (her lab runs a collector of her own)
    with pytest.raises(ApiException) as err:
        alice.resources.get(api_version="v1", kind="Pod").get(namespace="telemetry")
    assert err.value.status == 403


def test_the_placed_key_works_but_cannot_be_read(attendees):
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(attendees["carol"])))
    for call in (lambda: core.read_namespaced_secret("anthropic-secret", "agwlab-carol"),
                 lambda: core.list_namespaced_secret("agwlab-carol"),
                 lambda: core.patch_namespaced_secret("anthropic-secret", "agwlab-carol", {"data": {}}),
                 lambda: core.delete_namespaced_secret("anthropic-secret", "agwlab-carol")):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403 and KEY not in err.value.body
    admin = client.CoreV1Api(config.new_client_from_config(
        config_file=str(Path(os.environ["AGWLAB_HOME"]) / "sandbox" / "kubeconfig")))
    stored = admin.read_namespaced_secret("anthropic-secret", "agwlab-carol")
    assert set(stored.data) == {"Authorization"}
    out = subprocess.run(["kubectl", "auth", "can-i", "get", "secrets"], check=False, capture_output=True, text=True,
                         env={**os.environ, "KUBECONFIG": str(attendees["carol"])}, timeout=60)
    assert out.stdout.strip() == "no"


def test_cleanup_leaves_the_placed_key_alone(attendees, monkeypatch):
    monkeypatch.setenv("AGWLAB_TARGET", "cluster")
    monkeypatch.delenv("AGWLAB_NAMESPACE", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(attendees["carol"]))
    carol = connect()
    assert carol.placed_secret() == "anthropic-secret"
    assert carol.api_key().source == "placed" and KEY not in repr(carol.api_key())
    lines = stages.cleanup(carol)  # nothing of hers is there yet; above all, no 403 on the Secret
    assert not any("secret/" in line for line in lines), lines
    assert stages.leftovers(carol) == []
    admin = client.CoreV1Api(config.new_client_from_config(
        config_file=str(Path(os.environ["AGWLAB_HOME"]) / "sandbox" / "kubeconfig")))
    assert admin.read_namespaced_secret("anthropic-secret", "agwlab-carol").data["Authorization"]


def test_progress_is_recorded_per_attendee_and_reset_touches_one(attendees, monkeypatch):
    monkeypatch.setenv("AGWLAB_TARGET", "cluster")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("AGWLAB_NAMESPACE", raising=False)
    monkeypatch.setenv("AGWLAB_STRICT", "0")
    labs = {}
    for name in ("bob", "alice"):  # alice last: checks record for the last lab connected
        monkeypatch.setenv("KUBECONFIG", str(attendees[name]))
        labs[name] = connect()
        assert labs[name].names.namespace == f"agwlab-{name}"
        stages.prepare(labs[name], "llm", timeout=90)
    checks.check("01-claude-llm-connection", "1", True, what="alice was here", hint="")
    checks.check("01-claude-llm-connection", "2", False, what="alice failed this", hint="")
    checks.record_results(None)
    table = cli("progress", "--json").stdout
    data = json.loads(table)
    assert data["alice"]["01-claude-llm-connection 1"]["ok"] is True
    assert data["alice"]["01-claude-llm-connection 2"]["ok"] is False
    assert "prepare llm" in data["bob"] and "01-claude-llm-connection 1" not in data["bob"]
    shown = cli("progress").stdout
    assert "alice" in shown and "❌" in shown and "✅" in shown
    # each one's Gateway has its own address
    addresses = {n: lab.gateway_address() for n, lab in labs.items()}
    assert addresses["alice"] != addresses["bob"]
    out = cli("reset", "alice").stdout
    assert "gateway/agentgateway-route: deleted" in out and out.splitlines()[-1] == "alice reset"
    assert kube.get(labs["alice"], "Gateway", "agentgateway-route", "agwlab-alice", missing_ok=True) is None
    assert kube.get(labs["bob"], "Gateway", "agentgateway-route", "agwlab-bob") is not None
    after = json.loads(cli("progress", "--json").stdout)
    assert after["alice"] == {} and after["bob"] == data["bob"]
    out = cli("reset", "alice", "--to", "llm").stdout
    assert "stages llm: applied" in out
    assert kube.get(labs["alice"], "Gateway", "agentgateway-route", "agwlab-alice") is not None


def test_delete_revokes_access(sandbox):
    cli("create", "erin")
    kc = Path(cli("kubeconfig", "erin").stdout.splitlines()[-1])
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kc)))
    assert core.list_namespaced_config_map("agwlab-erin").items is not None
    assert cli("delete", "erin").stdout.strip() == "deleted 1 attendee(s): erin"
    assert not kc.exists()
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("agwlab-erin")
    assert err.value.status == 401


def test_an_attendee_finds_prometheus_where_they_may_look(attendees, monkeypatch):
    monkeypatch.setenv("AGWLAB_TARGET", "cluster")
    monkeypatch.delenv("AGWLAB_NAMESPACE", raising=False)
    monkeypatch.delenv("AGWLAB_PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(attendees["alice"]))
    alice = connect()
    # no Prometheus Service anywhere she may look: a clear error saying where she looked
    with pytest.raises(PrometheusUnavailable) as err:
        alice.prometheus_url()
    assert "only monitoring, agwlab-alice are searched" in str(err.value)
    assert "AGWLAB_PROMETHEUS_NAMESPACE" in str(err.value)
    # a Prometheus operator's Service in monitoring: the instructor's create lets her read it there
    admin = client.CoreV1Api(config.new_client_from_config(
        config_file=str(Path(os.environ["AGWLAB_HOME"]) / "sandbox" / "kubeconfig")))
    admin.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="monitoring")))
    try:
        admin.create_namespaced_service("monitoring", client.V1Service(
            metadata=client.V1ObjectMeta(name="prometheus-operated", labels={"operated-prometheus": "true"}),
            spec=client.V1ServiceSpec(cluster_ip="None", ports=[client.V1ServicePort(name="web", port=9090)],
                                      selector={"app.kubernetes.io/name": "prometheus"})))
        cli("create", "alice")
        url = alice.prometheus_url()
        assert url.endswith("/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy")
        can = subprocess.run(["kubectl", "auth", "can-i", "get", "services/prometheus-operated",
                              "--subresource=proxy", "-n", "monitoring"], check=False, capture_output=True,
                             text=True, env={**os.environ, "KUBECONFIG": str(attendees["alice"])}, timeout=60)
        assert can.stdout.strip() == "yes"
        with pytest.raises(ApiException) as denied:  # reading, not changing
            client.CoreV1Api(alice.api_client).delete_namespaced_service("prometheus-operated", "monitoring")
        assert denied.value.status == 403
    finally:
        admin.delete_namespace("monitoring")  # its Role and bindings go with it
