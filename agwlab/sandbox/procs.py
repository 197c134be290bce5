"""Child processes of the sandbox (Prometheus, the fetcher's Pods) die with it."""

from __future__ import annotations

import contextlib
import signal

__all__ = ["die_with_parent"]


def die_with_parent() -> None:
    """A ``preexec_fn``: ask Linux to SIGTERM the child when the sandbox process dies,
    even by SIGKILL (elsewhere ``up`` cleans leftovers from the ``children`` file)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
