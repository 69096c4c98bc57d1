"""Driver for our own agent: writes an ExaBGP-syntax config and runs
``[sys.executable, '-m', 'fleetbgp', 'run', CONF]`` inside a namespace, stderr to a log file."""

from __future__ import annotations

import ast
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import NetlabError
from .exaconf import Neighbor, render_config
from .ns import Lab, Namespace, run
from .util import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT_SRC = REPO_ROOT / "agent" / "src"


class FleetbgpAgent:
    """``fleetbgp run CONF`` in a namespace.

    The interpreter is ``python`` (default: the running one, i.e. the project venv); ``agent/src`` is
    put on PYTHONPATH so an uninstalled checkout works too. Its control socket is
    ``<workdir>/<name>.sock`` (FLEETBGP_CONTROL_SOCKET); metrics stay on the namespace's own
    loopback. ``log_text()``/``log_tail()`` show its stderr; ``reload()`` rewrites the config and
    sends SIGHUP (the agent's reload signal).
    """

    #: eBGP: a configured as-path goes out as written, as ExaBGP sends it (our AS only when empty)
    prepends_as_path = False

    def __init__(self, lab: Lab, ns: Namespace, neighbors: Sequence[Neighbor] = (), name: str = "fleetbgp",
                 config_text: str | None = None, python: str | None = None,
                 env: dict[str, str] | None = None, log_level: str | None = None):
        self.lab, self.ns, self.name = lab, ns, name
        self.neighbors = list(neighbors)
        self.raw_config = config_text
        self.python = python or sys.executable
        self.conf = lab.path(f"{name}.conf")
        # its own control socket: never /run/fleetbgp/control.sock, shared by every namespace
        self.control_socket = lab.path(f"{name}.sock")
        self.extra_env = dict(env or {})
        self.log_level = log_level
        self.proc = None

    def config_text(self) -> str:
        return self.raw_config if self.raw_config is not None else render_config(self.neighbors)

    def env(self) -> dict[str, str]:
        pp = os.environ.get("PYTHONPATH")
        e = {"PYTHONPATH": f"{AGENT_SRC}{os.pathsep + pp if pp else ''}", "PYTHONUNBUFFERED": "1",
             "FLEETBGP_CONTROL_SOCKET": str(self.control_socket)}
        e.update(self.extra_env)
        return e

    def write_config(self) -> None:
        self.conf.write_text(self.config_text())

    def argv(self, *args: str) -> list[str]:
        return [self.python, "-m", "fleetbgp", *args]

    def validate(self) -> tuple[int, str]:
        self.write_config()
        cp = run(self.argv("validate", str(self.conf)), check=False, env={**os.environ, **self.env()})
        return cp.returncode, cp.stdout + cp.stderr

    def start(self) -> FleetbgpAgent:
        self.write_config()
        argv = self.argv("run", str(self.conf))
        if self.log_level:
            argv = self.argv("run", "--log-level", self.log_level, str(self.conf))
        if self.proc is None:
            self.proc = self.lab.spawn(self.ns, argv, name=self.name, env=self.env())
        else:
            self.proc.start()
        return self

    def reload(self, neighbors: Sequence[Neighbor] | None = None, config_text: str | None = None) -> None:
        """Rewrite the config file and send SIGHUP."""
        if neighbors is not None:
            self.neighbors = list(neighbors)
        if config_text is not None:
            self.raw_config = config_text
        self.write_config()
        self.proc.ensure_alive()
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 5) -> int | None:
        return self.proc.stop(timeout=timeout) if self.proc else None

    #: the exit status of `fleetbgp restart` (daemon.RESTART_EXIT_STATUS), which the unit restarts
    RESTART_EXIT_STATUS = 75

    def restart_as_the_unit_does(self, graceful: bool, neighbors: Sequence[Neighbor] | None = None,
                                 timeout: float = 30) -> str:
        """``fleetbgp restart [--graceful]`` over the control socket, then what systemd's
        ``RestartForceExitStatus=75`` does: wait for the agent to exit 75 and start it again, with
        ``neighbors`` written to the config first (a config changed while the agent was down).
        Returns the command's output."""
        self.ensure_alive()
        self.proc.expected = False  # it is about to exit on its own: not a crash for check_alive
        argv = self.argv("restart", *(["--graceful"] if graceful else []),
                         "--socket", str(self.control_socket))
        cp = run(argv, check=False, env={**os.environ, **self.env()})
        if cp.returncode != 0:
            raise NetlabError(f"fleetbgp restart exited {cp.returncode}: {cp.stdout}{cp.stderr}\n"
                              f"{self.log_tail()}")
        code = self.proc.wait_exit(timeout)
        if code != self.RESTART_EXIT_STATUS:
            raise NetlabError(f"{self.name} exited {code} after `fleetbgp restart`, not "
                              f"{self.RESTART_EXIT_STATUS}\n{self.log_tail()}")
        self.proc.stop()  # reaps it and closes the log
        if neighbors is not None:
            self.neighbors = list(neighbors)
        self.start()
        return cp.stdout

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def ensure_alive(self) -> None:
        if self.proc is None:
            raise NetlabError(f"{self.name} not started")
        self.proc.ensure_alive()

    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def log_tail(self, lines: int = 80) -> str:
        return self.proc.log_tail(lines) if self.proc else f"<{self.name} not started>"

    # -- what the agent says about its sessions (stderr, INFO level) --------------------------
    def established(self, peer: str) -> bool:
        """True when the last session event the agent logged for ``peer`` is "session established"."""
        state = None
        rx = re.compile(rf"peer {re.escape(peer)}: (session established|session down)")
        for m in rx.finditer(self.log_text()):
            state = m.group(1)
        return state == "session established"

    def rib_in_counts(self, peer: str) -> dict[str, int]:
        """The last adj-rib-in counts the agent logged for ``peer`` ({"ipv4 unicast": N, ...}),
        from its End-of-RIB (INFO) or per-UPDATE (DEBUG) log lines; {} if none yet."""
        last: dict[str, int] = {}
        rx = re.compile(rf"peer {re.escape(peer)}: .*adj-rib-in: (\{{[^}}]*\}})")
        for m in rx.finditer(self.log_text()):
            try:
                last = ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                pass
        return last

    def wait_log(self, pattern: str, timeout: float = 20, count: int = 1) -> list[re.Match]:
        """Wait until ``pattern`` (a regex) matches ``count`` times in the agent's log."""
        rx = re.compile(pattern, re.M)

        def check():
            text = self.log_text()
            found = list(rx.finditer(text))
            if len(found) >= count:
                return found
            self.lab.check_alive()
            return None
        return wait_until(check, timeout, f"{self.name} log to match /{pattern}/ x{count}",
                          describe=self.log_tail)
