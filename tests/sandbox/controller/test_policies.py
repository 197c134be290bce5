"""AgentgatewayPolicy status as agentgateway v1.4.1 writes it, read with the kubernetes client.

Source (tag v1.4.1): ``controller/pkg/agentgateway/plugins/traffic_plugin.go`` (one ancestor per
Gateway the targets lead to; targets that lead nowhere under a ``StatusSummary`` ancestor, with
``resolvePolicyAncestorRefs``' messages) and ``controller/pkg/pluginsdk/reporter/types.go``.
"""

from __future__ import annotations

from typing import Any

from labtest import poll

GW = ("gateway.networking.k8s.io", "v1")
AGW = ("agentgateway.dev", "v1alpha1")


def _route(name: str, ns: str, gateway: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": gateway}], "rules": [{"backendRefs": [{"name": "nowhere", "port": 80}]}]}}


def test_ancestors_are_the_gateways_and_a_summary_of_what_did_not_attach(custom, ns: str) -> None:  # type: ignore[no-untyped-def]
    custom.create_namespaced_custom_object(*GW, ns, "gateways", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": ns},
        "spec": {"gatewayClassName": "agentgateway", "listeners": [{"name": "http", "protocol": "HTTP", "port": 8080}]}})
    custom.create_namespaced_custom_object(*GW, ns, "httproutes", _route("r", ns, "gw"))
    custom.create_namespaced_custom_object(*GW, ns, "httproutes", _route("r2", ns, "gw"))
    custom.create_namespaced_custom_object(*GW, ns, "httproutes", _route("orphan", ns, "no-such-gateway"))
    # two routes on one Gateway: one ancestor for it
    targets = [("HTTPRoute", "r"), ("HTTPRoute", "r2"), ("HTTPRoute", "missing"), ("HTTPRoute", "orphan")]
    custom.create_namespaced_custom_object(*AGW, ns, "agentgatewaypolicies", {
        "apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayPolicy",
        "metadata": {"name": "timeouts", "namespace": ns},
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": k, "name": n} for k, n in targets],
                 "traffic": {"timeouts": {"request": "30s"}}}})

    def ancestors() -> list[dict[str, Any]] | None:
        pol = custom.get_namespaced_custom_object(*AGW, ns, "agentgatewaypolicies", "timeouts")
        found = (pol.get("status") or {}).get("ancestors") or []
        return found if len(found) == 2 else None

    summary, gateway = poll(ancestors, what="the policy's two ancestors")
    assert gateway["ancestorRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
                                      "namespace": ns}
    assert gateway["controllerName"] == "agentgateway.dev/agentgateway"
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in gateway["conditions"]] == [
        ("Accepted", "True", "Valid", "Policy accepted"), ("Attached", "True", "Attached", "Attached to all targets")]
    assert summary["ancestorRef"]["group"] == "agentgateway.dev" and summary["ancestorRef"]["name"] == "StatusSummary"
    attached = next(c for c in summary["conditions"] if c["type"] == "Attached")
    assert (attached["status"], attached["reason"]) == ("False", "Pending")
    assert attached["message"] == (f"Policy is not attached: HTTPRoute {ns}/missing not found\n"
                                   f"Policy is not attached: HTTPRoute {ns}/orphan is not attached to any Gateway")
