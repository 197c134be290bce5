"""Widgets: text fallbacks outside Jupyter, and the shells' behaviour when they can render."""

from __future__ import annotations

import pytest

from agwlab import models, secrets, widgets
from agwlab.manifests import DEFAULT_MODEL

KEY = "sk-ant-api03-WIDGETtypedvalue-0123456789-k3y9"
pytestmark = pytest.mark.usefixtures("no_api_key")


@pytest.fixture
def rendering(monkeypatch):
    monkeypatch.setattr(widgets, "can_render", lambda: True)


def test_outside_jupyter_each_widget_prints_a_fallback(capsys):
    assert not widgets.can_render()
    assert widgets.api_key_box() is None
    assert widgets.model_picker() is None
    out = capsys.readouterr().out
    assert "ANTHROPIC_API_KEY" in out and DEFAULT_MODEL in out


def test_key_box_keeps_the_key_in_the_kernel_and_clears_itself(rendering):
    box = widgets.api_key_box()
    (password, _), status = box.children[0].children, box.children[1]
    password.value = KEY
    assert password.value == ""
    assert KEY not in status.value and "sk-ant-…k3y9" in status.value
    key = secrets.get_api_key(target="cluster")
    assert (key.source, key.reveal()) == ("widget", KEY)
    state = password.get_state()
    assert KEY not in str(state)


def test_key_box_refuses_what_is_not_a_key_and_keeps_the_previous_one(rendering):
    box = widgets.api_key_box()
    (password, _back), status = box.children[0].children, box.children[1]
    password.value = KEY
    password.value = "hello-this-is-not-a-key"
    assert password.value == ""
    assert status.value == "Not an Anthropic API key (keys look like sk-ant-api03-…, one word). Nothing was changed."
    assert secrets.get_api_key(target="cluster").reveal() == KEY
    assert "hello-this-is-not-a-key" not in str(password.get_state())


def test_key_box_takes_a_bearer_key_and_gives_the_sandbox_key_back(rendering):
    box = widgets.api_key_box()
    (password, back), status = box.children[0].children, box.children[1]
    assert back.description == "Use the sandbox key" and back.disabled
    password.value = f"Bearer {KEY}"
    assert secrets.get_api_key(target="sandbox").reveal() == KEY
    assert not back.disabled
    back.click()
    key = secrets.get_api_key(target="sandbox")
    assert key.source == "sandbox" and key.reveal() == secrets.SANDBOX_API_KEY
    assert "Back to the sandbox key" in status.value and back.disabled


def test_key_box_defers_to_the_environment(rendering, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    status = widgets.api_key_box()
    assert "environment" in status.value and KEY not in status.value


def test_model_picker_without_a_lab_offers_the_short_list_and_marks_the_retired_model(rendering, capsys):
    picker = widgets.model_picker()
    assert "The lab's short list" in capsys.readouterr().out
    assert picker.value == DEFAULT_MODEL == "claude-sonnet-4-6"
    labels = {v: k for k, v in picker.options}
    assert list(labels)[: len(models.FALLBACK_MODELS)] == list(models.FALLBACK_MODELS)
    assert labels[models.TUTORIAL_MODEL].startswith(f"{models.TUTORIAL_MODEL} (retire")


def test_model_picker_lists_the_providers_models_and_keeps_the_backends(rendering, sandbox, capsys):
    from agwlab import connect, kube, manifests
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm")
    picker = widgets.model_picker(lab)
    assert "lists for your key (GET /v1/models)" in capsys.readouterr().out
    ids = [v for _, v in picker.options]
    assert "claude-opus-4-7" in ids and "claude-3-haiku-20240307" in ids  # the stand-in's list, not the short one
    assert ids[-1] == models.TUTORIAL_MODEL  # retired models last
    assert picker.value == models.backend_model(lab) == DEFAULT_MODEL
    kube.apply(lab, manifests.anthropic_backend(lab.names, model="claude-opus-4-7"), quiet=True)
    try:
        assert widgets.model_picker(lab).value == "claude-opus-4-7"
    finally:
        kube.apply(lab, manifests.anthropic_backend(lab.names), quiet=True)


def test_request_tester_sends_through_the_gateway(rendering, sandbox, capsys):
    from agwlab import connect
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm")
    tester = widgets.request_tester(lab, prompt="hello from the tester")
    send = tester.children[2].children[2]
    capsys.readouterr()
    send.click()
    out = capsys.readouterr().out
    assert "status: 200" in out and "trace id" in out
    assert "round trip:" in out and "from this notebook" in out
    assert not send.disabled


def test_mcp_explorer_lists_and_calls_tools(rendering, sandbox, capsys):
    from agwlab import connect
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm", "mcp")
    explorer = widgets.mcp_explorer(lab)
    list_button, tool = explorer.children[0].children
    args, call_button = explorer.children[1], explorer.children[2]
    list_button.click()
    assert tool.options == ("fetch",) and not call_button.disabled
    # offline, the default arguments name the sandbox's own website: calling at once works
    assert args.value == '{"url": "http://lab-website.agwlab-system.svc.cluster.local/"}'
    capsys.readouterr()
    call_button.click()
    assert "fetch: ok" in capsys.readouterr().out


def test_agent_box_runs_the_loop_and_shows_the_transcript(rendering, sandbox, capsys):
    from agwlab import connect
    from agwlab.stages import prepare

    lab = connect()
    prepare(lab, "llm", "mcp")
    site = "http://lab-website.agwlab-system.svc.cluster.local/"
    box = widgets.agent_box(lab, question=f"What is on {site}?", max_steps=4)
    question, (steps, choice, run_button) = box.children[0], box.children[1].children
    assert question.value.endswith(f"{site}?") and steps.value == 4 and choice.value == "auto"
    capsys.readouterr()
    run_button.click()
    out = capsys.readouterr().out
    assert "answered after 2 model calls and 1 tool calls" in out and f'fetch({{"url": "{site}"}})' in out
    assert not run_button.disabled
    question.value = " "
    run_button.click()
    assert "LabError: the question is empty" in capsys.readouterr().out


def test_agent_box_outside_jupyter_says_what_to_call(capsys):
    assert widgets.agent_box(None) is None  # type: ignore[arg-type]
    assert "agwlab.agent.run(lab, question" in capsys.readouterr().out
