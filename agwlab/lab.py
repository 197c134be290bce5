"""Connecting to the lab: the sandbox or a real cluster, its clients and addresses.

Example:
    >>> from agwlab import connect
    >>> lab = connect()                     # the sandbox, started if needed
    >>> lab.gateway_url("/anthropic")       # doctest: +ELLIPSIS
    'http://127...:8080/anthropic'
"""

from __future__ import annotations

import hashlib
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kubernetes import config as kube_config
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from . import kube
from .errors import (
    GatewayAddressUnavailable,
    LabError,
    NotFound,
    PrometheusUnavailable,
    SandboxUnavailable,
    from_api_error,
)
from .names import DEFAULT_NAMES, LISTENER_PORT, Names, names_for

if TYPE_CHECKING:
    from .secrets import ApiKey

__all__ = [
    "Edition",
    "Lab",
    "Target",
    "connect",
    "edition_of",
]

Target = Literal["sandbox", "cluster"]
Edition = Literal["oss", "enterprise"]



@dataclass
class Lab:
    """A connection to where the lab runs, with everything the notebooks need to reach it.

    Attributes:
        target: ``"sandbox"`` or ``"cluster"``.
        api_client: the kubernetes ``ApiClient`` (typed APIs take it).
        dynamic: a ``DynamicClient`` over the same connection (any kind, CRDs included).
        gateway_class: the GatewayClass the lab's Gateway uses.
        edition: ``"oss"`` (class ``agentgateway``) or ``"enterprise"``.
        names: the names of every object of the lab (:class:`agwlab.names.Names`); the
            Gateway, Secret, backends, routes and policy live in ``names.namespace``.
        kubeconfig: the kubeconfig file used (``None`` for the default one).
        context: the kubeconfig context (``None`` for its current context).
        sandbox: what the sandbox reported when it started (sandbox only).
    """

    target: Target
    api_client: ApiClient
    dynamic: DynamicClient
    gateway_class: str = "agentgateway"
    edition: Edition = "oss"
    names: Names = field(default_factory=Names)
    kubeconfig: Path | None = None
    context: str | None = None
    sandbox: Any = None
    notes: list[str] = field(default_factory=list)
    # local port-forwards the lab opened, by remote port (kept for the Lab's lifetime)
    forwards: dict[int, Any] = field(default_factory=dict, repr=False)

    @property
    def gateway_name(self) -> str:
        """The Gateway's name (``names.gateway``); the proxy's Deployment and Service share it."""
        return self.names.gateway

    @property
    def gateway_namespace(self) -> str:
        """Where the Gateway, its proxy, the Secret, backends, routes and policy live."""
        return self.names.namespace

    @property
    def mcp_namespace(self) -> str:
        """Where the MCP website fetcher runs."""
        return self.names.mcp_namespace

    @property
    def telemetry_namespace(self) -> str:
        """Where the OpenTelemetry collector runs."""
        return self.names.telemetry_namespace

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    def api_key(self) -> ApiKey:
        """The Anthropic key to use here: the environment's, the key box's, else the one in the
        lab's Secret (given once, in notebook 01), else the sandbox's (see
        :func:`agwlab.secrets.get_api_key`). In a workshop whose instructor placed the key
        (:meth:`placed_secret`), a key of source ``placed`` whose value nobody here holds."""
        from .secrets import ApiKey, get_api_key, stored_key

        if self.placed_secret() is not None:
            return ApiKey("", "placed")
        return get_api_key(target=self.target, stored=lambda: stored_key(self))

    def placed_secret(self) -> str | None:
        """The key Secret a workshop's instructor placed in this lab's namespace (named by the
        Namespace's ``agwlab/placed-secret`` annotation), or None: then the learner gives the key."""
        from .secrets import PLACED_KEY

        try:
            ns = kube.get(self, "Namespace", self.names.namespace, missing_ok=True)
        except LabError:
            return None
        value = (((ns or {}).get("metadata") or {}).get("annotations") or {}).get(PLACED_KEY)
        return str(value) if value else None

    def _published_address(self) -> str | None:
        """``status.addresses[0].value``, else the proxy Service's LoadBalancer ingress, else None."""
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
        svc = kube.get(self, "Service", self.gateway_name, self.gateway_namespace, missing_ok=True) or {}
        ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
        if ingress:
            value = ingress[0].get("ip") or ingress[0].get("hostname")
            if value:
                return str(value)
        return None

    def _forward(self, port: int, timeout: float) -> Any:
        """The lab's port-forward to the proxy's ``port``, opened once the proxy Deployment is
        Available (and kept: it follows the proxy to a new Pod by itself)."""
        from . import kube
        from .portforward import PortForward

        forward = self.forwards.get(port)
        if forward is None:
            try:
                kube.wait_for(self, "Deployment", self.gateway_name, self.gateway_namespace,
                              condition="Available", timeout=timeout, quiet=True)
            except LabError as exc:
                raise GatewayAddressUnavailable(
                    f"the Gateway has no address (no LoadBalancer) and its proxy Deployment "
                    f"{self.gateway_namespace}/{self.gateway_name} is not Available to forward to: {exc}"
                ) from None
            selector = f"gateway.networking.k8s.io/gateway-name={self.gateway_name}"
            try:
                # the listener's own port when it is free, as `kubectl port-forward … 8080:8080` in the
                # docs, so commands written for $GATEWAY:8080 work in a terminal too
                forward = PortForward(self.api_client, self.gateway_namespace, selector, port, local_port=port)
            except OSError:
                forward = PortForward(self.api_client, self.gateway_namespace, selector, port)
            self.forwards[port] = forward
        return forward

    def gateway_base(self, *, port: int = LISTENER_PORT, timeout: float = 60) -> str:
        """``http://host[:port]`` where the Gateway's listener ``port`` answers.

        In order: ``AGWLAB_GATEWAY_ADDRESS`` (a full URL such as ``http://127.0.0.1:8080``, or
        a bare host), the Gateway's published address, and otherwise a local port-forward to
        the proxy that the lab opens itself (as on kind, where a LoadBalancer stays pending).

        Raises:
            GatewayAddressUnavailable: no Gateway, or no address and no proxy to forward to.
        """
        override = os.environ.get("AGWLAB_GATEWAY_ADDRESS", "").strip().rstrip("/")
        if override:
            if "://" in override:
                return override
            host = f"[{override}]" if ":" in override and not override.startswith("[") else override
            return f"http://{host}:{port}"
        address = self._published_address()
        if address:
            host = f"[{address}]" if ":" in address and not address.startswith("[") else address
            return f"http://{host}:{port}"
        return str(self._forward(port, timeout).url)

    def gateway_address(self) -> str:
        """Where the Gateway answers: its published address, or ``127.0.0.1:<port>`` of the
        lab's port-forward when it has none (``AGWLAB_GATEWAY_ADDRESS`` overrides both).

        Raises:
            GatewayAddressUnavailable: when there is neither.
        """
        base = self.gateway_base()
        netloc = base.split("://", 1)[1]
        return netloc.removesuffix(f":{LISTENER_PORT}")

    def gateway_url(self, path: str = "", *, port: int = LISTENER_PORT) -> str:
        """The URL of ``path`` on the Gateway's listener (see :meth:`gateway_base`).

        Raises:
            GatewayAddressUnavailable: see :meth:`gateway_base`.
        """
        return f"{self.gateway_base(port=port)}{path}"

    def sample_page(self) -> str:
        """The page notebook 03 has the MCP fetcher download, from inside the cluster.

        ``$AGWLAB_FETCH_URL`` when set (a cluster without internet access, e.g. a workshop
        behind a firewall); else the lab's own website on the sandbox, ``https://example.com``
        on a cluster.
        """
        override = os.environ.get("AGWLAB_FETCH_URL", "").strip()
        if override:
            return override
        if self.target == "sandbox":
            return "http://lab-website.agwlab-system.svc.cluster.local/"
        return "https://example.com"

    def prometheus_url(self) -> str:
        """Where Prometheus answers: ``AGWLAB_PROMETHEUS_URL``, the sandbox's own, or one found
        in the cluster (the operator's ``prometheus-operated`` or kube-prometheus-stack's
        Service), reached through the API server's service proxy.

        Raises:
            PrometheusUnavailable: none is configured or found.
        """
        override = os.environ.get("AGWLAB_PROMETHEUS_URL", "").strip()
        if override:
            return override.rstrip("/")
        url = getattr(self.sandbox, "prometheus_url", None)
        if url:
            return str(url).rstrip("/")
        from .locate import find_prometheus

        found = find_prometheus(self)
        if found:
            return found[0]
        if self.target == "sandbox":
            raise PrometheusUnavailable(
                "the sandbox did not start Prometheus (is /usr/bin/prometheus installed?): "
                "see python -m agwlab sandbox status"
            )
        from .locate import prometheus_namespaces

        raise PrometheusUnavailable(
            "no Prometheus found: no Service labelled operated-prometheus=true (the Prometheus operator's) "
            "or app=kube-prometheus-stack-prometheus in any namespace you can list (without the right to "
            f"list Services everywhere, only {', '.join(prometheus_namespaces(self))} are searched). Install "
            "kube-prometheus-stack (see python -m agwlab cluster plan), set AGWLAB_PROMETHEUS_NAMESPACE to "
            "the namespace it runs in, or set AGWLAB_PROMETHEUS_URL"
        )

    def prometheus_http(self) -> Any:
        """Credentials for :meth:`prometheus_url` (:class:`agwlab.locate.ApiHttp`): the
        kubeconfig's when Prometheus is reached through the API server, none otherwise."""
        from .locate import ApiHttp, api_http

        url = self.prometheus_url()
        if url.startswith(self.server.rstrip("/") + "/api/"):
            return api_http(self)
        return ApiHttp()

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
            f"Gateway: {self.names.gateway_ref}",
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
    namespace: str | None = None,
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
        namespace: the learner's namespace (default ``$AGWLAB_NAMESPACE``, else the context's
            namespace unless that is ``default``, else the layout of agentgateway's docs); see
            :func:`agwlab.names.names_for`.
        home: the agwlab home for the sandbox (default ``$AGWLAB_HOME`` or ``~/.agwlab``).
        timeout: seconds to wait for the sandbox to start.

    Returns:
        A :class:`Lab`.

    Raises:
        SandboxUnavailable: the sandbox could not be started.
        LabError: an unknown target, no usable kubeconfig, or an invalid namespace name.
    """
    from .notebook import install as _short_errors

    _short_errors()  # in a notebook, agwlab's errors show as one line with the fix
    asked = (target or os.environ.get("AGWLAB_TARGET", "") or "sandbox").strip().lower()
    if asked not in ("sandbox", "cluster"):
        raise LabError(f"unknown target {asked!r}: use 'sandbox' or 'cluster' (or set AGWLAB_TARGET)")
    chosen: Target = "cluster" if asked == "cluster" else "sandbox"
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
        # KUBECONFIG may list several files: they are merged as kubectl merges them
        env_kubeconfig = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        kubeconfig = Path(env_kubeconfig[0]) if env_kubeconfig else None
        base = home or _home()
    config_file = (
        os.pathsep.join(env_kubeconfig) if chosen == "cluster" and env_kubeconfig
        else str(kubeconfig) if kubeconfig else None
    )
    try:
        api_client = kube_config.new_client_from_config(config_file=config_file, context=context)
    except Exception as exc:
        raise LabError(
            f"could not load the kubeconfig ({exc}): check KUBECONFIG and kubectl config current-context"
        ) from None
    try:
        names = names_for(
            context_namespace=namespace or _context_namespace(config_file, context),
            environ={} if namespace else None,
        )
    except ValueError as exc:
        raise LabError(str(exc)) from None
    server = str(api_client.configuration.host)
    try:
        dynamic = DynamicClient(api_client, cache_file=str(_discovery_cache(base, server)))
    except Exception as exc:
        raise from_api_error(exc, action="discover the APIs of", name=server) from None
    lab = Lab(
        target=chosen,
        api_client=api_client,
        dynamic=dynamic,
        gateway_class=cls,
        edition=ed,
        kubeconfig=kubeconfig,
        context=context,
        sandbox=info,
        names=names,
    )
    if edition is None:
        lab.edition = edition_of(lab) or ed
    if names != DEFAULT_NAMES:  # a learner in their own namespace: record progress for the instructor
        from . import checks, progress

        checks.record_results(lambda result: progress.record(lab, result))
    return lab


def edition_of(lab: Lab) -> Edition | None:
    """The edition the GatewayClass's ``controllerName`` says (None when it cannot be read):
    agentgateway's open-source controller is ``agentgateway.dev/agentgateway``."""
    from . import kube

    try:
        gc = kube.get(lab, "GatewayClass", lab.gateway_class, missing_ok=True)
    except LabError:
        return None
    controller = str(((gc or {}).get("spec") or {}).get("controllerName", ""))
    if not controller:
        return None
    return "oss" if controller == "agentgateway.dev/agentgateway" else "enterprise"


def _context_namespace(config_file: str | None, context: str | None) -> str | None:
    """The namespace the kubeconfig context names, if any (``config_file`` may list several files)."""
    try:
        contexts, current = kube_config.list_kube_config_contexts(config_file=config_file)
    except Exception:  # the client already loaded it; an unreadable context list means no namespace
        return None
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) if context else current
    return ((chosen or {}).get("context") or {}).get("namespace")
