"""Names: one source for every object's name, and where a learner's namespace comes from."""

from __future__ import annotations

import pytest

from agwlab import stages
from agwlab.names import NAMESPACE_ENV, Names, names_for


def test_alone_on_a_cluster_the_lab_keeps_the_docs_layout():
    names = names_for(context_namespace=None, environ={})
    assert names == names_for(context_namespace="default", environ={}) == Names()
    assert (names.namespace, names.gateway, names.mcp_namespace, names.telemetry_namespace) == (
        "agentgateway-system",
        "agentgateway-route",
        "default",
        "telemetry",
    )


def test_the_environment_wins_over_the_context_namespace():
    assert names_for(context_namespace="agwlab-bob", environ={}).namespace == "agwlab-bob"
    chosen = names_for(context_namespace="agwlab-bob", environ={NAMESPACE_ENV: "agwlab-alice"})
    assert (chosen.namespace, chosen.mcp_namespace) == ("agwlab-alice", "agwlab-alice")
    assert chosen.gateway_ref == "agwlab-alice/agentgateway-route"
    assert chosen.fetcher_host == "mcp-website-fetcher.agwlab-alice.svc.cluster.local"
    assert chosen.collector_host == "opentelemetry-collector-traces.agwlab-alice"  # spans of her own


@pytest.mark.parametrize("bad", ["Alice", "a_b", "-x", "x" * 64, ""])
def test_a_bad_namespace_is_refused_with_what_to_use(bad):
    with pytest.raises(ValueError, match="lower-case"):
        names_for(environ={NAMESPACE_ENV: bad or "UPPER"})
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        Names(gateway=bad)


def test_every_manifest_of_every_stage_follows_the_names():
    names = Names.for_namespace("agwlab-carol").replace(gateway="carols-gateway", secret="carols-key")
    objects = [
        *stages.objects("llm", names=names),
        *stages.objects("tracing", names=names),
        *stages.objects("mcp", names=names),
    ]
    assert {m.namespace for m in objects} == {"agwlab-carol"}
    text = "\n".join(m.yaml() for m in objects)
    assert "agentgateway-system" not in text and "agentgateway-route" not in text
    assert "anthropic-secret" not in text
    assert "carols-gateway" in text and "carols-key" in text
    assert stages.lab_objects(names)[0] == ("Gateway", "carols-gateway", "agwlab-carol")
