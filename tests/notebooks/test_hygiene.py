"""Notebooks are committed clean: no outputs, no widget state, no keys, thin and self-contained.

What is checked is what git tracks (the index), not the files on disk: learners work on
copies in ``my-lab/`` (see :mod:`agwlab.workcopy`), and a notebook someone ran but did not
stage must not fail the suite. Outside a git checkout (a release tarball) the files are read.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from agwlab.workcopy import WORK_DIR

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


IN_GIT = _git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


def tracked_text(path: Path) -> str:
    """The notebook as git tracks it (staged version), or the file outside a checkout."""
    if not IN_GIT:
        return path.read_text(encoding="utf-8")
    shown = _git("show", f":{path.relative_to(ROOT).as_posix()}")
    assert shown.returncode == 0, f"{path.name} is not tracked by git: {shown.stderr.strip()}"
    return shown.stdout


def read_tracked(path: Path) -> nbformat.NotebookNode:
    return nbformat.reads(tracked_text(path), as_version=4)
EXPECTED = [
    "00-setup.ipynb",
    "01-claude-llm-connection.ipynb",
    "02-traces.ipynb",
    "03-mcp-server.ipynb",
    "04-mcp-metrics.ipynb",
    "05-agent-loop.ipynb",
    "06-resilience.ipynb",
    "07-rate-limits.ipynb",
    "08-guardrails.ipynb",
    "09-securing-mcp.ipynb",
    "99-cleanup.ipynb",
]


def test_one_notebook_per_stage():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_widget_state(path: Path):
    nb = read_tracked(path)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None
        assert "widgets" not in cell.get("metadata", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_key_is_written_into_a_notebook(path: Path):
    text = tracked_text(path)
    assert not re.search(r"sk-ant-[a-z]+\d+-[A-Za-z0-9_\-]{8,}", text), (
        f"{path.name} contains something like a key"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_stands_alone(path: Path):
    nb = read_tracked(path)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "connect(" in first_code.source, f"{path.name}: the first code cell must connect"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_images_referenced_exist_and_are_svg(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for ref in re.findall(r"\]\((\.\./images/[^)\s]+)", cell.source):
            image = (path.parent / ref).resolve()
            assert image.exists(), f"{path.name} refers to missing {ref}"
            root = ET.parse(image).getroot()
            assert root.tag.endswith("svg")


@pytest.mark.skipif(not IN_GIT, reason="not a git checkout")
def test_the_learners_working_copy_is_outside_gits_view():
    probe = f"{WORK_DIR}/notebooks/00-setup.ipynb"
    assert _git("check-ignore", "-q", probe).returncode == 0, f"git must ignore {WORK_DIR}/ (.gitignore)"
    assert not _git("ls-files", WORK_DIR).stdout.strip(), f"nothing under {WORK_DIR}/ may be tracked"
