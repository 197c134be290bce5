"""What an LLM provider is to the proxy: one class per provider, registered by name.

The AI handler (``proxy/ai.py``) does the same steps for every provider: resolve the
route type, parse the body, pick the model, call the upstream, answer. What differs per
provider lives in a :class:`Provider`: its default path, how the backend's key is sent,
and how chat-completions bodies, responses, streams and errors translate to and from the
provider's native API. Adding a provider is one new module with a subclass registered in
``providers/__init__.py``.

Example:
    >>> from agwlab.sandbox.proxy.providers import provider_for
    >>> provider_for("anthropic").path("Completions")
    '/v1/messages'
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ..context import LLMCall

__all__ = ["Provider", "compact_json"]


def compact_json(value: Any) -> bytes:
    """JSON as agentgateway (serde) writes it: no spaces, UTF-8 kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Provider:
    """The provider-specific half of an LLM call (subclass and override).

    Attributes:
        name: ``gen_ai.provider.name`` in the access log and ``gen_ai_system`` in metrics.
        native_route: the route type whose bodies the provider speaks as is
            (``Completions`` for OpenAI, ``Messages`` for Anthropic).
    """

    name = "unknown"
    native_route = "Completions"
    base_path = "/v1"
    paths: ClassVar[dict[str, str]] = {"Completions": "/chat/completions"}

    def path(self, route_type: str) -> str:
        """The default upstream path for a route type."""
        return self.base_path + self.paths.get(route_type, self.paths["Completions"])

    def translates(self, route_type: str) -> bool:
        """Whether a route type's bodies need translating for this provider."""
        return route_type == "Completions" and self.native_route != "Completions"

    def set_auth(self, headers: dict[str, str], key: str, explicit_location: bool) -> None:
        """Put the backend's key into the upstream headers (default: ``Authorization: Bearer``)."""
        headers.pop("x-api-key", None)
        headers["authorization"] = f"Bearer {key}"

    def extra_headers(self) -> dict[str, str]:
        """Headers every upstream request carries (e.g. an API version)."""
        return {}

    def translate_request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """A chat-completions body in the provider's native shape."""
        return {**body, "model": model}

    def translate_response(self, data: dict[str, Any]) -> dict[str, Any]:
        """A native response as a ``chat.completion``."""
        return data

    def translate_error(self, body: bytes) -> bytes:
        """A native error body as the client's API shape."""
        return body

    def native_error(self, status: int, body: bytes) -> bytes:
        """An error body on the provider's native route (default: as it came)."""
        return body

    def translate_stream(self, lines: AsyncIterator[str], call: LLMCall) -> AsyncIterator[bytes]:
        """A native SSE stream (line by line) as ``chat.completion.chunk`` events."""
        raise NotImplementedError

    def read_usage(self, call: LLMCall, data: dict[str, Any]) -> None:
        """Note the response model and token counts of a native (untranslated) response."""
        call.response_model = data.get("model") or call.response_model
        usage = data.get("usage") or {}
        for src, kind in (("prompt_tokens", "input"), ("completion_tokens", "output"),
                          ("input_tokens", "input"), ("output_tokens", "output")):
            if isinstance(usage.get(src), int):
                call.tokens[kind] = usage[src]

    def read_stream_event(self, call: LLMCall, event: dict[str, Any]) -> None:
        """Note usage from one event of a native stream passed through as is."""
        if event.get("usage"):
            self.read_usage(call, event)
        elif event.get("model"):
            call.response_model = event["model"]
