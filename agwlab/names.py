"""Every name, version and protocol constant the lab uses, in one place.

:class:`Names` holds the names of the lab's objects: the Gateway, its namespace, the
Secret, the backends, the routes, the tracing policy, the MCP fetcher and the collector.
A :class:`agwlab.Lab` carries one (``lab.names``), and manifests, checks, catch-up,
cleanup, metric queries and notebook cells read the names from there, so a learner in
their own namespace gets the same lab as everyone else, in that namespace.

A learner's namespace is ``$AGWLAB_NAMESPACE``, else the namespace of the kubeconfig
context (unless that is ``default``, which is what kubectl assumes when nothing was
chosen); without either, the lab keeps the layout of agentgateway's docs (the Gateway in
``agentgateway-system``, the fetcher in ``default``, the collector in ``telemetry``).

This module imports nothing from the rest of agwlab, so the sandbox may import it too.

Example:
    >>> names = Names()
    >>> names.gateway_ref
    'agentgateway-system/agentgateway-route'
    >>> Names.for_namespace("agwlab-alice").fetcher_host
    'mcp-website-fetcher.agwlab-alice.svc.cluster.local'
    >>> names_for(context_namespace="default", environ={}) == Names()
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

__all__ = [
    "AGENTGATEWAY_CHART",
    "AGENTGATEWAY_CRDS_CHART",
    "COLLECTOR_IMAGE",
    "CONTROLLER_NAMESPACE",
    "DEFAULT_NAMES",
    "FETCHER_IMAGE",
    "GATEWAY_API_VERSION",
    "LAB_LABEL",
    "LISTENER_PORT",
    "MCP_PROTOCOL_VERSION",
    "MCP_SESSION_HEADER",
    "NAMESPACE_ENV",
    "NOTES_IMAGE",
    "NOTES_MCP_REQUIREMENT",
    "OTLP_GRPC_PORT",
    "OTLP_HTTP_PORT",
    "PROXY_IMAGE",
    "TESTED_VERSION",
    "Names",
    "names_for",
]

# The agentgateway release whose behaviour the lab was written and checked against.
TESTED_VERSION = "v1.4.1"
# The Gateway API release whose CRDs the lab installs and was checked against.
GATEWAY_API_VERSION = "v1.6.1"
AGENTGATEWAY_CHART = "oci://cr.agentgateway.dev/charts/agentgateway"
AGENTGATEWAY_CRDS_CHART = "oci://cr.agentgateway.dev/charts/agentgateway-crds"
PROXY_IMAGE = f"cr.agentgateway.dev/agentgateway:{TESTED_VERSION}"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.127.0"
FETCHER_IMAGE = "ghcr.io/peterj/mcp-website-fetcher:main"
# The lab's own MCP notes server (notebook 09) runs in the stock Python image: the container
# installs this mcp SDK release from PyPI at start and runs the server's source from a ConfigMap.
NOTES_IMAGE = "python:3.12-slim"
NOTES_MCP_REQUIREMENT = "mcp==2.3.0"

# Where agentgateway's Helm chart installs the controller (not the learner's namespace).
CONTROLLER_NAMESPACE = "agentgateway-system"
# The Gateway's HTTP listener, and so the port every request of the lab goes to.
LISTENER_PORT = 8080
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
# Every object the lab creates carries this label, so cleanup can prove nothing is left.
LAB_LABEL: Mapping[str, str] = {"app.kubernetes.io/part-of": "agwlab"}

# MCP: the protocol revision the lab's clients offer, and the session header (Streamable HTTP).
MCP_PROTOCOL_VERSION = "2025-06-18"
MCP_SESSION_HEADER = "mcp-session-id"

NAMESPACE_ENV = "AGWLAB_NAMESPACE"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Names:
    """The names of the lab's objects.

    Attributes:
        namespace: where the Gateway, its proxy, the Secret, backends, routes and policy live.
        gateway: the Gateway; agentgateway names its proxy Deployment and Service after it.
        mcp_namespace: where the MCP website fetcher runs.
        telemetry_namespace: where the OpenTelemetry collector runs.
        secret: the Secret holding the Anthropic key.
        llm_backend: the AgentgatewayBackend for Anthropic.
        llm_route: the HTTPRoute ``/anthropic``.
        tracing_policy: the AgentgatewayPolicy that turns tracing on.
        fetcher: the MCP website fetcher's Deployment and Service.
        mcp_backend: the AgentgatewayBackend for the fetcher.
        mcp_target: the backend's one target.
        mcp_route: the HTTPRoute ``/mcp``.
        collector: the collector's Deployment, Service and ConfigMap (the Helm release's name).
        rate_limit_policy: the AgentgatewayPolicy with the Claude route's rate limits (notebook 07).
        failover_backend: the AgentgatewayBackend with two priority groups (notebook 06).
        failover_route: the HTTPRoute ``/failover`` to it (notebook 06).
        resilience_policy: the AgentgatewayPolicy with its retries and timeout (notebook 06).
        guardrail_policy: the AgentgatewayPolicy with the Claude route's prompt guards (notebook 08).
        notes: the MCP notes server's Deployment and Service (notebook 09).
        tools_backend: the AgentgatewayBackend with two MCP targets, fetcher and notes (notebook 09).
        tools_route: the HTTPRoute ``/tools`` to it (notebook 09).
        jwt_policy: the AgentgatewayPolicy with JWT authentication on that route (notebook 09).
        tools_policy: the AgentgatewayPolicy with the MCP authorization rules (notebook 09).
    """

    namespace: str = "agentgateway-system"
    gateway: str = "agentgateway-route"
    mcp_namespace: str = "default"
    telemetry_namespace: str = "telemetry"
    secret: str = "anthropic-secret"
    llm_backend: str = "anthropic"
    llm_route: str = "claude"
    tracing_policy: str = "tracing"
    fetcher: str = "mcp-website-fetcher"
    mcp_backend: str = "mcp-backend"
    mcp_target: str = "mcp-target"
    mcp_route: str = "mcp-route"
    collector: str = "opentelemetry-collector-traces"
    rate_limit_policy: str = "llm-rate-limit"
    failover_backend: str = "claude-failover"
    failover_route: str = "claude-failover"
    resilience_policy: str = "claude-failover-retry"
    guardrail_policy: str = "llm-guardrails"
    notes: str = "mcp-notes"
    tools_backend: str = "mcp-tools"
    tools_route: str = "mcp-tools"
    jwt_policy: str = "mcp-tools-jwt"
    tools_policy: str = "mcp-tools-authz"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
                raise ValueError(
                    f"{f.name}={value!r} is not a valid Kubernetes name: use at most 63 lower-case "
                    "letters, digits and '-', starting and ending with a letter or digit"
                )

    @classmethod
    def for_namespace(cls, namespace: str) -> Names:
        """The lab of one learner: their Gateway, Secret, backends, routes, policy, fetcher and
        trace collector in ``namespace``, so the spans they read are theirs alone (on a shared
        cluster, reading a shared collector's log would show everyone's)."""
        return cls(namespace=namespace, mcp_namespace=namespace, telemetry_namespace=namespace)

    def replace(self, **changes: str) -> Names:
        """A copy with some names changed (checked like the constructor's)."""
        return replace(self, **changes)

    @property
    def gateway_ref(self) -> str:
        """``<namespace>/<gateway>``: how the proxy's metrics and logs name the Gateway."""
        return f"{self.namespace}/{self.gateway}"

    def route_ref(self, route: str) -> str:
        """``<namespace>/<route>``: how the access log names a route."""
        return f"{self.namespace}/{route}"

    @property
    def notes_host(self) -> str:
        """The notes server Service's cluster DNS name."""
        return f"{self.notes}.{self.mcp_namespace}.svc.cluster.local"

    @property
    def fetcher_host(self) -> str:
        """The fetcher Service's cluster DNS name."""
        return f"{self.fetcher}.{self.mcp_namespace}.svc.cluster.local"

    @property
    def collector_host(self) -> str:
        """The collector Service as ``<name>.<namespace>`` (how the tutorial writes it)."""
        return f"{self.collector}.{self.telemetry_namespace}"


# The layout of agentgateway's docs: the names of a learner alone on a cluster.
DEFAULT_NAMES = Names()


def names_for(
    *, context_namespace: str | None = None, environ: Mapping[str, str] | None = None
) -> Names:
    """The names for a learner: in ``$AGWLAB_NAMESPACE``, else the context's namespace, else the docs'.

    Args:
        context_namespace: the namespace of the kubeconfig context in use (``default`` and empty
            mean none was chosen).
        environ: the environment to read (default ``os.environ``).

    Raises:
        ValueError: the namespace is not a valid Kubernetes name (the message says which).
    """
    env = os.environ if environ is None else environ
    chosen = (env.get(NAMESPACE_ENV) or "").strip() or (context_namespace or "").strip()
    if not chosen or chosen == "default":
        return Names()
    try:
        return Names.for_namespace(chosen)
    except ValueError:
        source = NAMESPACE_ENV if env.get(NAMESPACE_ENV, "").strip() else "the kubeconfig context's namespace"
        raise ValueError(
            f"{source} is {chosen!r}, which is not a valid namespace name: use lower-case letters, "
            "digits and '-'"
        ) from None
