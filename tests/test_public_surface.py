"""agwlab's public surface: every name in __all__ resolves, and importing agwlab stays light."""

import subprocess
import sys

import agwlab


def test_every_public_name_resolves():
    for name in agwlab.__all__:
        assert getattr(agwlab, name) is not None, name
    assert callable(agwlab.connect) and callable(agwlab.check) and callable(agwlab.prepare)


def test_importing_agwlab_does_not_load_the_notebook_stack():
    code = "import sys, agwlab; print(','.join(m for m in ('pandas', 'kubernetes', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
