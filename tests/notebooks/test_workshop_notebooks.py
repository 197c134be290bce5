"""Two workshop attendees run notebooks 01-04 at the same time on the session's sandbox.

Each kernel gets only its attendee's kubeconfig (a ServiceAccount token, their namespace)
and ``AGWLAB_TARGET=cluster``: the lab does not know it talks to the sandbox. alice brings
her key; carol holds none: the instructor placed it, and notebook 01's Secret steps leave
it alone. Each reads the spans of their own collector. Then the instructor's progress
shows what each did, and alice's cleanup (99) removes her lab without any cluster-wide
permission while carol's keeps answering.

Ten attendees at once take minutes on a 2-core machine, too long for every test run:
``benchmarks/workshop_attendees.py 10 --through 04`` runs them and prints the figures.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import httpx
import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from agwlab import workshop
from agwlab.lab import connect
from labtest import KEY

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ORDER = ["01-claude-llm-connection.ipynb", "02-traces.ipynb", "03-mcp-server.ipynb", "04-mcp-metrics.ipynb"]
ATTENDEES = ("alice", "carol")
PLACED = "carol"  # the instructor placed her key: she never holds it

pytestmark = pytest.mark.notebooks


def _run(name: str, env: dict[str, str]) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # IPC sockets in the attendee's own home: kernels started at once on TCP may pick the same port
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(env["AGWLAB_HOME"]) / "kernel"))
    client = NotebookClient(nb, km=km, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)  # the kernel's whole environment: the attendee's kubeconfig, nothing of ours


@pytest.fixture(scope="module")
def instructor(sandbox, tmp_path_factory):  # type: ignore[no-untyped-def]
    lab = connect(target="sandbox", namespace="default")
    out = tmp_path_factory.mktemp("kubeconfigs")
    made = workshop.create(lab, [a for a in ATTENDEES if a != PLACED], out_dir=out)
    made += workshop.create(lab, [PLACED], api_key=KEY, out_dir=out)
    yield lab, {a.name: a.kubeconfig for a in made}
    workshop.delete(lab, list(ATTENDEES))


@pytest.mark.timeout(1500)  # two attendees' four notebooks each, on a machine that may be busy
def test_two_attendees_run_01_to_04_at_once(instructor, tmp_path):
    lab, kubeconfigs = instructor
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AGWLAB_", "KUBECONFIG", "PYTEST_CURRENT_TEST"))}
    failures: dict[str, str] = {}

    def attendee(name: str) -> None:
        env = {**base, "KUBECONFIG": str(kubeconfigs[name]), "AGWLAB_TARGET": "cluster", "AGWLAB_STRICT": "1",
               "ANTHROPIC_API_KEY": KEY, "AGWLAB_PROMETHEUS_URL": lab.prometheus_url(),
               "AGWLAB_FETCH_URL": "http://lab-website.agwlab-system.svc.cluster.local/",
               "AGWLAB_HOME": str(tmp_path / name), "MPLBACKEND": "agg",
               "IPYTHONDIR": str(tmp_path / name / "ipython")}
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        if name == PLACED:
            del env["ANTHROPIC_API_KEY"]
        try:
            for nb in ORDER:
                _run(nb, env)
        except Exception as exc:  # noqa: BLE001 - reported below with the attendee's name
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
            failures[name] = f"{nb}: {type(exc).__name__}: {text[-2500:]}"

    threads = [threading.Thread(target=attendee, args=(n,)) for n in ATTENDEES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1500)
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())

    progress = workshop.progress(lab, ATTENDEES)
    for name in ATTENDEES:
        steps = progress[name]
        assert all(e["ok"] for e in steps.values()), {k: v for k, v in steps.items() if not v["ok"]}
        for stage in ("01-claude-llm-connection", "02-traces", "03-mcp-server", "04-mcp-metrics"):
            assert any(k.startswith(stage + " ") for k in steps), (name, stage, sorted(steps))
    # each has their own Gateway on their own address, and it serves them
    addresses = {}
    for name in ATTENDEES:
        gw = workshop._attendee_lab(lab, name)
        addresses[name] = gw.gateway_address()
    assert len(set(addresses.values())) == len(ATTENDEES), addresses
    placed = progress[PLACED]["01-claude-llm-connection 4"]
    assert placed["ok"] and "Secret" in placed["what"]
    table = workshop.progress_table(lab, ATTENDEES)
    assert list(table.index) == list(ATTENDEES) and (table == "✅").sum().sum() > 20

    # alice cleans up with her own (namespaced) permissions; carol's lab is untouched
    env = {**base, "KUBECONFIG": str(kubeconfigs["alice"]), "AGWLAB_TARGET": "cluster", "AGWLAB_STRICT": "1",
           "AGWLAB_HOME": str(tmp_path / "alice"), "MPLBACKEND": "agg",
           "IPYTHONDIR": str(tmp_path / "alice" / "ipython")}
    _run("99-cleanup.ipynb", env)
    after = workshop.progress(lab, ["alice"])["alice"]
    assert after["99-cleanup 2"]["ok"] is True
    carol = httpx.post(f"http://{addresses['carol']}:8080/anthropic", timeout=30,
                     json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "still there?"}]})
    assert carol.status_code == 200, carol.text
    assert json.loads(carol.text)["choices"]
