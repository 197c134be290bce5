"""Loopback addresses for one sandbox.

Each sandbox owns a 127.N.0.0/16 block (N chosen from its home directory, then kept in
``state.json``), so several sandboxes and other programs on the machine never clash,
and well-known ports (6443, 8080, 15020, …) can be used as they are in a cluster:

    127.N.0.1      the API server (:6443)
    127.N.0.2      Prometheus (:9090)
    127.N.0.254    an address nothing listens on (a Service with no endpoints)
    127.N.1.1 …    Pod IPs
    127.N.255.1 …  LoadBalancer ingress addresses
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AddressBlock", "choose_block", "free_port", "http_ok", "port_free"]


@dataclass(frozen=True)
class AddressBlock:
    """The 127.N.0.0/16 block of one sandbox."""

    n: int

    def _ip(self, c: int, d: int) -> str:
        return f"127.{self.n}.{c}.{d}"

    @property
    def apiserver(self) -> str:
        return self._ip(0, 1)

    @property
    def prometheus(self) -> str:
        return self._ip(0, 2)

    @property
    def blackhole(self) -> str:
        return self._ip(0, 254)

    def pod_ips(self) -> Iterable[str]:
        for c in range(1, 255):
            for d in range(1, 255):
                yield self._ip(c, d)

    def lb_ips(self) -> Iterable[str]:
        for d in range(1, 255):
            yield self._ip(255, d)

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(f"127.{self.n}.0.0/16")
        except ValueError:
            return False


def port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def choose_block(home: Path, *, apiserver_port: int = 6443) -> AddressBlock:
    """Pick a free 127.N.0.0/16 block for the sandbox in ``home``.

    N starts from a hash of the home path (so a home keeps its block across machines'
    restarts) and moves on while another program holds the API server's address.
    """
    start = int.from_bytes(hashlib.sha256(str(home).encode()).digest()[:2], "big") % 200 + 20
    for i in range(200):
        n = (start - 20 + i) % 200 + 20
        block = AddressBlock(n)
        if port_free(block.apiserver, apiserver_port):
            return block
    raise RuntimeError("no free 127.N.0.0/16 block for the sandbox: stop other sandboxes (python -m agwlab sandbox down)")


def free_port(host: str, preferred: int) -> int:
    """``preferred`` when it is free on ``host``, else a port the kernel picks."""
    if port_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_ok(url: str, *, timeout: float = 1.0, ca_file: str | None = None) -> bool:
    """True when ``GET url`` answers 200 (a readiness probe; stdlib only, so probing costs
    the sandbox no HTTP client import)."""
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
