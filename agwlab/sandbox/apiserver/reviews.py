"""Self reviews: ``kubectl auth can-i`` (SelfSubjectAccessReview) and ``kubectl auth whoami``.

Example:
    >>> self_review(rbac, user, "authorization.k8s.io", {"spec": {"resourceAttributes": {
    ...     "verb": "get", "resource": "secrets", "namespace": "agwlab-bob"}}})["status"]  # doctest: +SKIP
    {'allowed': False}
"""

from __future__ import annotations

from typing import Any

from ..store import BadRequest
from .rbac import Attributes, Authorizer
from .users import UserInfo

__all__ = ["self_review"]


def self_review(rbac: Authorizer, user: UserInfo, group: str, body: Any,
                kind: str = "selfsubjectaccessreviews") -> dict:
    """Answer a SelfSubjectAccessReview or SelfSubjectRulesReview (``authorization.k8s.io``
    resource ``kind``), or a SelfSubjectReview (``authentication.k8s.io``).

    Raises:
        Forbidden: the user may not create the review (RBAC's ``system:basic-user``).
        BadRequest: a SelfSubjectAccessReview with neither resource nor non-resource attributes.
    """
    if group == "authorization.k8s.io" and kind == "selfsubjectrulesreviews":
        return _rules_review(rbac, user, body)
    if group != "authorization.k8s.io":
        rbac.check(Attributes(user, "create", group=group, resource="selfsubjectreviews"))
        return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "status": {"userInfo": user.as_json()}}
    rbac.check(Attributes(user, "create", group=group, resource="selfsubjectaccessreviews"))
    spec = (body.get("spec") if isinstance(body, dict) else None) or {}
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(res, dict):
        asked = Attributes(user, str(res.get("verb") or ""), namespace=str(res.get("namespace") or ""),
                           group=str(res.get("group") or ""), resource=str(res.get("resource") or ""),
                           subresource=str(res.get("subresource") or ""), name=str(res.get("name") or ""))
    elif isinstance(non, dict):
        asked = Attributes(user, str(non.get("verb") or ""), path=str(non.get("path") or ""))
    else:
        raise BadRequest('SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                         "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes "
                         "must be specified")
    allowed = rbac.allowed(asked)
    status: dict[str, Any] = {"allowed": allowed}
    if allowed and not user.is_master:
        status["reason"] = "RBAC: allowed by a role binding"
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def _rules_review(rbac: Authorizer, user: UserInfo, body: Any) -> dict:
    """``kubectl auth can-i --list``: the rules that apply in one namespace."""
    rbac.check(Attributes(user, "create", group="authorization.k8s.io", resource="selfsubjectrulesreviews"))
    spec = (body.get("spec") if isinstance(body, dict) else None) or {}
    resource_rules, non_resource_rules = [], []
    for rule in rbac.rules_for(user, str(spec.get("namespace") or "")):
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                       "nonResourceURLs": list(rule["nonResourceURLs"])})
        else:
            out = {k: list(rule.get(k) or []) for k in ("verbs", "apiGroups", "resources")}
            if rule.get("resourceNames"):
                out["resourceNames"] = list(rule["resourceNames"])
            resource_rules.append(out)
    return {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec,
            "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                       "incomplete": False}}
