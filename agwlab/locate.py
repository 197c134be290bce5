"""Finding the lab's parts on a cluster instead of being told where they are.

* **Prometheus**: the Prometheus operator's governing Service (label
  ``operated-prometheus=true``, named ``prometheus-operated``), else kube-prometheus-stack's
  ``<release>-prometheus`` Service (label ``app=kube-prometheus-stack-prometheus``), in any
  namespace; reached through the API server's service proxy with the kubeconfig's credentials.
* **The collector**: the Service the tracing policy's ``backendRef`` names, the Deployment
  behind it, and the collector configuration that Deployment mounts (the Helm chart's
  ConfigMap, key ``relay``).
* **HTTP through the API server**: the headers and TLS settings of the lab's kubeconfig.

Example:
    >>> debug_exporter_problem({"exporters": {"debug": {}},
    ...                         "service": {"pipelines": {"traces": {"exporters": ["debug"]}}}})[:43]
    "the debug exporter's verbosity is 'basic' ("
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import LabError

if TYPE_CHECKING:
    from .lab import Lab

__all__ = ["ApiHttp", "CollectorConfig", "api_http", "collector_config", "collector_probe", "debug_exporter_problem",
           "find_prometheus", "find_prometheus_in", "prometheus_namespaces", "scrape_probe", "selector_matches"]

_OPERATOR_LABEL = "operated-prometheus=true"
_KPS_LABEL = "app=kube-prometheus-stack-prometheus"


@dataclass
class ApiHttp:
    """How to send a plain HTTP request to the API server as the kubeconfig's user."""

    headers: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    verify: bool = True
    cert: tuple[str, str] | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """For ``httpx``'s ``verify=``."""
        if not self.verify:
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
        if self.cert:
            ctx.load_cert_chain(*self.cert)
        return ctx

    def requests_session(self) -> Any:
        """A ``requests.Session`` with these credentials (for ``PrometheusConnect``)."""
        import requests

        session = requests.Session()
        session.headers.update(self.headers)
        session.verify = (self.ca_file or True) if self.verify else False
        if self.cert:
            session.cert = self.cert
        return session


def api_http(lab: Lab) -> ApiHttp:
    """The lab's kubeconfig credentials as HTTP settings (exec-plugin tokens refreshed first)."""
    cfg = lab.api_client.configuration
    hook = getattr(cfg, "refresh_api_key_hook", None)
    if hook is not None:
        hook(cfg)
    headers = {}
    token = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    if token:
        headers["Authorization"] = token
    elif cfg.username and cfg.password:
        headers.update((cfg.get_basic_auth_token() and {"Authorization": cfg.get_basic_auth_token()}) or {})
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    return ApiHttp(headers=headers, ca_file=cfg.ssl_ca_cert, verify=bool(cfg.verify_ssl), cert=cert)


def _port_of(svc: dict[str, Any]) -> str:
    ports = (svc.get("spec") or {}).get("ports") or []
    named = next((p for p in ports if p.get("name") in ("web", "http-web")), None)
    chosen = named or next((p for p in ports if int(p.get("port", 0)) == 9090), None) or (ports[0] if ports else {})
    return str(chosen.get("name") or chosen.get("port") or 9090)


def prometheus_namespaces(lab: Lab) -> list[str]:
    """Where to look for Prometheus when Services cannot be listed in every namespace (a workshop
    attendee): ``AGWLAB_PROMETHEUS_NAMESPACE``, ``monitoring`` (kube-prometheus-stack's usual
    home), the collector's namespace and the learner's own."""
    wanted = [os.environ.get("AGWLAB_PROMETHEUS_NAMESPACE", "").strip(), "monitoring",
              lab.names.telemetry_namespace, lab.names.namespace]
    return list(dict.fromkeys(ns for ns in wanted if ns))


def find_prometheus(lab: Lab) -> tuple[str, str] | None:
    """``(base URL through the API server's service proxy, "ns/name")`` of a Prometheus, or None.

    The operator's ``prometheus-operated`` Service is preferred (it exists for every
    Prometheus the operator runs); kube-prometheus-stack's own Service is the fallback.
    Services are listed in every namespace; a user who may not do that (a workshop attendee)
    is searched for in :func:`prometheus_namespaces`, those they may read.
    """
    from . import kube

    try:
        for selector in (_OPERATOR_LABEL, _KPS_LABEL):
            found = kube.list_objects(lab, "Service", labels=selector)
            if found:
                return _service_proxy(lab, found)
    except LabError:  # no right to list Services in every namespace (a workshop attendee)
        return find_prometheus_in(lab, prometheus_namespaces(lab))
    return None


def find_prometheus_in(lab: Lab, namespaces: list[str]) -> tuple[str, str] | None:
    """:func:`find_prometheus`, looking only in these namespaces (those it may not read are skipped)."""
    from . import kube

    for selector in (_OPERATOR_LABEL, _KPS_LABEL):
        for namespace in namespaces:
            try:
                found = kube.list_objects(lab, "Service", namespace, labels=selector)
            except LabError:
                continue
            if found:
                return _service_proxy(lab, found)
    return None


def _service_proxy(lab: Lab, found: list[dict[str, Any]]) -> tuple[str, str]:
    svc = min(found, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"]))
    ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    url = f"{lab.server.rstrip('/')}/api/v1/namespaces/{ns}/services/{name}:{_port_of(svc)}/proxy"
    return url, f"{ns}/{name}"


@dataclass
class CollectorConfig:
    """Where the traces go and how the collector there is configured."""

    service: str                 # ns/name the tracing policy points at
    deployment: str | None       # ns/name of the Deployment behind it
    configmap: str | None        # ns/name of the ConfigMap holding its configuration
    key: str | None              # the key in it (the chart's is ``relay``)
    config: dict[str, Any] | None
    problem: str | None          # what to change, or None when spans will be printed in full


def debug_exporter_problem(config: dict[str, Any]) -> str | None:
    """What keeps the collector from printing each span (None when nothing does).

    The traces pipeline needs the ``debug`` exporter at ``verbosity: detailed``; the
    exporter's default is ``basic``, one summary line per batch with no trace ids.
    """
    exporters = config.get("exporters") or {}
    pipelines = ((config.get("service") or {}).get("pipelines") or {})
    traces = next((v for k, v in pipelines.items() if k == "traces" or str(k).startswith("traces/")), None)
    if traces is None:
        return "the collector has no traces pipeline: add service.pipelines.traces with receivers [otlp] " \
               "and exporters [debug]"
    names = [str(n) for n in traces.get("exporters") or []]
    debug = [n for n in names if n == "debug" or n.startswith("debug/")]
    if not debug:
        return (f"the traces pipeline exports to {names or 'nothing'}, not to the debug exporter: add "
                "exporters.debug.verbosity: detailed and list debug in service.pipelines.traces.exporters")
    verbosity = str((exporters.get(debug[0]) or {}).get("verbosity", "basic"))
    if verbosity != "detailed":
        return (f"the debug exporter's verbosity is {verbosity!r} ({'the default' if verbosity == 'basic' else 'set'}"
                "), which prints no trace ids or spans: set exporters.debug.verbosity: detailed (with Helm: "
                "--set config.exporters.debug.verbosity=detailed), then restart the collector")
    return None


def collector_config(lab: Lab, service: str, namespace: str) -> CollectorConfig:
    """Follow the tracing policy's Service to the collector's Deployment and its configuration."""
    import yaml

    from . import kube

    where = f"{namespace}/{service}"
    svc = kube.get(lab, "Service", service, namespace, missing_ok=True)
    if svc is None:
        return CollectorConfig(where, None, None, None, None,
                               f"there is no Service {where}, which the tracing policy sends spans to")
    selector = (svc.get("spec") or {}).get("selector") or {}
    deploys = [d for d in kube.list_objects(lab, "Deployment", namespace=namespace)
               if selector and all(((d["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v)
                                   for k, v in selector.items())]
    if not deploys:
        return CollectorConfig(where, None, None, None, None, f"no Deployment behind Service {where}")
    deploy = deploys[0]
    dname = f"{namespace}/{deploy['metadata']['name']}"
    pod = deploy["spec"]["template"]["spec"]
    container = (pod.get("containers") or [{}])[0]
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    config_path = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    volumes = {v.get("name"): v.get("configMap") for v in pod.get("volumes") or [] if v.get("configMap")}
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount.get("name"))
        if not source:
            continue
        items = source.get("items") or []
        key = None
        for item in items:
            if config_path and config_path == f"{mount['mountPath'].rstrip('/')}/{item.get('path')}":
                key = item.get("key")
        cm = kube.get(lab, "ConfigMap", source.get("name", ""), namespace, missing_ok=True)
        data = (cm or {}).get("data") or {}
        key = key or ("relay" if "relay" in data else None)
        if key and key in data:
            try:
                config = yaml.safe_load(data[key]) or {}
            except yaml.YAMLError as exc:
                return CollectorConfig(where, dname, f"{namespace}/{source.get('name')}", key, None,
                                       f"the collector's configuration is not valid YAML: {exc}")
            return CollectorConfig(where, dname, f"{namespace}/{source.get('name')}", key, config,
                                   debug_exporter_problem(config))
    return CollectorConfig(where, dname, None, None, None, None)


def collector_probe(lab: Lab) -> Callable[[], tuple[bool, str]]:
    """A probe (for :func:`agwlab.checks.check`) that the collector the traces go to prints
    every span: the tracing policy's ``backendRef`` (else the lab's collector Service), its
    Deployment, and the debug exporter at ``verbosity: detailed`` in its traces pipeline."""
    from . import kube

    def probe() -> tuple[bool, str]:
        names = lab.names
        service, namespace = names.collector, names.telemetry_namespace
        policy = kube.get(lab, "AgentgatewayPolicy", names.tracing_policy, names.namespace, missing_ok=True)
        ref = ((((policy or {}).get("spec") or {}).get("frontend") or {}).get("tracing") or {}).get("backendRef")
        if ref:
            service, namespace = ref.get("name", service), ref.get("namespace") or names.namespace
        found = collector_config(lab, service, namespace)
        if found.problem:
            return False, f"{found.deployment or found.service}: {found.problem}"
        if found.config is None:
            return True, (f"{found.deployment}: its configuration is not in a ConfigMap the lab can read; "
                          "make sure its traces pipeline has the debug exporter at verbosity: detailed")
        return True, (f"{found.deployment} ({found.configmap}, key {found.key}): the traces pipeline has the "
                      "debug exporter at verbosity: detailed")

    return probe


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector against labels (``None`` selects nothing, ``{}`` everything).

    Example:
        >>> selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {"a": "x"})
        True
    """
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _selects_namespace(lab: Lab, selector: dict[str, Any] | None, own: str, namespace: str) -> bool:
    from . import kube

    if selector is None:
        return namespace == own
    if selector == {}:
        return True
    ns = kube.get(lab, "Namespace", namespace, missing_ok=True) or {}
    return selector_matches(selector, (ns.get("metadata") or {}).get("labels") or {})


def _pod_monitor_selects(pm: dict[str, Any], labels: dict[str, str], namespace: str) -> bool:
    spec = pm.get("spec") or {}
    ns_sel = spec.get("namespaceSelector") or {}
    in_ns = bool(ns_sel.get("any")) or namespace in (ns_sel.get("matchNames") or [pm["metadata"]["namespace"]])
    return in_ns and selector_matches(spec.get("selector") or {}, labels)


def scrape_probe(lab: Lab) -> Any:
    """A probe that the Prometheus operator will scrape the lab's proxy: a PodMonitor selects the
    proxy Pods, and a ``Prometheus`` object selects that PodMonitor (says which labels to add)."""
    from . import kube
    from .errors import ResourceTypeMissing

    def probe() -> tuple[bool, str]:
        try:
            proms = kube.list_objects(lab, "Prometheus", api_version="monitoring.coreos.com/v1")
            monitors = kube.list_objects(lab, "PodMonitor", api_version="monitoring.coreos.com/v1")
        except ResourceTypeMissing:
            proms, monitors = [], None
        if not proms:
            if os.environ.get("AGWLAB_PROMETHEUS_URL") or getattr(lab.sandbox, "prometheus_url", None):
                return True, "Prometheus is not run by the Prometheus operator here; it is configured directly"
            what = "no Prometheus operator CRDs" if monitors is None else "no Prometheus object"
            return False, (f"{what}: install kube-prometheus-stack before agentgateway (agentgateway's "
                           "monitoring.enabled renders a PodMonitor, which needs the operator's CRDs): "
                           "python -m agwlab cluster plan")
        proxy = {"gateway.networking.k8s.io/gateway-class-name": lab.gateway_class,
                 "gateway.networking.k8s.io/gateway-name": lab.gateway_name}
        selecting = [m for m in monitors or [] if _pod_monitor_selects(m, proxy, lab.gateway_namespace)]
        if not selecting:
            return False, (f"no PodMonitor selects the proxy Pods (class {lab.gateway_class}, namespace "
                           f"{lab.gateway_namespace}): install agentgateway with --set monitoring.enabled=true"
                           + ("" if lab.gateway_namespace == "agentgateway-system" else
                              " and --set monitoring.proxy.namespaceSelector.any=true"))
        for prom in proms:
            spec = prom.get("spec") or {}
            for pm in selecting:
                labels = pm["metadata"].get("labels") or {}
                if selector_matches(spec.get("podMonitorSelector"), labels) and _selects_namespace(
                        lab, spec.get("podMonitorNamespaceSelector"), prom["metadata"]["namespace"],
                        pm["metadata"]["namespace"]):
                    return True, (f"Prometheus {prom['metadata']['namespace']}/{prom['metadata']['name']} selects "
                                  f"PodMonitor {pm['metadata']['namespace']}/{pm['metadata']['name']}")
        prom, pm = proms[0], selecting[0]
        wanted = ((prom.get("spec") or {}).get("podMonitorSelector") or {}).get("matchLabels") or {}
        sets = " ".join(f"--set monitoring.serviceMonitor.extraLabels.{k}={v}" for k, v in wanted.items())
        return False, (f"Prometheus {prom['metadata']['namespace']}/{prom['metadata']['name']} does not select "
                       f"PodMonitor {pm['metadata']['namespace']}/{pm['metadata']['name']} (its podMonitorSelector is "
                       f"{(prom.get('spec') or {}).get('podMonitorSelector')}): "
                       + (f"add the labels on agentgateway ({sets}), or " if sets else "")
                       + "install kube-prometheus-stack with "
                       "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false")

    return probe
