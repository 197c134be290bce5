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
    # printed text ends up in terminals, logs and kubectl's last-applied annotation: never the key
    assert docs[1]["stringData"]["Authorization"] == "$ANTHROPIC_API_KEY"
    assert KEY not in out.stdout + out.stderr and "--with-key" in out.stderr
    dry = kubectl("apply", "--dry-run=server", "-f", "-", input=out.stdout)
    assert "agentgatewaybackend.agentgateway.dev/anthropic" in dry


def test_manifests_with_key_go_to_a_private_file_only(tmp_path, kubectl) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "llm.yaml"
    target.write_text("old")
    target.chmod(0o644)  # an existing file is narrowed too
    out = run("manifests", "llm", "--with-key", str(target), env={"ANTHROPIC_API_KEY": f"Bearer {KEY}"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and KEY not in out.stderr and "--server-side" in out.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    docs = [d for d in yaml.safe_load_all(target.read_text()) if d]
    assert docs[1]["stringData"]["Authorization"] == KEY
    assert "secret/anthropic-secret serverside-applied" in kubectl("apply", "--dry-run=server", "--server-side", "-f", str(target))


def test_manifests_with_key_but_no_key_say_what_to_do(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([sys.executable, "-m", "agwlab", "manifests", "llm", "--with-key", str(tmp_path / "x")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "ANTHROPIC_API_KEY" in out.stderr and "export" in out.stderr
    assert not (tmp_path / "x").exists()


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
