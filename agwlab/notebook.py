"""Short errors in notebooks: agwlab's errors as one line with the fix, and restarts explained.

Every :class:`~agwlab.errors.LabError` already says what to do; in a notebook, the dozens of
traceback lines above it (through the kubernetes client, urllib3, ...) only hide that.
:func:`install` registers an IPython handler that shows such an error as one red line,
``❌ ClusterUnreachable: could not reach ... Try: ./lab start``, and a cell that uses a name
no cell in this kernel has defined yet (after a kernel restart, or when cells were skipped)
gets a line saying so instead of a bare ``NameError``. The cell still fails (the kernel
reports an error, so nbmake and "Run All" stop there); only the display changes.

:func:`agwlab.connect` calls :func:`install`; ``./lab`` also loads this module as an IPython
extension in its venv's kernels, so the restart message works before anything is imported.
Outside IPython, :func:`install` does nothing.

Example:
    >>> from agwlab.errors import ClusterUnreachable
    >>> one_line(ClusterUnreachable("the API server did not answer: is the sandbox running? Try: ./lab start"))
    '❌ ClusterUnreachable: the API server did not answer: is the sandbox running? Try: ./lab start'
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

from .errors import LabError
from .redaction import redact

__all__ = ["install", "load_ipython_extension", "one_line", "undefined_name_line"]

_RED, _RESET = "\x1b[31m", "\x1b[0m"


def one_line(error: BaseException) -> str:
    """An agwlab error as a learner should see it: its kind and its message (redacted), one line."""
    message = " ".join(redact(str(error)).split())
    return f"❌ {type(error).__name__}: {message}"


def undefined_name_line(error: NameError) -> str:
    """What a ``NameError`` at a cell's top level most likely means in a lab notebook."""
    name = getattr(error, "name", None) or (re.findall(r"'([^']+)'", str(error)) or ["?"])[0]
    first = " (the notebook's first code cell makes it)" if name == "lab" else ""
    return (f"❌ NameError: {name!r} is not defined{first}. This kernel has not run the cell that defines it: "
            "after a kernel restart, or when cells were skipped, run the cells above first "
            "(Run ▸ Run All Above Selected Cell).")


def _frames(tb: TracebackType | None) -> list[TracebackType]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def _handler(shell: Any, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
             tb_offset: int | None = None) -> list[str]:
    if isinstance(value, LabError):
        stb = [f"{_RED}{one_line(value)}{_RESET}"]
    else:
        frames = _frames(tb)
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        # only a name the cell itself uses (not one deep inside a function it called)
        if isinstance(value, NameError) and frames and frames[-1].tb_frame.f_code.co_name == "<module>":
            stb = [f"{_RED}{undefined_name_line(value)}{_RESET}"]
    # IPython's run_code ignores what a custom handler returns: show it as the cell's error here
    shell._showtraceback(etype, value, stb)
    return stb


def install(shell: Any = None) -> bool:
    """Register the handler with the running IPython shell (idempotent).

    Returns:
        ``True`` when registered, ``False`` outside IPython.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython ships with the lab
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((LabError, NameError), _handler)
    return True


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext agwlab.notebook``, or ``c.InteractiveShellApp.extensions`` in a kernel's config."""
    install(ipython)
