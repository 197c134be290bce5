"""The instructor's notebook, run against the session's sandbox with two attendees, one of whom
has passed a step: the table and the chart show both, and nothing is committed with outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from agwlab import workshop
from agwlab.lab import connect
from agwlab.progress import PROGRESS_CONFIGMAP, entry_key

NOTEBOOK = Path(__file__).resolve().parents[2] / "instructor" / "progress.ipynb"

pytestmark = pytest.mark.notebooks


def test_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_shows_each_attendees_progress(sandbox, tmp_path):
    lab = connect(target="sandbox", namespace="default")
    workshop.create(lab, ["ivy", "jon"], out_dir=tmp_path)
    try:
        entry = {"stage": "01-claude-llm-connection", "step": "2", "ok": True, "what": "w", "at": "t"}
        lab_ivy = workshop._attendee_lab(lab, "ivy")
        from agwlab import kube

        kube.apply(lab_ivy, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": PROGRESS_CONFIGMAP, "namespace": "agwlab-ivy"},
                             "data": {entry_key("01-claude-llm-connection", "2"): json.dumps(entry)}}, quiet=True)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        env = {**os.environ, "AGWLAB_TARGET": "sandbox", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
               "IPYTHONDIR": str(tmp_path / "ipython")}
        env.pop("AGWLAB_NAMESPACE", None)
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(env=env)
        text = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"], ensure_ascii=False)
        assert "'ivy'" in text and "'jon'" in text            # the attendees cell
        assert "01-claude-llm-connection 2" in text and "✅" in text  # the table
        assert "image/png" in text                              # the chart
    finally:
        workshop.delete(lab, ["ivy", "jon"])
