"""Watch semantics: resume, expiry, bookmarks, initial events, selector transitions."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest

from agwlab.sandbox.apiserver.watch import TooOld, WatchHub
from agwlab.sandbox.store import Store

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def http(apiserver):
    ctx = ssl.create_default_context(cafile=str(apiserver.ca_cert))
    with httpx.Client(base_url=apiserver.url, verify=ctx, timeout=10,
                      headers={"Authorization": f"Bearer {apiserver.token}"}) as c:
        yield c


def cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def events(http, params: dict, count: int) -> list[dict]:
    out = []
    with http.stream("GET", CMS, params={"watch": "1", "timeoutSeconds": "5", **params}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line:
                out.append(json.loads(line))
            if len(out) == count:
                break
    return out


def test_resume_from_resource_version(http):
    rv = http.post(CMS, json=cm("a")).json()["metadata"]["resourceVersion"]
    http.post(CMS, json=cm("b"))
    http.delete(CMS + "/a")
    got = events(http, {"resourceVersion": rv}, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "b"), ("DELETED", "a")]


def test_initial_events_and_bookmark(http):
    http.post(CMS, json=cm("a"))
    got = events(http, {"sendInitialEvents": "true", "allowWatchBookmarks": "true",
                        "resourceVersionMatch": "NotOlderThan"}, 2)
    assert got[0]["type"] == "ADDED" and got[0]["object"]["metadata"]["name"] == "a"
    assert got[1]["type"] == "BOOKMARK"
    assert got[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_label_selector_transitions(http):
    rv = http.post(CMS, json=cm("a", app="x")).json()["metadata"]["resourceVersion"]
    http.patch(CMS + "/a", json={"metadata": {"labels": {"app": "y"}}},
               headers={"Content-Type": "application/merge-patch+json"})
    http.patch(CMS + "/a", json={"metadata": {"labels": {"app": "x"}}},
               headers={"Content-Type": "application/merge-patch+json"})
    got = events(http, {"resourceVersion": str(int(rv) - 1), "labelSelector": "app=x"}, 3)
    assert [e["type"] for e in got] == ["ADDED", "DELETED", "ADDED"]


def test_table_watch(http):
    http.post(CMS, json=cm("a"))
    got = []
    with http.stream("GET", CMS, params={"watch": "1", "timeoutSeconds": "5"},
                     headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as resp:
        for line in resp.iter_lines():
            got.append(json.loads(line))
            break
    assert got[0]["object"]["kind"] == "Table" and got[0]["object"]["rows"][0]["cells"][0] == "a"


def test_too_old_resource_version(tmp_path):
    store = Store(tmp_path / "s.db")
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})
    hub = WatchHub(store)  # a fresh server keeps no history from before it started
    with pytest.raises(TooOld):
        hub.open("", "configmaps", None, lambda o: True, since=1)
    _watch, replay = hub.open("", "configmaps", None, lambda o: True, since=store.resource_version)
    assert replay == []
    hub.close()
    store.close()
