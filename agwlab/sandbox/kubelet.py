"""The sandbox's kubelet: runs each Pod's workload and reports its status.

The controller calls :meth:`Kubelet.sync` with every Pod after each reconcile. New Pods
get a loopback Pod IP and their workload is started; Pods that are gone are stopped;
a workload that dies is restarted with a back-off, as ``restartPolicy: Always`` does,
and the Pod's ``restartCount`` goes up.

A container with a ``readinessProbe`` whose workload leaves readiness to the kubelet
(``READINESS_BY_KUBELET``) runs, and is ``Running`` and started, before it is ready: the
kubelet probes it every ``periodSeconds`` for as long as it runs and flips the Pod's Ready
condition after ``successThreshold`` successes or ``failureThreshold`` failures in a row.
A failing readiness probe never restarts the container; it records ``Unhealthy`` Events and
keeps the Pod out of its Services' endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .cluster import Cluster
from .events import record_event, repeat_event
from .images import KNOWN_IMAGES, lookup
from .network import AddressBlock
from .paths import SandboxPaths
from .podlogs import PodLog
from .probes import Probe, run_probe
from .runtime import PodContext, Workload
from .store import now_rfc3339 as now

__all__ = ["NODE_NAME", "Kubelet"]

log = logging.getLogger("agwlab.sandbox.kubelet")

NODE_NAME = "agwlab-sandbox"
START_TIMEOUT = 30.0
MAX_BACKOFF = 10.0
_FAST_PROBE = 0.25  # seconds between looks at a container that has not been ready yet


@dataclass
class _PodRun:
    namespace: str
    name: str
    uid: str
    ip: str
    image: str
    workload: Workload | None = None
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    ready: bool = False
    stopping: bool = False
    started_at: str | None = None
    waiting: tuple[str, str] | None = None  # (reason, message)
    last_terminated: dict[str, Any] | None = None
    logs: list[PodLog] = field(default_factory=list)
    events: dict[tuple[str, str], str] = field(default_factory=dict)  # (reason, message) -> Event name


class Kubelet:
    """Runs Pods. All methods run on the sandbox's event loop."""

    def __init__(self, store: Any, cluster: Cluster, paths: SandboxPaths, block: AddressBlock) -> None:
        self._store = store
        self._cluster = cluster
        self._paths = paths
        self._block = block
        self._runs: dict[str, _PodRun] = {}
        self._stopping: dict[str, _PodRun] = {}
        self._closed = False
        self.on_change: Any = None  # called when a Pod's workload has fully stopped

    # -- what the controller calls ---------------------------------------------------
    def sync(self, pods: list[dict[str, Any]]) -> None:
        seen: set[str] = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if uid not in self._runs and not self._closed:
                self._admit(pod)
        for uid in list(self._runs):
            if uid not in seen:
                run = self._runs.pop(uid)
                run.stopping = True
                self._stopping[uid] = run
                asyncio.get_running_loop().create_task(self._stop(run))

    def stopping(self, namespace: str) -> list[str]:
        """Names of Pods in ``namespace`` whose workloads are still shutting down."""
        return [r.name for r in self._stopping.values() if r.namespace == namespace]

    def pod_ip(self, uid: str) -> str | None:
        run = self._runs.get(uid)
        return run.ip if run else None

    def child_pids(self) -> list[int]:
        pids = []
        for run in self._runs.values():
            pid = getattr(run.workload, "pid", None)
            if isinstance(pid, int):
                pids.append(pid)
        return pids

    async def close(self) -> None:
        self._closed = True
        runs = list(self._runs.values())
        self._runs.clear()
        for run in runs:
            run.stopping = True
        await asyncio.gather(*(self._stop(r) for r in runs), return_exceptions=True)

    # -- internals -------------------------------------------------------------------
    def _allocate_ip(self, pod: dict[str, Any]) -> str:
        used = {r.ip for r in self._runs.values()}
        wanted = (pod.get("status") or {}).get("podIP")
        if wanted and self._block.contains(wanted) and wanted not in used:
            return wanted
        # IPs of Pods that exist but are not admitted yet must not be reused either
        for other in self._store.list("", "pods"):
            ip = (other.get("status") or {}).get("podIP")
            if ip and other["metadata"]["uid"] != pod["metadata"]["uid"]:
                used.add(ip)
        for ip in self._block.pod_ips():
            if ip not in used:
                return ip
        raise RuntimeError("no free Pod IP left in the sandbox")

    def _admit(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        run = _PodRun(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            ip=self._allocate_ip(pod),
            image=containers[0].get("image", ""),
        )
        self._runs[run.uid] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run, pod))

    def _context(self, run: _PodRun, pod: dict[str, Any]) -> PodContext:
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            value = item.get("value")
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if value is None and ref:
                value = self._secret_value(run.namespace, ref.get("name", ""), ref.get("key", ""))
            if value is not None:
                env[item["name"]] = value
        env.setdefault("POD_NAME", run.name)
        env.setdefault("POD_NAMESPACE", run.namespace)
        env.setdefault("POD_IP", run.ip)
        env["AGWLAB_CLUSTER_SERVICES"] = str(self._paths.cluster_services)
        podlog = PodLog(self._paths.pod_log(run.namespace, run.name))
        run.logs.append(podlog)
        return PodContext(
            namespace=run.namespace,
            name=run.name,
            pod_ip=run.ip,
            labels=dict(pod["metadata"].get("labels") or {}),
            image=run.image,
            env=env,
            ports=list(container.get("ports") or []),
            args=[*(container.get("command") or []), *(container.get("args") or [])],
            log=podlog,
            cluster=self._cluster,
            home=self._paths,
            extra={"files": self._mounted_files(run.namespace, pod, container),
                   "readinessProbe": container.get("readinessProbe")},
        )

    def _mounted_files(self, namespace: str, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """``{path: content}`` of the ConfigMap volumes the container mounts, read at start
        (as a container sees its files; a changed ConfigMap takes effect on restart here)."""
        volumes = {v.get("name"): v.get("configMap") for v in (pod.get("spec") or {}).get("volumes") or []}
        files: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            source = volumes.get(mount.get("name"))
            if not source:
                continue
            cm = self._store.get("", "configmaps", namespace, source.get("name", "")) or {}
            data = cm.get("data") or {}
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item.get("key") in data:
                    files[f"{mount['mountPath'].rstrip('/')}/{item.get('path', item['key'])}"] = data[item["key"]]
        return files

    def _secret_value(self, namespace: str, name: str, key: str) -> str | None:
        import base64

        secret = self._store.get("", "secrets", namespace, name)
        data = (secret or {}).get("data") or {}
        if key in data:
            return base64.b64decode(data[key]).decode("utf-8", "replace")
        return None

    async def _run(self, run: _PodRun, pod: dict[str, Any]) -> None:
        known = lookup(run.image)
        if known is None:
            names = ", ".join(sorted({k.repository for k in KNOWN_IMAGES}))
            run.waiting = (
                "ImagePullBackOff",
                f'Back-off pulling image "{run.image}": the sandbox cannot pull images; it runs these: {names}',
            )
            self._event(pod, "Scheduled", f"Successfully assigned {run.namespace}/{run.name} to {NODE_NAME}",
                        component="default-scheduler")
            self._event(pod, "Failed", f'Failed to pull image "{run.image}": the sandbox runs only these images: '
                        f"{names}", type="Warning")
            self._report(run)
            return
        self._event(pod, "Scheduled", f"Successfully assigned {run.namespace}/{run.name} to {NODE_NAME}",
                    component="default-scheduler")
        backoff = 0.5
        while not run.stopping:
            run.waiting = ("ContainerCreating", "")
            self._report(run)
            try:
                workload = known.create()
                run.workload = workload
                # a workload that knows how long its start may take under load says so
                limit = max(START_TIMEOUT, float(getattr(workload, "MAX_START", START_TIMEOUT)))
                await asyncio.wait_for(workload.start(self._context(run, pod)), limit)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a failed start is a crashed container, not a crashed sandbox
                log.warning("pod %s/%s failed to start: %s", run.namespace, run.name, e)
                with contextlib.suppress(Exception):
                    await workload.stop()
                run.last_terminated = {"exitCode": 1, "reason": "Error", "message": str(e)[:500],
                                       "finishedAt": now()}
                run.restarts += 1
                run.waiting = ("CrashLoopBackOff", f"back-off {backoff:.1f}s restarting failed container: {e}"[:500])
                self._event(pod, "BackOff", "Back-off restarting failed container", type="Warning")
                self._report(run)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            run.started_at = now()
            run.waiting = None
            spec = ((pod.get("spec") or {}).get("containers") or [{}])[0]
            readiness = spec.get("readinessProbe")
            probed = isinstance(readiness, dict) and bool(getattr(workload, "READINESS_BY_KUBELET", False))
            run.ready = not probed
            container = spec.get("name", "main")
            self._event(pod, "Pulled", f'Container image "{run.image}" already present on machine')
            self._event(pod, "Created", f"Created container: {container}")
            self._event(pod, "Started", f"Started container {container}")
            self._report(run)
            started = time.monotonic()
            prober = (asyncio.get_running_loop().create_task(self._probe_readiness(run, pod, readiness, spec))
                      if probed and isinstance(readiness, dict) else None)
            try:
                while not run.stopping and workload.alive():
                    await asyncio.sleep(0.2)
            finally:
                if prober is not None:
                    prober.cancel()
                    with contextlib.suppress(BaseException):
                        await prober
            if run.stopping:
                return
            # the container died on its own: restart it, as restartPolicy Always does
            run.ready = False
            run.restarts += 1
            run.last_terminated = {"exitCode": getattr(workload, "returncode", None) or 137,
                                   "reason": "Error", "startedAt": run.started_at, "finishedAt": now()}
            with contextlib.suppress(Exception):
                await workload.stop()
            if time.monotonic() - started > 30:
                backoff = 0.5
            run.waiting = ("CrashLoopBackOff", f"back-off {backoff:.1f}s restarting failed container")
            self._event(pod, "BackOff", "Back-off restarting failed container", type="Warning")
            self._report(run)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _probe_readiness(self, run: _PodRun, pod: dict[str, Any], readiness: dict[str, Any],
                               container: dict[str, Any]) -> None:
        """Probe a running container's readiness until it stops, as the kubelet's prober worker does."""
        try:
            probe = Probe.parse(readiness, list(container.get("ports") or []))
        except ValueError as e:
            self._event(pod, "Unhealthy", f"Readiness probe errored: {e}", type="Warning", run=run)
            return
        loop = asyncio.get_running_loop()
        await asyncio.sleep(probe.initial_delay)
        last: bool | None = None
        streak = 0
        succeeded_once = False
        while not run.stopping:
            tick = loop.time() + probe.period
            failure = await run_probe(probe, run.ip)
            # until the first success, look again within the period, so that a container becomes ready
            # when it starts answering rather than up to a period later; it still counts as one probe
            while failure is not None and not succeeded_once and loop.time() < tick - _FAST_PROBE:
                await asyncio.sleep(_FAST_PROBE)
                failure = await run_probe(probe, run.ip)
            ok = failure is None
            succeeded_once = succeeded_once or ok
            streak = streak + 1 if ok == last else 1
            last = ok
            if failure is not None:
                self._event(pod, "Unhealthy", f"Readiness probe failed: {failure}", type="Warning", run=run)
            threshold = probe.success_threshold if ok else probe.failure_threshold
            if ok != run.ready and streak >= threshold:
                run.ready = ok
                self._report(run)
            await asyncio.sleep(max(0.0, tick - loop.time()))

    async def _stop(self, run: _PodRun) -> None:
        if run.task:
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task
        if run.workload is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.workload.stop(), 10)
        for podlog in run.logs:
            podlog.close()
        self._stopping.pop(run.uid, None)
        # the stopped Pod may have held addresses a replacement is waiting for
        self._cluster.republish()
        if self.on_change is not None:
            self.on_change()

    def _event(self, pod: dict[str, Any], reason: str, message: str, *, type: str = "Normal",
               component: str = "kubelet", run: _PodRun | None = None) -> None:
        """Record an Event about ``pod``; with ``run``, a repeat of the same Event counts up instead."""
        namespace = pod["metadata"]["namespace"]
        previous = run.events.get((reason, message)) if run is not None else None
        if previous is not None and repeat_event(self._store, namespace, previous, component=component):
            return
        current = self._store.get("", "pods", namespace, pod["metadata"]["name"])
        if current is not None and current["metadata"]["uid"] == pod["metadata"]["uid"]:
            name = record_event(self._store, current, reason, message, type=type, component=component)
            if run is not None and name is not None:
                run.events[(reason, message)] = name

    def _report(self, run: _PodRun) -> None:
        """Write the Pod's status as a kubelet would."""
        pod = self._store.get("", "pods", run.namespace, run.name)
        if pod is None or pod["metadata"]["uid"] != run.uid or run.stopping:
            return
        old = pod.get("status") or {}
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        t = now()

        def cond(ctype: str, ok: bool) -> dict[str, Any]:
            prev = next((c for c in old.get("conditions") or [] if c.get("type") == ctype), None)
            status = "True" if ok else "False"
            changed = t if not prev or prev.get("status") != status else prev.get("lastTransitionTime", t)
            c: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None,
                                 "lastTransitionTime": changed}
            if not ok and ctype in ("Ready", "ContainersReady"):
                c["reason"] = "ContainersNotReady"
                c["message"] = f"containers with unready status: [{container.get('name', 'main')}]"
            return c

        if run.waiting:
            state: dict[str, Any] = {"waiting": {"reason": run.waiting[0]}}
            if run.waiting[1]:
                state["waiting"]["message"] = run.waiting[1]
        else:
            state = {"running": {"startedAt": run.started_at or t}}
        cs: dict[str, Any] = {
            "name": container.get("name", "main"),
            "image": run.image,
            "imageID": f"agwlab.local/images@{run.image}",
            "ready": run.ready,
            "started": run.waiting is None,
            "restartCount": run.restarts,
            "state": state,
        }
        if run.waiting is None or run.waiting[0] != "ImagePullBackOff":
            cs["containerID"] = f"agwlab://{run.uid[:12]}-{run.restarts}"
        if run.last_terminated:
            cs["lastState"] = {"terminated": run.last_terminated}
        status = {
            "phase": "Running" if run.started_at else "Pending",
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", True),
                cond("Ready", run.ready),
                cond("ContainersReady", run.ready),
                cond("PodScheduled", True),
            ],
            "hostIP": self._block.apiserver,
            "hostIPs": [{"ip": self._block.apiserver}],
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": old.get("startTime") or t,
            "containerStatuses": [cs],
            "qosClass": "BestEffort",
        }
        if status == old:
            return
        pod = dict(pod)
        pod["status"] = status
        pod["metadata"] = {k: v for k, v in pod["metadata"].items() if k != "resourceVersion"}
        try:
            self._store.update(pod, subresource="status", field_manager="kubelet")
        except Exception as e:  # the Pod may have been deleted meanwhile
            log.debug("status of %s/%s not written: %s", run.namespace, run.name, e)
