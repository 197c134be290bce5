"""pods/portforward and services/proxy on the running sandbox, with kubectl and the Python client."""

from __future__ import annotations

import os
import socket
import subprocess

import httpx
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from labtest import poll

SITE_NS = "agwlab-system"


def _site_pod(core_v1) -> str:  # type: ignore[no-untyped-def]
    pods = core_v1.list_namespaced_pod(SITE_NS, label_selector="app.kubernetes.io/name=lab-website").items
    running = [p.metadata.name for p in pods if p.status.phase == "Running"]
    assert running, "the lab website Pod is not running"
    return running[0]


def _get_over(sock: socket.socket, path: str = "/") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n".encode())
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_python_client_forwards_to_a_pod_port(core_v1) -> None:  # type: ignore[no-untyped-def]
    pod = _site_pod(core_v1)
    pf = portforward(core_v1.connect_get_namespaced_pod_portforward, pod, SITE_NS, ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(10)
    reply = _get_over(sock)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b"<html" in reply.lower()
    assert pf.error(8080) is None


def test_python_client_hears_a_closed_port_on_the_error_channel(core_v1) -> None:  # type: ignore[no-untyped-def]
    pod = _site_pod(core_v1)
    pf = portforward(core_v1.connect_get_namespaced_pod_portforward, pod, SITE_NS, ports="8999")
    sock = pf.socket(8999)
    sock.settimeout(10)
    assert sock.recv(10) == b""  # the Pod side never opened
    error = poll(lambda: pf.error(8999), what="the port-forward error")
    assert "error forwarding port 8999" in error and "failed to connect" in error


def test_missing_pod_is_404(core_v1) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiException) as info:
        portforward(core_v1.connect_get_namespaced_pod_portforward, "no-such-pod", SITE_NS, ports="80")
    assert "404" in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("target", "remote"), [("deploy/lab-website", "8080"), ("svc/lab-website", "80")])
def test_kubectl_port_forward(sandbox, kubectl_bin: str, target: str, remote: str) -> None:  # type: ignore[no-untyped-def]
    local = _free_port()
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}
    proc = subprocess.Popen([kubectl_bin, "port-forward", "-n", SITE_NS, target, f"{local}:{remote}",
                             "--address", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # several connections through one forward: kubectl opens a stream pair for each
        for _ in range(3):
            r = poll(lambda: httpx.get(f"http://127.0.0.1:{local}/", timeout=5), what="kubectl's forward")
            assert r.status_code == 200 and "<html" in r.text.lower()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "Forwarding from 127.0.0.1" in out, (out, err)
    assert "error" not in err.lower(), err


def test_service_proxy_reaches_a_service(api_client) -> None:  # type: ignore[no-untyped-def]
    import ssl

    cfg = api_client.configuration
    headers = {"Authorization": cfg.get_api_key_with_prefix("BearerToken")}
    tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    with httpx.Client(verify=tls, headers=headers, timeout=10) as http:
        base = f"{cfg.host}/api/v1/namespaces/{SITE_NS}/services"
        page = http.get(f"{base}/lab-website:80/proxy/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        named = http.get(f"{base}/http:lab-website:http/proxy/")
        assert named.status_code == 200
        missing = http.get(f"{base}/nothing-here/proxy/")
        assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
        anonymous = httpx.get(f"{base}/lab-website:80/proxy/", verify=tls)
        assert anonymous.status_code == 401
