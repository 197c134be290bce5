"""Kubernetes Events, as the kubelet and controllers record them (``kubectl describe``
shows them under ``Events:``)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from .store import now_rfc3339

__all__ = ["record_event"]

log = logging.getLogger("agwlab.sandbox.events")



def record_event(store: Any, obj: dict[str, Any], reason: str, message: str, *,
                 type: str = "Normal", component: str) -> None:
    """Record an Event about ``obj`` (best effort: an Event that cannot be written is dropped)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    t = now_rfc3339()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', 'x')}.{secrets.token_hex(8)}", "namespace": ns},
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
