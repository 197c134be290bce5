"""Where a learner got to: each check's result, recorded in their namespace as the lab runs.

When the lab runs in a learner's own namespace (a workshop attendee), every
:func:`agwlab.check` also records its result in the ConfigMap ``agwlab-progress`` there:
one entry per step, ``"<stage> <step>"`` -> ``{"ok", "what", "at"}`` (never a detail that
could hold a secret). The instructor reads them with :func:`agwlab.workshop.progress`.
Recording never fails a check: if the ConfigMap cannot be written, the check goes on.

The ConfigMap does not carry the lab's label, so the learner's cleanup leaves it.

Example:
    >>> entry_key("01-claude-llm-connection", "7b")
    '01-claude-llm-connection.7b'
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks import CheckResult
    from .lab import Lab

__all__ = ["PROGRESS_CONFIGMAP", "entry_key", "read_progress", "record"]

PROGRESS_CONFIGMAP = "agwlab-progress"
log = logging.getLogger(__name__)


def entry_key(stage: str, step: str) -> str:
    """The ConfigMap key of one step (keys allow letters, digits, ``-``, ``_`` and ``.``)."""
    return re.sub(r"[^-._a-zA-Z0-9]", "_", f"{stage}.{step}")[:253]


def record(lab: Lab, result: CheckResult) -> None:
    """Record one check's result in ``lab.names.namespace`` (best effort, never raises)."""
    from kubernetes.client import CoreV1Api, V1ConfigMap, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    entry = json.dumps({"stage": result.stage, "step": result.step, "ok": result.ok, "what": result.what[:200],
                        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    body = {"data": {entry_key(result.stage, result.step): entry}}
    api = CoreV1Api(lab.api_client)
    ns = lab.names.namespace
    try:
        try:
            api.patch_namespaced_config_map(PROGRESS_CONFIGMAP, ns, body, _request_timeout=(3, 5))
        except ApiException as exc:
            if exc.status != 404:
                raise
            created = V1ConfigMap(metadata=V1ObjectMeta(name=PROGRESS_CONFIGMAP, labels={"agwlab/progress": "true"}),
                                  data=body["data"])
            api.create_namespaced_config_map(ns, created, _request_timeout=(3, 5))
    except Exception as exc:  # noqa: BLE001 - progress is for the instructor; the learner's check goes on
        log.debug("progress not recorded in %s: %s", ns, exc)


def read_progress(lab: Lab, namespace: str) -> dict[str, dict[str, Any]]:
    """``{"<stage> <step>": {"ok", "what", "at"}}`` recorded in ``namespace`` (empty when none)."""
    from . import kube

    cm = kube.get(lab, "ConfigMap", PROGRESS_CONFIGMAP, namespace, missing_ok=True)
    out = {}
    for value in ((cm or {}).get("data") or {}).values():
        try:
            entry = json.loads(value)
        except ValueError:
            continue
        if isinstance(entry, dict) and "stage" in entry:
            out[f"{entry['stage']} {entry['step']}"] = entry
    return out
