"""The kind profile: what a learner's laptop sees of a kind cluster with the README's installs."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
import yaml

from labtest import DATA, KEY, NS, poll


@pytest.fixture(scope="module")
def kind_kubectl(kind_sandbox, kubectl_bin: str):  # type: ignore[no-untyped-def]
    from conftest import Kubectl

    return Kubectl(kubectl_bin, kind_sandbox.kubeconfig)


def test_no_prometheus_url_but_an_operator_service(kind_sandbox, kind_kubectl) -> None:  # type: ignore[no-untyped-def]
    assert kind_sandbox.prometheus_url is None
    svcs = yaml.safe_load(kind_kubectl("get", "svc", "-A", "-l", "operated-prometheus=true", "-o", "yaml"))["items"]
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in svcs] == [("monitoring", "prometheus-operated")]
    # reached through the API server's service proxy, with the learner's credentials
    out = kind_kubectl("get", "--raw", "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/-/ready")
    assert "Ready" in out


def test_gateway_gets_no_address_and_port_forward_reaches_it(kind_sandbox, kind_kubectl) -> None:  # type: ignore[no-untyped-def]
    manifest = (DATA / "seed_llm.yaml").read_text(encoding="utf-8").replace("${ANTHROPIC_API_KEY}", KEY)
    manifest = manifest.replace("gatewayClassName: enterprise-agentgateway", "gatewayClassName: agentgateway")
    kind_kubectl("apply", "-f", "-", input=manifest)
    kind_kubectl("wait", "--for=condition=Programmed", "gateway/agentgateway-route", "-n", NS, "--timeout=60s")
    gw = yaml.safe_load(kind_kubectl("get", "gateway", "agentgateway-route", "-n", NS, "-o", "yaml"))
    assert not (gw.get("status") or {}).get("addresses")
    svc = yaml.safe_load(kind_kubectl("get", "svc", "agentgateway-route", "-n", NS, "-o", "yaml"))
    assert svc["spec"]["type"] == "LoadBalancer" and not (svc.get("status") or {}).get("loadBalancer", {}).get("ingress")
    kind_kubectl("rollout", "status", "deploy/agentgateway-route", "-n", NS, "--timeout=60s")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    env = {**os.environ, "KUBECONFIG": str(kind_sandbox.kubeconfig)}
    proc = subprocess.Popen([kind_kubectl.binary, "port-forward", "-n", NS, "deploy/agentgateway-route",
                             f"{local}:8080"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r = poll(lambda: httpx.post(f"http://127.0.0.1:{local}/anthropic",
                                    json={"messages": [{"role": "user", "content": "hi"}]}, timeout=10),
                 what="the gateway through kubectl port-forward", timeout=30)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def _restart_collector(kind_kubectl) -> None:  # type: ignore[no-untyped-def]
    # kubectl refuses a second restart within the same second (its annotation is a timestamp in
    # seconds), so a quick second restart is retried until the clock has moved on
    poll(lambda: kind_kubectl.run("rollout", "restart", "deploy/opentelemetry-collector-traces", "-n", "telemetry",
                                  check=False).returncode == 0, what="kubectl rollout restart of the collector")


def test_collector_verbosity_comes_from_its_configmap(kind_sandbox, kind_kubectl) -> None:  # type: ignore[no-untyped-def]
    relay = yaml.safe_load(kind_kubectl("get", "cm", "opentelemetry-collector-traces", "-n", "telemetry",
                                        "-o", "jsonpath={.data.relay}"))
    assert relay["exporters"]["debug"]["verbosity"] == "detailed"
    assert "debug" in relay["service"]["pipelines"]["traces"]["exporters"]
    # the chart's default (`debug: {}`, i.e. basic) after a restart: only one summary line per batch
    relay["exporters"]["debug"] = {}
    patch = {"data": {"relay": yaml.safe_dump(relay)}}
    import json

    kind_kubectl("patch", "cm", "opentelemetry-collector-traces", "-n", "telemetry", "--type", "merge",
                 "-p", json.dumps(patch))
    _restart_collector(kind_kubectl)
    kind_kubectl("rollout", "status", "deploy/opentelemetry-collector-traces", "-n", "telemetry", "--timeout=60s")
    pod = poll(lambda: [p for p in yaml.safe_load(kind_kubectl(
        "get", "pods", "-n", "telemetry", "-l", "app.kubernetes.io/name=opentelemetry-collector-traces",
        "-o", "yaml"))["items"] if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")],
        what="the restarted collector")[0]
    ip = pod["status"]["podIP"]
    span = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c",
                                                          "spanId": "b7ad6b7169203331", "name": "probe",
                                                          "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
    r = httpx.post(f"http://{ip}:4318/v1/traces", json=span, timeout=10)
    assert r.status_code == 200
    log = poll(lambda: (out := kind_kubectl("logs", "-n", "telemetry", pod["metadata"]["name"])) and
               "\tTraces\t" in out and out, what="the collector's summary line")
    assert "Trace ID" not in log and "0af7651916cd43dd8448eb211c80319c" not in log
    relay["exporters"]["debug"] = {"verbosity": "detailed"}
    kind_kubectl("patch", "cm", "opentelemetry-collector-traces", "-n", "telemetry", "--type", "merge",
                 "-p", json.dumps({"data": {"relay": yaml.safe_dump(relay)}}))
    _restart_collector(kind_kubectl)
    kind_kubectl("rollout", "status", "deploy/opentelemetry-collector-traces", "-n", "telemetry", "--timeout=60s")


def test_profile_cannot_change_under_a_running_sandbox(kind_sandbox) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "AGWLAB_HOME": str(kind_sandbox.home)}
    proc = subprocess.run([sys.executable, "-m", "agwlab", "sandbox", "up", "--profile", "default"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "runs with profile kind" in proc.stderr and "sandbox down" in proc.stderr


def test_the_notes_server_runs_from_the_stock_python_image(kind_kubectl) -> None:  # type: ignore[no-untyped-def]
    """Notebook 09's notes server needs no lab-only image: python:3.12-slim plus a ConfigMap."""
    from agwlab import mcpsec
    from agwlab.manifests import to_yaml
    from agwlab.names import Names

    ns = "notes-on-kind"
    kind_kubectl("create", "namespace", ns)
    try:
        kind_kubectl("apply", "-f", "-", input="---\n".join(
            to_yaml(m.obj) for m in mcpsec.notes_server(Names(mcp_namespace=ns))))
        kind_kubectl("rollout", "status", "deploy/mcp-notes", "-n", ns, "--timeout=60s")
        pods = yaml.safe_load(kind_kubectl("get", "pods", "-n", ns, "-l", "app=mcp-notes", "-o", "yaml"))["items"]
        assert [p["spec"]["containers"][0]["image"] for p in pods] == ["python:3.12-slim"]
        assert "Uvicorn running on http://0.0.0.0:8000" in kind_kubectl("logs", "-n", ns, "deploy/mcp-notes")
    finally:
        kind_kubectl("delete", "namespace", ns, "--wait=false")
