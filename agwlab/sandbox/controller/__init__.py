"""The sandbox's controllers: kube-controller-manager's few loops plus agentgateway's.

One level-triggered loop: any change in the store marks the world dirty, and the next
pass reconciles everything (a lab cluster holds tens of objects, so a full pass takes a
few milliseconds). Every write is skipped when nothing changed, so passes converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from typing import Any

from ..cluster import Cluster
from ..events import record_event
from ..kinds import by_kind
from ..kubelet import Kubelet
from ..network import AddressBlock
from ..proxy.config import ServiceBackend
from .backends import reconcile_backends
from .bootstrap import bootstrap
from .common import AdmittingStore, pod_ready
from .gateways import reconcile_gateways
from .pod import log_to_controller
from .policies import reconcile_parameters, reconcile_policies
from .prompt_guards import attach_prompt_guards, reconcile_prompt_guards
from .services import reconcile_services
from .traffic import reconcile_traffic
from .workloads import collect_garbage, reconcile_deployments, reconcile_replicasets

__all__ = ["Controller"]

log = logging.getLogger("agwlab.sandbox.controller")

_GC_KINDS = [
    ("", "pods"), ("apps", "replicasets"), ("apps", "deployments"), ("", "services"), ("", "configmaps"),
    ("", "secrets"), ("", "events"), ("", "serviceaccounts"),
    ("gateway.networking.k8s.io", "gateways"), ("gateway.networking.k8s.io", "httproutes"),
    ("agentgateway.dev", "agentgatewaybackends"), ("agentgateway.dev", "agentgatewaypolicies"),
    ("agentgateway.dev", "agentgatewayparameters"),
]
RESYNC_SECONDS = 2.0
SHARE = 0.5
"""At most this share of the event loop goes to reconcile passes when they run back to back:
after a pass of ``t`` seconds the next waits ``t * (1 - SHARE) / SHARE``. The loop also
serves the API and every Gateway's proxy; with many attendees a pass takes long enough
that passes back to back would leave them nothing, and requests time out."""
MAX_PAUSE = 2.0
_MAX_SET_ASIDE = 20


def _culprit(exc: BaseException) -> tuple[tuple[str, str], dict[str, Any]] | None:
    """The stored object a failed pass was working on: the innermost frame's local that is one.

    Returns ``((group, plural), object)`` or ``None``.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in reversed(list(frame.f_locals.values())):
            if not isinstance(value, dict) or not isinstance(value.get("metadata"), dict):
                continue
            meta = value["metadata"]
            if not meta.get("name") or not meta.get("resourceVersion"):
                continue
            info = by_kind(str(value.get("apiVersion", "")), str(value.get("kind", "")))
            if info is not None:
                return (info.group, info.plural), value
    return None


class Controller:
    """Reconciles the store and drives the kubelet. Runs on the sandbox's event loop."""

    def __init__(self, store: Any, cluster: Cluster, kubelet: Kubelet, block: AddressBlock,
                 on_targets: Any = None, *, load_balancer: bool = True) -> None:
        self._store = AdmittingStore(store)
        self._cluster = cluster
        self._kubelet = kubelet
        self._block = block
        self._on_targets = on_targets
        self._load_balancer = load_balancer
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._published: dict[str, Any] = {}
        self._last_targets: Any = None
        self.passes = 0

    def ensure_objects(self, objects: list[dict[str, Any]]) -> None:
        """Create these objects, or bring their spec/data/subsets back to what is given
        (objects the sandbox itself keeps current, e.g. where its Prometheus listens)."""
        for obj in objects:
            info = by_kind(obj["apiVersion"], obj["kind"])
            assert info is not None, obj["kind"]
            meta = obj["metadata"]
            have = self._store.get(info.group, info.plural, meta.get("namespace"), meta["name"])
            if have is None:
                self._store.create(copy.deepcopy(obj), field_manager="agwlab-sandbox")
                continue
            fields = [f for f in ("spec", "data", "subsets") if f in obj and have.get(f) != obj[f]]
            if fields:
                updated = copy.deepcopy(have)
                for f in fields:
                    updated[f] = copy.deepcopy(obj[f])
                self._store.update(updated, field_manager="agwlab-sandbox")

    def start(self) -> None:
        bootstrap(self._store, by_kind)
        self._unsubscribe = self._store.add_listener(self._on_event)
        self._kubelet.on_change = self._dirty.set
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self._dirty.set()

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Event":
            self._dirty.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), RESYNC_SECONDS)
            self._dirty.clear()
            await asyncio.sleep(0)  # let a burst of writes land first
            started = time.perf_counter()
            pause = 0.0
            try:
                self.reconcile_isolating()
            except Exception:
                log.exception("reconcile pass failed; retrying on the next change")
                pause = 0.5
            took = time.perf_counter() - started
            if took > 0.5:
                log.info("reconcile pass took %.0f ms", took * 1000)
            if took > 0.01:  # changes that land meanwhile are picked up together by the next pass
                pause = max(pause, min(MAX_PAUSE, took * (1 - SHARE) / SHARE))
            if pause:
                await asyncio.sleep(pause)

    def reconcile_isolating(self) -> None:
        """One pass; an object the pass fails on is set aside (with a Warning Event on it saying
        why) and the pass runs again without it, so one bad object never stops the others.

        Raises:
            Exception: the pass failed and no single object could be blamed.
        """
        for _ in range(_MAX_SET_ASIDE):
            try:
                self.reconcile()
                return
            except Exception as exc:
                found = _culprit(exc)
                if found is None:
                    raise
                (group, plural), obj = found
                self._store.hide(group, plural, obj)
                meta = obj["metadata"]
                where = f"{meta.get('namespace')}/{meta['name']}" if meta.get("namespace") else meta["name"]
                detail = type(exc).__name__ if obj.get("kind") == "Secret" else f"{type(exc).__name__}: {exc}"
                message = (f"the sandbox's controller could not reconcile this {obj.get('kind')} ({detail[:300]}) "
                           "and skips it until it changes; fix it (kubectl edit) or delete it")
                log.warning("set aside %s %s: %s", obj.get("kind"), where, detail[:300])
                if obj.get("kind") != "Event":
                    record_event(self._store, obj, "ReconcileFailed", message, type="Warning",
                                 component="agwlab-sandbox-controller")
        raise RuntimeError(f"a reconcile pass failed on {_MAX_SET_ASIDE} objects in a row")

    def _ready_gateways(self, pods: list[dict[str, Any]]) -> set[str]:
        """Gateways whose proxy has rolled out: every proxy Pod of the current template is
        Ready, and no Pod it replaced is still shutting down (and holding the address)."""
        label = "gateway.networking.k8s.io/gateway-name"
        by_gw: dict[str, list[dict[str, Any]]] = {}
        for p in pods:
            gw = (p["metadata"].get("labels") or {}).get(label)
            if gw:
                by_gw.setdefault(f"{p['metadata']['namespace']}/{gw}", []).append(p)
        ready = set()
        for key, gw_pods in by_gw.items():
            ns, name = key.split("/", 1)
            deploy = self._store.get("apps", "deployments", ns, name)
            if deploy is None:
                continue
            status = deploy.get("status") or {}
            want = int((deploy.get("spec") or {}).get("replicas", 1))
            rolled_out = (status.get("observedGeneration") == deploy["metadata"].get("generation")
                          and int(status.get("readyReplicas", 0)) >= want
                          and len(gw_pods) == want)
            all_ready = all(pod_ready(p) for p in gw_pods)
            replaced = any(n.startswith(f"{name}-") for n in self._kubelet.stopping(ns))
            if rolled_out and all_ready and not replaced:
                ready.add(key)
        return ready

    def reconcile(self) -> None:
        store, cluster = self._store, self._cluster
        self.passes += 1
        settings = store.get("", "configmaps", "agwlab-system", "sandbox-settings")
        cluster.set_settings((settings or {}).get("data") or {})
        collect_garbage(store, _GC_KINDS)
        reconcile_deployments(store)
        pods = reconcile_replicasets(store, store.list("", "pods"))
        self._kubelet.sync(pods)
        cluster.set_services(reconcile_services(store, pods, self._block, load_balancer=self._load_balancer))
        backends: dict[str, Any] = reconcile_backends(store, cluster, self._block.blackhole)
        for route in store.list("gateway.networking.k8s.io", "httproutes"):
            rns = route["metadata"]["namespace"]
            for rule in (route.get("spec") or {}).get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if (ref.get("group", ""), ref.get("kind", "Service")) != ("", "Service"):
                        continue
                    ns, name, port = ref.get("namespace", rns), ref.get("name", ""), int(ref.get("port", 80))
                    if store.get("", "services", ns, name) is None:
                        continue
                    host = f"{name}.{ns}.svc.cluster.local"
                    eps = cluster.resolve(host, port)
                    backends[f"svc:{ns}/{name}:{port}"] = ServiceBackend(
                        key=f"{host}:{port}",
                        urls=tuple(f"http://{e.ip}:{e.port}" for e in eps) or (f"http://{self._block.blackhole}:{port}",))
        tracing = reconcile_policies(store, cluster)
        formats = reconcile_parameters(store)
        ready = self._ready_gateways(pods)
        configs = reconcile_gateways(store, cluster, backends, tracing, formats, ready,
                                     load_balancer=self._load_balancer, traffic=reconcile_traffic(store))
        configs = attach_prompt_guards(configs, reconcile_prompt_guards(store))
        for key, cfg in configs.items():
            prev = self._published.get(key)
            if prev != cfg:
                self._published[key] = cfg
                cluster.publish(key, cfg)
                log_to_controller("info", "pushed configuration to proxy", gateway=key,
                                  listeners=str(len(cfg.listeners)),
                                  routes=str(sum(len(lst.routes) for lst in cfg.listeners)))
        for key in list(self._published):
            if key not in configs:
                del self._published[key]
                cluster.forget(key)
        targets = sorted(
            (p["status"]["podIP"], p["metadata"]["namespace"], p["metadata"]["name"],
             p["metadata"]["labels"]["gateway.networking.k8s.io/gateway-name"])
            for p in pods
            if (p["metadata"].get("labels") or {}).get("gateway.networking.k8s.io/gateway-name")
            and (p.get("status") or {}).get("podIP")
        )
        if targets != self._last_targets and self._on_targets is not None:
            self._last_targets = targets
            self._on_targets(targets)
