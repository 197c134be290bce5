"""agentgateway's data plane in the sandbox: one :class:`ProxyWorkload` per Gateway.

Modules: ``server`` (workload, listeners, dispatch), ``routing`` (HTTPRoute matching),
``ai`` (LLM backends), ``forward`` (plain Service backends), ``mcp`` (MCP backends),
``accesslog``, ``metrics``, ``tracing``, ``state`` (what handlers share), ``config`` and
``context`` (contracts); the policies the AI path applies live beside ``ai`` (``ratelimit``,
``guardrails``).

``ProxyWorkload`` is loaded on first use: the controller imports ``proxy.config`` at
start-up, and the server's dependencies (aiohttp, OpenTelemetry) are only needed once a
Gateway's Pod starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import ProxyWorkload

__all__ = ["ProxyWorkload"]


def __getattr__(name: str) -> Any:
    if name == "ProxyWorkload":
        from .server import ProxyWorkload

        return ProxyWorkload
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
