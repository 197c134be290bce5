"""The sandbox's Kubernetes API server: enough of the API for kubectl and the official client.

:func:`create_app` builds the ASGI app; the modules beside it hold the parts (discovery,
OpenAPI, tables, patches, validation and defaulting, watch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that the store can use the light helper modules of this package
    # without pulling in the web stack.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
