"""Connecting to the lab: the sandbox or a real cluster, its clients and addresses.

Example:
    >>> from agwlab import connect          # doctest: +SKIP
    >>> lab = connect()                     # the sandbox, started if needed
    >>> lab.gateway_url()                   # doctest: +SKIP
    'http://127.64.255.1:8080'
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kubernetes import config as kube_config
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from .errors import (
    GatewayAddressUnavailable,
    LabError,
    NotFound,
    PrometheusUnavailable,
    SandboxUnavailable,
    from_api_error,
)

if TYPE_CHECKING:
    from .secrets import ApiKey

__all__ = [
    "Edition",
    "Lab",
    "STAGES",
    "Target",
    "cleanup",
    "connect",
    "data_plane_probe",
    "leftovers",
    "preflight",
    "prepare",
]

Target = Literal["sandbox", "cluster"]
Edition = Literal["oss", "enterprise"]

GATEWAY_NAME = "agentgateway-route"
GATEWAY_NAMESPACE = "agentgateway-system"
MCP_NAMESPACE = "default"
TELEMETRY_NAMESPACE = "telemetry"
LISTENER_PORT = 8080
# The agentgateway release whose behaviour the lab was written and checked against.
TESTED_VERSION = "v1.4.1"


@dataclass
class Lab:
    """A connection to where the lab runs, with everything the notebooks need to reach it.

    Attributes:
        target: ``"sandbox"`` or ``"cluster"``.
        api_client: the kubernetes ``ApiClient`` (typed APIs take it).
        dynamic: a ``DynamicClient`` over the same connection (any kind, CRDs included).
        gateway_class: the GatewayClass the lab's Gateway uses.
        edition: ``"oss"`` (class ``agentgateway``) or ``"enterprise"``.
        gateway_name: the Gateway's name; the proxy's Deployment and Service share it.
        gateway_namespace: where the Gateway, routes, backends and Secret live.
        mcp_namespace: where the MCP website fetcher runs.
        telemetry_namespace: where the OpenTelemetry collector runs.
        kubeconfig: the kubeconfig file used (``None`` for the default one).
        context: the kubeconfig context (``None`` for its current context).
        sandbox: what the sandbox reported when it started (sandbox only).
    """

    target: Target
    api_client: ApiClient
    dynamic: DynamicClient
    gateway_class: str = "agentgateway"
    edition: Edition = "oss"
    gateway_name: str = GATEWAY_NAME
    gateway_namespace: str = GATEWAY_NAMESPACE
    mcp_namespace: str = MCP_NAMESPACE
    telemetry_namespace: str = TELEMETRY_NAMESPACE
    kubeconfig: Path | None = None
    context: str | None = None
    sandbox: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    def api_key(self) -> ApiKey:
        """The Anthropic key to use here (see :func:`agwlab.secrets.get_api_key`)."""
        from .secrets import get_api_key

        return get_api_key(target=self.target)

    def gateway_address(self) -> str:
        """The Gateway's address: ``status.addresses[0].value``, else its Service's LoadBalancer.

        ``AGWLAB_GATEWAY_ADDRESS`` overrides both (use it with a port-forward).

        Raises:
            GatewayAddressUnavailable: when neither has an address yet.
        """
        override = os.environ.get("AGWLAB_GATEWAY_ADDRESS", "").strip()
        if override:
            return override
        from . import kube

        try:
            gw = kube.get(self, "Gateway", self.gateway_name, self.gateway_namespace)
        except NotFound:
            raise GatewayAddressUnavailable(
                f"there is no Gateway {self.gateway_namespace}/{self.gateway_name} yet: "
                "run the Gateway step of 01-claude-llm-connection first"
            ) from None
        addresses = (gw.get("status") or {}).get("addresses") or []
        if addresses and addresses[0].get("value"):
            return str(addresses[0]["value"])
        try:
            svc = kube.get(self, "Service", self.gateway_name, self.gateway_namespace)
        except NotFound:
            svc = {}
        ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
        if ingress:
            value = ingress[0].get("ip") or ingress[0].get("hostname")
            if value:
                return str(value)
        hint = (
            "the sandbox assigns one within a second or two; wait for the Gateway to be Programmed"
            if self.target == "sandbox"
            else (
                "without a LoadBalancer (kind, minikube) forward the port: kubectl port-forward "
                f"deploy/{self.gateway_name} -n {self.gateway_namespace} {LISTENER_PORT}:{LISTENER_PORT}, "
                "then set AGWLAB_GATEWAY_ADDRESS=127.0.0.1"
            )
        )
        raise GatewayAddressUnavailable(
            f"Gateway {self.gateway_namespace}/{self.gateway_name} has no address yet: {hint}"
        )

    def gateway_url(self, path: str = "", *, port: int = LISTENER_PORT) -> str:
        """``http://<gateway address>:<port><path>``.

        Raises:
            GatewayAddressUnavailable: see :meth:`gateway_address`.
        """
        address = self.gateway_address()
        host = f"[{address}]" if ":" in address and not address.startswith("[") else address
        return f"http://{host}:{port}{path}"

    def prometheus_url(self) -> str:
        """Where Prometheus answers: the sandbox's own, or ``AGWLAB_PROMETHEUS_URL``.

        Raises:
            PrometheusUnavailable: on a cluster without ``AGWLAB_PROMETHEUS_URL``.
        """
        override = os.environ.get("AGWLAB_PROMETHEUS_URL", "").strip()
        if override:
            return override.rstrip("/")
        url = getattr(self.sandbox, "prometheus_url", None)
        if url:
            return str(url).rstrip("/")
        if self.target == "sandbox":
            raise PrometheusUnavailable(
                "the sandbox did not start Prometheus (is /usr/bin/prometheus installed?): "
                "see python -m agwlab sandbox status"
            )
        raise PrometheusUnavailable(
            "no Prometheus URL: forward one "
            "(e.g. kubectl port-forward -n monitoring svc/prometheus-operated 9090) "
            "and set AGWLAB_PROMETHEUS_URL=http://127.0.0.1:9090"
        )

    def describe(self) -> str:
        """A few lines saying where the lab runs."""
        where = (
            "the local sandbox"
            if self.target == "sandbox"
            else f"cluster context {self.context or '(current)'}"
        )
        lines = [
            f"target: {where}",
            f"API server: {self.server}",
            f"GatewayClass: {self.gateway_class} ({self.edition})",
            f"Gateway: {self.gateway_namespace}/{self.gateway_name}",
        ]
        return "\n".join(lines + self.notes)

    def __repr__(self) -> str:
        return f"Lab(target={self.target!r}, server={self.server!r}, gateway_class={self.gateway_class!r})"

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.describe()) + "</pre>"


def _discovery_cache(home: Path, server: str) -> Path:
    # One cache file per API server, recreated on every connect: a sandbox restarted on
    # the same address must not be seen through an old discovery document.
    digest = hashlib.sha256(server.encode("utf-8")).hexdigest()[:16]
    path = home / "cache" / f"discovery-{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def _home() -> Path:
    value = os.environ.get("AGWLAB_HOME")
    return Path(value).expanduser().resolve() if value else (Path.home() / ".agwlab").resolve()


def connect(
    target: Target | None = None,
    *,
    edition: Edition | None = None,
    gateway_class: str | None = None,
    context: str | None = None,
    home: Path | None = None,
    timeout: float = 30,
) -> Lab:
    """Connect to the lab, starting the sandbox if needed.

    Args:
        target: ``"sandbox"`` or ``"cluster"``; default ``$AGWLAB_TARGET``, else the sandbox.
        edition: ``"oss"`` or ``"enterprise"``; default from the GatewayClass name.
        gateway_class: default ``$AGWLAB_GATEWAY_CLASS``, else ``agentgateway``
            (``enterprise-agentgateway`` for the enterprise edition).
        context: kubeconfig context for a cluster (default: the current context).
        home: the agwlab home for the sandbox (default ``$AGWLAB_HOME`` or ``~/.agwlab``).
        timeout: seconds to wait for the sandbox to start.

    Returns:
        A :class:`Lab`.

    Raises:
        SandboxUnavailable: the sandbox could not be started.
        LabError: an unknown target, or no usable kubeconfig.
    """
    chosen = (target or os.environ.get("AGWLAB_TARGET", "") or "sandbox").strip().lower()
    if chosen not in ("sandbox", "cluster"):
        raise LabError(f"unknown target {chosen!r}: use 'sandbox' or 'cluster' (or set AGWLAB_TARGET)")
    cls = gateway_class or os.environ.get("AGWLAB_GATEWAY_CLASS", "").strip()
    if not cls:
        cls = "enterprise-agentgateway" if edition == "enterprise" else "agentgateway"
    ed: Edition = edition or ("enterprise" if cls.startswith("enterprise-") else "oss")

    info = None
    kubeconfig: Path | None = None
    if chosen == "sandbox":
        try:
            from .sandbox import ensure_running
        except ImportError as exc:
            raise SandboxUnavailable(f"the sandbox is not available in this install ({exc})") from None
        try:
            info = ensure_running(home, timeout=timeout)
        except LabError:
            raise
        except Exception as exc:  # the sandbox reports its own failures; keep them short
            raise SandboxUnavailable(
                f"the sandbox did not start: {exc}. Try: python -m agwlab sandbox up, then read "
                "python -m agwlab sandbox status"
            ) from None
        kubeconfig = Path(info.kubeconfig)
        base = Path(info.home)
    else:
        env_kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        kubeconfig = Path(env_kubeconfig) if env_kubeconfig else None
        base = home or _home()
    try:
        api_client = kube_config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
    except Exception as exc:
        raise LabError(
            f"could not load the kubeconfig ({exc}): check KUBECONFIG and kubectl config current-context"
        ) from None
    server = str(api_client.configuration.host)
    try:
        dynamic = DynamicClient(api_client, cache_file=str(_discovery_cache(base, server)))
    except Exception as exc:
        raise from_api_error(exc, action="discover the APIs of", name=server) from None
    return Lab(
        target=chosen,  # type: ignore[arg-type]
        api_client=api_client,
        dynamic=dynamic,
        gateway_class=cls,
        edition=ed,
        kubeconfig=kubeconfig,
        context=context,
        sandbox=info,
    )


# --- bringing the lab to a stage, and checking what it needs --------------------------------

STAGES = ("llm", "tracing", "mcp")

# What must be true before a stage counts as done: (kind, name, namespace attribute, condition).
_READY = {
    "llm": [
        ("Gateway", "agentgateway-route", "gateway_namespace", "Programmed"),
        ("AgentgatewayBackend", "anthropic", "gateway_namespace", "Accepted"),
        ("HTTPRoute", "claude", "gateway_namespace", "Accepted"),
    ],
    "tracing": [
        ("Deployment", "opentelemetry-collector-traces", "telemetry_namespace", "Available"),
        ("AgentgatewayPolicy", "tracing", "gateway_namespace", "Accepted"),
    ],
    "mcp": [
        ("Deployment", "mcp-website-fetcher", "mcp_namespace", "Available"),
        ("AgentgatewayBackend", "mcp-backend", "gateway_namespace", "Accepted"),
        ("HTTPRoute", "mcp-route", "gateway_namespace", "Accepted"),
    ],
}

MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "agwlab-probe", "version": "1"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def data_plane_probe(lab: Lab, stage: str) -> Any:
    """A probe (for :func:`agwlab.checks.check`) that the proxy serves a stage's route.

    ``llm``: ``POST /anthropic`` with a body the gateway refuses itself (so nothing reaches
    Claude) must not be ``404 route not found``. ``mcp``: an MCP ``initialize`` on ``/mcp``
    must answer 200.
    """
    from .checks import http_probe

    if stage == "mcp":
        return http_probe(
            lab.gateway_url("/mcp"), method="POST", json=MCP_INITIALIZE, headers=MCP_HEADERS, expect=(200,)
        )
    return http_probe(
        lab.gateway_url("/anthropic"),
        method="POST",
        json={"messages": "not a list: the gateway answers 400 without calling Claude"},
        expect=lambda r: r.status_code != 404,
    )


def _collector_installed(lab: Lab) -> bool:
    """Whether a collector Deployment exists, installed by the lab or by anyone else (e.g. Helm)."""
    from . import kube

    found = kube.get(
        lab, "Deployment", "opentelemetry-collector-traces", lab.telemetry_namespace, missing_ok=True
    )
    return found is not None


def prepare(lab: Lab, *stages: str, timeout: float = 60) -> None:
    """Bring the lab to the state the notebooks of ``stages`` leave (idempotent).

    Applies each stage's objects (unchanged ones stay unchanged), waits until they are
    ready, and probes the data plane. For ``tracing``, a collector is installed only where
    there is none; one installed otherwise (e.g. with Helm) is left alone.

    Raises:
        WaitTimeout: something did not become ready in time.
        CheckFailed: in strict mode, when the proxy does not serve a route.
    """
    from . import kube, manifests
    from .checks import check

    for stage in stages:
        if stage not in STAGES:
            raise LabError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
        objs = manifests.stage(
            stage,  # type: ignore[arg-type]
            api_key=lab.api_key() if stage == "llm" else None,
            gateway_class=lab.gateway_class,
        )
        if stage == "tracing" and not _collector_installed(lab):
            objs = manifests.ManifestList([*manifests.collector(), *objs])
        applied = kube.apply(lab, objs, quiet=True)
        changed = [str(a) for a in applied if a.action != "unchanged"]
        for kind, name, ns_attr, condition in _READY[stage]:
            kube.wait_for(
                lab, kind, name, getattr(lab, ns_attr), condition=condition, timeout=timeout, quiet=True
            )
        summary = f"{len(applied)} objects, {len(changed)} changed" + (
            f" ({'; '.join(changed)})" if changed else ""
        )
        if stage in ("llm", "mcp"):
            path = "/anthropic" if stage == "llm" else "/mcp"
            check(
                "prepare",
                stage,
                data_plane_probe(lab, stage),
                what=f"stage {stage} is in place ({summary}) and the proxy serves {path}",
                hint="read the conditions with kube.get(lab, ...) and the proxy's log with "
                "traces.proxy_log(lab)",
                timeout=timeout,
            )
        else:
            check("prepare", stage, True, what=f"stage {stage} is in place ({summary})", hint="")


def _served(lab: Lab, api_version: str, kind: str) -> bool:
    from . import kube
    from .errors import ResourceTypeMissing

    try:
        kube._resource(lab, kind, api_version)
    except ResourceTypeMissing:
        return False
    return True


def _crd_version(lab: Lab, name: str) -> str:
    """The version a CRD says it belongs to (bundle version or chart label), if readable."""
    from . import kube

    try:
        crd = kube.get(lab, "CustomResourceDefinition", name, missing_ok=True)
    except LabError:
        return ""
    if not crd:
        return ""
    meta = crd.get("metadata") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    return str(
        annotations.get("gateway.networking.k8s.io/bundle-version")
        or labels.get("app.kubernetes.io/version")
        or labels.get("helm.sh/chart")
        or ""
    )


def preflight(lab: Lab) -> list[Any]:
    """Check what the lab needs, one ✅/❌ per item with a fix: the API server, the Gateway API
    and agentgateway CRDs (with their versions), the GatewayClass, the collector and Prometheus.

    Returns:
        The :class:`agwlab.checks.CheckResult` of each item.

    Raises:
        CheckFailed: in strict mode, at the first failed item.
    """
    import shutil

    import httpx

    from . import kube
    from .checks import check

    results = []
    stage = "00-setup"
    kubectl = shutil.which("kubectl")
    print(f"kubectl: {kubectl or 'not found (the notebooks do not need it; the commands they show do)'}")
    print(
        f"helm:    {shutil.which('helm') or 'not found (needed only to install agentgateway on a cluster)'}"
    )

    def api() -> tuple[bool, str]:
        try:
            response = lab.api_client.call_api(
                *lab.api_client.param_serialize("GET", "/version", auth_settings=["BearerToken"]),
                _request_timeout=(5, 10),
            )
            response.read()
            version = json.loads(response.data or b"{}")
        except Exception as exc:
            raise from_api_error(exc, action="read the version of", name=lab.server) from None
        return True, f"{lab.server} answers: Kubernetes {version.get('gitVersion', '?')}"

    results.append(
        check(
            stage,
            "api",
            api,
            what="the Kubernetes API server answers",
            hint="start the sandbox (python -m agwlab sandbox up) or fix your kubeconfig context",
        )
    )

    def gateway_api() -> tuple[bool, str]:
        missing = [
            k
            for k in ("GatewayClass", "Gateway", "HTTPRoute")
            if not _served(lab, "gateway.networking.k8s.io/v1", k)
        ]
        version = _crd_version(lab, "gateways.gateway.networking.k8s.io")
        return not missing, (
            f"missing: {', '.join(missing)}" if missing else f"gateway.networking.k8s.io/v1 {version}".strip()
        )

    results.append(
        check(
            stage,
            "gateway-api",
            gateway_api,
            what="the Gateway API CRDs are installed",
            hint="kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/"
            "releases/download/v1.6.1/standard-install.yaml",
        )
    )

    def agw_crds() -> tuple[bool, str]:
        kinds = ("AgentgatewayBackend", "AgentgatewayPolicy", "AgentgatewayParameters")
        missing = [k for k in kinds if not _served(lab, "agentgateway.dev/v1alpha1", k)]
        version = _crd_version(lab, "agentgatewaybackends.agentgateway.dev")
        return not missing, (
            f"missing: {', '.join(missing)}" if missing else f"agentgateway.dev/v1alpha1 {version}".strip()
        )

    results.append(
        check(
            stage,
            "agentgateway-crds",
            agw_crds,
            what="agentgateway's CRDs are installed",
            hint="helm upgrade -i agentgateway-crds oci://cr.agentgateway.dev/charts/agentgateway-crds "
            "-n agentgateway-system --create-namespace --version v1.4.1",
        )
    )

    def controller() -> tuple[bool, str]:
        names = (
            ("enterprise-agentgateway", "agentgateway") if lab.edition == "enterprise" else ("agentgateway",)
        )
        for name in names:
            deploy = kube.get(lab, "Deployment", name, lab.gateway_namespace, missing_ok=True)
            if deploy is None:
                continue
            labels = deploy["metadata"].get("labels") or {}
            image = deploy["spec"]["template"]["spec"]["containers"][0].get("image", "")
            version = labels.get("app.kubernetes.io/version") or image.rpartition(":")[2] or "unknown"
            available = kube.conditions(deploy).get("Available", {}).get("status") == "True"
            note = (
                ""
                if version.lstrip("v") == TESTED_VERSION.lstrip("v")
                else f" (the lab was tested with {TESTED_VERSION})"
            )
            return available, f"deploy/{name}: version {version}{note}, Available={available}"
        return False, f"no controller Deployment {' or '.join(names)} in {lab.gateway_namespace}"

    results.append(
        check(
            stage,
            "controller",
            controller,
            what="agentgateway's controller runs",
            hint="helm upgrade -i agentgateway oci://cr.agentgateway.dev/charts/agentgateway "
            f"-n agentgateway-system --version {TESTED_VERSION} --wait",
            timeout=10,
        )
    )

    def gateway_class() -> tuple[bool, str]:
        gc = kube.get(lab, "GatewayClass", lab.gateway_class, missing_ok=True)
        if gc is None:
            names = [o["metadata"]["name"] for o in kube.list_objects(lab, "GatewayClass")]
            return (
                False,
                f"no GatewayClass {lab.gateway_class}; the cluster has: {', '.join(names) or 'none'}",
            )
        accepted = kube.conditions(gc).get("Accepted", {}).get("status")
        return accepted == "True", f"controller {gc['spec'].get('controllerName')}, Accepted={accepted}"

    results.append(
        check(
            stage,
            "gatewayclass",
            gateway_class,
            what=f"GatewayClass {lab.gateway_class} is Accepted",
            hint="install agentgateway (helm upgrade -i agentgateway oci://cr.agentgateway.dev/charts/"
            "agentgateway -n agentgateway-system), or set AGWLAB_GATEWAY_CLASS to the class you have",
            timeout=10,
        )
    )

    def collector() -> tuple[bool, str]:
        deploy = kube.get(
            lab, "Deployment", "opentelemetry-collector-traces", lab.telemetry_namespace, missing_ok=True
        )
        if deploy is None:
            return True, "not installed yet: 02-traces installs one"
        available = kube.conditions(deploy).get("Available", {}).get("status")
        return (
            available == "True",
            f"deploy/opentelemetry-collector-traces in {lab.telemetry_namespace}: Available={available}",
        )

    results.append(
        check(
            stage,
            "collector",
            collector,
            what="the OpenTelemetry collector is absent or running",
            hint="kubectl get pods -n telemetry; "
            "kubectl logs deploy/opentelemetry-collector-traces -n telemetry",
            timeout=10,
        )
    )

    def prometheus() -> tuple[bool, str]:
        url = lab.prometheus_url()
        ready = httpx.get(f"{url}/-/ready", timeout=5)
        info = httpx.get(f"{url}/api/v1/status/buildinfo", timeout=5).json().get("data", {})
        return (
            ready.status_code == 200,
            f"{url}: Prometheus {info.get('version', '?')}, ready={ready.status_code == 200}",
        )

    results.append(
        check(
            stage,
            "prometheus",
            prometheus,
            what="Prometheus answers",
            hint="sandbox: python -m agwlab sandbox status says why it is missing; cluster: port-forward "
            "Prometheus and set AGWLAB_PROMETHEUS_URL",
            timeout=10,
        )
    )
    return results


# Kinds the lab creates objects of, for proving that cleanup left nothing behind.
_LAB_KINDS = (
    "Gateway",
    "HTTPRoute",
    "AgentgatewayBackend",
    "AgentgatewayPolicy",
    "Secret",
    "Service",
    "Deployment",
    "ConfigMap",
    "Namespace",
)


def cleanup(lab: Lab, *, timeout: float = 60) -> list[str]:
    """Delete everything the lab created, in reverse creation order (missing objects are fine).

    Only objects carrying the lab's label (``app.kubernetes.io/part-of=agwlab``) are deleted, so a
    collector installed with Helm, or anything else of the same name, is left alone. Waits until
    the Gateway's proxy Deployment is gone too.

    Returns:
        One line per object saying what happened.
    """
    from . import kube, manifests

    done = []
    for kind, name, namespace in reversed(manifests.lab_objects()):
        obj = kube.get(lab, kind, name, namespace, missing_ok=True)
        label = f"{kind.lower()}/{name}"
        if obj is None:
            done.append(f"{label}: not there")
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not all(labels.get(k) == v for k, v in manifests.LAB_LABEL.items()):
            done.append(f"{label}: not created by the lab, left alone")
            continue
        kube.delete(lab, kind, name, namespace, quiet=True)
        done.append(f"{label}: deleted")
    kube.wait_for(
        lab,
        "Deployment",
        lab.gateway_name,
        lab.gateway_namespace,
        condition="deleted",
        timeout=timeout,
        quiet=True,
    )
    return done


def leftovers(lab: Lab) -> list[str]:
    """Objects of the lab still in the cluster: anything labelled as the lab's, and the proxy."""
    from . import kube, manifests

    found = []
    for kind in _LAB_KINDS:
        for obj in kube.list_objects(lab, kind, labels=manifests.LAB_LABEL):
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            found.append(f"{kind}/{where}{meta['name']}")
    if kube.get(lab, "Deployment", lab.gateway_name, lab.gateway_namespace, missing_ok=True) is not None:
        found.append(f"Deployment/{lab.gateway_namespace}/{lab.gateway_name} (the Gateway's proxy)")
    return found
