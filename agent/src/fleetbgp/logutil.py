"""Small helpers for log lines: a rate limit and escaping for lines fed by someone else's input,
and the event name a line carries in JSON logs.

A peer or an API program decides how often we log and what goes into the line; these keep both
in bounds (a flood of warnings starved keepalives to other peers; raw control characters rewrite
a terminal or forge a second line)."""

from __future__ import annotations

import time
from collections.abc import Callable


def log_event(name: str) -> dict[str, str]:
    """`log.info(..., extra=log_event("session_established"))`: the line's `event` in JSON logs
    (logsetup.JsonFormatter). The names are an interface, matched by alerts and log queries:
    docs/agent/operations.md lists every one, and test_log_events.py holds the list and the code
    together. Lines without one say `"event": "message"`."""
    return {"event": name}


class RateLimiter:
    """Allow `burst` events per `window` seconds; count the rest and say how many once it reopens."""

    def __init__(self, burst: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.window = window
        self.clock = clock
        self.start = 0.0
        self.count = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """(may log now, how many were suppressed since the last time one was logged)."""
        now = self.clock()
        if now - self.start >= self.window:
            self.start = now
            self.count = 0
        if self.count < self.burst:
            self.count += 1
            held, self.suppressed = self.suppressed, 0
            return True, held
        self.suppressed += 1
        return False, 0

    def window_left(self) -> float:
        """Seconds until the current window ends (0 when it already has)."""
        return max(0.0, self.start + self.window - self.clock())

    def take_suppressed(self) -> int:
        """The count of suppressed events, for a caller that reports it itself (at window end)."""
        held, self.suppressed = self.suppressed, 0
        return held


def printable(text: str) -> str:
    """text with control characters and U+FFFD (what bytes that were not UTF-8 decode to) escaped
    the way repr() escapes them, so a log line shows what was received and stays one line."""
    if text.isprintable() and "\ufffd" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\ufffd" else _escape(c) for c in text)


def _escape(char: str) -> str:
    shown = repr(char)[1:-1]
    if shown != char:  # \t, \x00, \u200b ...
        return shown
    code = ord(char)  # printable to repr, like U+FFFD
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
