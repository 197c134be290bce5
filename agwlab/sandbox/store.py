"""The sandbox's object store: what etcd is to a real cluster.

Objects are kept as JSON in SQLite (WAL journal) and in an in-memory index for fast
reads. Every write bumps one global ``resourceVersion`` counter and is committed before
the call returns, so an acknowledged write survives a killed process. The store does the
metadata bookkeeping a real API server does (uid, resourceVersion, generation,
creationTimestamp, managedFields, generateName) and tells listeners about each committed
write; validation and defaulting happen before (see ``agwlab.sandbox.apiserver.validation``).

Everything runs on one asyncio event loop, so the store is synchronous and not
thread-safe by design.

Example:
    >>> store = Store(Path("/tmp/x/store.db"))                          # doctest: +SKIP
    >>> store.create({"apiVersion": "v1", "kind": "ConfigMap",
    ...               "metadata": {"name": "c", "namespace": "default"}})  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import json
import logging
import random
import re
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import fieldsets
from . import kinds as _kinds
from .schemas import keys_for, list_key_defaults

__all__ = [
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Invalid",
    "NotFound",
    "Store",
    "StoreError",
    "UnmergeableApply",
    "match_fields",
    "match_labels",
    "now_rfc3339",
]

log = logging.getLogger(__name__)

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Kinds whose objects carry metadata.generation (those with a desired state to observe).
_NO_GENERATION = {("", "configmaps"), ("", "secrets"), ("", "events"), ("", "namespaces"),
                  ("", "endpoints"), ("", "pods")}
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MISSING = object()


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (UTC, seconds, ``Z``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StoreError(Exception):
    """A refused request; carries what the API server needs for a ``Status``."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def status(self) -> dict:
        """The Kubernetes ``Status`` object for this error."""
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if not self.reason:
            del out["reason"]  # Go's omitempty: kubectl then prints "Error from server: <message>"
        if self.details:
            out["details"] = self.details
        return out


def _details(info: _kinds.KindInfo | None, name: str, **extra: Any) -> dict:
    d: dict[str, Any] = {"name": name}
    if info is not None:
        if info.group:
            d["group"] = info.group
        d["kind"] = info.plural
    d.update(extra)
    return d


class NotFound(StoreError):
    """404: the object (or its namespace) does not exist."""

    code = 404
    reason = "NotFound"

    @classmethod
    def of(cls, info: _kinds.KindInfo | None, name: str, resource: str | None = None) -> NotFound:
        res = resource or (info.resource if info else "")
        return cls(f'{res} "{name}" not found', details=_details(info, name))


class AlreadyExists(StoreError):
    """409: an object with this name already exists."""

    code = 409
    reason = "AlreadyExists"

    @classmethod
    def of(cls, info: _kinds.KindInfo, name: str) -> AlreadyExists:
        return cls(f'{info.resource} "{name}" already exists', details=_details(info, name))


class Conflict(StoreError):
    """409: a stale resourceVersion, or a server-side apply conflict."""

    code = 409
    reason = "Conflict"

    @classmethod
    def stale(cls, info: _kinds.KindInfo, name: str) -> Conflict:
        return cls(f'Operation cannot be fulfilled on {info.resource} "{name}": the object has been '
                   "modified; please apply your changes to the latest version and try again",
                   details=_details(info, name))


class Invalid(StoreError):
    """422: the object breaks the kind's rules; ``causes`` name the fields."""

    code = 422
    reason = "Invalid"

    @classmethod
    def of(cls, info: _kinds.KindInfo | None, kind: str, name: str,
           causes: list[dict[str, str]]) -> Invalid:
        """Build the real API server's message: ``Kind.group "name" is invalid: field: msg, …``."""
        qualified = f"{kind}.{info.group}" if info and info.group else kind
        text = ", ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"]
                         for c in causes)
        if len(causes) > 1:
            text = "[" + text + "]"
        details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
        if info and info.group:
            details["group"] = info.group
        return cls(f'{qualified} "{name}" is invalid: {text}', details=details)


class UnmergeableApply(StoreError):
    """500 without a reason: an applied configuration the merge cannot take (as the real server).

    The real server fails while building the typed object, before any validation, and
    answers with a bare error (no ``reason``), which kubectl shows as
    ``Error from server: failed to create typed patch object (...)``.
    """

    code = 500
    reason = ""

    @classmethod
    def of(cls, info: _kinds.KindInfo, namespace: str | None, name: str, problems: list[str]) -> UnmergeableApply:
        gv = f"{info.group}/{info.version}" if info.group else f"/{info.version}"
        where = f"{namespace or ''}/{name}; {gv}, Kind={info.kind}"
        text = problems[0] if len(problems) == 1 else "errors:\n" + "\n".join(f"  {p}" for p in problems)
        return cls(f"failed to create typed patch object ({where}): {text}")


class BadRequest(StoreError):
    """400: the request itself is malformed."""

    code = 400
    reason = "BadRequest"


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _spec_part(obj: dict) -> dict:
    """What generation tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


# ---------------------------------------------------------------- selectors

_SEL_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_SEL_OP = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_selector(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in (p.strip() for p in parts) if p]


def match_labels(labels: dict[str, str], selector: str | None) -> bool:
    """Whether ``labels`` satisfy a Kubernetes label selector string.

    Supports ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` and ``!k``.

    Raises:
        BadRequest: the selector cannot be parsed.
    """
    if not selector:
        return True
    if not isinstance(labels, dict):
        labels = {}  # an object stored with malformed labels matches no label, and breaks no list
    for term in _split_selector(selector):
        m = _SEL_OP.match(term)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                if labels.get(key) == value:
                    return False
            elif labels.get(key) != value:
                return False
            continue
        m = _SEL_SET.match(term)
        if not m:
            raise BadRequest(f"unable to parse requirement: {term!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise BadRequest(f"unable to parse requirement: {term!r}")
            vals = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in" and labels.get(key) not in vals:
                return False
            if op == "notin" and key in labels and labels[key] in vals:
                return False
        elif neg:
            if key in labels:
                return False
        elif key not in labels:
            return False
    return True


def _field_value(obj: dict, dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def match_fields(obj: dict, selector: str | None) -> bool:
    """Whether ``obj`` satisfies a field selector (``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-joined).

    Raises:
        BadRequest: the selector cannot be parsed.
    """
    if not selector:
        return True
    for term in _split_selector(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not m:
            raise BadRequest(f"invalid selector: {selector!r}; can't understand {term!r}")
        path, op, value = m.groups()
        actual = _field_value(obj, path)
        if (actual == value) != (op != "!="):
            return False
    return True


# ---------------------------------------------------------------- the store


class Store:
    """Durable object storage with Kubernetes metadata semantics.

    Args:
        path: the SQLite file (created with its parent directory when missing).
    """

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit is in the OS before we return, so a killed process
        # loses nothing (only a power cut could lose the last commits).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS objects (grp TEXT NOT NULL, plural TEXT NOT NULL, "
                         "ns TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, "
                         "PRIMARY KEY (grp, plural, ns, name))")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self._db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        self._objects: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
        # parsed objects for readers that promise not to mutate (copy=False), keyed like
        # _objects and valid while the stored JSON text is the very same string
        self._parsed: dict[tuple[str, str, str, str], tuple[str, dict]] = {}
        for grp, plural, ns, name, body in self._db.execute("SELECT grp, plural, ns, name, body FROM objects"):
            self._objects.setdefault((grp, plural), {})[(ns, name)] = body
        self._listeners: list[Callable[[str, dict], None]] = []
        for ns in _SYSTEM_NAMESPACES:
            if self.get("", "namespaces", None, ns) is None:
                self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
                            field_manager="kube-apiserver")

    def close(self) -> None:
        """Close the database (idempotent)."""
        with contextlib.suppress(sqlite3.Error):  # already closed
            self._db.close()

    @property
    def resource_version(self) -> int:
        """The latest committed resourceVersion."""
        return self._rv

    # ---------------------------------------------------------- reads

    def get(self, group: str, plural: str, namespace: str | None, name: str, *, copy: bool = True) -> dict | None:
        """One object (a fresh copy, or with ``copy=False`` a shared one the caller must not
        change), or ``None``."""
        body = self._objects.get((group, plural), {}).get((namespace or "", name))
        if body is None:
            return None
        return json.loads(body) if copy else self._view(group, plural, namespace or "", name, body)

    def _view(self, group: str, plural: str, ns: str, name: str, body: str) -> dict:
        cached = self._parsed.get((group, plural, ns, name))
        if cached is not None and cached[0] is body:
            return cached[1]
        obj = json.loads(body)
        self._parsed[(group, plural, ns, name)] = (body, obj)
        return obj

    def list(self, group: str, plural: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None,
             copy: bool = True) -> list[dict]:
        """Objects of one resource, sorted by namespace and name; ``namespace=None`` means all.

        ``copy=False`` returns shared objects the caller must not change (the controller's
        many read-only passes would otherwise parse every object every time).

        Raises:
            BadRequest: a selector cannot be parsed.
        """
        out = []
        for (ns, name), body in sorted(self._objects.get((group, plural), {}).items()):
            if namespace and ns != namespace:
                continue
            obj = json.loads(body) if copy else self._view(group, plural, ns, name, body)
            if label_selector and not match_labels(obj.get("metadata", {}).get("labels") or {},
                                                   label_selector):
                continue
            if field_selector and not match_fields(obj, field_selector):
                continue
            out.append(obj)
        return out

    # ---------------------------------------------------------- writes

    def _info(self, obj: dict) -> _kinds.KindInfo:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise BadRequest("Object 'Kind' is missing in the request body" if not kind
                             else "Object 'apiVersion' is missing in the request body")
        info = _kinds.by_kind(api_version, kind)
        if info is None:
            raise NotFound(f'the server could not find the requested resource ({kind} {api_version})')
        return info

    def _key(self, info: _kinds.KindInfo, obj: dict) -> tuple[str, str]:
        meta = _meta(obj)
        name = meta.get("name")
        if not name:
            raise Invalid.of(info, obj.get("kind", info.kind), "",
                             [{"reason": "FieldValueRequired", "field": "metadata.name",
                               "message": "Required value: name or generateName is required"}])
        if info.namespaced:
            ns = meta.get("namespace")
            if not ns:
                raise BadRequest("the namespace of the provided object does not match the namespace "
                                 "sent on the request")
            return ns, name
        meta.pop("namespace", None)
        return "", name

    def _commit(self, info: _kinds.KindInfo, key: tuple[str, str], obj: dict | None,
                rv: int) -> None:
        ns, name = key
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if obj is None:
                self._db.execute("DELETE FROM objects WHERE grp=? AND plural=? AND ns=? AND name=?",
                                 (info.group, info.plural, ns, name))
            else:
                body = json.dumps(obj, separators=(",", ":"))
                self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                                 (info.group, info.plural, ns, name, body))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(rv),))
        self._rv = rv
        bucket = self._objects.setdefault((info.group, info.plural), {})
        if obj is None:
            bucket.pop(key, None)
            self._parsed.pop((info.group, info.plural, *key), None)
        else:
            bucket[key] = body

    def _notify(self, event: str, obj: dict) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, json.loads(json.dumps(obj)))
            except Exception:  # a broken listener must not undo a committed write
                log.exception("store listener failed on %s", event)

    def _require_namespace(self, info: _kinds.KindInfo, ns: str) -> None:
        if info.namespaced and self.get("", "namespaces", None, ns) is None:
            raise NotFound(f'namespaces "{ns}" not found',
                           details={"name": ns, "kind": "namespaces"})

    def _managed_entry(self, info: _kinds.KindInfo, manager: str, operation: str, paths: set,
                       subresource: str | None) -> dict:
        entry = {"manager": manager, "operation": operation, "apiVersion": info.api_version,
                 "time": now_rfc3339(), "fieldsType": "FieldsV1",
                 "fieldsV1": fieldsets.to_fields_v1(paths)}
        if subresource:
            entry["subresource"] = subresource
        return entry

    def _update_managed(self, info: _kinds.KindInfo, old: dict | None, new: dict, manager: str,
                        subresource: str | None) -> builtins.list[dict]:
        """managedFields after an Update: the manager takes what changed; others lose it."""
        keys = keys_for(info.group, info.plural)
        new_leaves = fieldsets.leaves(new, keys)
        old_leaves = fieldsets.leaves(old, keys) if old else {}
        changed = {p for p, v in new_leaves.items() if p not in old_leaves or old_leaves[p] != v}
        present = set(new_leaves)
        entries: list[dict] = []
        mine: set = set(changed)
        slot = None  # keep the manager's entry where it was, so a no-op write stays a no-op
        for entry in (old or {}).get("metadata", {}).get("managedFields") or []:
            paths = fieldsets.from_fields_v1(entry.get("fieldsV1") or {}) & present
            same = (entry.get("manager") == manager and entry.get("operation") == "Update"
                    and entry.get("subresource") == subresource)
            if same:
                mine |= paths
                slot = len(entries)
                entries.append(entry)
                continue
            paths -= changed
            if paths:
                entries.append(dict(entry, fieldsV1=fieldsets.to_fields_v1(paths)))
        if mine:
            new_entry = self._managed_entry(info, manager, "Update", mine, subresource)
            if slot is None:
                entries.append(new_entry)
            else:
                entries[slot] = new_entry
        elif slot is not None:
            del entries[slot]
        return entries

    def create(self, obj: dict, *, field_manager: str = "agwlab-sandbox") -> dict:
        """Store a new object and return it as stored.

        Raises:
            AlreadyExists: an object of that kind and name exists.
            NotFound: the kind is not served or its namespace does not exist.
            Invalid: no name and no generateName.
        """
        return self._create(obj, field_manager, apply=False)

    def _create(self, obj: dict, field_manager: str, *, apply: bool, owned: set | None = None) -> dict:
        obj = json.loads(json.dumps(obj))
        info = self._info(obj)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(20):
                name = meta["generateName"] + "".join(random.choices(_GENERATE_ALPHABET, k=5))
                if self.get(info.group, info.plural, meta.get("namespace"), name) is None:
                    meta["name"] = name
                    break
        key = self._key(info, obj)
        self._require_namespace(info, key[0])
        if key in self._objects.get((info.group, info.plural), {}):
            raise AlreadyExists.of(info, key[1])
        rv = self._rv + 1
        meta.pop("managedFields", None)
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(rv), creationTimestamp=now_rfc3339())
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        if (info.group, info.plural) not in _NO_GENERATION:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if apply:
            paths = owned if owned is not None else set(fieldsets.leaves(obj, keys_for(info.group, info.plural)))
            meta["managedFields"] = [self._managed_entry(info, field_manager, "Apply", paths, None)]
        else:
            meta["managedFields"] = self._update_managed(info, None, obj, field_manager, None)
        if not meta["managedFields"]:
            del meta["managedFields"]
        self._commit(info, key, obj, rv)
        self._notify("ADDED", obj)
        return json.loads(json.dumps(obj))

    def _finish_update(self, info: _kinds.KindInfo, key: tuple[str, str], old: dict, new: dict,
                       managed: builtins.list[dict]) -> dict:
        meta, old_meta = _meta(new), old["metadata"]
        for k in ("uid", "creationTimestamp", "name"):
            if k in old_meta:
                meta[k] = old_meta[k]
        if info.namespaced:
            meta["namespace"] = old_meta["namespace"]
        if "generateName" in old_meta and "generateName" not in meta:
            meta["generateName"] = old_meta["generateName"]
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"] + (_spec_part(new) != _spec_part(old))
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        if managed:
            meta["managedFields"] = managed
        else:
            meta.pop("managedFields", None)
        if _comparable(new) == _comparable(old):
            return json.loads(json.dumps(old))  # a no-op write changes nothing, not even the rv
        rv = self._rv + 1
        meta["resourceVersion"] = str(rv)
        self._commit(info, key, new, rv)
        self._notify("MODIFIED", new)
        return json.loads(json.dumps(new))

    def _existing(self, info: _kinds.KindInfo, obj: dict) -> tuple[tuple[str, str], dict]:
        key = self._key(info, obj)
        body = self._objects.get((info.group, info.plural), {}).get(key)
        if body is None:
            if info.namespaced:
                self._require_namespace(info, key[0])
            raise NotFound.of(info, key[1])
        return key, json.loads(body)

    def update(self, obj: dict, *, subresource: str | None = None,
               field_manager: str = "agwlab-sandbox") -> dict:
        """Replace an object (or just its ``.status`` with ``subresource="status"``).

        A main-resource update keeps the stored status of kinds that have a status
        subresource. A ``metadata.resourceVersion`` that is not the stored one is refused.

        Raises:
            NotFound: no such object.
            Conflict: ``metadata.resourceVersion`` is stale.
        """
        obj = json.loads(json.dumps(obj))
        info = self._info(obj)
        key, old = self._existing(info, obj)
        rv = _meta(obj).get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise Conflict.stale(info, key[1])
        if subresource == "status":
            new = json.loads(json.dumps(old))
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            if "status" in info.subresources:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        managed = self._update_managed(info, old, new, field_manager, subresource)
        return self._finish_update(info, key, old, new, managed)

    def apply(self, obj: dict, *, field_manager: str, force: bool = False,
              subresource: str | None = None, prepare: Callable[[dict], None] | None = None) -> dict:
        """Server-side apply ``obj`` (an applied configuration) for ``field_manager``.

        Creates the object when missing. Fields this manager applied before and left out
        now are removed (unless another manager also owns them); fields owned by another
        manager with a different value are a conflict unless ``force``.

        ``prepare``, when given, is called with the merged object before it is stored (the
        API server defaults and validates there; an exception leaves the store unchanged).

        Raises:
            Conflict: another manager owns a field this apply changes (and not ``force``).
            NotFound: the kind is not served or the namespace does not exist.
        """
        cfg = json.loads(json.dumps(obj))
        info = self._info(cfg)
        key = self._key(info, cfg)
        body = self._objects.get((info.group, info.plural), {}).get(key)
        keys = keys_for(info.group, info.plural)
        if subresource == "status":
            cfg = {"apiVersion": cfg["apiVersion"], "kind": cfg["kind"], "metadata": cfg["metadata"],
                   **({"status": cfg["status"]} if "status" in cfg else {})}
        elif "status" in info.subresources:
            cfg.pop("status", None)
        # Item keys are computed after defaulting: an applied port without ``protocol`` is
        # the stored TCP port, not a new item.
        fieldsets.fill_key_defaults(cfg, keys, list_key_defaults(info.group, info.plural))
        duplicates = fieldsets.duplicate_keys(cfg, keys)
        if duplicates:
            raise UnmergeableApply.of(info, key[0], key[1], duplicates)
        cfg_leaves = fieldsets.leaves(cfg, keys)
        if body is None:
            if subresource:
                raise NotFound.of(info, key[1])
            if prepare is not None:
                prepare(cfg)
            return self._create(cfg, field_manager, apply=True, owned=set(cfg_leaves))
        old = json.loads(body)
        rv = _meta(cfg).get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise Conflict.stale(info, key[1])
        live_leaves = fieldsets.leaves(old, keys)
        entries = old["metadata"].get("managedFields") or []
        prev_mine: set = set()
        others: list[tuple[dict, set]] = []
        for entry in entries:
            paths = fieldsets.from_fields_v1(entry.get("fieldsV1") or {})
            if entry.get("manager") == field_manager and entry.get("operation") == "Apply" \
                    and entry.get("subresource") == subresource:
                prev_mine = paths
            else:
                others.append((entry, paths))
        owned_by_others = set().union(*(p for _, p in others)) if others else set()
        new = json.loads(body)
        # Whole list items first (their keys are still there to find them by), deepest first;
        # an item stays while another manager owns a field in it.
        dropped = prev_mine - set(cfg_leaves) - owned_by_others
        for path in sorted(dropped, key=lambda p: (p[-1:] == (".",), len(p)), reverse=True):
            if path[-1:] == (".",) and any(o[:len(path) - 1] == path[:-1] for o in owned_by_others):
                continue
            fieldsets.remove_path(new, path)
        new = fieldsets.merge_apply(new, {k: v for k, v in cfg.items() if k != "metadata"}, keys)
        meta_cfg = {k: v for k, v in cfg["metadata"].items()
                    if k in ("labels", "annotations", "ownerReferences", "finalizers")}
        new["metadata"] = fieldsets.merge_apply(new["metadata"], meta_cfg, keys, ("metadata",))
        if prepare is not None:
            prepare(new)
        # A conflict is a field another manager owns whose value this apply changes (after
        # defaulting, as the real server compares).
        new_leaves = fieldsets.leaves(new, keys)
        conflicts: list[tuple[str, str, tuple]] = []
        for path in cfg_leaves:
            if path[-1:] == (".",) or live_leaves.get(path, _MISSING) == new_leaves.get(path, _MISSING):
                continue
            for entry, paths in others:
                if path in paths:
                    conflicts.append((entry.get("manager", ""), entry.get("apiVersion", ""), path))
        if conflicts and not force:
            n = len(conflicts)
            if n == 1:
                m, v, p = conflicts[0]
                text = f'Apply failed with 1 conflict: conflict with "{m}" using {v}: {_dotted(p)}'
            else:
                text = f"Apply failed with {n} conflicts: " + "\n".join(
                    f'conflict with "{m}" using {v}: {_dotted(p)}' for m, v, p in conflicts)
            raise Conflict(text, details={"name": key[1], "kind": info.plural,
                                          **({"group": info.group} if info.group else {}),
                                          "causes": [{"reason": "FieldManagerConflict",
                                                      "message": f'conflict with "{m}" using {v}',
                                                      "field": _dotted(p)} for m, v, p in conflicts]})
        taken = {p for _, _, p in conflicts}
        managed = []
        mine = self._managed_entry(info, field_manager, "Apply", set(cfg_leaves), subresource)
        placed = False
        for entry in entries:
            if entry.get("manager") == field_manager and entry.get("operation") == "Apply" \
                    and entry.get("subresource") == subresource:
                if not placed:  # keep the entry's place, so a no-op apply stays a no-op
                    managed.append(mine)
                    placed = True
                continue
            paths = fieldsets.from_fields_v1(entry.get("fieldsV1") or {})
            kept = paths - taken
            if kept:
                managed.append(dict(entry, fieldsV1=fieldsets.to_fields_v1(kept)) if kept != paths else entry)
        if not placed:
            managed.append(mine)
        return self._finish_update(info, key, old, new, managed)

    def delete(self, group: str, plural: str, namespace: str | None, name: str) -> dict:
        """Delete an object now and return it (its resourceVersion is the deletion's).

        Deleting a Namespace deletes everything in it first, as the namespace controller would.

        Raises:
            NotFound: no such object.
        """
        info = _kinds.by_resource(group, plural)
        if info is None:
            raise NotFound(f"the server could not find the requested resource ({plural}.{group})")
        key = (namespace or "" if info.namespaced else "", name)
        body = self._objects.get((group, plural), {}).get(key)
        if body is None:
            raise NotFound.of(info, name)
        if info.kind == "Namespace":
            for other in _kinds.all_kinds():
                if other.namespaced:
                    for (ns, oname) in list(self._objects.get((other.group, other.plural), {})):
                        if ns == name:
                            self.delete(other.group, other.plural, ns, oname)
        obj = json.loads(body)
        rv = self._rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        self._commit(info, key, None, rv)
        self._notify("DELETED", obj)
        return obj

    def add_listener(self, fn: Callable[[str, dict], None]) -> Callable[[], None]:
        """Call ``fn(event_type, obj)`` after each committed write; returns an unsubscribe function."""
        self._listeners.append(fn)

        def remove() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return remove


def _comparable(obj: dict) -> str:
    """The object without what a no-op write would change anyway (managedFields times)."""
    meta = dict(obj.get("metadata") or {})
    meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []]
    meta.pop("resourceVersion", None)
    return json.dumps({**obj, "metadata": meta}, sort_keys=True)


def _dotted(path: tuple) -> str:
    out = ""
    for seg in path:
        if seg.startswith("f:"):
            out += "." + seg[2:]
        elif seg.startswith("k:"):
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(seg[2:]).items()) + "]"
    return out
