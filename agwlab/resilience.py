"""Resilience on the Claude route (notebook 06): priority groups, eviction, retries, timeouts.

An ``AgentgatewayBackend`` with ``spec.ai.groups`` lists providers in priority groups: the
first group with a provider not **evicted** serves. A provider's ``policies.health`` says what
counts as a failure (``unhealthyCondition``, CEL on ``response.code``) and how long a failing
provider is left out (``eviction.duration``, longer each time it fails again). An
``AgentgatewayPolicy`` adds ``traffic.retry`` (try again, picking the provider afresh) and
``traffic.timeouts``.

:func:`outage` makes the first provider fail for a while. In the sandbox it tells the Claude
stand-in to answer an error for one model. Where there is no stand-in (a cluster that talks to the
real Anthropic API) it patches the failover backend instead: the provider asks for a model that
Anthropic does not have (``404 not_found_error``) and its ``unhealthyCondition`` counts a 404, until
the outage ends (a timer in this kernel, or :func:`end_outage`) and the patch is taken back.

Example:
    >>> backend = failover_backend()
    >>> [g["providers"][0]["name"] for g in backend.obj["spec"]["ai"]["groups"]]
    ['primary', 'backup']
"""

from __future__ import annotations

import html
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import llm
from .errors import LabError
from .lab import Lab
from .manifests import Manifest
from .names import DEFAULT_NAMES, LAB_LABEL, Names
from .wait import attempt

if TYPE_CHECKING:  # pandas and Prometheus load only when a table or chart is asked for
    import pandas as pd

    from . import metrics

__all__ = [
    "BACKUP_MODEL",
    "FAILOVER_PATH",
    "PRIMARY_MODEL",
    "REFUSED_MODEL",
    "Sample",
    "answers_by_model",
    "end_outage",
    "failover_backend",
    "failover_route",
    "first_failover",
    "outage",
    "retry_policy",
    "sample",
    "wait_for_model",
]

PRIMARY_MODEL = "claude-sonnet-4-5-20250929"
BACKUP_MODEL = "claude-haiku-4-5-20251001"
FAILOVER_PATH = "/failover"
REFUSED_MODEL = "claude-agwlab-outage"
"""A model id Anthropic's API does not have: it answers ``404 not_found_error`` for it."""
STANDIN = "agwlab-system/anthropic-standin:443"
_RESTORE = "agwlab.dev/outage-restore"
_TIMERS: dict[tuple[str, str], threading.Timer] = {}


def _meta(name: str, names: Names) -> dict[str, Any]:
    return {"name": name, "namespace": names.namespace, "labels": dict(LAB_LABEL)}


def failover_backend(names: Names = DEFAULT_NAMES, *, primary: str = PRIMARY_MODEL, backup: str = BACKUP_MODEL,
                     eviction: str = "3s") -> Manifest:
    """Two priority groups of Anthropic providers; the first is evicted for ``eviction`` when it fails.

    Args:
        names: the lab's names (``lab.names``).
        primary: the model of the first group's provider.
        backup: the model of the second group's provider.
        eviction: how long a failing primary is left out (doubled, tripled... each time in a row).
    """
    return Manifest({
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayBackend",
        "metadata": _meta(names.failover_backend, names),
        "spec": {
            "ai": {"groups": [
                {"providers": [{
                    "name": "primary",
                    "anthropic": {"model": primary},
                    "policies": {"health": {
                        "unhealthyCondition": "response.code >= 500 || response.code == 429",
                        "eviction": {"duration": eviction},
                    }},
                }]},
                {"providers": [{"name": "backup", "anthropic": {"model": backup}}]},
            ]},
            "policies": {"auth": {"secretRef": {"name": names.secret}}},
        },
    })


def failover_route(names: Names = DEFAULT_NAMES) -> Manifest:
    """The HTTPRoute ``/failover`` to the grouped backend."""
    return Manifest({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.failover_route, names),
        "spec": {
            "parentRefs": [{"name": names.gateway, "namespace": names.namespace}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": FAILOVER_PATH}}],
                "backendRefs": [{"name": names.failover_backend, "group": "agentgateway.dev",
                                 "kind": "AgentgatewayBackend"}],
            }],
        },
    })


def retry_policy(names: Names = DEFAULT_NAMES, *, attempts: int = 1, codes: tuple[int, ...] = (404, 429, 500, 503, 529),
                 backoff: str = "100ms", timeout: str = "30s") -> Manifest:
    """An AgentgatewayPolicy on the failover route: retries and a request timeout.

    ``404`` is among the default codes for :func:`outage` where there is no stand-in: there the
    failing provider asks for a model Anthropic does not have.
    """
    return Manifest({
        "apiVersion": "agentgateway.dev/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _meta(names.resilience_policy, names),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                            "name": names.failover_route}],
            "traffic": {
                "retry": {"attempts": attempts, "codes": list(codes), "backoff": backoff},
                "timeouts": {"request": timeout},
            },
        },
    })


def _standin_call(lab: Lab, method: str, body: dict[str, Any] | None = None, *,
                  standin: str = STANDIN) -> dict[str, Any]:
    """Talk to the sandbox's Claude stand-in through the API server's service proxy."""
    namespace, service = standin.split("/", 1)
    client = lab.api_client
    # what `kubectl create --raw <path> -f outage.json` does: a request through the service proxy
    path = f"/api/v1/namespaces/{namespace}/services/{service}/proxy/agwlab/outage"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    method_, url, headers, body_, _ = client.param_serialize(method, path, header_params=headers, body=body,
                                                             auth_settings=["BearerToken"])
    try:
        response = client.call_api(method_, url, header_params=headers, body=body_)
        response.read()
    except Exception as exc:  # the API server could not be reached: no outage control there either
        raise LabError(f"the Claude stand-in's outage control could not be reached ({exc})") from None
    if response.status >= 300:
        raise LabError(f"the Claude stand-in's outage control answered {response.status} "
                       f"({(response.data or b'').decode('utf-8', 'replace')[:200]}): outages need the sandbox's "
                       f"stand-in (Service {service.split(':')[0]} in {namespace})")
    answer: dict[str, Any] = json.loads(response.data or b"{}")
    return answer


def outage(lab: Lab, *, model: str = PRIMARY_MODEL, status: int = 529, seconds: float = 10,
           standin: str | None = STANDIN, timeout: float = 60) -> dict[str, Any]:
    """Make the provider of ``model`` fail for ``seconds``.

    In the sandbox (talking to its stand-in) the Claude stand-in answers ``status`` for ``model``: ``529`` is Anthropic's
    ``overloaded_error``, ``500`` its ``api_error``, ``429`` its ``rate_limit_error`` (with
    ``retry-after: 10``). It returns at once and sends nothing.

    Where there is no stand-in, or the sandbox is switched to the real API, the failover backend's provider for ``model`` is
    patched to ask for :data:`REFUSED_MODEL`, which Anthropic answers with ``404``, and its
    ``unhealthyCondition`` is widened to count a 404. The proxy takes a moment to pick up a change,
    so requests are sent to the failover route until one is not answered by ``model``: that request
    is the one that met the failure (a 404, or with a retry policy the backup's answer to the second
    try). They are returned under ``"sent"``, so the first failure is not lost. A timer in this kernel
    takes the patch back ``seconds`` later (:func:`end_outage` does at once).

    Args:
        standin: ``namespace/service:port`` of the stand-in's outage control, ``None`` to skip it.
        timeout: how long to wait for the proxy to pick up the patch (real API only).

    Returns:
        ``{"outages": [{"model", "status", ...}], "sent": Sample}``; ``status`` is what the failure
        answers (``404`` on the real API), ``"sent"`` is empty in the sandbox.

    Raises:
        LabError: no stand-in and no failover backend with a provider for ``model``, or the proxy did
            not pick up the patch within ``timeout``.
    """
    if standin is not None and _upstream_is_standin(lab):
        try:
            shown = _standin_call(lab, "POST", {"model": model, "status": status, "seconds": seconds},
                                  standin=standin)
            return {**shown, "sent": Sample()}
        except LabError:
            pass  # no stand-in: the real API
    return _refuse_model(lab, model, seconds, timeout)


def _upstream_is_standin(lab: Lab) -> bool:
    """False where the gateway talks to the real API, even if a stand-in is there (the sandbox's switch)."""
    from .models import _sandbox_upstream

    return _sandbox_upstream(lab) == "standin"


def _restore_key(lab: Lab) -> tuple[str, str]:
    return lab.names.namespace, lab.names.failover_backend


def _patch_backend(lab: Lab, body: dict[str, Any]) -> None:
    from . import kube

    resource = kube._resource(lab, "AgentgatewayBackend")
    ns, name = _restore_key(lab)
    lab.dynamic.patch(resource, body=body, name=name, namespace=ns, content_type="application/merge-patch+json")


def _refuse_model(lab: Lab, model: str, seconds: float, timeout: float) -> dict[str, Any]:
    from . import kube

    ns, name = _restore_key(lab)
    backend = kube.get(lab, "AgentgatewayBackend", name, ns, missing_ok=True)
    groups = ((backend or {}).get("spec") or {}).get("ai", {}).get("groups") or []
    found = [(g, p) for g, group in enumerate(groups) for p, provider in enumerate(group.get("providers") or [])
             if (provider.get("anthropic") or {}).get("model") == model]
    if backend is None or not found:
        raise LabError(f"no Claude stand-in to fail {model}, and no AgentgatewayBackend {name} in {ns} with a "
                       f"provider for it: apply resilience.failover_backend(lab.names) first (Step 1)")
    _cancel_timer(lab)
    annotations = backend["metadata"].get("annotations") or {}
    g, p = found[0]
    provider = groups[g]["providers"][p]
    if _RESTORE not in annotations:
        annotations = {_RESTORE: json.dumps({"group": g, "provider": p, "was": provider})}
    patched = json.loads(json.dumps(provider))
    patched["anthropic"]["model"] = REFUSED_MODEL
    health = patched.setdefault("policies", {}).setdefault("health", {})
    condition = health.get("unhealthyCondition") or "response.code >= 500"
    if "404" not in condition:
        health["unhealthyCondition"] = f"{condition} || response.code == 404"
    groups[g]["providers"][p] = patched
    _patch_backend(lab, {"metadata": {"annotations": annotations}, "spec": {"ai": {"groups": groups}}})
    sent = Sample()
    start = time.monotonic()

    def met() -> tuple[bool, None]:
        one = sample(lab, 1)
        one.rows[0]["n"] = len(sent.rows) + 1
        one.rows[0]["at"] = f"{time.monotonic() - start:4.1f}s"
        sent.rows.extend(one.rows)
        sent.results.extend(one.results)
        result = one.results[0]
        return not (result.ok and result.model == model), None

    in_force, _ = attempt(met, timeout=timeout, interval=0.5)
    if not in_force:
        end_outage(lab, standin=None)
        raise LabError(f"the proxy still sent every request to {model} {timeout:g}s after the patch; the patch "
                       f"is taken back. Look at kubectl get agbe {name} -n {ns} -o yaml and the proxy's log")
    timer = threading.Timer(seconds, _end_patch_later, args=(lab,))
    timer.daemon = True
    _TIMERS[_restore_key(lab)] = timer
    timer.start()
    return {"outages": [{"model": model, "status": 404, "seconds": seconds, "via": f"model {REFUSED_MODEL}"}],
            "sent": sent}


def _cancel_timer(lab: Lab) -> None:
    timer = _TIMERS.pop(_restore_key(lab), None)
    if timer is not None:
        timer.cancel()


def _end_patch(lab: Lab) -> None:
    """Take back what :func:`outage` patched into the failover backend, if anything."""
    from . import kube

    _cancel_timer(lab)
    ns, name = _restore_key(lab)
    backend = kube.get(lab, "AgentgatewayBackend", name, ns, missing_ok=True)
    note = ((backend or {}).get("metadata") or {}).get("annotations", {}).get(_RESTORE) if backend else None
    if backend is None or not note:
        return
    restore = json.loads(note)
    groups = backend["spec"]["ai"]["groups"]
    groups[restore["group"]]["providers"][restore["provider"]] = restore["was"]
    _patch_backend(lab, {"metadata": {"annotations": {_RESTORE: None}}, "spec": {"ai": {"groups": groups}}})


def _end_patch_later(lab: Lab) -> None:
    """The timer's end of an outage: a failure leaves the note on the backend for :func:`end_outage`."""
    try:
        _end_patch(lab)
    except Exception as exc:  # a thread has no caller to raise to
        print(f"the outage could not be ended ({exc}): run resilience.end_outage(lab)")


def end_outage(lab: Lab, *, standin: str | None = STANDIN) -> dict[str, Any]:
    """End every outage at once: the stand-in's, and a patched failover backend's (real API)."""
    _end_patch(lab)
    if standin is not None and _upstream_is_standin(lab):
        try:
            return _standin_call(lab, "DELETE", standin=standin)
        except LabError:
            pass
    return {"outages": []}


def first_failover(sent: Sample, model: str = PRIMARY_MODEL) -> llm.ChatResult:
    """The first request in ``sent`` that ``model`` did not answer (an error, or another model's answer).

    Raises:
        LabError: ``model`` answered every request.
    """
    for result in sent.results:
        if not (result.ok and result.model == model):
            return result
    raise LabError(f"{model} answered every request: the outage was not in force yet. Run the step again")


@dataclass
class Sample:
    """Requests sent one after another: status and the model that answered, per request."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    results: list[llm.ChatResult] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return [r.model if r.ok else f"HTTP {r.status}" for r in self.results]

    @property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def __add__(self, other: Sample) -> Sample:
        """Both samples' requests, one after the other, numbered afresh."""
        rows = [{**row, "n": n} for n, row in enumerate(self.rows + other.rows, start=1)]
        return Sample(rows, self.results + other.results)

    def __str__(self) -> str:
        return self.frame.to_string(index=False) if self.rows else "no requests"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.frame.to_html(index=False) if self.rows else "<p>no requests</p>"


def sample(lab: Lab, count: int = 5, *, path: str = FAILOVER_PATH, pause: float = 0.0) -> Sample:
    """Send ``count`` small chat requests to ``path`` and note who answered each."""
    out = Sample()
    start = time.monotonic()
    for n in range(1, count + 1):
        result = llm.send_chat(lab.gateway_url(path), "Which model are you?", max_tokens=30, names=lab.names)
        out.results.append(result)
        out.rows.append({"n": n, "at": f"{time.monotonic() - start:4.1f}s", "status": result.status,
                         "answered by": result.model if result.ok else "",
                         "error": "" if result.ok else html.unescape(result.error)[:60]})
        if pause:
            time.sleep(pause)
    return out


def wait_for_model(lab: Lab, model: str, *, timeout: float = 60, path: str = FAILOVER_PATH) -> Sample:
    """Send a request every half second until ``model`` answers; returns everything sent.

    Raises:
        LabError: ``model`` did not answer within ``timeout`` seconds.
    """
    out = Sample()
    start = time.monotonic()

    def ask() -> tuple[bool, None]:
        one = sample(lab, 1, path=path)
        one.rows[0]["n"] = len(out.rows) + 1
        one.rows[0]["at"] = f"{time.monotonic() - start:4.1f}s"
        out.rows += one.rows
        out.results += one.results
        return one.results[0].ok and one.results[0].model == model, None

    answered, _ = attempt(ask, timeout=timeout, interval=0.5)
    if not answered:
        raise LabError(f"{model} did not answer on {path} within {timeout:g}s; last: {out.models[-1]}. "
                       "Is the outage still on (resilience.end_outage(lab))?")
    return out


def answers_by_model(lab: Lab, names: Names | None = None) -> metrics.Panel:
    """LLM answers on the failover route by the model that gave them, from Prometheus."""
    from . import metrics

    n = names or lab.names
    query = (f'sum by (gen_ai_response_model) (agentgateway_gen_ai_client_token_usage_count'
             f'{{route="{n.route_ref(n.failover_route)}", gen_ai_token_type="input"}})')
    frame = metrics.instant(lab, query)
    note = "" if not frame.empty else metrics.explain_no_data(lab, "agentgateway_gen_ai_client_token_usage_count")
    if not frame.empty:
        frame = frame[["gen_ai_response_model", "value"]].sort_values("value", ascending=False)
        frame = frame.reset_index(drop=True)
    return metrics.Panel("Answers on the failover route by model", query, frame, note, ["gen_ai_response_model"])
