"""Child processes of the sandbox (Prometheus, the fetcher's Pods) die with it, and see only
the environment they need (never the learner's API key or other credentials)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping

__all__ = ["child_environment", "die_with_parent"]

# what a child may inherit: where things are, locale and time zone, the Python it runs in, the
# sandbox's own settings (AGWLAB_*). Nothing else: keys, tokens and cloud credentials stay home.
_KEEP = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH",
                   "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR"})
_KEEP_PREFIXES = ("LC_", "AGWLAB_")


def child_environment(extra: Mapping[str, str] | None = None,
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a child process: :data:`_KEEP`, ``LC_*`` and ``AGWLAB_*``
    from ``environ`` (default ``os.environ``), then ``extra``.

    Example:
        >>> child_environment({"X": "1"}, environ={"PATH": "/bin", "ANTHROPIC_API_KEY": "sk-ant-..."})
        {'PATH': '/bin', 'X': '1'}
    """
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if k in _KEEP or k.startswith(_KEEP_PREFIXES)}
    env.update(extra or {})
    return env


def die_with_parent() -> None:
    """A ``preexec_fn``: ask Linux to SIGTERM the child when the sandbox process dies,
    even by SIGKILL (elsewhere ``up`` cleans leftovers from the ``children`` file)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
