"""RBAC authorization: Roles, ClusterRoles and their bindings decide every request.

The rules are Kubernetes' (``rbac.authorization.k8s.io/v1``): a request is allowed when a
ClusterRoleBinding, or a RoleBinding in the request's namespace, binds the user (by name,
group or ServiceAccount) to a role with a rule matching the verb, API group, resource
(``pods/log`` for a subresource), resource name or non-resource path. Members of
``system:masters`` (the sandbox's admin) are always allowed. Refusals carry the real
API server's 403 wording.

The default ClusterRoles a cluster starts with (``cluster-admin``, ``system:discovery``,
``system:basic-user``, ``system:public-info-viewer``) and their bindings are created at
start-up, so any authenticated user may discover the API and ask what they may do.

Example:
    >>> rbac = Authorizer(store)                                                 # doctest: +SKIP
    >>> rbac.allowed(Attributes(user, "get", "agwlab-bob", "", "secrets", name="x"))  # doctest: +SKIP
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store import Store, StoreError
from .users import UserInfo

__all__ = ["Attributes", "Authorizer", "Forbidden", "install_rbac_defaults", "request_verb"]

_RBAC = "rbac.authorization.k8s.io"
_RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


class Forbidden(StoreError):
    """403: the user may not do this."""

    code = 403
    reason = "Forbidden"


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as the authorizer sees it.

    ``resource`` empty means a non-resource request for ``path``.
    """

    user: UserInfo
    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)

    def forbidden(self) -> Forbidden:
        """The error Kubernetes answers with when this request is refused."""
        if not self.is_resource:
            return Forbidden(f'forbidden: User "{self.user.name}" cannot {self.verb} path "{self.path}"')
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        scope = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        why = f'User "{self.user.name}" cannot {self.verb} resource "{resource}" in API group "{self.group}" {scope}'
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        subject = f'{qualified} "{self.name}"' if self.name else qualified
        details: dict[str, Any] = {"name": self.name} if self.name else {}
        if self.group:
            details["group"] = self.group
        details["kind"] = self.resource
        return Forbidden(f"{subject} is forbidden: {why}", details=details)


def request_verb(method: str, name: str | None, watch: str | None = None) -> str:
    """The RBAC verb of a REST request (``GET`` of a collection is ``list``, or ``watch``).

    Example:
        >>> request_verb("GET", None, "true"), request_verb("DELETE", None), request_verb("PATCH", "x")
        ('watch', 'deletecollection', 'patch')
    """
    method = method.upper()
    if method in ("GET", "HEAD"):
        if watch in ("1", "true"):
            return "watch"
        return "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _rule_allows(rule: dict, a: Attributes) -> bool:
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not a.is_resource:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _has(rule.get("apiGroups"), a.group):
        return False
    resources = rule.get("resources") or []
    if a.subresource:
        combined = f"{a.resource}/{a.subresource}"
        if not ("*" in resources or combined in resources or f"*/{a.subresource}" in resources):
            return False
    elif not ("*" in resources or a.resource in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _binds(subjects: Any, user: UserInfo, binding_ns: str) -> bool:
    for s in subjects or []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), s.get("name")
        if kind == "User" and name == user.name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            ns = s.get("namespace") or binding_ns
            if user.name == f"system:serviceaccount:{ns}:{name}":
                return True
    return False


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


class Authorizer:
    """Decides requests from the RBAC objects in the store (re-read only when they change)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._generation = 0
        self._built = -1
        self._cluster_roles: dict[str, list[dict]] = {}
        self._roles: dict[tuple[str, str], list[dict]] = {}
        self._cluster_bindings: list[tuple[Any, str]] = []
        self._bindings: dict[str, list[tuple[Any, str, str]]] = {}
        self._per_user: dict[tuple, dict[str | None, list[dict]]] = {}
        store.add_listener(self._on_change)

    def _on_change(self, event: str, obj: dict) -> None:
        if obj.get("kind") in _RBAC_KINDS:
            self._generation += 1

    def _build(self) -> None:
        if self._built == self._generation:
            return
        self._built = self._generation
        s = self.store
        roles = {r["metadata"]["name"]: r for r in s.list(_RBAC, "clusterroles", copy=False)}
        self._cluster_roles = {}
        for name, role in roles.items():
            rules = list(role.get("rules") or [])
            for selector in ((role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []):
                for other_name, other in roles.items():
                    if other_name != name and _matches(selector, other["metadata"].get("labels") or {}):
                        rules.extend(other.get("rules") or [])
            self._cluster_roles[name] = rules
        self._roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): list(r.get("rules") or [])
                       for r in s.list(_RBAC, "roles", copy=False)}
        self._cluster_bindings = [(b.get("subjects"), (b.get("roleRef") or {}).get("name", ""))
                                  for b in s.list(_RBAC, "clusterrolebindings", copy=False)
                                  if (b.get("roleRef") or {}).get("kind") == "ClusterRole"]
        self._bindings = {}
        for b in s.list(_RBAC, "rolebindings", copy=False):
            ref = b.get("roleRef") or {}
            self._bindings.setdefault(b["metadata"]["namespace"], []).append(
                (b.get("subjects"), ref.get("kind", ""), ref.get("name", "")))
        self._per_user = {}

    def _rules(self, user: UserInfo, namespace: str | None) -> list[dict]:
        key = (user.name, user.groups)
        mine = self._per_user.setdefault(key, {})
        if namespace in mine:
            return mine[namespace]
        if namespace is None:
            rules = [r for subjects, role in self._cluster_bindings if _binds(subjects, user, "")
                     for r in self._cluster_roles.get(role, [])]
        else:
            rules = []
            for subjects, kind, name in self._bindings.get(namespace, []):
                if not _binds(subjects, user, namespace):
                    continue
                if kind == "Role":
                    rules.extend(self._roles.get((namespace, name), []))
                elif kind == "ClusterRole":
                    rules.extend(self._cluster_roles.get(name, []))
        if len(mine) > 256:
            mine.clear()
        mine[namespace] = rules
        return rules

    def allowed(self, a: Attributes) -> bool:
        """Whether RBAC allows the request."""
        if a.user.is_master:
            return True
        self._build()
        if any(_rule_allows(r, a) for r in self._rules(a.user, None)):
            return True
        return bool(a.namespace) and any(_rule_allows(r, a) for r in self._rules(a.user, a.namespace))

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict]:
        """Every rule that applies to ``user`` in ``namespace`` (cluster-wide ones included)."""
        if user.is_master:
            return list(_DEFAULT_ROLES["cluster-admin"])
        self._build()
        return [*self._rules(user, None), *(self._rules(user, namespace) if namespace else [])]

    def role_rules(self, kind: str, namespace: str, name: str) -> list[dict] | None:
        """The rules of Role ``namespace/name`` or ClusterRole ``name`` (aggregated), or None if missing."""
        self._build()
        rules = self._cluster_roles.get(name) if kind == "ClusterRole" else self._roles.get((namespace, name))
        return None if rules is None else list(rules)

    def check(self, a: Attributes) -> None:
        """Raise :class:`Forbidden` (Kubernetes' wording) unless the request is allowed."""
        if not self.allowed(a):
            raise a.forbidden()


_DEFAULT_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_DEFAULT_ROLES: dict[str, list[dict]] = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    "system:discovery": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                              "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                          "verbs": ["get"]}],
    "system:basic-user": [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
         "verbs": ["create"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}],
    "system:public-info-viewer": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                                   "verbs": ["get"]}],
}
_DEFAULT_BINDINGS: dict[str, list[str]] = {
    "cluster-admin": ["system:masters"],
    "system:discovery": ["system:authenticated"],
    "system:basic-user": ["system:authenticated"],
    "system:public-info-viewer": ["system:authenticated", "system:unauthenticated"],
}


def install_rbac_defaults(store: Store) -> None:
    """Create the default ClusterRoles and ClusterRoleBindings a new cluster has, when missing."""
    for name, rules in _DEFAULT_ROLES.items():
        if store.get(_RBAC, "clusterroles", None, name) is None:
            store.create({"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
                          "metadata": {"name": name, "labels": dict(_DEFAULT_LABELS), "annotations": dict(_AUTOUPDATE)},
                          "rules": rules}, field_manager="kube-apiserver")
    for name, groups in _DEFAULT_BINDINGS.items():
        if store.get(_RBAC, "clusterrolebindings", None, name) is None:
            store.create({"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding",
                          "metadata": {"name": name, "labels": dict(_DEFAULT_LABELS),
                                       "annotations": dict(_AUTOUPDATE)},
                          "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": name},
                          "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": g} for g in groups]},
                         field_manager="kube-apiserver")
