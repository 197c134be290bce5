"""Server-side Tables for kubectl get."""

from __future__ import annotations

from agwlab.sandbox.apiserver.tables import human_duration, jsonpath, to_table
from agwlab.sandbox.kinds import by_kind
from agwlab.sandbox.store import now_rfc3339


def test_human_duration():
    assert [human_duration(s) for s in (0, 59, 125, 600, 3 * 3600 + 60, 30 * 3600, 3 * 86400 + 3600, 400 * 86400)] == \
        ["0s", "59s", "2m5s", "10m", "3h1m", "30h", "3d1h", "400d"]


def test_jsonpath_subset():
    obj = {"status": {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}],
                      "addresses": [{"value": "127.64.255.1"}, {"value": "127.64.255.2"}]}}
    assert jsonpath(obj, ".status.conditions[?(@.type=='Programmed')].status") == ["False"]
    assert jsonpath(obj, '.status.conditions[?(@.type=="Accepted")].status') == ["True"]
    assert jsonpath(obj, ".status.addresses[*].value") == ["127.64.255.1", "127.64.255.2"]
    assert jsonpath(obj, ".status.addresses[1].value") == ["127.64.255.2"]
    assert jsonpath(obj, ".spec.nothing") == []


def test_gateway_and_pod_rows():
    gw = {"metadata": {"name": "gw", "namespace": "d", "creationTimestamp": now_rfc3339()},
          "spec": {"gatewayClassName": "agentgateway"},
          "status": {"addresses": [{"value": "127.64.255.1"}], "conditions": [{"type": "Programmed", "status": "True"}]}}
    table = to_table(by_kind("gateway.networking.k8s.io/v1", "Gateway"), [gw])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Class", "Address", "Programmed", "Age"]
    assert table["rows"][0]["cells"][:4] == ["gw", "agentgateway", "127.64.255.1", "True"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    pod = {"metadata": {"name": "p", "creationTimestamp": now_rfc3339()},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "agwlab"},
           "status": {"phase": "Running", "podIP": "127.64.1.2",
                      "containerStatuses": [{"ready": True, "restartCount": 1}, {"ready": False, "restartCount": 0}]}}
    cells = to_table(by_kind("v1", "Pod"), [pod])["rows"][0]["cells"]
    assert cells[:4] == ["p", "1/2", "Running", 1] and cells[5:7] == ["127.64.1.2", "agwlab"]
