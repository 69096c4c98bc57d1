"""systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram per state change to the
unix socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.

    Type=notify            READY=1 once the agent listens, STOPPING=1 on shutdown
    Type=notify-reload     RELOADING=1 + MONOTONIC_USEC=... at the start of a reload, READY=1 after
    WatchdogSec=N          WATCHDOG=1 every N/2 seconds from a task on the event loop: if the loop
                           hangs, the pings stop and systemd restarts the agent
    STATUS=...             a one-line summary `systemctl status fleetbgp` shows
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from .logutil import log_event

log = logging.getLogger("fleetbgp.systemd")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        self.watchdog_interval = _watchdog_interval(env)
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send `KEY=VALUE` lines as one datagram. True if it was delivered; never raises."""
        if self.address is None:
            return False
        path = self.address
        if path.startswith("@"):  # abstract namespace
            path = "\0" + path[1:]
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(path)
                sock.sendall(payload)
        except OSError as exc:
            if not self._warned:  # once: a missing notify socket must not fill the log
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        # MONOTONIC_USEC is required by Type=notify-reload (systemd >= 253), ignored by older ones.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    # -- watchdog ---------------------------------------------------------------------------------

    def start_watchdog(self, healthy: Callable[[], bool] | None = None) -> asyncio.Task[None] | None:
        """Ping every half watchdog interval from the running loop; `healthy()` returning False
        skips a ping (systemd then restarts us once the interval passes). None without a watchdog."""
        if self.address is None or self.watchdog_interval is None:
            return None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watchdog_loop(healthy),
                                                                name="systemd watchdog")
            log.info("systemd watchdog: pinging every %.1f s", self.watchdog_interval / 2)
        return self._task

    async def stop_watchdog(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watchdog_loop(self, healthy: Callable[[], bool] | None) -> None:
        assert self.watchdog_interval is not None
        period = max(self.watchdog_interval / 2, 0.05)
        while True:
            ok = True
            if healthy is not None:
                try:
                    ok = bool(healthy())
                except Exception:
                    log.exception("watchdog health callback failed")
                    ok = False
            if ok:
                self.watchdog()
            else:
                log.warning("not pinging the systemd watchdog: the agent is not healthy",
                            extra=log_event("watchdog_unhealthy"))
            await asyncio.sleep(period)


def _status(text: str | None) -> list[str]:
    if not text:
        return []
    return ["STATUS=" + " ".join(text.split())]  # one line


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """WATCHDOG_USEC in seconds, if it is meant for this process (WATCHDOG_PID unset or ours)."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


_default: Notifier | None = None


def notifier() -> Notifier:
    """The process's notifier (reads the environment once)."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def sd_notify(state: str) -> bool:
    """Drop-in for the daemon's original helper: `sd_notify("READY=1")`."""
    return notifier().notify(*state.split("\n"))
