"""The sandbox serves agentgateway **v1.4.1**'s CRDs, and refuses what only later releases accept.

The schemas are the ``agentgateway-crds`` chart of tag v1.4.1
(``controller/install/helm/agentgateway-crds/templates/agentgateway.dev_*.yaml``). A field that
arrived after v1.4.1 is handled as a v1.4.1 API server handles any field its structural schema does
not declare: refused under strict field validation (kubectl's default, and the client's
``field_validation="Strict"``), pruned under the server's default (``Warn``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crds_v141 import vendored_schema

BACKEND_WITH_MODERATION = {
    "apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
    "metadata": {"name": "later-field", "namespace": "default"},
    # `moderation` under the OpenAI provider arrived after v1.4.1.
    "spec": {"ai": {"provider": {"openai": {"model": "gpt-4o-mini",
                                            "moderation": {"model": "omni-moderation-latest"}}}}},
}
PARAMETERS_WITH_SPIFFE = {
    "apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayParameters",
    "metadata": {"name": "later-field", "namespace": "default"},
    "spec": {"logging": {"level": "info"}, "spiffe": {}},           # `spiffe` is not in v1.4.1
}


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


@pytest.mark.parametrize("plural", ["agentgatewaybackends", "agentgatewaypolicies"])
def test_the_served_crd_is_v141s(api_client, plural: str) -> None:  # type: ignore[no-untyped-def]
    raw = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(
        f"{plural}.agentgateway.dev", _preload_content=False)
    crd = json.loads(raw.data)
    (version,) = crd["spec"]["versions"]
    served = version["schema"]["openAPIV3Schema"]
    assert _without_descriptions(served) == vendored_schema(plural)


def test_kubectl_refuses_a_field_only_later_releases_have(kubectl) -> None:  # type: ignore[no-untyped-def]
    proc = kubectl.run("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(BACKEND_WITH_MODERATION),
                       check=False)
    assert proc.returncode == 1
    assert ('AgentgatewayBackend in version "v1alpha1" cannot be handled as a AgentgatewayBackend: '
            'strict decoding error: unknown field "spec.ai.provider.openai.moderation"') in proc.stderr
    proc = kubectl.run("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(PARAMETERS_WITH_SPIFFE),
                       check=False)
    assert proc.returncode == 1 and 'unknown field "spec.spiffe"' in proc.stderr


def test_the_client_is_refused_under_strict_and_pruned_by_default(custom) -> None:  # type: ignore[no-untyped-def]
    args = ("agentgateway.dev", "v1alpha1", "default", "agentgatewaybackends", BACKEND_WITH_MODERATION)
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(*args, dry_run="All", field_validation="Strict")
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["reason"] == "BadRequest"
    assert 'unknown field "spec.ai.provider.openai.moderation"' in json.loads(refused.value.body)["message"]
    kept = custom.create_namespaced_custom_object(*args, dry_run="All")
    assert kept["spec"]["ai"]["provider"]["openai"] == {"model": "gpt-4o-mini"}
