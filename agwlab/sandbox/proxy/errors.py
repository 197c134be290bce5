"""Errors the proxy answers itself, raised by handlers and turned into responses in one place.

A handler that refuses a request or cannot reach its upstream raises a
:class:`GatewayError`; ``server.py`` catches it, answers ``text/plain`` with its status
and message, and writes ``error`` and ``reason`` into the access log and metrics, as
agentgateway v1.4.1 does (``ProxyError`` in ``proxy/mod.rs``).

Example:
    >>> err = ProcessingFailed("missing field: model not specified")
    >>> err.status, err.message, err.reason
    (503, 'processing failed: missing field: model not specified', 'Internal')
"""

from __future__ import annotations

__all__ = [
    "GatewayError",
    "NoBackend",
    "ProcessingFailed",
    "RequestTimeout",
    "UpstreamCallFailed",
    "UpstreamCallTimeout",
]


class GatewayError(Exception):
    """A response the gateway makes itself.

    Args:
        status: the HTTP status answered.
        message: the ``text/plain`` body, also the access log's ``error``.
        reason: the access log's and ``agentgateway_requests_total``'s ``reason``.
    """

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers: tuple[tuple[str, str], ...] = ()   # extra response headers (e.g. x-ratelimit-*)


class ProcessingFailed(GatewayError):
    """The gateway could not process the request (bad JSON, no model...): 503, reason ``Internal``."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, f"processing failed: {detail}", "Internal")


class UpstreamCallFailed(GatewayError):
    """The upstream could not be reached: 503, reason ``UpstreamFailure``."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, f"upstream call failed: {detail}", "UpstreamFailure")


class UpstreamCallTimeout(GatewayError):
    """Connecting to the upstream took too long: 504, reason ``Timeout``."""

    def __init__(self) -> None:
        super().__init__(504, "upstream call timeout", "Timeout")


class RequestTimeout(GatewayError):
    """The route's request timeout fired: 504, reason ``Timeout``."""

    def __init__(self) -> None:
        super().__init__(504, "request timeout", "Timeout")


class NoBackend(GatewayError):
    """The route has no usable backend (missing, invalid, no endpoints)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(status, message, "NoHealthyBackend")
