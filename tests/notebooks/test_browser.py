"""A learner's first steps in the real JupyterLab, in headless Chromium: the typed key never shows.

``./lab start`` serves a copy of notebook 01 (the repository's notebook is never touched) on a
sandbox of its own, with ``ANTHROPIC_API_KEY`` unset so the key box is what supplies the key.
Playwright then does what a learner does: runs the cells down to the key box, types a canary key
into the Password widget and presses Enter, runs the cell that prints the key masked, and saves with
Ctrl+S; then runs the rest of the notebook (the key goes into the Secret and through the proxy to the
Claude stand-in) and saves again. The canary must be nowhere: not on the page, not in the saved
notebook (outputs, metadata, widget state — saving widget state is switched on so it is covered),
not in the sandbox's daemon and Pod logs, not in JupyterLab's log.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agwlab.secrets import mask
from harness import free_port
from labtest import poll, wait_for_jupyterlab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01-claude-llm-connection.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, as Playwright cannot download its own browsers here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CANARY = "sk-ant-api03-" + "Q" * 80 + "AA"
CANARY_PART = "Q" * 40  # a fragment: a key cut short still leaks
MASKED = mask(CANARY)  # sk-ant-…QQAA
TIMEOUT_MS = 30_000

# JupyterLab settings for a quiet, deterministic page: no toasts (news, update checks), every
# cell attached to the DOM, and widget state saved into the notebook so the test covers it too.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}

pytestmark = pytest.mark.notebooks




@dataclass(frozen=True)
class RunningLab:
    """A JupyterLab started by ``./lab start`` for one test."""

    url: str
    token: str
    root: Path  # JupyterLab's root directory (holds the copied notebook)
    home: Path  # AGWLAB_HOME of the sandbox it started
    server_log: Path  # JupyterLab's own stdout and stderr


@pytest.fixture
def browser_executable() -> Path:
    """Debian's Chromium and the playwright package, or a skip saying which is missing."""
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (./lab test installs Debian's chromium package)")
    return CHROMIUM


@pytest.fixture
def running_lab(tmp_path: Path) -> Iterator[RunningLab]:
    """``./lab start`` on a temp root and home, without ANTHROPIC_API_KEY; stopped afterwards."""
    from agwlab.sandbox import stop

    root, home, jupyter = tmp_path / "root", tmp_path / "home", tmp_path / "jupyter"
    # the repository's layout, so the notebook's ../images links resolve
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    shutil.copytree(ROOT / "images", root / "images")
    for name, values in LAB_SETTINGS.items():
        path = jupyter / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env.update(
        AGWLAB_HOME=str(home),
        AGWLAB_TARGET="sandbox",
        # keep the learner's own Jupyter and IPython state out of it, both ways
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
    )
    port, token = free_port(), secrets.token_hex(16)
    server_log = tmp_path / "jupyterlab.log"
    with server_log.open("wb") as out:
        # A directory given as the first path makes it JupyterLab's root (./lab's own path comes after).
        proc = subprocess.Popen(
            [str(ROOT / "lab"), "start", "--no-browser", f"--ServerApp.port={port}",
             f"--IdentityProvider.token={token}",
             # nothing but loopback: no update checks, no extension index
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly", str(root)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_jupyterlab(proc, url, token, output=server_log.read_text)
        yield RunningLab(url, token, root, home, server_log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stop(home)


def _leaks(text: str) -> bool:
    """True when ``text`` holds the canary or a long piece of it."""
    return CANARY in text or CANARY_PART in text


def _saved_outputs(path: Path) -> str:
    """The text of every output in the notebook on disk ('' while it is being written)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return json.dumps([c.get("outputs", []) for c in nb["cells"]], ensure_ascii=False)


def _wait_saved(path: Path, text: str) -> None:
    """Wait until the notebook on disk has an output containing ``text``."""
    poll(lambda: text in _saved_outputs(path), timeout=TIMEOUT_MS / 1000,
         what=f"Ctrl+S to save a notebook showing {text!r}")


def _secret_key(home: Path) -> str:
    """The key in Secret anthropic-secret, read with the kubernetes client (proves it left the kernel)."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(home / "sandbox" / "kubeconfig")))
    secret = api.read_namespaced_secret("anthropic-secret", "agentgateway-system")
    return base64.b64decode(secret.data["Authorization"]).decode()


def test_typed_key_is_never_shown_saved_or_logged(
    browser_executable: Path, running_lab: RunningLab, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    screenshot = tmp_path / "jupyterlab.png"  # taken on failure
    original = (ROOT / "notebooks" / NOTEBOOK).read_bytes()
    saved = running_lab.root / "notebooks" / NOTEBOOK
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(browser_executable), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            page.goto(f"{running_lab.url}/lab/tree/notebooks/{NOTEBOOK}?token={running_lab.token}")
            # The toolbar reads "idle" before the kernel exists; the status bar names the kernel once connected.
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) | Idle")).to_be_visible()
            panel = page.locator(".jp-NotebookPanel")
            cells = panel.locator(".jp-Notebook .jp-Cell")
            done = re.compile(r"\[\d+\]")
            errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")

            def run(index: int) -> None:
                """Click into a code cell and run it with Shift+Enter, as a learner does."""
                cells.nth(index).locator(".cm-content").click()
                page.keyboard.press("Shift+Enter")
                expect(cells.nth(index).locator(".jp-InputArea-prompt")).to_have_text(done)

            run(1)  # lab = connect()
            run(3)  # widgets.api_key_box(lab)
            box = cells.nth(3).locator("input[type='password']")
            box.fill(CANARY)
            box.press("Enter")  # continuous_update=False: the value goes to the kernel on Enter
            expect(cells.nth(3)).to_contain_text(f"Key kept for this session: {MASKED}")
            expect(box).to_have_value("")  # the kernel cleared the box

            visible = page.locator("body").inner_text()
            assert not _leaks(visible), "the key is visible on the page after it was entered"
            values = page.eval_on_selector_all("input, textarea", "els => els.map(e => e.value)")
            assert not any(_leaks(v) for v in values), "an input on the page still holds the key"

            run(4)  # print(key.describe())
            expect(cells.nth(4)).to_contain_text(f"Using the key entered in the key box ({MASKED})")
            page.keyboard.press("Control+s")
            _wait_saved(saved, MASKED)
            assert not _leaks(saved.read_text(encoding="utf-8")), "the notebook saved after the key step holds the key"

            # The rest of the notebook, so the key goes into the Secret, through the proxy and into logs.
            cells.nth(5).click()
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text="Run Selected Cell and All Below").click()
            last = cells.nth(cells.count() - 2)  # the last code cell (a markdown cell ends the notebook)
            finished = last.locator(".jp-InputArea-prompt", has_text=done)
            expect(finished.or_(errors.first)).to_be_visible(timeout=60_000)
            assert errors.count() == 0, errors.first.inner_text()
            expect(last).to_contain_text("the access log has trace.id=")
            page.keyboard.press("Control+s")
            _wait_saved(saved, "the access log has trace.id=")
            assert not _leaks(page.locator("body").inner_text()), "the key is visible on the page"
        except BaseException:
            page.screenshot(path=str(screenshot))
            raise
        finally:
            browser.close()

    assert (ROOT / "notebooks" / NOTEBOOK).read_bytes() == original, "the repository's notebook changed"
    raw = saved.read_text(encoding="utf-8")
    assert not _leaks(raw), f"the saved notebook holds the key ({saved})"
    nb = json.loads(raw)
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    passwords = [m for m in state.get("state", {}).values() if m.get("model_name") == "PasswordModel"]
    assert passwords, "the saved widget state has no Password model, so it was not checked"
    # the widget manager leaves out values equal to the default ''
    assert all(m["state"].get("value", "") == "" for m in passwords), "the saved Password widget has a value"

    # Only now are the log checks worth something: the typed key is what the cluster holds.
    assert _secret_key(running_lab.home) == CANARY, "the typed key did not reach Secret anthropic-secret"
    sandbox = running_lab.home / "sandbox"
    logs = [sandbox / "daemon.log", *sorted((sandbox / "logs").rglob("*.log"))]
    assert logs[0].stat().st_size > 0, "the sandbox wrote no daemon log"
    assert any("agentgateway-route" in p.name for p in logs), f"no proxy Pod log among {logs}"
    for log in [*logs, running_lab.server_log]:
        assert not _leaks(log.read_text(encoding="utf-8", errors="replace")), f"{log} holds the key"
