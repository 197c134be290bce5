"""Pods in the sandbox: images it can run, events, and Pods replaced as a ReplicaSet would."""

from __future__ import annotations

import json
import secrets

from labtest import poll


def test_unknown_image_is_explained_in_describe(kubectl) -> None:  # type: ignore[no-untyped-def]
    name = f"mystery-{secrets.token_hex(2)}"
    kubectl("create", "deployment", name, "--image=registry.example/unknown:1.0", "-n", "default")
    try:
        poll(lambda: "Failed to pull image" in kubectl("describe", "pods", "-l", f"app={name}", "-n", "default"),
             what="the Failed event")
        out = kubectl("describe", "pods", "-l", f"app={name}", "-n", "default")
        assert "ImagePullBackOff" in out
        assert "ghcr.io/peterj/mcp-website-fetcher" in out
        table = kubectl("get", "pods", "-l", f"app={name}", "-n", "default")
        assert "ImagePullBackOff" in table and "0/1" in table
    finally:
        kubectl("delete", "deployment", name, "-n", "default")


def test_a_deleted_pod_is_replaced(kubectl) -> None:  # type: ignore[no-untyped-def]
    pods = json.loads(kubectl("get", "pods", "-n", "agwlab-system", "-l", "app.kubernetes.io/name=lab-website",
                              "-o", "json"))["items"]
    old = pods[0]["metadata"]["name"]
    kubectl("delete", "pod", old, "-n", "agwlab-system")
    new = poll(lambda: [p for p in json.loads(kubectl("get", "pods", "-n", "agwlab-system", "-l",
                                                      "app.kubernetes.io/name=lab-website", "-o", "json"))["items"]
                        if p["metadata"]["name"] != old], what="a replacement Pod")
    kubectl("wait", "--for=condition=Ready", f"pod/{new[0]['metadata']['name']}", "-n", "agwlab-system",
            "--timeout=20s")
    events = kubectl("get", "events", "-n", "agwlab-system", "--field-selector",
                     f"involvedObject.name={new[0]['metadata']['name']}")
    assert "Started" in events and "Scheduled" in events
    describe = kubectl("describe", "rs", "-n", "agwlab-system", "-l", "app.kubernetes.io/name=lab-website")
    assert "SuccessfulCreate" in describe
