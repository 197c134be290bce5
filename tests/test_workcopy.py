"""The learner's working copy: made once, never overwritten, renewed by reset without losing anything."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from agwlab import workcopy

ROOT = Path(__file__).resolve().parents[1]


def _lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "images" / "a.svg").write_text("<svg/>")
    for name in ("00-a.ipynb", "01-b.ipynb"):
        (root / "notebooks" / name).write_text(f'{{"tracked": "{name}"}}')
    return root


def test_copy_makes_missing_notebooks_and_keeps_the_learners(tmp_path: Path) -> None:
    root = _lab(tmp_path)
    work = workcopy.work_dir(root)
    assert len(workcopy.ensure(root)) == 2
    assert (work / "images" / "a.svg").read_text() == "<svg/>"  # ../images resolves inside the copy
    (work / "notebooks" / "00-a.ipynb").write_text("my outputs")
    (work / "notebooks" / "01-b.ipynb").unlink()
    assert workcopy.ensure(root) == [f"copied 01-b.ipynb: {work / 'notebooks' / '01-b.ipynb'}"]
    assert (work / "notebooks" / "00-a.ipynb").read_text() == "my outputs"
    assert (root / "notebooks" / "00-a.ipynb").read_text() == '{"tracked": "00-a.ipynb"}'


def test_stale_names_notebooks_that_changed_upstream(tmp_path: Path) -> None:
    root = _lab(tmp_path)
    workcopy.ensure(root)
    assert workcopy.stale(root) == []
    (workcopy.work_dir(root) / "notebooks" / "01-b.ipynb").write_text("learner edits are not upstream changes")
    assert workcopy.stale(root) == []
    (root / "notebooks" / "00-a.ipynb").write_text('{"tracked": "new"}')  # as after a git pull
    assert workcopy.stale(root) == ["00-a.ipynb"]


def test_reset_moves_the_old_copy_aside_and_copies_afresh(tmp_path: Path) -> None:
    root = _lab(tmp_path)
    work = workcopy.work_dir(root)
    workcopy.ensure(root)
    (work / "notebooks" / "00-a.ipynb").write_text("my outputs")
    (work / "notebooks" / "mine.ipynb").write_text("a notebook of my own")
    when = dt.datetime(2026, 11, 30, 8, 0, 0)
    lines = workcopy.reset(root, now=when)
    aside = work / "previous" / "20261130-080000"
    assert lines[0] == f"your previous notebooks are kept in {aside}"
    assert (aside / "00-a.ipynb").read_text() == "my outputs"
    assert (aside / "mine.ipynb").read_text() == "a notebook of my own"
    assert (work / "notebooks" / "00-a.ipynb").read_text() == '{"tracked": "00-a.ipynb"}'
    assert not (work / "notebooks" / "mine.ipynb").exists()
    workcopy.reset(root, now=when)  # the same second again: a second folder, nothing overwritten
    assert (work / "previous" / "20261130-080000-1" / "00-a.ipynb").exists()
    assert (aside / "00-a.ipynb").read_text() == "my outputs"


def test_cli_refuses_a_folder_without_notebooks(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agwlab", "notebooks", "copy", "--root", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no notebooks/ folder in {tmp_path}; pass --root with the lab's folder"
    assert not (tmp_path / workcopy.WORK_DIR).exists()


def test_cli_copy_then_reset(tmp_path: Path) -> None:
    root = _lab(tmp_path)

    def run(action: str) -> str:
        return subprocess.run([sys.executable, "-m", "agwlab", "notebooks", action, "--root", str(root)],
                              capture_output=True, text=True, check=True).stdout

    assert "copied 00-a.ipynb" in run("copy")
    (root / "notebooks" / "00-a.ipynb").write_text('{"tracked": "new"}')
    out = run("copy")
    assert "note: newer versions of 00-a.ipynb arrived; ./lab reset renews your copies" in out
    out = run("reset")
    assert "your previous notebooks are kept in" in out and "copied 00-a.ipynb" in out
    assert (workcopy.work_dir(root) / "notebooks" / "00-a.ipynb").read_text() == '{"tracked": "new"}'
