"""Updates through the official client: no-op writes, list-map keys after defaulting, immutable fields."""

from __future__ import annotations

import copy
import json
import ssl
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"selector": {"app": "web"},
             "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                       {"name": "metrics", "port": 9090}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 8080}],
                                                   "env": [{"name": "A", "value": "1"}]}]}}},
}
GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
    "metadata": {"name": "gw", "namespace": "default"},
    "spec": {"gatewayClassName": "agentgateway",
             "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]},
}
ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "r", "namespace": "default"},
    "spec": {"parentRefs": [{"name": "gw"}],
             "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}],
                        "backendRefs": [{"name": "web", "port": 80}]}]},
}


@pytest.fixture
def api(apiserver):
    return config.new_client_from_config(config_file=str(apiserver.kubeconfig))


@pytest.fixture
def dyn(api, apiserver):
    return dynamic.DynamicClient(api, cache_file=str(Path(apiserver.paths.root) / "discovery.json"))


@pytest.fixture
def events(apiserver):
    """Every store notification, as ``(type, name)``."""
    seen: list[tuple[str, str]] = []
    remove = apiserver.store.add_listener(lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    yield seen
    remove()


def _apply(dyn, body: dict, manager: str = "agwlab"):
    res = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return res.server_side_apply(body=copy.deepcopy(body), field_manager=manager,
                                 namespace=body["metadata"]["namespace"], force_conflicts=True).to_dict()


def _patch_apply(dyn, body: dict, manager: str = "agwlab"):
    res = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return res.patch(body=copy.deepcopy(body), namespace=body["metadata"]["namespace"],
                     content_type="application/apply-patch+yaml", field_manager=manager, force=True).to_dict()


@pytest.mark.parametrize("body", [SERVICE, DEPLOYMENT, GATEWAY, ROUTE], ids=lambda b: b["kind"])
def test_reapply_changes_nothing(dyn, apiserver, events, body):
    first = _apply(dyn, body)
    events.clear()
    for call in (_apply, _patch_apply, _apply):
        again = call(dyn, body)
        assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]  # times too
        assert again["spec"] == first["spec"]
    assert events == []
    stored = apiserver.store.get(*_where(body))
    assert stored["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def _where(body: dict) -> tuple[str, str, str, str]:
    group = body["apiVersion"].rpartition("/")[0]
    plural = {"Service": "services", "Deployment": "deployments", "Gateway": "gateways",
              "HTTPRoute": "httproutes", "ConfigMap": "configmaps"}[body["kind"]]
    return group, plural, body["metadata"]["namespace"], body["metadata"]["name"]


def test_reapplied_ports_without_protocol_are_not_duplicated(dyn, apiserver):
    _apply(dyn, SERVICE)
    _apply(dyn, DEPLOYMENT)
    for _ in range(3):
        svc = _patch_apply(dyn, SERVICE)
        dep = _apply(dyn, DEPLOYMENT)
    assert [(p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [(80, "TCP"), (9090, "TCP")]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["env"] == [{"name": "A", "value": "1"}]
    # the applier owns the port by its defaulted key, as on a real server
    owned = next(m for m in svc["metadata"]["managedFields"] if m["manager"] == "agwlab")["fieldsV1"]
    assert 'k:{"port":80,"protocol":"TCP"}' in owned["f:spec"]["f:ports"]
    # dropping a port from the applied configuration removes it (it was found by its key)
    fewer = copy.deepcopy(SERVICE)
    fewer["spec"]["ports"] = fewer["spec"]["ports"][:1]
    svc = _apply(dyn, fewer)
    assert [p["port"] for p in svc["spec"]["ports"]] == [80]
    # a UDP port on the same number is a different item
    both = copy.deepcopy(fewer)
    both["spec"]["ports"].append({"name": "dns", "port": 80, "protocol": "UDP"})
    svc = _apply(dyn, both)
    assert sorted((p["port"], p["protocol"]) for p in svc["spec"]["ports"]) == [(80, "TCP"), (80, "UDP")]


def test_generation_bumps_on_spec_changes_only(dyn, events):
    first = _apply(dyn, DEPLOYMENT)
    assert first["metadata"]["generation"] == 1
    labelled = copy.deepcopy(DEPLOYMENT)
    labelled["metadata"]["labels"] = {"team": "a"}
    second = _apply(dyn, labelled)
    assert second["metadata"]["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    scaled = copy.deepcopy(labelled)
    scaled["spec"]["replicas"] = 2
    third = _apply(dyn, scaled)
    assert third["metadata"]["generation"] == 2
    assert _apply(dyn, scaled)["metadata"]["resourceVersion"] == third["metadata"]["resourceVersion"]


def test_noop_update_and_patches_keep_the_object(api, apiserver, events):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    cm = core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c", labels={"a": "b"}), data={"k": "v"}))
    dep = apps.create_namespaced_deployment("default", DEPLOYMENT)
    rv, dep_rv = cm.metadata.resource_version, dep.metadata.resource_version
    events.clear()
    assert core.patch_namespaced_config_map("c", "default", {"data": {"k": "v"}}).metadata.resource_version == rv
    assert core.patch_namespaced_config_map("c", "default", [{"op": "replace", "path": "/data/k", "value": "v"}]) \
        .metadata.resource_version == rv
    assert core.replace_namespaced_config_map("c", "default", core.read_namespaced_config_map("c", "default")) \
        .metadata.resource_version == rv
    again = apps.replace_namespaced_deployment("web", "default", apps.read_namespaced_deployment("web", "default"))
    assert again.metadata.resource_version == dep_rv and again.metadata.generation == 1
    assert apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 1}}) \
        .metadata.resource_version == dep_rv
    assert events == []
    changed = core.patch_namespaced_config_map("c", "default", {"data": {"k": "w"}})
    assert int(changed.metadata.resource_version) > int(rv) and events == [("MODIFIED", "c")]


def _invalid(err: pytest.ExceptionInfo) -> dict:
    assert err.value.status == 422, err.value.body
    return json.loads(err.value.body)


def test_deployment_selector_is_immutable(api, apiserver):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", DEPLOYMENT)
    changed = copy.deepcopy(DEPLOYMENT)
    changed["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    changed["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", changed)
    body = _invalid(err)
    assert body["message"] == ('Deployment.apps "web" is invalid: spec.selector: Invalid value: '
                               'v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
                               'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable')
    assert body["details"]["causes"][0]["field"] == "spec.selector"
    changed["metadata"]["resourceVersion"] = "1"  # stale: a conflict comes before validation
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", changed)
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", "default", {"spec": {
            "selector": {"matchLabels": {"app": "web", "tier": "x"}},
            "template": {"metadata": {"labels": {"tier": "x"}}}}})
    assert "field is immutable" in _invalid(err)["message"]
    stored = apiserver.store.get("apps", "deployments", "default", "web")
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_service_cluster_ip_is_kept_and_immutable(api, apiserver, dyn):
    core = client.CoreV1Api(api)
    svc = copy.deepcopy(SERVICE)
    svc["spec"]["clusterIP"] = "10.96.7.7"
    core.create_namespaced_service("default", svc)
    # a replace that leaves the allocated IP out keeps it, as the real server does
    plain = copy.deepcopy(SERVICE)
    plain["metadata"]["labels"] = {"app": "web", "v": "2"}
    kept = core.replace_namespaced_service("web", "default", plain)
    assert kept.spec.cluster_ip == "10.96.7.7" and kept.spec.cluster_ips == ["10.96.7.7"]
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_service("web", "default", {"spec": {"clusterIP": "10.96.8.8"}})
    assert _invalid(err)["message"] == ('Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
                                        '[]string{"10.96.8.8"}: may not change once set')
    moved = copy.deepcopy(SERVICE)
    moved["spec"]["clusterIP"] = "10.96.9.9"
    with pytest.raises(dynamic.exceptions.UnprocessibleEntityError):
        _apply(dyn, moved)
    assert apiserver.store.get("", "services", "default", "web")["spec"]["clusterIP"] == "10.96.7.7"


def test_immutable_configmap_and_secret(api, apiserver):
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="frozen"), data={"a": "1"}, immutable=True))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("frozen", "default", {"data": {"a": "2"}})
    assert _invalid(err)["message"] == ('ConfigMap "frozen" is invalid: data: Forbidden: field is immutable '
                                        'when `immutable` is set')
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("frozen", "default", {"immutable": False})
    assert "immutable: Forbidden" in _invalid(err)["message"]
    # metadata may still change
    core.patch_namespaced_config_map("frozen", "default", {"metadata": {"labels": {"x": "y"}}})
    core.create_namespaced_secret("default", client.V1Secret(
        metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"}, immutable=True))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret("s", "default", {"stringData": {"k": "w"}})
    assert _invalid(err)["message"] == ('Secret "s" is invalid: data: Forbidden: field is immutable when '
                                        '`immutable` is set')
    assert apiserver.store.get("", "secrets", "default", "s")["data"] == {"k": "dg=="}
    assert apiserver.store.get("", "configmaps", "default", "frozen")["data"] == {"a": "1"}


def test_version_and_discovery_with_trailing_slash(api, apiserver):
    assert client.VersionApi(api).get_code().minor == "32"
    headers = {"Authorization": f"Bearer {apiserver.token}"}
    with httpx.Client(base_url=apiserver.url, verify=ssl.create_default_context(cafile=str(apiserver.ca_cert)),
                      headers=headers) as http:
        for path in ("/version/", "/api/", "/apis/", "/api/v1/", "/apis/apps/", "/apis/apps/v1/", "/livez/"):
            slashed, bare = http.get(path), http.get(path.rstrip("/"))
            assert slashed.status_code == 200, path
            assert slashed.content == bare.content, path
