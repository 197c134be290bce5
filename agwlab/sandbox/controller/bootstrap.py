"""What a fresh sandbox already has: a cluster with agentgateway installed.

Created once (as ``helm install`` would) and never overwritten, so a learner's changes
— scaling the Anthropic stand-in to zero, say — stick.
"""

from __future__ import annotations

import os
from typing import Any

from ...names import (
    COLLECTOR_IMAGE,
    CONTROLLER_NAMESPACE,
    DEFAULT_NAMES,
    GATEWAY_API_VERSION,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    TESTED_VERSION,
)
from .backends import CONTROLLER

__all__ = ["CRD_VERSIONS", "SYSTEM_OBJECTS", "bootstrap"]

AGW_VERSION = TESTED_VERSION
CRD_VERSIONS = {"gateway.networking.k8s.io": GATEWAY_API_VERSION, "agentgateway.dev": AGW_VERSION}

_HELM = {"app.kubernetes.io/managed-by": "Helm"}


def _app(name: str, ns: str, image: str, ports: list[tuple[str, int, int]], *, labels: dict[str, str] | None = None,
         args: list[str] | None = None, app_protocols: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A Deployment and a ClusterIP Service for one system component."""
    sel = {"app.kubernetes.io/name": name}
    lbls = {**sel, **(labels or {})}
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"name": pname, "containerPort": target, "protocol": "TCP"} for pname, _, target in ports],
    }
    if args:
        container["args"] = args
    svc_ports = []
    for pname, port, target in ports:
        p: dict[str, Any] = {"name": pname, "port": port, "targetPort": target, "protocol": "TCP"}
        if app_protocols and pname in app_protocols:
            p["appProtocol"] = app_protocols[pname]
        svc_ports.append(p)
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": ns, "labels": lbls},
         "spec": {"replicas": 1, "selector": {"matchLabels": sel},
                  "template": {"metadata": {"labels": lbls}, "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": ns, "labels": lbls},
         "spec": {"selector": sel, "ports": svc_ports}},
    ]


# The collector's configuration as the opentelemetry-collector chart renders it (ConfigMap
# named after the release, key ``relay``, mounted at /conf), with the values the README
# installs it with: the debug exporter at ``verbosity: detailed`` in the traces pipeline.
COLLECTOR_RELAY = """\
exporters:
  debug:
    verbosity: detailed
extensions:
  health_check:
    endpoint: ${env:MY_POD_IP}:13133
processors:
  batch: {}
  memory_limiter:
    check_interval: 5s
    limit_percentage: 80
    spike_limit_percentage: 25
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:MY_POD_IP}:4317
      http:
        endpoint: ${env:MY_POD_IP}:4318
service:
  extensions:
  - health_check
  pipelines:
    traces:
      exporters:
      - debug
      processors:
      - memory_limiter
      - batch
      receivers:
      - otlp
"""


def _with_config(objs: list[dict[str, Any]], configmap: str) -> list[dict[str, Any]]:
    """Mount ConfigMap ``configmap`` (key ``relay`` as ``relay.yaml``) at /conf, as the chart does."""
    for obj in objs:
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            pod["volumes"] = [{"name": "opentelemetry-collector-configmap",
                               "configMap": {"name": configmap, "items": [{"key": "relay", "path": "relay.yaml"}]}}]
            pod["containers"][0]["volumeMounts"] = [{"name": "opentelemetry-collector-configmap",
                                                     "mountPath": "/conf"}]
    return objs


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


SYSTEM_OBJECTS: list[dict[str, Any]] = [
    _namespace(CONTROLLER_NAMESPACE),
    _namespace(DEFAULT_NAMES.telemetry_namespace),
    _namespace("agwlab-system"),
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
     "metadata": {"name": "agentgateway", "labels": _HELM},
     "spec": {"controllerName": CONTROLLER, "description": "agentgateway (open source)"}},
    *_app("agentgateway", CONTROLLER_NAMESPACE, f"cr.agentgateway.dev/controller:{AGW_VERSION}",
          [("agw-grpc", 9978, 9978), ("health", 9093, 9093), ("metrics", 9092, 9092)],
          labels={"app.kubernetes.io/instance": "agentgateway", **_HELM,
                  "app.kubernetes.io/version": AGW_VERSION}),
    {"apiVersion": "v1", "kind": "ConfigMap",
     "metadata": {"name": DEFAULT_NAMES.collector, "namespace": DEFAULT_NAMES.telemetry_namespace,
                  "labels": {"app.kubernetes.io/name": "opentelemetry-collector",
                             "app.kubernetes.io/instance": DEFAULT_NAMES.collector, **_HELM}},
     "data": {"relay": COLLECTOR_RELAY}},
    *_with_config(_app(DEFAULT_NAMES.collector, DEFAULT_NAMES.telemetry_namespace, COLLECTOR_IMAGE,
                       [("otlp", OTLP_GRPC_PORT, OTLP_GRPC_PORT), ("otlp-http", OTLP_HTTP_PORT, OTLP_HTTP_PORT)],
                       labels={"app.kubernetes.io/instance": DEFAULT_NAMES.collector, **_HELM},
                       args=["--config=/conf/relay.yaml"], app_protocols={"otlp": "grpc"}),
                  DEFAULT_NAMES.collector),
    *_app("anthropic-standin", "agwlab-system", "agwlab.local/anthropic-standin:0.1.0",
          [("https", 443, 8443)]),
    *_app("lab-website", "agwlab-system", "agwlab.local/lab-website:0.1.0", [("http", 80, 8080)]),
]


#: Only with ``AGWLAB_SANDBOX_EDITION=enterprise``: the class Solo's licensed enterprise chart
#: creates. Open-source agentgateway v1.4.1 has no such class, so by default a Gateway on it
#: is never programmed, as on a real open-source install.
ENTERPRISE_CLASS: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
    "metadata": {"name": "enterprise-agentgateway", "labels": _HELM},
    "spec": {"controllerName": "solo.io/enterprise-agentgateway",
             "description": "Solo Enterprise for agentgateway (imitated by the sandbox)"},
}


def edition() -> str:
    """The sandbox's edition: ``oss`` (default) or ``enterprise`` (``AGWLAB_SANDBOX_EDITION``)."""
    return "enterprise" if os.environ.get("AGWLAB_SANDBOX_EDITION", "oss").strip().lower() == "enterprise" else "oss"


def settings_configmap() -> dict[str, Any]:
    upstream = os.environ.get("AGWLAB_ANTHROPIC_UPSTREAM", "standin")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "sandbox-settings", "namespace": "agwlab-system"},
            "data": {"anthropic.upstream": upstream if upstream in ("standin", "api.anthropic.com") else "standin",
                     "edition": edition()}}


def bootstrap(store: Any, kinds_by: Any) -> int:
    """Create whatever of the system objects is missing. Returns how many were created."""
    created = 0
    extra = [ENTERPRISE_CLASS] if edition() == "enterprise" else []
    for obj in [*SYSTEM_OBJECTS, *extra, settings_configmap()]:
        info = kinds_by(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        if store.get(info.group, info.plural, meta.get("namespace"), meta["name"]) is None:
            store.create(_deepcopy(obj), field_manager="helm")
            created += 1
    return created


def _deepcopy(obj: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(obj)
