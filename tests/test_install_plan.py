"""The cluster install plan against the real charts' values.yaml (vendored in tests/data/charts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agwlab.install_plan import plan, plan_text
from agwlab.locate import debug_exporter_problem

CHARTS = Path(__file__).resolve().parent / "data" / "charts"
README = Path(__file__).resolve().parents[1] / "README.md"
VALUES = {
    "agentgateway": "agentgateway-v1.4.1-values.yaml",
    "opentelemetry-collector": "opentelemetry-collector-0.170.0-values.yaml",
    "kube-prometheus-stack": "kube-prometheus-stack-88.5.3-values.yaml",
}


def _values(chart: str) -> dict[str, Any]:
    return yaml.safe_load((CHARTS / VALUES[chart]).read_text(encoding="utf-8"))


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    node = values
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _get(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{path}: no {key!r} in the chart's values"
        node = node[key]
    return node


@pytest.mark.parametrize("step", [s for s in plan() if s.chart], ids=lambda s: s.chart)
def test_every_value_the_plan_sets_is_a_value_of_the_chart(step) -> None:  # type: ignore[no-untyped-def]
    defaults = _values(step.chart)
    for path in step.values:
        parent = path.rpartition(".")[0]
        if parent:
            _get(defaults, parent)  # the parent exists: the value lands where the chart reads it
        if path != "config.exporters.debug.verbosity":  # debug: {} has no verbosity key by default
            _get(defaults, path)


def test_the_plans_values_change_what_the_audit_found() -> None:
    by_chart = {s.chart: s.values for s in plan() if s.chart}
    # kube-prometheus-stack: by default it selects only PodMonitors labelled release=<release>
    kps = _values("kube-prometheus-stack")
    assert _get(kps, "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues") is True
    assert by_chart["kube-prometheus-stack"]["prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues"] == "false"
    # agentgateway: monitoring (the PodMonitor) is off by default and its labels carry no release
    agw = _values("agentgateway")
    assert _get(agw, "monitoring.enabled") is False and _get(agw, "monitoring.serviceMonitor.extraLabels") == {}
    assert _get(agw, "monitoring.proxy.podMonitor.enabled") is True
    assert by_chart["agentgateway"]["monitoring.enabled"] == "true"
    # the collector: the chart's default debug exporter is basic; the plan's values make it detailed
    otel = _values("opentelemetry-collector")
    assert "verbosity is 'basic' (the default)" in (debug_exporter_problem(otel["config"]) or "")
    for path, value in by_chart["opentelemetry-collector"].items():
        _set(otel, path, value)
    assert debug_exporter_problem(otel["config"]) is None
    assert otel["mode"] == "deployment" and otel["image"]["repository"] == "otel/opentelemetry-collector-contrib"


def test_kube_prometheus_stack_comes_before_agentgateways_monitoring() -> None:
    titles = [s.title for s in plan()]
    kps = next(i for i, t in enumerate(titles) if t.startswith("kube-prometheus-stack"))
    agw = titles.index("agentgateway with monitoring")
    assert titles[0] == "Gateway API CRDs" and kps < agw


def test_every_chart_is_pinned() -> None:
    for step in plan():
        if step.command.startswith("helm "):
            assert re.search(r"--version \S+", step.command), step.command


def test_the_cli_prints_the_plan_and_the_readme_holds_it() -> None:
    out = subprocess.run([sys.executable, "-m", "agwlab", "cluster", "plan"], capture_output=True, text=True,
                         check=True).stdout
    assert out == plan_text()
    readme = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- cluster-plan -->\n```bash\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md lacks the cluster-plan block"
    assert block.group(1) == plan_text()
