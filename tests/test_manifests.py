"""The lab's objects: the tutorial's, with every correction of the behaviour reference §7."""

import yaml

from agwlab import manifests, stages
from agwlab.secrets import ApiKey

KEY = "sk-ant-api03-MANIFESTKEYvalue0123456789-wxyz"


def _by_kind(stage, **kw):
    return {(m.kind, m.name): m for m in stages.objects(stage, **kw)}


def test_gateway_uses_the_oss_class_and_accepts_routes_from_all_namespaces():
    gw = manifests.gateway().obj
    assert gw["metadata"] == {
        **gw["metadata"],
        "name": "agentgateway-route",
        "namespace": "agentgateway-system",
    }
    assert gw["spec"]["gatewayClassName"] == "agentgateway"
    (listener,) = gw["spec"]["listeners"]
    assert (listener["port"], listener["protocol"]) == (8080, "HTTP")
    assert listener["allowedRoutes"]["namespaces"]["from"] == "All"
    assert manifests.gateway(gateway_class="enterprise-agentgateway").obj["spec"]["gatewayClassName"] == (
        "enterprise-agentgateway"
    )


def test_every_route_attaches_to_the_gateway_by_name_and_namespace():
    routes = [m for s in ("llm", "mcp") for m in stages.objects(s) if m.kind == "HTTPRoute"]
    assert {r.name for r in routes} == {"claude", "mcp-route"}
    for route in routes:
        assert route.obj["spec"]["parentRefs"] == [
            {"name": "agentgateway-route", "namespace": "agentgateway-system"}
        ]
        for rule in route.obj["spec"]["rules"]:
            assert "filters" not in rule  # no URLRewrite
            assert rule["matches"][0]["path"]["type"] == "PathPrefix"
    paths = {r.name: [m["path"]["value"] for m in r.obj["spec"]["rules"][0]["matches"]] for r in routes}
    assert paths == {"claude": ["/anthropic"], "mcp-route": ["/mcp", "/sse"]}


def test_mcp_backend_has_no_type_and_a_static_sse_target():
    backend = manifests.mcp_backend().obj
    assert "type" not in backend["spec"]
    (target,) = backend["spec"]["mcp"]["targets"]
    assert target["static"] == {
        "host": "mcp-website-fetcher.default.svc.cluster.local",
        "port": 80,
        "protocol": "SSE",
    }


def test_fetcher_keeps_the_tutorial_image_without_app_protocol():
    objs = _by_kind("mcp")
    deploy = objs[("Deployment", "mcp-website-fetcher")].obj
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "ghcr.io/peterj/mcp-website-fetcher:"
    )
    port = objs[("Service", "mcp-website-fetcher")].obj["spec"]["ports"][0]
    assert port == {"port": 80, "targetPort": 8000, "protocol": "TCP"}


def test_tracing_policy_targets_the_gateway_and_the_collector():
    policy = manifests.tracing_policy().obj
    assert policy["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "agentgateway-route"}
    ]
    tracing = policy["spec"]["frontend"]["tracing"]
    assert tracing["backendRef"] == {
        "name": "opentelemetry-collector-traces",
        "namespace": "telemetry",
        "port": 4317,
    }
    names = {(m.kind, m.name, m.namespace) for m in manifests.collector()}
    assert ("Service", "opentelemetry-collector-traces", "telemetry") in names
    assert ("Deployment", "opentelemetry-collector-traces", "telemetry") in names


def test_secret_carries_the_key_but_never_shows_it():
    secret = manifests.anthropic_secret(ApiKey(KEY, "env"))
    assert secret.obj["stringData"] == {"Authorization": KEY}
    for text in (secret.yaml(), str(secret), secret._repr_html_()):
        assert KEY not in text and "$ANTHROPIC_API_KEY" in text
    backend = manifests.anthropic_backend().obj
    assert backend["spec"]["policies"]["auth"]["secretRef"] == {"name": "anthropic-secret"}
    assert backend["spec"]["ai"]["provider"]["anthropic"]["model"] == "claude-sonnet-4-6"  # a current model
    assert manifests.anthropic_backend(model=None).obj["spec"]["ai"]["provider"]["anthropic"] == {}


def test_every_object_is_labelled_and_corrections_are_explained():
    for stage in ("llm", "tracing", "mcp"):
        for m in stages.objects(stage):
            assert m.obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "agwlab"
    notes = {m.name: m.note for s in ("llm", "tracing", "mcp") for m in stages.objects(s)}
    assert "URLRewrite" in notes["claude"]
    assert "spec.type" in notes["mcp-backend"]
    assert "enterprise-agentgateway" in notes["agentgateway-route"]


def test_stage_yaml_is_applyable_yaml_with_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    docs = list(yaml.safe_load_all(stages.stage_yaml("llm", api_key=None)))
    assert [d["kind"] for d in docs] == ["Gateway", "Secret", "AgentgatewayBackend", "HTTPRoute"]
    assert docs[1]["stringData"]["Authorization"] == KEY
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    text = stages.stage_yaml("llm", api_key=None)
    assert "Authorization: $ANTHROPIC_API_KEY" in text
    tracing = stages.stage_yaml("tracing", api_key=None)
    assert [d["kind"] for d in yaml.safe_load_all(tracing)] == ["AgentgatewayPolicy"]
    assert "helm upgrade -i opentelemetry-collector-traces" in tracing
    mcp = list(yaml.safe_load_all(stages.stage_yaml("mcp", api_key=None)))
    assert [d["kind"] for d in mcp] == ["Deployment", "Service", "AgentgatewayBackend", "HTTPRoute"]


def test_stage_yaml_applies_with_real_kubectl(kubectl, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    for stage in ("llm", "tracing", "mcp"):
        out = kubectl("apply", "--dry-run=server", "-f", "-", input=stages.stage_yaml(stage, api_key=None))
        assert "(server dry run)" in out and KEY not in out


def test_lab_objects_lists_everything_in_creation_order():
    objs = stages.lab_objects()
    assert objs[0] == ("Gateway", "agentgateway-route", "agentgateway-system")
    assert objs.index(("HTTPRoute", "mcp-route", "agentgateway-system")) < objs.index(
        ("AgentgatewayPolicy", "llm-rate-limit", "agentgateway-system"))  # the later notebooks' objects last
    assert len(objs) == len(set(objs))
    kinds = [o[0] for o in objs]
    assert kinds.index("Deployment") < kinds.index("AgentgatewayPolicy")  # the collector before its policy
