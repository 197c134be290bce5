"""Short errors in notebooks: a real kernel (nbclient) and a real IPython shell show one line."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from agwlab import notebook
from agwlab.errors import ClusterUnreachable

KERNEL_CONFIG = Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py"


def _run(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return nb


def _errors(cell: nbformat.NotebookNode) -> list[dict]:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_one_line_is_the_kind_and_the_redacted_message():
    err = ClusterUnreachable("no answer\n  with x-api-key: sk-ant-api03-SECRETSECRETSECRET-abcd. Try: ./lab start")
    line = notebook.one_line(err)
    assert "\n" not in line and "SECRET" not in line
    assert line.startswith("❌ ClusterUnreachable: no answer with x-api-key") and line.endswith("Try: ./lab start")


def test_connect_registers_the_handler_in_an_ipython_shell(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.set_custom_exc((), None)
        result = shell.run_cell("from agwlab import connect\nconnect('nowhere')")
        out = capsys.readouterr().out
        assert not result.success  # the cell still fails
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, out
        assert "❌ LabError: unknown target 'nowhere': use 'sandbox' or 'cluster'" in lines[0]
        assert "Traceback" not in out
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()


@pytest.mark.skipif("agwlab.notebook" not in (KERNEL_CONFIG.read_text() if KERNEL_CONFIG.exists() else ""),
                    reason="./lab writes the venv's kernel config that loads agwlab.notebook")
def test_a_kernel_after_a_restart_explains_the_missing_name_and_still_fails():
    nb = _run("answer = lab.gateway_url('/anthropic')",
              "from agwlab.errors import WaitTimeout\n"
              "raise WaitTimeout('gateway/x did not become Programmed within 60s. Try: kubectl describe gateway x')",
              "def f():\n    return not_defined_anywhere\nf()")
    (restart,), (timeout,), (deep,) = (_errors(c) for c in nb.cells)
    assert restart.traceback == [
        "\x1b[31m❌ NameError: 'lab' is not defined (the notebook's first code cell makes it). This kernel has not "
        "run the cell that defines it: after a kernel restart, or when cells were skipped, run the cells above "
        "first (Run ▸ Run All Above Selected Cell).\x1b[0m"]
    assert timeout.traceback == [
        "\x1b[31m❌ WaitTimeout: gateway/x did not become Programmed within 60s. Try: kubectl describe gateway x"
        "\x1b[0m"]
    assert timeout.ename == "WaitTimeout"
    assert len(deep.traceback) > 1 and "not_defined_anywhere" in "".join(deep.traceback)  # a real bug: full story
    nb2 = nbformat.v4.new_notebook()
    nb2.cells = [nbformat.v4.new_code_cell(nb.cells[1].source), nbformat.v4.new_code_cell("print('not run')")]
    with pytest.raises(CellExecutionError, match="WaitTimeout"):
        NotebookClient(nb2, timeout=120, kernel_name="python3").execute()


@pytest.mark.skipif("agwlab.notebook" not in (KERNEL_CONFIG.read_text() if KERNEL_CONFIG.exists() else ""),
                    reason="./lab writes the venv's kernel config that loads agwlab.notebook")
def test_after_the_sandbox_stops_the_next_cell_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AGWLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = _run("from agwlab import connect, kube\nlab = connect()",
              "import subprocess, sys\n"
              "subprocess.run([sys.executable, '-m', 'agwlab', 'sandbox', 'down'], check=True)",
              "kube.get(lab, 'Gateway', 'agentgateway-route', 'agentgateway-system')")
    assert not _errors(nb.cells[0]) and not _errors(nb.cells[1])
    (stopped,) = _errors(nb.cells[2])
    assert len(stopped.traceback) == 1
    line = stopped.traceback[0]
    assert line.startswith("\x1b[31m❌ ClusterUnreachable: could not reach the Kubernetes API server")
    assert "Re-run the notebook's first cell (connect() starts it again) or ./lab start" in line
