"""The kinds the sandbox's API server serves, with the names Kubernetes gives them.

One :class:`KindInfo` per served kind: group/version, plural/singular/short names,
whether it is namespaced, its categories, subresources and the columns ``kubectl get``
shows. The custom kinds mirror the real CustomResourceDefinitions (Gateway API v1.6.1
standard channel and agentgateway's ``v1alpha1`` CRDs); their schemas ship as data in
``agwlab/sandbox/schemas/``.

Example:
    >>> info = by_kind("gateway.networking.k8s.io/v1", "Gateway")
    >>> info.plural, info.short_names, info.namespaced
    ('gateways', ('gtw',), True)
    >>> by_resource("", "pods").kind
    'Pod'
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "KindInfo",
    "PrinterColumn",
    "all_kinds",
    "by_kind",
    "by_resource",
    "groups",
    "resolve_name",
]


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get`` output (a Table column definition).

    ``json_path`` is set for custom kinds (their ``additionalPrinterColumns``); the
    built-in kinds compute their cells in code, as the real API server does, and leave
    it empty. ``priority`` 1 means "only with ``-o wide``".
    """

    name: str
    type: str = "string"
    json_path: str = ""
    priority: int = 0
    description: str = ""
    format: str = ""


@dataclass(frozen=True)
class KindInfo:
    """Everything the API server and controller need to know about one kind."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    printer_columns: tuple[PrinterColumn, ...] = ()
    custom: bool = False
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, else ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def resource(self) -> str:
        """``plural.group`` (just ``plural`` for the core group), as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection, or of one object when ``name`` is given."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def _age() -> PrinterColumn:
    return PrinterColumn("Age", "string", description="CreationTimestamp is a timestamp representing the "
                         "server time when this object was created.")


_BINDING_COLUMNS = (PrinterColumn("Role"), _age(), PrinterColumn("Users", priority=1),
                    PrinterColumn("Groups", priority=1), PrinterColumn("ServiceAccounts", priority=1))
_ALL = ("all",)
_STATUS = frozenset({"status"})

_KINDS: tuple[KindInfo, ...] = (
    KindInfo("", "v1", "Namespace", "namespaces", "namespace", ("ns",), namespaced=False,
             subresources=_STATUS,
             printer_columns=(PrinterColumn("Status"), _age()),
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    KindInfo("", "v1", "ConfigMap", "configmaps", "configmap", ("cm",),
             printer_columns=(PrinterColumn("Data", "string"), _age())),
    KindInfo("", "v1", "Secret", "secrets", "secret",
             printer_columns=(PrinterColumn("Type"), PrinterColumn("Data", "string"), _age())),
    KindInfo("", "v1", "Service", "services", "service", ("svc",), categories=_ALL,
             subresources=_STATUS | {"proxy"},
             printer_columns=(PrinterColumn("Type"), PrinterColumn("Cluster-IP"),
                              PrinterColumn("External-IP"), PrinterColumn("Port(s)"), _age(),
                              PrinterColumn("Selector", priority=1)),
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    KindInfo("", "v1", "Pod", "pods", "pod", ("po",), categories=_ALL,
             subresources=frozenset({"status", "log", "portforward"}),
             printer_columns=(PrinterColumn("Ready"), PrinterColumn("Status"),
                              PrinterColumn("Restarts", "string"), _age(),
                              PrinterColumn("IP", priority=1), PrinterColumn("Node", priority=1),
                              PrinterColumn("Nominated Node", priority=1),
                              PrinterColumn("Readiness Gates", priority=1))),
    KindInfo("", "v1", "Event", "events", "event", ("ev",),
             printer_columns=(PrinterColumn("Last Seen"), PrinterColumn("Type"), PrinterColumn("Reason"),
                              PrinterColumn("Object"), PrinterColumn("Subobject", priority=1),
                              PrinterColumn("Source", priority=1), PrinterColumn("Message"),
                              PrinterColumn("First Seen", priority=1),
                              PrinterColumn("Count", "integer", priority=1),
                              PrinterColumn("Name", priority=1))),
    KindInfo("", "v1", "Endpoints", "endpoints", "endpoints", ("ep",),
             printer_columns=(PrinterColumn("Endpoints"), _age())),
    KindInfo("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", ("sa",),
             subresources=frozenset({"token"}),
             printer_columns=(PrinterColumn("Secrets", "string"), _age())),
    KindInfo("apps", "v1", "Deployment", "deployments", "deployment", ("deploy",), categories=_ALL,
             subresources=frozenset({"status", "scale"}),
             printer_columns=(PrinterColumn("Ready"), PrinterColumn("Up-to-date", "integer"),
                              PrinterColumn("Available", "integer"), _age(),
                              PrinterColumn("Containers", priority=1), PrinterColumn("Images", priority=1),
                              PrinterColumn("Selector", priority=1))),
    KindInfo("apps", "v1", "ReplicaSet", "replicasets", "replicaset", ("rs",), categories=_ALL,
             subresources=frozenset({"status", "scale"}),
             printer_columns=(PrinterColumn("Desired", "integer"), PrinterColumn("Current", "integer"),
                              PrinterColumn("Ready", "integer"), _age(),
                              PrinterColumn("Containers", priority=1), PrinterColumn("Images", priority=1),
                              PrinterColumn("Selector", priority=1))),
    KindInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
             "customresourcedefinition", ("crd", "crds"), namespaced=False, categories=("api-extensions",),
             subresources=_STATUS, printer_columns=(PrinterColumn("Created At", "date"),)),
    KindInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", namespaced=False,
             printer_columns=(PrinterColumn("Created At", "date"),)),
    KindInfo("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
             "clusterrolebinding", namespaced=False, printer_columns=_BINDING_COLUMNS),
    KindInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", "role",
             printer_columns=(PrinterColumn("Created At", "date"),)),
    KindInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding",
             printer_columns=_BINDING_COLUMNS),
    KindInfo("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", "gatewayclass", ("gc",),
             namespaced=False, categories=("gateway-api",), subresources=_STATUS, custom=True,
             printer_columns=(PrinterColumn("Controller", json_path=".spec.controllerName"),
                              PrinterColumn("Accepted",
                                            json_path='.status.conditions[?(@.type=="Accepted")].status'),
                              PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
                              PrinterColumn("Description", json_path=".spec.description", priority=1))),
    KindInfo("gateway.networking.k8s.io", "v1", "Gateway", "gateways", "gateway", ("gtw",),
             categories=("gateway-api",), subresources=_STATUS, custom=True,
             printer_columns=(PrinterColumn("Class", json_path=".spec.gatewayClassName"),
                              PrinterColumn("Address", json_path=".status.addresses[*].value"),
                              PrinterColumn("Programmed",
                                            json_path='.status.conditions[?(@.type=="Programmed")].status'),
                              PrinterColumn("Age", "date", ".metadata.creationTimestamp"))),
    KindInfo("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", "httproute",
             categories=("gateway-api",), subresources=_STATUS, custom=True,
             printer_columns=(PrinterColumn("Hostnames", json_path=".spec.hostnames"),
                              PrinterColumn("Age", "date", ".metadata.creationTimestamp"))),
    KindInfo("agentgateway.dev", "v1alpha1", "AgentgatewayBackend", "agentgatewaybackends",
             "agentgatewaybackend", ("agbe",), categories=("agentgateway",), subresources=_STATUS,
             custom=True,
             printer_columns=(PrinterColumn("Accepted",
                                            json_path=".status.conditions[?(@.type=='Accepted')].status",
                                            description="Backend configuration acceptance status"),
                              PrinterColumn("Age", "date", ".metadata.creationTimestamp",
                                            description="The age of the backend."))),
    KindInfo("agentgateway.dev", "v1alpha1", "AgentgatewayPolicy", "agentgatewaypolicies",
             "agentgatewaypolicy", ("agpol",), categories=("agentgateway",), subresources=_STATUS,
             custom=True,
             printer_columns=(
                 PrinterColumn("Accepted",
                               json_path=".status.ancestors[*].conditions[?(@.type=='Accepted')].status",
                               description="Agentgateway policy acceptance status"),
                 PrinterColumn("Attached",
                               json_path=".status.ancestors[*].conditions[?(@.type=='Attached')].status",
                               description="Agentgateway policy attachment status"),
                 PrinterColumn("Age", "date", ".metadata.creationTimestamp"))),
    KindInfo("agentgateway.dev", "v1alpha1", "AgentgatewayParameters", "agentgatewayparameters",
             "agentgatewayparameters", ("agpar",), categories=("agentgateway",), subresources=_STATUS,
             custom=True,
             printer_columns=(PrinterColumn("Age", "date", ".metadata.creationTimestamp"),)),
    # the Prometheus operator's kinds, as kube-prometheus-stack installs them
    KindInfo("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", "podmonitor", ("pmon",),
             categories=("prometheus-operator",), custom=True,
             printer_columns=(PrinterColumn("Age", "date", ".metadata.creationTimestamp"),)),
    KindInfo("monitoring.coreos.com", "v1", "Prometheus", "prometheuses", "prometheus", ("prom",),
             categories=("prometheus-operator",), subresources=_STATUS, custom=True,
             printer_columns=(PrinterColumn("Version", json_path=".spec.version"),
                              PrinterColumn("Desired", "integer", ".spec.replicas"),
                              PrinterColumn("Age", "date", ".metadata.creationTimestamp"))),
)

_BY_KIND: dict[tuple[str, str], KindInfo] = {(k.api_version, k.kind): k for k in _KINDS}
_BY_RESOURCE: dict[tuple[str, str], KindInfo] = {(k.group, k.plural): k for k in _KINDS}


def all_kinds() -> tuple[KindInfo, ...]:
    """Every served kind, core group first."""
    return _KINDS


def groups() -> dict[str, list[KindInfo]]:
    """Kinds by API group (``""`` is the core group), in serving order."""
    out: dict[str, list[KindInfo]] = {}
    for k in _KINDS:
        out.setdefault(k.group, []).append(k)
    return out


def by_kind(api_version: str, kind: str) -> KindInfo | None:
    """The kind for an object's ``apiVersion`` and ``kind``, or ``None`` if not served."""
    return _BY_KIND.get((api_version, kind))


def by_resource(group: str, plural: str) -> KindInfo | None:
    """The kind for a REST resource (``""`` for the core group), or ``None``."""
    return _BY_RESOURCE.get((group, plural))


def resolve_name(name: str) -> KindInfo | None:
    """Find a kind the way kubectl's arguments name it.

    Accepts plural, singular, short name or kind (any case), optionally followed by
    ``.group`` or ``.version.group``, e.g. ``po``, ``Gateway``, ``gateways.gateway.networking.k8s.io``.
    """
    name = name.lower()
    head, _, rest = name.partition(".")
    for k in _KINDS:
        if head not in (k.plural, k.singular, k.kind.lower(), *k.short_names):
            continue
        if not rest or rest == k.group or rest == f"{k.version}.{k.group}".rstrip("."):
            return k
    return None
