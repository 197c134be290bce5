"""The learner's working copy of the notebooks, outside what git tracks.

``./lab start`` opens JupyterLab on a copy of ``notebooks/`` (with the ``images/`` they
show) in ``my-lab/``, a folder git ignores. Whatever a learner does there (outputs saved,
cells edited, notebooks renamed), the tracked notebooks stay as committed, so ``./lab
test`` and a ``git pull`` keep working. ``./lab reset`` renews the copy from the tracked
notebooks; the copy it replaces is moved aside into ``my-lab/previous/<time>/``, never
deleted.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "notebooks").mkdir(); (root / "images").mkdir()
    >>> _ = (root / "notebooks" / "01-x.ipynb").write_text("{}")
    >>> [line.split(":")[0] for line in ensure(root)]
    ['copied 01-x.ipynb']
    >>> ensure(root)
    []
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from pathlib import Path

__all__ = ["WORK_DIR", "ensure", "reset", "stale", "work_dir"]

WORK_DIR = "my-lab"
_RECORD = ".copied-from.json"  # the tracked notebooks' digests when each copy was made


def work_dir(root: Path) -> Path:
    """Where the working copy of ``root``'s notebooks lives."""
    return Path(root) / WORK_DIR


def _sources(root: Path) -> list[Path]:
    return sorted((Path(root) / "notebooks").glob("*.ipynb"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record(work: Path) -> dict[str, str]:
    try:
        data = json.loads((work / _RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ensure(root: Path) -> list[str]:
    """Copy what the working copy lacks (a learner's notebooks are never overwritten).

    Images are always refreshed: they are not the learner's to edit.

    Returns:
        One line per notebook copied.
    """
    work = work_dir(root)
    (work / "notebooks").mkdir(parents=True, exist_ok=True)
    images = Path(root) / "images"
    if images.is_dir():
        shutil.copytree(images, work / "images", dirs_exist_ok=True)
    record = _record(work)
    done = []
    for src in _sources(root):
        dst = work / "notebooks" / src.name
        if not dst.exists():
            shutil.copy2(src, dst)
            record[src.name] = _digest(src)
            done.append(f"copied {src.name}: {dst}")
    (work / _RECORD).write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    return done


def stale(root: Path) -> list[str]:
    """Notebooks whose tracked version changed since they were copied (e.g. after a ``git pull``)."""
    work = work_dir(root)
    record = _record(work)
    return [src.name for src in _sources(root)
            if (work / "notebooks" / src.name).exists() and record.get(src.name) not in (None, _digest(src))]


def reset(root: Path, *, now: _dt.datetime | None = None) -> list[str]:
    """Renew the working copy from the tracked notebooks; the old copy is moved aside, not lost.

    Returns:
        What was done, one line each (where the previous copy went, what was copied).
    """
    work = work_dir(root)
    lines = []
    old = work / "notebooks"
    if old.is_dir() and any(old.iterdir()):
        stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        aside = work / "previous" / stamp
        aside.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while aside.exists():
            n += 1
            aside = work / "previous" / f"{stamp}-{n}"
        shutil.move(str(old), str(aside))
        (work / _RECORD).unlink(missing_ok=True)
        lines.append(f"your previous notebooks are kept in {aside}")
    return lines + ensure(root)
