"""The container side of the sandbox's ``python`` image: run one script as ``python SCRIPT ARGS``.

Started by :class:`~agwlab.sandbox.workloads.python_image.PythonImageWorkload`. It dies with the
sandbox, binds the wildcard address ``0.0.0.0`` to the Pod's IP (in a real Pod the network
namespace makes ``0.0.0.0`` mean the Pod's own addresses; the sandbox stays on loopback) and then
runs the script as ``__main__``, as the image's ``python`` would.
"""

from __future__ import annotations

import os
import runpy
import socket
import sys
from typing import Any

from ..procs import die_with_parent
from .website_fetcher_pod import PARENT_ENV

__all__ = ["main"]


def _bind_wildcard_to(pod_ip: str) -> None:
    original = socket.socket.bind

    def bind(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_INET and isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (pod_ip, *address[1:])
        original(self, address)

    setattr(socket.socket, "bind", bind)  # noqa: B010 (assigning a method mypy would refuse)


def main() -> None:
    """``python -m agwlab.sandbox.workloads.script_runner SCRIPT ARGS...``"""
    parent = os.environ.get(PARENT_ENV)
    if parent:  # go when the sandbox goes, even if it is SIGKILLed
        die_with_parent()
        if os.getppid() != int(parent):
            sys.exit("the sandbox that started this Pod is gone")
    _bind_wildcard_to(os.environ["POD_IP"])
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(script)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
