"""agentgateway's data plane in the sandbox: one :class:`ProxyWorkload` per Gateway.

Modules: ``server`` (workload, listeners, dispatch), ``routing`` (HTTPRoute matching),
``ai`` (LLM backends), ``forward`` (plain Service backends), ``mcp`` (MCP backends),
``accesslog``, ``metrics``, ``tracing``, ``state`` (what handlers share), ``config`` and
``context`` (contracts).
"""

from .server import ProxyWorkload

__all__ = ["ProxyWorkload"]
