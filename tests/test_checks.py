"""Lab checks: ✅/❌ for the learner, CheckFailed in strict mode, polling with a deadline."""

import http.server
import threading
import time

import pytest

from agwlab.checks import check, http_probe, is_strict
from agwlab.errors import CheckFailed


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv("AGWLAB_STRICT", "0")


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status = 200 if self.path == "/ok" else 404
            body = b"fine" if status == 200 else b"route not found"
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_strict_under_pytest_unless_turned_off(monkeypatch):
    monkeypatch.delenv("AGWLAB_STRICT", raising=False)
    assert is_strict()
    monkeypatch.setenv("AGWLAB_STRICT", "0")
    assert not is_strict()


def test_passing_check_shows_a_tick(capsys):
    result = check("01", "3", True, what="the thing is there", hint="make it")
    assert result.ok
    out = capsys.readouterr().out
    assert out.startswith("✅ [01 · 3] the thing is there")
    assert "make it" not in out


def test_failing_check_raises_in_strict_mode_naming_stage_and_step():
    with pytest.raises(CheckFailed) as err:
        check(
            "02-traces", "5", lambda: (False, "saw nothing"), what="a span arrived", hint="apply the policy"
        )
    assert (err.value.stage, err.value.step) == ("02-traces", "5")
    assert (
        "02-traces" in str(err.value)
        and "saw nothing" in str(err.value)
        and "apply the policy" in str(err.value)
    )


def test_failing_check_in_a_notebook_shows_the_hint(lenient, capsys):
    result = check("01", "2", lambda: 1 / 0, what="division works", hint="do not divide by zero")
    assert not result.ok
    out = capsys.readouterr().out
    assert "❌" in out and "ZeroDivisionError" in out and "try: do not divide by zero" in out


def test_polling_check_waits_until_it_passes():
    start = time.monotonic()
    ready_at = start + 0.6
    result = check(
        "00", "poll", lambda: time.monotonic() >= ready_at, what="ready", hint="", timeout=5, interval=0.05
    )
    assert result.ok and 0.5 <= result.elapsed < 3


def test_polling_check_gives_up_at_the_deadline(lenient):
    result = check("00", "poll", lambda: False, what="never", hint="", timeout=0.3, interval=0.05)
    assert not result.ok and 0.3 <= result.elapsed < 2


def test_check_output_is_redacted(lenient, capsys):
    key = "sk-ant-api03-SHOULDNEVERSHOWUP-abcdefgh-9xyz"
    check("01", "k", lambda: (False, f"sent {key}"), what="key", hint="")
    out = capsys.readouterr().out
    assert key not in out and "sk-ant-…9xyz" in out


def test_http_probe_passes_on_the_expected_status(server):
    ok, detail = http_probe(f"{server}/ok")()
    assert ok and "→ 200 fine" in detail
    ok, detail = http_probe(f"{server}/missing")()
    assert not ok and "404 route not found" in detail
    ok, _ = http_probe(f"{server}/missing", expect=lambda r: r.status_code != 500)()
    assert ok


def test_http_probe_reports_a_refused_connection():
    ok, detail = http_probe("http://127.0.0.1:9/", timeout=1)()
    assert not ok and "ConnectError" in detail
