"""CRD objects for the custom kinds."""

from __future__ import annotations

from agwlab.sandbox.apiserver.crds import crd_object, install_crds
from agwlab.sandbox.kinds import all_kinds, by_kind
from agwlab.sandbox.store import Store


def test_crd_object_matches_the_kind():
    crd = crd_object(by_kind("gateway.networking.k8s.io/v1", "Gateway"))
    assert crd["metadata"]["name"] == "gateways.gateway.networking.k8s.io"
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.6.1"
    assert crd["spec"]["names"]["shortNames"] == ["gtw"] and crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1" and "spec" in version["schema"]["openAPIV3Schema"]["properties"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Class", "Address", "Programmed", "Age"]
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}


def test_install_is_idempotent(tmp_path):
    store = Store(tmp_path / "s.db")
    install_crds(store)
    rv = store.resource_version
    install_crds(store)
    assert store.resource_version == rv
    names = {o["metadata"]["name"] for o in store.list("apiextensions.k8s.io", "customresourcedefinitions")}
    assert names == {f"{k.plural}.{k.group}" for k in all_kinds() if k.custom}
    store.close()
