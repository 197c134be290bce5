"""``python -m agwlab``: the sandbox's life cycle and the lab's manifests.

    python -m agwlab sandbox up [--profile default|kind]|down|status [--json]|kubeconfig|logs [-f]
    python -m agwlab manifests llm|tracing|mcp [--with-key FILE]
    python -m agwlab workshop create|kubeconfig|progress|reset|delete ...
    python -m agwlab notebooks copy|reset [--root DIR]
    python -m agwlab cluster plan
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time

from .sandbox import SandboxError, ensure_running, status, stop
from .sandbox.paths import SandboxPaths, agwlab_home

__all__ = ["main"]


def _print_info(info: object, *, verb: str) -> None:
    from .sandbox.supervisor import read_state

    paths = SandboxPaths.for_home(agwlab_home())
    state = read_state(paths)
    print(f"sandbox {verb} (home {paths.root.parent})")
    print(f"  profile      {state.get('profile', 'default')}")
    print(f"  API server   {state.get('apiserver')}")
    prom = state.get("prometheus_url")
    hint = str(state.get("prometheus_hint"))
    print(f"  Prometheus   {prom or (hint if hint.startswith('profile ') else 'not running: ' + hint)}")
    if state.get("prometheus_restarts"):
        print(f"               {state.get('prometheus_state') or 'running'} "
              f"(restarted {state['prometheus_restarts']} time(s) by the sandbox)")
    print(f"  addresses    {state.get('block_cidr')} (loopback only)")
    print(f"  log          {paths.daemon_log}")
    print(f"  kubectl:     export KUBECONFIG={paths.kubeconfig}")


def _sandbox(args: argparse.Namespace) -> int:
    home = agwlab_home()
    if args.action == "up":
        from .sandbox.profiles import PROFILE_ENV, profile_named
        from .sandbox.supervisor import read_state

        try:
            wanted = profile_named(args.profile).name if args.profile else None
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        running = status(home)
        current = read_state(SandboxPaths.for_home(home)).get("profile", "default")
        if wanted and running.running and current != wanted:
            print(f"error: the sandbox in {home} runs with profile {current}; stop it first "
                  f"(python -m agwlab sandbox down), then: python -m agwlab sandbox up --profile {wanted}",
                  file=sys.stderr)
            return 1
        if wanted:
            os.environ[PROFILE_ENV] = wanted
        try:
            info = ensure_running(home, timeout=args.timeout)
        except SandboxError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        _print_info(info, verb="running")
        return 0
    if args.action == "down":
        try:
            was = stop(home)
        except SandboxError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("sandbox stopped (its objects are kept; `sandbox up` brings them back)" if was
              else "sandbox was not running")
        return 0
    if args.action == "status":
        info = status(home)
        if args.json:
            print(json.dumps(info.as_json(), indent=2))
        else:
            if info.running:
                _print_info(info, verb="running")
            else:
                print(f"sandbox not running (home {home}); start it with: python -m agwlab sandbox up")
        return 0 if info.running or args.json else 3
    if args.action == "kubeconfig":
        info = status(home)
        if not info.running:
            print("note: the sandbox is not running; start it with: python -m agwlab sandbox up", file=sys.stderr)
        print(info.kubeconfig)
        return 0
    if args.action == "logs":
        path = SandboxPaths.for_home(home).daemon_log
        if not path.exists():
            print(f"no sandbox log yet at {path}", file=sys.stderr)
            return 1
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
            sys.stdout.writelines(lines[-args.tail:] if args.tail > 0 else lines)
            while args.follow:
                line = f.readline()
                if line:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
        return 0
    raise AssertionError(args.action)


_PLACEHOLDER = "$ANTHROPIC_API_KEY"


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _manifests(args: argparse.Namespace) -> int:
    from .names import names_for
    from .secrets import InvalidKey, normalize_key
    from .stages import stage_yaml

    try:
        names = names_for(context_namespace=args.namespace, environ={} if args.namespace else None)
        if not args.with_key:
            # stdout ends up in terminals, logs and kubectl's last-applied annotation: never the key
            print(stage_yaml(args.stage, api_key=_PLACEHOLDER, names=names), end="")
            if args.stage == "llm" and os.environ.get("ANTHROPIC_API_KEY"):
                print(f"note: the Secret shows the placeholder {_PLACEHOLDER}, not your key; "
                      f"`python -m agwlab manifests llm --with-key FILE` writes one with the key to FILE "
                      "(readable by you only)", file=sys.stderr)
            return 0
        raw = os.environ.get("ANTHROPIC_API_KEY", "")
        if not raw:
            print("error: --with-key reads the key from ANTHROPIC_API_KEY, which is not set; export it "
                  "(read -s ANTHROPIC_API_KEY && export ANTHROPIC_API_KEY) and run this again", file=sys.stderr)
            return 2
        try:
            key = normalize_key(raw)
        except InvalidKey as e:
            print(f"error: ANTHROPIC_API_KEY: {e}", file=sys.stderr)
            return 2
        text = stage_yaml(args.stage, api_key=key, names=names)
        try:
            _write_private(args.with_key, text)
        except OSError as e:
            print(f"error: cannot write {args.with_key}: {e.strerror}; pick a file you can write", file=sys.stderr)
            return 1
        print(f"wrote {args.with_key} (mode 0600, with your key). Apply it without kubectl keeping a copy of "
              f"the key in an annotation: kubectl apply --server-side -f {args.with_key}; then delete the file",
              file=sys.stderr)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from .install_plan import plan_text

    print(plan_text(), end="")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import workcopy

    root = Path(args.root).resolve()
    if not (root / "notebooks").is_dir():
        print(f"error: no notebooks/ folder in {root}; pass --root with the lab's folder", file=sys.stderr)
        return 2
    lines = workcopy.reset(root) if args.action == "reset" else workcopy.ensure(root)
    for line in lines:
        print(line)
    changed = workcopy.stale(root)
    if changed and args.action == "copy":
        print(f"note: newer versions of {', '.join(changed)} arrived; ./lab reset renews your copies "
              f"(yours are kept in {workcopy.work_dir(root) / 'previous'})")
    print(f"your notebooks: {workcopy.work_dir(root) / 'notebooks'}")
    return 0


def _stage_names() -> list[str]:
    from .stages import STAGES

    return list(STAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agwlab", description="agentgateway lab guide")
    sub = parser.add_subparsers(dest="command", required=True)
    sb = sub.add_parser("sandbox", help="start, stop and inspect the local sandbox cluster")
    sb.add_argument("action", choices=["up", "down", "status", "kubeconfig", "logs"])
    sb.add_argument("--json", action="store_true", help="status as JSON")
    sb.add_argument("--timeout", type=float, default=60.0, help="seconds `up` waits for readiness")
    sb.add_argument("--profile", choices=["default", "kind"],
                    help="up: the cluster the sandbox stands in for (kind: no LoadBalancer, Prometheus "
                    "in-cluster only); kept until another is named")
    sb.add_argument("-f", "--follow", action="store_true", help="logs: keep printing new lines")
    sb.add_argument("--tail", type=int, default=50, help="logs: how many lines (0 = all)")
    sb.set_defaults(func=_sandbox)
    mf = sub.add_parser("manifests", help="print, as YAML, what one stage of the lab applies")
    mf.add_argument("stage", choices=_stage_names())
    mf.add_argument(
        "-n", "--namespace", help="the learner's namespace (default $AGWLAB_NAMESPACE, else the docs' layout)"
    )
    mf.add_argument("--with-key", metavar="FILE",
                    help="write the manifests with the key from $ANTHROPIC_API_KEY to FILE (mode 0600) instead "
                    "of printing them with a placeholder")
    mf.set_defaults(func=_manifests)
    cl = sub.add_parser("cluster", help="what to install on a real cluster (kind works), in order")
    cl.add_argument("action", choices=["plan"])
    cl.set_defaults(func=_cluster)
    nb = sub.add_parser("notebooks", help="the learner's working copy of the notebooks (outside git's view)")
    nb.add_argument("action", choices=["copy", "reset"], help="copy what is missing, or renew the whole copy")
    nb.add_argument("--root", default=".", help="the lab's folder (holding notebooks/)")
    nb.set_defaults(func=_notebooks)
    from .workshop_cli import add_parser as add_workshop

    add_workshop(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # e.g. a full disk: say what happened, not a traceback
        where = f" ({e.filename})" if e.filename else ""
        hint = " The disk is full: free some space and run this again." if e.errno == errno.ENOSPC else ""
        print(f"error: {e.strerror or e}{where}.{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
