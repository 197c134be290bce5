"""Rate-limiting the sandbox's own log: a message repeated in a flood is written a few times,
then counted, so that an error in a loop (e.g. ``accept`` failing under a connection flood)
cannot fill the disk.

Example:
    >>> import logging
    >>> handler = logging.StreamHandler()
    >>> handler.addFilter(RepeatFilter(burst=5, window=60))
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from .redact import mask_keys

__all__ = ["KeyMaskFilter", "RepeatFilter"]


class RepeatFilter(logging.Filter):
    """Let through ``burst`` records of one kind per ``window`` seconds, then drop and count.

    Records are "of one kind" when they come from the same logger and source line with the
    same level and message template (the arguments may differ). The first record let through
    after a window with drops says how many were dropped.

    Args:
        burst: records of one kind written per window.
        window: seconds.
        kinds: distinct kinds remembered (the oldest are forgotten first).
    """

    def __init__(self, burst: int = 5, window: float = 60.0, kinds: int = 1024) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.kinds = kinds
        self._seen: OrderedDict[tuple, list[float | int]] = OrderedDict()  # key -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.pathname, record.lineno, str(record.msg))
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            dropped = int(entry[2]) if entry else 0
            self._seen[key] = [now, 1, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self.kinds:
                self._seen.popitem(last=False)
            if dropped:
                record.msg = f"{record.msg} (and {dropped} more like it in the last {self.window:g}s, not logged)"
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False


class KeyMaskFilter(logging.Filter):
    """Mask API keys in every record (see :func:`agwlab.sandbox.redact.mask_keys`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_keys(text)
        if masked != text:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_keys(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_keys(record.exc_text)
        return True
