"""LLM providers the sandbox's proxy speaks to, by ``AgentgatewayBackend`` provider name.

Example:
    >>> provider_for("openai").name
    'openai'
"""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .base import Provider
from .openai import OpenAIProvider

__all__ = ["PROVIDERS", "Provider", "provider_for"]

PROVIDERS: dict[str, Provider] = {p.name: p for p in (AnthropicProvider(), OpenAIProvider())}


def provider_for(name: str) -> Provider:
    """The provider registered under ``name``.

    Raises:
        KeyError: no such provider (the controller only makes backends for these).
    """
    return PROVIDERS[name]
