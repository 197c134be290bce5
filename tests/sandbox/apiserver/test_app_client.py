"""The official ``kubernetes`` Python client against the API server, unmodified."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

BACKEND = {
    "apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
    "metadata": {"name": "anthropic", "namespace": "default", "labels": {"app": "agw"}},
    "spec": {"ai": {"provider": {"anthropic": {"model": "claude-sonnet-4-5-20250929"}}}},
}


@pytest.fixture
def api(apiserver):
    return config.new_client_from_config(config_file=str(apiserver.kubeconfig))


def _deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]))))


def test_typed_core_crud_and_defaults(api, apiserver):
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="lab")))
    secret = core.create_namespaced_secret("lab", client.V1Secret(
        metadata=client.V1ObjectMeta(name="key"), string_data={"Authorization": "sk-ant-xyz"}))
    assert secret.type == "Opaque" and secret.data == {"Authorization": "c2stYW50LXh5eg=="}
    assert secret.string_data is None
    svc = core.create_namespaced_service("lab", client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)])))
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip.startswith("10.")
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 80
    names = [s.metadata.name for s in core.list_namespaced_service("lab").items]
    assert names == ["web"]
    stored = apiserver.store.get("", "secrets", "lab", "key")
    assert stored["metadata"]["managedFields"][0]["manager"] == "OpenAPI-Generator"
    core.delete_namespaced_service("web", "lab")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service("web", "lab")
    assert err.value.status == 404


def test_deployment_scale_status_and_conflict(api, apiserver):
    apps = client.AppsV1Api(api)
    dep = apps.create_namespaced_deployment("default", _deployment("web"))
    assert dep.spec.strategy.type == "RollingUpdate" and dep.spec.revision_history_limit == 10
    assert dep.metadata.generation == 1
    scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3 and scale.status.selector == "app=web"
    dep2 = apps.read_namespaced_deployment("web", "default")
    assert dep2.spec.replicas == 3 and dep2.metadata.generation == 2
    # the status subresource changes only .status, and not the generation
    apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 3, "readyReplicas": 3}})
    dep3 = apps.read_namespaced_deployment("web", "default")
    assert dep3.status.ready_replicas == 3 and dep3.metadata.generation == 2
    # a stale resourceVersion is refused and nothing changes
    dep.spec.replicas = 5
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", dep)
    assert err.value.status == 409 and "the object has been modified" in err.value.body
    assert apiserver.store.get("apps", "deployments", "default", "web")["spec"]["replicas"] == 3


def test_custom_objects_and_server_side_apply(api, apiserver):
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("agentgateway.dev", "v1alpha1", "default", "agentgatewaybackends",
                                           BACKEND)
    got = custom.get_namespaced_custom_object("agentgateway.dev", "v1alpha1", "default", "agentgatewaybackends",
                                              "anthropic")
    assert got["spec"]["ai"]["provider"]["anthropic"]["model"] == "claude-sonnet-4-5-20250929"
    listed = custom.list_namespaced_custom_object("agentgateway.dev", "v1alpha1", "default",
                                                  "agentgatewaybackends", label_selector="app=agw")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["anthropic"]

    dyn = dynamic.DynamicClient(api, cache_file=str(Path(apiserver.paths.root) / "discovery.json"))
    gateways = dyn.resources.get(api_version="gateway.networking.k8s.io/v1", kind="Gateway")
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "gw", "namespace": "default"},
          "spec": {"gatewayClassName": "agentgateway",
                   "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}}
    applied = gateways.server_side_apply(body=gw, field_manager="lab", namespace="default")
    # CRD schema defaults are applied, as the real server does
    assert applied.spec.listeners[0].allowedRoutes.namespaces["from"] == "Same"
    managers = {(m.manager, m.operation) for m in applied.metadata.managedFields}
    assert ("lab", "Apply") in managers
    # a second manager changing the same field conflicts unless forced
    gw2 = {**gw, "spec": {**gw["spec"], "gatewayClassName": "other"}}
    with pytest.raises(dynamic.exceptions.ConflictError):
        gateways.server_side_apply(body=gw2, field_manager="someone-else", namespace="default")
    forced = gateways.server_side_apply(body=gw2, field_manager="someone-else", namespace="default",
                                        force_conflicts=True)
    assert forced.spec.gatewayClassName == "other"
    # dropping a field from the applied config removes it
    gw3 = {**gw2, "spec": {"gatewayClassName": "other", "listeners": gw["spec"]["listeners"]},
           "metadata": {**gw["metadata"], "labels": {"a": "b"}}}
    gateways.server_side_apply(body=gw3, field_manager="someone-else", namespace="default")
    gw4 = {**gw3, "metadata": gw["metadata"]}
    out = gateways.server_side_apply(body=gw4, field_manager="someone-else", namespace="default")
    assert not (out.metadata.labels or {})


def test_watch_streams_changes(api):
    core = client.CoreV1Api(api)
    seen: list[tuple[str, str]] = []
    listed = core.list_namespaced_config_map("default")
    rv = listed.metadata.resource_version

    def follow() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"),
                                                                    data={"a": "1"}))
    core.patch_namespaced_config_map("c", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("c", "default")
    t.join(timeout=15)
    assert not t.is_alive()
    assert seen == [("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")]


def test_pod_logs(api, apiserver):
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x:1")])))
    assert core.read_namespaced_pod_log("p", "default") == ""
    log = apiserver.paths.pod_log("default", "p")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("p", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("p", "default", tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log("p", "default", limit_bytes=3) == "one"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("nope", "default")
    assert err.value.status == 404


def test_follow_log_ends_when_client_disconnects(api, apiserver):
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="f"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x:1")])))
    log = apiserver.paths.pod_log("default", "f")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("first\n")
    # a read waits for the bytes it asks for; the request timeout is its deadline
    resp = core.read_namespaced_pod_log("f", "default", follow=True, _preload_content=False, _request_timeout=10)
    assert resp.read(6) == b"first\n"
    with log.open("a") as f:
        f.write("second\n")
    assert resp.read(7) == b"second\n"
    resp.close()  # the client goes away mid-stream
    # the server notices: its follow loop ends, so the pod can go and the server stays responsive
    core.delete_namespaced_pod("f", "default")
    assert apiserver.store.get("", "pods", "default", "f") is None
    assert core.list_namespaced_pod("default").items == []


def test_delete_collection_and_field_selectors(api, apiserver):
    core = client.CoreV1Api(api)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"team": team})))
    picked = core.list_namespaced_config_map("default", field_selector="metadata.name=b")
    assert [c.metadata.name for c in picked.items] == ["b"]
    core.delete_collection_namespaced_config_map("default", label_selector="team=x")
    left = [c["metadata"]["name"] for c in apiserver.store.list("", "configmaps", "default")]
    assert left == ["c"]
