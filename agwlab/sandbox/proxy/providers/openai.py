"""OpenAI: chat completions are its native API, so bodies pass through unchanged."""

from __future__ import annotations

from typing import ClassVar

from .base import Provider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    """``ai.provider.openai``: ``/v1/chat/completions`` with ``Authorization: Bearer``."""

    name = "openai"
    native_route = "Completions"
    paths: ClassVar[dict[str, str]] = {"Completions": "/chat/completions", "Models": "/models"}
