"""Resilience on the Claude route (notebook 06): priority groups, eviction, retries, timeouts.

An ``AgentgatewayBackend`` with ``spec.ai.groups`` lists providers in priority groups: the
first group with a provider not **evicted** serves. A provider's ``policies.health`` says what
counts as a failure (``unhealthyCondition``, CEL on ``response.code``) and how long a failing
provider is left out (``eviction.duration``, longer each time it fails again). An
``AgentgatewayPolicy`` adds ``traffic.retry`` (try again, picking the provider afresh) and
``traffic.timeouts``.

In the sandbox, :func:`outage` tells the Claude stand-in to fail one model for a while, so the
first provider can be made to fail on demand.

Example:
    >>> backend = failover_backend()
    >>> [g["providers"][0]["name"] for g in backend.obj["spec"]["ai"]["groups"]]
    ['primary', 'backup']
"""

from __future__ import annotations

import html
import json
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
    "Sample",
    "answers_by_model",
    "end_outage",
    "failover_backend",
    "failover_route",
    "outage",
    "retry_policy",
    "sample",
    "wait_for_model",
]

PRIMARY_MODEL = "claude-sonnet-4-5-20250929"
BACKUP_MODEL = "claude-haiku-4-5-20251001"
FAILOVER_PATH = "/failover"
_STANDIN = ("agwlab-system", "anthropic-standin:443")


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


def retry_policy(names: Names = DEFAULT_NAMES, *, attempts: int = 1, codes: tuple[int, ...] = (429, 500, 503, 529),
                 backoff: str = "100ms", timeout: str = "30s") -> Manifest:
    """An AgentgatewayPolicy on the failover route: retries and a request timeout."""
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


def _standin_call(lab: Lab, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Talk to the sandbox's Claude stand-in through the API server's service proxy."""
    namespace, service = _STANDIN
    client = lab.api_client
    # what `kubectl create --raw <path> -f outage.json` does: a request through the service proxy
    path = f"/api/v1/namespaces/{namespace}/services/{service}/proxy/agwlab/outage"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    method_, url, headers, body_, _ = client.param_serialize(method, path, header_params=headers, body=body,
                                                             auth_settings=["BearerToken"])
    response = client.call_api(method_, url, header_params=headers, body=body_)
    response.read()
    if response.status >= 300:
        raise LabError(f"the Claude stand-in's outage control answered {response.status} "
                       f"({(response.data or b'').decode('utf-8', 'replace')[:200]}): outages need the sandbox's "
                       f"stand-in (Service {service.split(':')[0]} in {namespace}); on a cluster with the real API, "
                       "make the first provider fail another way, e.g. point it at a host that does not answer")
    answer: dict[str, Any] = json.loads(response.data or b"{}")
    return answer


def outage(lab: Lab, *, model: str = PRIMARY_MODEL, status: int = 529, seconds: float = 10) -> dict[str, Any]:
    """Make the sandbox's Claude stand-in answer ``status`` for ``model`` for ``seconds``.

    ``529`` is Anthropic's ``overloaded_error``, ``500`` its ``api_error``, ``429`` its
    ``rate_limit_error`` (with ``retry-after: 10``).

    Raises:
        LabError: there is no stand-in (a cluster that talks to the real API).
    """
    return _standin_call(lab, "POST", {"model": model, "status": status, "seconds": seconds})


def end_outage(lab: Lab) -> dict[str, Any]:
    """End every outage of the stand-in at once (nothing to do where there is no stand-in)."""
    try:
        return _standin_call(lab, "DELETE")
    except LabError:
        return {"outages": []}


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
