"""A learner's path through the notebooks, each in a fresh kernel as JupyterLab runs them: the
tutorial's own kubectl steps first (as a learner following the original text does), then
notebooks 03, 04 and 99 pass, and 99 leaves nothing of the lab behind.

(A key typed once into 01's key box and used by 02-04 without re-applying the Secret is checked
by the full run in ``test_notebooks.py``.)
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labtest import DATA

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
    yield lab
    cleanup(lab)  # should a notebook stop half-way, leave the session's sandbox as later tests expect it


def _run(name: str) -> str:
    """Run a notebook in a fresh kernel; return the text of its outputs."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return "\n".join(json.dumps(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code")


def _secret(lab) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(the key in the lab's Secret, its resourceVersion)."""
    from agwlab import kube

    obj = kube.get(lab, "Secret", lab.names.secret, lab.names.namespace)
    value = base64.b64decode(obj["data"]["Authorization"]).decode()
    return value, obj["metadata"]["resourceVersion"]


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
