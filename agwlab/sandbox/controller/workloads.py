"""Deployments -> ReplicaSets -> Pods, and garbage collection, as kube-controller-manager does."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from ..events import record_event
from .common import condition, labels_match, owner_ref, pod_ready, short_hash, write_status

__all__ = ["collect_garbage", "reconcile_deployments", "reconcile_replicasets"]

_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"


def _random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX) for _ in range(n))


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])



def reconcile_deployments(store: Any) -> None:
    replicasets = store.list("apps", "replicasets")
    for deploy in store.list("apps", "deployments"):
        spec = deploy.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        tmpl_hash = short_hash(template)
        ns = deploy["metadata"]["namespace"]
        name = f"{deploy['metadata']['name']}-{tmpl_hash}"
        replicas = int(spec.get("replicas", 1))
        owned = [rs for rs in replicasets if rs["metadata"]["namespace"] == ns and _owned_by(rs, deploy)]
        current = next((rs for rs in owned if rs["metadata"]["name"] == name), None)
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = tmpl_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = tmpl_hash
        if current is None:
            current = store.create({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1),
                                    "deployment.kubernetes.io/desired-replicas": str(replicas)},
                    "ownerReferences": [owner_ref(deploy)],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template},
            }, field_manager="kube-controller-manager")
            record_event(store, deploy, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {replicas}",
                         component="deployment-controller")
        elif (current.get("spec") or {}).get("replicas") != replicas:
            before = (current.get("spec") or {}).get("replicas")
            record_event(store, deploy, "ScalingReplicaSet",
                         f"Scaled {'up' if replicas > (before or 0) else 'down'} replica set {name} "
                         f"from {before} to {replicas}", component="deployment-controller")
            new = copy.deepcopy(current)
            new["metadata"].pop("resourceVersion", None)
            new["spec"]["replicas"] = replicas
            new["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(replicas)
            current = store.update(new, field_manager="kube-controller-manager")
        # the rollout: old ReplicaSets go as soon as the new one exists (Recreate-like, fast)
        for rs in owned:
            if rs["metadata"]["name"] != name:
                store.delete("apps", "replicasets", ns, rs["metadata"]["name"])
        rs_status = current.get("status") or {}
        ready = int(rs_status.get("readyReplicas", 0))
        have = int(rs_status.get("replicas", 0))
        gen = deploy["metadata"].get("generation", 1)
        old = deploy.get("status") or {}
        available = ready >= replicas
        status: dict[str, Any] = {
            "observedGeneration": gen,
            "replicas": have,
            "updatedReplicas": have,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                condition(old.get("conditions"), "Available", available,
                          "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                          "Deployment has minimum availability." if available
                          else "Deployment does not have minimum availability."),
                condition(old.get("conditions"), "Progressing", True,
                          "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                          f'ReplicaSet "{name}" has successfully progressed.' if available
                          else f'ReplicaSet "{name}" is progressing.'),
            ],
        }
        if have - ready > 0:
            status["unavailableReplicas"] = have - ready
        for key in ("readyReplicas", "availableReplicas", "replicas", "updatedReplicas"):
            if status[key] == 0:
                del status[key]
        for c in status["conditions"]:
            c["lastUpdateTime"] = (next((o for o in old.get("conditions") or [] if o["type"] == c["type"]
                                         and o.get("status") == c["status"] and o.get("reason") == c["reason"]),
                                        None) or {}).get("lastUpdateTime") or c["lastTransitionTime"]
        write_status(store, deploy, status)


def reconcile_replicasets(store: Any, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create or delete Pods so each ReplicaSet has ``spec.replicas``. Returns all Pods."""
    changed = False
    for rs in store.list("apps", "replicasets"):
        spec = rs.get("spec") or {}
        ns = rs["metadata"]["namespace"]
        want = int(spec.get("replicas", 1))
        mine = [p for p in pods if p["metadata"]["namespace"] == ns and _owned_by(p, rs)]
        for _ in range(want - len(mine)):
            template = copy.deepcopy(spec.get("template") or {})
            meta = template.get("metadata") or {}
            pod_spec = template.get("spec") or {}
            pod_spec.setdefault("nodeName", "agwlab-sandbox")
            pod: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{rs['metadata']['name']}-{_random_suffix()}",
                    "namespace": ns,
                    "labels": meta.get("labels") or {},
                    "annotations": meta.get("annotations") or {},
                    "ownerReferences": [owner_ref(rs)],
                },
                "spec": pod_spec,
            }
            if not pod["metadata"]["annotations"]:
                del pod["metadata"]["annotations"]
            created = store.create(pod, field_manager="kube-controller-manager")
            record_event(store, rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                         component="replicaset-controller")
            changed = True
        if len(mine) > want:
            # newest first, not-ready first: what the ReplicaSet controller prefers to delete
            doomed = sorted(mine, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", "")),)
            for pod in doomed[: len(mine) - want]:
                store.delete("", "pods", ns, pod["metadata"]["name"])
                record_event(store, rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                             component="replicaset-controller")
                changed = True
    if changed:
        pods = store.list("", "pods")
    for rs in store.list("apps", "replicasets"):
        ns = rs["metadata"]["namespace"]
        mine = [p for p in pods if p["metadata"]["namespace"] == ns and _owned_by(p, rs)]
        ready = sum(1 for p in mine if pod_ready(p))
        status: dict[str, Any] = {
            "replicas": len(mine),
            "fullyLabeledReplicas": len(mine),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if status[key] == 0:
                del status[key]
        write_status(store, rs, status)
    return pods


def collect_garbage(store: Any, kinds: list[tuple[str, str]]) -> bool:
    """Delete objects whose owner or namespace is gone. Returns True when anything went."""
    namespaces = {n["metadata"]["name"] for n in store.list("", "namespaces")}
    uids: set[str] = set()
    objects: list[tuple[str, str, dict[str, Any]]] = []
    for group, plural in kinds:
        for obj in store.list(group, plural):
            uids.add(obj["metadata"]["uid"])
            objects.append((group, plural, obj))
    removed = False
    for group, plural, obj in objects:
        meta = obj["metadata"]
        ns = meta.get("namespace")
        owners = meta.get("ownerReferences") or []
        orphan = owners and not any(o.get("uid") in uids for o in owners)
        if (ns and ns not in namespaces) or orphan:
            try:
                store.delete(group, plural, ns, meta["name"])
                removed = True
            except Exception:
                pass
    return removed


def matching_pods(pods: list[dict[str, Any]], namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
    """Pods in ``namespace`` whose labels match a Service-style selector."""
    return [p for p in pods if p["metadata"]["namespace"] == namespace
            and labels_match({"matchLabels": selector}, p["metadata"].get("labels"))]
