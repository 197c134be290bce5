"""A local port forwarded to a Pod port, with the ``kubernetes`` client (no kubectl needed).

What ``kubectl port-forward deploy/NAME LOCAL:REMOTE`` does: listen on ``127.0.0.1`` (a free
port by default) and, for each local connection, open a forward to one running Pod the
selector matches. The Pod is looked up again when the one in use goes away, so the forward
follows a rollout or a re-created Gateway.

Example:
    >>> fwd = PortForward(lab.api_client, "agentgateway-system",               # doctest: +SKIP
    ...                   "gateway.networking.k8s.io/gateway-name=agentgateway-route", 8080)
    >>> fwd.url                                                                # doctest: +SKIP
    'http://127.0.0.1:40312'
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward as _portforward
from urllib3.exceptions import HTTPError as Urllib3Error

__all__ = ["PortForward", "PortForwardError"]


class PortForwardError(RuntimeError):
    """No Pod to forward to, or the API server refused the forward; the message says which."""


class PortForward:
    """Forward ``127.0.0.1:<local_port>`` to ``remote_port`` of a Pod matching ``selector``.

    Args:
        api_client: the lab's ``ApiClient`` (its configuration is shared, not the client:
            the ``kubernetes`` stream helpers patch the client they use while connecting).
        namespace: the Pods' namespace.
        selector: a label selector, e.g. ``app=x``.
        remote_port: the container port.
        local_port: 0 (default) for a free one.
    """

    def __init__(self, api_client: Any, namespace: str, selector: str, remote_port: int, *,
                 local_port: int = 0) -> None:
        self.namespace = namespace
        self.selector = selector
        self.remote_port = remote_port
        self._core = k8s.CoreV1Api(k8s.ApiClient(api_client.configuration))
        self._lock = threading.Lock()
        self._pod: str | None = None
        self._closed = False
        self._server = socket.create_server(("127.0.0.1", local_port))
        self.local_port: int = self._server.getsockname()[1]
        self.connections = 0
        self.last_error = ""
        threading.Thread(target=self._accept, name=f"port-forward {self.local_port}", daemon=True).start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<local port>``."""
        return f"http://127.0.0.1:{self.local_port}"

    @property
    def pod(self) -> str | None:
        """The Pod the last connection went to."""
        return self._pod

    def find_pod(self) -> str:
        """A running, ready Pod for the selector (the current one while it still runs).

        Raises:
            PortForwardError: none runs.
        """
        pods = self._core.list_namespaced_pod(self.namespace, label_selector=self.selector).items

        def usable(p: Any) -> bool:
            ready = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
            return p.status.phase == "Running" and ready and p.metadata.deletion_timestamp is None

        def name(p: k8s.V1Pod) -> str:
            return str(p.metadata.name) if p.metadata else ""

        def created(p: k8s.V1Pod) -> datetime:
            stamp = p.metadata.creation_timestamp if p.metadata else None
            return stamp if isinstance(stamp, datetime) else datetime.min.replace(tzinfo=UTC)

        running = [p for p in pods if usable(p)]
        if not running:
            phases = ", ".join(f"{name(p)}: {p.status.phase if p.status else None}" for p in pods) or "no Pods"
            raise PortForwardError(
                f"no running Pod matches {self.selector} in {self.namespace} ({phases}): "
                "wait until it is Running (kubectl get pods -n " + self.namespace + ")")
        if self._pod is not None and self._pod in [name(p) for p in running]:
            return self._pod
        return name(max(running, key=created))

    def _open(self) -> Any:
        with self._lock:
            pod = self.find_pod()
            self._pod = pod
            try:
                return _portforward(self._core.connect_get_namespaced_pod_portforward, pod, self.namespace,
                                    ports=str(self.remote_port))
            except (ApiException, OSError) as exc:
                self._pod = None
                raise PortForwardError(f"the API server refused to forward to pod {pod}: {exc}") from None

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, local: socket.socket) -> None:
        self.connections += 1
        try:
            forward = self._open()
        except (PortForwardError, ApiException, Urllib3Error, OSError) as exc:
            self.last_error = str(exc)
            local.close()
            return
        remote = forward.socket(self.remote_port)
        remote.setblocking(True)

        def pipe(src: Any, dst: Any) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(remote, local), daemon=True)
        back.start()
        pipe(local, remote)
        back.join(timeout=300)
        error = forward.error(self.remote_port)
        if error:
            self.last_error = error
            self._pod = None  # look the Pod up again next time
        for s in (local, remote):
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        """Stop listening (connections in flight finish)."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()

    def __repr__(self) -> str:
        return (f"PortForward({self.url} -> {self.namespace}/{self._pod or '?'}:{self.remote_port}, "
                f"selector {self.selector!r})")
