"""Chat with Claude through the Gateway, the way any OpenAI client would.

The request is an OpenAI chat-completions body posted to ``http://<gateway>:8080/anthropic``;
agentgateway translates it to Anthropic's Messages API and the answer back. Each request
carries its own W3C ``traceparent``, so its trace id is known before it is sent and can be
looked up afterwards in the proxy's log and the collector (:mod:`agwlab.traces`).

Example:
    >>> from agwlab import connect, llm
    >>> result = llm.chat(connect(), "What is a Gateway API listener?")
    >>> result.status, result.total_tokens > 0, len(result.trace_id)
    (200, True, 32)
"""

from __future__ import annotations

import html
import json
import secrets as _random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from .names import DEFAULT_NAMES, Names
from .redaction import redact
from .wait import poll
from .wire.sse import iter_sse

if TYPE_CHECKING:
    from .lab import Lab

__all__ = ["ChatResult", "chat", "hint_for", "new_traceparent", "send_chat", "wait_for_status"]

ROUTE_PATH = "/anthropic"

_HINTS = {
    400: "the request body was refused (is it an OpenAI chat-completions body?)",
    401: "Claude rejected the API key: check the Secret {n.secret} holds a valid key "
    "under Authorization, "
    "re-apply it, then retry",
    403: "the key is not allowed to use this model or account",
    404: "no route matched: is the HTTPRoute {n.llm_route} applied and Accepted, and has the proxy picked it up? "
    "Retry in a few seconds",
    429: "rate limited by Anthropic: wait and retry",
    500: "the backend is missing or invalid: "
    "kubectl get agentgatewaybackend {n.llm_backend} -n {n.namespace} "
    "and read its Accepted condition",
    502: "the gateway could not understand the upstream's answer",
    503: "the gateway could not reach the upstream: check network egress to api.anthropic.com",
    504: "the upstream took too long: retry, or ask for a shorter answer",
}
# agentgateway v1.4.1 answers 503 for two different things; the body says which.
_HINTS_503 = {
    "processing failed": "the gateway could not process the request itself (nothing reached Claude): "
    "send an OpenAI chat-completions body (a JSON object with messages, and a model unless the "
    "backend {n.llm_backend} pins one)",
    "upstream call failed": "the gateway could not reach the upstream: check network egress to api.anthropic.com",
}


def hint_for(status: int, body: str, names: Names = DEFAULT_NAMES) -> str:
    """What to try for an error answer, from its status *and* what it says.

    A 404 is the gateway's own ``route not found`` only when the body says so; Anthropic
    answers an unknown model with a 404 too (``not_found_error``, ``model: <id>``).

    Example:
        >>> hint_for(404, '{"error":{"type":"not_found_error","message":"model: claude-nope"}}')
        "Anthropic has no model 'claude-nope' (retired, or mistyped): pick a current one (models.available(lab) lists them) and apply the backend again"
    """
    text = _error_text(body)
    if status == 503:              # v1.4.1 answers 503 for two different things; the body says which
        for prefix, hint in _HINTS_503.items():
            if text.startswith(prefix):
                return hint.format(n=names)
    # Anthropic's errors are JSON; a plain-text 400/403/422 is the gateway's prompt guard (its
    # default 403, or the status and message its policy chose)
    if status in (400, 403, 422) and body.strip() and not body.lstrip().startswith("{"):
        return ("a prompt guard on the route refused the prompt (nothing reached Claude): "
                f"kubectl get agentgatewaypolicy -n {names.namespace} shows which policy; change the prompt "
                "or the policy's backend.ai.promptGuard")
    if status == 404:
        if text.startswith("model:"):
            model = text.split(":", 1)[1].strip()
            return (f"Anthropic has no model {model!r} (retired, or mistyped): pick a current one "
                    "(models.available(lab) lists them) and apply the backend again")
        if "route not found" not in text:
            return "the upstream answered 404: read the error above"
    return _HINTS.get(status, "read the error above").format(n=names)


def new_traceparent() -> tuple[str, str, str]:
    """A fresh sampled W3C ``traceparent``: returns ``(header, trace_id, span_id)``."""
    trace_id = _random.token_hex(16)
    span_id = _random.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


@dataclass
class ChatResult:
    """What one chat request gave back.

    Attributes:
        status: the HTTP status (0 when the gateway could not be reached).
        answer: the assistant's text ("" on error).
        model: the model that answered (the response's ``model``).
        input_tokens: ``usage.prompt_tokens``.
        output_tokens: ``usage.completion_tokens``.
        latency_ms: from sending to the last byte.
        first_token_ms: time to the first streamed content (streaming only).
        trace_id: the W3C trace id the request carried.
        parent_span_id: the span id in that ``traceparent`` (the gateway's span is its child).
        streamed: whether it was a streamed request.
        chunks: how many SSE chunks arrived (streaming only).
        error: the error message as the gateway returned it, redacted.
        hint: what to try, on error.
        body: the raw response body, redacted (for display).
        url: where the request went.
    """

    status: int
    answer: str = ""
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    trace_id: str = ""
    parent_span_id: str = ""
    streamed: bool = False
    chunks: int = 0
    error: str = ""
    hint: str = ""
    body: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens

    def rows(self) -> list[tuple[str, str]]:
        """The result as (label, value) rows, redacted."""
        rows = [("status", str(self.status or "no answer")), ("url", self.url)]
        if self.ok:
            rows += [
                ("model", self.model),
                ("tokens", f"{self.input_tokens} in + {self.output_tokens} out = {self.total_tokens}"),
            ]
        # measured here, so it includes this kernel's own work; the access log's duration is the gateway's
        rows.append(("round trip", f"{self.latency_ms:.0f} ms from this notebook (the gateway's log has its own share)"))
        if self.streamed:
            first = f"{self.first_token_ms:.0f} ms" if self.first_token_ms is not None else "-"
            rows.append(("streamed", f"{self.chunks} chunks, first token after {first}"))
        rows.append(("trace id", self.trace_id))
        if not self.ok:
            rows += [("error", self.error), ("try", self.hint)]
        return [(k, redact(v)) for k, v in rows]

    def __str__(self) -> str:
        lines = [f"{k:>10}: {v}" for k, v in self.rows()]
        if self.answer:
            lines += ["", redact(self.answer)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<tr><th style="text-align:right;padding-right:8px">{html.escape(k)}</th>'
            f'<td style="text-align:left">{html.escape(v)}</td></tr>'
            for k, v in self.rows()
        )
        answer = (
            '<div style="white-space:pre-wrap;border-left:3px solid #8250df;padding:4px 8px">'
            f"{html.escape(redact(self.answer))}</div>"
            if self.answer
            else ""
        )
        return f"<table>{cells}</table>{answer}"


def _messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def _error_text(response_text: str) -> str:
    try:
        parsed = json.loads(response_text)
    except ValueError:
        return response_text.strip()
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return response_text.strip()


def send_chat(
    url: str,
    prompt: str,
    *,
    system: str | None = None,
    model: str | None = None,
    stream: bool = False,
    max_tokens: int | None = None,
    timeout: float = 120,
    names: Names = DEFAULT_NAMES,
    headers: Mapping[str, str] | None = None,
) -> ChatResult:
    """Send one OpenAI chat-completions request to ``url`` and describe what came back.

    Never raises for HTTP or connection errors: they are returned as a :class:`ChatResult`
    with ``error`` and ``hint`` set, as the gateway returned them (redacted).

    Args:
        url: the full URL, e.g. ``http://127.64.255.1:8080/anthropic``.
        prompt: the user message.
        system: an optional system message (the gateway sends it as Anthropic's ``system``).
        model: the model to ask for (a model pinned on the backend wins).
        stream: ask for server-sent events.
        max_tokens: cap the answer (the gateway's default for Anthropic is 4096).
        timeout: seconds for the whole request.
        names: the lab's names, for the hints (``lab.names``).
        headers: extra request headers (e.g. a client id a rate-limit policy looks at).
    """
    traceparent, trace_id, parent_span_id = new_traceparent()
    body: dict[str, Any] = {"messages": _messages(prompt, system)}
    if model:
        body["model"] = model
    if max_tokens:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    sent = {**(headers or {}), "content-type": "application/json", "traceparent": traceparent}
    result = ChatResult(status=0, trace_id=trace_id, parent_span_id=parent_span_id, streamed=stream, url=url)
    start = time.perf_counter()
    try:
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("POST", url, json=body, headers=sent) as response,
        ):
            result.status = response.status_code
            result.headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
            if response.status_code != 200:
                text = response.read().decode("utf-8", "replace")
                result.body = redact(text)
                result.error = redact(_error_text(text)) or f"HTTP {response.status_code}"
                result.hint = hint_for(response.status_code, text, names)
                if response.status_code == 429 and text == "rate limit exceeded":
                    result.hint = (f"the gateway's rate limit refused it: the bucket refills in "
                                   f"{response.headers.get('x-ratelimit-reset', '?')} s "
                                   "(x-ratelimit-reset); wait, or raise the policy's limit")
            elif stream:
                _read_stream(response, result, start)
            else:
                text = response.read().decode("utf-8", "replace")
                result.body = redact(text)
                _read_completion(text, result)
    except httpx.HTTPError as exc:
        result.error = redact(f"{type(exc).__name__}: {exc}")
        result.hint = (
            "the gateway did not answer: is its address right (lab.gateway_url()) "
            "and the Gateway Programmed? "
            "On a cluster without a LoadBalancer, port-forward and set AGWLAB_GATEWAY_ADDRESS"
        )
    result.latency_ms = (time.perf_counter() - start) * 1000
    return result


def _read_completion(text: str, result: ChatResult) -> None:
    try:
        data = json.loads(text)
        result.answer = str(data["choices"][0]["message"].get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError):
        result.error = "the response is not an OpenAI chat.completion"
        result.hint = "read the body: the route may point at a backend that is not an AI backend"
        return
    result.model = str(data.get("model") or "")
    usage = data.get("usage") or {}
    result.input_tokens = usage.get("prompt_tokens")
    result.output_tokens = usage.get("completion_tokens")


def _read_stream(response: httpx.Response, result: ChatResult, start: float) -> None:
    parts: list[str] = []
    raw: list[str] = []

    def lines() -> Iterator[str]:
        for line in response.iter_lines():
            raw.append(line)
            yield line

    for event in iter_sse(lines()):
        if event.data.strip() == "[DONE]":
            break
        try:
            chunk = event.json()
        except ValueError:
            continue
        result.chunks += 1
        result.model = str(chunk.get("model") or result.model)
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                if result.first_token_ms is None:
                    result.first_token_ms = (time.perf_counter() - start) * 1000
                parts.append(text)
        usage = chunk.get("usage")
        if usage:
            result.input_tokens = usage.get("prompt_tokens")
            result.output_tokens = usage.get("completion_tokens")
    result.answer = "".join(parts)
    result.body = redact("\n".join(raw[:6] + (["…"] if len(raw) > 6 else [])))


def chat(
    lab: Lab,
    prompt: str,
    *,
    system: str | None = None,
    model: str | None = None,
    stream: bool = False,
    max_tokens: int | None = None,
    path: str = ROUTE_PATH,
    timeout: float = 120,
) -> ChatResult:
    """Ask Claude through the lab's Gateway (``POST /anthropic``).

    See :func:`send_chat` for the arguments; ``path`` is the route's path.

    Raises:
        GatewayAddressUnavailable: the Gateway has no address yet.
    """
    return send_chat(
        lab.gateway_url(path),
        prompt,
        system=system,
        model=model,
        stream=stream,
        max_tokens=max_tokens,
        timeout=timeout,
        names=lab.names,
    )


def wait_for_status(
    lab: Lab, status: int, *, prompt: str = "Say hello.", timeout: float = 30, interval: float = 0.5
) -> ChatResult:
    """Send small requests until one comes back with ``status`` (e.g. after changing the Secret).

    The proxy picks up configuration changes asynchronously, so the first request after a
    change may still see the old state.

    Raises:
        WaitTimeout: no request got ``status`` in time; says what the last one got.
    """
    def step() -> tuple[bool, ChatResult]:
        result = chat(lab, prompt, max_tokens=32)
        return result.status == status, result

    return poll(
        step,
        timeout=timeout,
        interval=interval,
        what=f"a request to get status {status}",
        describe=lambda result: f"status {result.status} {result.error}".strip(),
    )
