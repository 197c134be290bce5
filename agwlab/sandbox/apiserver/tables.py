"""``meta.k8s.io/v1`` Tables: what ``kubectl get`` prints, computed server-side.

The built-in kinds' cells are computed as the real API server's printers do; custom
kinds use their CRD ``additionalPrinterColumns`` (JSONPath). Ages are human durations.

Example:
    >>> human_duration(125)
    '2m5s'
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

from ..kinds import KindInfo

__all__ = ["human_duration", "jsonpath", "to_table"]


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration`` (``5s``, ``2m5s``, ``3h``, ``4d``, ``2y``…)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    y = d // 365
    if d < 365 * 8:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        when = _dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        try:
            when = _dt.datetime.fromisoformat(ts)
        except ValueError:
            return "<unknown>"
    return human_duration((_dt.datetime.now(_dt.UTC) - when).total_seconds())


_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[\*\]|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]"
                    r"|\['([^']+)'\]")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate the JSONPath subset printer columns use (``.a.b``, ``[*]``, ``[0]``, ``[?(@.k=="v")]``)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.removeprefix("$")
    nodes = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        field, index, fkey, fval, quoted = m.groups()
        nxt: list[Any] = []
        for n in nodes:
            if field is not None or quoted is not None:
                name = field if field is not None else quoted
                if isinstance(n, dict) and name in n:
                    nxt.append(n[name])
            elif index is not None:
                if isinstance(n, list) and int(index) < len(n):
                    nxt.append(n[int(index)])
            elif fkey is not None:
                if isinstance(n, list):
                    for item in n:
                        val = item
                        for part in fkey.split("."):
                            val = val.get(part) if isinstance(val, dict) else None
                        if val is not None and str(val) == fval:
                            nxt.append(item)
            else:  # [*]
                if isinstance(n, list):
                    nxt.extend(n)
                elif isinstance(n, dict):
                    nxt.extend(n.values())
        nodes = nxt
    return nodes


def _cell_text(values: list[Any]) -> Any:
    if not values:
        return None
    out = []
    for v in values:
        out.append(json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else v)
    if len(out) == 1:
        return out[0]
    return ",".join("true" if v is True else "false" if v is False else str(v) for v in out)


def _selector(sel: dict | None) -> str:
    if not sel:
        return "<none>"
    labels = sel.get("matchLabels", sel) if isinstance(sel, dict) else {}
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str)]
    for expr in sel.get("matchExpressions") or [] if isinstance(sel, dict) else []:
        op = expr.get("operator", "").lower()
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr.get('key')} {op} ({values})" if values else f"{expr.get('key')}")
    return ",".join(parts) or "<none>"


def _pod_cells(o: dict) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    cstat = status.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in cstat if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cstat)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for c in cstat:
        state = c.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if o.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [f"{ready}/{total}", reason, restarts, _age(o["metadata"].get("creationTimestamp")),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", "<none>"]


def _containers(template: dict) -> tuple[str, str]:
    cs = (template.get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _builtin_cells(info: KindInfo, o: dict) -> list[Any]:
    meta = o.get("metadata") or {}
    age = _age(meta.get("creationTimestamp"))
    spec, status = o.get("spec") or {}, o.get("status") or {}
    k = info.kind
    if k == "Pod":
        return _pod_cells(o)
    if k == "Namespace":
        return [status.get("phase", "Active"), age]
    if k == "ConfigMap":
        return [len(o.get("data") or {}) + len(o.get("binaryData") or {}), age]
    if k == "Secret":
        return [o.get("type", "Opaque"), len(o.get("data") or {}), age]
    if k == "Service":
        t = spec.get("type", "ClusterIP")
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        ext = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress)
        if not ext:
            ext = "<pending>" if t == "LoadBalancer" else (spec.get("externalName") or "<none>")
        ports = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
                         f"{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
        return [t, spec.get("clusterIP") or "<none>", ext, ports, age, _selector(spec.get("selector"))]
    if k == "Deployment":
        names, images = _containers(spec.get("template") or {})
        return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
                status.get("availableReplicas", 0), age, names, images, _selector(spec.get("selector"))]
    if k == "ReplicaSet":
        names, images = _containers(spec.get("template") or {})
        return [spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0), age,
                names, images, _selector(spec.get("selector"))]
    if k == "Event":
        inv = o.get("involvedObject") or {}
        last = o.get("lastTimestamp") or o.get("eventTime") or meta.get("creationTimestamp")
        first = o.get("firstTimestamp") or o.get("eventTime") or meta.get("creationTimestamp")
        src = o.get("source") or {}
        source = src.get("component") or o.get("reportingComponent") or ""
        if src.get("host"):
            source += f", {src['host']}"
        return [_age(last), o.get("type", ""), o.get("reason", ""),
                f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""), source,
                o.get("message", ""), _age(first), o.get("count", 1), meta.get("name", "")]
    if k == "CustomResourceDefinition":
        return [meta.get("creationTimestamp") or "<unknown>"]
    if k == "ServiceAccount":
        return [len(o.get("secrets") or []), age]
    if k in ("Role", "ClusterRole"):
        return [meta.get("creationTimestamp") or "<unknown>"]
    if k in ("RoleBinding", "ClusterRoleBinding"):
        ref = o.get("roleRef") or {}
        subjects = [s for s in o.get("subjects") or [] if isinstance(s, dict)]

        def named(kind: str) -> str:
            return ", ".join(s.get("name", "") for s in subjects if s.get("kind") == kind)

        accounts = ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects
                             if s.get("kind") == "ServiceAccount")
        return [f"{ref.get('kind', '')}/{ref.get('name', '')}", age, named("User"), named("Group"), accounts]
    if k == "Endpoints":
        eps = []
        for subset in o.get("subsets") or []:
            for a in subset.get("addresses") or []:
                for p in subset.get("ports") or [{}]:
                    eps.append(f"{a.get('ip')}:{p.get('port')}" if p.get("port") else a.get("ip"))
        return [",".join(eps) or "<none>", age]
    return [age]


def _partial(o: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}


def to_table(info: KindInfo, objects: list[dict], *, resource_version: str = "",
             include_object: str = "Metadata") -> dict:
    """Convert objects of one kind to a ``meta.k8s.io/v1`` Table."""
    columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}]
    for c in info.printer_columns:
        columns.append({"name": c.name, "type": c.type, "format": c.format, "priority": c.priority,
                        "description": c.description})
    rows = []
    for o in objects:
        name = (o.get("metadata") or {}).get("name", "")
        if info.custom:
            cells: list[Any] = []
            for c in info.printer_columns:
                values = jsonpath(o, c.json_path)
                if c.type == "date":
                    cells.append(_age(values[0]) if values and isinstance(values[0], str) else "<unknown>")
                else:
                    cells.append(_cell_text(values))
        else:
            cells = _builtin_cells(info, o)
        row: dict[str, Any] = {"cells": [name, *cells[: len(info.printer_columns)]]}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = _partial(o)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
