"""``python -m agwlab manifests``: what a stage applies, for people who prefer kubectl."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

KEY = "sk-ant-api03-" + "C" * 90 + "AA"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agwlab", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_manifests_print_yaml_kubectl_can_apply(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = run("manifests", "llm", env={"ANTHROPIC_API_KEY": KEY})
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [d["kind"] for d in docs] == ["Gateway", "Secret", "AgentgatewayBackend", "HTTPRoute"]
    assert docs[1]["stringData"]["Authorization"] == KEY
    dry = kubectl("apply", "--dry-run=server", "-f", "-", input=out.stdout)
    assert "agentgatewaybackend.agentgateway.dev/anthropic" in dry


def test_manifests_without_a_key_leave_the_shell_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([sys.executable, "-m", "agwlab", "manifests", "llm"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0
    assert "$ANTHROPIC_API_KEY" in out.stdout


def test_each_stage_prints_valid_yaml() -> None:
    for stage, kinds in {"tracing": {"AgentgatewayPolicy"},
                         "mcp": {"Deployment", "Service", "AgentgatewayBackend", "HTTPRoute"}}.items():
        out = run("manifests", stage)
        assert out.returncode == 0, out.stderr
        assert kinds <= {d["kind"] for d in yaml.safe_load_all(out.stdout) if d}


def test_an_unknown_stage_is_refused_with_the_choices() -> None:
    out = run("manifests", "everything")
    assert out.returncode == 2
    assert "llm" in out.stderr and "tracing" in out.stderr and "mcp" in out.stderr
