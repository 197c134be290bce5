"""HTTPRoute parent status as agentgateway v1.4.1's controller writes it, read with the kubernetes client.

Sources (tag v1.4.1): ``controller/pkg/agentgateway/translator/conversion.go`` (``ReferenceAllowed``,
``buildHostnameMatch``), ``translator/route_collections.go`` (``ProcessParentReferences``: one
status per parent Gateway, the last listener's refusal when none takes the route) and
``translator/conditions.go`` (``GenerateSupportedKinds``, ``reportListenerCondition``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from labtest import poll

GW = ("gateway.networking.k8s.io", "v1")


@pytest.fixture
def two_namespaces(core_v1) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    names = (f"rs-{secrets.token_hex(3)}", f"rs-{secrets.token_hex(3)}")
    for name in names:
        core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield names
    for name in names:
        core_v1.delete_namespace(name)


def _gateway(ns: str, *listeners: dict[str, Any], name: str = "gw") -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"gatewayClassName": "agentgateway", "listeners": list(listeners)}}


def _route(name: str, ns: str, parent: dict[str, Any], hostnames: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [parent],
                            "rules": [{"backendRefs": [{"name": "nowhere", "port": 80}]}]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _accepted(custom, ns: str, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    def read() -> dict[str, Any] | None:
        route = custom.get_namespaced_custom_object(*GW, ns, "httproutes", name)
        parents = (route.get("status") or {}).get("parents") or []
        return next((c for c in parents[0]["conditions"] if c["type"] == "Accepted"), None) if parents else None
    return poll(read, what=f"route {ns}/{name}'s parent status")


def test_refused_routes_carry_v141s_reasons_and_messages(custom, two_namespaces) -> None:  # type: ignore[no-untyped-def]
    home, other = two_namespaces
    custom.create_namespaced_custom_object(*GW, home, "gateways", _gateway(
        home, {"name": "a-http", "protocol": "HTTP", "port": 8080},
        {"name": "b-named", "protocol": "HTTP", "port": 8082, "hostname": "a.example.com"}))
    custom.create_namespaced_custom_object(*GW, home, "gateways", _gateway(
        home, {"name": "grpc", "protocol": "HTTP", "port": 8083,
               "allowedRoutes": {"kinds": [{"kind": "GRPCRoute"}, {"kind": "TCPRoute"}]}}, name="kinds"))
    for ns, route in ((other, _route("across", other, {"name": "gw", "namespace": home})),
                      (home, _route("wrong-host", home, {"name": "gw", "sectionName": "b-named"},
                                    hostnames=["b.example.com"])),
                      (home, _route("no-section", home, {"name": "gw", "sectionName": "nope"})),
                      (home, _route("wrong-kind", home, {"name": "kinds"})),
                      (home, _route("fine", home, {"name": "gw"}, hostnames=["b.example.com"]))):
        custom.create_namespaced_custom_object(*GW, ns, "httproutes", route)

    def seen(name: str, ns: str = home) -> tuple[str, str, str]:
        c = _accepted(custom, ns, name)
        return c["status"], c["reason"], c["message"]

    # every listener refuses; the last one's reason is the one written
    assert seen("across", other) == (
        "False", "NotAllowedByListeners",
        f'hostnames matched parent hostname "a.example.com", but namespace "{other}" is not allowed by the parent')
    assert seen("wrong-host") == ("False", "NoMatchingListenerHostname",
                                  'no hostnames matched parent hostname "a.example.com"')
    assert seen("no-section") == ("False", "NoMatchingParent", 'sectionName "nope" not found')
    assert seen("wrong-kind") == ("False", "NotAllowedByListeners",
                                  "kind gateway.networking.k8s.io/v1, Kind=HTTPRoute is not allowed")
    # one listener taking it is enough, though another (b-named, a.example.com) would refuse it
    assert seen("fine") == ("True", "Accepted", "")
    route = custom.get_namespaced_custom_object(*GW, home, "httproutes", "fine")
    (parent,) = route["status"]["parents"]
    assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
                                   "namespace": home}
    resolved = next(c for c in parent["conditions"] if c["type"] == "ResolvedRefs")
    assert (resolved["reason"], resolved["message"]) == ("BackendNotFound",
                                                         f"backend(nowhere.{home}.svc.cluster.local) not found")
    # the listener that names a kind it cannot take
    kinds = poll(lambda: next(iter((custom.get_namespaced_custom_object(*GW, home, "gateways", "kinds")
                                    .get("status") or {}).get("listeners") or []), None),
                 what="the kinds gateway's listener status")
    assert kinds["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]
    resolved = next(c for c in kinds["conditions"] if c["type"] == "ResolvedRefs")
    assert (resolved["status"], resolved["reason"], resolved["message"]) == (
        "False", "InvalidRouteKinds", "Invalid route kinds")
