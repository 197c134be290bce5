"""Discovery and OpenAPI documents as kubectl reads them."""

from __future__ import annotations

import json

from agwlab.sandbox.apiserver import discovery


def test_legacy_and_aggregated_discovery():
    core = discovery.api_resource_list("", "v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"] and pods["namespaced"]
    assert any(r["name"] == "pods/log" for r in core["resources"])
    apps = discovery.api_resource_list("apps", "v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["kind"]) == ("autoscaling", "Scale")
    assert discovery.api_resource_list("apps", "v2") is None
    groups = {g["name"] for g in discovery.api_group_list()["groups"]}
    assert groups == {"apps", "apiextensions.k8s.io", "rbac.authorization.k8s.io", "gateway.networking.k8s.io",
                      "agentgateway.dev", "monitoring.coreos.com"}
    agg = discovery.aggregated_discovery(core=False)
    agbe = next(r for i in agg["items"] if i["metadata"]["name"] == "agentgateway.dev"
                for r in i["versions"][0]["resources"] if r["resource"] == "agentgatewaybackends")
    assert agbe["shortNames"] == ["agbe"] and agbe["categories"] == ["agentgateway"]


def test_openapi_v3_declares_field_validation_and_gvk():
    index = discovery.openapi_v3_index("v1.32.4")
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/apiextensions.k8s.io/v1",
                                   "apis/rbac.authorization.k8s.io/v1", "apis/gateway.networking.k8s.io/v1",
                                   "apis/agentgateway.dev/v1alpha1", "apis/monitoring.coreos.com/v1"}
    doc = json.loads(discovery.openapi_v3_document("agentgateway.dev", "v1alpha1", "v1.32.4"))
    item = doc["paths"]["/apis/agentgateway.dev/v1alpha1/namespaces/{namespace}/agentgatewaybackends/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "agentgateway.dev", "version": "v1alpha1",
                                                        "kind": "AgentgatewayBackend"}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    schema = doc["components"]["schemas"]["dev.agentgateway.v1alpha1.AgentgatewayBackend"]
    assert schema["x-kubernetes-group-version-kind"][0]["kind"] == "AgentgatewayBackend"
    core = json.loads(discovery.openapi_v3_document("", "v1", "v1.32.4"))
    pod = core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    containers = pod["properties"]["spec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_openapi_index_hash_follows_the_document_inputs():
    one = discovery.openapi_v3_index("v1.32.4")["paths"]["apis/agentgateway.dev/v1alpha1"]["serverRelativeURL"]
    assert one == discovery.openapi_v3_index("v1.32.4")["paths"]["apis/agentgateway.dev/v1alpha1"]["serverRelativeURL"]
    other = discovery.openapi_v3_index("v1.32.5")["paths"]["apis/agentgateway.dev/v1alpha1"]["serverRelativeURL"]
    assert one != other and one.startswith("/openapi/v3/apis/agentgateway.dev/v1alpha1?hash=")
