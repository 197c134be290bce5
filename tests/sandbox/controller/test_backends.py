"""AgentgatewayBackend translation: Secrets, MCP static and selector targets."""

from __future__ import annotations

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from labtest import (
    anthropic_backend_yaml,
    condition,
    http_route_yaml,
    poll,
    poll_object,
    secret_yaml,
    yaml_docs,
)

FETCHER = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: fetcher, image: "ghcr.io/peterj/mcp-website-fetcher:main"}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}, labels: {{mcp: "yes"}}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8000, appProtocol: "{app_protocol}"}}]
"""


def test_secret_key_and_bearer_prefix(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=yaml_docs(
        secret_yaml("custom-key", ns, {"token": f"Bearer sk-ant-api03-{'x' * 90}"}),
        anthropic_backend_yaml("custom", ns, "custom-key", key="token"),
        anthropic_backend_yaml("wrong-key-name", ns, "custom-key"),
    ))

    def accepted(name: str) -> dict:  # type: ignore[type-arg]
        backend = poll_object(kubectl, "agbe", name, ns, until=condition, what=f"{name} status")
        return condition(backend)  # type: ignore[return-value]

    assert accepted("custom")["status"] == "True"
    bad = accepted("wrong-key-name")
    assert bad["status"] == "False" and bad["reason"] == "TranslationError"
    assert "missing Authorization value" in bad["message"]


def _gateway_with_mcp(kubectl, ns: str, port: int, targets: str) -> str:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: mcpgw, namespace: {ns}}}
spec:
  gatewayClassName: agentgateway
  listeners: [{{name: http, protocol: HTTP, port: {port}}}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: tools, namespace: {ns}}}
spec:
  mcp:
{targets}
---
""" + http_route_yaml("mcp", ns, "mcpgw", prefix="/mcp", backend="tools"))
    kubectl("wait", "--for=condition=Programmed", "gateway/mcpgw", "-n", ns, "--timeout=20s")
    addr = kubectl("get", "gateway", "mcpgw", "-n", ns, "-o", "jsonpath={.status.addresses[0].value}")
    return f"http://{addr}:{port}/mcp"


async def _tools(url: str) -> list[str]:
    async with streamable_http_client(url) as (read, write, *_), ClientSession(read, write) as session:
        await session.initialize()
        return sorted(t.name for t in (await session.list_tools()).tools)


def _ready(url: str) -> bool:
    r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "probe", "version": "0"}}},
                   headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    return r.status_code == 200 and '"result"' in r.text


def test_selector_targets_use_app_protocol(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=FETCHER.format(name="one", ns=ns, app_protocol="agentgateway.dev/mcp-sse")
            + "---" + FETCHER.format(name="two", ns=ns, app_protocol="kgateway.dev/mcp-sse")
            + "---" + FETCHER.format(name="ignored", ns=ns, app_protocol="http"))
    url = _gateway_with_mcp(kubectl, ns, 8090, "    targets:\n    - name: by-label\n      selector: {services: {matchLabels: {mcp: \"yes\"}}}")
    kubectl("rollout", "status", "deploy/one", "-n", ns, "--timeout=30s")
    kubectl("rollout", "status", "deploy/two", "-n", ns, "--timeout=30s")
    poll(lambda: _ready(url), timeout=30, what="the MCP route")
    tools = poll(lambda: (lambda t: t if len(t) == 2 else None)(anyio.run(_tools, url)), timeout=30,
                 what="two selected targets")
    # two targets: names are prefixed with the target name <svc>-<port name>
    assert tools == ["one-http_fetch", "two-http_fetch"]


def test_static_backend_ref_target(kubectl, ns: str) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", "-", input=FETCHER.format(name="fetcher", ns=ns, app_protocol="http"))
    url = _gateway_with_mcp(kubectl, ns, 8091, "    targets:\n    - name: t\n      static: {backendRef: {name: fetcher}, port: 80, protocol: SSE}")
    kubectl("rollout", "status", "deploy/fetcher", "-n", ns, "--timeout=30s")
    poll(lambda: _ready(url), timeout=30, what="the MCP route")
    assert anyio.run(_tools, url) == ["fetch"]
