"""The notebooks' shell snippets work as they are, after the ``export`` lines the notebooks print.

Every ```bash block in the notebooks whose state ``prepare`` builds (00-05; quoted blocks
included) runs in a real bash with real kubectl and curl against the session's sandbox, with
the lab prepared as notebook 04 leaves it. Notebooks with objects of their own (07's rate
limits) and cleanup are not among them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from agwlab import shell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if p.name[:2] in ("00", "01", "02", "03", "04", "05")]
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def snippets() -> list[tuple[str, int, str]]:
    """(notebook, cell index, bash text) for every bash block; quoted blocks lose their '> '."""
    out = []
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "markdown":
                continue
            text = "\n".join(re.sub(r"^> ?", "", line) for line in cell.source.splitlines()) + "\n"
            out += [(path.stem, i, block) for block in _BLOCK.findall(text)]
    return out


def _cluster_only(script: str) -> bool:
    # a port-forward is for clusters without a LoadBalancer; it blocks until stopped
    return "port-forward" in script


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    from agwlab import connect
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm", "tracing", "mcp")
    return lab


def test_exports_name_this_labs_values(lab) -> None:  # type: ignore[no-untyped-def]
    printed = str(shell.exports(lab, prometheus=True))
    assert printed.splitlines() == [
        f"export KUBECONFIG={lab.kubeconfig}",
        f"export GATEWAY={lab.gateway_address()}",
        f"export PROMETHEUS={lab.prometheus_url()}",
    ]
    assert "<pre>" in shell.exports(lab)._repr_html_()


def test_a_missing_gateway_is_a_comment_not_a_wrong_value(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    other = lab.__class__(**{**lab.__dict__, "names": lab.names.replace(gateway="no-such-gateway")})
    printed = str(shell.exports(other))
    assert "export GATEWAY" not in printed
    assert "# GATEWAY: there is no Gateway agentgateway-system/no-such-gateway yet" in printed


@pytest.mark.parametrize(("notebook", "cell", "script"), snippets(), ids=lambda v: str(v)[:40] if isinstance(v, str) else v)
def test_snippet_runs_after_the_exports(lab, kubectl_bin, notebook, cell, script) -> None:  # type: ignore[no-untyped-def]
    if _cluster_only(script):
        pytest.skip("a port-forward is for a cluster without a LoadBalancer")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GATEWAY", "PROMETHEUS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python = the venv's
    full = f"set -eo pipefail\n{shell.exports(lab, prometheus=True)}\n{script}"
    proc = subprocess.run(["bash", "-c", full], capture_output=True, text=True, env=env, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, f"{notebook} cell {cell}:\n{script}\n--- stderr:\n{proc.stderr}"
    if "curl" in script:
        assert proc.stdout.strip(), f"{notebook} cell {cell}: curl printed nothing"
        assert "route not found" not in proc.stdout
