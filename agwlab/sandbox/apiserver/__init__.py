"""The sandbox's Kubernetes API server: enough of the API for kubectl and the official client.

:func:`create_app` builds the ASGI app (serve it over TLS: client-go sends bearer tokens
over HTTPS only). The parts:

* ``app``: routing, CRUD, patch, server-side apply, status/scale/log subresources, watch
* ``validation`` / ``defaults``: what the server checks and fills in before storing
* ``discovery``: legacy and aggregated discovery, OpenAPI v3 (and an empty v2)
* ``tables``: ``kubectl get`` columns; ``patch``: the three patch formats
* ``fieldsets``: managedFields and the apply merge; ``watch``: the event fan-out
* ``protobuf``: decoding the Kubernetes protobuf kubectl's typed clients send
* ``crds``: the CustomResourceDefinition objects; ``tls``: the CA and serving certificate
* ``users`` / ``tokens``: who a request comes from (the admin token, ServiceAccount tokens)
* ``rbac`` / ``rbac_validation`` / ``reviews``: RBAC authorization of every request, the
  checks on RBAC objects, and ``kubectl auth can-i`` / ``whoami``

``python -m agwlab.sandbox.apiserver --root DIR`` runs it alone.
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
