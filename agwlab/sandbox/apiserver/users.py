"""Who a request comes from: the sandbox's admin, or a ServiceAccount.

Example:
    >>> service_account_user("agwlab-alice", "attendee").name
    'system:serviceaccount:agwlab-alice:attendee'
    >>> "system:masters" in ADMIN.groups
    True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADMIN", "UserInfo", "service_account_user"]


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user: a name, its groups and (for ServiceAccounts) a uid."""

    name: str
    groups: tuple[str, ...] = ("system:authenticated",)
    uid: str = ""

    @property
    def is_master(self) -> bool:
        """Members of ``system:masters`` may do anything, whatever RBAC says (as in Kubernetes)."""
        return "system:masters" in self.groups

    def as_json(self) -> dict:
        """The ``userInfo`` of a SelfSubjectReview."""
        out: dict = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        return out


# The user of the sandbox's own kubeconfig.
ADMIN = UserInfo("agwlab-admin", ("system:masters", "system:authenticated"))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """The user a ServiceAccount's token authenticates as, with the groups Kubernetes gives it."""
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
                    uid)
