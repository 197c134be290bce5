"""Real kubectl (1.32, through the dispatcher and directly) against the API server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

SEED = Path(__file__).parent / "data" / "seed"


def run(server, *args: str, stdin: str | None = None, check: bool = True, binary: str = "kubectl",
        timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kubeconfig.parent)}
    proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, env=env, check=False,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def k(apiserver, kubectl_bin):
    def call(*args: str, **kw) -> subprocess.CompletedProcess:
        return run(apiserver, *args, **kw)

    return call


def test_version_selects_kubectl_132(k):
    out = json.loads(k("version", "-o", "json").stdout)
    assert out["serverVersion"]["minor"] == "32"
    assert out["serverVersion"]["gitVersion"].startswith("v1.32.")


def test_seed_manifests_apply_twice(k, apiserver):
    k("create", "namespace", "agentgateway-system")
    first = [k("apply", "-f", str(f)).stdout.strip() for f in sorted(SEED.glob("*.yaml"))]
    assert all(line.endswith("created") for out in first for line in out.splitlines()), first
    second = [k("apply", "-f", str(f)) for f in sorted(SEED.glob("*.yaml"))]
    for proc in second:
        assert proc.stderr == "", proc.stderr
        for line in proc.stdout.strip().splitlines():
            assert line.endswith(("unchanged", "configured")), line
    unchanged = "\n".join(p.stdout for p in second)
    assert "agentgatewaybackend.agentgateway.dev/anthropic unchanged" in unchanged
    assert "gateway.gateway.networking.k8s.io/agentgateway-route unchanged" in unchanged
    assert "deployment.apps/mcp-website-fetcher unchanged" in unchanged
    stored = apiserver.store.get("", "secrets", "agentgateway-system", "anthropic-secret")
    assert "stringData" not in stored and set(stored["data"]) == {"Authorization"}


def test_get_tables_names_and_output_formats(k):
    k("create", "namespace", "agentgateway-system")
    for f in sorted(SEED.glob("*.yaml")):
        k("apply", "-f", str(f))
    gtw = k("get", "gateways.gateway.networking.k8s.io", "-n", "agentgateway-system").stdout
    assert re.split(r"\s+", gtw.splitlines()[0].strip()) == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert "agentgateway-route" in gtw and "enterprise-agentgateway" in gtw
    agbe = k("get", "agbe", "-A").stdout.splitlines()
    assert re.split(r"\s+", agbe[0].strip()) == ["NAMESPACE", "NAME", "ACCEPTED", "AGE"]
    svc = k("get", "svc", "-o", "wide").stdout.splitlines()
    assert re.split(r"\s+", svc[0].strip()) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
                                                "SELECTOR"]
    assert "80/TCP" in svc[1] and "app=mcp-website-fetcher" in svc[1]
    deploy = k("get", "deploy").stdout.splitlines()
    assert re.split(r"\s+", deploy[0].strip()) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "0/1" in deploy[1]
    assert k("get", "secrets", "-n", "agentgateway-system").stdout.split()[:4] == ["NAME", "TYPE", "DATA", "AGE"]
    ip = k("get", "svc", "mcp-website-fetcher", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert re.fullmatch(r"10\.\d+\.\d+\.\d+", ip)
    as_json = json.loads(k("get", "agentgatewaybackend", "anthropic", "-n", "agentgateway-system",
                           "-o", "json").stdout)
    assert as_json["spec"]["ai"]["provider"]["anthropic"]["model"] == "claude-sonnet-4-5-20250929"
    assert "apiVersion: gateway.networking.k8s.io/v1" in k("get", "gtw", "agentgateway-route", "-n",
                                                           "agentgateway-system", "-o", "yaml").stdout
    labelled = k("get", "httproute", "-A", "-l", "app=agentgateway-route", "-o", "name").stdout.split()
    assert labelled == ["httproute.gateway.networking.k8s.io/claude"]
    assert k("get", "httproute", "-A", "-l", "app notin (agentgateway-route)", "-o", "name").stdout.split() == \
        ["httproute.gateway.networking.k8s.io/mcp-route"]
    cat = k("get", "agentgateway", "-A", "-o", "name").stdout.split()
    assert "agentgatewaybackend.agentgateway.dev/anthropic" in cat
    described = k("describe", "agbe", "anthropic", "-n", "agentgateway-system").stdout
    assert "Name:         anthropic" in described and "claude-sonnet-4-5-20250929" in described


def test_server_side_apply(k, apiserver):
    manifest = (SEED / "02-backend-anthropic.yaml").read_text().replace("agentgateway-system", "default")
    assert "serverside-applied" in k("apply", "--server-side", "-f", "-", stdin=manifest).stdout
    assert "serverside-applied" in k("apply", "--server-side", "-f", "-", stdin=manifest).stdout
    obj = apiserver.store.get("agentgateway.dev", "agentgatewaybackends", "default", "anthropic")
    assert [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    assert obj["metadata"]["generation"] == 1


def test_scale_wait_delete_and_events(k, apiserver):
    k("create", "deployment", "web", "--image=nginx:1.27")
    assert k("scale", "deploy/web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    assert apiserver.store.get("apps", "deployments", "default", "web")["spec"]["replicas"] == 3
    k("create", "configmap", "settings", "--from-literal=a=b")
    out = {}

    def wait_for(kind: str, *args: str) -> None:
        out[kind] = k("wait", *args, "--timeout=20s", check=False)

    waiter = threading.Thread(target=wait_for, args=("delete", "--for=delete", "configmap/settings"))
    waiter.start()
    time.sleep(0.3)  # let kubectl start watching; the wait must see the deletion either way
    k("delete", "configmap", "settings")
    waiter.join(timeout=30)
    assert out["delete"].returncode == 0, out["delete"].stderr
    # jsonpath and condition waits against a status written through the status subresource
    waiter = threading.Thread(target=wait_for, args=("cond", "--for=condition=Available", "deploy/web"))
    waiter.start()
    status = {"status": {"replicas": 3, "availableReplicas": 3, "readyReplicas": 3,
                         "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                         "message": "ok"}]}}
    k("patch", "deploy", "web", "--subresource=status", "--type=merge", "-p", json.dumps(status))
    waiter.join(timeout=30)
    assert out["cond"].returncode == 0, out["cond"].stderr
    assert k("wait", "--for=jsonpath={.status.readyReplicas}=3", "deploy/web", "--timeout=5s").returncode == 0
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
             "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default",
                                "uid": apiserver.store.get("apps", "deployments", "default", "web")["metadata"]["uid"]},
             "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-1 to 3", "type": "Normal",
             "source": {"component": "deployment-controller"}}
    k("create", "-f", "-", stdin=json.dumps(event))
    events = k("get", "events").stdout
    assert "ScalingReplicaSet" in events and "deployment/web" in events
    assert "Scaled up replica set web-1 to 3" in k("describe", "deploy", "web").stdout


def test_logs_tail_follow_and_deployment(k, apiserver):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-abc", "namespace": "default", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
    k("create", "deployment", "web", "--image=nginx:1.27")
    k("apply", "-f", "-", stdin=json.dumps(pod))
    assert k("logs", "web-abc").stdout == ""
    log = apiserver.paths.pod_log("default", "web-abc")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("a\nb\nc\n")
    assert k("logs", "web-abc", "--tail=2").stdout == "b\nc\n"
    assert k("logs", "deploy/web").stdout == "a\nb\nc\n"
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.kubeconfig.parent)}
    follow = subprocess.Popen(["kubectl", "logs", "-f", "web-abc"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert follow.stdout.readline() == "a\n"
        with log.open("a") as f:
            f.write("d\n")
        lines = [follow.stdout.readline() for _ in range(3)]
        assert lines == ["b\n", "c\n", "d\n"]
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    # kubectl going away must not leave the server streaming (the fixture checks shutdown)


def test_crds_auth_and_rollout_status(k):
    crds = k("get", "crds").stdout
    assert crds.split()[:3] == ["NAME", "CREATED", "AT"]
    for name in ("gateways.gateway.networking.k8s.io", "agentgatewaybackends.agentgateway.dev"):
        assert name in crds
    k("wait", "--for", "condition=established", "crd/agentgatewaybackends.agentgateway.dev", "--timeout=5s")
    assert k("auth", "can-i", "create", "gateways").stdout.strip() == "yes"
    k("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    out = {}
    waiter = threading.Thread(target=lambda: out.update(p=k("rollout", "status", "deploy/web", "--timeout=20s",
                                                              check=False)))
    waiter.start()
    status = {"status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                         "availableReplicas": 2}}
    k("patch", "deploy", "web", "--subresource=status", "--type=merge", "-p", json.dumps(status))
    waiter.join(timeout=30)
    assert out["p"].returncode == 0, out["p"].stderr
    assert 'deployment "web" successfully rolled out' in out["p"].stdout


DEPLOY_V1 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, keep: "yes"}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27", ports: [{containerPort: 80}, {containerPort: 443}],
         env: [{name: A, value: "1"}, {name: B, value: "2"}]}
      - {name: side, image: "busybox:1"}
"""
DEPLOY_V2 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.28", ports: [{containerPort: 80}], env: [{name: B, value: "3"}, {name: C, value: "4"}]}
"""


def test_client_side_apply_strategic_merge(k, apiserver):
    k("apply", "-f", "-", stdin=DEPLOY_V1)
    k("scale", "deploy/web", "--replicas=5")
    assert k("apply", "-f", "-", stdin=DEPLOY_V2).stdout.strip() == "deployment.apps/web configured"
    dep = apiserver.store.get("apps", "deployments", "default", "web")
    assert dep["metadata"]["labels"] == {"app": "web"} and dep["spec"]["replicas"] == 2
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.28"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"] == [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert dep["metadata"]["generation"] == 3  # create, scale, apply


SERVICE_DNS = """
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  selector: {app: dns}
  ports:
  - {name: dns-tcp, port: 53, targetPort: 5353}
  - {name: dns, port: 53, protocol: UDP}
"""


def _rv(apiserver, group: str, plural: str, name: str) -> str:
    return apiserver.store.get(group, plural, "default", name)["metadata"]["resourceVersion"]


def test_kubectl_noop_writes_keep_resource_version(k, apiserver):
    k("apply", "-f", "-", stdin=DEPLOY_V1)
    k("apply", "--server-side", "-f", "-", stdin=SERVICE_DNS)
    k("label", "deploy/web", "team=a")
    dep_rv, svc_rv = _rv(apiserver, "apps", "deployments", "web"), _rv(apiserver, "", "services", "dns")
    gen = apiserver.store.get("apps", "deployments", "default", "web")["metadata"]["generation"]
    assert "serverside-applied" in k("apply", "--server-side", "-f", "-", stdin=SERVICE_DNS).stdout
    assert "unchanged" in k("apply", "-f", "-", stdin=DEPLOY_V1).stdout
    assert "(no change)" in k("patch", "deploy/web", "-p", '{"spec":{"replicas":2}}').stdout
    assert "(no change)" in k("patch", "deploy/web", "--type=json",
                              "-p", '[{"op":"replace","path":"/spec/replicas","value":2}]').stdout
    k("label", "--overwrite", "deploy/web", "team=a")
    k("annotate", "--overwrite", "svc/dns", "--list")  # a read; then an annotation set twice
    k("annotate", "svc/dns", "note=x")
    svc_rv = _rv(apiserver, "", "services", "dns")
    k("annotate", "--overwrite", "svc/dns", "note=x")
    k("scale", "deploy/web", "--replicas=2")
    assert _rv(apiserver, "apps", "deployments", "web") == dep_rv
    assert _rv(apiserver, "", "services", "dns") == svc_rv
    assert apiserver.store.get("apps", "deployments", "default", "web")["metadata"]["generation"] == gen
    ports = apiserver.store.get("", "services", "default", "dns")["spec"]["ports"]
    assert [(p["name"], p["protocol"]) for p in ports] == [("dns-tcp", "TCP"), ("dns", "UDP")]


def test_kubectl_reports_immutable_fields(k, apiserver):
    k("apply", "-f", "-", stdin=DEPLOY_V1)
    moved = DEPLOY_V1.replace("{matchLabels: {app: web}}", "{matchLabels: {app: web, v: '2'}}") \
        .replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, v: '2'}}")
    proc = k("apply", "-f", "-", stdin=moved, check=False)
    assert proc.returncode != 0
    assert ('The Deployment "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
            'map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
            'field is immutable') in proc.stderr
    k("create", "configmap", "frozen", "--from-literal=a=1")
    k("patch", "configmap/frozen", "-p", '{"immutable":true}')
    proc = k("patch", "configmap/frozen", "-p", '{"data":{"a":"2"}}', check=False)
    assert proc.returncode != 0
    assert 'The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set' \
        in proc.stderr


def test_kubectl_120_get_apply_delete_logs(apiserver, kubectl_120):
    def k120(*args: str, **kw) -> subprocess.CompletedProcess:
        return run(apiserver, *args, binary=kubectl_120, **kw)

    assert "v1.20" in k120("version", "--client", "--short").stdout
    assert "kube-system" in k120("get", "ns").stdout
    manifest = (SEED / "02-backend-anthropic.yaml").read_text().replace("agentgateway-system", "default")
    assert "created" in k120("apply", "-f", "-", stdin=manifest).stdout
    assert "unchanged" in k120("apply", "-f", "-", stdin=manifest).stdout
    assert "configured" in k120("apply", "-f", "-", stdin=DEPLOY_V1).stdout.replace("created", "configured")
    assert "unchanged" in k120("apply", "-f", "-", stdin=DEPLOY_V1).stdout
    assert "configured" in k120("apply", "-f", "-", stdin=DEPLOY_V2).stdout
    dep = apiserver.store.get("apps", "deployments", "default", "web")
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["web"]
    rows = k120("get", "deploy", "web").stdout.splitlines()
    assert rows[0].split()[:2] == ["NAME", "READY"] and rows[1].split()[0] == "web"
    assert "anthropic" in k120("get", "agentgatewaybackends").stdout
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    k120("apply", "-f", "-", stdin=json.dumps(pod))
    log = apiserver.paths.pod_log("default", "p")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("one\ntwo\n")
    assert k120("logs", "p", "--tail=1").stdout == "two\n"
    proc = k120("apply", "-f", "-", stdin=DEPLOY_V2.replace("{matchLabels: {app: web}}", "{matchLabels: {x: y}}"),
                check=False)
    assert proc.returncode != 0 and "field is immutable" in proc.stderr
    assert 'deployment.apps "web" deleted' in k120("delete", "deploy", "web").stdout
    k120("delete", "-f", "-", stdin=manifest)
    assert apiserver.store.get("apps", "deployments", "default", "web") is None
    assert apiserver.store.get("agentgateway.dev", "agentgatewaybackends", "default", "anthropic") is None
