"""Small helpers the controller's parts share: conditions, owner refs, writes that only
happen when something changed."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from typing import Any

from ..store import now_rfc3339 as now

__all__ = [
    "condition",
    "ensure_object",
    "labels_match",
    "now",
    "owner_ref",
    "pod_ready",
    "short_hash",
    "write_status",
]

log = logging.getLogger("agwlab.sandbox.controller")


def pod_ready(pod: dict[str, Any]) -> bool:
    """Whether a Pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def short_hash(value: Any, n: int = 10) -> str:
    """A stable, Kubernetes-looking hash of a JSON value (pod-template-hash style)."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    num = int(digest, 16)
    out = []
    for _ in range(n):
        num, r = divmod(num, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def condition(
    old_conditions: list[dict[str, Any]] | None,
    ctype: str,
    ok: bool | str,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
) -> dict[str, Any]:
    """A status condition whose lastTransitionTime only moves when its status changes."""
    status = ok if isinstance(ok, str) else ("True" if ok else "False")
    prev = next((c for c in old_conditions or [] if c.get("type") == ctype), None)
    changed = now() if not prev or prev.get("status") != status else prev.get("lastTransitionTime") or now()
    c: dict[str, Any] = {"type": ctype, "status": status, "reason": reason, "message": message,
                         "lastTransitionTime": changed}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def owner_ref(obj: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def labels_match(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label map.

    An empty selector matches everything; ``None`` matches nothing.
    """
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return obj


def write_status(store: Any, obj: dict[str, Any], status: dict[str, Any]) -> bool:
    """Write ``status`` unless it is what the object already has. Returns True when written."""
    if obj.get("status") == status:
        return False
    new = _strip(obj)
    new["status"] = status
    try:
        store.update(new, subresource="status", field_manager="agentgateway")
    except Exception as e:  # deleted meanwhile, or a race with the API: the next pass fixes it
        log.debug("status of %s %s not written: %s", obj.get("kind"), obj["metadata"].get("name"), e)
        return False
    return True


def ensure_object(store: Any, desired: dict[str, Any], *, group: str, plural: str,
                  manager: str = "agentgateway") -> dict[str, Any]:
    """Create ``desired`` or bring the existing object's labels, annotations, owner refs,
    spec and data in line with it (other fields, e.g. status, are left alone)."""
    meta = desired["metadata"]
    current = store.get(group, plural, meta.get("namespace"), meta["name"])
    if current is None:
        return store.create(copy.deepcopy(desired), field_manager=manager)
    # decide before copying: most passes change nothing, and a copy of every object the
    # controller owns on every pass is most of a pass's time once there are many Gateways
    stale_meta = [k for k in ("labels", "annotations", "ownerReferences")
                  if k in meta and current["metadata"].get(k) != meta[k]]
    stale = [k for k in ("spec", "data", "type") if k in desired and _differs(current.get(k), desired[k])]
    if not stale_meta and not stale:
        return current
    new = _strip(current)
    for key in stale_meta:
        new["metadata"][key] = copy.deepcopy(meta[key])
    for key in stale:
        new[key] = _merge_defaults(current.get(key), desired[key])
    return store.update(new, field_manager=manager)


def _differs(current: Any, desired: Any) -> bool:
    """True when ``desired`` says something ``current`` does not (defaults the API server
    added to ``current`` do not count)."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(_differs(current.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(current, list) or len(current) != len(desired):
            return True
        return any(_differs(c, d) for c, d in zip(current, desired, strict=True))
    return current != desired


def _merge_defaults(current: Any, desired: Any) -> Any:
    """``desired`` with the server-side defaults of ``current`` kept where desired is silent."""
    if isinstance(desired, dict) and isinstance(current, dict):
        out = dict(current)
        for k, v in desired.items():
            out[k] = _merge_defaults(current.get(k), v)
        return out
    if isinstance(desired, list) and isinstance(current, list) and len(current) == len(desired):
        return [_merge_defaults(c, d) for c, d in zip(current, desired, strict=True)]
    return copy.deepcopy(desired)


class AdmittingStore:
    """The store as controllers see it: objects they create or update are defaulted and
    validated like anything sent to the API server (so a Service gets its clusterIP and a
    Pod its defaults), status writes go straight through.

    Reads return the store's shared objects (``copy=False``): a reconcile pass reads every
    object and must not change what it read; every write path copies first (``_strip``,
    ``copy.deepcopy``)."""

    def __init__(self, store: Any) -> None:
        from ..apiserver.validation import admit

        self._store = store
        self._admit = admit
        # objects a reconcile pass failed on, hidden from the controllers until they change:
        # (group, plural, namespace, name) -> the resourceVersion that failed
        self.hidden: dict[tuple[str, str, str, str], str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def hide(self, group: str, plural: str, obj: dict[str, Any]) -> None:
        """Hide ``obj`` (as it is now) from reads until it changes."""
        meta = obj.get("metadata") or {}
        key = (group, plural, meta.get("namespace") or "", meta.get("name") or "")
        self.hidden[key] = str(meta.get("resourceVersion", ""))

    def _visible(self, group: str, plural: str, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        key = (group, plural, meta.get("namespace") or "", meta.get("name") or "")
        rv = self.hidden.get(key)
        if rv is None:
            return True
        if rv == str(meta.get("resourceVersion", "")):
            return False
        del self.hidden[key]  # changed since it failed: try it again
        return True

    def get(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self._store.get(group, plural, namespace, name, copy=False)
        if obj is not None and self.hidden and not self._visible(group, plural, obj):
            return None
        return obj

    def list(self, group: str, plural: str, namespace: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        items = self._store.list(group, plural, namespace, copy=False, **kw)
        if self.hidden:
            items = [o for o in items if self._visible(group, plural, o)]
        return items

    def create(self, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self._admit(obj)
        return self._store.create(obj, **kw)

    def update(self, obj: dict[str, Any], *, subresource: str | None = None, **kw: Any) -> dict[str, Any]:
        if subresource is None:
            self._admit(obj)
        return self._store.update(obj, subresource=subresource, **kw)
