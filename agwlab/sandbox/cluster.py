"""Cluster-wide services the sandbox gives its workloads: DNS, config push, settings.

This is the sandbox's stand-in for cluster DNS plus kube-proxy (Service name -> ready
Pod endpoints) and for agentgateway's xDS channel (controller -> proxy).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .paths import SandboxPaths
from .runtime import ClusterServices, Endpoint

__all__ = ["Cluster", "split_service_host"]

CLUSTER_DOMAIN = "cluster.local"


def split_service_host(host: str, namespace: str | None) -> tuple[str, str] | None:
    """``svc[.ns[.svc[.cluster.local]]]`` -> ``(svc, ns)``, or None for other names.

    Example:
        >>> split_service_host("mcp-website-fetcher.default.svc.cluster.local", None)
        ('mcp-website-fetcher', 'default')
        >>> split_service_host("lab-website", "agwlab-system")
        ('lab-website', 'agwlab-system')
    """
    host = host.rstrip(".").lower()
    parts = host.split(".")
    if host.endswith(f".svc.{CLUSTER_DOMAIN}") and len(parts) == 5:
        return parts[0], parts[1]
    if host.endswith(".svc") and len(parts) == 3:
        return parts[0], parts[1]
    if len(parts) == 2 and not parts[1].isdigit():
        return parts[0], parts[1]
    if len(parts) == 1 and namespace and not host.isdigit():
        return parts[0], namespace
    return None


class Cluster(ClusterServices):
    """The in-process implementation of :class:`~agwlab.sandbox.runtime.ClusterServices`."""

    def __init__(self, paths: SandboxPaths) -> None:
        self._paths = paths
        self._configs: dict[str, Any] = {}
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {}
        # (svc, ns) -> {service port: [Endpoint]}
        self._services: dict[tuple[str, str], dict[int, list[Endpoint]]] = {}
        self._settings: dict[str, str] = {}

    # -- DNS -------------------------------------------------------------------------
    def resolve(self, host: str, port: int, *, namespace: str | None = None) -> list[Endpoint]:
        key = split_service_host(host, namespace)
        if key is None:
            return []
        return list(self._services.get(key, {}).get(int(port), []))

    def service_exists(self, host: str, *, namespace: str | None = None) -> bool:
        key = split_service_host(host, namespace)
        return key is not None and key in self._services

    def set_services(self, services: dict[tuple[str, str], dict[int, list[Endpoint]]]) -> None:
        """Replace the Service table (the controller calls this after each reconcile)."""
        if services == self._services:
            return
        self._services = services
        table: dict[str, dict[str, list[str]]] = {}
        for (svc, ns), ports in sorted(services.items()):
            table[f"{svc}.{ns}.svc.{CLUSTER_DOMAIN}"] = {
                str(p): [f"{e.ip}:{e.port}" for e in eps] for p, eps in sorted(ports.items())
            }
        tmp = self._paths.cluster_services.with_suffix(".tmp")
        tmp.write_text(json.dumps({"services": table}, indent=1), encoding="utf-8")
        os.replace(tmp, self._paths.cluster_services)

    # -- config push (xDS) -----------------------------------------------------------
    def subscribe_gateway(self, key: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._subscribers.setdefault(key, []).append(callback)
        if key in self._configs:
            callback(self._configs[key])

        def unsubscribe() -> None:
            subs = self._subscribers.get(key, [])
            if callback in subs:
                subs.remove(callback)

        return unsubscribe

    def publish(self, key: str, config: Any) -> None:
        """Push a new config for gateway ``ns/name`` to its proxies."""
        self._configs[key] = config
        for cb in list(self._subscribers.get(key, [])):
            cb(config)

    def republish(self) -> None:
        """Push every current config again (a proxy retries listener ports it could not
        bind, e.g. while the Pod it replaces still held them)."""
        for key, config in list(self._configs.items()):
            for cb in list(self._subscribers.get(key, [])):
                cb(config)

    def current(self, key: str) -> Any:
        return self._configs.get(key)

    def forget(self, key: str) -> None:
        self._configs.pop(key, None)

    # -- settings --------------------------------------------------------------------
    def setting(self, name: str, default: str | None = None) -> str | None:
        return self._settings.get(name, default)

    def set_settings(self, settings: dict[str, str]) -> None:
        self._settings = dict(settings)
