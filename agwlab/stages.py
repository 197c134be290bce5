"""The lab's stages: bring a cluster to the state a notebook needs, check it, clean it up.

``prepare`` applies what the earlier notebooks apply (idempotently) and waits until the
proxy serves it; ``preflight`` checks tools, API, CRDs, GatewayClass, collector and
Prometheus; ``cleanup`` deletes what the lab made, in reverse order, and ``leftovers``
says what is still there.

Example:
    >>> from agwlab import connect                    # doctest: +SKIP
    >>> from agwlab.stages import prepare, cleanup    # doctest: +SKIP
    >>> lab = connect(); prepare(lab, "llm", "mcp")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

from .errors import LabError, from_api_error
from .lab import Lab
from .names import (
    AGENTGATEWAY_CHART,
    AGENTGATEWAY_CRDS_CHART,
    CONTROLLER_NAMESPACE,
    GATEWAY_API_VERSION,
    LAB_LABEL,
    MCP_PROTOCOL_VERSION,
    TESTED_VERSION,
    Names,
)

__all__ = ["STAGES", "cleanup", "data_plane_probe", "leftovers", "preflight", "prepare"]


STAGES = ("llm", "tracing", "mcp")

def _ready(stage: str, n: Names) -> list[tuple[str, str, str, str]]:
    """What must be true before a stage counts as done: (kind, name, namespace, condition)."""
    return {
        "llm": [
            ("Gateway", n.gateway, n.namespace, "Programmed"),
            ("AgentgatewayBackend", n.llm_backend, n.namespace, "Accepted"),
            ("HTTPRoute", n.llm_route, n.namespace, "Accepted"),
        ],
        "tracing": [
            ("Deployment", n.collector, n.telemetry_namespace, "Available"),
            ("AgentgatewayPolicy", n.tracing_policy, n.namespace, "Accepted"),
        ],
        "mcp": [
            ("Deployment", n.fetcher, n.mcp_namespace, "Available"),
            ("AgentgatewayBackend", n.mcp_backend, n.namespace, "Accepted"),
            ("HTTPRoute", n.mcp_route, n.namespace, "Accepted"),
        ],
    }[stage]

MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": MCP_PROTOCOL_VERSION,
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

    found = kube.get(lab, "Deployment", lab.names.collector, lab.telemetry_namespace, missing_ok=True)
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
            names=lab.names,
        )
        if stage == "tracing" and not _collector_installed(lab):
            objs = manifests.ManifestList([*manifests.collector(lab.names), *objs])
        applied = kube.apply(lab, objs, quiet=True)
        changed = [str(a) for a in applied if a.action != "unchanged"]
        for kind, name, namespace, condition in _ready(stage, lab.names):
            kube.wait_for(lab, kind, name, namespace, condition=condition, timeout=timeout, quiet=True)
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

    def crds_served(api_version: str, kinds: tuple[str, ...], crd: str) -> Any:
        def probe() -> tuple[bool, str]:
            missing = [k for k in kinds if not _served(lab, api_version, k)]
            version = _crd_version(lab, crd)
            return not missing, (f"missing: {', '.join(missing)}" if missing else f"{api_version} {version}".strip())

        return probe

    results.append(
        check(
            stage,
            "gateway-api",
            crds_served("gateway.networking.k8s.io/v1", ("GatewayClass", "Gateway", "HTTPRoute"),
                        "gateways.gateway.networking.k8s.io"),
            what="the Gateway API CRDs are installed",
            hint="kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/"
            f"releases/download/{GATEWAY_API_VERSION}/standard-install.yaml",
        )
    )
    results.append(
        check(
            stage,
            "agentgateway-crds",
            crds_served("agentgateway.dev/v1alpha1",
                        ("AgentgatewayBackend", "AgentgatewayPolicy", "AgentgatewayParameters"),
                        "agentgatewaybackends.agentgateway.dev"),
            what="agentgateway's CRDs are installed",
            hint=f"helm upgrade -i agentgateway-crds {AGENTGATEWAY_CRDS_CHART} "
            f"-n {CONTROLLER_NAMESPACE} --create-namespace --version {TESTED_VERSION}",
        )
    )

    def controller() -> tuple[bool, str]:
        names = (
            ("enterprise-agentgateway", "agentgateway") if lab.edition == "enterprise" else ("agentgateway",)
        )
        for name in names:
            deploy = kube.get(lab, "Deployment", name, CONTROLLER_NAMESPACE, missing_ok=True)
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
        return False, f"no controller Deployment {' or '.join(names)} in {CONTROLLER_NAMESPACE}"

    results.append(
        check(
            stage,
            "controller",
            controller,
            what="agentgateway's controller runs",
            hint=f"helm upgrade -i agentgateway {AGENTGATEWAY_CHART} "
            f"-n {CONTROLLER_NAMESPACE} --version {TESTED_VERSION} --wait",
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
            hint=f"install agentgateway (helm upgrade -i agentgateway {AGENTGATEWAY_CHART} "
            f"-n {CONTROLLER_NAMESPACE}), or set AGWLAB_GATEWAY_CLASS to the class you have",
            timeout=10,
        )
    )

    def collector() -> tuple[bool, str]:
        deploy = kube.get(lab, "Deployment", lab.names.collector, lab.telemetry_namespace, missing_ok=True)
        if deploy is None:
            return True, "not installed yet: 02-traces installs one"
        available = kube.conditions(deploy).get("Available", {}).get("status")
        return (
            available == "True",
            f"deploy/{lab.names.collector} in {lab.telemetry_namespace}: Available={available}",
        )

    results.append(
        check(
            stage,
            "collector",
            collector,
            what="the OpenTelemetry collector is absent or running",
            hint=f"kubectl get pods -n {lab.telemetry_namespace}; "
            f"kubectl logs deploy/{lab.names.collector} -n {lab.telemetry_namespace}",
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
    for kind, name, namespace in reversed(manifests.lab_objects(lab.names)):
        obj = kube.get(lab, kind, name, namespace, missing_ok=True)
        label = f"{kind.lower()}/{name}"
        if obj is None:
            done.append(f"{label}: not there")
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not all(labels.get(k) == v for k, v in LAB_LABEL.items()):
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
        for obj in kube.list_objects(lab, kind, labels=dict(LAB_LABEL)):
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            found.append(f"{kind}/{where}{meta['name']}")
    if kube.get(lab, "Deployment", lab.gateway_name, lab.gateway_namespace, missing_ok=True) is not None:
        found.append(f"Deployment/{lab.gateway_namespace}/{lab.gateway_name} (the Gateway's proxy)")
    return found
