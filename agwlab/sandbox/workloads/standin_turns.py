"""What the Claude stand-in does with tools and thinking: deterministic rules, no model.

The stand-in (:mod:`agwlab.sandbox.workloads.anthropic_standin`) answers plain questions
with text. This module decides the rest of a turn from the Messages request alone:

**When it calls a tool** (``tool_use`` blocks, ``stop_reason: "tool_use"``):

- ``tool_choice: {"type": "tool", "name": N}``: always, tool ``N``, once.
- ``tool_choice: {"type": "any"}``: always. One call per URL in the question that no
  earlier ``tool_use`` asked for; when every URL was asked for already, the first one again
  (a model forced to use tools keeps using them).
- ``tool_choice`` ``auto`` (or absent): when the question plainly asks for something a tool
  provides, that is, when it **contains a URL that no earlier ``tool_use`` asked for and a
  tool takes a URL** (a string property named like ``url``/``uri``/``link`` or with
  ``format: uri``), or when it **names a tool** whose required arguments can all be filled
  from the question. One call per such URL, at most :data:`MAX_PARALLEL_CALLS`
  (one with ``disable_parallel_tool_use``). Under ``auto`` a short text block comes first,
  as Claude writes one; a forced choice starts with the ``tool_use`` block.
- ``tool_choice: {"type": "none"}`` or no ``tools``: never.

The question is the text of the latest user message that has text (tool results are not
questions). Arguments follow the tool's ``input_schema``: URL-like strings get the URL,
``enum`` the first value, ``default`` its default, query-like strings (``query``, ``q``,
``text``, ``question``, ``prompt``, ``input``, ``search``) the question, integers and
numbers their ``minimum`` or 1, booleans ``false``, arrays ``[]``, objects are filled the
same way. Optional properties are left out unless a URL or the question fills them.

**When the last user message carries ``tool_result`` blocks** and no further call is due,
the answer is built from them: for each result, what the tool returned (an HTML page's
title and opening text, or the start of plain text), or, when the result is an error
(``is_error: true``, or text that starts with ``Error``, since a result translated from
OpenAI's ``tool`` message cannot carry ``is_error``), that the tool failed and why.

**Thinking** (``thinking: {"type": "enabled", ...}`` or ``{"type": "adaptive"}``): a
``thinking`` block comes first, stating the question and the plan (answer, call a tool,
or summarise a result), with a ``signature``.

Example:
    >>> schema = {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}
    >>> arguments_for(schema, "Summarise https://example.com/ please", ["https://example.com/"])
    {'url': 'https://example.com/'}
    >>> find_urls("See http://a.example/x, then (https://b.example).")
    ['http://a.example/x', 'https://b.example']
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "MAX_PARALLEL_CALLS",
    "PlannedCall",
    "ToolOutcome",
    "Turn",
    "arguments_for",
    "find_urls",
    "plan_turn",
    "question_of",
    "summarise_outcomes",
    "thinking_signature",
    "thinking_text",
    "validate_tools",
]

#: At most this many ``tool_use`` blocks in one turn.
MAX_PARALLEL_CALLS = 4
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_URL_WORDS = ("url", "uri", "link", "href")
_QUERY_WORDS = {"query", "q", "text", "question", "prompt", "input", "search"}
_FALLBACK_URL = "https://example.com/"


def find_urls(text: str) -> list[str]:
    """The http(s) URLs in ``text``, in order, without trailing punctuation, each once."""
    found = []
    for match in _URL.findall(text):
        url = match.rstrip(".,;:!?)]}")
        if url not in found:
            found.append(url)
    return found


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _merged(messages: list[Any]) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """Consecutive messages of one role joined, as the API joins them: (first index, role, blocks)."""
    turns: list[tuple[int, str, list[dict[str, Any]]]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        role, blocks = str(m.get("role", "")), _blocks(m.get("content"))
        if turns and turns[-1][1] == role:
            turns[-1][2].extend(blocks)
        else:
            turns.append((i, role, list(blocks)))
    return turns


def question_of(messages: list[Any]) -> str:
    """The text of the latest user message that has text (tool results are not questions)."""
    for _i, role, blocks in reversed(_merged(messages)):
        if role != "user":
            continue
        texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
        text = "\n".join(t for t in texts if t.strip())
        if text:
            return text
    return ""


def result_text(content: Any) -> str:
    """The text of a ``tool_result``'s content (a string or text blocks)."""
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in _blocks(content) if b.get("type") == "text")


def validate_tools(body: dict[str, Any]) -> str | None:
    """What is wrong with a request's ``tools``, ``tool_choice``, tool blocks or ``thinking``, or None.

    The messages are the API's ``invalid_request_error`` texts, or close to them.
    """
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{i}: Input should be a valid dictionary"
            if "type" in tool and tool["type"] not in (None, "custom"):
                continue  # server tools (web_search, ...): accepted, never called here
            name = tool.get("name")
            if not isinstance(name, str):
                return f"tools.{i}.custom.name: Field required"
            if not TOOL_NAME.match(name):
                return f"tools.{i}.custom.name: String should match pattern '{TOOL_NAME.pattern}'"
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                return f"tools.{i}.custom.input_schema: Field required"
            if schema.get("type") != "object":
                return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
            if name in names:
                return f"tools: Tool names must be unique. Duplicate name: {name}"
            names.append(name)
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if kind in ("any", "tool") and not names:
            return "tool_choice: tool_choice may only be specified while providing tools."
        if kind == "tool" and choice.get("name") not in names:
            return f"tool_choice.name: Tool '{choice.get('name')}' not found in tools"
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int):
                return "thinking.enabled.budget_tokens: Field required"
            if budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if isinstance(body.get("max_tokens"), int) and body["max_tokens"] <= budget:
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
        if (
            kind in ("enabled", "adaptive")
            and isinstance(choice, dict)
            and choice.get("type") in ("any", "tool")
        ):
            return "Thinking may not be enabled when tool_choice forces tool use."
    return _pairing_error(body.get("messages") or [])


def _pairing_error(messages: list[Any]) -> str | None:
    turns = _merged(messages)
    for n, (index, role, blocks) in enumerate(turns):
        if role == "assistant":
            used = [str(b.get("id", "")) for b in blocks if b.get("type") == "tool_use"]
            if not used or n + 1 >= len(turns):
                continue
            answered = {
                str(b.get("tool_use_id", "")) for b in turns[n + 1][2] if b.get("type") == "tool_result"
            }
            missing = [u for u in used if u not in answered]
            if missing:
                return (
                    f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
        elif role == "user":
            previous = turns[n - 1][2] if n > 0 and turns[n - 1][1] == "assistant" else []
            used_ids = {str(b.get("id", "")) for b in previous if b.get("type") == "tool_use"}
            for j, b in enumerate(blocks):
                if b.get("type") == "tool_result" and str(b.get("tool_use_id", "")) not in used_ids:
                    return (
                        f"messages.{index}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {b.get('tool_use_id')}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
    return None


# --- arguments from a schema ---------------------------------------------------------


def _url_like(name: str, prop: dict[str, Any]) -> bool:
    return prop.get("format") in ("uri", "url") or any(w in name.lower() for w in _URL_WORDS)


def _value_for(
    name: str, prop: dict[str, Any], question: str, url: str | None, forced: bool
) -> tuple[bool, Any]:
    """(filled, value) for one property; ``filled`` False when the question cannot supply it."""
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if prop.get("enum"):
        return True, prop["enum"][0]
    if "default" in prop:
        return True, prop["default"]
    if kind in ("string", None):
        if _url_like(name, prop):
            if url:
                return True, url
            return (True, _FALLBACK_URL) if forced else (False, None)
        if name.lower() in _QUERY_WORDS and question:
            return True, question
        return (True, question or name) if forced else (False, None)
    if kind in ("integer", "number"):
        low = prop["exclusiveMinimum"] + 1 if "exclusiveMinimum" in prop else prop.get("minimum", 1)
        return True, int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True, False
    if kind == "array":
        return True, []
    if kind == "object":
        value = arguments_for(prop, question, [url] if url else [], forced=forced)
        return (value is not None), value
    return (True, None) if forced else (False, None)


def arguments_for(
    schema: dict[str, Any], question: str, urls: list[str], *, forced: bool = False
) -> dict[str, Any] | None:
    """Arguments matching ``schema`` filled from the question and its first URL, or None.

    None means a required property cannot be filled from the question (never when
    ``forced``: then strings get the question or a placeholder URL).
    """
    props = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    url = urls[0] if urls else None
    args: dict[str, Any] = {}
    for name, prop in props.items():
        if not isinstance(prop, dict):
            prop = {}
        filled, value = _value_for(name, prop, question, url, forced)
        if name in required:
            if not filled:
                return None
            args[name] = value
        elif filled and (
            (url and _url_like(name, prop) and value == url)
            or (name.lower() in _QUERY_WORDS and value == question and question)
        ):
            args[name] = value
    for name in required:
        if name not in args:  # required but not described: a string is the best guess
            if not forced:
                return None
            args[name] = url or question or name
    return args


# --- planning a turn -----------------------------------------------------------------


@dataclass
class PlannedCall:
    """One ``tool_use`` the stand-in will send."""

    name: str
    input: dict[str, Any]


@dataclass
class ToolOutcome:
    """One ``tool_result`` of the last user message, with the call it answers."""

    tool: str
    input: dict[str, Any]
    text: str
    is_error: bool


@dataclass
class Turn:
    """What the stand-in does this turn: call tools, or answer (from tool results, if any)."""

    question: str
    calls: list[PlannedCall] = field(default_factory=list)
    outcomes: list[ToolOutcome] = field(default_factory=list)
    forced: bool = False


def _custom_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") in (None, "custom") and isinstance(t.get("name"), str)
    ]


def _takes_url(tool: dict[str, Any]) -> bool:
    props = (tool.get("input_schema") or {}).get("properties") or {}
    return any(
        isinstance(p, dict) and p.get("type", "string") == "string" and _url_like(n, p)
        for n, p in props.items()
    )


def _named(tool: dict[str, Any], question: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(tool['name'])}(?![\w-])", question, re.IGNORECASE) is not None


def _best_tool(tools: list[dict[str, Any]], question: str, want_url: bool) -> dict[str, Any] | None:
    candidates = [t for t in tools if _takes_url(t)] if want_url else list(tools)
    if not candidates:
        return None
    words = set(re.findall(r"[a-z0-9]+", question.lower()))

    def score(tool: dict[str, Any]) -> int:
        own = set(re.findall(r"[a-z0-9]+", f"{tool['name']} {tool.get('description') or ''}".lower()))
        return 10 * _named(tool, question) + len(words & own)

    return max(candidates, key=score)  # max keeps the first of equals


def _requested_urls(turns: list[tuple[int, str, list[dict[str, Any]]]]) -> set[str]:
    asked: set[str] = set()
    for _i, role, blocks in turns:
        if role == "assistant":
            for b in blocks:
                if b.get("type") == "tool_use":
                    asked.update(find_urls(json.dumps(b.get("input") or {})))
    return asked


def _outcomes(turns: list[tuple[int, str, list[dict[str, Any]]]]) -> list[ToolOutcome]:
    if not turns or turns[-1][1] != "user":
        return []
    previous = turns[-2][2] if len(turns) > 1 and turns[-2][1] == "assistant" else []
    calls = {str(b.get("id", "")): b for b in previous if b.get("type") == "tool_use"}
    found = []
    for b in turns[-1][2]:
        if b.get("type") != "tool_result":
            continue
        call = calls.get(str(b.get("tool_use_id", "")), {})
        text = result_text(b.get("content", ""))
        is_error = bool(b.get("is_error")) or text.lstrip().lower().startswith("error")
        found.append(ToolOutcome(str(call.get("name", "the")), dict(call.get("input") or {}), text, is_error))
    return found


def plan_turn(body: dict[str, Any]) -> Turn:
    """Decide this turn from a (valid) Messages body, by the rules in the module docstring."""
    messages = body.get("messages") or []
    turns = _merged(messages)
    question = question_of(messages)
    turn = Turn(question=question, outcomes=_outcomes(turns))
    tools = _custom_tools(body)
    raw_choice = body.get("tool_choice")
    choice: dict[str, Any] = raw_choice if isinstance(raw_choice, dict) else {"type": "auto"}
    kind = choice.get("type", "auto")
    if not tools or kind == "none":
        return turn
    limit = 1 if choice.get("disable_parallel_tool_use") else MAX_PARALLEL_CALLS
    urls = find_urls(question)
    new_urls = [u for u in urls if u not in _requested_urls(turns)]
    if kind == "tool":
        named = next(t for t in tools if t["name"] == choice.get("name"))
        args = arguments_for(named.get("input_schema") or {}, question, new_urls or urls, forced=True)
        turn.calls, turn.forced = [PlannedCall(named["name"], args or {})], True
        return turn
    if kind == "any":
        turn.forced = True
        targets = new_urls or urls[:1]
        forced_tool = _best_tool(tools, question, want_url=bool(targets)) or tools[0]
        if targets and _takes_url(forced_tool):
            turn.calls = [
                PlannedCall(
                    forced_tool["name"],
                    arguments_for(forced_tool["input_schema"], question, [u], forced=True) or {},
                )
                for u in targets[:limit]
            ]
        else:
            turn.calls = [
                PlannedCall(
                    forced_tool["name"],
                    arguments_for(forced_tool.get("input_schema") or {}, question, [], forced=True) or {},
                )
            ]
        return turn
    if new_urls:
        url_tool = _best_tool(tools, question, want_url=True)
        if url_tool is not None:
            turn.calls = [
                PlannedCall(url_tool["name"], arguments_for(url_tool["input_schema"], question, [u]) or {})
                for u in new_urls[:limit]
            ]
            return turn
    if not turn.outcomes:
        for tool in tools:
            if _named(tool, question):
                args = arguments_for(tool.get("input_schema") or {}, question, urls)
                if args is not None:
                    turn.calls = [PlannedCall(tool["name"], args)]
                    return turn
    return turn


# --- words for the answer ------------------------------------------------------------


_INLINE = {"a", "b", "i", "em", "strong", "code", "span", "small", "sub", "sup", "abbr", "kbd", "q", "s", "u"}


class _PageText(HTMLParser):
    """An HTML page's title, headings and visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[str] = []
        self.text: list[str] = []
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in _INLINE:
            self.text.append(" ")
        if tag not in ("br", "img", "meta", "link", "hr", "input"):
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _INLINE:
            self.text.append(" ")
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if any(t in ("script", "style", "nav", "head") for t in self._stack) and "title" not in self._stack:
            return
        if "title" in self._stack:
            self.title += data
        elif self._stack and self._stack[-1] in ("h1", "h2", "h3"):
            self.headings.append(" ".join(data.split()))
        else:
            self.text.append(data)

    def visible_text(self) -> str:
        """The page's visible text, whitespace collapsed."""
        return re.sub(r"\s+([.,;:!?])", r"\1", " ".join("".join(self.text).split()))


def _opening(text: str, words: int = 45) -> str:
    flat = " ".join(text.split())
    cut = flat.split(" ")
    short = " ".join(cut[:words])
    return short + ("..." if len(cut) > words else "")


def _describe(outcome: ToolOutcome) -> str:
    target = outcome.input.get("url") or next(iter(find_urls(json.dumps(outcome.input))), None)
    about = f" for {target}" if target else ""
    if outcome.is_error:
        reason = " ".join(outcome.text.split())[:300] or "no details"
        return f"The {outcome.tool} tool reported an error{about}, so I could not use its result: {reason}"
    body = outcome.text
    if re.search(r"<(html|body|p|h1|div)\b", body, re.IGNORECASE):
        page = _PageText()
        page.feed(body)
        title = " ".join(page.title.split())
        parts = [f"I read {target or 'the page'} with the {outcome.tool} tool ({len(body)} characters)."]
        if title:
            parts.append(f'Its title is "{html.unescape(title)}".')
        parts.append(f"It says: {_opening(page.visible_text())}")
        heads = [h for h in page.headings if h and h != title][:5]
        if heads:
            parts.append("Its sections: " + "; ".join(heads) + ".")
        return " ".join(parts)
    if not body.strip():
        return f"The {outcome.tool} tool returned nothing{about}."
    return f"The {outcome.tool} tool returned {len(body)} characters{about}. They begin: {_opening(body)}"


def summarise_outcomes(outcomes: list[ToolOutcome]) -> str:
    """The answer's sentences about the tool results (errors said plainly)."""
    return " ".join(_describe(o) for o in outcomes)


def thinking_text(turn: Turn) -> str:
    """The thinking block for a turn: the question and the plan."""
    q = " ".join(turn.question.split())
    q = q if len(q) <= 160 else q[:157].rstrip() + "..."
    lines = [f'The user asks: "{q}".' if q else "There is no question in the conversation."]
    if turn.calls:
        for call in turn.calls:
            lines.append(f"I will call {call.name} with {json.dumps(call.input, ensure_ascii=False)}.")
    elif turn.outcomes:
        bad = [o for o in turn.outcomes if o.is_error]
        lines.append(
            f"{len(turn.outcomes)} tool result(s) came back"
            + (f", {len(bad)} of them errors" if bad else "")
            + "; I will answer from them"
            + (" and say what failed." if bad else ".")
        )
    else:
        lines.append("No tool is needed; I will answer directly.")
    return " ".join(lines)


def thinking_signature(text: str) -> str:
    """A signature for a thinking block (opaque, as the API's; derived from the text here)."""
    return base64.b64encode(hashlib.sha512(text.encode()).digest() * 2).decode()
