"""The sandbox: a local stand-in for "a Kubernetes cluster with agentgateway installed".

Only the start-up entry points are public; everything else is the sandbox's own.

Example:
    >>> from agwlab.sandbox import ensure_running   # doctest: +SKIP
    >>> info = ensure_running()                     # doctest: +SKIP
    >>> info.apiserver                              # doctest: +SKIP
    'http://127.93.0.1:6443'
"""

from .supervisor import SandboxError, SandboxInfo, ensure_running, status, stop

__all__ = ["SandboxError", "SandboxInfo", "ensure_running", "status", "stop"]
