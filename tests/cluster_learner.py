"""Run the notebooks as a learner on a kind cluster would: ``./lab test`` runs this after the
sandbox run.

The cluster is a sandbox started with ``--profile kind`` (no LoadBalancer, Prometheus only in
the cluster), reached with ``AGWLAB_TARGET=cluster`` through a ``KUBECONFIG`` of two files, with
no address or Prometheus overrides; it has no egress, so ``AGWLAB_FETCH_URL`` names an
in-cluster page for the MCP fetcher. Its ``telemetry`` namespace holds a ConfigMap of someone
else's, which must survive ``99-cleanup``.

    .venv/bin/python tests/cluster_learner.py [extra pytest arguments]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-ant-api03-" + "K" * 86 + "AA"  # shaped like an Anthropic key; the sandbox's stand-in checks only the shape
OWNED = ("telemetry", "kept-by-its-owner")
_CLEAR = ("AGWLAB_GATEWAY_ADDRESS", "AGWLAB_PROMETHEUS_URL", "AGWLAB_TARGET", "AGWLAB_SANDBOX_PROFILE",
          "AGWLAB_NAMESPACE", "AGWLAB_GATEWAY_CLASS", "KUBECONFIG")


def split_kubeconfig(source: Path, into: Path) -> str:
    """Write ``source`` as two files (credentials; context) and return them as a KUBECONFIG list."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    parts = {
        into / "credentials.yaml": {"apiVersion": "v1", "kind": "Config", "clusters": config["clusters"],
                                    "users": config["users"]},
        into / "context.yaml": {"apiVersion": "v1", "kind": "Config", "contexts": config["contexts"],
                                "current-context": config["current-context"]},
    }
    for path, doc in parts.items():
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        path.chmod(0o600)
    return os.pathsep.join(str(p) for p in parts)


def _core(kubeconfig: str):  # type: ignore[no-untyped-def]
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="agwlab-kind-"))
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    env["AGWLAB_HOME"] = str(home)
    python = sys.executable
    try:
        subprocess.run([python, "-m", "agwlab", "sandbox", "up", "--profile", "kind"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        kubeconfig = split_kubeconfig(home / "sandbox" / "kubeconfig", home)
        core = _core(kubeconfig)
        ns, name = OWNED
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {"owner": "not the lab"}})
        # a cluster without egress (these machines have none): the fetcher fetches an in-cluster page
        learner = {**env, "AGWLAB_TARGET": "cluster", "KUBECONFIG": kubeconfig, "AGWLAB_STRICT": "1",
                   "ANTHROPIC_API_KEY": os.environ.get("AGWLAB_CLUSTER_TEST_KEY", KEY),
                   "AGWLAB_FETCH_URL": "http://lab-website.agwlab-system.svc.cluster.local/"}
        status = subprocess.run(
            [python, "-m", "pytest", "--nbmake", "--nbmake-timeout=300", "-p", "no:cacheprovider", "-o", "addopts=",
             *argv, str(ROOT / "notebooks")], env=learner, cwd=ROOT, check=False).returncode
        namespace = core.read_namespace(ns)
        labels = namespace.metadata.labels or {}
        kept = core.read_namespaced_config_map(name, ns).data == {"owner": "not the lab"}
        if labels.get("app.kubernetes.io/part-of") == "agwlab" or not kept:
            print(f"❌ namespace {ns} was taken over by the lab (labels {labels}) or lost {name}", file=sys.stderr)
            return 1
        print(f"✅ namespace {ns} and its ConfigMap {name} are as their owner left them")
        return status
    finally:
        subprocess.run([python, "-m", "agwlab", "sandbox", "down"], env=env, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
