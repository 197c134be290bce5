"""Discovery and OpenAPI documents: how clients learn which kinds the server has.

Legacy discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<g>/<v>``), aggregated
discovery (``apidiscovery.k8s.io/v2``), and OpenAPI v3 per group-version with component
schemas tagged ``x-kubernetes-group-version-kind`` and PATCH operations that declare
``fieldValidation`` (that is how kubectl 1.32 decides to leave validation to the server).

Example:
    >>> api_resource_list("apps", "v1")["resources"][0]["name"]
    'deployments'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from ..kinds import KindInfo, groups
from ..schemas import SCHEMA_DIR, kind_schema

__all__ = [
    "aggregated_discovery",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "openapi_v2_empty_protobuf",
    "openapi_v3_document",
    "openapi_v3_index",
]


def api_versions() -> dict:
    """``GET /api``."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def _group_entry(group: str, version: str) -> dict:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict:
    """``GET /apis``."""
    out = []
    for group, ks in groups().items():
        if group:
            out.append(_group_entry(group, ks[0].version))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


def _kinds_of(group: str, version: str) -> list[KindInfo]:
    return [k for k in groups().get(group, []) if k.version == version]


def _resource_entries(k: KindInfo) -> list[dict]:
    main: dict[str, Any] = {"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                            "kind": k.kind, "verbs": list(k.verbs)}
    if k.short_names:
        main["shortNames"] = list(k.short_names)
    if k.categories:
        main["categories"] = list(k.categories)
    main["storageVersionHash"] = hashlib.sha256(f"{k.group}/{k.version}/{k.kind}".encode()).hexdigest()[:12]
    out = [main]
    for sub in sorted(k.subresources):
        if sub == "status":
            out.append({"name": f"{k.plural}/status", "singularName": "", "namespaced": k.namespaced,
                        "kind": k.kind, "verbs": ["get", "patch", "update"]})
        elif sub == "scale":
            out.append({"name": f"{k.plural}/scale", "singularName": "", "namespaced": k.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale",
                        "verbs": ["get", "patch", "update"]})
        elif sub in _CONNECT:
            kind, verbs = _CONNECT[sub]
            out.append({"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                        "kind": kind, "verbs": list(verbs)})
    return out


# Subresources a client connects to (kind of their options object, verbs), as a real server lists them.
_CONNECT = {"log": ("Pod", ("get",)), "portforward": ("PodPortForwardOptions", ("create", "get")),
            "proxy": ("ServiceProxyOptions", ("create", "delete", "get", "patch", "update"))}


def api_resource_list(group: str, version: str) -> dict | None:
    """``GET /api/v1`` or ``/apis/<group>/<version>``; ``None`` if the server has no such version."""
    ks = _kinds_of(group, version)
    if not ks:
        return None
    resources = [r for k in ks for r in _resource_entries(k)]
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def aggregated_discovery(core: bool) -> dict:
    """``GET /api`` or ``/apis`` as ``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``."""
    items = []
    for group, ks in groups().items():
        if bool(group) == core:
            continue
        resources = []
        for k in ks:
            entry: dict[str, Any] = {
                "resource": k.plural, "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
                "scope": "Namespaced" if k.namespaced else "Cluster", "singularResource": k.singular,
                "verbs": list(k.verbs)}
            if k.short_names:
                entry["shortNames"] = list(k.short_names)
            if k.categories:
                entry["categories"] = list(k.categories)
            subs = []
            for sub in sorted(k.subresources):
                kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"} if sub == "scale" else \
                    {"group": k.group, "version": k.version, "kind": _CONNECT.get(sub, (k.kind,))[0]}
                subs.append({"subresource": sub, "responseKind": kind,
                             "verbs": list(_CONNECT[sub][1]) if sub in _CONNECT else ["get", "patch", "update"]})
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": [{"version": ks[0].version, "resources": resources, "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


# ------------------------------------------------------------------------ OpenAPI v3


def _schema_name(k: KindInfo) -> str:
    if k.custom:
        return ".".join(reversed(k.group.split("."))) + f".{k.version}.{k.kind}"
    prefix = "io.k8s.api.core" if not k.group else f"io.k8s.api.{k.group}"
    return f"{prefix}.{k.version}.{k.kind}"


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _params(names: tuple[str, ...]) -> list[dict]:
    return [{"name": n, "in": "query", "schema": {"type": "boolean" if n == "force" else "string",
                                                  "uniqueItems": True}} for n in names]


def _op(k: KindInfo, action: str, ref: str, params: tuple[str, ...]) -> dict:
    body = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    if action == "patch":
        # Custom resources do not take strategic merge patches; kubectl reads this list.
        types = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
        if not k.custom:
            types.append("application/strategic-merge-patch+json")
        body = {"content": {t: {"schema": {"type": "object"}} for t in types}}
    op: dict[str, Any] = {
        "operationId": f"{action}{k.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
        "parameters": _params(params),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}},
    }
    if action in ("put", "patch", "post"):
        op["requestBody"] = body
    return op


def _document(group: str, version: str, server_version: str) -> str:
    # Not cached: ~10 ms to build, and kubectl caches it by the index's hash (the documents
    # would hold ~2 MB, and the built-in kinds' parsed schemas several more, for nothing).
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for k in _kinds_of(group, version):
        name = _schema_name(k)
        schema = dict(kind_schema(k.group, k.plural) or {"type": "object"})
        props = dict(schema.get("properties") or {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        schema["properties"] = props
        schema["x-kubernetes-group-version-kind"] = [{"group": k.group, "kind": k.kind, "version": k.version}]
        schemas[name] = schema
        ref = f"#/components/schemas/{name}"
        base = f"/{_gv_key(group, version)}" + ("/namespaces/{namespace}" if k.namespaced else "")
        collection = f"{base}/{k.plural}"
        item = f"{collection}/{{name}}"
        paths[collection] = {"get": _op(k, "list", ref, ("pretty",)),
                             "post": _op(k, "post", ref, ("dryRun", "fieldManager", "fieldValidation", "pretty"))}
        paths[item] = {"get": _op(k, "get", ref, ("pretty",)),
                       "put": _op(k, "put", ref, ("dryRun", "fieldManager", "fieldValidation", "pretty")),
                       "patch": _op(k, "patch", ref, _QUERY_PARAMS),
                       "delete": _op(k, "delete", ref, ("dryRun", "pretty"))}
        if "status" in k.subresources:
            paths[f"{item}/status"] = {"get": _op(k, "get", ref, ("pretty",)),
                                       "put": _op(k, "put", ref, ("dryRun", "fieldManager", "fieldValidation")),
                                       "patch": _op(k, "patch", ref, _QUERY_PARAMS)}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": server_version},
           "paths": paths, "components": {"schemas": schemas}}
    return json.dumps(doc, separators=(",", ":"))


def openapi_v3_document(group: str, version: str, server_version: str) -> bytes | None:
    """The OpenAPI v3 document of one group-version (JSON bytes), or ``None``."""
    if not _kinds_of(group, version):
        return None
    return _document(group, version, server_version).encode()


@functools.cache
def _document_hash(group: str, version: str, server_version: str) -> str:
    """A hash of everything a document is built from (this module, the kinds, their schema files).

    It changes whenever the document would, without building the document.
    """
    digest = hashlib.sha512(Path(__file__).read_bytes())
    digest.update(server_version.encode())
    for k in _kinds_of(group, version):
        digest.update(json.dumps(dataclasses.asdict(k), sort_keys=True, default=sorted).encode())
        try:
            digest.update((SCHEMA_DIR / f"{k.plural}.{k.group or 'core'}.json").read_bytes())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()[:128].upper()


def openapi_v3_index(server_version: str) -> dict:
    """``GET /openapi/v3``: one entry per group-version, with a content hash."""
    paths = {}
    for group, ks in groups().items():
        version = ks[0].version
        digest = _document_hash(group, version, server_version)
        key = _gv_key(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def _pb_string(field: int, value: bytes) -> bytes:
    return bytes([field << 3 | 2, len(value)]) + value


def openapi_v2_empty_protobuf(server_version: str) -> bytes:
    """An OpenAPI v2 document with no definitions, in the protobuf form kubectl asks for.

    (gnostic ``openapi_v2.Document``: ``swagger`` = 1, ``info`` = 2 with ``title`` = 1, ``version`` = 2.)
    """
    info = _pb_string(1, b"Kubernetes") + _pb_string(2, server_version.encode())
    return _pb_string(1, b"2.0") + _pb_string(2, info)
