"""The CustomResourceDefinitions of the sandbox's custom kinds, as objects clients can read.

``kubectl get crds``, ``kubectl wait --for condition=established crd/…`` and
``kubectl get crd X -o yaml`` work as on a cluster where the Gateway API and agentgateway
CRDs are installed. The kinds themselves are fixed: storing another CRD object does not
add a kind.

Example:
    >>> from agwlab.sandbox.kinds import by_kind
    >>> crd_object(by_kind("agentgateway.dev/v1alpha1", "AgentgatewayBackend"))["metadata"]["name"]
    'agentgatewaybackends.agentgateway.dev'
"""

from __future__ import annotations

import json
from typing import Any

from ..kinds import KindInfo, all_kinds
from ..schemas import SCHEMA_DIR, kind_schema
from ..store import Store

__all__ = ["crd_object", "install_crds"]

_BUNDLE = "gateway.networking.k8s.io/bundle-version"


def crd_object(info: KindInfo) -> dict:
    """The CustomResourceDefinition for one custom kind (spec and an Established status)."""
    names: dict[str, Any] = {"kind": info.kind, "listKind": info.list_kind, "plural": info.plural, "singular": info.singular}
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    columns = []
    for c in info.printer_columns:
        col: dict[str, str | int] = {"jsonPath": c.json_path, "name": c.name, "type": c.type}
        if c.description:
            col["description"] = c.description
        if c.priority:
            col["priority"] = c.priority
        columns.append(col)
    version = {"name": info.version, "served": True, "storage": True,
               "schema": {"openAPIV3Schema": kind_schema(info.group, info.plural) or {"type": "object"}},
               "subresources": {"status": {}} if "status" in info.subresources else {},
               "additionalPrinterColumns": columns}
    meta: dict = {"name": f"{info.plural}.{info.group}"}
    source = json.loads((SCHEMA_DIR / f"{info.plural}.{info.group}.json").read_text()).get("bundleVersion")
    if source:
        meta["annotations"] = {_BUNDLE: source, "gateway.networking.k8s.io/channel": "standard"}
    condition = {"lastTransitionTime": "1970-01-01T00:00:00Z", "status": "True"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta,
        "spec": {"group": info.group, "names": names,
                 "scope": "Namespaced" if info.namespaced else "Cluster", "versions": [version],
                 "conversion": {"strategy": "None"}},
        "status": {"acceptedNames": names, "storedVersions": [info.version],
                   "conditions": [{**condition, "type": "NamesAccepted", "reason": "NoConflicts",
                                   "message": "no conflicts found"},
                                  {**condition, "type": "Established", "reason": "InitialNamesAccepted",
                                   "message": "the initial names have been accepted"}]},
    }


def install_crds(store: Store) -> None:
    """Store the CRD objects of the custom kinds, or bring stored ones up to date."""
    for info in all_kinds():
        if not info.custom:
            continue
        want = crd_object(info)
        have = store.get("apiextensions.k8s.io", "customresourcedefinitions", None, want["metadata"]["name"])
        if have is None:
            store.create(want, field_manager="agwlab-sandbox")
        elif have.get("spec") != want["spec"]:
            have["spec"] = want["spec"]
            store.update(have, field_manager="agwlab-sandbox")
