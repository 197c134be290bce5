"""kubectl's typed clients post Kubernetes protobuf; the server reads it like JSON."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest

from agwlab.sandbox.apiserver.protobuf import decode
from agwlab.sandbox.store import BadRequest


def kubectl(server, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kubeconfig.parent)}
    proc = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_kubectl_create_variants(apiserver, kubectl_bin):
    store = apiserver.store
    kubectl(apiserver, "create", "namespace", "lab")
    assert store.get("", "namespaces", None, "lab")["status"] == {"phase": "Active"}
    kubectl(apiserver, "create", "secret", "generic", "key", "-n", "lab", "--from-literal=Authorization=sk-ant-1")
    secret = store.get("", "secrets", "lab", "key")
    assert base64.b64decode(secret["data"]["Authorization"]) == b"sk-ant-1" and secret["type"] == "Opaque"
    kubectl(apiserver, "create", "configmap", "cfg", "-n", "lab", "--from-literal=a=1", "--from-literal=b=")
    assert store.get("", "configmaps", "lab", "cfg")["data"] == {"a": "1", "b": ""}
    kubectl(apiserver, "create", "deployment", "web", "-n", "lab", "--image=nginx:1.27", "--replicas=0", "--port=80")
    dep = store.get("apps", "deployments", "lab", "web")
    assert dep["spec"]["replicas"] == 0
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}] and container["image"] == "nginx:1.27"
    assert "creationTimestamp" not in dep["spec"]["template"]["metadata"]
    kubectl(apiserver, "create", "service", "clusterip", "web", "-n", "lab", "--tcp=80:8080")
    svc = store.get("", "services", "lab", "web")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    kubectl(apiserver, "expose", "deployment", "web", "-n", "lab", "--name=web2", "--port=81", "--target-port=80")
    assert store.get("", "services", "lab", "web2")["spec"]["selector"] == {"app": "web"}


def test_not_protobuf_is_refused():
    with pytest.raises(BadRequest):
        decode(b'{"kind": "Namespace"}')
