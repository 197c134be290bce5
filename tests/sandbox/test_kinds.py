"""The kind table: names as Kubernetes gives them, and the lookups."""

from __future__ import annotations

import pytest

from agwlab.sandbox.kinds import all_kinds, by_kind, by_resource, groups, resolve_name
from agwlab.sandbox.schemas import kind_schema


@pytest.mark.parametrize(("api_version", "kind", "plural", "short", "namespaced"), [
    ("v1", "Namespace", "namespaces", ("ns",), False),
    ("v1", "ConfigMap", "configmaps", ("cm",), True),
    ("v1", "Service", "services", ("svc",), True),
    ("v1", "Pod", "pods", ("po",), True),
    ("v1", "Event", "events", ("ev",), True),
    ("apps/v1", "Deployment", "deployments", ("deploy",), True),
    ("apps/v1", "ReplicaSet", "replicasets", ("rs",), True),
    ("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", ("gc",), False),
    ("gateway.networking.k8s.io/v1", "Gateway", "gateways", ("gtw",), True),
    ("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", (), True),
    ("agentgateway.dev/v1alpha1", "AgentgatewayBackend", "agentgatewaybackends", ("agbe",), True),
    ("agentgateway.dev/v1alpha1", "AgentgatewayPolicy", "agentgatewaypolicies", ("agpol",), True),
    ("agentgateway.dev/v1alpha1", "AgentgatewayParameters", "agentgatewayparameters", ("agpar",), True),
])
def test_names(api_version, kind, plural, short, namespaced):
    info = by_kind(api_version, kind)
    assert info is not None
    assert (info.plural, info.short_names, info.namespaced) == (plural, short, namespaced)
    assert by_resource(info.group, plural) is info
    assert info.api_version == api_version


def test_custom_kinds_match_their_crd_schemas():
    for info in all_kinds():
        schema = kind_schema(info.group, info.plural)
        assert schema is not None, info.kind
        assert "spec" in schema["properties"] or info.kind in (
            "ConfigMap", "Secret", "Event", "Endpoints", "ServiceAccount", "Role", "ClusterRole", "RoleBinding",
            "ClusterRoleBinding")
    assert by_kind("agentgateway.dev/v1alpha1", "AgentgatewayBackend").categories == ("agentgateway",)
    gw = by_kind("gateway.networking.k8s.io/v1", "Gateway")
    assert [c.name for c in gw.printer_columns] == ["Class", "Address", "Programmed", "Age"]
    assert "status" in gw.subresources and "scale" in by_kind("apps/v1", "Deployment").subresources


def test_paths_and_resource_names():
    dep = by_kind("apps/v1", "Deployment")
    assert dep.path("ns1", "web") == "/apis/apps/v1/namespaces/ns1/deployments/web"
    assert by_kind("v1", "Namespace").path(name="x") == "/api/v1/namespaces/x"
    assert dep.resource == "deployments.apps" and by_kind("v1", "Pod").resource == "pods"


@pytest.mark.parametrize(("name", "kind"), [
    ("po", "Pod"), ("pods", "Pod"), ("Gateway", "Gateway"), ("gateways.gateway.networking.k8s.io", "Gateway"),
    ("agbe", "AgentgatewayBackend"), ("deploy.apps", "Deployment"), ("deployments.v1.apps", "Deployment"),
])
def test_resolve_name(name, kind):
    assert resolve_name(name).kind == kind


def test_unknown_lookups():
    assert by_kind("v1", "Widget") is None and by_resource("apps", "widgets") is None
    assert resolve_name("widgets") is None and resolve_name("pods.apps") is None
    assert set(groups()) == {"", "apps", "apiextensions.k8s.io", "rbac.authorization.k8s.io",
                             "gateway.networking.k8s.io", "agentgateway.dev", "monitoring.coreos.com"}
