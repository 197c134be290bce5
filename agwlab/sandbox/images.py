"""The container images the sandbox can run, and what runs for each.

A Kubernetes node pulls an image and runs it; the sandbox instead maps the image
reference to a workload written in Python. Any tag (or digest) of a known repository
is accepted. An unknown image leaves its Pod waiting in ``ImagePullBackOff`` with a
message listing these images.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN_IMAGES", "KnownImage", "lookup", "repository_of"]


@dataclass(frozen=True)
class KnownImage:
    repository: str        # e.g. "ghcr.io/peterj/mcp-website-fetcher"
    workload: str          # "module:Class"
    what: str

    def create(self) -> Any:
        module, _, cls = self.workload.partition(":")
        return getattr(importlib.import_module(module), cls)()


KNOWN_IMAGES: tuple[KnownImage, ...] = (
    KnownImage("cr.agentgateway.dev/agentgateway", "agwlab.sandbox.proxy:ProxyWorkload",
               "agentgateway's data plane (one per Gateway)"),
    KnownImage("cr.agentgateway.dev/controller", "agwlab.sandbox.controller.pod:ControllerPodWorkload",
               "agentgateway's controller"),
    KnownImage("otel/opentelemetry-collector-contrib", "agwlab.sandbox.workloads.collector:CollectorWorkload",
               "an OpenTelemetry collector with the OTLP receiver and the debug exporter"),
    KnownImage("otel/opentelemetry-collector", "agwlab.sandbox.workloads.collector:CollectorWorkload",
               "an OpenTelemetry collector with the OTLP receiver and the debug exporter"),
    KnownImage("ghcr.io/peterj/mcp-website-fetcher", "agwlab.sandbox.workloads.website_fetcher_pod:WebsiteFetcherWorkload",
               "the MCP website fetcher (SSE on :8000)"),
    KnownImage("python", "agwlab.sandbox.workloads.python_image:PythonImageWorkload",
               "the stock Python image, running a script mounted from a ConfigMap with the sandbox's Python"),
    KnownImage("agwlab.local/anthropic-standin", "agwlab.sandbox.workloads.anthropic_standin:AnthropicStandinWorkload",
               "the sandbox's stand-in for the Anthropic Messages API"),
    KnownImage("agwlab.local/lab-website", "agwlab.sandbox.workloads.lab_website:LabWebsiteWorkload",
               "a small website about the lab (:8080)"),
)


def repository_of(image: str) -> str:
    """``ghcr.io/x/y:main`` -> ``ghcr.io/x/y`` (tag or digest dropped, ``docker.io/`` folded)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    return ref


def lookup(image: str) -> KnownImage | None:
    """The known image for an image reference, or None."""
    repo = repository_of(image)
    for known in KNOWN_IMAGES:
        if known.repository == repo:
            return known
    return None
