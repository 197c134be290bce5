"""``services/proxy``: an HTTP request to a Service, sent through the API server.

``/api/v1/namespaces/NS/services/[http:|https:]NAME[:PORT]/proxy/PATH`` forwards the request
(method, query, body, headers but the caller's credentials) to one ready endpoint of the
Service: a ready Pod its selector matches, or for a Service without a selector, the
addresses of its Endpoints object. ``PORT`` is a Service port's number or name (default:
its only port).

Example:
    >>> split_name("https:prometheus-operated:web")
    ('https', 'prometheus-operated', 'web')
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["proxy_to_service", "split_name"]

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "authorization", "content-length"}
_client: httpx.AsyncClient | None = None


def split_name(value: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` -> ``(scheme, name, port)``."""
    parts = value.split(":")
    if len(parts) == 3:
        return parts[0] or "http", parts[1], parts[2]
    if len(parts) == 2 and parts[0] in ("http", "https"):
        return parts[0], parts[1], ""
    if len(parts) == 2:
        return "http", parts[0], parts[1]
    return "http", value, ""


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _endpoints(store: Any, svc: dict[str, Any], port: dict[str, Any]) -> list[tuple[str, int]]:
    ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    selector = (svc.get("spec") or {}).get("selector")
    target = port.get("targetPort", port.get("port"))
    if selector:
        out = []
        for pod in store.list("", "pods", ns):
            if not _labels_match(selector, (pod.get("metadata") or {}).get("labels") or {}) or not _ready(pod):
                continue
            number = target if isinstance(target, int) else None
            if isinstance(target, str):
                number = int(target) if target.isdigit() else next(
                    (int(cp["containerPort"]) for c in (pod.get("spec") or {}).get("containers") or []
                     for cp in c.get("ports") or [] if cp.get("name") == target), None)
            ip = (pod.get("status") or {}).get("podIP")
            if ip and number:
                out.append((ip, number))
        return out
    eps = store.get("", "endpoints", ns, name) or {}
    out = []
    for subset in eps.get("subsets") or []:
        ports = subset.get("ports") or []
        chosen = next((p for p in ports if p.get("name") == port.get("name")), ports[0] if len(ports) == 1 else None)
        if chosen is None:
            continue
        out += [(a["ip"], int(chosen["port"])) for a in subset.get("addresses") or [] if a.get("ip")]
    return out


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> Response:
    import json

    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code, **({"details": details} if details else {})}
    return Response(json.dumps(body), status_code=code, media_type="application/json")


async def proxy_to_service(request: Request, store: Any, namespace: str, target: str, path: str) -> Response:
    """Forward ``request`` to the Service named by ``target`` (``[scheme:]name[:port]``)."""
    global _client
    scheme, name, port_ref = split_name(target)
    svc = store.get("", "services", namespace, name)
    if svc is None:
        return _status(404, "NotFound", f'services "{name}" not found', {"name": name, "kind": "services"})
    ports = (svc.get("spec") or {}).get("ports") or []
    if port_ref:
        port = next((p for p in ports if str(p.get("port")) == port_ref or p.get("name") == port_ref), None)
    else:
        port = ports[0] if len(ports) == 1 else None
    if port is None:
        return _status(503, "ServiceUnavailable",
                       f'no endpoints available for service "{target}": name the port as {name}:<port>'
                       if not port_ref else f'no port {port_ref} on service "{name}"')
    endpoints = _endpoints(store, svc, port)
    if not endpoints:
        return _status(503, "ServiceUnavailable", f'no endpoints available for service "{target}"')
    ip, number = endpoints[0]
    if _client is None:
        _client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False, verify=False)
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
    url = f"{scheme}://{ip}:{number}/{path.lstrip('/')}"
    try:
        upstream = await _client.request(request.method, url, params=list(request.query_params.multi_items()),
                                         headers=headers, content=await request.body())
    except httpx.HTTPError as exc:
        return _status(503, "ServiceUnavailable", f"error trying to reach service: {exc}")
    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP | {"content-encoding"}}
    return Response(upstream.content, status_code=upstream.status_code, headers=out_headers)
