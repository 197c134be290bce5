"""JSON merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import pytest

from agwlab.sandbox.apiserver.patch import json_patch, merge_patch, strategic_merge_patch
from agwlab.sandbox.schemas import keys_for, list_key_defaults
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


def test_strategic_merge_patch_matches_ports_on_every_named_key():
    keys, defaults = keys_for("", "services"), list_key_defaults("", "services")
    live = {"spec": {"ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
    # a UDP port 53 is a new item, not a change to the TCP one
    added = strategic_merge_patch(live, {"spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}},
                                  keys, key_defaults=defaults)
    assert [(p["name"], p["protocol"]) for p in added["spec"]["ports"]] == [("dns-tcp", "TCP"), ("dns", "UDP")]
    # an item naming only the merge key (what kubectl sends for unchanged keys) matches by it
    retarget = strategic_merge_patch(added, {"spec": {"ports": [{"port": 53, "targetPort": 5353}]}}, keys,
                                     key_defaults=defaults)
    assert [p.get("targetPort") for p in retarget["spec"]["ports"]] == [5353, None]
    # a stored item without its defaulted key counts as TCP
    bare = {"spec": {"ports": [{"port": 80}]}}
    same = strategic_merge_patch(bare, {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "x"}]}}, keys,
                                 key_defaults=defaults)
    assert same["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "name": "x"}]
    gone = strategic_merge_patch(added, {"spec": {"ports": [{"port": 53, "protocol": "UDP", "$patch": "delete"}]}},
                                 keys, key_defaults=defaults)
    assert [p["name"] for p in gone["spec"]["ports"]] == ["dns-tcp"]
