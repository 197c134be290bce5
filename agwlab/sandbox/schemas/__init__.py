"""Structural OpenAPI v3 schemas of the served kinds, shipped as data.

One JSON file per kind, ``<plural>.<group>.json`` (``core`` for the core group), holding
``{"schema": <openAPIV3Schema>}``. The custom kinds' schemas are the real CRDs'
``openAPIV3Schema`` (see ``NOTICE``); the built-in kinds' are derived from the
``kubernetes`` client's model classes by ``generate.py`` in this directory.

Example:
    >>> s = kind_schema("agentgateway.dev", "agentgatewaybackends")
    >>> "spec" in s["properties"]
    True
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..kinds import by_resource

__all__ = ["SCHEMA_DIR", "keys_for", "kind_schema", "list_key_defaults", "schema_at"]

SCHEMA_DIR = Path(__file__).resolve().parent


def _file(group: str, plural: str) -> Path:
    return SCHEMA_DIR / f"{plural}.{group or 'core'}.json"


@functools.cache
def kind_schema(group: str, plural: str) -> dict | None:
    """The kind's structural schema (do not modify it), or ``None`` when none ships."""
    path = _file(group, plural)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["schema"]


def schema_at(schema: dict | None, names: tuple[str, ...]) -> dict | None:
    """The sub-schema at a path of field names (list items are stepped through)."""
    node = schema
    for name in names:
        while node is not None and node.get("type") == "array":
            node = node.get("items")
        if node is None:
            return None
        props = node.get("properties")
        if props and name in props:
            node = props[name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


@functools.cache
def _keys(group: str, plural: str, names: tuple[str, ...]) -> tuple[str, ...] | None:
    node = schema_at(kind_schema(group, plural), names)
    if not node or node.get("type") != "array":
        return None
    if node.get("x-kubernetes-list-type") == "map":
        keys = node.get("x-kubernetes-list-map-keys")
        return tuple(keys) if keys else None
    key = node.get("x-kubernetes-patch-merge-key")
    return (key,) if key else None


def keys_for(group: str, plural: str):
    """A ``names -> merge keys`` function for one kind (``None`` for atomic lists)."""
    return lambda names: _keys(group, plural, tuple(names))


# Built-in list-map keys the server defaults (Service ports, container ports: both keyed
# by port and protocol). Custom kinds declare theirs with a schema ``default:``.
_BUILTIN_KEY_DEFAULTS = {"protocol": "TCP"}


@functools.cache
def _key_defaults(group: str, plural: str, names: tuple[str, ...]) -> dict[str, Any]:
    node = schema_at(kind_schema(group, plural), names)
    if not node or node.get("type") != "array" or node.get("x-kubernetes-list-type") != "map":
        return {}
    props = (node.get("items") or {}).get("properties") or {}
    info = by_resource(group, plural)
    out: dict[str, Any] = {}
    for key in node.get("x-kubernetes-list-map-keys") or []:
        sub = props.get(key) or {}
        if "default" in sub:
            out[key] = sub["default"]
        elif info is not None and not info.custom and key in _BUILTIN_KEY_DEFAULTS:
            out[key] = _BUILTIN_KEY_DEFAULTS[key]
    return out


def list_key_defaults(group: str, plural: str) -> Callable[[tuple[str, ...]], dict[str, Any]]:
    """A ``names -> {key: default}`` function: the defaults of a kind's list-map keys.

    Example:
        >>> list_key_defaults("", "services")(("spec", "ports"))
        {'protocol': 'TCP'}
    """
    return lambda names: _key_defaults(group, plural, tuple(names))
