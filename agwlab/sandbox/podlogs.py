"""Pod logs: what a container prints, as `kubectl logs` reads it back.

Each Pod's log is a plain text file; every line the workload writes is appended and
flushed at once, so a line is visible to `kubectl logs` as soon as the request that
caused it has finished.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["PodLog"]


class PodLog:
    """An append-only, line-buffered log file for one Pod.

    Example:
        >>> log = PodLog(Path("/tmp/x.log"))          # doctest: +SKIP
        >>> log.write("listening on 127.64.1.2:8080")  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open until close())

    def write(self, line: str) -> None:
        """Append one line (a trailing newline is added when missing)."""
        if not line.endswith("\n"):
            line += "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)

    def writelines(self, lines: list[str]) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write("".join(l if l.endswith("\n") else l + "\n" for l in lines))

    def close(self) -> None:
        with self._lock:
            self._file.close()
