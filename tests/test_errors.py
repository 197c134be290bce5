"""Client errors become short LabErrors that say what to do."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from agwlab import connect
from agwlab.errors import (
    CheckFailed,
    ClusterUnreachable,
    Forbidden,
    InvalidObject,
    LabError,
    NotFound,
    from_api_error,
    missing_kind_message,
)


def _api_error(status: int, body: str) -> ApiException:
    err = ApiException(status=status, reason="x")
    err.body = body
    return err


def test_every_error_a_learner_can_meet_is_a_lab_error():
    import agwlab.sandbox
    from agwlab import errors, mcp, secrets

    public = [getattr(m, name) for m in (errors, mcp, secrets, agwlab.sandbox) for name in m.__all__]
    classes = [c for c in public if isinstance(c, type) and issubclass(c, BaseException)]
    assert {c.__name__ for c in classes} >= {"CheckFailed", "MCPError", "SandboxError", "InvalidKey"}
    assert [c.__name__ for c in classes if not issubclass(c, LabError)] == []
    assert issubclass(CheckFailed, AssertionError)


def test_status_codes_map_to_named_errors():
    assert isinstance(from_api_error(_api_error(403, '{"message":"no"}'), action="apply"), Forbidden)
    assert isinstance(from_api_error(_api_error(404, "{}"), action="get", kind="Gateway", name="g"), NotFound)
    invalid = from_api_error(
        _api_error(422, '{"message":"bad","details":{"causes":[{"field":"spec.listeners[0].port"}]}}'),
        action="apply",
        kind="Gateway",
        name="g",
    )
    assert isinstance(invalid, InvalidObject) and invalid.fields == ["spec.listeners[0].port"]
    assert "field spec.listeners[0].port" in str(invalid)


def test_no_status_means_the_cluster_is_unreachable():
    err = from_api_error(ConnectionRefusedError("refused"), action="get", kind="Gateway", name="g")
    assert isinstance(err, ClusterUnreachable) and "connect() starts it again" in str(err)


def test_messages_never_carry_a_key():
    key = "sk-ant-api03-ERRORMESSAGEKEY-0123456789-abcd"
    err = from_api_error(_api_error(422, f'{{"message":"bad value {key}"}}'), action="apply")
    assert key not in str(err) and "sk-ant-…abcd" in str(err)


def test_missing_kind_names_the_install_command():
    assert "agentgateway-crds" in missing_kind_message("AgentgatewayBackend", "agentgateway.dev/v1alpha1")
    assert "standard-install.yaml" in missing_kind_message("HTTPRoute", "gateway.networking.k8s.io/v1")


def test_connecting_to_nothing_is_cluster_unreachable(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("AGWLAB_HOME", str(tmp_path / "home"))
    with pytest.raises(ClusterUnreachable):
        connect("cluster")
