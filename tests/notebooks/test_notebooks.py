"""Every notebook, run in order as a learner runs them, on a fresh sandbox of their own (nothing an
earlier test made can help them), with a canary API key that must never show.

The key reaches the kernels as learners give it: typed once into 01's key box (no environment
variable), after which 02-04 run in fresh kernels with no key at all and must use the Secret 01
made without re-applying it; from 05 on it is exported as ``ANTHROPIC_API_KEY``.

This is the suite's one sandbox-target pass over the notebooks; ``./lab test`` runs them once
more with nbmake as a learner on kind would (``tests/cluster_learner.py``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from agwlab.secrets import mask

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# Shaped like an Anthropic key so the sandbox's stand-in accepts it; it must appear in no output.
CANARY = "sk-ant-api03-" + "CANARY-must-never-be-shown-".ljust(93, "7") + "AA"
CANARY_BODY = "CANARY-must-never-be-shown"
# The lab in order, then 04 again right after itself and 01 again over the finished lab (every
# step must be idempotent), and cleanup last; with how each kernel gets the key: "typed" into the
# key box, "none" (the Secret must do), "env" (ANTHROPIC_API_KEY).
RUNS = [
    ("00-setup.ipynb", "none"),
    ("01-claude-llm-connection.ipynb", "typed"),
    ("02-traces.ipynb", "none"),
    ("03-mcp-server.ipynb", "none"),
    ("04-mcp-metrics.ipynb", "none"),
    ("04-mcp-metrics.ipynb", "none"),
    ("05-agent-loop.ipynb", "env"),
    ("06-resilience.ipynb", "env"),
    ("07-rate-limits.ipynb", "env"),
    ("08-guardrails.ipynb", "env"),
    ("09-securing-mcp.ipynb", "env"),
    ("01-claude-llm-connection.ipynb", "env"),
    ("99-cleanup.ipynb", "env"),
]
ORDER = [name for name, _ in RUNS]
CELL_TIMEOUT = 120

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The environment the kernels inherit: a fresh sandbox, strict checks, the canary key."""
    from agwlab.sandbox import ensure_running, stop

    home = tmp_path_factory.mktemp("agwlab-notebooks")
    mp = pytest.MonkeyPatch()
    mp.setenv("AGWLAB_HOME", str(home))
    mp.setenv("AGWLAB_STRICT", "1")
    mp.setenv("AGWLAB_TARGET", "sandbox")
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
    try:
        yield ensure_running(home, timeout=60)
    finally:
        stop(home)
        mp.undo()


def _run(name: str, *, typed: bool = False) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel; ``typed``: the canary is typed into its key box."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if typed:
        at = next(i for i, c in enumerate(nb.cells) if "widgets.api_key_box(lab)" in c.source)
        typing = f"from agwlab import secrets\nsecrets.accept_key({CANARY!r})"
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(typing))
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    """Everything the run produced: every output of every cell, and the notebook's metadata."""
    parts = [json.dumps(nb.metadata, ensure_ascii=False)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            parts.append(json.dumps(cell.get("outputs", []), ensure_ascii=False))
    return "\n".join(parts)


_seen: dict[str, str] = {}
_stored: list[tuple[str, str]] = []  # the Secret as 01 left it: (key, resourceVersion)


def _secret() -> tuple[str, str]:
    from agwlab import connect, kube

    lab = connect()
    obj = kube.get(lab, "Secret", lab.names.secret, lab.names.namespace)
    return base64.b64decode(obj["data"]["Authorization"]).decode(), obj["metadata"]["resourceVersion"]


def test_the_run_has_every_notebook() -> None:
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == set(ORDER), "add the new notebook to ORDER"


@pytest.mark.parametrize(("name", "key"), RUNS,
                         ids=[f"{i}-{n.removesuffix('.ipynb')}" for i, (n, _) in enumerate(RUNS)])
def test_notebook_runs_and_never_shows_the_key(  # type: ignore[no-untyped-def]
        lab_env, monkeypatch, name: str, key: str) -> None:
    if key == "env":
        monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    else:
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    nb = _run(name, typed=key == "typed")   # how long each takes is benchmarks/notebooks.py's business
    text = _outputs_text(nb)
    assert CANARY not in text, f"{name} printed the API key"
    assert CANARY_BODY not in text, f"{name} printed part of the API key"
    _seen[name] = text
    if key == "typed":
        assert "Using the key entered in the key box" in text
        _stored[:] = [_secret()]
        assert _stored[0][0] == CANARY
    elif key == "none" and _stored:
        assert _secret() == _stored[0], f"{name} re-applied the Secret from a kernel without a key"


def test_the_masked_key_is_what_appears(lab_env) -> None:  # type: ignore[no-untyped-def]
    if "01-claude-llm-connection.ipynb" not in _seen:
        _seen["01-claude-llm-connection.ipynb"] = _outputs_text(_run("01-claude-llm-connection.ipynb"))
    text = _seen["01-claude-llm-connection.ipynb"]
    assert mask(CANARY) in text
    assert CANARY not in text and CANARY_BODY not in text
