"""A learner's path through the notebooks, each in a fresh kernel as JupyterLab runs them.

1. A key typed once into notebook 01's key box is the key 02, 03 and 04 use: their catch-up
   leaves the Secret alone (no environment variable, nothing typed again).
2. The tutorial's own kubectl steps first (as a learner following the original text does),
   then notebooks 03, 04 and 99 pass, and 99 leaves nothing of the lab behind.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from labtest import DATA
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# Shaped like an Anthropic key (the sandbox's stand-in accepts it); it must appear in no output.
TYPED = "sk-ant-api03-" + "TYPED-ONCE-in-the-key-box-".ljust(93, "5") + "AA"
TYPED_BODY = "TYPED-ONCE-in-the-key-box"

pytestmark = pytest.mark.notebooks


@pytest.fixture
def lab(sandbox, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The session's sandbox with nothing of the lab in it, and kernels without a key in their environment."""
    from agwlab import connect, secrets
    from agwlab.stages import cleanup

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("AGWLAB_STRICT", "1")
    monkeypatch.setenv("AGWLAB_TARGET", "sandbox")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    secrets.forget_entered_key()
    lab = connect()
    cleanup(lab)
    return lab


def _run(name: str, *, after_key_box: str | None = None) -> str:
    """Run a notebook in a fresh kernel; ``after_key_box`` is code run as if typed into the key box."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if after_key_box is not None:
        at = next(i for i, c in enumerate(nb.cells) if "widgets.api_key_box(lab)" in c.source)
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(after_key_box))
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return "\n".join(json.dumps(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code")


def _secret(lab) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(the key in the lab's Secret, its resourceVersion)."""
    from agwlab import kube

    obj = kube.get(lab, "Secret", lab.names.secret, lab.names.namespace)
    value = base64.b64decode(obj["data"]["Authorization"]).decode()
    return value, obj["metadata"]["resourceVersion"]


def test_a_key_typed_once_in_01_is_used_by_02_to_04_in_fresh_kernels(lab) -> None:  # type: ignore[no-untyped-def]
    out = _run("01-claude-llm-connection.ipynb",
               after_key_box=f"from agwlab import secrets\nsecrets.accept_key({TYPED!r})")
    assert "Using the key entered in the key box" in out
    key, version = _secret(lab)
    assert key == TYPED
    for name in ("02-traces.ipynb", "03-mcp-server.ipynb", "04-mcp-metrics.ipynb"):
        out = _run(name)
        assert TYPED not in out and TYPED_BODY not in out, f"{name} showed the key"
        assert _secret(lab) == (TYPED, version), f"{name} re-applied the Secret from a kernel without a key"


def _tutorial_kubectl_steps(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """The tutorial's kubectl lines as typed, with ``export ANTHROPIC_API_KEY=<key>`` before them."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    llm = (DATA / "seed_llm.yaml").read_text().replace("${ANTHROPIC_API_KEY}", TYPED)
    subprocess.run(["kubectl", "apply", "-f", "-"], input=llm, text=True, env=env, check=True, capture_output=True)
    # its MCP backend has spec.type, which the API server refuses; the rest is applied
    return subprocess.run(["kubectl", "apply", "-f", str(DATA / "seed_mcp.yaml")], text=True, env=env,
                          capture_output=True, check=False)


def test_after_the_tutorials_kubectl_steps_03_04_and_99_pass(lab, sandbox) -> None:  # type: ignore[no-untyped-def]
    from agwlab import kube
    from agwlab.stages import lab_objects, leftovers, whose

    mcp = _tutorial_kubectl_steps(sandbox.kubeconfig)
    assert 'unknown field "spec.type"' in mcp.stderr, mcp.stderr
    _run("03-mcp-server.ipynb")
    ports = kube.get(lab, "Service", "mcp-website-fetcher", "default")["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [(80, 8000)]  # one port 80, merged by port
    assert _secret(lab)[0] == TYPED  # the key the learner exported stays the key in use
    _run("04-mcp-metrics.ipynb")
    out = _run("99-cleanup.ipynb")
    assert "deleted (applied with kubectl, as the tutorial's steps do)" in out
    assert TYPED not in out and TYPED_BODY not in out
    assert leftovers(lab) == []
    for kind, name, namespace in lab_objects(lab.names):
        obj = kube.get(lab, kind, name, namespace, missing_ok=True)
        if obj is not None:  # only what the sandbox installed itself (the collector, its namespace) stays
            mine, why = whose(obj, kind)
            assert not mine, f"{kind} {namespace}/{name} is left ({why})"
