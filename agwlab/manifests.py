"""The lab's Kubernetes objects, as the tutorial has them, corrected.

Each object is a :class:`Manifest`: the dict that is applied, the YAML a reader can copy
(Secret values shown as ``$ANTHROPIC_API_KEY``), and a note saying what changed from the
original tutorial and why. Every function takes the lab's names (``lab.names``; default:
the layout of agentgateway's docs). Which objects make up which stage is declared in
:mod:`agwlab.stages`.

Example:
    >>> print(mcp_route().yaml())   # doctest: +ELLIPSIS
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata:
      name: mcp-route
      namespace: agentgateway-system
    ...
"""

from __future__ import annotations

import copy
import html
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from . import models as _models
from .names import (
    COLLECTOR_IMAGE,
    DEFAULT_NAMES,
    FETCHER_IMAGE,
    LAB_LABEL,
    LISTENER_PORT,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    Names,
)
from .redaction import redact
from .secrets import ApiKey

__all__ = [
    "DEFAULT_MODEL",
    "LAB_LABEL",
    "Manifest",
    "ManifestList",
    "anthropic_backend",
    "anthropic_secret",
    "claude_route",
    "collector",
    "gateway",
    "mcp_backend",
    "mcp_fetcher",
    "mcp_route",
    "to_yaml",
    "tracing_policy",
    "wrap_note",
]

# the one place models are kept is agwlab.models; re-exported here for the notebooks
DEFAULT_MODEL = _models.DEFAULT_MODEL
_KEY_PLACEHOLDER = "$ANTHROPIC_API_KEY"


class _Dumper(yaml.SafeDumper):
    # Shared dicts (a Deployment's selector and template labels) are written out, not as &anchors.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(obj: dict[str, Any]) -> str:
    """YAML in the usual key order (apiVersion, kind, metadata, spec …)."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


@dataclass(frozen=True)
class Manifest:
    """One object of the lab.

    Attributes:
        obj: what is applied to the cluster.
        note: what changed from the original tutorial and why ("" if nothing did).
        shown: what is displayed (differs from ``obj`` only for Secrets: no key in it).
    """

    obj: dict[str, Any]
    note: str = ""
    shown: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.obj["metadata"].get("namespace")
        return str(namespace) if namespace is not None else None

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    def yaml(self) -> str:
        """The YAML a reader can copy (Secret values as ``$ANTHROPIC_API_KEY``)."""
        return redact(to_yaml(self.shown if self.shown is not None else self.obj))

    def __str__(self) -> str:
        comment = "".join(f"# {line}\n" for line in wrap_note(self.note)) if self.note else ""
        return comment + self.yaml()

    def __repr__(self) -> str:
        # What a notebook shows as text: the copyable YAML, never the Secret's value.
        return str(self)

    def _repr_html_(self) -> str:
        note = (
            '<div style="background:#fff8c5;padding:4px 8px;margin-bottom:2px">'
            f"<b>Compared with the tutorial:</b> {html.escape(self.note)}</div>"
            if self.note
            else ""
        )
        pre = '<pre style="font-family:monospace;background:#f6f8fa;padding:6px 8px;margin-top:0">'
        return redact(f"{note}{pre}{html.escape(self.yaml())}</pre>")


class ManifestList(list[Manifest]):
    """Several manifests that display as one YAML stream (``---`` between documents)."""

    def __str__(self) -> str:
        return "---\n".join(str(m) for m in self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "".join(m._repr_html_() for m in self)


def _meta(name: str, namespace: str | None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**labels, **LAB_LABEL}
    return meta


def gateway(names: Names = DEFAULT_NAMES, *, gateway_class: str = "agentgateway") -> Manifest:
    """The Gateway (``agentgateway-route``): one HTTP listener on 8080 that takes routes from any namespace.

    Args:
        names: the lab's names (``lab.names``).
        gateway_class: the Gateway's class.
    """
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": _meta(names.gateway, names.namespace, app="agentgateway"),
        "spec": {
            "gatewayClassName": gateway_class,
            "listeners": [
                {
                    "protocol": "HTTP",
                    "port": LISTENER_PORT,
                    "name": "http",
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }
    note = ""
    if gateway_class == "agentgateway":
        note = (
            "gatewayClassName is agentgateway, the class open-source agentgateway creates; the tutorial's "
            "enterprise-agentgateway exists only with Solo's enterprise chart and a licence. Its proxy "
            f"Deployment and Service are named after the Gateway ({names.gateway}) in {names.namespace}, "
            "not agentgateway in gloo-system."
        )
    return Manifest(obj, note)


def anthropic_secret(api_key: ApiKey | str | None, names: Names = DEFAULT_NAMES) -> Manifest:
    """The Secret (``anthropic-secret``) holding the key under ``Authorization`` (the default key name).

    Args:
        api_key: the key; ``None`` writes the placeholder ``$ANTHROPIC_API_KEY``.
        names: the lab's names (``lab.names``).
    """
    if isinstance(api_key, ApiKey):
        value = _KEY_PLACEHOLDER if api_key.source == "placed" else api_key.reveal()
    else:
        value = api_key or _KEY_PLACEHOLDER
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names.secret, names.namespace, app=names.gateway),
        "type": "Opaque",
        "stringData": {"Authorization": value},
    }
    shown = copy.deepcopy(obj)
    shown["stringData"]["Authorization"] = _KEY_PLACEHOLDER
    return Manifest(
        obj,
        "Unchanged: agentgateway reads the key from the Secret's Authorization entry by default "
        "(secretRef.key "
        "picks another). It must be in the same namespace as the AgentgatewayBackend.",
        shown,
    )


def anthropic_backend(names: Names = DEFAULT_NAMES, *, model: str | None = DEFAULT_MODEL) -> Manifest:
    """The AgentgatewayBackend (``anthropic``): Claude via the Anthropic provider, key from the Secret.

    Args:
        names: the lab's names (``lab.names``).
        model: pin this model for every request (``None`` lets the client choose).
    """
    anthropic: dict[str, Any] = {"model": model} if model else {}
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayBackend",
        "metadata": _meta(names.llm_backend, names.namespace, app=names.gateway),
        "spec": {
            "ai": {"provider": {"anthropic": anthropic}},
            "policies": {"auth": {"secretRef": {"name": names.secret}}},
        },
    }
    return Manifest(
        obj,
        "Unchanged, but check it with kubectl get agentgatewaybackend (short name agbe): there is no Backend "
        "kind in agentgateway.dev. A pinned model overrides whatever model the client sends.",
    )


def claude_route(names: Names = DEFAULT_NAMES) -> Manifest:
    """The HTTPRoute (``claude``): ``/anthropic`` to the Anthropic backend, without a path rewrite.

    Args:
        names: the lab's names (``lab.names``).
    """
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.llm_route, names.namespace, app=names.gateway),
        "spec": {
            "parentRefs": [{"name": names.gateway, "namespace": names.namespace}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/anthropic"}}],
                    "backendRefs": [
                        {"name": names.llm_backend, "group": "agentgateway.dev", "kind": "AgentgatewayBackend"}
                    ],
                }
            ],
        },
    }
    return Manifest(
        obj,
        "No URLRewrite: an AI backend treats every request as an OpenAI chat completion and the Anthropic "
        "provider sends it to /v1/messages whatever the path, so rewriting to /v1/chat/completions did "
        "nothing and misled. The backendRef's namespace is dropped (it is the route's own).",
    )


_COLLECTOR_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:{grpc}
      http:
        endpoint: 0.0.0.0:{http}
processors:
  batch: {}
exporters:
  debug:
    verbosity: detailed
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"""


def collector(names: Names = DEFAULT_NAMES) -> ManifestList:
    """An OpenTelemetry collector (in ``telemetry``) printing every span (debug exporter, detailed).

    The same objects the ``opentelemetry-collector`` Helm chart would create for a release
    named ``opentelemetry-collector-traces`` in mode ``deployment``, reduced to traces.

    Args:
        names: the lab's names (``lab.names``).
    """
    name, ns = names.collector, names.telemetry_namespace
    labels = {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": name}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, None)}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, ns, **labels),
        "data": {"relay": _COLLECTOR_CONFIG.replace("{grpc}", str(OTLP_GRPC_PORT)).replace(
            "{http}", str(OTLP_HTTP_PORT)
        )},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns, **labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "opentelemetry-collector",
                            "image": COLLECTOR_IMAGE,
                            "command": ["/otelcol-contrib", "--config=/conf/relay.yaml"],
                            "ports": [
                                {"name": "otlp", "containerPort": OTLP_GRPC_PORT, "protocol": "TCP"},
                                {"name": "otlp-http", "containerPort": OTLP_HTTP_PORT, "protocol": "TCP"},
                            ],
                            "volumeMounts": [{"name": "config", "mountPath": "/conf"}],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "config",
                            "configMap": {
                                "name": name,
                                "items": [{"key": "relay", "path": "relay.yaml"}],
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, ns, **labels),
        "spec": {
            "selector": labels,
            "ports": [
                {"name": "otlp", "port": OTLP_GRPC_PORT, "targetPort": OTLP_GRPC_PORT, "protocol": "TCP",
                 "appProtocol": "grpc"},
                {"name": "otlp-http", "port": OTLP_HTTP_PORT, "targetPort": OTLP_HTTP_PORT, "protocol": "TCP"},
            ],
        },
    }
    note = (
        "The tutorial assumes a collector is already running. This is the one agentgateway's docs install "
        f"with Helm (release {name} in {ns}), written out: an OTLP receiver and "
        "the debug exporter, which prints every span to the collector's log."
    )
    # a collector of the learner's own (in their namespace) needs no Namespace: it is theirs already
    own = [] if ns in (names.namespace, names.mcp_namespace) else [Manifest(namespace)]
    return ManifestList([*own, Manifest(config), Manifest(deployment, note), Manifest(service)])


def tracing_policy(names: Names = DEFAULT_NAMES) -> Manifest:
    """The AgentgatewayPolicy (``tracing``): export spans of every request on the Gateway to the collector.

    Args:
        names: the lab's names (``lab.names``).
    """
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _meta(names.tracing_policy, names.namespace),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": names.gateway}],
            "frontend": {
                "tracing": {
                    "backendRef": {
                        "name": names.collector,
                        "namespace": names.telemetry_namespace,
                        "port": OTLP_GRPC_PORT,
                    },
                    "protocol": "GRPC",
                    "randomSampling": "true",
                }
            },
        },
    }
    return Manifest(
        obj,
        "New: the tutorial says traces are on, but nothing traces by default today. This policy on the "
        f"Gateway exports spans over OTLP/gRPC to {names.collector_host}:{OTLP_GRPC_PORT} and samples "
        "every request (requests that carry a traceparent are sampled anyway).",
    )


def mcp_fetcher(names: Names = DEFAULT_NAMES) -> ManifestList:
    """The MCP website fetcher: the tutorial's Deployment and Service (in ``default``; SSE on port 8000).

    Args:
        names: the lab's names (``lab.names``).
    """
    labels = {"app": names.fetcher}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(names.fetcher, names.mcp_namespace),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": names.fetcher,
                            "image": FETCHER_IMAGE,
                            "imagePullPolicy": "Always",
                        }
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names.fetcher, names.mcp_namespace),
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000, "protocol": "TCP"}]},
    }
    return ManifestList(
        [
            Manifest(deployment),
            Manifest(
                service,
                "No appProtocol: kgateway.dev/mcp is ignored for static targets, and for selector targets it "
                "means Streamable HTTP, which is wrong for this SSE server "
                "(that would be agentgateway.dev/mcp-sse).",
            ),
        ]
    )


def mcp_backend(names: Names = DEFAULT_NAMES) -> Manifest:
    """The AgentgatewayBackend (``mcp-backend``): one static SSE target, the fetcher's Service.

    Args:
        names: the lab's names (``lab.names``).
    """
    obj = {
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayBackend",
        "metadata": _meta(names.mcp_backend, names.namespace),
        "spec": {
            "mcp": {
                "targets": [
                    {
                        "name": names.mcp_target,
                        "static": {
                            "host": names.fetcher_host,
                            "port": 80,
                            "protocol": "SSE",
                        },
                    }
                ]
            }
        },
    }
    return Manifest(
        obj,
        "No spec.type: MCP (that field belonged to kgateway's old Backend; kubectl rejects it as unknown). "
        "protocol: SSE matters: left out, it means Streamable HTTP on /mcp, "
        "which this server does not speak. "
        "host names the Service by its cluster DNS name, which works from any namespace "
        "(static.backendRef only names Services in the backend's own namespace).",
    )


def mcp_route(names: Names = DEFAULT_NAMES) -> Manifest:
    """The HTTPRoute (``mcp-route``): ``/mcp`` on the lab's Gateway to the MCP backend.

    Args:
        names: the lab's names (``lab.names``).
    """
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.mcp_route, names.namespace),
        "spec": {
            "parentRefs": [{"name": names.gateway, "namespace": names.namespace}],
            "rules": [
                {
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": "/mcp"}},
                        {"path": {"type": "Exact", "value": "/sse"}},
                    ],
                    "backendRefs": [
                        {"name": names.mcp_backend, "group": "agentgateway.dev", "kind": "AgentgatewayBackend"}
                    ],
                }
            ],
        },
    }
    return Manifest(
        obj,
        f"parentRefs names {names.gateway} with its namespace (the tutorial's agentgateway does not exist, "
        "so the route never attached and every request got 404 route not found). PathPrefix /mcp keeps MCP "
        "apart from /anthropic; clients speak Streamable HTTP there. The exact /sse match serves only the "
        "legacy SSE transport the tutorial tried.",
    )


def wrap_note(text: str, width: int = 98) -> list[str]:
    """A note as YAML comment lines' text."""
    return textwrap.wrap(text, width=width)
