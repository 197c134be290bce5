"""Field sets (managedFields) and the apply merge."""

from __future__ import annotations

from agwlab.sandbox.fieldsets import from_fields_v1, leaves, merge_apply, remove_path, to_fields_v1
from agwlab.sandbox.schemas import keys_for


def test_round_trip_and_list_keys():
    keys = keys_for("", "services")
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"a": "b"}},
           "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "x"}}}
    paths = set(leaves(obj, keys))
    assert ("f:metadata", "f:name") not in paths
    assert ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', ".") in paths
    tree = to_fields_v1(paths)
    assert tree["f:spec"]["f:ports"]['k:{"port":80,"protocol":"TCP"}'] == {".": {}, "f:port": {}, "f:protocol": {}}
    assert from_fields_v1(tree) == paths


def test_merge_and_remove():
    keys = keys_for("apps", "deployments")
    live = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}, "replicas": 1}}
    cfg = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}
    merged = merge_apply(live, cfg, keys)
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["a", "b"]
    remove_path(merged, ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"a"}', "."))
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["b"]
    remove_path(merged, ("f:spec", "f:replicas"))
    assert "replicas" not in merged["spec"]
