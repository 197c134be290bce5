"""The sandbox process: API server, controller, kubelet and Prometheus on one event loop.

Started in the background by :func:`agwlab.sandbox.ensure_running`; run it in the
foreground for debugging with ``python -m agwlab.sandbox.daemon --root ~/.agwlab/sandbox``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
import yaml

from .apiserver import create_app
from .apiserver.tls import ensure_tls
from .cluster import Cluster
from .controller import Controller
from .kubelet import Kubelet
from .logs import KeyMaskFilter, RepeatFilter
from .network import AddressBlock, choose_block, free_port, port_free
from .paths import SandboxPaths
from .profiles import PROFILE_ENV, in_cluster_prometheus, profile_named
from .prometheus import PROMETHEUS_HINT, PrometheusServer
from .serving import IDLE_TIMEOUT, guarded_protocol
from .store import Store
from .supervisor import kill_leftover_children, read_state, write_state

__all__ = ["main", "run"]

log = logging.getLogger("agwlab.sandbox")

API_PORT = 6443
KUBE_VERSION = "v1.32.4-agwlab"
# Modules the Pods a learner creates will need (a Gateway's proxy, its OTLP exporters, MCP),
# imported in a thread while the system Pods start, and before the sandbox says it is
# ready, so that the first `kubectl apply` of a Gateway does not stall the event loop
# on half a second of imports.
_WARM_MODULES = (
    "agwlab.sandbox.proxy.server",
    "agwlab.sandbox.proxy.ai",
    "agwlab.sandbox.proxy.mcp",
    "agwlab.sandbox.workloads.website_fetcher_pod",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "httpcore",                      # httpx loads its transport stack on first client
    "anyio._backends._asyncio",
)
# system Pods the sandbox waits for before it says it is ready
_SYSTEM_PODS = [("telemetry", "opentelemetry-collector-traces"), ("agwlab-system", "anthropic-standin"),
                ("agentgateway-system", "agentgateway")]


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _warm() -> None:
    """Import what learners' Pods will need, off the event loop (see ``_WARM_MODULES``)."""
    for name in _WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception as e:  # a missing optional part shows up when a Pod needs it
            log.debug("not preloaded: %s (%s)", name, e)


def write_kubeconfig(paths: SandboxPaths, server: str, token: str, ca_data: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "agwlab-sandbox",
                      "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "agwlab-learner", "user": {"token": token}}],
        "contexts": [{"name": "agwlab-sandbox",
                      "context": {"cluster": "agwlab-sandbox", "user": "agwlab-learner", "namespace": "default"}}],
        "current-context": "agwlab-sandbox",
        "preferences": {},
    }
    tmp = paths.kubeconfig.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, paths.kubeconfig)


def _system_ready(store: Store) -> bool:
    for ns, name in _SYSTEM_PODS:
        d = store.get("apps", "deployments", ns, name)
        if d is None:
            continue  # deleted by the learner: not ours to wait for
        if int((d.get("spec") or {}).get("replicas", 1)) == 0:
            continue
        if int((d.get("status") or {}).get("readyReplicas", 0)) < 1:
            return False
    return True


async def run(paths: SandboxPaths) -> None:
    t0 = time.perf_counter()
    paths.ensure()
    kill_leftover_children(paths)
    state = read_state(paths)
    token = state.get("token") or secrets.token_urlsafe(32)
    block = AddressBlock(state["block"]) if state.get("block") else None
    if block is None or not port_free(block.apiserver, API_PORT):
        block = choose_block(paths.root.parent)
    apiserver = f"https://{block.apiserver}:{API_PORT}"
    # client-go sends a kubeconfig's bearer token over HTTPS only
    tls = ensure_tls(paths.root / "pki", [block.apiserver])

    profile = profile_named(os.environ.get(PROFILE_ENV) or state.get("profile"))
    store = Store(paths.store)
    cluster = Cluster(paths)
    kubelet = Kubelet(store, cluster, paths, block)
    prometheus = PrometheusServer(paths, block.prometheus, free_port(block.prometheus, 9090))
    controller = Controller(store, cluster, kubelet, block, on_targets=prometheus.write_targets,
                            load_balancer=profile.load_balancer)

    app = create_app(store, token=token, paths=paths, version=KUBE_VERSION)
    server = _QuietServer(uvicorn.Config(app, host=block.apiserver, port=API_PORT, log_level="warning", ws="wsproto",
                                         lifespan="off", access_log=False, timeout_graceful_shutdown=1,
                                         http=guarded_protocol(), timeout_keep_alive=IDLE_TIMEOUT,
                                         ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)))
    serve_task = asyncio.create_task(server.serve())
    prom_task = asyncio.create_task(prometheus.start())
    while not server.started:
        if serve_task.done():
            serve_task.result()
            raise RuntimeError("the API server stopped during start-up")
        await asyncio.sleep(0.005)
    write_kubeconfig(paths, apiserver, token, tls.ca_data())
    controller.start()
    warm_task = asyncio.create_task(asyncio.to_thread(_warm))

    state = {
        "pid": os.getpid(),
        "block": block.n,
        "block_cidr": f"127.{block.n}.0.0/16",
        "apiserver": apiserver,
        "token": token,
        "profile": profile.name,
        "ca_file": str(tls.ca_cert),
        "prometheus_url": prometheus.url if prometheus.binary else None,
        "prometheus_hint": None if prometheus.binary else PROMETHEUS_HINT,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "ready": False,
    }
    write_state(paths, state)
    try:
        await prom_task
        if prometheus.alive():
            state["prometheus_state"] = "running"
    except Exception as e:
        log.error("prometheus did not start: %s", e)
        state["prometheus_url"] = None
        state["prometheus_hint"] = str(e)
    if not profile.prometheus_advertised and state["prometheus_url"]:
        # as on kind: Prometheus is an in-cluster Service, found and reached through the API
        controller.ensure_objects(in_cluster_prometheus(block.prometheus, prometheus.port))
        state["prometheus_url"] = None
        state["prometheus_hint"] = (f"profile {profile.name}: in the cluster only, as Service "
                                    "monitoring/prometheus-operated (reach it through the API server)")
    deadline = time.monotonic() + 20
    while not _system_ready(store) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(warm_task), max(0.1, deadline - time.monotonic()))
    state["ready"] = True
    write_state(paths, state)
    log.info("sandbox ready in %.2fs: API %s, Prometheus %s", time.perf_counter() - t0, apiserver,
             state["prometheus_url"] or f"not running ({state['prometheus_hint']})")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def keep_children_file() -> None:
        last: list[int] = []
        while True:
            pids = sorted([*kubelet.child_pids(), *([prometheus.pid] if prometheus.pid else [])])
            if pids != last:
                (paths.root / "children").write_text(" ".join(map(str, pids)), encoding="utf-8")
                last = pids
            await asyncio.sleep(0.5)

    def prometheus_changed(text: str) -> None:
        state["prometheus_state"] = text
        state["prometheus_restarts"] = prometheus.restarts
        write_state(paths, state)

    children_task = asyncio.create_task(keep_children_file())
    supervise_task = asyncio.create_task(prometheus.supervise(prometheus_changed)) if prometheus.alive() else None
    await stop.wait()
    log.info("stopping the sandbox")
    children_task.cancel()
    if supervise_task is not None:
        supervise_task.cancel()
    warm_task.cancel()
    await controller.stop()
    await kubelet.close()
    await prometheus.stop()
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serve_task, 5)
    store.close()
    (paths.root / "children").unlink(missing_ok=True)
    log.info("sandbox stopped")


def _raise_descriptor_limit() -> None:
    """Use the hard limit on open files: every listener's connection cap must fit in it."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError) as exc:
        log.debug("open-file limit unchanged: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agwlab.sandbox.daemon")
    parser.add_argument("--root", type=Path, default=SandboxPaths.for_home().root)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter())  # a flood of one error must not fill the disk
        handler.addFilter(KeyMaskFilter())  # nor may a key someone sent end up in it
    _raise_descriptor_limit()
    for noisy in ("httpx", "httpcore", "mcp", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run(SandboxPaths(args.root.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
