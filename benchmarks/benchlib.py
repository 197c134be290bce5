"""What the benchmark scripts share: a fresh sandbox, the lab's objects, polling and figures.

Every script starts its own sandbox in a fresh temporary ``AGWLAB_HOME`` (so a learner's
sandbox and other runs are never touched), talks to loopback addresses only and stops the
sandbox at the end. Figures are printed with PASS/MISS against a target; a miss never makes
a script exit non-zero.

Example:
    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    >>> verdict(1.5, 2.0)
    'PASS'
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(REPO))

from agwlab.sandbox import SandboxInfo, ensure_running, stop  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from labtest import poll as _labtest_poll  # noqa: E402

__all__ = [
    "FETCHER_NS",
    "KEY",
    "MCP_OBJECTS",
    "NS",
    "REPO",
    "SEED_MODEL",
    "SITE",
    "TRACING_POLICY",
    "counter_values",
    "descendants",
    "fetcher_objects",
    "fresh_sandbox",
    "gateway_base",
    "header",
    "kube_clients",
    "lab_objects",
    "llm_objects",
    "median",
    "percentile",
    "pod_ip",
    "poll",
    "relocate",
    "report",
    "scrape",
    "server_side_apply",
    "verdict",
]

#: Shaped like an Anthropic key; the sandbox's stand-in checks only the shape.
KEY = "sk-ant-api03-" + "B" * 86 + "AA"
SEED_MODEL = "claude-sonnet-4-5-20250929"
NS = "agentgateway-system"
FETCHER_NS = "default"
SITE = "http://lab-website.agwlab-system.svc.cluster.local/"
_DATA = REPO / "tests" / "data"

#: The MCP backend and route as corrected for the sandbox (the tutorial's are refused).
MCP_OBJECTS = (_DATA / "mcp_fixed.yaml").read_text(encoding="utf-8")

#: The lab's tracing policy (spans to the sandbox's collector).
TRACING_POLICY = (_DATA / "tracing_policy.yaml").read_text(encoding="utf-8")


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def llm_objects(key: str = KEY) -> list[dict[str, Any]]:
    """The tutorial's Gateway, Secret, AgentgatewayBackend and HTTPRoute, key substituted and the
    Gateway on the ``agentgateway`` class, as the lab makes it (open-source v1.4.1 has no
    ``enterprise-agentgateway`` class)."""
    text = (_DATA / "seed_llm.yaml").read_text(encoding="utf-8").replace("${ANTHROPIC_API_KEY}", key)
    return _docs(text.replace("gatewayClassName: enterprise-agentgateway", "gatewayClassName: agentgateway"))


def fetcher_objects() -> list[dict[str, Any]]:
    """The website fetcher's Deployment and Service, as the tutorial has them."""
    return [d for d in _docs((_DATA / "seed_mcp.yaml").read_text(encoding="utf-8"))
            if d["kind"] in ("Deployment", "Service")]


def lab_objects(key: str = KEY, *, tracing: bool = True) -> list[dict[str, Any]]:
    """Every object the lab applies: LLM (4), tracing policy (1), fetcher (2), MCP backend and route (2)."""
    objs = llm_objects(key)
    if tracing:
        objs += _docs(TRACING_POLICY)
    return objs + fetcher_objects() + _docs(MCP_OBJECTS)


@contextlib.contextmanager
def fresh_sandbox(timeout: float = 60) -> Iterator[SandboxInfo]:
    """A sandbox in a new temporary ``AGWLAB_HOME``; stopped and removed on exit."""
    home = Path(tempfile.mkdtemp(prefix="agwlab-bench-"))
    old = os.environ.get("AGWLAB_HOME")
    os.environ["AGWLAB_HOME"] = str(home)
    try:
        yield ensure_running(home, timeout=timeout)
    finally:
        stop(home)
        if old is None:
            os.environ.pop("AGWLAB_HOME", None)
        else:
            os.environ["AGWLAB_HOME"] = old
        shutil.rmtree(home, ignore_errors=True)


def kube_clients(info: SandboxInfo) -> tuple[Any, Any, Any]:
    """``(ApiClient, CoreV1Api, DynamicClient)`` for the sandbox, with discovery warmed."""
    from kubernetes import client, config, dynamic

    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    dyn = dynamic.DynamicClient(api)
    return api, client.CoreV1Api(api), dyn


def server_side_apply(dyn: Any, objs: Iterable[dict[str, Any]], *, manager: str = "agwlab-bench",
                      timings: list[tuple[str, float]] | None = None) -> list[Any]:
    """Server-side apply each object (conflicts forced, unknown fields refused).

    Args:
        timings: when given, ``("Kind/name", seconds)`` is appended for each object.
    """
    out = []
    for obj in objs:
        t = time.perf_counter()
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = (obj["metadata"].get("namespace") or "default") if res.namespaced else None
        out.append(dyn.server_side_apply(res, body=obj, name=obj["metadata"]["name"], namespace=ns,
                                         field_manager=manager, force_conflicts=True,
                                         query_params=[("fieldValidation", "Strict")]))
        if timings is not None:
            timings.append((f"{obj['kind']}/{obj['metadata']['name']}", time.perf_counter() - t))
    return out


def relocate(objs: Iterable[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Copies of ``objs`` moved to ``namespace`` (routes' parentRefs follow)."""
    out = []
    for obj in copy.deepcopy(list(objs)):
        obj["metadata"]["namespace"] = namespace
        for ref in (obj.get("spec") or {}).get("parentRefs") or []:
            if "namespace" in ref:
                ref["namespace"] = namespace
        out.append(obj)
    return out


def poll(fn: Callable[[], Any], *, timeout: float = 30, what: str = "condition", every: float = 0.05) -> Any:
    """The tests' ``poll`` (tests/labtest.py), with a benchmark's defaults.

    Raises:
        TimeoutError: not within ``timeout`` seconds (the message has the last thing seen).
    """
    return _labtest_poll(fn, timeout=timeout, what=what, every=every)


def pod_ip(core: Any, namespace: str, selector: str) -> str:
    """The IP of the first Ready Pod matching ``selector`` (waits up to 30 s)."""
    def ready() -> str | None:
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items:
            conds = {c.type: c.status for c in (p.status.conditions or [])}
            if conds.get("Ready") == "True" and p.status.pod_ip:
                return str(p.status.pod_ip)
        return None
    return str(poll(ready, what=f"a Ready Pod {selector} in {namespace}"))


def gateway_base(api: Any) -> str:
    """``http://<address>:8080`` of the lab's Gateway, once it has an address."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)

    def addr() -> str | None:
        gw = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "gateways",
                                                 "agentgateway-route")
        addrs = (gw.get("status") or {}).get("addresses") or []
        return addrs[0]["value"] if addrs else None
    return f"http://{poll(addr, what='the Gateway address')}:8080"


def scrape(url: str) -> dict[str, Any]:
    """Metric families from an OpenMetrics endpoint, by name."""
    text = httpx.get(url, timeout=10).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def counter_values(url: str, family: str, keys: tuple[str, ...], **match: str) -> dict[tuple[str, ...], float]:
    """``{label values: value}`` of a counter's ``_total`` samples whose labels equal ``match``."""
    fam = scrape(url).get(family)
    out: dict[tuple[str, ...], float] = {}
    for s in fam.samples if fam else []:
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in match.items()):
            k = tuple(s.labels.get(x, "") for x in keys)
            out[k] = out.get(k, 0.0) + s.value
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), read from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    if not values:
        raise ValueError("no values")
    xs = sorted(values)
    rank = max(1, min(len(xs), int(-(-q * len(xs) // 100))))
    return xs[rank - 1]


def verdict(value: float, limit: float) -> str:
    """``PASS`` when ``value`` is within ``limit`` (lower is better), else ``MISS``."""
    return "PASS" if value <= limit else "MISS"


def report(label: str, value: float, unit: str, limit: float | None = None, *, note: str = "") -> None:
    """Print one figure, with PASS/MISS when it has a target."""
    target = f"  target <= {limit:g} {unit}  {verdict(value, limit)}" if limit is not None else ""
    print(f"  {label:<56} {value:10.2f} {unit:<3}{target}{('  ' + note) if note else ''}", flush=True)


def header(title: str) -> None:
    """Print what ran where and when."""
    print(f"# {title}")
    load = os.getloadavg()[0]
    busy = "  (busy machine: other processes compete, figures are pessimistic)" if load > (os.cpu_count() or 1) else ""
    print(f"# {datetime.now(UTC).isoformat(timespec='seconds')}  {platform.node()}  {os.cpu_count()} cores  "
          f"Python {platform.python_version()}  load {load:.1f}{busy}", flush=True)


def median(values: list[float]) -> float:
    """The median (re-exported so scripts need one import)."""
    return statistics.median(values)
