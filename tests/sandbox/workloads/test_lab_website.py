"""The lab website workload: static pages on the Pod IP, one access-log line per request."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from agwlab.sandbox.workloads.lab_website import LabWebsiteWorkload, site_pages
from harness import free_port, make_pod


def test_site_has_the_pages() -> None:
    pages = site_pages()
    for path in ("/", "/index.html", "/gateway.html", "/mcp.html", "/lab.html", "/style.css"):
        assert path in pages
    assert pages["/"] == pages["/index.html"]
    assert pages["/gateway.html"][1].startswith("text/html")


def test_serves_pages_and_logs_requests(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        pod = make_pod(tmp_path, "lab-website-0", port=port, namespace="agwlab-system", image="lab-website")
        site = LabWebsiteWorkload()
        await site.start(pod)
        try:
            assert site.alive()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                home = await client.get("/", headers={"User-Agent": "lab-test"})
                assert home.status_code == 200 and "text/html" in home.headers["content-type"]
                assert "What an MCP server is" in home.text
                missing = await client.get("/nope")
                assert missing.status_code == 404
                posted = await client.post("/")
                assert posted.status_code == 405
        finally:
            await site.stop()
        assert not site.alive()
        lines = pod.log.path.read_text().splitlines()
        assert any('"GET / HTTP/1.1" 200' in line and '"lab-test"' in line for line in lines)
        assert any('"GET /nope HTTP/1.1" 404' in line for line in lines)

    asyncio.run(scenario())


def test_start_fails_when_the_port_is_taken(tmp_path: Path) -> None:
    from agwlab.sandbox.runtime import WorkloadFailed

    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            pod = make_pod(tmp_path, "x", port=port, namespace="agwlab-system", image="lab-website")
            site = LabWebsiteWorkload()
            with pytest.raises(WorkloadFailed, match=str(port)):
                await site.start(pod)

    asyncio.run(scenario())
