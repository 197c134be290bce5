"""Claude models: the lab's default, the provider's own list, and what is retired.

The model list comes from the provider: Anthropic's ``GET /v1/models``, asked with the key
the learner gave (in the sandbox, the Claude stand-in answers the same API, reached through
the API server's ``services/proxy``). When the provider cannot be asked (no network, a bad
key), the lab falls back to :data:`FALLBACK_MODELS`, the one hand-kept list. The tutorial's
model is marked retired wherever it shows up (:data:`RETIRED`).

Example:
    >>> Model("claude-sonnet-4-5-20250929").label(today="2026-11-30")
    'claude-sonnet-4-5-20250929 (retired 2026-11-30)'
    >>> Model("claude-sonnet-4-6", "Claude Sonnet 4.6").label()
    'claude-sonnet-4-6 (Claude Sonnet 4.6)'
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .redaction import redact
from .secrets import ApiKey

if TYPE_CHECKING:
    from .lab import Lab

__all__ = [
    "ANTHROPIC_API",
    "ANTHROPIC_VERSION",
    "DEFAULT_MODEL",
    "FALLBACK_MODELS",
    "RETIRED",
    "TUTORIAL_MODEL",
    "Model",
    "ModelList",
    "available",
    "backend_model",
    "fallback",
    "model_to_keep",
]

#: The model the lab pins by default: a current Sonnet.
DEFAULT_MODEL = "claude-sonnet-4-6"
#: The model the original tutorial pinned.
TUTORIAL_MODEL = "claude-sonnet-4-5-20250929"
#: Models Anthropic retires, with the date (the API stops serving them then).
RETIRED: Mapping[str, str] = {TUTORIAL_MODEL: "2026-11-30"}
#: The short list used when the provider cannot be asked; the one hand-kept list of models.
FALLBACK_MODELS = (
    DEFAULT_MODEL,
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5-20251101",
)
ANTHROPIC_API = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"

# The sandbox's Claude stand-in, as a Service (Anthropic's API, in plain HTTP inside the sandbox).
_STANDIN_PROXY = "/api/v1/namespaces/agwlab-system/services/http:anthropic-standin:443/proxy/v1/models"


@dataclass(frozen=True)
class Model:
    """One model id, with its display name and (if any) its retirement date."""

    id: str
    display_name: str = ""

    @property
    def retired(self) -> str | None:
        """The date Anthropic retires (or retired) this model, or ``None``."""
        return RETIRED.get(self.id)

    def label(self, *, today: str | None = None) -> str:
        """How a picker shows it: the id, then the display name or the retirement."""
        if self.retired:
            today = today or _dt.date.today().isoformat()
            verb = "retired" if today >= self.retired else "retires"
            return f"{self.id} ({verb} {self.retired})"
        return f"{self.id} ({self.display_name})" if self.display_name else self.id


@dataclass
class ModelList:
    """Models to choose from, and where the list came from.

    Attributes:
        models: newest first, as the provider lists them (retired ones last).
        source: ``"provider"`` (``GET /v1/models``) or ``"fallback"`` (:data:`FALLBACK_MODELS`).
        note: one line saying where the list came from, or why the fallback is used.
    """

    models: list[Model]
    source: str
    note: str = ""

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def options(self) -> list[tuple[str, str]]:
        """``(label, id)`` pairs for a dropdown."""
        return [(m.label(), m.id) for m in self.models]

    def __str__(self) -> str:
        return "\n".join([self.note, *(f"  {m.label()}" for m in self.models)])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        items = "".join(f"<li><code>{html.escape(m.label())}</code></li>" for m in self.models)
        return f"<p>{html.escape(self.note)}</p><ul>{items}</ul>"


def _with_retired(models: list[Model]) -> list[Model]:
    """Retired models last, and the tutorial's model always present (so the picker can say it retired)."""
    current = [m for m in models if not m.retired]
    retired = [m for m in models if m.retired]
    if TUTORIAL_MODEL not in {m.id for m in retired}:
        retired.append(Model(TUTORIAL_MODEL))
    return current + retired


def fallback(why: str) -> ModelList:
    """The short list (:data:`FALLBACK_MODELS`), with a note saying ``why`` it is used."""
    models = _with_retired([Model(m) for m in FALLBACK_MODELS])
    return ModelList(models, "fallback", f"The lab's short list ({why}).")


def _parse(payload: Any) -> list[Model]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data list")
    return [Model(str(m["id"]), str(m.get("display_name") or "")) for m in data if isinstance(m, dict) and m.get("id")]


def _sandbox_upstream(lab: Lab) -> str:
    """Where the sandbox's gateway sends Anthropic traffic: ``standin`` or ``api.anthropic.com``."""
    from . import kube

    try:
        settings = kube.get(lab, "ConfigMap", "sandbox-settings", "agwlab-system", missing_ok=True) or {}
    except Exception:
        return "standin"
    return str((settings.get("data") or {}).get("anthropic.upstream") or "standin")


def _ask_standin(lab: Lab, headers: dict[str, str], timeout: float) -> Any:
    response = lab.dynamic.request("GET", _STANDIN_PROXY, query_params=[("limit", "100")], header_params=headers,
                                   serialize=False, _request_timeout=timeout)
    return json.loads(response.data)


def _ask_anthropic(headers: dict[str, str], timeout: float) -> Any:
    import httpx

    response = httpx.get(f"{ANTHROPIC_API}/v1/models", params={"limit": 100}, headers=headers, timeout=timeout)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def available(lab: Lab, *, key: ApiKey | str | None = None, timeout: float = 10) -> ModelList:
    """The models the provider offers to this key, newest first; the short list if it cannot be asked.

    Args:
        lab: from :func:`agwlab.connect`.
        key: the key to ask with (default: ``lab.api_key()``, the learner's key).
        timeout: seconds for the provider to answer.

    Never raises for a provider that cannot be reached or refuses the key: the result is the
    fallback list, and its ``note`` says why.
    """
    try:
        chosen = key if key is not None else lab.api_key()
    except Exception as exc:  # no key on a cluster: still offer the short list
        return fallback(f"no key to ask Anthropic with: {exc}")
    if isinstance(chosen, ApiKey) and chosen.source == "placed":
        return fallback("your instructor placed the key, so it cannot be used from here to list models")
    raw = chosen.reveal() if isinstance(chosen, ApiKey) else str(chosen)
    headers = {"x-api-key": raw, "anthropic-version": ANTHROPIC_VERSION, "accept": "application/json"}
    standin = lab.target == "sandbox" and _sandbox_upstream(lab) == "standin"
    where = "the sandbox's Claude stand-in" if standin else "Anthropic"
    try:
        payload = _ask_standin(lab, headers, timeout) if standin else _ask_anthropic(headers, timeout)
        models = _parse(payload)
    except Exception as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        status = getattr(exc, "status", None)
        detail = f"HTTP {status} {reason}" if status else redact(str(exc))[:160]
        if status == 401:
            detail += " (the key was refused)"
        return fallback(f"{where} did not list its models: {detail}")
    if not models:
        return fallback(f"{where} listed no models")
    return ModelList(_with_retired(models), "provider", f"Models {where} lists for your key (GET /v1/models).")


def _backend(lab: Lab) -> dict[str, Any] | None:
    from . import kube

    try:
        return kube.get(lab, "AgentgatewayBackend", lab.names.llm_backend, lab.names.namespace, missing_ok=True)
    except Exception:
        return None


def _pinned(backend: dict[str, Any] | None) -> str | None:
    provider = (((backend or {}).get("spec") or {}).get("ai") or {}).get("provider") or {}
    model = (provider.get("anthropic") or {}).get("model")
    return str(model) if model else None


def backend_model(lab: Lab) -> str | None:
    """The model pinned on the lab's Anthropic backend, or ``None`` (no backend, or no pin)."""
    return _pinned(_backend(lab))


def model_to_keep(lab: Lab) -> str | None:
    """The model catch-up pins: the backend's own (``None`` when it pins none), else :data:`DEFAULT_MODEL`.

    So re-running a later notebook never undoes the model a learner chose in notebook 01.
    """
    backend = _backend(lab)
    return DEFAULT_MODEL if backend is None else _pinned(backend)
