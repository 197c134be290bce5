"""Gateways and HTTPRoutes: what agentgateway's controller creates and reports."""

from __future__ import annotations

import json

import httpx

from labtest import (
    anthropic_backend_yaml,
    has_status,
    http_route_yaml,
    poll,
    poll_object,
    secret_yaml,
    yaml_docs,
)


def _gateway(ns: str, name: str = "gw", port: int = 8080, allowed: str = "Same", cls: str = "agentgateway") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {ns}}}
spec:
  gatewayClassName: {cls}
  listeners:
  - {{name: http, protocol: HTTP, port: {port}, allowedRoutes: {{namespaces: {{from: {allowed}}}}}}}
"""


def _conds(obj: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["type"]: c["status"] for c in obj.get("conditions") or []}


def test_a_gateway_gets_a_deployment_service_and_pod_named_after_it(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=_gateway(ns))
    kubectl("wait", "--for=condition=Programmed", "gateway/gw", "-n", ns, "--timeout=20s")
    deploy = json.loads(kubectl("get", "deploy", "gw", "-n", ns, "-o", "json"))
    # what v1.4.1's chart (controller/pkg/helm/agentgateway) makes
    selector = {"app.kubernetes.io/name": "gw", "app.kubernetes.io/instance": "gw",
                "gateway.networking.k8s.io/gateway-name": "gw"}
    assert deploy["spec"]["selector"]["matchLabels"] == selector
    assert deploy["metadata"]["labels"] == {**selector, "app.kubernetes.io/managed-by": "agentgateway",
                                            "gateway.networking.k8s.io/gateway-class-name": "agentgateway",
                                            "app.kubernetes.io/version": "v1.4.1"}
    template = deploy["spec"]["template"]
    assert template["metadata"]["labels"] == {**selector,
                                              "gateway.networking.k8s.io/gateway-class-name": "agentgateway"}
    assert len(template["metadata"]["annotations"]["checksum/config"]) == 64
    container = template["spec"]["containers"][0]
    assert container["name"] == "agentgateway"
    assert container["ports"] == [{"containerPort": 15020, "name": "metrics", "protocol": "TCP"}]
    assert container["startupProbe"]["periodSeconds"] == 1 and container["startupProbe"]["failureThreshold"] == 60
    assert {"name": "GATEWAY", "value": "gw"} in container["env"]
    assert template["spec"]["serviceAccountName"] == "gw"
    account = json.loads(kubectl("get", "serviceaccount", "gw", "-n", ns, "-o", "json"))
    assert account["metadata"]["ownerReferences"][0]["kind"] == "Gateway"
    assert deploy["metadata"]["ownerReferences"][0]["kind"] == "Gateway"
    svc = json.loads(kubectl("get", "svc", "gw", "-n", ns, "-o", "json"))
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"][0]["name"] == "listener-8080"
    gw = json.loads(kubectl("get", "gateway", "gw", "-n", ns, "-o", "json"))
    assert gw["status"]["addresses"][0]["type"] == "IPAddress"
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == gw["status"]["addresses"][0]["value"]
    listener = gw["status"]["listeners"][0]
    assert listener["attachedRoutes"] == 0
    assert _conds(listener)["Accepted"] == "True" and _conds(listener)["Programmed"] == "True"
    assert [c["type"] for c in listener["conditions"]] == ["Accepted", "Conflicted", "Programmed", "ResolvedRefs"]
    assert {c["message"] for c in listener["conditions"]} == {"No errors found"}
    programmed = next(c for c in gw["status"]["conditions"] if c["type"] == "Programmed")
    assert programmed["message"] == "Successfully programmed Gateway"
    pod = json.loads(kubectl("get", "pods", "-n", ns, "-l", "gateway.networking.k8s.io/gateway-name=gw",
                             "-o", "json"))["items"][0]
    # the Pod IP is where the metrics port answers
    r = httpx.get(f"http://{pod['status']['podIP']}:15020/metrics", timeout=5)
    assert r.status_code == 200 and "agentgateway_build_info" in r.text
    # no route yet: the listener answers 404 route not found
    addr = gw["status"]["addresses"][0]["value"]
    r = poll(lambda: httpx.get(f"http://{addr}:8080/", timeout=5), what="the listener")
    assert r.status_code == 404 and r.text.strip() == "route not found"


def test_the_tutorials_enterprise_class_is_not_programmed(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    # open-source v1.4.1 has one GatewayClass; enterprise-agentgateway comes with Solo's chart only
    classes = kubectl("get", "gatewayclass", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert "agentgateway" in classes and "enterprise-agentgateway" not in classes
    kubectl("apply", "-f", "-", input=_gateway(ns, name="tutorial", cls="enterprise-agentgateway"))
    kubectl("apply", "-f", "-", input=_gateway(ns, name="oss"))
    kubectl("wait", "--for=condition=Programmed", "gateway/oss", "-n", ns, "--timeout=20s")
    gw = json.loads(kubectl("get", "gateway", "tutorial", "-n", ns, "-o", "json"))
    assert not (gw.get("status") or {}).get("addresses")
    assert {c["type"]: c["status"] for c in (gw.get("status") or {}).get("conditions") or []} in (
        {}, {"Accepted": "Unknown", "Programmed": "Unknown"})          # nobody reconciles it
    assert kubectl("get", "deploy", "-n", ns, "-o", "name").split() == ["deployment.apps/oss"]


def test_a_route_to_a_missing_gateway_gets_no_parent_status(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=_gateway(ns, name="here"))
    kubectl("apply", "-f", "-", input=http_route_yaml("to-nowhere", ns, "not-there", service=("nowhere", 80)))
    kubectl("apply", "-f", "-", input=http_route_yaml("to-here", ns, "here", service=("nowhere", 80)))
    route = poll_object(kubectl, "httproute", "to-here", ns, until=has_status("parents"), what="route status")
    parent = route["status"]["parents"][0]
    assert parent["parentRef"]["namespace"] == ns              # v1.4.1 always writes the namespace
    refs = next(c for c in parent["conditions"] if c["type"] == "ResolvedRefs")
    assert refs["message"] == f"backend(nowhere.{ns}.svc.cluster.local) not found"
    missing = json.loads(kubectl("get", "httproute", "to-nowhere", "-n", ns, "-o", "json"))
    assert not (missing.get("status") or {}).get("parents")


def test_deleting_the_gateway_removes_its_proxy(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=_gateway(ns))
    kubectl("wait", "--for=condition=Programmed", "gateway/gw", "-n", ns, "--timeout=20s")
    kubectl("delete", "gateway", "gw", "-n", ns)
    poll(lambda: kubectl("get", "deploy,svc,pods", "-n", ns, "-o", "name").strip() == "", what="the proxy to go")


def test_a_reserved_listener_port_is_refused(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=_gateway(ns, port=15020))
    gw = poll_object(kubectl, "gateway", "gw", ns, until=has_status("listeners"), what="listener status")
    listener = gw["status"]["listeners"][0]
    accepted = next(c for c in listener["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and accepted["reason"] == "PortUnavailable"
    # the Gateway sums its listeners up as v1.4.1's reports.BuildGWStatus does (reports/status.go)
    gateway = next(c for c in gw["status"]["conditions"] if c["type"] == "Accepted")
    reserved = "http: port 15020 is reserved by agentgateway"
    assert (gateway["status"], gateway["reason"], gateway["message"]) == (
        "False", "ListenersNotValid", f"Some listeners are not accepted: {reserved}; {reserved}")


def test_route_from_another_namespace_is_not_allowed_by_default(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=_gateway(ns, allowed="Same"))
    other = f"{ns}-other"
    kubectl("create", "namespace", other)
    try:
        route_yaml = http_route_yaml("r", other, "gw", service=("nowhere", 80), parent_namespace=ns)
        kubectl("apply", "-f", "-", input=route_yaml)
        route = poll_object(kubectl, "httproute", "r", other, until=has_status("parents"),
                            what="route status")
        conds = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}
        assert conds["Accepted"]["status"] == "False"
        assert conds["Accepted"]["reason"] == "NotAllowedByListeners"
        assert conds["ResolvedRefs"]["status"] == "False"
        assert conds["ResolvedRefs"]["reason"] == "BackendNotFound"
        assert route["status"]["parents"][0]["controllerName"] == "agentgateway.dev/agentgateway"
    finally:
        kubectl("delete", "namespace", other, "--wait=false")


def test_routes_attach_and_match_by_gateway_api_precedence(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_docs(
        _gateway(ns, name="prec", port=8081),
        secret_yaml("key", ns, {"Authorization": f"sk-ant-api03-{'k' * 90}"}),
        anthropic_backend_yaml("claude", ns, "key", model="claude-haiku-4-5-20251001"),
        http_route_yaml("broad", ns, "prec", prefix="/", service=("nowhere", 80)),
        http_route_yaml("llm", ns, "prec", prefix="/llm", backend="claude"),
    ))
    kubectl("wait", "--for=condition=Programmed", "gateway/prec", "-n", ns, "--timeout=20s")
    gw = poll_object(kubectl, "gateway", "prec", ns, what="two attached routes",
                     until=lambda g: g["status"]["listeners"][0]["attachedRoutes"] == 2)
    addr = gw["status"]["addresses"][0]["value"]
    body = {"messages": [{"role": "user", "content": "hello"}]}
    r = poll(lambda: (lambda r: r if r.status_code == 200 else None)(
        httpx.post(f"http://{addr}:8081/llm/v1/chat/completions", json=body, timeout=10)), what="the /llm route")
    assert r.json()["model"] == "claude-haiku-4-5-20251001"
    # the longer prefix wins; segments matter: /llmx is not /llm
    r = httpx.post(f"http://{addr}:8081/llmx", json=body, timeout=10)
    assert (r.status_code, r.text) == (500, "service not found")
