"""What the API server checks on RBAC objects and ServiceAccount token Secrets.

Each check reports through ``cause(field, message, reason)`` (the validation walker's),
with Kubernetes' wording.

Example:
    >>> causes = []
    >>> check_object({"kind": "RoleBinding", "roleRef": {"kind": "Pod", "name": "x"}},
    ...              lambda f, m, r="FieldValueInvalid": causes.append(f))
    >>> causes
    ['roleRef.kind']
"""

from __future__ import annotations

import json
from collections.abc import Callable

__all__ = ["check_object", "check_unchanged"]

Cause = Callable[..., None]
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _rules(rules: object, cause: Cause) -> None:
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        if not rule.get("verbs"):
            cause(f"rules[{i}].verbs", "Required value: verbs must contain at least one value",
                  "FieldValueRequired")
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("apiGroups")):
            cause(f"rules[{i}].nonResourceURLs",
                  "Invalid value: []string{...}: rules cannot apply to both regular resources and "
                  "non-resource URLs")
        elif not rule.get("nonResourceURLs"):
            if not rule.get("apiGroups"):
                cause(f"rules[{i}].apiGroups",
                      "Required value: resource rules must supply at least one api group", "FieldValueRequired")
            if not rule.get("resources"):
                cause(f"rules[{i}].resources",
                      "Required value: resource rules must supply at least one resource", "FieldValueRequired")


def check_object(obj: dict, cause: Cause) -> None:
    """Checks on a Role, ClusterRole, RoleBinding, ClusterRoleBinding or token Secret."""
    kind = obj.get("kind")
    if kind in ("Role", "ClusterRole"):
        _rules(obj.get("rules"), cause)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        allowed = ("Role", "ClusterRole") if kind == "RoleBinding" else ("ClusterRole",)
        if ref.get("kind") not in allowed:
            cause("roleRef.kind", f"Unsupported value: {json.dumps(ref.get('kind'))}: supported values: "
                                  + ", ".join(json.dumps(a) for a in allowed), "FieldValueNotSupported")
        if not ref.get("name"):
            cause("roleRef.name", "Required value", "FieldValueRequired")
        for i, s in enumerate(obj.get("subjects") or []):
            if not isinstance(s, dict):
                continue
            if s.get("kind") not in _SUBJECT_KINDS:
                cause(f"subjects[{i}].kind", f"Unsupported value: {json.dumps(s.get('kind'))}: supported values: "
                                             '"ServiceAccount", "User", "Group"', "FieldValueNotSupported")
            if not s.get("name"):
                cause(f"subjects[{i}].name", "Required value", "FieldValueRequired")
            if s.get("kind") == "ServiceAccount" and kind == "ClusterRoleBinding" and not s.get("namespace"):
                cause(f"subjects[{i}].namespace", "Required value", "FieldValueRequired")
    elif kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            cause("metadata.annotations[kubernetes.io/service-account.name]", "Required value",
                  "FieldValueRequired")


def check_unchanged(old: dict, new: dict, cause: Cause) -> None:
    """A binding's ``roleRef`` cannot change (delete and re-create the binding instead)."""
    if new.get("kind") in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get("roleRef"):
        ref = new.get("roleRef") or {}
        shown = (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
                 f'Name:"{ref.get("name", "")}"}}')
        cause("roleRef", f"Invalid value: {shown}: cannot change roleRef")
