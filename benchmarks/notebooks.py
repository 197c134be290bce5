"""How long the whole lab takes: every notebook in name order, in a fresh sandbox.

The notebooks (``notebooks/*.ipynb``) run with ``nbclient`` as a learner's kernel would, one
after the other against one fresh sandbox, with ``ANTHROPIC_API_KEY`` set to a key shaped
like Anthropic's (the sandbox's stand-in accepts it) and ``AGWLAB_STRICT=1`` so a failed lab
check fails its cell. The figure is the wall time from starting the first notebook to the
end of the last, sandbox start-up excluded (it is measured by ``sandbox_startup.py``). When
a notebook fails, the time to the failure and the error are printed, and the remaining
notebooks still run (they are timed too, but the suite counts as failed).

Run: ``.venv/bin/python benchmarks/notebooks.py``
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime

import nbformat
from benchlib import KEY, REPO, fresh_sandbox, header, report
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

__all__ = ["main"]

NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT = 120      # seconds per cell
SUITE_BUDGET = 900      # no notebook is started after this many seconds
TARGET_S = 90.0


def _first_lines(text: str, n: int = 6) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join("       " + l[:150] for l in lines[-n:])


def _cell_times(name: str, nb: nbformat.NotebookNode) -> list[tuple[float, str, str]]:
    """``(seconds, notebook, first line)`` of each executed code cell, from nbclient's timing metadata."""
    out = []
    for cell in nb.cells:
        ex = (cell.get("metadata") or {}).get("execution") or {}
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            secs = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                    - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            first = next((l for l in cell.source.splitlines() if l.strip() and not l.startswith("#")), "")
            out.append((secs, name, first[:70]))
    return out


def main() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    header(f"notebooks: {len(paths)} notebooks in name order, one fresh sandbox")
    with tempfile.TemporaryDirectory(prefix="agwlab-bench-ipython-") as ipython:
        os.environ.update({
            "ANTHROPIC_API_KEY": KEY,
            "AGWLAB_STRICT": "1",
            "AGWLAB_TARGET": "sandbox",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "IPYTHONDIR": ipython,
        })
        with fresh_sandbox():
            results: list[tuple[str, float, str | None]] = []
            cells: list[tuple[float, str, str]] = []
            start = time.perf_counter()
            first_failure: float | None = None
            for path in paths:
                if time.perf_counter() - start > SUITE_BUDGET:
                    results.append((path.name, 0.0, "not run: suite time budget spent"))
                    continue
                t = time.perf_counter()
                error = None
                nb = None
                try:
                    nb = nbformat.read(path, as_version=4)
                    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
                    error = f"{type(e).__name__}\n{_first_lines(str(e))}"
                except Exception as e:  # an unreadable notebook or a kernel that would not start
                    error = f"{type(e).__name__}: {str(e)[:300]}"
                if error is not None and first_failure is None:
                    first_failure = time.perf_counter() - start
                elapsed = time.perf_counter() - t
                if nb is not None:
                    cells += _cell_times(path.name, nb)
                results.append((path.name, elapsed, error))
                status = "ok" if error is None else "FAILED"
                print(f"  {path.name:<36} {elapsed:7.1f} s  {status}", flush=True)
                if error:
                    print(error, flush=True)
            total = time.perf_counter() - start
    print("\n  slowest cells:")
    for secs, name, first in sorted(cells, reverse=True)[:8]:
        print(f"     {secs:6.1f} s  {name:<32} {first}")
    print()
    failed = [r for r in results if r[2]]
    if not failed:
        report("whole notebook suite (all passed)", total, "s", TARGET_S)
    else:
        print(f"  suite FAILED: {len(failed)} of {len(results)} notebooks ({', '.join(r[0] for r in failed)})")
        report("time to the first failure", first_failure or 0.0, "s")
        report("whole run, failures included (not a valid figure)", total, "s")
        print(f"  target: suite < {TARGET_S:g} s  MISS (the suite did not pass)")


if __name__ == "__main__":
    main()
