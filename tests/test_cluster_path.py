"""The cluster path against a kind-profile sandbox: nothing but a kubeconfig, as on kind.

No Gateway address (the lab port-forwards with the client), Prometheus found in the
cluster and reached through the API server, the collector's configuration read, a
two-file KUBECONFIG, and namespaces that are not the lab's left alone.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
import yaml

from labtest import poll

KEY = "sk-ant-api03-" + "C" * 86 + "AA"


def _split_kubeconfig(source: str, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The kubeconfig as two files, merged as kubectl merges KUBECONFIG: credentials in one,
    the context (and current-context) in the other."""
    with open(source, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    first = {"apiVersion": "v1", "kind": "Config", "clusters": config["clusters"], "users": config["users"]}
    second = {"apiVersion": "v1", "kind": "Config", "contexts": config["contexts"],
              "current-context": config["current-context"]}
    paths = [tmp_path / "creds.yaml", tmp_path / "context.yaml"]
    for path, doc in zip(paths, (first, second), strict=True):
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return os.pathsep.join(str(p) for p in paths)


@pytest.fixture(scope="module")
def cluster_lab(kind_sandbox, tmp_path_factory):  # type: ignore[no-untyped-def]
    from agwlab import connect
    from agwlab.stages import prepare

    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "ANTHROPIC_API_KEY", "AGWLAB_GATEWAY_ADDRESS",
                                            "AGWLAB_PROMETHEUS_URL", "AGWLAB_NAMESPACE")}
    os.environ["KUBECONFIG"] = _split_kubeconfig(str(kind_sandbox.kubeconfig), tmp_path_factory.mktemp("kcfg"))
    os.environ["ANTHROPIC_API_KEY"] = KEY
    for k in ("AGWLAB_GATEWAY_ADDRESS", "AGWLAB_PROMETHEUS_URL", "AGWLAB_NAMESPACE"):
        os.environ.pop(k, None)
    lab = connect("cluster")
    prepare(lab, "llm", "tracing", "mcp")
    yield lab
    for fwd in lab.forwards.values():
        fwd.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_two_kubeconfig_files_are_merged(cluster_lab, kind_sandbox) -> None:  # type: ignore[no-untyped-def]
    assert cluster_lab.target == "cluster" and cluster_lab.sandbox is None
    assert cluster_lab.server == kind_sandbox.apiserver


def test_edition_comes_from_the_controller_name(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import connect, kube

    assert cluster_lab.edition == "oss"
    # a class named like the enterprise one, run by the open-source controller: its controllerName decides
    kube.apply(cluster_lab, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                             "metadata": {"name": "enterprise-agentgateway"},
                             "spec": {"controllerName": "agentgateway.dev/agentgateway"}}, quiet=True)
    try:
        assert connect("cluster", gateway_class="enterprise-agentgateway").edition == "oss"
    finally:
        kube.delete(cluster_lab, "GatewayClass", "enterprise-agentgateway", quiet=True)


def test_without_an_address_the_lab_forwards_a_local_port(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import kube, llm

    gw = kube.get(cluster_lab, "Gateway", cluster_lab.gateway_name, cluster_lab.gateway_namespace)
    assert not (gw.get("status") or {}).get("addresses")
    url = cluster_lab.gateway_url("/anthropic")
    forward = cluster_lab.forwards[8080]
    assert url == f"http://127.0.0.1:{forward.local_port}/anthropic"
    # the listener's own port when it was free (as the docs' port-forward), else any free one
    address = cluster_lab.gateway_address()
    assert address == ("127.0.0.1" if forward.local_port == 8080 else f"127.0.0.1:{forward.local_port}")
    result = llm.send_chat(url, "hello through a port-forward")
    assert result.status == 200, result


def test_the_forward_follows_the_proxy_to_a_new_pod(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    forward = cluster_lab.forwards[8080]
    assert httpx.post(cluster_lab.gateway_url("/anthropic"), json={"messages": "x"}, timeout=10).status_code != 404
    first = forward.pod
    assert first
    client.CoreV1Api(cluster_lab.api_client).delete_namespaced_pod(first, cluster_lab.gateway_namespace)

    def served_by_another() -> bool:
        try:
            r = httpx.post(cluster_lab.gateway_url("/anthropic"), json={"messages": "x"}, timeout=10)
        except httpx.HTTPError:
            return False
        return r.status_code != 404 and forward.pod not in (None, first)

    poll(served_by_another, timeout=60, what="the forward to reach the replacement Pod")
    assert cluster_lab.gateway_url() == forward.url  # the same local port throughout


def test_gateway_address_override_takes_a_full_url(cluster_lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGWLAB_GATEWAY_ADDRESS", "http://127.0.0.1:18080/")
    assert cluster_lab.gateway_url("/mcp") == "http://127.0.0.1:18080/mcp"


def test_prometheus_is_found_and_reached_through_the_api_server(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import metrics

    url = cluster_lab.prometheus_url()
    assert url == (f"{cluster_lab.server}/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy")
    poll(lambda: not metrics.targets(cluster_lab).empty, what="Prometheus targets through the service proxy",
         timeout=30)
    assert "pod" in metrics.targets(cluster_lab).columns
    assert not metrics.instant(cluster_lab, "up").empty


def test_a_basic_collector_is_caught_with_the_change_to_make(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import kube
    from agwlab.locate import collector_probe

    ok, detail = collector_probe(cluster_lab)()
    assert ok, detail
    names = cluster_lab.names
    cm = kube.get(cluster_lab, "ConfigMap", names.collector, names.telemetry_namespace)
    original = cm["data"]["relay"]
    relay = yaml.safe_load(original)
    relay["exporters"]["debug"] = {}
    patch = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": names.collector, "namespace": names.telemetry_namespace},
             "data": {"relay": yaml.safe_dump(relay)}}
    from kubernetes import client

    core = client.CoreV1Api(cluster_lab.api_client)
    core.patch_namespaced_config_map(names.collector, names.telemetry_namespace, {"data": patch["data"]})
    try:
        ok, detail = collector_probe(cluster_lab)()
        assert not ok
        assert "verbosity is 'basic'" in detail and "config.exporters.debug.verbosity=detailed" in detail
        relay["service"]["pipelines"]["traces"]["exporters"] = ["otlp"]
        core.patch_namespaced_config_map(names.collector, names.telemetry_namespace,
                                         {"data": {"relay": yaml.safe_dump(relay)}})
        ok, detail = collector_probe(cluster_lab)()
        assert not ok and "not to the debug exporter" in detail
    finally:
        core.patch_namespaced_config_map(names.collector, names.telemetry_namespace, {"data": {"relay": original}})


def test_a_namespace_the_lab_did_not_create_is_never_labelled(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import kube

    before = kube.get(cluster_lab, "Namespace", "monitoring")
    applied = kube.apply(cluster_lab, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": "monitoring",
                                                    "labels": {"app.kubernetes.io/part-of": "agwlab"}}})
    assert [a.action for a in applied] == ["unchanged"]
    after = kube.get(cluster_lab, "Namespace", "monitoring")
    assert (after["metadata"].get("labels") or {}) == (before["metadata"].get("labels") or {})
    assert json.dumps(after["metadata"].get("labels") or {}).find("agwlab") == -1


def test_prometheus_not_selecting_the_proxy_podmonitor_says_which_labels(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import kube
    from agwlab.locate import scrape_probe

    ok, detail = scrape_probe(cluster_lab)()
    assert ok and "selects PodMonitor agentgateway-system/agentgateway-proxy" in detail, detail
    # kube-prometheus-stack's default: only PodMonitors labelled with its release
    prom = kube.get(cluster_lab, "Prometheus", "kube-prometheus-stack-prometheus", "monitoring",
                    api_version="monitoring.coreos.com/v1")
    patch = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
             "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": "monitoring"},
             "spec": {"podMonitorSelector": {"matchLabels": {"release": "kube-prometheus-stack"}}}}
    kube.apply(cluster_lab, patch, quiet=True)
    try:
        ok, detail = scrape_probe(cluster_lab)()
        assert not ok
        assert "--set monitoring.serviceMonitor.extraLabels.release=kube-prometheus-stack" in detail
        assert "podMonitorSelectorNilUsesHelmValues=false" in detail
    finally:
        patch["spec"]["podMonitorSelector"] = prom["spec"]["podMonitorSelector"]
        kube.apply(cluster_lab, patch, quiet=True)
    assert scrape_probe(cluster_lab)()[0]


def test_waits_scale_with_the_scrape_interval_prometheus_reports(cluster_lab) -> None:  # type: ignore[no-untyped-def]
    from agwlab import metrics

    poll(lambda: not metrics.proxy_targets(cluster_lab).empty, what="the proxy's target", timeout=30)
    assert metrics.scrape_interval(cluster_lab) == 1.0  # the sandbox's Prometheus scrapes every second
    assert metrics.wait_seconds(cluster_lab) == 20 and metrics.wait_seconds(cluster_lab, base=2) == 4
