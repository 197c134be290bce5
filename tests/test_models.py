"""Models: the provider's list through the learner's key, the short list when it cannot be asked,
the retired tutorial model marked, and an unknown model's 404 told apart from the gateway's."""

from __future__ import annotations

import pytest

from agwlab import connect, kube, llm, manifests, models
from agwlab.stages import prepare
from labtest import KEY


@pytest.fixture(scope="module")
def lab(sandbox):  # type: ignore[no-untyped-def]
    lab = connect()
    prepare(lab, "llm")
    return lab


def test_the_default_is_current_and_the_tutorials_model_is_retired():
    assert models.DEFAULT_MODEL == "claude-sonnet-4-6" and models.DEFAULT_MODEL not in models.RETIRED
    assert models.RETIRED[models.TUTORIAL_MODEL] == "2026-11-30"
    assert models.Model(models.TUTORIAL_MODEL).label(today="2026-11-01").endswith("(retires 2026-11-30)")
    assert models.Model(models.TUTORIAL_MODEL).label(today="2026-11-30").endswith("(retired 2026-11-30)")


def test_the_provider_lists_its_models_for_the_learners_key(lab):
    found = models.available(lab, key=KEY)
    assert found.source == "provider", found.note
    assert found.note == "Models the sandbox's Claude stand-in lists for your key (GET /v1/models)."
    assert found.ids[0] == "claude-opus-4-7" and "claude-3-haiku-20240307" in found.ids
    assert found.ids[-1] == models.TUTORIAL_MODEL  # retired: last, and marked
    assert {v: k for k, v in found.options()}[models.TUTORIAL_MODEL].startswith(
        f"{models.TUTORIAL_MODEL} (retire")
    assert KEY not in str(found) and KEY not in found._repr_html_()


def test_a_refused_key_falls_back_to_the_short_list_and_says_why(lab):
    found = models.available(lab, key="not-a-key")
    assert found.source == "fallback"
    assert found.note == ("The lab's short list (the sandbox's Claude stand-in did not list its models: "
                          "HTTP 401 Unauthorized (the key was refused)).")
    assert found.ids[: len(models.FALLBACK_MODELS)] == list(models.FALLBACK_MODELS)


def test_an_unknown_model_gets_a_model_hint_not_a_route_hint(lab):
    kube.apply(lab, manifests.anthropic_backend(lab.names, model="claude-sonnet-3-nope"), quiet=True)
    try:
        answer = llm.wait_for_status(lab, 404, timeout=30)
        assert answer.error == "model: claude-sonnet-3-nope"
        assert answer.hint.startswith("Anthropic has no model 'claude-sonnet-3-nope' (retired, or mistyped)")
        assert "route" not in answer.hint
    finally:
        kube.apply(lab, manifests.anthropic_backend(lab.names), quiet=True)
    unrouted = llm.send_chat(lab.gateway_url("/no-route-here"), "hello", names=lab.names)
    assert unrouted.status == 404 and unrouted.hint.startswith("no route matched: is the HTTPRoute claude applied")
