"""Notebooks are committed clean: no outputs, no widget state, no keys, thin and self-contained."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "00-setup.ipynb",
    "01-claude-llm-connection.ipynb",
    "02-traces.ipynb",
    "03-mcp-server.ipynb",
    "04-mcp-metrics.ipynb",
    "99-cleanup.ipynb",
]


def test_one_notebook_per_stage():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_widget_state(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None
        assert "widgets" not in cell.get("metadata", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_key_is_written_into_a_notebook(path: Path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"sk-ant-[a-z]+\d+-[A-Za-z0-9_\-]{8,}", text), (
        f"{path.name} contains something like a key"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_stands_alone(path: Path):
    nb = nbformat.read(path, as_version=4)
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
