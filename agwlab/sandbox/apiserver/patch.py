"""The three patch formats of the Kubernetes API.

* JSON merge patch (RFC 7386): ``application/merge-patch+json``
* JSON patch (RFC 6902): ``application/json-patch+json``
* strategic merge patch: ``application/strategic-merge-patch+json`` — lists with a merge
  key merge item by item, and the ``$patch``, ``$retainKeys``, ``$setElementOrder/…`` and
  ``$deleteFromPrimitiveList/…`` directives kubectl sends are honoured.

Example:
    >>> merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}})
    {'a': 1, 'b': {'d': 3}}
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..fieldsets import KeyDefaults, KeysFor
from ..store import BadRequest

__all__ = ["json_patch", "merge_patch", "strategic_merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; returns the result (inputs untouched)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f"the server rejected our request due to an error in our request: invalid JSON "
                         f"pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    node = doc
    for p in parts:
        if isinstance(node, list):
            try:
                node = node[int(p)]
            except (ValueError, IndexError):
                raise BadRequest(f"the server rejected our request: path element {p!r} not found") from None
        elif isinstance(node, dict) and p in node:
            node = node[p]
        else:
            raise BadRequest(f"the server rejected our request due to an error in our request: "
                             f"doc is missing path: {'/' + '/'.join(parts)}")
    return node


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch; returns the result.

    Raises:
        BadRequest: the patch is malformed or a path or ``test`` fails.
    """
    if not isinstance(ops, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise BadRequest("the server rejected our request due to an error in our request: "
                             "each JSON patch operation needs an \"op\"")
        kind, parts = op["op"], _pointer(op.get("path", ""))

        def put(doc: Any, parts: list[str], value: Any, insert: bool, op: dict = op) -> Any:
            if not parts:
                return value
            parent = _walk(doc, parts[:-1])
            last = parts[-1]
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if insert:
                    parent.insert(idx, value)
                else:
                    parent[idx] = value
            elif isinstance(parent, dict):
                if not insert and last not in parent:
                    raise BadRequest(f"the server rejected our request due to an error in our request: "
                                     f"replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = value
            return doc

        def take(doc: Any, parts: list[str], op: dict = op) -> Any:
            parent = _walk(doc, parts[:-1])
            last = parts[-1]
            if isinstance(parent, list):
                return parent.pop(int(last))
            if isinstance(parent, dict) and last in parent:
                return parent.pop(last)
            raise BadRequest(f"the server rejected our request due to an error in our request: "
                             f"remove operation does not apply: doc is missing path: {op['path']}")

        if kind == "add":
            doc = put(doc, parts, copy.deepcopy(op.get("value")), True)
        elif kind == "replace":
            doc = put(doc, parts, copy.deepcopy(op.get("value")), False)
        elif kind == "remove":
            take(doc, parts)
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = take(doc, src) if kind == "move" else copy.deepcopy(_walk(doc, src))
            doc = put(doc, parts, value, True)
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise BadRequest(f"the server rejected our request due to an error in our request: "
                                 f"testing value {op['path']} failed")
        else:
            raise BadRequest(f"Unexpected kind: {kind}")
    return doc


def _no_defaults(names: tuple[str, ...]) -> dict[str, Any]:
    return {}


def strategic_merge_patch(target: Any, patch: Any, keys_for: KeysFor, names: tuple[str, ...] = (),
                          key_defaults: KeyDefaults = _no_defaults) -> Any:
    """Apply a strategic merge patch; ``keys_for(names)`` gives a list's merge key(s).

    Items of a list keyed by several fields (a Service port: ``port`` and ``protocol``) match
    on the merge key and on every other key the patch item names, a stored item's missing key
    counting as its default (``key_defaults(names)``): ``{"port": 53, "protocol": "UDP"}`` is
    a new item next to the TCP port 53, not a change to it. kubectl sends only the merge key
    for an item whose other keys did not change, so an item without them matches by merge key.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    _check_directives(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in (value or [])]
            continue
        if value is None:
            out.pop(key, None)
            continue
        sub_names = (*names, key)
        current = out.get(key)
        if isinstance(value, list):
            out[key] = _merge_list(current, value, keys_for, sub_names, key_defaults)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(current, value, keys_for, sub_names, key_defaults)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = value
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _reorder(out[field], order, keys_for((*names, field)))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _check_directives(patch: dict) -> None:
    """Refuse malformed directives as the real server's strategic-merge code does."""
    kind = patch.get("$patch")
    if kind is not None and kind not in ("replace", "merge", "delete"):
        raise BadRequest(f"unknown patch type: {kind} in map: {json.dumps(patch, sort_keys=True)}")
    if "$retainKeys" in patch and not isinstance(patch["$retainKeys"], list):
        raise BadRequest("invalid patch format of retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") and not isinstance(value, list):
            raise BadRequest("invalid patch format of setElementOrder list")
        if key.startswith("$deleteFromPrimitiveList/") and not isinstance(value, list):
            raise BadRequest("invalid patch format of primitive list")


def _merge_list(current: Any, patch: list, keys_for: KeysFor, names: tuple[str, ...],
                key_defaults: KeyDefaults) -> list:
    keys = keys_for(names)

    def sub(target: Any, item: Any) -> Any:
        return strategic_merge_patch(target, item, keys_for, names, key_defaults)

    for item in patch:
        if isinstance(item, dict):
            _check_directives(item)
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if not keys or not isinstance(current, list):
        return [sub(None, i) if isinstance(i, dict) else copy.deepcopy(i)
                for i in patch if not (isinstance(i, dict) and i.get("$patch") == "delete")]
    key = keys[0]
    defaults = key_defaults(names)

    def same(cur: Any, item: dict) -> bool:
        if not isinstance(cur, dict) or cur.get(key) != item.get(key):
            return False
        return all(cur.get(k, defaults.get(k)) == item[k] for k in keys[1:] if k in item)

    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            raise BadRequest(f"unable to find api field in struct for list item {json.dumps(item)}")
        if item.get("$patch") == "delete":
            # kubectl names a deleted item by its merge key alone: every item with it goes.
            out = [cur for cur in out if not same(cur, item)]
            continue
        pos = next((i for i, cur in enumerate(out) if same(cur, item)), None)
        if pos is None:
            out.append(sub(None, item))
        else:
            out[pos] = sub(out[pos], item)
    return out


def _reorder(items: list, order: list, keys: tuple[str, ...] | None) -> list:
    if keys:
        k = keys[0]
        rank = {json.dumps(o.get(k) if isinstance(o, dict) else o): i for i, o in enumerate(order)}
        ident = (lambda x: json.dumps(x.get(k) if isinstance(x, dict) else x))
    else:
        rank = {json.dumps(o): i for i, o in enumerate(order)}
        ident = (lambda x: json.dumps(x))
    return sorted(items, key=lambda x: rank.get(ident(x), len(rank)))
