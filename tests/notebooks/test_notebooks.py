"""Every notebook, run in order against a fresh sandbox, with a canary API key that must never show."""

from __future__ import annotations

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
# step must be idempotent), and cleanup last.
ORDER = [
    "00-setup.ipynb",
    "01-claude-llm-connection.ipynb",
    "02-traces.ipynb",
    "03-mcp-server.ipynb",
    "04-mcp-metrics.ipynb",
    "04-mcp-metrics.ipynb",
    "05-agent-loop.ipynb",
    "06-resilience.ipynb",
    "07-rate-limits.ipynb",
    "08-guardrails.ipynb",
    "09-securing-mcp.ipynb",
    "01-claude-llm-connection.ipynb",
    "99-cleanup.ipynb",
]
CELL_TIMEOUT = 120

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def lab_env(sandbox, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The environment the kernels inherit: the session's sandbox, strict checks, the canary key."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ANTHROPIC_API_KEY", CANARY)
    mp.setenv("AGWLAB_STRICT", "1")
    mp.setenv("AGWLAB_TARGET", "sandbox")
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
    yield sandbox
    mp.undo()


def _run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
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


@pytest.mark.parametrize("name", ORDER, ids=[f"{i}-{n.removesuffix('.ipynb')}" for i, n in enumerate(ORDER)])
def test_notebook_runs_and_never_shows_the_key(lab_env, name: str) -> None:  # type: ignore[no-untyped-def]
    nb = _run(name)   # how long each takes is benchmarks/notebooks.py's business
    text = _outputs_text(nb)
    assert CANARY not in text, f"{name} printed the API key"
    assert CANARY_BODY not in text, f"{name} printed part of the API key"
    _seen[name] = text


def test_the_masked_key_is_what_appears(lab_env) -> None:  # type: ignore[no-untyped-def]
    if "01-claude-llm-connection.ipynb" not in _seen:
        _seen["01-claude-llm-connection.ipynb"] = _outputs_text(_run("01-claude-llm-connection.ipynb"))
    text = _seen["01-claude-llm-connection.ipynb"]
    assert mask(CANARY) in text
    assert CANARY not in text and CANARY_BODY not in text
