"""The API server's limits and the validation a real API server does, with its statuses.

Every refusal leaves the store exactly as it was.
"""

from __future__ import annotations

import base64
import json
import ssl
import time

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from agwlab.sandbox.kinds import all_kinds

CM = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MiB = 1024 * 1024


def snapshot(store) -> tuple[int, str]:
    objs = [store.list(k.group, k.plural) for k in all_kinds()]
    return store.resource_version, json.dumps(objs, sort_keys=True)


def status_of(resp: httpx.Response, code: int, reason: str) -> dict:
    assert resp.status_code == code, resp.text[:2000]
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == code and body["reason"] == reason, body
    return body


@pytest.fixture
def http(apiserver):
    with httpx.Client(base_url=apiserver.url, verify=ssl.create_default_context(cafile=str(apiserver.ca_cert)),
                      headers={"Authorization": f"Bearer {apiserver.token}"}, timeout=30) as c:
        yield c


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


# -- sizes -------------------------------------------------------------------------------------


def test_a_request_over_3_mib_is_413(apiserver, http):
    before = snapshot(apiserver.store)
    body = json.dumps(configmap("huge", blob="x" * (3 * MiB + 10)))
    resp = http.post(CM, content=body, headers={"Content-Type": "application/json"})
    status = status_of(resp, 413, "RequestEntityTooLarge")
    assert status["message"] == "Request entity too large: limit is 3145728"

    def chunks():  # no Content-Length: the server stops reading at the limit all the same
        for _ in range(5):
            yield b"x" * MiB

    resp = http.post(CM, content=chunks(), headers={"Content-Type": "application/json"})
    status_of(resp, 413, "RequestEntityTooLarge")
    assert snapshot(apiserver.store) == before


def test_configmaps_and_secrets_over_1_mib_are_invalid(apiserver, http):
    before = snapshot(apiserver.store)
    half = "x" * (MiB // 2 + 1)
    body = status_of(http.post(CM, json=configmap("big", a=half, b=half)), 422, "Invalid")
    assert body["message"] == 'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes'
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"},
              "data": {"a": base64.b64encode(b"x" * (MiB + 1)).decode()}}
    body = status_of(http.post(SECRETS, json=secret), 422, "Invalid")
    assert body["message"] == 'Secret "big" is invalid: data: Too long: may not be more than 1048576 bytes'
    assert snapshot(apiserver.store) == before
    # just under the limit is fine
    ok = http.post(CM, json=configmap("almost", a="x" * (MiB - 100)))
    assert ok.status_code == 201, ok.text


def test_a_yaml_alias_bomb_is_refused_quickly(apiserver, http):
    before = snapshot(apiserver.store)
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", 'a0: &a0 ["lol","lol","lol","lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 4) + "]")
    lines.append("data: {x: y}")
    started = time.monotonic()
    resp = http.post(CM, content="\n".join(lines), headers={"Content-Type": "application/yaml"})
    assert time.monotonic() - started < 2
    body = status_of(resp, 400, "BadRequest")
    assert "excessive aliasing" in body["message"]
    assert snapshot(apiserver.store) == before
    # a few aliases, as real manifests have, are fine
    fine = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine, labels: &l {app: x}, annotations: *l}\n"
    assert http.post(CM, content=fine, headers={"Content-Type": "application/yaml"}).status_code == 201


@pytest.mark.parametrize("depth", [200, 1000, 100_000])
def test_deep_nesting_is_400_not_a_python_error(apiserver, http, depth):
    before = snapshot(apiserver.store)
    nested = '{"a":' * depth + "1" + "}" * depth
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"extra":' + nested + "}"
    resp = http.post(CM, content=body, headers={"Content-Type": "application/json"})
    status = status_of(resp, 400, "BadRequest")
    assert "Recursion" not in status["message"] and "max depth" in status["message"], status
    assert snapshot(apiserver.store) == before


# -- validation --------------------------------------------------------------------------------


def test_labels_must_be_a_map_of_strings(apiserver, http):
    before = snapshot(apiserver.store)
    bad = configmap("l")
    bad["metadata"]["labels"] = ["app=x"]
    body = status_of(http.post(CM, json=bad), 400, "BadRequest")
    assert "cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string" in \
        body["message"]
    bad["metadata"]["labels"] = {"version": 1}
    body = status_of(http.post(CM, json=bad), 400, "BadRequest")
    assert "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string" in body["message"]
    bad["metadata"].pop("labels")
    bad["metadata"]["annotations"] = "x"
    status_of(http.post(CM, json=bad), 400, "BadRequest")
    assert snapshot(apiserver.store) == before


def test_secret_data_must_be_base64(apiserver, http):
    before = snapshot(apiserver.store)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"},
              "data": {"Authorization": "sk-ant-api03-not-base64!"}}
    body = status_of(http.post(SECRETS, json=secret), 400, "BadRequest")
    assert body["message"].startswith('Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                                      "at input byte "), body
    assert "sk-ant" not in body["message"]  # the value is never echoed
    cm = configmap("bin")
    cm["binaryData"] = {"f": "%%%"}
    status_of(http.post(CM, json=cm), 400, "BadRequest")
    assert snapshot(apiserver.store) == before
    secret["data"] = {"Authorization": base64.b64encode(b"sk-ant-ok").decode()}
    assert http.post(SECRETS, json=secret).status_code == 201


def test_generate_name_is_validated(apiserver, http):
    before = snapshot(apiserver.store)
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "Bad_Name-"}}
    body = status_of(http.post(CM, json=bad), 422, "Invalid")
    assert body["message"].startswith('ConfigMap "" is invalid: metadata.generateName: Invalid value: "Bad_Name-"')
    assert snapshot(apiserver.store) == before
    made = http.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "good-"}})
    assert made.status_code == 201 and made.json()["metadata"]["name"].startswith("good-")


def test_negative_replicas_are_invalid(apiserver, http):
    before = snapshot(apiserver.store)
    body = status_of(http.post(DEPLOYMENTS, json=deployment("neg", replicas=-1)), 422, "Invalid")
    assert body["message"] == ('Deployment.apps "neg" is invalid: spec.replicas: Invalid value: -1: must be '
                               "greater than or equal to 0")
    assert snapshot(apiserver.store) == before


def test_namespaced_kinds_cannot_be_written_at_cluster_scope(apiserver, http):
    before = snapshot(apiserver.store)
    status_of(http.post("/api/v1/configmaps", json=configmap("c")), 405, "MethodNotAllowed")
    status_of(http.delete("/api/v1/configmaps"), 405, "MethodNotAllowed")
    assert http.get("/api/v1/configmaps").status_code == 200  # listing across namespaces is fine
    assert snapshot(apiserver.store) == before


@pytest.mark.parametrize("patch", [
    {"data": {"$patch": "bogus"}},
    {"$retainKeys": "data"},
    {"$setElementOrder/data": "x"},
    {"$deleteFromPrimitiveList/finalizers": "x"},
])
def test_bogus_strategic_merge_directives_are_refused(apiserver, http, patch):
    assert http.post(CM, json=configmap("p", a="1")).status_code == 201
    before = snapshot(apiserver.store)
    resp = http.patch(f"{CM}/p", content=json.dumps(patch),
                      headers={"Content-Type": "application/strategic-merge-patch+json"})
    status_of(resp, 400, "BadRequest")
    assert snapshot(apiserver.store) == before


@pytest.mark.parametrize(("method", "kind"), [("POST", "CreateOptions"), ("PUT", "UpdateOptions"),
                                              ("PATCH", "PatchOptions")])
def test_field_validation_must_be_a_known_value(apiserver, http, method, kind):
    assert http.post(CM, json=configmap("fv")).status_code == 201
    before = snapshot(apiserver.store)
    url = CM if method == "POST" else f"{CM}/fv"
    headers = {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"}
    resp = http.request(method, url, params={"fieldValidation": "Bogus"}, headers=headers,
                        content=json.dumps(configmap("fv", a="1") if method != "PATCH" else {"data": {"a": "1"}}))
    body = status_of(resp, 422, "Invalid")
    assert body["message"] == (f'{kind}.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": '
                               'supported values: "", "Ignore", "Strict", "Warn"')
    assert snapshot(apiserver.store) == before


@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public"])
def test_the_system_namespaces_cannot_be_deleted(apiserver, ns):
    k8s_config.load_kube_config(config_file=str(apiserver.kubeconfig))
    api = k8s.CoreV1Api()
    before = snapshot(apiserver.store)
    with pytest.raises(ApiException) as err:
        api.delete_namespace(ns)
    assert err.value.status == 403
    body = json.loads(err.value.body)
    assert body["reason"] == "Forbidden" and body["message"] == \
        f'namespaces "{ns}" is forbidden: this namespace may not be deleted'
    assert snapshot(apiserver.store) == before


def test_label_selector_lists_survive_an_object_with_odd_labels(apiserver, http):
    """Even an object stored before validation existed (labels as a list) cannot break a list."""
    assert http.post(CM, json=configmap("a")).status_code == 201
    odd = apiserver.store.get("", "configmaps", "default", "a")
    odd["metadata"]["labels"] = ["app=x"]
    apiserver.store.update(odd)
    resp = http.get(CM, params={"labelSelector": "app=x"})
    assert resp.status_code == 200 and resp.json()["items"] == []
