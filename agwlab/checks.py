"""Lab checks: one ✅/❌ line per step for the learner, a hard assertion in CI.

:func:`check` runs a test (a bool, or a function polled until a deadline), shows what was
checked, how long it took and, on failure, what to try. When the notebook runs under
pytest/nbmake (``PYTEST_CURRENT_TEST`` is set) or with ``AGWLAB_STRICT=1``
(``AGWLAB_STRICT=0`` turns it off), a failed check
raises :class:`agwlab.errors.CheckFailed` naming the stage and step, so CI says exactly
which step of which notebook broke.

Checks that wait should probe the data plane, not only the control plane: a route's
``Accepted=True`` says the controller took it, not that the proxy serves it yet.
:func:`http_probe` builds such a probe.

Example:
    >>> from agwlab import connect
    >>> from agwlab.checks import check, http_probe
    >>> lab = connect()
    >>> probe = http_probe(lab.gateway_url("/anthropic"), method="POST", json={"messages": "x"},
    ...                    expect=lambda r: r.status_code != 404)
    >>> result = check("01", "route", probe, what="the proxy answers on /anthropic",
    ...                hint="wait for the HTTPRoute to be Accepted", timeout=30)   # doctest: +ELLIPSIS
    ✅ ...the proxy answers on /anthropic...
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import CheckFailed
from .redaction import redact
from .wait import attempt

__all__ = ["CheckResult", "check", "http_probe", "is_strict", "record_results", "show"]

Outcome = bool | tuple[bool, str] | None


_recorder: Callable[[CheckResult], None] | None = None


def record_results(recorder: Callable[[CheckResult], None] | None) -> None:
    """Also hand every later check's result to ``recorder`` (``None`` stops); it must not raise.

    :func:`agwlab.connect` sets one when the lab runs in a learner's own namespace, so an
    instructor can follow their progress (see :mod:`agwlab.progress`).
    """
    global _recorder
    _recorder = recorder


def is_strict() -> bool:
    """True when failed checks raise.

    That is with ``AGWLAB_STRICT=1``, or under pytest/nbmake unless ``AGWLAB_STRICT=0``.
    """
    setting = os.environ.get("AGWLAB_STRICT", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    return bool(os.environ.get("PYTEST_CURRENT_TEST"))


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes:
        ok: whether it passed.
        stage: the notebook stage (``"01"``, ``"02-traces"`` …).
        step: the step within the stage.
        what: what was checked, in words.
        detail: what was seen (redacted).
        hint: what to try when it failed.
        elapsed: seconds the check took, polling included.
    """

    ok: bool
    stage: str
    step: str
    what: str
    detail: str = ""
    hint: str = ""
    elapsed: float = 0.0
    _shown: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "✅" if self.ok else "❌"
        lines = [f"{mark} [{self.stage} · {self.step}] {self.what} ({self.elapsed:.1f}s)"]
        if self.detail:
            lines.append(f"   {self.detail}")
        if not self.ok and self.hint:
            lines.append(f"   try: {self.hint}")
        return redact("\n".join(lines))

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        mark = "✅" if self.ok else "❌"
        parts = [
            f'<div style="border-left:4px solid {colour};padding:2px 8px;margin:2px 0;'
            'font-family:sans-serif">',
            f"{mark} <b>{html.escape(self.what)}</b> "
            f'<span style="color:#666">[{html.escape(self.stage)} · {html.escape(self.step)}, '
            f"{self.elapsed:.1f}s]</span>",
        ]
        if self.detail:
            parts.append(f'<br><code style="color:#444">{html.escape(self.detail)}</code>')
        if not self.ok and self.hint:
            parts.append(f"<br><b>Try:</b> {html.escape(self.hint)}")
        parts.append("</div>")
        return redact("".join(parts))

    def _ipython_display_(self) -> None:
        # check() already displayed this result; a cell ending in check(...) must not show it twice.
        if self._shown:
            return
        show(self)


def show(obj: Any) -> None:
    """Display an object with its HTML form in a notebook, or print it (redacted) elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        print(redact(str(obj)), flush=True)
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        print(redact(str(obj)), flush=True)
        return
    bundle = {"text/plain": redact(str(obj))}
    html_form = getattr(obj, "_repr_html_", None)
    if html_form is not None:
        bundle["text/html"] = redact(html_form())
    display(bundle, raw=True)
    if isinstance(obj, CheckResult):
        obj._shown = True


def _run(fn: Callable[[], Outcome]) -> tuple[bool, str]:
    try:
        outcome = fn()
    except Exception as exc:  # a probe that raises has failed; say why (first line only)
        first = (str(exc).strip().splitlines() or [""])[0]
        return False, f"{type(exc).__name__}: {first}"
    if isinstance(outcome, tuple):
        return bool(outcome[0]), str(outcome[1])
    return bool(outcome), ""


def check(
    stage: str,
    step: str | int,
    test: bool | Callable[[], Outcome],
    *,
    what: str,
    hint: str,
    timeout: float = 0,
    interval: float = 0.5,
) -> CheckResult:
    """Check one thing, show ✅/❌, and in strict mode raise when it fails.

    Args:
        stage: the notebook stage, e.g. ``"01-claude-llm-connection"``.
        step: the step in that stage.
        test: a bool, or a function returning a bool or ``(bool, detail)``; a function
            that raises counts as a failure, with the error as the detail.
        what: what is checked, in words (shown either way).
        hint: what to try when it fails.
        timeout: keep calling ``test`` until it passes or this many seconds have passed.
        interval: seconds between calls while polling.

    Returns:
        The :class:`CheckResult` (already displayed).

    Raises:
        CheckFailed: the check failed and :func:`is_strict` is true.
    """
    start = time.monotonic()
    if callable(test):
        ok, detail = attempt(lambda: _run(test), timeout=timeout, interval=interval)
    else:
        ok, detail = bool(test), ""
    result = CheckResult(ok, str(stage), str(step), what, redact(detail), hint, time.monotonic() - start)
    show(result)
    if _recorder is not None:
        _recorder(result)
    if not ok and is_strict():
        raise CheckFailed(
            redact(f"check failed in notebook {stage}, step {step}: {what}. {detail} Try: {hint}"),
            stage=str(stage),
            step=str(step),
        )
    return result


def http_probe(
    url: str,
    *,
    method: str = "GET",
    expect: Collection[int] | Callable[[httpx.Response], bool] = (200,),
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5,
) -> Callable[[], tuple[bool, str]]:
    """A data-plane probe for :func:`check`: send one request, pass on the expected answer.

    Args:
        url: where to send it.
        expect: the statuses that pass, or a function of the response.
        json: a JSON body.
        headers: extra headers.
        timeout: seconds per request.

    Returns:
        A function returning ``(passed, "METHOD URL → status …")``.
    """

    def probe() -> tuple[bool, str]:
        try:
            response = httpx.request(method, url, json=json, headers=dict(headers or {}), timeout=timeout)
        except httpx.HTTPError as exc:
            return False, f"{method} {url} → {type(exc).__name__}: {exc}"
        ok = expect(response) if callable(expect) else response.status_code in expect
        body = response.text.strip().replace("\n", " ")
        snippet = body[:120] + ("…" if len(body) > 120 else "")
        return ok, f"{method} {url} → {response.status_code} {snippet}".rstrip()

    return probe
