"""Start, stop and inspect the sandbox process.

The sandbox is one background process (``python -m agwlab.sandbox.daemon``) per
``$AGWLAB_HOME``. ``ensure_running`` starts it when it is not running and returns once it
answers; it is idempotent and safe to call from several processes at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SandboxUnavailable
from .network import http_ok
from .paths import SandboxPaths, agwlab_home
from .procs import child_environment

__all__ = ["SandboxError", "SandboxInfo", "ensure_running", "kill_leftover_children", "read_state", "status", "stop",
           "write_state"]


class SandboxError(SandboxUnavailable):
    """The sandbox could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class SandboxInfo:
    """Where a sandbox's parts are."""

    running: bool
    home: Path
    kubeconfig: Path
    apiserver: str | None
    prometheus_url: str | None
    pid: int | None = None
    block: str | None = None
    daemon_log: Path | None = None
    ca_file: Path | None = None
    prometheus_state: str | None = None
    prometheus_restarts: int = 0

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _paths(home: Path | None) -> SandboxPaths:
    return SandboxPaths.for_home(Path(home).expanduser().resolve() if home else agwlab_home())


def read_state(paths: SandboxPaths) -> dict[str, Any]:
    """The sandbox's state file, or ``{}`` when there is none (or it is unreadable)."""
    try:
        return json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split(") ", 1)[1].split(" ", 1)[0] != "Z"
    except OSError:
        return True


def _ready(state: dict[str, Any], timeout: float = 1.0) -> bool:
    url = state.get("apiserver")
    if not url or not state.get("ready") or not _pid_alive(state.get("pid")):
        return False
    ca = state.get("ca_file")
    return http_ok(f"{url}/readyz", timeout=timeout, ca_file=ca if ca and os.path.exists(ca) else None)


def _info(paths: SandboxPaths, state: dict[str, Any], running: bool) -> SandboxInfo:
    return SandboxInfo(
        running=running,
        home=paths.root.parent,
        kubeconfig=paths.kubeconfig,
        apiserver=state.get("apiserver"),
        prometheus_url=state.get("prometheus_url"),
        pid=state.get("pid") if running else None,
        block=state.get("block_cidr"),
        daemon_log=paths.daemon_log,
        ca_file=Path(state["ca_file"]) if state.get("ca_file") else None,
        prometheus_state=state.get("prometheus_state") if running else None,
        prometheus_restarts=int(state.get("prometheus_restarts") or 0) if running else 0,
    )


def _check_owner(paths: SandboxPaths) -> None:
    """Refuse a home (or sandbox folder) another user owns: it would hold our token and keys
    where they could read or replace them."""
    me = os.getuid()
    for folder in (paths.root.parent, paths.root):
        try:
            owner = folder.stat().st_uid
        except OSError:
            continue  # not there yet: it will be created as ours
        if owner != me:
            try:
                import pwd

                whose = pwd.getpwuid(owner).pw_name
            except (ImportError, KeyError):
                whose = f"uid {owner}"
            raise SandboxError(
                f"{folder} belongs to {whose}, not to you: the sandbox keeps its token there, so it only "
                f"uses a folder of your own. Point AGWLAB_HOME at one (export AGWLAB_HOME=$HOME/.agwlab), "
                f"or, if {folder} should be yours, chown -R $(id -un) {folder}"
            )


@contextlib.contextmanager
def _locked(paths: SandboxPaths) -> Iterator[None]:
    _check_owner(paths)
    try:
        paths.ensure()
    except OSError as e:
        raise SandboxError(
            f"cannot keep the sandbox in {paths.root}: {e.strerror or e}. Point AGWLAB_HOME at a "
            "directory you can write to, or unset it to use ~/.agwlab"
        ) from None
    with open(paths.root / "lock", "w", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _log_tail(paths: SandboxPaths, lines: int = 15) -> str:
    try:
        return "\n".join(paths.daemon_log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no daemon log)"


def ensure_running(home: Path | None = None, *, timeout: float = 30.0) -> SandboxInfo:
    """Start the sandbox for ``home`` (default ``$AGWLAB_HOME``) unless it runs; wait until ready.

    Example:
        >>> info = ensure_running()          # doctest: +SKIP
        >>> info.kubeconfig                  # doctest: +SKIP
        PosixPath('/root/.agwlab/sandbox/kubeconfig')

    Raises:
        SandboxError: the sandbox did not become ready in ``timeout`` seconds; the
            message quotes the end of its log.
    """
    paths = _paths(home)
    state = read_state(paths)
    if _ready(state):
        return _info(paths, state, True)
    with _locked(paths):
        state = read_state(paths)
        if _ready(state):
            return _info(paths, state, True)
        if _pid_alive(state.get("pid")):
            # a daemon that exists but does not answer: replace it
            _terminate(state["pid"], grace=5)
        with open(paths.daemon_log, "a", encoding="utf-8") as log:  # the child keeps its own descriptor
            env = child_environment({"PYTHONUNBUFFERED": "1"})  # the sandbox never needs the learner's key
            proc = subprocess.Popen(
                [sys.executable, "-m", "agwlab.sandbox.daemon", "--root", str(paths.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = read_state(paths)
            if state.get("pid") == proc.pid and _ready(state, timeout=0.5):
                return _info(paths, state, True)
            if proc.poll() is not None:
                raise SandboxError(
                    f"the sandbox exited during start-up (code {proc.returncode}). "
                    f"End of {paths.daemon_log}:\n{_log_tail(paths)}"
                )
            time.sleep(0.02)
        raise SandboxError(
            f"the sandbox did not become ready in {timeout:.0f}s. End of {paths.daemon_log}:\n"
            f"{_log_tail(paths)}\nTry: python -m agwlab sandbox down && python -m agwlab sandbox up"
        )


def _terminate(pid: int, *, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.02)


def stop(home: Path | None = None, *, grace: float = 10.0) -> bool:
    """Stop the sandbox (its state stays on disk). Returns False when it was not running."""
    paths = _paths(home)
    if not paths.root.is_dir():
        return False
    with _locked(paths):
        state = read_state(paths)
        pid = state.get("pid")
        was_running = _pid_alive(pid)
        if was_running and pid is not None:
            _terminate(int(pid), grace=grace)
        kill_leftover_children(paths)
        if state:
            state["ready"] = False
            state["pid"] = None
            try:
                write_state(paths, state)
            except OSError as e:
                raise SandboxError(
                    f"the sandbox {'stopped' if was_running else 'was not running'}, but its state file "
                    f"{paths.state} could not be updated ({e.strerror or e}). "
                    + ("The disk is full: free some space (the sandbox's Prometheus data in "
                       f"{paths.prometheus} can go), then run this again."
                       if e.errno == errno.ENOSPC else "Check that you can write there, then run this again.")
                ) from None
        return was_running


def status(home: Path | None = None) -> SandboxInfo:
    """What runs, without starting anything."""
    paths = _paths(home)
    state = read_state(paths)
    return _info(paths, state, _ready(state))


def write_state(paths: SandboxPaths, state: dict[str, Any]) -> None:
    """Replace the state file atomically, readable by its owner only (it holds the token)."""
    tmp = paths.state.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, paths.state)


def kill_leftover_children(paths: SandboxPaths) -> None:
    """Kill Pod processes a killed sandbox left behind (their pids are in ``children``)."""
    pidfile = paths.root / "children"
    try:
        pids = [int(x) for x in pidfile.read_text(encoding="utf-8").split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
