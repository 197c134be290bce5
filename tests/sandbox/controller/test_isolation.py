"""One bad object never stops the controller: it gets a Warning Event and is skipped until it
changes; everything else keeps reconciling.

The bad object is written to the store directly, as a store file from an older sandbox (before
the API server refused it) would hold it; the controller, store and kubelet are the real ones.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from agwlab.sandbox.cluster import Cluster
from agwlab.sandbox.controller import Controller
from agwlab.sandbox.kubelet import Kubelet
from agwlab.sandbox.network import AddressBlock
from agwlab.sandbox.paths import SandboxPaths
from agwlab.sandbox.store import Store

KEY = "sk-ant-api03-" + "k" * 92  # not base64: Python and Go refuse it (padding)


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "lab"},
            "type": "Opaque", "data": data}


def _backend(name: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
            "metadata": {"name": name, "namespace": "lab"},
            "spec": {"ai": {"provider": {"anthropic": {"model": "claude-sonnet-4-5-20250929"}}},
                     "policies": {"auth": {"secretRef": {"name": secret}}}}}


def _accepted(store: Store, name: str) -> dict[str, Any] | None:
    obj = store.get("agentgateway.dev", "agentgatewaybackends", "lab", name) or {}
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Accepted"), None)


def test_a_secret_that_is_not_base64_is_set_aside_and_the_rest_reconciles(tmp_path: Path) -> None:
    paths = SandboxPaths(tmp_path / "sandbox")
    paths.ensure()
    store = Store(paths.store)

    async def scenario() -> None:
        cluster = Cluster(paths)
        block = AddressBlock(201)
        kubelet = Kubelet(store, cluster, paths, block)
        controller = Controller(store, cluster, kubelet, block)
        store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}})
        store.create(_secret("pasted", {"Authorization": KEY}))  # the key under data:, not stringData:
        store.create(_secret("good", {"Authorization": base64.b64encode(KEY.encode()).decode()}))
        store.create(_backend("broken", "pasted"))
        store.create(_backend("fine", "good"))

        controller.reconcile_isolating()  # the pass completes

        assert (_accepted(store, "fine") or {}).get("status") == "True"
        broken = _accepted(store, "broken") or {}
        assert broken.get("status") == "False" and "pasted" in broken.get("message", ""), broken
        events = [e for e in store.list("", "events", "lab")
                  if e["involvedObject"]["name"] == "pasted" and e["reason"] == "ReconcileFailed"]
        assert len(events) == 1 and events[0]["type"] == "Warning", events
        assert KEY not in events[0]["message"] and "kubectl edit" in events[0]["message"]

        # later passes keep going (no new Event for the same bad version) ...
        controller.reconcile_isolating()
        store.create(_backend("later", "good"))
        controller.reconcile_isolating()
        assert (_accepted(store, "later") or {}).get("status") == "True"
        assert len([e for e in store.list("", "events", "lab") if e["reason"] == "ReconcileFailed"]) == 1

        # ... and once the Secret is fixed, it is used again
        fixed = store.get("", "secrets", "lab", "pasted")
        fixed["data"] = {"Authorization": base64.b64encode(KEY.encode()).decode()}
        store.update(fixed)
        controller.reconcile_isolating()
        assert (_accepted(store, "broken") or {}).get("status") == "True"
        await kubelet.close()

    try:
        asyncio.run(scenario())
    finally:
        store.close()
