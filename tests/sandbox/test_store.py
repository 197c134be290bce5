"""The Store: metadata bookkeeping, selectors, conflicts, apply, listeners, durability."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agwlab.sandbox.store import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Invalid,
    NotFound,
    Store,
    match_fields,
    match_labels,
)


def cm(name: str, ns: str = "default", **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "store.db")
    yield s
    s.close()


def test_system_namespaces_exist(store):
    names = [n["metadata"]["name"] for n in store.list("", "namespaces")]
    assert {"default", "kube-system", "kube-public"} <= set(names)


def test_create_sets_metadata_and_rv_grows(store):
    rv0 = store.resource_version
    a = store.create(cm("a", x="1"), field_manager="me")
    b = store.create(cm("b"))
    meta = a["metadata"]
    assert int(meta["resourceVersion"]) == rv0 + 1 and int(b["metadata"]["resourceVersion"]) == rv0 + 2
    assert store.resource_version == rv0 + 2
    assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert meta["managedFields"][0]["manager"] == "me"
    assert meta["managedFields"][0]["fieldsV1"] == {"f:data": {"f:x": {}}}
    assert "generation" not in meta  # ConfigMaps have none, as in Kubernetes
    dep = store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
                        "spec": {"replicas": 1}})
    assert dep["metadata"]["generation"] == 1


def test_generate_name(store):
    obj = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "namespace": "default"},
                        "spec": {}})
    assert obj["metadata"]["name"].startswith("web-") and len(obj["metadata"]["name"]) == 9


def test_errors_leave_store_unchanged(store):
    store.create(cm("a"))
    rv = store.resource_version
    with pytest.raises(AlreadyExists) as err:
        store.create(cm("a"))
    assert err.value.status()["message"] == 'configmaps "a" already exists'
    with pytest.raises(NotFound) as err:
        store.create(cm("a", ns="nowhere"))
    assert err.value.status()["code"] == 404 and err.value.message == 'namespaces "nowhere" not found'
    with pytest.raises(NotFound):
        store.update(cm("missing"))
    with pytest.raises(NotFound):
        store.delete("", "configmaps", "default", "missing")
    with pytest.raises(Invalid):
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}})
    with pytest.raises(NotFound):
        store.create({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert store.resource_version == rv


def test_update_conflict_generation_and_status(store):
    dep = store.create({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": 1}})
    stale = json.loads(json.dumps(dep))
    dep["spec"]["replicas"] = 2
    dep["status"] = {"replicas": 99}  # ignored: status goes through the subresource
    updated = store.update(dep)
    assert updated["metadata"]["generation"] == 2 and "status" not in updated
    stale["spec"]["replicas"] = 5
    with pytest.raises(Conflict) as err:
        store.update(stale)
    assert "the object has been modified" in err.value.message
    status = store.update({**updated, "spec": {"replicas": 7}, "status": {"replicas": 2}}, subresource="status")
    assert status["status"] == {"replicas": 2} and status["spec"]["replicas"] == 2
    assert status["metadata"]["generation"] == 2
    same = store.update(status)
    assert same["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]  # no-op write


def test_selectors(store):
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}), ("c", {})):
        store.create({**cm(name), "metadata": {"name": name, "namespace": "default", "labels": labels}})
    names = lambda sel: [o["metadata"]["name"] for o in store.list("", "configmaps", "default", label_selector=sel)]
    assert names("app=x") == ["a"] and names("app==x") == ["a"]
    assert names("app!=x") == ["b", "c"]
    assert names("app in (x, y)") == ["a", "b"]
    assert names("app notin (x)") == ["b", "c"]
    assert names("tier") == ["a"] and names("!tier") == ["b", "c"]
    assert names("app,tier=web") == ["a"]
    assert [o["metadata"]["name"] for o in store.list("", "configmaps", field_selector="metadata.name=b")] == ["b"]
    assert match_fields({"involvedObject": {"name": "p", "kind": "Pod"}}, "involvedObject.name=p,involvedObject.kind=Pod")
    assert not match_fields({"metadata": {"namespace": "a"}}, "metadata.namespace!=a")
    assert match_labels({"a": "1"}, "")
    with pytest.raises(BadRequest):
        match_labels({}, "a in b")


def test_listeners_and_delete(store):
    events: list[tuple[str, str]] = []
    remove = store.add_listener(lambda t, o: events.append((t, o["metadata"]["name"])))
    a = store.create(cm("a"))
    a["data"] = {"k": "v"}
    store.update(a)
    deleted = store.delete("", "configmaps", "default", "a")
    assert int(deleted["metadata"]["resourceVersion"]) == store.resource_version
    remove()
    store.create(cm("b"))
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_namespace_delete_removes_contents(store):
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}})
    store.create(cm("a", ns="lab"))
    store.delete("", "namespaces", None, "lab")
    assert store.get("", "configmaps", "lab", "a") is None


def test_server_side_apply(store):
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    created = store.apply({**base, "data": {"a": "1", "b": "2"}}, field_manager="alice")
    assert created["metadata"]["managedFields"][0]["operation"] == "Apply"
    store.apply({**base, "data": {"c": "3"}}, field_manager="bob")
    with pytest.raises(Conflict) as err:
        store.apply({**base, "data": {"a": "9"}}, field_manager="bob")
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "alice" using v1: .data.a'
    # alice drops b: it goes; bob's c stays
    out = store.apply({**base, "data": {"a": "1"}}, field_manager="alice")
    assert out["data"] == {"a": "1", "c": "3"}
    forced = store.apply({**base, "data": {"a": "9", "c": "3"}}, field_manager="bob", force=True)
    assert forced["data"]["a"] == "9"
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert "alice" not in owners and owners["bob"] == {"f:data": {"f:a": {}, "f:c": {}}}


def test_apply_merges_lists_by_key(store):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
           "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}}
    store.apply(svc, field_manager="a")
    other = {**svc, "spec": {"ports": [{"port": 443, "protocol": "TCP", "name": "https"}]}}
    out = store.apply(other, field_manager="b")
    assert [p["port"] for p in out["spec"]["ports"]] == [80, 443]


def test_reopen_keeps_everything(tmp_path):
    s = Store(tmp_path / "s.db")
    s.create(cm("a", k="v"))
    rv = s.resource_version
    s.close()
    s2 = Store(tmp_path / "s.db")
    assert s2.get("", "configmaps", "default", "a")["data"] == {"k": "v"}
    assert s2.resource_version == rv
    s2.close()


def test_acknowledged_writes_survive_sigkill(tmp_path):
    writer = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from agwlab.sandbox.store import Store
        s = Store(Path({str(tmp_path / "k.db")!r}))
        i = 0
        while True:
            s.create({{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {{"name": f"c{{i}}", "namespace": "default"}}, "data": {{"i": str(i)}}}})
            print(i, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    acked = -1
    while acked < 200:
        acked = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for line in proc.stdout:  # lines printed before the kill landed are acknowledged too
        acked = int(line)
    s = Store(tmp_path / "k.db")
    names = {o["metadata"]["name"] for o in s.list("", "configmaps", "default")}
    assert all(f"c{i}" in names for i in range(acked + 1))
    s.close()


def _service(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, **spec}}


def test_noop_apply_changes_nothing_even_with_other_managers(store):
    ports = [{"name": "http", "port": 80}, {"name": "grpc", "port": 9000, "protocol": "TCP"}]
    first = store.apply(_service(ports=ports), field_manager="agwlab", force=True)
    store.update({**first, "metadata": {**first["metadata"], "labels": {"team": "a"}}}, field_manager="edit")
    before = store.get("", "services", "default", "web")
    seen: list[str] = []
    store.add_listener(lambda kind, obj: seen.append(kind))
    for _ in range(3):
        again = store.apply(_service(ports=ports), field_manager="agwlab", force=True)
        assert again == before  # resourceVersion, managedFields (order and times), ports
    assert seen == []
    assert [(p["port"], p["protocol"]) for p in before["spec"]["ports"]] == [(80, "TCP"), (9000, "TCP")]
    # a real change still goes through, and keeps the manager's entry where it was
    changed = store.apply(_service(ports=ports[:1]), field_manager="agwlab", force=True)
    assert [p["port"] for p in changed["spec"]["ports"]] == [80] and seen == ["MODIFIED"]
    assert [m["manager"] for m in changed["metadata"]["managedFields"]] == ["agwlab", "edit"]


def test_apply_removes_dropped_items_by_their_key(store):
    ports = [{"name": f"p{i}", "port": 8000 + i, "protocol": "TCP", "targetPort": 9000 + i} for i in range(6)]
    store.apply(_service(ports=ports), field_manager="agwlab")
    kept = store.apply(_service(ports=ports[::2]), field_manager="agwlab")
    assert [p["port"] for p in kept["spec"]["ports"]] == [8000, 8002, 8004]
