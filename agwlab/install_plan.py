"""How to install what the lab needs on a cluster, in the order that works, with pinned versions.

The order matters: agentgateway's chart with ``monitoring.enabled`` renders a PodMonitor
and a ServiceMonitor, so the Prometheus operator's CRDs (kube-prometheus-stack) come
first; kube-prometheus-stack must select PodMonitors that do not carry its ``release``
label; the collector's debug exporter must print spans in full (``verbosity: detailed``;
the exporter's default, ``basic``, prints one line per batch). ``python -m agwlab cluster
plan`` prints this plan; the README's cluster section is the same plan.

Example:
    >>> [step.title for step in plan()][:2]
    ['Gateway API CRDs', 'kube-prometheus-stack (Prometheus and its operator)']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .names import (
    AGENTGATEWAY_CHART,
    AGENTGATEWAY_CRDS_CHART,
    CONTROLLER_NAMESPACE,
    GATEWAY_API_VERSION,
    TESTED_VERSION,
)

__all__ = ["COLLECTOR_CHART_VERSION", "KPS_CHART_VERSION", "InstallStep", "plan", "plan_text"]

KPS_CHART_VERSION = "88.5.3"
COLLECTOR_CHART_VERSION = "0.170.0"
MONITORING_NAMESPACE = "monitoring"
TELEMETRY_NAMESPACE = "telemetry"


@dataclass(frozen=True)
class InstallStep:
    """One install step: what, why, and the command."""

    title: str
    why: str
    command: str
    chart: str = ""                        # chart name, for the values the step sets
    values: dict[str, str] = field(default_factory=dict)   # --set path -> value


def _helm(release: str, chart: str, namespace: str, version: str, values: dict[str, str], *,
          repo: str = "", create_namespace: bool = False) -> str:
    parts = [f"helm upgrade -i {release} {chart}"]
    if repo:
        parts.append(f"--repo {repo}")
    parts.append(f"-n {namespace}" + (" --create-namespace" if create_namespace else ""))
    parts.append(f"--version {version}")
    parts += [f"--set {k}={v}" for k, v in values.items()]
    parts.append("--wait")
    return " \\\n  ".join(parts)


def plan() -> list[InstallStep]:
    """The install steps, in order."""
    kps_values = {
        # select every PodMonitor/ServiceMonitor, not only those labelled release=<this release>
        "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues": "false",
        "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues": "false",
        # the lab needs neither; they cost a kind cluster memory
        "alertmanager.enabled": "false",
        "grafana.enabled": "false",
    }
    agw_values = {"monitoring.enabled": "true"}
    collector_values = {
        "mode": "deployment",
        "image.repository": "otel/opentelemetry-collector-contrib",
        "command.name": "otelcol-contrib",
        "config.exporters.debug.verbosity": "detailed",
    }
    return [
        InstallStep(
            "Gateway API CRDs",
            f"agentgateway {TESTED_VERSION} is built against Gateway API {GATEWAY_API_VERSION}",
            "kubectl apply --server-side --force-conflicts -f https://github.com/kubernetes-sigs/gateway-api/"
            f"releases/download/{GATEWAY_API_VERSION}/standard-install.yaml",
        ),
        InstallStep(
            "kube-prometheus-stack (Prometheus and its operator)",
            "first: agentgateway's monitoring needs the operator's PodMonitor CRD, and this Prometheus must "
            "select agentgateway's PodMonitor, which carries no release label",
            _helm("kube-prometheus-stack", "kube-prometheus-stack", MONITORING_NAMESPACE, KPS_CHART_VERSION,
                  kps_values, repo="https://prometheus-community.github.io/helm-charts", create_namespace=True),
            "kube-prometheus-stack", kps_values,
        ),
        InstallStep(
            "agentgateway CRDs",
            "the AgentgatewayBackend, AgentgatewayPolicy and AgentgatewayParameters kinds",
            _helm("agentgateway-crds", AGENTGATEWAY_CRDS_CHART, CONTROLLER_NAMESPACE, TESTED_VERSION, {},
                  create_namespace=True),
        ),
        InstallStep(
            "agentgateway with monitoring",
            "the controller and GatewayClass agentgateway; monitoring.enabled adds the PodMonitor that "
            "scrapes every proxy on its port 15020",
            _helm("agentgateway", AGENTGATEWAY_CHART, CONTROLLER_NAMESPACE, TESTED_VERSION, agw_values),
            "agentgateway", agw_values,
        ),
        InstallStep(
            "OpenTelemetry collector",
            "receives the gateway's spans over OTLP; its debug exporter prints each span (with its trace id) "
            "only at verbosity detailed",
            _helm("opentelemetry-collector-traces", "opentelemetry-collector", TELEMETRY_NAMESPACE,
                  COLLECTOR_CHART_VERSION, collector_values,
                  repo="https://open-telemetry.github.io/opentelemetry-helm-charts", create_namespace=True),
            "opentelemetry-collector", collector_values,
        ),
    ]


def plan_text() -> str:
    """The plan as a shell script a learner can read and run, one commented step at a time."""
    lines = ["# Install what the lab needs on a cluster (kind works: the lab port-forwards itself),",
             "# in this order. Needs kubectl and helm 3.8+ with your cluster as the current context.", ""]
    for n, step in enumerate(plan(), 1):
        lines += [f"# {n}. {step.title}: {step.why}", step.command, ""]
    lines += ["# Then start the lab against your current context: ./lab start --cluster"]
    return "\n".join(lines) + "\n"
