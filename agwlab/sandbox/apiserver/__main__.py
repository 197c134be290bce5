"""Run the API server alone, without the rest of the sandbox (for debugging and tests).

Usage::

    python -m agwlab.sandbox.apiserver --root DIR [--host 127.0.0.1] [--port 6443]

Uses (or creates) ``DIR/store.db``, a token in ``DIR/token``, TLS files in ``DIR/pki`` and
writes ``DIR/kubeconfig``. Prints ``ready <url>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from pathlib import Path

import uvicorn
import yaml

from ..paths import SandboxPaths
from ..store import Store
from .app import create_app
from .tls import ensure_tls

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agwlab.sandbox.apiserver", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="state directory")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=6443)
    args = parser.parse_args(argv)
    paths = SandboxPaths(args.root.resolve())
    paths.ensure()
    token_file = paths.root / "token"
    if not token_file.exists():
        token_file.write_text(secrets.token_hex(16))
        token_file.chmod(0o600)
    token = token_file.read_text().strip()
    tls = ensure_tls(paths.root / "pki", [args.host])
    url = f"https://{args.host}:{args.port}"
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "agwlab",
                  "clusters": [{"name": "agwlab", "cluster": {"server": url,
                                                              "certificate-authority-data": tls.ca_data()}}],
                  "users": [{"name": "agwlab", "user": {"token": token}}],
                  "contexts": [{"name": "agwlab", "context": {"cluster": "agwlab", "user": "agwlab",
                                                              "namespace": "default"}}]}
    paths.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
    paths.kubeconfig.chmod(0o600)
    store = Store(paths.store)
    app = create_app(store, token=token, paths=paths)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", ws="wsproto",
                                           lifespan="off", ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
                                           timeout_graceful_shutdown=2))

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        print(f"ready {url}", flush=True)
        await task

    try:
        asyncio.run(serve())
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
