"""The API key: precedence, masking, and redaction everywhere."""

import re

import pytest

from agwlab import secrets
from agwlab.errors import LabError

CANARY = "sk-ant-api03-CANARYtestvalue0123456789abcdefghijklmnopqrstuvwxyz-Zq9w"
pytestmark = pytest.mark.usefixtures("no_api_key")


def test_mask_keeps_kind_and_last_four():
    assert secrets.mask(CANARY) == "sk-ant-…Zq9w"
    assert secrets.mask("short") == "…"
    assert "CANARY" not in secrets.mask(CANARY)


def test_environment_wins_over_the_key_box(monkeypatch):
    secrets.accept_key("sk-ant-api03-typedintothebox-0000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    key = secrets.get_api_key(target="cluster")
    assert key.source == "env"
    assert key.reveal() == CANARY


def test_key_box_is_used_without_environment():
    secrets.accept_key("  sk-ant-api03-typedintothebox-1111  ")
    key = secrets.get_api_key(target="cluster")
    assert (key.source, key.reveal()) == ("widget", "sk-ant-api03-typedintothebox-1111")


@pytest.mark.parametrize("pasted", [f"Bearer {CANARY}", f"bearer  {CANARY}", f'"{CANARY}"',
                                    f"x-api-key: {CANARY}", f"Authorization: Bearer {CANARY}"])
def test_a_pasted_key_loses_its_wrapping(pasted):
    assert secrets.accept_key(pasted).reveal() == CANARY
    assert secrets.get_api_key(target="cluster").reveal() == CANARY


@pytest.mark.parametrize("typed", ["hello-this-is-not-a-key", "sk-ant-api03 with spaces in it", "sk-ant-"])
def test_what_is_not_a_key_is_refused_and_the_kept_key_stays(typed):
    secrets.accept_key("sk-ant-api03-typedintothebox-2222")
    with pytest.raises(secrets.InvalidKey, match="keys look like sk-ant-api03-…, one word") as caught:
        secrets.accept_key(typed)
    assert str(caught.value).endswith("Nothing was changed.") and len(str(caught.value)) < 100
    assert isinstance(caught.value, LabError)
    assert secrets.get_api_key(target="cluster").reveal() == "sk-ant-api03-typedintothebox-2222"


def test_forgetting_the_typed_key_brings_the_sandbox_key_back():
    secrets.accept_key("sk-ant-api03-typedintothebox-3333")
    secrets.forget_entered_key()
    assert secrets.get_api_key(target="sandbox").source == "sandbox"


def test_sandbox_falls_back_to_the_labelled_sandbox_key():
    key = secrets.get_api_key(target="sandbox")
    assert key.source == "sandbox"
    assert re.fullmatch(r"sk-ant-api03-[A-Za-z0-9_\-]{93}AA", key.reveal())
    assert "SANDBOX" in key.reveal()
    assert "sandbox key" in key.describe()


def test_a_cluster_without_any_key_says_what_to_do():
    with pytest.raises(LabError, match="ANTHROPIC_API_KEY"):
        secrets.get_api_key(target="cluster")


def test_api_key_prints_masked(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    key = secrets.get_api_key()
    for text in (str(key), repr(key), f"{key}", key.describe()):
        assert CANARY not in text
        assert "…Zq9w" in text


def test_redact_hides_known_and_key_shaped_values(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "not-shaped-like-anthropic-but-secret")
    secrets.get_api_key()
    text = (
        f"known=not-shaped-like-anthropic-but-secret other={CANARY} "
        "Authorization: Bearer abcdefghijklmnop x-api-key: zzzzzzzzzzzz1234"
    )
    out = secrets.redact(text)
    assert "not-shaped-like-anthropic-but-secret" not in out
    assert CANARY not in out and "sk-ant-…Zq9w" in out
    assert "abcdefghijklmnop" not in out and "Bearer ***" in out
    assert "zzzzzzzzzzzz1234" not in out and "…1234" in out


def test_redact_leaves_ordinary_text_alone():
    text = "route=agentgateway-system/claude http.status=200 trace.id=0123456789abcdef0123456789abcdef"
    assert secrets.redact(text) == text
