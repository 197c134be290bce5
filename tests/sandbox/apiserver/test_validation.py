"""Defaulting and validation against the real schemas."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from agwlab.sandbox.apiserver.validation import admit, check_unknown, validate_name
from agwlab.sandbox.kinds import by_kind
from agwlab.sandbox.store import BadRequest, Invalid

BACKEND = {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
           "metadata": {"name": "b", "namespace": "default"},
           "spec": {"ai": {"provider": {"anthropic": {"model": "claude-sonnet-4-5-20250929"}}}}}


def test_valid_backend_passes_unchanged():
    obj = copy.deepcopy(BACKEND)
    assert admit(obj) == []
    assert obj["spec"] == BACKEND["spec"]


def test_unknown_fields_by_mode():
    bad = copy.deepcopy(BACKEND)
    bad["spec"]["type"] = "MCP"
    with pytest.raises(BadRequest) as err:
        admit(copy.deepcopy(bad))
    assert err.value.message.endswith('strict decoding error: unknown field "spec.type"')
    warned = copy.deepcopy(bad)
    assert admit(warned, field_validation="Warn") == ['unknown field "spec.type"']
    assert "type" not in warned["spec"]
    ignored = copy.deepcopy(bad)
    assert admit(ignored, field_validation="Ignore") == [] and "type" not in ignored["spec"]


def test_builtin_unknown_fields_and_required():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
           "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Always", "colour": "red"}]}}
    with pytest.raises(BadRequest) as err:
        admit(pod)
    assert 'unknown field "spec.containers[0].colour"' in err.value.message
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "d"},
           "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    with pytest.raises(Invalid) as err:
        admit(dep)
    assert "spec.selector: Required value" in err.value.message


def test_cel_rule_and_enum_and_bounds():
    both = copy.deepcopy(BACKEND)
    both["spec"]["mcp"] = {"targets": [{"name": "t", "static": {"host": "h", "port": 80}}]}
    with pytest.raises(Invalid) as err:
        admit(both)
    assert "exactly one of the fields in [ai static dynamicForwardProxy mcp aws a2a] must be set" in err.value.message
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g", "namespace": "d"},
          "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "port": 70000, "protocol": "HTTP"}]}}
    with pytest.raises(Invalid) as err:
        admit(gw)
    assert "spec.listeners[0].port: Invalid value: 70000" in err.value.message
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "d"},
             "spec": {"rules": [{"matches": [{"path": {"type": "Weird", "value": "/"}}]}]}}
    with pytest.raises(Invalid) as err:
        admit(route)
    assert 'spec.rules[0].matches[0].path.type: Unsupported value: "Weird"' in err.value.message


def test_schema_defaults_and_builtin_defaults():
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g", "namespace": "d"},
          "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}}
    admit(gw)
    assert gw["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
              "stringData": {"Authorization": "sk-ant-1"}}
    admit(secret)
    assert secret["type"] == "Opaque" and secret["data"] == {"Authorization": "c2stYW50LTE="}
    assert "stringData" not in secret


def test_names():
    assert validate_name(by_kind("v1", "ConfigMap"), "a.b-c") is None
    assert "RFC 1123 subdomain" in validate_name(by_kind("v1", "ConfigMap"), "Bad")
    assert "RFC 1123 label" in validate_name(by_kind("v1", "Namespace"), "a.b")
    assert "DNS-1035" in validate_name(by_kind("v1", "Service"), "1abc")


def test_check_unknown_on_partial_config():
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "datum": {"a": "b"}}
    with pytest.raises(BadRequest):
        check_unknown(copy.deepcopy(cfg), by_kind("v1", "ConfigMap"))
    assert check_unknown(cfg, by_kind("v1", "ConfigMap"), "Warn") == ['unknown field "datum"'] and "datum" not in cfg


def test_cel_rules_compile_per_kind_on_first_use(tmp_path):
    # a fresh interpreter: what matters is what creating the app loads, and what one object adds
    script = f"""
import sys
from pathlib import Path
from agwlab.sandbox.apiserver import create_app, validation
from agwlab.sandbox.kinds import by_kind
from agwlab.sandbox.paths import SandboxPaths
from agwlab.sandbox.store import Invalid, Store
paths = SandboxPaths(Path({str(tmp_path)!r}) / "s")
paths.ensure()
create_app(Store(paths.store), token="t", paths=paths)
print("cel" in sys.modules or "cel.cel" in sys.modules, sorted(validation._COMPILED))
gw = {{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
      "metadata": {{"name": "g", "namespace": "default"}},
      "spec": {{"gatewayClassName": "a", "listeners": [{{"name": "x", "port": 80, "protocol": "HTTP"}},
                                                      {{"name": "x", "port": 81, "protocol": "HTTP"}}]}}}}
try:
    validation.admit(gw)
except Invalid as exc:
    print("Listener name must be unique" in exc.message)
print(sorted(validation._COMPILED), "prompt_toolkit" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False []"
    assert out[1] == "True"
    assert out[2] == "[('gateway.networking.k8s.io', 'gateways')] False"
