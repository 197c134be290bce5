"""``python -m agwlab workshop``: the instructor's commands (see :mod:`agwlab.workshop`).

    python -m agwlab workshop create NAME... | --count N [--place-key] [--out DIR]
    python -m agwlab workshop kubeconfig NAME
    python -m agwlab workshop progress [--json]
    python -m agwlab workshop reset NAME [--to llm|tracing|mcp]
    python -m agwlab workshop delete NAME... | --all

They act on the current context: the sandbox, or a real cluster with ``AGWLAB_TARGET=cluster``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["add_parser"]


def _names(args: argparse.Namespace) -> list[str]:
    if args.count:
        if args.names:
            raise SystemExit("error: give attendee names or --count N, not both")
        return [f"{args.prefix}{i}" for i in range(1, args.count + 1)]
    return list(args.names)


def _run(args: argparse.Namespace) -> int:
    from . import workshop
    from .errors import LabError
    from .lab import connect

    try:
        lab = connect()
        if args.action == "create":
            key = None
            if args.place_key:
                from .secrets import normalize_key

                key = normalize_key(os.environ.get("ANTHROPIC_API_KEY", ""))
                if not key:
                    print("error: --place-key puts $ANTHROPIC_API_KEY into each attendee's Secret, and it is not "
                          "set: export it first (it is never printed)", file=sys.stderr)
                    return 2
            made = workshop.create(lab, _names(args), api_key=key, out_dir=args.out)
            for a in made:
                print(f"{a.name}\t{a.namespace}\t{a.kubeconfig}")
            print(f"{len(made)} attendee(s) ready; hand each their kubeconfig (KUBECONFIG=<file>, "
                  "AGWLAB_TARGET=cluster)" + ("; the key is placed as their Secret, which they cannot read"
                                              if key else ""))
            return 0
        if args.action == "kubeconfig":
            if len(args.names) != 1:
                print("error: name one attendee: workshop kubeconfig NAME", file=sys.stderr)
                return 2
            print(workshop.kubeconfig(lab, args.names[0], out_dir=args.out))
            return 0
        if args.action == "progress":
            data = workshop.progress(lab, args.names or None)
            if args.json:
                print(json.dumps(data, indent=2, sort_keys=True))
            elif not data:
                print("no attendees yet: python -m agwlab workshop create NAME...")
            else:
                print(workshop.progress_table(lab, args.names or None).to_string())
            return 0
        if args.action == "reset":
            if len(args.names) != 1:
                print("error: name one attendee: workshop reset NAME [--to STAGE]", file=sys.stderr)
                return 2
            for line in workshop.reset(lab, args.names[0], to=args.to):
                print(line)
            print(f"{args.names[0]} reset" + (f" to the end of stage {args.to}" if args.to else ""))
            return 0
        if args.action == "delete":
            if not args.names and not args.all:
                print("error: name the attendees to delete, or --all", file=sys.stderr)
                return 2
            gone = workshop.delete(lab, None if args.all else args.names)
            print(f"deleted {len(gone)} attendee(s): {' '.join(gone) or '-'}")
            return 0
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.action)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``workshop`` to ``python -m agwlab``'s subcommands."""
    ws = sub.add_parser("workshop", help="an instructor's attendees: create, kubeconfig, progress, reset, delete")
    ws.add_argument("action", choices=["create", "kubeconfig", "progress", "reset", "delete"])
    ws.add_argument("names", nargs="*", help="attendee names (namespace agwlab-<name>)")
    ws.add_argument("--count", type=int, default=0, help="create: N attendees named <prefix>1..N")
    ws.add_argument("--prefix", default="attendee-", help="create --count: the names' prefix")
    ws.add_argument("--place-key", action="store_true",
                    help="create: put $ANTHROPIC_API_KEY into each attendee's Secret; they get no access to Secrets")
    ws.add_argument("--out", type=Path, help="where kubeconfigs go (default $AGWLAB_HOME/workshop)")
    ws.add_argument("--to", choices=["llm", "tracing", "mcp"], help="reset: re-apply the stages up to this one")
    ws.add_argument("--json", action="store_true", help="progress: as JSON")
    ws.add_argument("--all", action="store_true", help="delete: every attendee")
    ws.set_defaults(func=_run)
