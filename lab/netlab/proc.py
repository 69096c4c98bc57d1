"""A long-running process started (possibly inside a namespace) and stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import NetlabError
from .util import tail, wait_until


class Proc:
    """One child process. stdout and stderr go to ``log``; it leads its own process group,
    so ``stop()`` also reaches children it spawned (API helper scripts)."""

    def __init__(self, argv: Sequence[str], name: str, log: Path, env: dict[str, str] | None = None,
                 cwd: os.PathLike | str | None = None):
        self.argv = list(argv)
        self.name = name
        self.log = Path(log)
        self.extra_env = dict(env or {})
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None
        self._logf = None
        self.paused = False
        self.expected = False  # started and not (yet) stopped on purpose

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Proc:
        if self.popen is not None and self.popen.poll() is None:
            raise NetlabError(f"{self.name} already running (pid {self.popen.pid})")
        env = dict(os.environ)
        env.update(self.extra_env)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._logf = open(self.log, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
        self._logf.write(f"=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                      stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                                      start_new_session=True)
        self.paused = False
        self.expected = True
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise NetlabError(f"{self.name} not started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: the process stays, but stops reading and writing (a silent peer)."""
        self.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)
        self.paused = False

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # our own group: start_new_session made pgid == pid
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """Stop gracefully with ``sig`` (SIGKILL after ``timeout``); return the exit code."""
        if self.popen is None:
            return None
        self.expected = False
        if self.popen.poll() is None:
            self._signal_group(sig)
            self._signal_group(signal.SIGCONT)  # a stopped (paused) process must wake to die
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(5)
        else:
            # reap leftover children of an exited leader
            self._signal_group(signal.SIGKILL)
        self.paused = False
        if self._logf:
            self._logf.write(f"=== exit {self.popen.returncode} at {time.strftime('%H:%M:%S')}\n".encode())
            self._logf.close()
            self._logf = None
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL now (a crash, from the peer's point of view)."""
        return self.stop(timeout=5, sig=signal.SIGKILL)

    def wait_exit(self, timeout: float) -> int:
        wait_until(lambda: self.popen.poll() is not None, timeout, f"{self.name} to exit",
                   describe=self.log_tail)
        return self.popen.returncode

    def ensure_alive(self) -> None:
        if not self.alive():
            raise NetlabError(f"{self.name} (pid {self.popen.pid if self.popen else '-'}) exited with "
                              f"{self.returncode}\n{self.log_tail()}")

    def rss_kib(self, field: str = "VmHWM") -> int:
        """Memory of the running process from /proc/PID/status: ``VmHWM`` (peak RSS, default) or
        ``VmRSS``, in KiB. Read it before stopping the process."""
        self.ensure_alive()
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise NetlabError(f"{field} not in /proc/{self.popen.pid}/status")

    # -- output ------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log, lines)

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exit={self.returncode}"
        return f"<Proc {self.name} pid={self.popen.pid if self.popen else '-'} {state}>"
