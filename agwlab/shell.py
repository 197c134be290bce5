"""The values a terminal needs to follow along: ``export`` lines for this lab.

The notebooks show kubectl and curl commands next to the Python that does the same. Those
commands use ``$KUBECONFIG`` (the sandbox's), ``$GATEWAY`` (the Gateway's address) and
``$PROMETHEUS`` (where Prometheus answers); :func:`exports` prints the lines that set them
for the lab in use, so a command copied from a notebook works as it is.

Example:
    >>> print(Exports([("GATEWAY", "127.155.0.3")]))
    export GATEWAY=127.155.0.3
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import LabError

if TYPE_CHECKING:
    from .lab import Lab

__all__ = ["Exports", "exports"]


@dataclass(frozen=True)
class Exports:
    """``export NAME=value`` lines, plus comments for values that are not available yet."""

    values: list[tuple[str, str]]
    missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in self.values]
        return "\n".join(lines + [f"# {note}" for note in self.missing])

    def _repr_html_(self) -> str:
        title = "For a terminal (paste these lines, then the commands shown in the notebook work as they are):"
        return f"<p>{html.escape(title)}</p><pre>{html.escape(str(self))}</pre>"


def exports(lab: Lab, *, prometheus: bool = False) -> Exports:
    """The ``export`` lines for ``lab``: ``KUBECONFIG`` (sandbox), ``GATEWAY`` and, if asked, ``PROMETHEUS``.

    A value that is not available yet (no Gateway, no Prometheus) becomes a comment saying why.
    """
    values: list[tuple[str, str]] = []
    missing: list[str] = []
    if lab.kubeconfig is not None and lab.target == "sandbox":
        values.append(("KUBECONFIG", str(lab.kubeconfig)))
    try:
        values.append(("GATEWAY", lab.gateway_address()))
    except LabError as exc:
        missing.append(f"GATEWAY: {exc}")
    if prometheus:
        try:
            values.append(("PROMETHEUS", lab.prometheus_url()))
        except LabError as exc:
            missing.append(f"PROMETHEUS: {exc}")
    return Exports(values, missing)
