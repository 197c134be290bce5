"""The Anthropic API key: where it comes from, and how it is kept out of every output.

The key is read from ``ANTHROPIC_API_KEY`` (which always wins) or from the key box
(:func:`agwlab.widgets.api_key_box`). It is held in an :class:`ApiKey`, whose ``str`` and
``repr`` are masked (``sk-ant-…abcd``); the raw value is only handed out by
:meth:`ApiKey.reveal`, for the one place that needs it: the Secret sent to the cluster.

Every renderer in agwlab passes text through :func:`redact`, which replaces every key it
has seen, anything shaped like an Anthropic key, and bearer tokens.

In the sandbox, when no key is set, :func:`get_api_key` returns :data:`SANDBOX_API_KEY`:
a clearly-labelled key shaped like an Anthropic key. The sandbox's Claude stand-in only
checks the shape, so the lab runs end to end without an account.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import LabError
from .redaction import mask, redact, remember

__all__ = [
    "PLACED_KEY",
    "SANDBOX_API_KEY",
    "ApiKey",
    "InvalidKey",
    "KeySource",
    "accept_key",
    "forget_entered_key",
    "get_api_key",
    "mask",
    "normalize_key",
    "redact",
    "stored_key",
    "use_sandbox_key",
]

KeySource = Literal["env", "widget", "secret", "sandbox", "placed"]

# Shaped like a real key (sk-ant-api03- + 95 characters ending in "AA") and says what it is.
SANDBOX_API_KEY = "sk-ant-api03-" + "SANDBOX-ONLY-not-a-real-Anthropic-key-".ljust(93, "0") + "AA"

PLACED_KEY = "agwlab/placed-secret"
"""Annotation on an attendee's Namespace naming the key Secret their instructor placed there."""

_KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{16,}")
_PREFIXES = re.compile(r"(?i)^(?:authorization\s*:\s*|x-api-key\s*:\s*)?(?:bearer\s+)?")

_lock = threading.Lock()
_entered: str | None = None


class InvalidKey(LabError, ValueError):
    """What was entered is not an Anthropic API key (nothing was changed)."""


def normalize_key(value: str) -> str:
    """A pasted key without what often comes with it: spaces, quotes, ``Bearer ``, a header name.

    The gateway strips a leading ``Bearer `` from the Secret too, so accepting one here loses
    nothing.

    Example:
        >>> normalize_key('  Bearer sk-ant-api03-abc ')
        'sk-ant-api03-abc'
        >>> normalize_key('x-api-key: "sk-ant-api03-abc"')
        'sk-ant-api03-abc'
    """
    value = value.strip()
    value = _PREFIXES.sub("", value, count=1).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def _check_shape(value: str) -> None:
    if not _KEY_SHAPE.fullmatch(value):
        raise InvalidKey("Not an Anthropic API key (keys look like sk-ant-api03-…, one word). Nothing was changed.")


@dataclass(frozen=True)
class ApiKey:
    """An API key that prints masked.

    Attributes:
        source: where the key came from: ``"env"``, ``"widget"``, ``"secret"``, ``"sandbox"``, or
            ``"placed"`` (a workshop's instructor put it in the Secret; its value is not known here).
    """

    _value: str = field(repr=False)
    source: KeySource

    def reveal(self) -> str:
        """The raw key. Only for the Secret that goes to the cluster; never print it.

        Raises:
            LabError: the key was placed by a workshop's instructor (nobody here holds it).
        """
        if self.source == "placed":
            raise LabError("your instructor placed the key in your namespace's Secret: the gateway uses it, "
                           "and you cannot read it (that is the point); nothing here needs it")
        return self._value

    @property
    def masked(self) -> str:
        if self.source == "placed":
            return "sk-ant-… (placed by your instructor)"
        return mask(self._value)

    def describe(self) -> str:
        """One sentence saying which key is in use, masked."""
        if self.source == "env":
            return f"Using ANTHROPIC_API_KEY from the environment ({self.masked})."
        if self.source == "widget":
            return f"Using the key entered in the key box ({self.masked})."
        if self.source == "placed":
            return ("Your workshop's instructor placed the Anthropic key in your namespace's Secret: the "
                    "gateway uses it, and you never hold it or read it back.")
        if self.source == "secret":
            return (f"Using the key already in the cluster's Secret ({self.masked}), given earlier; "
                    "enter another in the key box of 01-claude-llm-connection to change it.")
        return (
            f"No ANTHROPIC_API_KEY set: using the sandbox key ({self.masked}). It is shaped like an "
            "Anthropic key but is not one; only the sandbox's Claude stand-in accepts it."
        )

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"ApiKey({self.masked}, source={self.source!r})"


def accept_key(value: str) -> ApiKey | None:
    """Keep a key typed into the key box (for this kernel only). Empty input is ignored.

    A leading ``Bearer `` (or ``x-api-key:``) and surrounding quotes are dropped.

    Returns:
        The key, or ``None`` when ``value`` was empty.

    Raises:
        InvalidKey: ``value`` is not shaped like an Anthropic key; the kept key is unchanged.
    """
    global _entered
    value = normalize_key(value)
    if not value:
        return None
    remember(value)
    _check_shape(value)
    with _lock:
        _entered = value
    return ApiKey(value, "widget")


def forget_entered_key() -> None:
    """Forget a key typed into the key box (the environment is untouched)."""
    global _entered
    with _lock:
        _entered = None


def use_sandbox_key() -> ApiKey:
    """Choose the sandbox key on purpose (the key box's way back), over a key in the Secret."""
    global _entered
    remember(SANDBOX_API_KEY)
    with _lock:
        _entered = SANDBOX_API_KEY
    return ApiKey(SANDBOX_API_KEY, "sandbox")


def stored_key(lab: Any) -> str | None:
    """The key in the lab's Secret (``Authorization``, ``Bearer`` stripped), or ``None``.

    ``None`` also when the Secret cannot be read (missing, forbidden, unreachable) or holds
    something that is not shaped like a key (e.g. the deliberately wrong key of notebook 01).
    """
    import base64

    from . import kube

    try:
        secret = kube.get(lab, "Secret", lab.names.secret, lab.names.namespace, missing_ok=True)
    except LabError:
        return None
    raw = ((secret or {}).get("data") or {}).get("Authorization")
    if not raw:
        raw_text = ((secret or {}).get("stringData") or {}).get("Authorization") or ""
    else:
        try:
            raw_text = base64.b64decode(raw).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    value = normalize_key(raw_text)
    if not _KEY_SHAPE.fullmatch(value):
        return None
    remember(value)
    return value


def get_api_key(*, target: Literal["sandbox", "cluster"] = "sandbox",
                stored: Callable[[], str | None] | None = None) -> ApiKey:
    """The key to use: ``ANTHROPIC_API_KEY``, the key box, the cluster's Secret, (sandbox) the sandbox key.

    The Secret is where a key given once (in notebook 01) lives on, so later notebooks and
    fresh kernels use it without asking again.

    Args:
        target: where the lab runs; only the sandbox falls back to :data:`SANDBOX_API_KEY`.
        stored: reads the key in the lab's Secret (``lambda: stored_key(lab)``; ``Lab.api_key`` passes it).

    Raises:
        LabError: on a real cluster when no key was set, entered or stored.
    """
    env = normalize_key(os.environ.get("ANTHROPIC_API_KEY", ""))
    if env:
        remember(env)
        return ApiKey(env, "env")
    with _lock:
        entered = _entered
    if entered:
        return ApiKey(entered, "sandbox" if entered == SANDBOX_API_KEY else "widget")
    kept = stored() if stored is not None else None
    if kept:
        return ApiKey(kept, "sandbox" if kept == SANDBOX_API_KEY else "secret")
    if target == "sandbox":
        remember(SANDBOX_API_KEY)
        return ApiKey(SANDBOX_API_KEY, "sandbox")
    raise LabError(
        "no Anthropic API key: set ANTHROPIC_API_KEY before starting Jupyter, "
        "or enter it in the key box of 01-claude-llm-connection (agwlab.widgets.api_key_box(lab))"
    )
