"""Kubernetes Events, as the kubelet and controllers record them (``kubectl describe``
shows them under ``Events:``)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from .store import now_rfc3339

__all__ = ["record_event", "repeat_event"]

log = logging.getLogger("agwlab.sandbox.events")



def record_event(store: Any, obj: dict[str, Any], reason: str, message: str, *,
                 type: str = "Normal", component: str) -> str | None:
    """Record an Event about ``obj`` (best effort: an Event that cannot be written is dropped).

    Returns the Event's name, for :func:`repeat_event`, or None when it was not written."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    t = now_rfc3339()
    name = f"{meta.get('name', 'x')}.{secrets.token_hex(8)}"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": ns, "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component, **({"host": "agwlab-sandbox"} if component == "kubelet" else {})},
        "firstTimestamp": t,
        "lastTimestamp": t,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "agwlab-sandbox" if component == "kubelet" else "",
    }
    try:
        store.create(event, field_manager=component)
    except Exception as e:
        log.debug("event not recorded: %s", e)
        return None
    return name


def repeat_event(store: Any, namespace: str, name: str, *, component: str) -> bool:
    """Count one more occurrence of Event ``name`` (``kubectl describe`` shows ``(x3 over 5s)``), as
    the event recorder folds repeats of the same Event. False when the Event is gone."""
    event = store.get("", "events", namespace, name)
    if event is None:
        return False
    event["count"] = int(event.get("count") or 1) + 1
    event["lastTimestamp"] = now_rfc3339()
    event["metadata"] = {k: v for k, v in event["metadata"].items() if k != "resourceVersion"}
    try:
        store.update(event, field_manager=component)
    except Exception as e:
        log.debug("event not updated: %s", e)
        return False
    return True
