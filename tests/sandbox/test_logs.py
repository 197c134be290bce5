"""The sandbox's log keeps a flood of one error from filling the disk."""

from __future__ import annotations

import io
import logging

from agwlab.sandbox.logs import RepeatFilter
from labtest import poll


def _logger(stream: io.StringIO, **kw: float) -> logging.Logger:
    logger = logging.getLogger(f"agwlab.test.logs.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(**kw))
    logger.addHandler(handler)
    return logger


def test_a_repeated_error_is_written_a_few_times_then_counted() -> None:
    out = io.StringIO()
    log = _logger(out, burst=5, window=60)
    for i in range(10_000):
        log.error("accept failed: %s", f"Too many open files ({i})")
    log.error("a different error")
    lines = out.getvalue().splitlines()
    assert len(lines) == 6, lines
    assert lines[-1] == "a different error"


def test_after_the_window_the_next_one_says_how_many_were_dropped() -> None:
    out = io.StringIO()
    log = _logger(out, burst=1, window=0.2)

    def emit() -> str:
        log.warning("slow client dropped")
        return out.getvalue()

    for _ in range(50):
        emit()
    text = poll(lambda: (lambda t: t if "more like it" in t else None)(emit()), timeout=5, every=0.02,
                what="the summary line")
    first, second = text.splitlines()
    assert first == "slow client dropped"
    dropped = int(second.split("(and ")[1].split(" ")[0])
    assert dropped >= 49 and second.endswith("more like it in the last 0.2s, not logged)"), second


def test_keys_are_masked_in_the_sandbox_log() -> None:
    from agwlab.sandbox.logs import KeyMaskFilter

    out = io.StringIO()
    log = logging.getLogger("agwlab.test.logs.mask")
    log.propagate = False
    handler = logging.StreamHandler(out)
    handler.addFilter(KeyMaskFilter())
    log.addHandler(handler)
    key = "sk-ant-api03-" + "Q" * 90 + "abcd"
    log.warning("upstream refused model %s", key)
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        log.exception("request failed")
    text = out.getvalue()
    assert key not in text and text.count("sk-ant-…abcd") == 2, text
