"""Lists merge by key and refuse duplicate keys, as a real API server does (real kubectl).

The case that matters to a learner: the lab applies the website fetcher's Service
(server-side, field manager ``agwlab``) and the tutorial's kubectl steps apply their own
(client-side). Both name port 80, so the result must be one port 80, whichever came first.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from agwlab import manifests


def run(server, *args: str, stdin: str | None = None, check: bool = True,
        binary: str = "kubectl") -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kubeconfig.parent)}
    proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, env=env, check=False,
                          timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc

TUTORIAL_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: mcp-website-fetcher
  namespace: default
spec:
  selector:
    app: mcp-website-fetcher
  ports:
  - port: 80
    targetPort: 8000
    appProtocol: kgateway.dev/mcp
"""

TWO_PORT_80 = """
apiVersion: v1
kind: Service
metadata: {name: twice, namespace: default}
spec:
  selector: {app: x}
  ports:
  - {port: 80, targetPort: 8000}
  - {port: 80, targetPort: 80}
"""

DUPLICATE_KEY = ('core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
                 'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


def _lab_service() -> str:
    (svc,) = [m for m in manifests.mcp_fetcher() if m.kind == "Service"]
    return svc.yaml()


@pytest.fixture
def k(apiserver, kubectl_bin):
    def call(*args: str, **kw):
        return run(apiserver, *args, **kw)

    return call


def _ports(apiserver, name: str = "mcp-website-fetcher") -> list[dict]:
    return apiserver.store.get("", "services", "default", name)["spec"]["ports"]


def _lab_apply(k) -> None:
    k("apply", "--server-side", "--field-manager=agwlab", "--force-conflicts", "-f", "-", stdin=_lab_service())


@pytest.mark.parametrize("order", ["lab first", "tutorial first"])
def test_lab_and_tutorial_service_share_one_port_80(k, apiserver, order):
    steps = [_lab_apply, lambda k: k("apply", "-f", "-", stdin=TUTORIAL_SERVICE)]
    if order == "tutorial first":
        steps.reverse()
    for step in steps + steps:  # and again, as a learner re-running cells and kubectl lines does
        step(k)
        (port,) = _ports(apiserver)
        assert (port["port"], port["protocol"], port["targetPort"]) == (80, "TCP", 8000)
    assert _ports(apiserver)[0]["appProtocol"] == "kgateway.dev/mcp"


def test_kubectl_120_client_side_apply_merges_by_port(apiserver, kubectl_120):
    run(apiserver, "apply", "--server-side", "--field-manager=agwlab", "-f", "-", stdin=_lab_service())
    for _ in range(2):
        run(apiserver, "apply", "-f", "-", stdin=TUTORIAL_SERVICE, binary=kubectl_120)
        (port,) = _ports(apiserver)
        assert (port["port"], port["targetPort"], port["appProtocol"]) == (80, 8000, "kgateway.dev/mcp")


def test_strategic_patch_changes_the_port_it_names(k, apiserver):
    k("apply", "-f", "-", stdin=TUTORIAL_SERVICE)
    k("patch", "svc/mcp-website-fetcher", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9000}]}}')
    (port,) = _ports(apiserver)
    assert port["targetPort"] == 9000
    k("patch", "svc/mcp-website-fetcher", "-p",
      '{"spec":{"ports":[{"port":80,"name":"http"},{"port":81,"name":"admin"}]}}')
    assert [(p["port"], p.get("name"), p["targetPort"]) for p in _ports(apiserver)] == \
        [(80, "http", 9000), (81, "admin", 81)]


def test_create_with_port_80_twice_is_refused(k, apiserver):
    proc = k("create", "-f", "-", stdin=TWO_PORT_80, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        'The Service "twice" is invalid: ', "* spec.ports[0].name: Required value",
        "* spec.ports[1].name: Required value", f"* spec.ports[1]: Duplicate value: {DUPLICATE_KEY}"]
    assert apiserver.store.get("", "services", "default", "twice") is None


def test_a_second_port_80_by_json_patch_is_refused_and_loses_nothing(k, apiserver):
    k("apply", "-f", "-", stdin=TUTORIAL_SERVICE)
    before = _ports(apiserver)
    add = json.dumps([{"op": "add", "path": "/spec/ports/-", "value": {"name": "again", "port": 80}}])
    proc = k("patch", "svc/mcp-website-fetcher", "--type=json", "-p", add, check=False)
    assert proc.returncode != 0
    assert "spec.ports[0].name: Required value" in proc.stderr
    assert f"spec.ports[1]: Duplicate value: {DUPLICATE_KEY}" in proc.stderr
    assert _ports(apiserver) == before


def test_port_names_must_differ(k, apiserver):
    proc = k("create", "-f", "-", check=False, stdin=TWO_PORT_80.replace(
        "{port: 80, targetPort: 8000}", "{name: web, port: 80}").replace(
        "{port: 80, targetPort: 80}", "{name: web, port: 81}"))
    assert proc.returncode != 0
    assert proc.stderr.strip() == 'The Service "twice" is invalid: spec.ports[1].name: Duplicate value: "web"'


def test_a_port_80_per_protocol_is_fine(k, apiserver):
    k("create", "-f", "-", stdin=TWO_PORT_80.replace("{port: 80, targetPort: 8000}", "{name: tcp, port: 80}")
      .replace("{port: 80, targetPort: 80}", "{name: udp, port: 80, protocol: UDP}"))
    assert [(p["port"], p["protocol"]) for p in _ports(apiserver, "twice")] == [(80, "TCP"), (80, "UDP")]


def test_server_side_apply_of_duplicate_keys_fails_before_merging(k, apiserver):
    proc = k("apply", "--server-side", "-f", "-", stdin=TWO_PORT_80, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        'Error from server: failed to create typed patch object (default/twice; /v1, Kind=Service): '
        '.spec.ports: duplicate entries for key [port=80,protocol="TCP"]')
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                  "metadata": {"labels": {"a": "b"}},
                  "spec": {"containers": [{"name": "c", "image": "x", "env": [
                      {"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}]}}}}
    proc = k("apply", "--server-side", "-f", "-", stdin=json.dumps(deploy), check=False)
    assert proc.returncode != 0
    assert ('.spec.template.spec.containers[name="c"].env: duplicate entries for key [name="A"]'
            in proc.stderr), proc.stderr


def test_two_containers_with_one_name_are_refused(k, apiserver):
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                  "metadata": {"labels": {"a": "b"}},
                  "spec": {"containers": [{"name": "c", "image": "x"}, {"name": "c", "image": "y"}]}}}}
    proc = k("create", "-f", "-", stdin=json.dumps(deploy), check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == \
        'The Deployment "d" is invalid: spec.template.spec.containers[1].name: Duplicate value: "c"'


def test_gateway_listeners_merge_by_name(k, apiserver):
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "g", "namespace": "default"},
          "spec": {"gatewayClassName": "agentgateway",
                   "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}}
    k("apply", "-f", "-", stdin=json.dumps(gw))
    gw["spec"]["listeners"][0]["port"] = 9090
    k("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(gw))
    listeners = apiserver.store.get("gateway.networking.k8s.io", "gateways", "default", "g")["spec"]["listeners"]
    assert [(item["name"], item["port"]) for item in listeners] == [("http", 9090)]
    proc = k("patch", "gateway/g", "--type=json", "-p", json.dumps(
        [{"op": "add", "path": "/spec/listeners/-", "value": {"name": "http", "port": 80, "protocol": "HTTP"}}]),
        check=False)
    assert proc.returncode != 0 and "spec.listeners[1]: Duplicate value" in proc.stderr, proc.stderr

