"""Sandbox profiles: which kind of cluster the sandbox stands in for.

* ``default``: a cluster with a LoadBalancer implementation (Gateways get an address) and a
  Prometheus the lab is told about (``python -m agwlab sandbox status`` prints its URL).
* ``kind``: what a fresh kind cluster with the README's installs looks like to a learner's
  laptop: LoadBalancer Services stay pending, so Gateways get no address; Prometheus is
  reachable only as the in-cluster Service ``monitoring/prometheus-operated`` (label
  ``operated-prometheus=true``, as the Prometheus operator makes it), found through the API
  and reached through the API server's service proxy, with a PodMonitor for the proxies like
  the agentgateway chart's.

Start one with ``python -m agwlab sandbox up --profile kind``; the profile is kept across
``down``/``up`` until another is named.

Example:
    >>> profile_named("kind").load_balancer
    False
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "PROFILE_ENV", "Profile", "in_cluster_prometheus", "profile_named"]

PROFILE_ENV = "AGWLAB_SANDBOX_PROFILE"


@dataclass(frozen=True)
class Profile:
    """What differs between the clusters the sandbox can stand in for."""

    name: str
    load_balancer: bool          # LoadBalancer Services get an ingress address
    prometheus_advertised: bool  # the sandbox reports Prometheus's URL to the lab


PROFILES = {
    "default": Profile("default", load_balancer=True, prometheus_advertised=True),
    "kind": Profile("kind", load_balancer=False, prometheus_advertised=False),
}


def profile_named(name: str | None) -> Profile:
    """The profile called ``name`` (``None`` or empty: ``$AGWLAB_SANDBOX_PROFILE``, else default).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    chosen = (name or os.environ.get(PROFILE_ENV, "") or "default").strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown sandbox profile {chosen!r}: use one of {', '.join(PROFILES)}")
    return PROFILES[chosen]


MONITORING_NAMESPACE = "monitoring"
_OPERATOR = {"app.kubernetes.io/managed-by": "prometheus-operator", "operated-prometheus": "true"}


def in_cluster_prometheus(address: str, port: int) -> list[dict[str, Any]]:
    """The objects through which the kind profile's Prometheus is reached and configured: the
    operator's governing Service ``prometheus-operated`` (headless, port ``web``) with the
    Endpoints that point at the Prometheus server, the ``Prometheus`` object as
    kube-prometheus-stack installs it with the lab's plan (selecting every PodMonitor), and the
    proxy PodMonitor as agentgateway's chart renders it with ``monitoring.enabled``."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING_NAMESPACE}}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "prometheus-operated", "namespace": MONITORING_NAMESPACE, "labels": dict(_OPERATOR)},
           "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 9090, "targetPort": "web",
                                                    "protocol": "TCP"}]}}
    eps = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": "prometheus-operated", "namespace": MONITORING_NAMESPACE, "labels": dict(_OPERATOR)},
           "subsets": [{"addresses": [{"ip": address}],
                        "ports": [{"name": "web", "port": port, "protocol": "TCP"}]}]}
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": MONITORING_NAMESPACE,
                     "labels": {"app": "kube-prometheus-stack-prometheus", "release": "kube-prometheus-stack",
                                "app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"replicas": 1, "podMonitorSelector": {}, "podMonitorNamespaceSelector": {},
                 "serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}, "scrapeInterval": "1s"},
    }
    pod_monitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "agentgateway-proxy", "namespace": "agentgateway-system",
                     "labels": {"app.kubernetes.io/name": "agentgateway", "app.kubernetes.io/instance": "agentgateway",
                                "app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"selector": {"matchExpressions": [{"key": "gateway.networking.k8s.io/gateway-class-name",
                                                    "operator": "In", "values": ["agentgateway"]}]},
                 # the sandbox's Prometheus scrapes every second; the chart's default is 15s
                 "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "1s"}]},
    }
    return [ns, svc, eps, prometheus, pod_monitor]
