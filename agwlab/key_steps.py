"""Notebook 01's steps on the key Secret: give the key, break it on purpose, put it back.

Alone (or in a workshop where attendees bring their own key) each step writes the Secret
and checks what the gateway then does. In a workshop whose instructor placed the key
(:meth:`agwlab.lab.Lab.placed_secret`), the attendee may neither read nor write that
Secret, so each step leaves it alone and passes, saying why: the gateway already uses
the instructor's key.

Example:
    >>> step = KeyStep(True, "Secret anthropic-secret holds an Authorization entry")
    >>> step.outcome()
    (True, 'Secret anthropic-secret holds an Authorization entry')
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .redaction import redact

if TYPE_CHECKING:
    from .lab import Lab
    from .llm import ChatResult
    from .manifests import Manifest
    from .secrets import ApiKey

__all__ = ["KeyStep", "give_key", "restore_key", "try_wrong_key"]

#: OpenAI's error shape, which agentgateway gives an upstream error on the OpenAI-style route.
_OPENAI_ERROR = '{"event_id":null'


@dataclass
class KeyStep:
    """What one step on the key Secret did.

    Attributes:
        ok: whether the step's check holds.
        detail: what was seen (or why the step left the Secret alone).
        placed: the instructor placed the key, so the step changed nothing.
        result: the request that showed the gateway's answer, when one was sent.
    """

    ok: bool
    detail: str
    placed: bool = False
    result: ChatResult | None = None

    def outcome(self) -> tuple[bool, str]:
        """``(ok, detail)``, for :func:`agwlab.checks.check`."""
        return self.ok, self.detail

    def __str__(self) -> str:
        return redact(str(self.result)) if self.result is not None else redact(self.detail)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        if self.result is not None:
            return self.result._repr_html_()
        return f"<p>{html.escape(redact(self.detail))}</p>"


def _placed(lab: Lab) -> KeyStep | None:
    secret = lab.placed_secret()
    if secret is None:
        return None
    return KeyStep(True, f"your instructor placed the key in Secret {secret} ({lab.names.namespace}); the gateway "
                         "uses it, and you can neither read nor change it, so this step leaves it as it is",
                   placed=True)


def give_key(lab: Lab, secret: Manifest) -> KeyStep:
    """Apply the key Secret and read it back: it must hold ``Authorization``.

    With a placed key: nothing is written, and the step passes saying so.
    """
    from . import kube

    placed = _placed(lab)
    if placed is not None:
        return placed
    kube.apply(lab, secret)
    stored = kube.get(lab, "Secret", lab.names.secret, lab.names.namespace) or {}
    holds = "Authorization" in (stored.get("data") or {})
    return KeyStep(holds, f"Secret {lab.names.secret} has the entries {sorted(stored.get('data') or {})}")


def try_wrong_key(lab: Lab, *, timeout: float = 30) -> KeyStep:
    """Put a key Anthropic refuses into the Secret and wait for the gateway to answer 401, which
    must come back in OpenAI's error shape (the route speaks OpenAI's API).

    With a placed key: nothing is changed (the attendee cannot), and the step passes saying so.
    """
    from . import kube, llm, manifests

    placed = _placed(lab)
    if placed is not None:
        return placed
    kube.apply(lab, manifests.anthropic_secret("not-a-valid-key", lab.names))
    refused = llm.wait_for_status(lab, 401, timeout=timeout)
    shaped = refused.body.startswith(_OPENAI_ERROR)
    return KeyStep(shaped, f"status {refused.status}, body {refused.body[:80]}", result=refused)


def restore_key(lab: Lab, key: ApiKey | str, *, timeout: float = 30) -> KeyStep:
    """Put the right key back and wait until Claude answers through the gateway again.

    With a placed key: nothing is changed, and the step passes saying so.
    """
    from . import kube, llm, manifests

    placed = _placed(lab)
    if placed is not None:
        return placed
    kube.apply(lab, manifests.anthropic_secret(key, lab.names))
    restored = llm.wait_for_status(lab, 200, timeout=timeout)
    return KeyStep(restored.ok, f"status {restored.status}" + (f": {restored.hint}" if restored.hint else ""),
                   result=restored)
