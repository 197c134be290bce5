"""Field ownership for ``managedFields`` and server-side apply.

A *field set* is a set of paths into an object, in the segments Kubernetes' ``FieldsV1``
format uses: ``f:<field>`` for a map key, ``k:<json keys>`` for one item of an associative
list (one keyed by ``x-kubernetes-list-map-keys``), and ``.`` for "the list item itself".
Atomic lists and scalars are leaves. Which lists are associative is asked of a
``keys_for(path)`` function (path = the field names leading to the list), normally backed
by the kind's schema.

Example:
    >>> obj = {"metadata": {"labels": {"app": "x"}}, "spec": {"ports": [{"port": 80}]}}
    >>> sorted(leaves(obj, lambda p: ("port",) if p == ("spec", "ports") else None))
    [('f:metadata', 'f:labels', 'f:app'), ('f:spec', 'f:ports', 'k:{"port":80}', '.'), ('f:spec', 'f:ports', 'k:{"port":80}', 'f:port')]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "KeyDefaults",
    "KeysFor",
    "Path",
    "duplicate_keys",
    "fill_key_defaults",
    "from_fields_v1",
    "get_path",
    "leaves",
    "merge_apply",
    "remove_path",
    "to_fields_v1",
]

Path = tuple[str, ...]
KeysFor = Callable[[tuple[str, ...]], "tuple[str, ...] | None"]
KeyDefaults = Callable[[tuple[str, ...]], "dict[str, Any]"]

# Metadata that the server owns; never part of anyone's field set.
_SERVER_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def _item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict) or not all(k in item for k in keys):
        return None
    return "k:" + json.dumps({k: item[k] for k in sorted(keys)}, separators=(",", ":"), sort_keys=True)


def leaves(obj: dict, keys_for: KeysFor, *, top: bool = True) -> dict[Path, Any]:
    """Every owned leaf of ``obj`` mapped to its value (atomic values as they are).

    ``apiVersion``, ``kind`` and server-owned metadata are left out, as Kubernetes does.
    """
    out: dict[Path, Any] = {}

    def walk(node: Any, path: Path, names: tuple[str, ...]) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                if top and not path and key in ("apiVersion", "kind"):
                    continue
                if names == ("metadata",) and key in _SERVER_META:
                    continue
                walk(value, (*path, f"f:{key}"), (*names, key))
            return
        if isinstance(node, list) and node:
            keys = keys_for(names)
            if keys:
                items = [(_item_key(i, keys), i) for i in node]
                if all(k is not None for k, _ in items):
                    for k, item in items:
                        assert k is not None
                        out[(*path, k, ".")] = None
                        walk(item, (*path, k), names)
                    return
        if path:
            out[path] = node

    walk(obj, (), ())
    return out


def fill_key_defaults(obj: Any, keys_for: KeysFor, key_defaults: KeyDefaults,
                      names: tuple[str, ...] = ()) -> None:
    """Set the defaulted list-map key fields an object leaves out, in place.

    A Service port is keyed by ``(port, protocol)`` and ``protocol`` defaults to ``TCP``: an
    applied ``{"port": 80}`` must be the item the server stored as ``{"port": 80, "protocol":
    "TCP"}``, so item keys have to be computed after defaulting (as the real server does).
    ``key_defaults(names)`` gives the list at ``names`` its keys' defaults.

    Example:
        >>> o = {"spec": {"ports": [{"port": 80}]}}
        >>> fill_key_defaults(o, lambda n: ("port", "protocol") if n == ("spec", "ports") else None,
        ...                   lambda n: {"protocol": "TCP"})
        >>> o["spec"]["ports"]
        [{'port': 80, 'protocol': 'TCP'}]
    """
    if isinstance(obj, dict):
        for key, value in obj.items():
            fill_key_defaults(value, keys_for, key_defaults, (*names, key))
    elif isinstance(obj, list):
        keys = keys_for(names)
        defaults = {k: v for k, v in key_defaults(names).items() if k in keys} if keys else {}
        for item in obj:
            if isinstance(item, dict):
                for k, v in defaults.items():
                    if item.get(k) is None:
                        item[k] = v
                fill_key_defaults(item, keys_for, key_defaults, names)


def _go_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def duplicate_keys(obj: Any, keys_for: KeysFor, names: tuple[str, ...] = (), shown: str = "") -> list[str]:
    """Associative lists in ``obj`` that hold two items with the same key, as the real server says it.

    Server-side apply refuses such a configuration (``duplicate entries for key``) before
    merging anything: two items with one key cannot both be owned. Call it after
    :func:`fill_key_defaults`, so ``{"port": 80}`` and ``{"port": 80, "protocol": "TCP"}`` clash.

    Example:
        >>> ports = {"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]}}
        >>> duplicate_keys(ports, lambda n: ("port", "protocol") if n == ("spec", "ports") else None)
        ['.spec.ports: duplicate entries for key [port=80,protocol="TCP"]']
    """
    out: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += duplicate_keys(value, keys_for, (*names, key), f"{shown}.{key}")
    elif isinstance(obj, list):
        keys = keys_for(names)
        seen: set[str] = set()
        told: set[str] = set()
        for item in obj:
            if not isinstance(item, dict):
                continue
            label = ",".join(f"{k}={_go_value(item[k])}" for k in keys or () if k in item)
            if keys and label:
                if label in seen and label not in told:
                    told.add(label)
                    out.append(f"{shown}: duplicate entries for key [{label}]")
                seen.add(label)
            where = f"{shown}[{label}]" if keys and label else shown
            for key, value in item.items():
                out += duplicate_keys(value, keys_for, (*names, key), f"{where}.{key}")
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict:
    """Build the nested ``fieldsV1`` JSON for a set of leaf paths."""
    tree: dict = {}
    for path in sorted(paths):
        node = tree
        for seg in path:
            node = node.setdefault(seg, {})
    return tree


def from_fields_v1(tree: dict) -> set[Path]:
    """The leaf paths of a ``fieldsV1`` tree (inverse of :func:`to_fields_v1`)."""
    out: set[Path] = set()

    def walk(node: dict, path: Path) -> None:
        if not node:
            if path:
                out.add(path)
            return
        for seg, child in node.items():
            if seg == ".":
                out.add((*path, "."))
            else:
                walk(child if isinstance(child, dict) else {}, (*path, seg))

    walk(tree, ())
    return out


def _find_item(items: list, seg: str) -> int | None:
    want = json.loads(seg[2:])
    for i, item in enumerate(items):
        if isinstance(item, dict) and all(item.get(k) == v for k, v in want.items()):
            return i
    return None


def get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    """``(found, value)`` for a field-set path in ``obj``."""
    node = obj
    for seg in path:
        if seg == ".":
            return True, node
        if seg.startswith("f:") and isinstance(node, dict) and seg[2:] in node:
            node = node[seg[2:]]
        elif seg.startswith("k:") and isinstance(node, list):
            i = _find_item(node, seg)
            if i is None:
                return False, None
            node = node[i]
        else:
            return False, None
    return True, node


def remove_path(obj: dict, path: Path) -> None:
    """Remove the field (or list item, for a path ending in ``.``) at ``path``; prune what it empties."""
    if path and path[-1] == ".":
        path, whole_item = path[:-1], True
    else:
        whole_item = False
    trail: list[tuple[Any, Any]] = []
    node: Any = obj
    for seg in path:
        if seg.startswith("f:") and isinstance(node, dict) and seg[2:] in node:
            trail.append((node, seg[2:]))
            node = node[seg[2:]]
        elif seg.startswith("k:") and isinstance(node, list):
            i = _find_item(node, seg)
            if i is None:
                return
            trail.append((node, i))
            node = node[i]
        else:
            return
    if not trail:
        return
    if not whole_item and path[-1].startswith("k:"):
        return  # the item's fields are removed one by one; the item goes with its "." path
    parent, key = trail.pop()
    del parent[key]
    # Prune containers this removal emptied, but never the object's top-level fields.
    while trail and len(trail) > 1 and not parent:
        grand, gkey = trail.pop()
        del grand[gkey]
        parent = grand


def merge_apply(live: Any, cfg: Any, keys_for: KeysFor, names: tuple[str, ...] = ()) -> Any:
    """Merge an applied configuration into a live object (server-side apply's merge)."""
    if isinstance(live, dict) and isinstance(cfg, dict):
        out = dict(live)
        for key, value in cfg.items():
            out[key] = merge_apply(live.get(key), value, keys_for, (*names, key)) if key in live else value
        return out
    if isinstance(live, list) and isinstance(cfg, list):
        keys = keys_for(names)
        if keys:
            out_list = list(live)
            for item in cfg:
                k = _item_key(item, keys)
                idx = _find_item(out_list, k) if k else None
                if idx is None:
                    out_list.append(item)
                else:
                    out_list[idx] = merge_apply(out_list[idx], item, keys_for, names)
            return out_list
    return cfg
