"""The lab's stages: what each notebook leaves in the cluster, declared once.

A :class:`StageSpec` says which objects a stage applies, what must be true before it
counts as done, and how the data plane proves it serves the stage. :data:`REGISTRY` holds
them in order; everything else reads it: ``prepare`` (catch-up for a later notebook),
``cleanup`` and ``leftovers``, ``python -m agwlab manifests``, and the tests. Adding a stage
is one new entry here (and its objects in :mod:`agwlab.manifests`).

``preflight`` checks tools, API, CRDs, GatewayClass, collector and Prometheus.

Example:
    >>> [s.name for s in REGISTRY]
    ['llm', 'tracing', 'mcp', 'mcp-tools']
    >>> [(m.kind, m.name) for m in objects("tracing")]
    [('AgentgatewayPolicy', 'tracing')]
    >>> from agwlab import connect                    # doctest: +SKIP
    >>> lab = connect(); prepare(lab, "llm", "mcp")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import manifests, mcpsec
from .errors import LabError, from_api_error
from .manifests import DEFAULT_MODEL, Manifest, ManifestList
from .names import (
    AGENTGATEWAY_CHART,
    AGENTGATEWAY_CRDS_CHART,
    CONTROLLER_NAMESPACE,
    DEFAULT_NAMES,
    GATEWAY_API_VERSION,
    LAB_LABEL,
    TESTED_VERSION,
    Names,
)
from .wire import jsonrpc

if TYPE_CHECKING:
    from .lab import Lab
    from .secrets import ApiKey

__all__ = [
    "REGISTRY",
    "STAGES",
    "TRANSIENT",
    "Options",
    "Probe",
    "StageSpec",
    "Wait",
    "cleanup",
    "data_plane_probe",
    "get_stage",
    "lab_objects",
    "leftovers",
    "objects",
    "preflight",
    "prepare",
    "stage_yaml",
    "whose",
]


@dataclass(frozen=True)
class Options:
    """What a stage's objects depend on besides the names.

    Attributes:
        api_key: the key for the Secret (``None``: the placeholder ``$ANTHROPIC_API_KEY``).
        gateway_class: the Gateway's class.
        model: the model the Anthropic backend pins (``None``: the client's choice).
    """

    api_key: ApiKey | str | None = None
    gateway_class: str = "agentgateway"
    model: str | None = DEFAULT_MODEL


@dataclass(frozen=True)
class Wait:
    """One condition to wait for: ``kind`` ``namespace/name`` has ``condition`` True."""

    kind: str
    name: str
    namespace: str
    condition: str


@dataclass(frozen=True)
class Probe:
    """A request to the Gateway that proves the proxy serves a stage.

    Attributes:
        path: where on the Gateway's listener.
        body: the JSON body posted.
        headers: extra request headers.
        ok: which answers count (given the status code).
        says: what a pass means, for the check's line.
    """

    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    ok: Callable[[int], bool] = lambda status: status == 200
    says: str = ""


@dataclass(frozen=True)
class Prerequisite:
    """Objects a stage needs that may already be installed by someone else (e.g. with Helm).

    They are applied only when ``present`` (kind, name, namespace) is missing, and cleanup
    deletes them only if the lab created them.
    """

    build: Callable[[Names], ManifestList]
    present: Callable[[Names], tuple[str, str, str]]
    hint: Callable[[Names], tuple[str, ...]] = lambda names: ()


@dataclass(frozen=True)
class StageSpec:
    """One stage of the lab.

    Attributes:
        name: how notebooks, ``prepare`` and the CLI name it.
        notebook: the notebook that applies it step by step.
        title: one line saying what it applies (the YAML header of ``manifests``).
        build: its objects, in the order to apply them.
        ready: what must be true before it counts as done.
        probe: how the data plane proves it serves the stage (``None``: nothing to probe).
        prerequisite: objects it needs that may exist already.
        needs_key: whether its objects hold the Anthropic key.
    """

    name: str
    notebook: str
    title: str
    build: Callable[[Names, Options], list[Manifest]]
    ready: Callable[[Names], list[Wait]]
    probe: Probe | None = None
    prerequisite: Prerequisite | None = None
    needs_key: bool = False


def _collector_hint(names: Names) -> tuple[str, ...]:
    return (
        f"It needs the collector {names.collector} in namespace {names.telemetry_namespace}, e.g.:",
        f"  helm upgrade -i {names.collector} opentelemetry-collector \\",
        "    --repo https://open-telemetry.github.io/opentelemetry-helm-charts "
        f"-n {names.telemetry_namespace} --create-namespace \\",
        "    --set mode=deployment --set image.repository=otel/opentelemetry-collector-contrib \\",
        "    --set command.name=otelcol-contrib",
        "with an otlp receiver and the debug exporter (verbosity: detailed) in its traces pipeline.",
    )


REGISTRY: tuple[StageSpec, ...] = (
    StageSpec(
        name="llm",
        notebook="01-claude-llm-connection",
        title="Claude through agentgateway: Gateway, Secret, AgentgatewayBackend, HTTPRoute",
        build=lambda n, o: [
            manifests.gateway(n, gateway_class=o.gateway_class),
            manifests.anthropic_secret(o.api_key, n),
            manifests.anthropic_backend(n, model=o.model),
            manifests.claude_route(n),
        ],
        ready=lambda n: [
            Wait("Gateway", n.gateway, n.namespace, "Programmed"),
            Wait("AgentgatewayBackend", n.llm_backend, n.namespace, "Accepted"),
            Wait("HTTPRoute", n.llm_route, n.namespace, "Accepted"),
        ],
        # a body the gateway refuses itself (v1.4.1: 503 processing failed), so nothing reaches
        # Claude; 404 means no route
        probe=Probe(
            "/anthropic",
            {"messages": "not a list: the gateway refuses it without calling Claude"},
            ok=lambda status: status != 404,
            says="the proxy serves /anthropic",
        ),
        needs_key=True,
    ),
    StageSpec(
        name="tracing",
        notebook="02-traces",
        title="Tracing: the AgentgatewayPolicy that exports spans to the OpenTelemetry collector",
        build=lambda n, o: [manifests.tracing_policy(n)],
        ready=lambda n: [
            Wait("Deployment", n.collector, n.telemetry_namespace, "Available"),
            Wait("AgentgatewayPolicy", n.tracing_policy, n.namespace, "Accepted"),
        ],
        prerequisite=Prerequisite(
            build=manifests.collector,
            present=lambda n: ("Deployment", n.collector, n.telemetry_namespace),
            hint=_collector_hint,
        ),
    ),
    StageSpec(
        name="mcp",
        notebook="03-mcp-server",
        title="MCP server: the website fetcher, its AgentgatewayBackend and the /mcp HTTPRoute",
        build=lambda n, o: [*manifests.mcp_fetcher(n), manifests.mcp_backend(n), manifests.mcp_route(n)],
        ready=lambda n: [
            Wait("Deployment", n.fetcher, n.mcp_namespace, "Available"),
            Wait("AgentgatewayBackend", n.mcp_backend, n.namespace, "Accepted"),
            Wait("HTTPRoute", n.mcp_route, n.namespace, "Accepted"),
        ],
        probe=Probe(
            "/mcp",
            jsonrpc.initialize(1, client_name="agwlab-probe"),
            jsonrpc.STREAMABLE_HTTP_HEADERS,
            says="the proxy answers MCP initialize on /mcp",
        ),
    ),
    StageSpec(
        name="mcp-tools",
        notebook="09-securing-mcp",
        title="Two MCP servers behind one route: the notes server, a two-target AgentgatewayBackend and /tools",
        build=lambda n, o: [*mcpsec.notes_server(n), mcpsec.tools_backend(n), mcpsec.tools_route(n)],
        ready=lambda n: [
            Wait("Deployment", n.notes, n.mcp_namespace, "Available"),
            Wait("AgentgatewayBackend", n.tools_backend, n.namespace, "Accepted"),
            Wait("HTTPRoute", n.tools_route, n.namespace, "Accepted"),
        ],
        # any answer but 404 proves the route (with notebook 09's JWT policy the answer is 401)
        probe=Probe(
            mcpsec.TOOLS_PATH,
            jsonrpc.initialize(1, client_name="agwlab-probe"),
            jsonrpc.STREAMABLE_HTTP_HEADERS,
            ok=lambda status: status != 404,
            says=f"the proxy serves MCP on {mcpsec.TOOLS_PATH}",
        ),
    ),
)

# The stages' names, in order.
STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY)

# Objects the notebooks after the tutorial (06-09) create and delete again themselves. They are
# no stage (nothing later needs them), but cleanup removes them when a notebook stopped half-way.
TRANSIENT: tuple[Callable[[Names], tuple[str, str, str]], ...] = (
    lambda n: ("AgentgatewayBackend", n.failover_backend, n.namespace),     # 06-resilience
    lambda n: ("HTTPRoute", n.failover_route, n.namespace),
    lambda n: ("AgentgatewayPolicy", n.resilience_policy, n.namespace),
    lambda n: ("AgentgatewayPolicy", n.rate_limit_policy, n.namespace),     # 07-rate-limits
    lambda n: ("AgentgatewayPolicy", n.guardrail_policy, n.namespace),      # 08-guardrails
    lambda n: ("AgentgatewayPolicy", n.jwt_policy, n.namespace),            # 09-securing-mcp
    lambda n: ("AgentgatewayPolicy", n.tools_policy, n.namespace),
)


def get_stage(name: str) -> StageSpec:
    """The stage called ``name``.

    Raises:
        LabError: no such stage (the message lists the stages).
    """
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise LabError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")


def objects(
    stage: str,
    *,
    names: Names = DEFAULT_NAMES,
    api_key: ApiKey | str | None = None,
    gateway_class: str = "agentgateway",
    model: str | None = DEFAULT_MODEL,
) -> ManifestList:
    """Every object of one stage, in the order to apply them (without its prerequisite).

    Raises:
        LabError: an unknown stage.
    """
    spec = get_stage(stage)
    return ManifestList(spec.build(names, Options(api_key, gateway_class, model)))


def stage_yaml(
    stage: str,
    *,
    api_key: str | None,
    gateway_class: str | None = None,
    model: str | None = DEFAULT_MODEL,
    names: Names = DEFAULT_NAMES,
) -> str:
    """One stage as a multi-document YAML stream for ``kubectl apply -f -``.

    The Secret carries ``api_key`` (default: ``$ANTHROPIC_API_KEY`` from the environment; if
    that is unset too, the literal placeholder ``$ANTHROPIC_API_KEY``). Notes on what changed
    from the tutorial are YAML comments.

    Example:
        python -m agwlab manifests llm | kubectl apply -f -
    """
    spec = get_stage(stage)
    key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
    cls = gateway_class or os.environ.get("AGWLAB_GATEWAY_CLASS") or "agentgateway"
    docs = []
    for m in objects(stage, names=names, api_key=key, gateway_class=cls, model=model):
        comment = "".join(f"# {line}\n" for line in manifests.wrap_note(m.note)) if m.note else ""
        docs.append(comment + manifests.to_yaml(m.obj))
    header = f"# {spec.title}\n"
    if spec.prerequisite:
        header += "".join(f"# {line}\n" for line in spec.prerequisite.hint(names))
    return header + "---\n".join(docs)


def lab_objects(names: Names = DEFAULT_NAMES) -> list[tuple[str, str, str | None]]:
    """``(kind, name, namespace)`` of everything the lab may create, in creation order.

    Prerequisites (the collector) are among them, before their stage, and the later notebooks'
    :data:`TRANSIENT` objects come last; cleanup deletes in reverse, and only objects that carry
    the lab's label.
    """
    ordered: list[Manifest] = []
    for spec in REGISTRY:
        if spec.prerequisite:
            ordered.extend(spec.prerequisite.build(names))
        ordered.extend(objects(spec.name, names=names))
    return [(m.kind, m.name, m.namespace) for m in ordered] + [make(names) for make in TRANSIENT]


def data_plane_probe(lab: Lab, stage: str) -> Any:
    """A probe (for :func:`agwlab.checks.check`) that the proxy serves a stage's route.

    ``llm``: ``POST /anthropic`` with a body the gateway refuses itself (so nothing reaches
    Claude) must not be ``404 route not found``. ``mcp``: an MCP ``initialize`` on ``/mcp``
    must answer 200.

    Raises:
        LabError: the stage is unknown or has nothing to probe.
    """
    from .checks import http_probe

    probe = get_stage(stage).probe
    if probe is None:
        raise LabError(f"stage {stage!r} has no data-plane probe")
    return http_probe(
        lab.gateway_url(probe.path),
        method="POST",
        json=probe.body,
        headers=probe.headers or None,
        expect=lambda r: probe.ok(r.status_code),
    )


def prepare(lab: Lab, *stages: str, timeout: float = 60) -> None:
    """Bring the lab to the state the notebooks of ``stages`` leave (idempotent).

    Applies each stage's objects (unchanged ones stay unchanged), waits until they are
    ready, and probes the data plane. A prerequisite (the collector for ``tracing``) is
    installed only where there is none; one installed otherwise (e.g. with Helm) is left alone.

    Raises:
        LabError: an unknown stage.
        WaitTimeout: something did not become ready in time.
        CheckFailed: in strict mode, when the proxy does not serve a route.
    """
    from . import kube
    from .checks import check
    from .models import model_to_keep

    specs = [get_stage(s) for s in stages]
    for spec in specs:
        key = lab.api_key() if spec.needs_key else None
        objs = objects(
            spec.name,
            names=lab.names,
            api_key=key,
            gateway_class=lab.gateway_class,
            # the model the learner chose in 01 stays; the lab's default only for a new backend
            model=model_to_keep(lab) if spec.needs_key else DEFAULT_MODEL,
        )
        if key is not None and key.source in ("secret", "placed"):
            # the Secret is where the key lives (or the instructor's, which the learner cannot
            # write): a kernel that was never given one leaves it alone
            objs = ManifestList([m for m in objs if m.kind != "Secret"])
        if spec.prerequisite:
            kind, name, namespace = spec.prerequisite.present(lab.names)
            if kube.get(lab, kind, name, namespace, missing_ok=True) is None:
                objs = ManifestList([*spec.prerequisite.build(lab.names), *objs])
        applied = kube.apply(lab, objs, quiet=True)
        changed = [str(a) for a in applied if a.action != "unchanged"]
        for wait in spec.ready(lab.names):
            kube.wait_for(
                lab, wait.kind, wait.name, wait.namespace, condition=wait.condition, timeout=timeout, quiet=True
            )
        if spec.name == "tracing":
            from .locate import collector_probe

            check("prepare", spec.name, collector_probe(lab),
                  what="the collector the tracing policy sends spans to prints every span",
                  hint="change the collector's configuration as the line above says")
        summary = f"{len(applied)} objects, {len(changed)} changed" + (
            f" ({'; '.join(changed)})" if changed else ""
        )
        if spec.probe:
            check(
                "prepare",
                spec.name,
                data_plane_probe(lab, spec.name),
                what=f"stage {spec.name} is in place ({summary}) and {spec.probe.says}",
                hint="read the conditions with kube.get(lab, ...) and the proxy's log with "
                "traces.proxy_log(lab)",
                timeout=timeout,
            )
        else:
            check("prepare", spec.name, True, what=f"stage {spec.name} is in place ({summary})", hint="")


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
        from .locate import collector_probe

        deploy = kube.get(lab, "Deployment", lab.names.collector, lab.telemetry_namespace, missing_ok=True)
        if deploy is None:
            return True, "not installed yet: 02-traces installs one"
        available = kube.conditions(deploy).get("Available", {}).get("status")
        if available != "True":
            return False, f"deploy/{lab.names.collector} in {lab.telemetry_namespace}: Available={available}"
        return collector_probe(lab)()

    results.append(
        check(
            stage,
            "collector",
            collector,
            what="the OpenTelemetry collector is absent, or runs and prints every span (debug exporter, detailed)",
            hint=f"kubectl get pods -n {lab.telemetry_namespace}; "
            f"kubectl logs deploy/{lab.names.collector} -n {lab.telemetry_namespace}",
            timeout=10,
        )
    )

    def prometheus() -> tuple[bool, str]:
        url = lab.prometheus_url()
        access = lab.prometheus_http()
        opts: dict[str, Any] = {"timeout": 5, "headers": access.headers, "verify": access.ssl_context()}
        ready = httpx.get(f"{url}/-/ready", **opts)
        info = httpx.get(f"{url}/api/v1/status/buildinfo", **opts).json().get("data", {})
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
            hint="sandbox: python -m agwlab sandbox status says why it is missing; cluster: the lab looks "
            "for the Prometheus operator's Service (label operated-prometheus=true) or kube-prometheus-stack's "
            "in every namespace; install one (python -m agwlab cluster plan) or set AGWLAB_PROMETHEUS_URL",
            timeout=10,
        )
    )
    from .locate import scrape_probe

    results.append(
        check(
            stage,
            "scrape",
            scrape_probe(lab),
            what="Prometheus is set up to scrape the gateway's proxy (PodMonitor, and a Prometheus selecting it)",
            hint="python -m agwlab cluster plan shows the installs and values that make this hold",
            timeout=10,
        )
    )
    return results


# Kinds the tutorial's own kubectl steps create under the lab's names (they carry no lab label).
_TUTORIAL_KINDS = ("Gateway", "Secret", "AgentgatewayBackend", "HTTPRoute", "Deployment", "Service")


def whose(obj: dict[str, Any], kind: str) -> tuple[bool, str]:
    """Whether an object found under one of the lab's names is the lab's to delete, and why.

    The lab's own objects carry :data:`LAB_LABEL`. Objects the tutorial's kubectl steps
    created under the same names carry no label, but kubectl left its mark
    (``kubectl.kubernetes.io/last-applied-configuration``, or a ``kubectl`` field manager):
    those are the learner's lab too. Anything installed by Helm, owned by another object, or
    made by some other tool is left alone.

    Example:
        >>> whose({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}}, "Deployment")
        (False, 'installed by Helm, left alone')
    """
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") == "Helm":
        return False, "installed by Helm, left alone"
    owners = meta.get("ownerReferences") or []
    if owners:
        owner = owners[0]
        return False, f"owned by {owner.get('kind', '?')}/{owner.get('name', '?')}, left alone"
    if all(labels.get(k) == v for k, v in LAB_LABEL.items()):
        return True, "the lab's"
    managers = {str(m.get("manager", "")) for m in meta.get("managedFields") or []}
    by_kubectl = "kubectl.kubernetes.io/last-applied-configuration" in (meta.get("annotations") or {}) or any(
        m.startswith("kubectl") for m in managers)
    if kind in _TUTORIAL_KINDS and by_kubectl:
        return True, "applied with kubectl, as the tutorial's steps do"
    made_by = ", ".join(sorted(managers)) or "an unknown tool"
    label = ",".join(f"{k}={v}" for k, v in LAB_LABEL.items())
    return False, f"not the lab's (no {label} label, made by {made_by}), left alone"


def cleanup(lab: Lab, *, timeout: float = 60) -> list[str]:
    """Delete everything of the lab, in reverse creation order (missing objects are fine).

    An object under one of the lab's names is deleted when it is the lab's: it carries the
    lab's label, or the tutorial's kubectl steps made it (see :func:`whose`). A collector
    installed with Helm, or anything else of the same name, is left alone, and the line says
    why. When the Gateway was deleted, waits until its proxy Deployment is gone too.

    Returns:
        One line per object saying what happened and why.
    """
    from . import kube

    done = []
    gateway_gone = True
    for kind, name, namespace in reversed(_own_objects(lab)):
        obj = kube.get(lab, kind, name, namespace, missing_ok=True)
        where = f"{namespace}/" if namespace else ""
        label = f"{kind.lower()}/{where}{name}"
        if obj is None:
            done.append(f"{label}: not there")
            continue
        mine, why = whose(obj, kind)
        if not mine:
            if kind == "Gateway" and name == lab.gateway_name:
                gateway_gone = False
            done.append(f"{label}: {why}")
            continue
        kube.delete(lab, kind, name, namespace, quiet=True)
        done.append(f"{label}: deleted ({why})")
    if gateway_gone:
        kube.wait_for(lab, "Deployment", lab.gateway_name, lab.gateway_namespace, condition="deleted",
                      timeout=timeout, quiet=True)
    else:
        done.append(f"deployment/{lab.gateway_namespace}/{lab.gateway_name}: the Gateway's proxy stays "
                    "while the Gateway does")
    return done


def _own_objects(lab: Lab) -> list[tuple[str, str, str | None]]:
    """The lab's objects this learner owns: all of them in the docs' layout; in a learner's own
    namespace only those in it (a namespaced learner may have no permission outside it), and
    not the key Secret a workshop's instructor placed there (theirs, and not even readable)."""
    objects = lab_objects(lab.names)
    if lab.names == DEFAULT_NAMES:
        return objects
    mine = {lab.names.namespace, lab.names.mcp_namespace, lab.names.telemetry_namespace}
    placed = lab.placed_secret()
    return [o for o in objects if o[2] in mine and not (o[0] == "Secret" and o[1] == placed)]


def leftovers(lab: Lab) -> list[str]:
    """What of the lab is still in the cluster, each with why it counts as the lab's.

    Anything labelled as the lab's, any object under the lab's names that the tutorial's
    kubectl steps made (see :func:`whose`), and the Gateway's proxy.
    """
    from . import kube

    found = []
    own = _own_objects(lab)
    kinds = dict.fromkeys(kind for kind, _, _ in own)
    # in the docs' layout, look everywhere; a learner in their own namespace looks there only
    where_to_look = [None] if lab.names == DEFAULT_NAMES else sorted({ns for _, _, ns in own if ns})
    for kind in kinds:
        listed = (o for ns in where_to_look for o in kube.list_objects(lab, kind, ns, labels=dict(LAB_LABEL)))
        for obj in listed:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            found.append(f"{kind}/{where}{meta['name']}")
    for kind, name, namespace in own:
        where = f"{namespace}/" if namespace else ""
        if f"{kind}/{where}{name}" in found:
            continue
        current = kube.get(lab, kind, name, namespace, missing_ok=True)
        if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
            continue
        mine, why = whose(current, kind)
        if mine:
            found.append(f"{kind}/{where}{name} ({why})")
    if kube.get(lab, "Deployment", lab.gateway_name, lab.gateway_namespace, missing_ok=True) is not None:
        found.append(f"Deployment/{lab.gateway_namespace}/{lab.gateway_name} (the Gateway's proxy)")
    return found
