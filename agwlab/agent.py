"""An agent loop with both halves behind the gateway: Claude on the chat route, tools on the MCP route.

The loop is the one every tool-using agent runs:

1. list the tools behind the gateway's ``/mcp`` route (the official ``mcp`` SDK) and turn
   their input schemas into OpenAI function tools;
2. ask the model through the gateway's ``/anthropic`` route (the ``openai`` SDK, chat
   completions with ``tools``);
3. when the answer has ``tool_calls``, call each tool with MCP ``tools/call`` through the
   gateway and send the results back as ``tool`` messages; repeat from 2;
4. stop at a final answer, or when the model has been asked ``max_steps`` times.

Every HTTP request of a run carries the same W3C ``traceparent``, so the gateway's spans of
the whole run (model calls and MCP messages) land in one trace. Each step is recorded
(what was asked, tool calls with their arguments, result sizes, tokens, latency) and the
run shows itself as a transcript (HTML in a notebook, plain text elsewhere).

Example:
    >>> from agwlab import agent, connect                                  # doctest: +SKIP
    >>> run = agent.run(connect(), "Summarise http://lab-website.agwlab-system.svc.cluster.local/")  # doctest: +SKIP
    >>> run.answer, run.trace_id, run.stopped                              # doctest: +SKIP
    >>> print(run.transcript())                                            # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self, cast

from .aio import run_sync
from .llm import ROUTE_PATH, new_traceparent
from .redaction import redact
from .wait import attempt

if TYPE_CHECKING:
    import httpx2
    from mcp import ClientSession

    from .lab import Lab

__all__ = [
    "DEFAULT_MAX_STEPS",
    "AgentRun",
    "GatewayCounts",
    "Step",
    "access_log",
    "compare_counts",
    "gateway_counts",
    "list_tools",
    "openai_tool",
    "run",
    "spans",
    "wait_for_counts",
]

#: How many times a run may ask the model before it stops.
DEFAULT_MAX_STEPS = 6
MCP_PATH = "/mcp"
_PREVIEW = 160


class _AcceptedDelete(logging.Filter):
    """agentgateway answers the MCP session's closing DELETE with 202 Accepted; the SDK expects
    200 or 204 and warns. The session is closed all the same, so that one warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Session termination failed: 202"


logging.getLogger("mcp.client.streamable_http").addFilter(_AcceptedDelete())


# --- what a run records ---------------------------------------------------------------


@dataclass
class Step:
    """One step of a run: a model call or a tool call.

    Attributes:
        number: 1, 2, ... in the order they happened.
        kind: ``"model"`` (a chat completion) or ``"tool"`` (an MCP ``tools/call``).
        latency_ms: from sending the request to the whole answer.
        messages: model steps: how many messages the request carried.
        finish_reason: model steps: ``stop``, ``tool_calls``, ``length`` ...
        text: model steps: the answer's text; tool steps: the start of the result.
        tool_calls: model steps: ``(id, name, arguments)`` of each call the model asked for.
        input_tokens / output_tokens: model steps: the usage the gateway returned.
        name / arguments / call_id: tool steps: which tool, with what, for which call.
        result_chars: tool steps: how long the result's text is.
        is_error: tool steps: the tool reported an error (or could not be called).
        error: what went wrong, when the request itself failed.
    """

    number: int
    kind: Literal["model", "tool"]
    latency_ms: float = 0.0
    messages: int = 0
    finish_reason: str = ""
    text: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    result_chars: int = 0
    is_error: bool = False
    error: str = ""

    def summary(self) -> str:
        """The step in one line of plain text."""
        if self.kind == "model":
            if self.error:
                outcome = f"failed: {self.error}"
            elif self.tool_calls:
                calls = ", ".join(
                    f"{name}({json.dumps(args, ensure_ascii=False)})" for _i, name, args in self.tool_calls
                )
                outcome = f"asks for {calls}"
            else:
                outcome = f"answers ({self.finish_reason}): {_short(self.text)}"
            return (
                f"{self.number:>2}  model  {self.messages} messages -> {outcome}  "
                f"[{self.input_tokens} in + {self.output_tokens} out tokens, {self.latency_ms:.0f} ms]"
            )
        status = "ERROR " if self.is_error else ""
        return (
            f"{self.number:>2}  tool   {self.name}({json.dumps(self.arguments, ensure_ascii=False)}) -> "
            f"{status}{self.result_chars} chars: {_short(self.text)}  [{self.latency_ms:.0f} ms]"
        )


def _short(text: str, limit: int = _PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


@dataclass
class AgentRun:
    """What one run did, step by step.

    Attributes:
        question: what was asked.
        answer: the final answer ("" when the run stopped without one).
        stopped: ``"answer"``, ``"step_limit"`` (the model still wanted tools) or ``"error"``.
        steps: every model call and tool call, in order.
        trace_id: the one trace every request of the run belongs to.
        traceparent: the header every request carried.
        tools: the tools as the model saw them (OpenAI function tools).
        requests: every HTTP request of the run, as ``"METHOD /path"`` (MCP ones with their
            JSON-RPC method), in order.
        max_steps: the limit on model calls.
    """

    question: str
    answer: str = ""
    stopped: Literal["answer", "step_limit", "error"] = "answer"
    steps: list[Step] = field(default_factory=list)
    trace_id: str = ""
    traceparent: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    mcp_methods: Counter[str] = field(default_factory=Counter)
    max_steps: int = DEFAULT_MAX_STEPS

    @property
    def model_steps(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "model"]

    @property
    def tool_steps(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "tool"]

    @property
    def input_tokens(self) -> int:
        return sum(s.input_tokens for s in self.model_steps)

    @property
    def output_tokens(self) -> int:
        return sum(s.output_tokens for s in self.model_steps)

    @property
    def ok(self) -> bool:
        return self.stopped == "answer" and bool(self.answer)

    def headline(self) -> str:
        how = {
            "answer": "answered",
            "step_limit": f"stopped at the step limit ({self.max_steps} model calls)",
            "error": "stopped on an error",
        }[self.stopped]
        return (
            f"{how} after {len(self.model_steps)} model calls and {len(self.tool_steps)} tool calls; "
            f"{self.input_tokens} in + {self.output_tokens} out tokens; trace {self.trace_id}"
        )

    def transcript(self) -> str:
        """The run as plain text: the question, one line per step, the answer."""
        lines = [f"question: {self.question}", f"run: {self.headline()}", ""]
        lines += [s.summary() for s in self.steps]
        lines += ["", f"answer: {self.answer}" if self.answer else "answer: (none)"]
        return redact("\n".join(lines))

    def __str__(self) -> str:
        return self.transcript()

    def __repr__(self) -> str:
        return self.transcript()

    def _repr_html_(self) -> str:
        rows = []
        for s in self.steps:
            if s.kind == "model":
                if s.error:
                    what = f"<b>failed</b>: {html.escape(s.error)}"
                elif s.tool_calls:
                    what = "asks for " + ", ".join(
                        f"<code>{html.escape(n)}({html.escape(json.dumps(a, ensure_ascii=False))})</code>"
                        for _i, n, a in s.tool_calls
                    )
                else:
                    what = f"answers (<code>{html.escape(s.finish_reason)}</code>)"
                cost = f"{s.input_tokens} in + {s.output_tokens} out"
                who = f"🧠 model<br><small>{s.messages} messages</small>"
            else:
                what = (
                    f"<code>{html.escape(s.name)}({html.escape(json.dumps(s.arguments, ensure_ascii=False))})"
                    f"</code> → {'<b>error</b>, ' if s.is_error else ''}{s.result_chars} chars"
                    f"<br><small>{html.escape(_short(s.text))}</small>"
                )
                cost = ""
                who = "🔧 tool"
            rows.append(
                f"<tr><td>{s.number}</td><td>{who}</td><td style='text-align:left'>{what}</td>"
                f"<td>{cost}</td><td>{s.latency_ms:.0f} ms</td></tr>"
            )
        answer = html.escape(self.answer) if self.answer else "<i>(none)</i>"
        return redact(
            f"<p><b>question:</b> {html.escape(self.question)}<br><b>run:</b> {html.escape(self.headline())}</p>"
            "<table><tr><th>#</th><th>who</th><th>what</th><th>tokens</th><th>latency</th></tr>"
            + "".join(rows)
            + f"</table><p><b>answer:</b> {answer}</p>"
        )


# --- tools as the model sees them -----------------------------------------------------


def openai_tool(tool: Any) -> dict[str, Any]:
    """An MCP tool (from ``tools/list``) as an OpenAI function tool.

    Example:
        >>> from mcp import types
        >>> openai_tool(types.Tool(name="fetch", description="Fetches a website",
        ...                        input_schema={"type": "object", "properties": {"url": {"type": "string"}}}))
        {'type': 'function', 'function': {'name': 'fetch', 'description': 'Fetches a website', 'parameters': {'type': 'object', 'properties': {'url': {'type': 'string'}}}}}
    """
    schema = dict(tool.input_schema or {"type": "object"})
    schema.setdefault("type", "object")
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description or "", "parameters": schema},
    }


# --- plumbing: one trace, every request counted ---------------------------------------


def _http_client(traceparent: str, record: AgentRun | None, timeout: float) -> httpx2.AsyncClient:
    """An HTTP client that sends ``traceparent`` and writes each request into ``record``."""
    import httpx2

    async def note(request: httpx2.Request) -> None:
        if record is None:
            return
        line = f"{request.method} {request.url.path}"
        if request.method == "POST" and request.url.path.endswith(MCP_PATH):
            try:
                method = json.loads(request.content).get("method", "")
            except (ValueError, AttributeError):
                method = ""
            record.mcp_methods[method] += 1
            line += f" {method}"
        record.requests.append(line)

    return httpx2.AsyncClient(
        headers={"traceparent": traceparent},
        timeout=timeout,
        event_hooks={"request": [note]},
        follow_redirects=True,
    )


class _Tools:
    """An MCP session through the gateway, opened for one run."""

    def __init__(self, url: str, client: httpx2.AsyncClient) -> None:
        self.url, self.client = url, client
        self._stack: Any = None
        self.session: ClientSession | None = None

    async def __aenter__(self) -> Self:
        from contextlib import AsyncExitStack

        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        self._stack = AsyncExitStack()
        read, write, *_ = await self._stack.enter_async_context(
            streamable_http_client(self.url, http_client=self.client)
        )
        self.session = await self._stack.enter_async_context(ClientSession(read, write))
        await self.session.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def list(self) -> list[Any]:
        assert self.session is not None
        tools, cursor = [], None
        while True:
            from mcp import types

            page = await self.session.list_tools(
                params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """The tool's text and whether it is an error; a failed call is an error result too."""
        from mcp.shared.exceptions import MCPError

        assert self.session is not None
        try:
            result = await self.session.call_tool(name, arguments)
        except MCPError as exc:
            return f"Error: the gateway could not call {name}: {exc}", True
        parts = [getattr(c, "text", "") for c in getattr(result, "content", [])]
        text = "\n".join(p for p in parts if p)
        is_error = bool(getattr(result, "is_error", False))
        if is_error and not text.lower().startswith("error"):
            text = f"Error: {text}"
        return text, is_error


# --- the loop -------------------------------------------------------------------------


def list_tools(lab: Lab, *, timeout: float = 30) -> list[dict[str, Any]]:
    """The tools behind the gateway's MCP route, as OpenAI function tools (what the model sees)."""
    traceparent, _trace, _span = new_traceparent()

    async def go() -> list[dict[str, Any]]:
        async with (
            _http_client(traceparent, None, timeout) as client,
            _Tools(lab.gateway_url(MCP_PATH), client) as t,
        ):
            return [openai_tool(tool) for tool in await t.list()]

    return run_sync(go)


def run(
    lab: Lab,
    question: str,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    tool_choice: str = "auto",
    system: str | None = None,
    model: str | None = None,
    timeout: float = 60,
) -> AgentRun:
    """Run the agent loop for one question (see the module docstring).

    Args:
        lab: the lab (its gateway serves ``/anthropic`` and ``/mcp``).
        question: the user's question.
        max_steps: how many times the model may be asked; a model that still wants tools
            then is stopped (``stopped == "step_limit"``).
        tool_choice: OpenAI's ``auto``, ``required`` (the gateway sends Anthropic ``any``:
            the model must call a tool every time) or ``none``.
        system: an optional system prompt.
        model: the model to ask for (a model pinned on the backend wins).
        timeout: seconds for each HTTP request.

    Raises:
        LabError: ``max_steps`` is below 1 or ``question`` is empty.
    """
    from .errors import LabError

    if max_steps < 1:
        raise LabError(f"max_steps must be at least 1 (got {max_steps}): the model has to be asked once")
    if not question.strip():
        raise LabError("the question is empty: ask something, e.g. 'Summarise <a URL>'")
    traceparent, trace_id, _span = new_traceparent()
    record = AgentRun(question=question, trace_id=trace_id, traceparent=traceparent, max_steps=max_steps)

    async def go() -> AgentRun:
        from openai import APIError, AsyncOpenAI, omit

        from .manifests import DEFAULT_MODEL

        mcp_client = _http_client(traceparent, record, timeout)
        chat_client = _http_client(traceparent, record, timeout)
        llm = AsyncOpenAI(
            base_url=lab.gateway_url(ROUTE_PATH),
            api_key="unused: the gateway holds the key",
            http_client=chat_client,
            max_retries=0,
        )
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": question})
        async with mcp_client, chat_client, _Tools(lab.gateway_url(MCP_PATH), mcp_client) as tools:
            record.tools = [openai_tool(t) for t in await tools.list()]
            for _ in range(max_steps):
                step = Step(number=len(record.steps) + 1, kind="model", messages=len(messages))
                record.steps.append(step)
                started = time.perf_counter()
                try:
                    reply = await llm.chat.completions.create(
                        model=model or DEFAULT_MODEL,
                        messages=cast(Any, messages),
                        tools=cast(Any, record.tools) if record.tools else omit,
                        tool_choice=cast(Any, tool_choice) if record.tools else omit,
                    )
                except APIError as exc:
                    step.latency_ms = (time.perf_counter() - started) * 1000
                    step.error = redact(f"{getattr(exc, 'status_code', '')} {exc.message}".strip())
                    record.stopped = "error"
                    return record
                step.latency_ms = (time.perf_counter() - started) * 1000
                choice = reply.choices[0]
                step.finish_reason = choice.finish_reason or ""
                step.text = choice.message.content or ""
                if reply.usage is not None:
                    step.input_tokens, step.output_tokens = (
                        reply.usage.prompt_tokens,
                        reply.usage.completion_tokens,
                    )
                calls = [c for c in choice.message.tool_calls or [] if c.type == "function"]
                if not calls:
                    record.answer, record.stopped = step.text, "answer"
                    return record
                for call in calls:
                    try:
                        args = json.loads(call.function.arguments or "{}")
                    except ValueError:
                        args = {}
                    step.tool_calls.append((call.id, call.function.name, args))
                if len(record.model_steps) >= max_steps:
                    break  # the model wants more tools, but it has had its turns
                assistant: dict[str, Any] = {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                        for i, n, a in step.tool_calls
                    ],
                }
                if step.text:
                    assistant["content"] = step.text
                messages.append(assistant)
                for call_id, name, args in step.tool_calls:
                    tool_step = Step(
                        number=len(record.steps) + 1, kind="tool", name=name, arguments=args, call_id=call_id
                    )
                    record.steps.append(tool_step)
                    started = time.perf_counter()
                    text, tool_step.is_error = await tools.call(name, args)
                    tool_step.latency_ms = (time.perf_counter() - started) * 1000
                    tool_step.text, tool_step.result_chars = text, len(text)
                    messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
            record.stopped = "step_limit"
            return record

    return run_sync(go)


# --- what the gateway counted ---------------------------------------------------------


@dataclass
class GatewayCounts:
    """Totals from the gateway's metrics in Prometheus (or what a run sent, to compare).

    Attributes:
        mcp_requests: ``agentgateway_mcp_requests_total`` by JSON-RPC method.
        tool_calls: ``tools/call`` by tool (label ``resource``).
        llm_requests: LLM calls that recorded token usage.
        input_tokens / output_tokens: ``agentgateway_gen_ai_client_token_usage_sum`` by type.
    """

    mcp_requests: dict[str, int] = field(default_factory=dict)
    tool_calls: dict[str, int] = field(default_factory=dict)
    llm_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def rows(self) -> dict[str, int]:
        """Every figure under one flat name (``mcp tools/call``, ``input tokens`` ...)."""
        out = {f"mcp {m}": n for m, n in sorted(self.mcp_requests.items())}
        out |= {f"tool {t}": n for t, n in sorted(self.tool_calls.items())}
        out |= {
            "llm requests": self.llm_requests,
            "input tokens": self.input_tokens,
            "output tokens": self.output_tokens,
        }
        return out

    def minus(self, earlier: GatewayCounts) -> GatewayCounts:
        """What was added since ``earlier`` (zero entries left out)."""

        def sub(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) - b.get(k, 0) for k in a if a.get(k, 0) != b.get(k, 0)}

        return GatewayCounts(
            sub(self.mcp_requests, earlier.mcp_requests),
            sub(self.tool_calls, earlier.tool_calls),
            self.llm_requests - earlier.llm_requests,
            self.input_tokens - earlier.input_tokens,
            self.output_tokens - earlier.output_tokens,
        )

    @classmethod
    def of_run(cls, run: AgentRun) -> GatewayCounts:
        """What a run sent: its MCP messages by method, its tool calls, model calls and tokens."""
        tools = Counter(s.name for s in run.tool_steps)
        answered = [s for s in run.model_steps if not s.error]
        return cls(dict(run.mcp_methods), dict(tools), len(answered), run.input_tokens, run.output_tokens)


def _last_scrape(lab: Lab) -> float:
    from .metrics import instant

    frame = instant(lab, "max(timestamp(agentgateway_build_info))")
    return 0.0 if frame.empty else float(frame["value"].iloc[0])


def _settle(lab: Lab, timeout: float, interval: float = 0.25) -> None:
    """Wait for two scrapes of the proxy newer than the last one seen, so the next read
    includes everything the proxy had counted before this call."""
    seen = {_last_scrape(lab)}

    def look() -> tuple[bool, int]:
        seen.add(_last_scrape(lab))
        return len(seen) >= 3, len(seen)

    attempt(look, timeout=timeout, interval=interval)


def gateway_counts(lab: Lab, *, settle: float = 60) -> GatewayCounts:
    """The gateway's totals now, from Prometheus.

    First waits (up to ``settle`` seconds) until Prometheus has scraped the proxy twice more,
    so that requests made just before are in the totals.
    """
    from .metrics import instant

    if settle:
        _settle(lab, settle)

    def by(query: str, label: str) -> dict[str, int]:
        frame = instant(lab, query)
        return {} if frame.empty else {str(r[label]): int(r["value"]) for _, r in frame.iterrows()}

    tokens = by(
        "sum by (gen_ai_token_type) (agentgateway_gen_ai_client_token_usage_sum)", "gen_ai_token_type"
    )
    calls = by(
        "sum by (gen_ai_token_type) (agentgateway_gen_ai_client_token_usage_count)", "gen_ai_token_type"
    )
    return GatewayCounts(
        mcp_requests=by("sum by (method) (agentgateway_mcp_requests_total)", "method"),
        tool_calls=by('sum by (resource) (agentgateway_mcp_requests_total{method="tools/call"})', "resource"),
        llm_requests=calls.get("input", 0),
        input_tokens=tokens.get("input", 0),
        output_tokens=tokens.get("output", 0),
    )


def wait_for_counts(
    lab: Lab, run: AgentRun, before: GatewayCounts, *, timeout: float = 60, interval: float = 1.0
) -> GatewayCounts:
    """What the gateway counted for ``run``: the totals after it minus ``before``.

    Reads after two fresh scrapes, and polls on while less than the run sent has arrived (up
    to ``timeout``), so a comparison afterwards shows any difference, too few or too many.
    """
    wanted = GatewayCounts.of_run(run).rows()
    settle = [timeout]  # the first look waits for two fresh scrapes; later ones read what is there

    def look() -> tuple[bool, GatewayCounts]:
        counted = gateway_counts(lab, settle=settle.pop() if settle else 0).minus(before)
        return all(counted.rows().get(k, 0) >= v for k, v in wanted.items()), counted

    _, counted = attempt(look, timeout=timeout, interval=interval)
    return counted


def compare_counts(run: AgentRun, counted: GatewayCounts) -> Any:
    """A table: each figure as the run sent it and as the gateway counted it."""
    import pandas as pd

    sent, seen = GatewayCounts.of_run(run).rows(), counted.rows()
    names = list(dict.fromkeys([*sent, *seen]))
    frame = pd.DataFrame(
        {
            "the run sent": [sent.get(n, 0) for n in names],
            "the gateway counted": [seen.get(n, 0) for n in names],
        },
        index=names,
    )
    frame["same"] = [
        "✅" if a == b else "❌"
        for a, b in zip(frame["the run sent"], frame["the gateway counted"], strict=True)
    ]
    return frame


# --- the run's one trace --------------------------------------------------------------


def access_log(
    lab: Lab, run: AgentRun, *, timeout: float = 20, interval: float = 0.5
) -> list[dict[str, Any]]:
    """The proxy's access-log lines with the run's trace id, waiting until there is one per request.

    Returns what is there when ``timeout`` passes (fewer lines then mean requests outside the trace).
    """
    from .traces import parse_access_log, proxy_log
    from .wait import attempt

    def step() -> tuple[bool, list[dict[str, Any]]]:
        lines = [e for e in parse_access_log(proxy_log(lab)) if e.get("trace.id") == run.trace_id]
        return len(lines) >= len(run.requests), lines

    return attempt(step, timeout=timeout, interval=interval)[1]


def spans(lab: Lab, run: AgentRun, *, timeout: float = 30, interval: float = 0.5) -> Any:
    """The run's trace as the collector received it: a spans frame (:func:`agwlab.traces.spans_frame`).

    Waits until the span of every access-log line of the run has arrived (the proxy exports
    in batches); when ``timeout`` passes first, returns what has arrived.
    """
    from .traces import collector_log, parse_collector_log, spans_frame

    wanted = {e["span.id"] for e in access_log(lab, run) if e.get("span.id")}

    def look() -> tuple[bool, list[dict[str, Any]]]:
        found = [s for s in parse_collector_log(collector_log(lab)) if s.get("trace_id") == run.trace_id]
        return wanted <= {s.get("span_id") for s in found}, found

    _, found = attempt(look, timeout=timeout, interval=interval)
    frame = spans_frame(found)
    frame.attrs["trace_id"] = run.trace_id
    return frame
