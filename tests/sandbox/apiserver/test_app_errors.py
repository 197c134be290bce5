"""Bad input gets the Kubernetes-style error and leaves the store exactly as it was."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from agwlab.sandbox.kinds import all_kinds

DATA = Path(__file__).parent / "data"
BACKEND = {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
           "metadata": {"name": "b", "namespace": "default"},
           "spec": {"ai": {"provider": {"anthropic": {"model": "claude-sonnet-4-5-20250929"}}}}}
BACKENDS = "/apis/agentgateway.dev/v1alpha1/namespaces/default/agentgatewaybackends"


def snapshot(store) -> tuple[int, str]:
    objs = [store.list(k.group, k.plural) for k in all_kinds()]
    return store.resource_version, json.dumps(objs, sort_keys=True)


@pytest.fixture
def http(apiserver):
    with httpx.Client(base_url=apiserver.url, verify=ssl.create_default_context(cafile=str(apiserver.ca_cert)),
                      headers={"Authorization": f"Bearer {apiserver.token}"}) as c:
        yield c


def kubectl(server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kubeconfig.parent)}
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=60)


def status_of(resp: httpx.Response, code: int, reason: str) -> dict:
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == code and body["reason"] == reason, body
    return body


def test_token_required(apiserver, http):
    before = snapshot(apiserver.store)
    with httpx.Client(base_url=apiserver.url, verify=ssl.create_default_context(cafile=str(apiserver.ca_cert))) as anon:
        status_of(anon.get("/api/v1/namespaces"), 401, "Unauthorized")
        status_of(anon.post("/api/v1/namespaces", json={"metadata": {"name": "x"}}), 401, "Unauthorized")
        wrong = anon.get("/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
        status_of(wrong, 401, "Unauthorized")
        assert anon.get("/livez").status_code == 200 and anon.get("/readyz").status_code == 200
        assert anon.get("/healthz").text == "ok"
    assert snapshot(apiserver.store) == before


def test_unknown_field_is_refused_strictly(apiserver, http, kubectl_bin):
    before = snapshot(apiserver.store)
    proc = kubectl(apiserver, "apply", "-f", str(DATA / "bad" / "backend-with-type-mcp.yaml"))
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "spec.type"' in proc.stderr
    assert "Error from server (BadRequest)" in proc.stderr
    bad = {**BACKEND, "spec": {**BACKEND["spec"], "type": "MCP"}}
    body = status_of(http.post(BACKENDS, json=bad, params={"fieldValidation": "Strict"}), 400, "BadRequest")
    assert body["message"] == ('AgentgatewayBackend in version "v1alpha1" cannot be handled as a '
                               'AgentgatewayBackend: strict decoding error: unknown field "spec.type"')
    assert snapshot(apiserver.store) == before
    # Warn: stored without the field, with a warning; Ignore: silently pruned
    warned = http.post(BACKENDS, json=bad, params={"fieldValidation": "Warn"})
    assert warned.status_code == 201 and 'unknown field \\"spec.type\\"' in warned.headers["warning"]
    assert "type" not in apiserver.store.get("agentgateway.dev", "agentgatewaybackends", "default", "b")["spec"]


def test_schema_and_cel_violations(apiserver, http):
    before = snapshot(apiserver.store)
    two = {**BACKEND, "spec": {**BACKEND["spec"], "static": {"host": "x", "port": 80}}}
    body = status_of(http.post(BACKENDS, json=two), 422, "Invalid")
    assert body["message"] == ('AgentgatewayBackend.agentgateway.dev "b" is invalid: spec: Invalid value: "object": '
                               "exactly one of the fields in [ai static dynamicForwardProxy mcp aws a2a] must be set")
    missing = {**BACKEND, "spec": {"mcp": {}}}
    body = status_of(http.post(BACKENDS, json=missing), 422, "Invalid")
    assert "spec.mcp.targets: Required value" in body["message"]
    assert body["details"]["causes"][0]["field"] == "spec.mcp.targets"
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "g", "namespace": "default"},
          "spec": {"gatewayClassName": "x", "listeners": [{"name": "http", "port": "eighty", "protocol": "HTTP"}]}}
    body = status_of(http.post("/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways", json=gw),
                     422, "Invalid")
    assert 'spec.listeners[0].port: Invalid value: "eighty"' in body["message"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
                                                                          "spec": {"containers": [{"image": "x"}]}}}}
    body = status_of(http.post("/apis/apps/v1/namespaces/default/deployments", json=dep), 422, "Invalid")
    assert "spec.template.spec.containers[0].name: Required value" in body["message"]
    assert snapshot(apiserver.store) == before


def test_bad_names_namespaces_kinds_and_bodies(apiserver, http):
    before = snapshot(apiserver.store)
    body = status_of(http.post(BACKENDS, json={**BACKEND, "metadata": {"name": "Bad_Name"}}), 422, "Invalid")
    assert 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' in body["message"]
    body = status_of(http.post("/api/v1/namespaces", json={"metadata": {"name": "a.b"}}), 422, "Invalid")
    assert "RFC 1123 label" in body["message"]
    other_ns = BACKENDS.replace("/default/", "/nowhere/")
    body = status_of(http.post(other_ns, json={**BACKEND, "metadata": {"name": "b", "namespace": "nowhere"}}),
                     404, "NotFound")
    assert body["message"] == 'namespaces "nowhere" not found'
    body = status_of(http.get(BACKENDS + "/missing"), 404, "NotFound")
    assert body["message"] == 'agentgatewaybackends.agentgateway.dev "missing" not found'
    status_of(http.get("/apis/agentgateway.dev/v1alpha1/namespaces/default/widgets"), 404, "NotFound")
    status_of(http.get("/apis/agentgateway.dev/v1/namespaces/default/agentgatewaybackends"), 404, "NotFound")
    wrong_version = {**BACKEND, "apiVersion": "agentgateway.dev/v1"}
    body = status_of(http.post(BACKENDS, json=wrong_version), 400, "BadRequest")
    assert "does not match the expected API version" in body["message"]
    raw = http.post(BACKENDS, content=b'{"apiVersion": ', headers={"Content-Type": "application/json"})
    assert "json parse error" in status_of(raw, 400, "BadRequest")["message"]
    patch = http.patch(BACKENDS + "/b", content=b"{}",
                       headers={"Content-Type": "application/strategic-merge-patch+json"})
    status_of(patch, 415, "UnsupportedMediaType")
    assert snapshot(apiserver.store) == before


def test_conflicts_and_already_exists(apiserver, http):
    created = http.post(BACKENDS, json=BACKEND)
    assert created.status_code == 201
    before = snapshot(apiserver.store)
    body = status_of(http.post(BACKENDS, json=BACKEND), 409, "AlreadyExists")
    assert body["message"] == 'agentgatewaybackends.agentgateway.dev "b" already exists'
    stale = created.json()
    stale["metadata"]["resourceVersion"] = str(int(stale["metadata"]["resourceVersion"]) - 1)
    stale["metadata"]["labels"] = {"x": "y"}
    body = status_of(http.put(BACKENDS + "/b", json=stale), 409, "Conflict")
    assert body["message"].endswith("the object has been modified; please apply your changes to the latest "
                                    "version and try again")
    assert snapshot(apiserver.store) == before


def test_kubectl_reports_bad_yaml_and_unknown_kinds(apiserver, kubectl_bin):
    before = snapshot(apiserver.store)
    proc = kubectl(apiserver, "apply", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n")
    assert proc.returncode != 0 and "error" in proc.stderr.lower()
    proc = kubectl(apiserver, "apply", "-f", "-",
                   stdin="apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    assert proc.returncode != 0 and 'no matches for kind "Widget"' in proc.stderr
    proc = kubectl(apiserver, "get", "widgets")
    assert proc.returncode != 0 and "the server doesn't have a resource type" in proc.stderr
    proc = kubectl(apiserver, "apply", "-f", "-",
                   stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: nowhere\n")
    assert proc.returncode != 0 and 'namespaces "nowhere" not found' in proc.stderr
    assert snapshot(apiserver.store) == before
