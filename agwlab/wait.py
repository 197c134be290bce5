"""Waiting with a deadline: the one polling loop agwlab uses.

:func:`attempt` calls a step until it reports done or the deadline passes, and returns
what it saw last; :func:`poll` does the same and raises :class:`~agwlab.errors.WaitTimeout`
naming what it waited for and what it saw last. Neither sleeps past the deadline.

Example:
    >>> seen = iter([0, 0, 3])
    >>> poll(lambda: (lambda n: (n > 0, n))(next(seen)), timeout=5, interval=0.01, what="a positive number")
    3
    >>> poll(lambda: (False, "still 0"), timeout=0.05, interval=0.01, what="a positive number")
    Traceback (most recent call last):
    ...
    agwlab.errors.WaitTimeout: waited 0.05s for a positive number; last seen: still 0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import WaitTimeout
from .redaction import redact

__all__ = ["attempt", "poll"]

T = TypeVar("T")


def attempt(step: Callable[[], tuple[bool, T]], *, timeout: float, interval: float = 0.5) -> tuple[bool, T]:
    """Call ``step`` until it returns ``(True, value)`` or ``timeout`` seconds have passed.

    ``step`` is always called at least once, and once more at the deadline.

    Returns:
        The last ``(done, value)`` the step returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        done, value = step()
        remaining = deadline - time.monotonic()
        if done or remaining <= 0:
            return done, value
        time.sleep(min(interval, remaining))


def poll(
    step: Callable[[], tuple[bool, T]],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    hint: str = "",
    describe: Callable[[T], str] = str,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``step`` until it returns ``(True, value)``; return that value.

    Args:
        step: one look; returns whether the wait is over, and what it saw.
        timeout: seconds before giving up.
        interval: seconds between looks.
        what: what is waited for, in words ("deployment/x to be Available"): the error
            says "waited 30s for <what>; last seen: …".
        hint: what to try when it times out.
        describe: how to show the last value seen in the error.
        retry_on: exceptions that mean "not yet" rather than failure (shown as last seen).

    Raises:
        WaitTimeout: not done within ``timeout``; says what was seen last.
    """
    failure: list[Exception] = []
    last: list[T] = []  # what the latest look that did not raise saw

    def guarded() -> tuple[bool, None]:
        try:
            done, value = step()
        except retry_on as exc:
            failure[:] = [exc]
            return False, None
        failure.clear()
        last[:] = [value]
        return done, None

    done, _ = attempt(guarded, timeout=timeout, interval=interval)
    if done:
        return last[0]
    seen = f"{type(failure[0]).__name__}: {failure[0]}" if failure else describe(last[0])
    seen = redact(seen)
    raise WaitTimeout(
        f"waited {timeout:g}s for {what}; last seen: {seen}" + (f". Try: {hint}" if hint else ""),
        last_seen=seen,
    )
