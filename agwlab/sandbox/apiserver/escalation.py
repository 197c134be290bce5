"""RBAC's escalation check: nobody grants what they do not hold.

As the real API server does for ``rbac.authorization.k8s.io`` writes (its ``policybased``
storage): a Role or ClusterRole may be written only by a user who holds every permission
in it (in the Role's namespace, or cluster-wide for a ClusterRole) or who may ``escalate``
roles; a RoleBinding or ClusterRoleBinding only by a user who holds every permission of
the role it refers to, or who may ``bind`` that role. Members of ``system:masters`` may do
anything. A refusal is Kubernetes' 403, listing the permissions not held.

Example:
    >>> covers({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}, "", "pods", "get", "")
    True
    >>> covers({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, "", "pods", "*", "")
    False
"""

from __future__ import annotations

import json
from typing import Any

from .rbac import Attributes, Authorizer, Forbidden
from .users import UserInfo

__all__ = ["check_no_escalation", "covers"]

_RBAC = "rbac.authorization.k8s.io"
_PLURALS = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
            "ClusterRoleBinding": "clusterrolebindings"}


def _holds(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def covers(owner: dict, group: str, resource: str, verb: str, name: str, *, url: str = "") -> bool:
    """Whether ``owner`` (a rule someone holds) grants one atomic permission.

    ``"*"`` in the permission is held only through ``"*"`` in the rule; ``name`` empty means
    every name (held only by a rule without ``resourceNames``); ``url`` is a non-resource path.
    """
    if not _holds(owner.get("verbs"), verb):
        return False
    if url:
        return any(u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1]))
                   for u in owner.get("nonResourceURLs") or [])
    if not _holds(owner.get("apiGroups"), group):
        return False
    resources = owner.get("resources") or []
    sub = resource.partition("/")[2]
    if not ("*" in resources or resource in resources or (sub and f"*/{sub}" in resources)):
        return False
    names = owner.get("resourceNames") or []
    return not names or (bool(name) and name in names)


def _atoms(rule: dict) -> list[tuple[str, str, str, str, str]]:
    """``(group, resource, verb, name, url)`` for every permission one rule grants."""
    verbs = rule.get("verbs") or []
    if rule.get("nonResourceURLs"):
        return [("", "", v, "", u) for u in rule["nonResourceURLs"] for v in verbs]
    names = rule.get("resourceNames") or [""]
    return [(g, r, v, n, "") for g in rule.get("apiGroups") or [] for r in rule.get("resources") or []
            for v in verbs for n in names]


def _compact(rule: dict) -> str:
    """A rule as Kubernetes prints it in the refusal (``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``)."""
    def q(values: list) -> str:
        return "[" + " ".join(json.dumps(v) for v in values) + "]"

    parts = []
    for field, key in (("APIGroups", "apiGroups"), ("Resources", "resources"), ("ResourceNames", "resourceNames"),
                       ("NonResourceURLs", "nonResourceURLs"), ("Verbs", "verbs")):
        if rule.get(key) or key in ("verbs",):
            parts.append(f"{field}:{q(rule.get(key) or [])}")
    return "{" + ", ".join(parts) + "}"


def _missing(held: list[dict], wanted: list[dict]) -> list[dict]:
    """The rules of ``wanted`` (split per permission) that ``held`` does not cover."""
    out = []
    for rule in wanted:
        if not isinstance(rule, dict):
            continue
        for g, r, v, n, u in _atoms(rule):
            if not any(covers(h, g, r, v, n, url=u) for h in held):
                atom: dict[str, list[str]] = {"verbs": [v]}
                if u:
                    atom["nonResourceURLs"] = [u]
                else:
                    atom |= {"apiGroups": [g], "resources": [r], **({"resourceNames": [n]} if n else {})}
                out.append(atom)
    return out


def _refuse(obj: dict, user: UserInfo, missing: list[dict]) -> Forbidden:
    kind = str(obj.get("kind"))
    name = str((obj.get("metadata") or {}).get("name", ""))
    listed = "\n".join(_compact(r) for r in missing)
    message = (f'{_PLURALS[kind]}.{_RBAC} "{name}" is forbidden: user "{user.name}" '
               f"(groups={json.dumps(list(user.groups)).replace(', ', ' ')}) is attempting to grant RBAC "
               f"permissions not currently held:\n{listed}")
    return Forbidden(message, details={"name": name, "group": _RBAC, "kind": _PLURALS[kind]})


def check_no_escalation(rbac: Authorizer, user: UserInfo, obj: dict) -> None:
    """Refuse a Role/ClusterRole/(Cluster)RoleBinding write that grants more than ``user`` holds.

    Raises:
        Forbidden: with Kubernetes' wording and the permissions not held.
    """
    kind = obj.get("kind")
    if kind not in _PLURALS or user.is_master:
        return
    namespace = str((obj.get("metadata") or {}).get("namespace") or "") if kind in ("Role", "RoleBinding") else ""
    if kind in ("Role", "ClusterRole"):
        plural = _PLURALS[kind]
        if rbac.allowed(Attributes(user, "escalate", namespace, _RBAC, plural,
                                   name=str((obj.get("metadata") or {}).get("name", "")))):
            return
        wanted = list(obj.get("rules") or [])
        if kind == "ClusterRole" and (obj.get("aggregationRule") or {}).get("clusterRoleSelectors"):
            wanted = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]  # aggregation needs escalate
    else:
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        # asked in the binding's namespace (so "bind" can be delegated per namespace), as Kubernetes does
        if rbac.allowed(Attributes(user, "bind", namespace, _RBAC, _PLURALS.get(ref_kind, "roles"), name=ref_name)):
            return
        role = rbac.role_rules(ref_kind, namespace, ref_name)
        if role is None:
            raise Forbidden(f'{_PLURALS[str(kind)]}.{_RBAC} "{(obj.get("metadata") or {}).get("name", "")}" is '
                            f'forbidden: {ref_kind.lower()}s.{_RBAC} "{ref_name}" not found',
                            details={"name": (obj.get("metadata") or {}).get("name", ""), "group": _RBAC,
                                     "kind": _PLURALS[str(kind)]})
        wanted = role
    missing = _missing(rbac.rules_for(user, namespace), wanted)
    if missing:
        raise _refuse(obj, user, missing)
