"""Container probes as the kubelet runs them: ``tcpSocket`` and ``httpGet`` against the Pod's IP.

A probe succeeds when a TCP connection opens (``tcpSocket``) or when ``GET`` answers with a
status from 200 to 399 (``httpGet``), within ``timeoutSeconds``. A failed probe is described
in the words a kubelet uses in its ``Unhealthy`` Events, e.g. ``dial tcp 10.0.0.5:8001: connect:
connection refused`` or ``HTTP probe failed with statuscode: 503``.

Example:
    >>> Probe.parse({"tcpSocket": {"port": "mcp"}, "periodSeconds": 2}, [{"name": "mcp", "containerPort": 8000}])
    Probe(kind='tcp', port=8000, path='', scheme='http', headers=(), initial_delay=0.0, period=2.0, timeout=1.0, success_threshold=1, failure_threshold=3)
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

__all__ = ["Probe", "run_probe"]

_USER_AGENT = "kube-probe/1.33"


@dataclass(frozen=True)
class Probe:
    """One container probe, with Kubernetes' defaults filled in."""

    kind: str  # "tcp" or "http"
    port: int
    path: str
    scheme: str
    headers: tuple[tuple[str, str], ...]
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def parse(cls, spec: dict[str, Any], ports: list[dict[str, Any]]) -> Probe:
        """The probe ``spec`` (a container's ``readinessProbe``) describes.

        Raises:
            ValueError: a probe the sandbox cannot run (``exec``, ``grpc``) or a named port the
                container does not declare; the message says which.
        """
        handlers = [(kind, spec[key]) for kind, key in (("tcp", "tcpSocket"), ("http", "httpGet"))
                    if isinstance(spec.get(key), dict)]
        if not handlers:
            other = next((k for k in ("exec", "grpc") if k in spec), "no handler")
            raise ValueError(f"the sandbox runs tcpSocket and httpGet probes, not {other}")
        kind, action = handlers[0]
        port = action.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = next((p.get("containerPort") for p in ports if p.get("name") == port), None)
            if named is None:
                raise ValueError(f"unable to find port {port!r} among the container's ports")
            port = named
        headers = tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in action.get("httpHeaders") or [])
        return cls(
            kind=kind,
            port=int(port),
            path=str(action.get("path") or "/") if kind == "http" else "",
            scheme=str(action.get("scheme") or "HTTP").lower(),
            headers=headers,
            initial_delay=float(spec.get("initialDelaySeconds") or 0),
            period=float(spec.get("periodSeconds") or 10),
            timeout=float(spec.get("timeoutSeconds") or 1),
            success_threshold=int(spec.get("successThreshold") or 1),
            failure_threshold=int(spec.get("failureThreshold") or 3),
        )


def _dial_error(ip: str, port: int, error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"dial tcp {ip}:{port}: i/o timeout"
    if isinstance(error, ConnectionRefusedError):
        return f"dial tcp {ip}:{port}: connect: connection refused"
    return f"dial tcp {ip}:{port}: connect: {getattr(error, 'strerror', None) or error}"


async def run_probe(probe: Probe, ip: str) -> str | None:
    """Probe the container at ``ip`` once: ``None`` on success, else why it failed (a kubelet's words)."""
    ctx: ssl.SSLContext | None = None
    if probe.kind == "http" and probe.scheme == "https":  # the kubelet does not verify probe certificates
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    url = f'"{probe.scheme}://{ip}:{probe.port}{probe.path}"'
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, probe.port, ssl=ctx), probe.timeout)
    except (OSError, TimeoutError) as e:
        dial = _dial_error(ip, probe.port, e)
        return dial if probe.kind == "tcp" else f"Get {url}: {dial}"
    try:
        if probe.kind == "tcp":
            return None
        names = {k.lower() for k, _ in probe.headers}
        lines = [f"GET {probe.path} HTTP/1.1", f"Host: {ip}:{probe.port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (("User-Agent", _USER_AGENT), ("Accept", "*/*")) if k.lower() not in names]
        lines += [f"{k}: {v}" for k, v in probe.headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), probe.timeout)
        except TimeoutError:
            return f"Get {url}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        except OSError as e:
            return f"Get {url}: {e}"
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            return f"Get {url}: net/http: HTTP/1.x transport connection broken: malformed HTTP response"
        code = int(parts[1])
        return None if 200 <= code < 400 else f"HTTP probe failed with statuscode: {code}"
    finally:
        writer.close()
