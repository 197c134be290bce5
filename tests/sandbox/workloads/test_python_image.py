"""The stock ``python`` image in the sandbox: notebook 09's notes server Deployment (a ConfigMap with
the server's source, a container that pip-installs the pinned mcp SDK and runs it) run with kubectl
and the kubernetes client, ready as its readinessProbe says, and spoken to with the mcp SDK."""

from __future__ import annotations

import ast
import asyncio
import json
import secrets
from pathlib import Path

import pytest
import yaml

from agwlab import mcpsec
from agwlab.manifests import to_yaml
from agwlab.names import NOTES_MCP_REQUIREMENT, Names
from agwlab.sandbox.runtime import WorkloadFailed
from agwlab.sandbox.workloads.python_image import parse_command
from labtest import poll


def _notes_yaml(namespace: str) -> str:
    return "---\n".join(to_yaml(m.obj) for m in mcpsec.notes_server(Names(mcp_namespace=namespace)))


@pytest.fixture
def namespace(kubectl):  # type: ignore[no-untyped-def]
    ns = f"pyimg-{secrets.token_hex(3)}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false")


def test_the_notes_server_source_needs_only_the_stdlib_and_the_mcp_sdk() -> None:
    """What the stock image has after ``pip install mcp==…``: the standard library, mcp and what it brings."""
    tree = ast.parse(mcpsec.notes_source())
    imported = {(n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else n.names[:1])}
    assert all(not (isinstance(n, ast.ImportFrom) and n.level) for n in ast.walk(tree)), "no relative imports"
    assert imported <= {"__future__", "argparse", "mcp", "starlette", "uvicorn"}
    here = Path(__file__).parents[3] / "agwlab/sandbox/workloads/notes_server.py"
    assert mcpsec.notes_source() == here.read_text(encoding="utf-8")


def test_the_pinned_sdk_is_the_one_the_sandbox_runs() -> None:
    import importlib.metadata

    name, _, version = NOTES_MCP_REQUIREMENT.partition("==")
    assert importlib.metadata.version(name) == version


def test_commands_the_sandbox_cannot_run_faithfully_say_what_it_runs() -> None:
    assert parse_command(["python", "/app/s.py", "--port", "1"]) == ([], ["/app/s.py", "--port", "1"])
    for argv, says in ((["sh", "-c", "apt-get install x && python /app/s.py"], "cannot run 'apt-get install x'"),
                       (["sh", "-c", "pip install mcp && exec python /app/s.py"], "exact pins"),
                       (["sh", "-c", "pip install mcp==2.3.0"], "no `python SCRIPT`"),
                       (["python", "-m", "http.server"], "no `python SCRIPT`")):
        with pytest.raises(WorkloadFailed, match=says):
            parse_command(argv)


def test_the_notes_deployment_becomes_available_and_serves_mcp(kubectl, api_client, namespace) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    kubectl("apply", "-f", "-", input=_notes_yaml(namespace))
    kubectl("rollout", "status", "deploy/mcp-notes", "-n", namespace, "--timeout=60s")
    pod = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="app=mcp-notes").items[0]
    assert pod.spec.containers[0].image == "python:3.12-slim"
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    log = kubectl("logs", "-n", namespace, "deploy/mcp-notes")
    assert f"Requirement already satisfied: {NOTES_MCP_REQUIREMENT}" in log

    async def tools() -> list[str]:
        async with streamable_http_client(f"http://{pod.status.pod_ip}:8000/mcp") as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return sorted(t.name for t in (await session.list_tools()).tools)

    assert asyncio.run(tools()) == ["add_note", "delete_note", "list_notes"]


def test_a_pin_the_sandbox_does_not_have_crashes_the_container_and_says_why(kubectl, namespace) -> None:  # type: ignore[no-untyped-def]
    docs = list(yaml.safe_load_all(_notes_yaml(namespace)))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["command"][2] = container["command"][2].replace(NOTES_MCP_REQUIREMENT, "mcp==0.0.1")
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    out = poll(lambda: (lambda s: s if "CrashLoopBackOff" in s else None)(
        kubectl("describe", "pods", "-n", namespace, "-l", "app=mcp-notes")), what="the CrashLoopBackOff")
    assert "mcp==0.0.1" in out and "not 0.0.1" in out


def _pod(api_client, namespace: str, app: str):  # type: ignore[no-untyped-def]
    from kubernetes import client

    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return pods[0] if pods else None


def test_a_probe_that_never_passes_leaves_the_pod_running_unready_and_never_restarts_it(  # type: ignore[no-untyped-def]
        kubectl, api_client, namespace) -> None:
    """A probe on a port nothing listens on: the container runs and is started, the Pod is Running and
    not Ready (ContainersNotReady), the Deployment unavailable, Events say why, and nothing restarts."""
    docs = list(yaml.safe_load_all(_notes_yaml(namespace)))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["tcpSocket"]["port"] = 8001
    probe["periodSeconds"] = 1
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    poll(lambda: "Uvicorn running" in kubectl.run("logs", "-n", namespace, "-l", "app=mcp-notes", check=False).stdout,
         what="the server listening on 8000")
    pod = poll(lambda: (lambda p: p if p and p.status.phase == "Running" else None)(_pod(api_client, namespace,
                                                                                           "mcp-notes")),
               what="the Pod Running")
    describe = poll(lambda: (lambda s: s if "(x2 over" in s else None)(
        kubectl("describe", "pod", pod.metadata.name, "-n", namespace)), what="failed probes counted in one Event")
    assert f"Readiness probe failed: dial tcp {pod.status.pod_ip}:8001: connect: connection refused" in describe
    pod = _pod(api_client, namespace, "mcp-notes")
    status = pod.status.container_statuses[0]
    assert status.state.running is not None and status.started is True
    assert status.ready is False and status.restart_count == 0
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    table = kubectl("get", "pods", "-n", namespace, "-l", "app=mcp-notes")
    assert "0/1" in table and "Running" in table
    assert "0/1" in kubectl("get", "deploy", "mcp-notes", "-n", namespace)
    endpoints = poll(lambda: (lambda e: e if e.get("subsets") else None)(json.loads(
        kubectl("get", "endpoints", "mcp-notes", "-n", namespace, "-o", "json"))), what="the Service's Endpoints")
    assert [a["ip"] for a in endpoints["subsets"][0]["notReadyAddresses"]] == [pod.status.pod_ip]
    assert "addresses" not in endpoints["subsets"][0]
    rollout = kubectl.run("rollout", "status", "deploy/mcp-notes", "-n", namespace, "--timeout=2s", check=False)
    assert rollout.returncode != 0 and "1 updated replicas" in rollout.stdout + rollout.stderr


_FLAKY_SERVER = """
import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self):
        if self.path == "/sick":
            Handler.healthy = False
        code = 200 if Handler.healthy or self.path != "/healthz" else 503
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"sick")


print("serving", flush=True)
http.server.HTTPServer(("", 8080), Handler).serve_forever()
"""


def test_readiness_is_probed_for_as_long_as_the_container_runs(kubectl, api_client, namespace) -> None:  # type: ignore[no-untyped-def]
    """An httpGet probe that starts failing after the Pod was Ready: Ready flips to False after
    failureThreshold failures, the Service stops sending to the Pod, and the container keeps running."""
    import httpx

    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flaky", "namespace": namespace},
         "data": {"server.py": _FLAKY_SERVER}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "flaky", "namespace": namespace},
         "spec": {"selector": {"matchLabels": {"app": "flaky"}}, "template": {
             "metadata": {"labels": {"app": "flaky"}},
             "spec": {"containers": [{
                 "name": "web", "image": "python:3.12-slim", "command": ["python", "/app/server.py"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                                    "failureThreshold": 2},
                 "volumeMounts": [{"name": "app", "mountPath": "/app"}]}],
                 "volumes": [{"name": "app", "configMap": {"name": "flaky"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "flaky", "namespace": namespace},
         "spec": {"selector": {"app": "flaky"}, "ports": [{"port": 80, "targetPort": "http"}]}},
    ]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    kubectl("rollout", "status", "deploy/flaky", "-n", namespace, "--timeout=60s")
    pod = _pod(api_client, namespace, "flaky")
    ready_ips = lambda: kubectl("get", "endpoints", "flaky", "-n", namespace,
                                "-o", "jsonpath={.subsets[*].addresses[*].ip}")
    poll(lambda: ready_ips() == pod.status.pod_ip, what="the ready Pod in the Service's Endpoints")
    via_service = f"/api/v1/namespaces/{namespace}/services/flaky:80/proxy/"
    assert kubectl("get", "--raw", via_service) == "ok"
    assert httpx.get(f"http://{pod.status.pod_ip}:8080/sick").status_code == 200
    poll(lambda: kubectl("get", "pod", pod.metadata.name, "-n", namespace,
                         "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}") == "False",
         what="Ready turning False")
    poll(lambda: "no endpoints available" in kubectl.run("get", "--raw", via_service, check=False).stderr,
         what="the Service without endpoints")
    assert ready_ips() == ""
    describe = kubectl("describe", "pod", pod.metadata.name, "-n", namespace)
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in describe
    after = _pod(api_client, namespace, "flaky").status.container_statuses[0]
    assert after.state.running is not None and after.restart_count == 0 and after.ready is False
    assert "1/1" not in kubectl("get", "deploy", "flaky", "-n", namespace)
