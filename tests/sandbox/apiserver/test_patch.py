"""JSON merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import pytest

from agwlab.sandbox.apiserver.patch import json_patch, merge_patch, strategic_merge_patch
from agwlab.sandbox.schemas import keys_for
from agwlab.sandbox.store import BadRequest


def test_merge_patch():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3}, "l": [3]}) == \
        {"a": {"c": 2, "d": 3}, "l": [3]}


def test_json_patch():
    doc = {"spec": {"replicas": 1, "ports": [{"port": 80}]}}
    out = json_patch(doc, [{"op": "replace", "path": "/spec/replicas", "value": 3},
                           {"op": "add", "path": "/spec/ports/-", "value": {"port": 443}},
                           {"op": "test", "path": "/spec/ports/0/port", "value": 80},
                           {"op": "remove", "path": "/spec/ports/0"}])
    assert out == {"spec": {"replicas": 3, "ports": [{"port": 443}]}} and doc["spec"]["replicas"] == 1
    with pytest.raises(BadRequest):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 2}])
    with pytest.raises(BadRequest):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_strategic_merge_patch_merges_containers_by_name():
    keys = keys_for("apps", "deployments")
    live = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "b:1"}]}}}}
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                       {"name": "b", "$patch": "delete"}]}}}}
    out = strategic_merge_patch(live, patch, keys)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]


def test_strategic_merge_patch_directives():
    keys = keys_for("", "services")
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"ports": [{"port": 80, "name": "http"}],
                                                                   "type": "ClusterIP", "x": 1}}
    patch = {"metadata": {"labels": {"a": None}}, "spec": {"ports": [{"port": 443, "name": "https"}],
                                                           "$retainKeys": ["ports", "type"]}}
    out = strategic_merge_patch(live, patch, keys)
    assert out["metadata"]["labels"] == {"b": "2"}
    assert [p["port"] for p in out["spec"]["ports"]] == [80, 443] and "x" not in out["spec"]
    replaced = strategic_merge_patch(live, {"spec": {"$patch": "replace", "type": "NodePort"}}, keys)
    assert replaced["spec"] == {"type": "NodePort"}
