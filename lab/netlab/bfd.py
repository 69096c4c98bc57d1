"""BFD peers for the interop tests: BIRD 2's ``protocol bfd`` (config and ``show bfd sessions``)
and FRR's ``bfdd`` run on its own (no zebra, no bgpd) in a namespace, driven through ``vtysh``.

BIRD 2.0.12 has no ``show bfd sessions all``: what it shows of a session is its state, the time
of the last change, ``Interval`` (its transmit interval in effect, seconds) and ``Timeout`` (its
detection time, seconds; 0 when Down). Both are negotiated values, so they prove that BIRD took
our min-rx / min-tx / multiplier: Interval = max(BIRD min tx, our min-rx), Timeout = our
multiplier x max(BIRD min rx, our min-tx). Its log (``debug protocols { states, events }``,
millisecond timestamps) says when a session changed state, which is how detection times are
measured without polling.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import NetlabError
from .ns import Lab, Namespace, run
from .util import wait_until, which_or_fail

# -- BIRD ---------------------------------------------------------------------------------------

BIRD_AUTH = {  # our `auth` names -> BIRD's `authentication` words
    "simple": "simple",
    "keyed-md5": "keyed md5",
    "meticulous-keyed-md5": "meticulous keyed md5",
    "keyed-sha1": "keyed sha1",
    "meticulous-keyed-sha1": "meticulous keyed sha1",
}


@dataclass
class BirdBfdIface:
    """One ``interface "PATTERN" { ... }`` of BIRD's ``protocol bfd`` (the first matching pattern
    wins: put specific interfaces before ``"*"``). Times in milliseconds."""

    pattern: str = "*"
    min_rx: int = 300
    min_tx: int = 300
    multiplier: int = 3
    auth: str | None = None          # one of BIRD_AUTH's keys
    password: str | None = None
    key_id: int = 1

    def render(self) -> str:
        opts = [f"min rx interval {self.min_rx} ms;", f"min tx interval {self.min_tx} ms;",
                f"multiplier {self.multiplier};"]
        if self.auth:
            opts.append(f"authentication {BIRD_AUTH[self.auth]};")
            opts.append(f'password "{self.password}" {{ id {self.key_id}; }};')
        return f'  interface "{self.pattern}" {{ {" ".join(opts)} }};'


def bird_bfd_protocol(ifaces: list[BirdBfdIface], name: str = "bfd1") -> str:
    """The ``protocol bfd`` block (add it to ``Bird.extra``; BGP protocols need ``bfd on;``)."""
    return "\n".join([f"protocol bfd {name} {{", *(i.render() for i in ifaces), "}"])


@dataclass(frozen=True)
class BirdBfdSession:
    address: str
    interface: str
    state: str            # Down, Init, Up, AdminDown
    since: str
    interval: float       # seconds: BIRD's transmit interval in effect
    timeout: float        # seconds: BIRD's detection time (0 when Down)


_BFD_ROW = re.compile(r"^(?P<addr>[0-9a-fA-F.:]+)\s+(?P<iface>\S+)\s+(?P<state>AdminDown|Down|Init|Up)\s+"
                      r"(?P<since>\S+(?: \S+)?)\s+(?P<interval>[\d.]+)\s+(?P<timeout>[\d.]+)\s*$")


def parse_bird_bfd_sessions(text: str) -> dict[str, BirdBfdSession]:
    """``birdc show bfd sessions`` -> {address: session}. The interface column can run into the
    state column when the name is long (``fbt-79a089-1a Up``): the regex splits on whitespace."""
    out: dict[str, BirdBfdSession] = {}
    for line in text.splitlines():
        m = _BFD_ROW.match(line.strip())
        if m:
            out[m.group("addr")] = BirdBfdSession(m.group("addr"), m.group("iface"), m.group("state"),
                                                  m.group("since"), float(m.group("interval")),
                                                  float(m.group("timeout")))
    return out


_BIRD_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?:<\w+> )?(.*)$", re.M)


def bird_log_events(text: str, pattern: str, after: float = 0.0) -> list[tuple[float, str]]:
    """(epoch seconds, message) of BIRD log lines whose message (the text after the time and the
    ``<TRACE>``-like class) matches ``pattern`` (a regex), at or after ``after``. BIRD writes local
    time with milliseconds (``log stderr all``)."""
    rx = re.compile(pattern)
    out = []
    for m in _BIRD_LOG_TIME.finditer(text):
        if rx.search(m.group(2)):
            ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if ts >= after:
                out.append((ts, m.group(2)))
    return out


# -- FRR bfdd -----------------------------------------------------------------------------------

FRR_DIR = "/usr/lib/frr"


@dataclass
class FrrBfdPeer:
    peer: str
    local: str
    receive_interval: int = 300
    transmit_interval: int = 300
    detect_multiplier: int = 3
    passive: bool = False

    def render(self) -> str:
        lines = [f" peer {self.peer} local-address {self.local}",
                 f"  receive-interval {self.receive_interval}",
                 f"  transmit-interval {self.transmit_interval}",
                 f"  detect-multiplier {self.detect_multiplier}"]
        if self.passive:
            lines.append("  passive-mode")
        return "\n".join([*lines, " !"])


class FrrBfdd:
    """FRR's bfdd alone in a namespace: ``bfdd -f CONF`` with its own vty socket directory, pid file
    and control socket, so it never meets a packaged FRR. It drops privileges to the ``frr`` user
    and refuses to run as root without the ``frrvty`` group, so its directory is a fresh one under
    /tmp owned by ``frr`` (the lab's work dir may sit below a root-only directory), removed when
    the lab closes. Without zebra it learns no interfaces: peers are given by addresses only
    (``peer X local-address Y``), which is enough for single hop.

    >>> bfdd = FrrBfdd(lab, ns); bfdd.add_peer(FrrBfdPeer("10.255.1.2", "10.255.1.1")); bfdd.start()
    >>> bfdd.peers()["10.255.1.2"]["status"]   # "up", "down", "init", "shutdown"
    """

    def __init__(self, lab: Lab, ns: Namespace, name: str = "bfdd") -> None:
        self.bfdd = which_or_fail("bfdd", extra_dirs=(FRR_DIR,))
        self.vtysh = which_or_fail("vtysh")
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = Path(tempfile.mkdtemp(prefix="fbt-frr-", dir="/tmp"))
        shutil.chown(self.dir, "frr", "frr")
        lab.on_close(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.conf = self.dir / "bfdd.conf"
        self.peer_list: list[FrrBfdPeer] = []
        self.proc = None

    def add_peer(self, peer: FrrBfdPeer) -> FrrBfdPeer:
        self.peer_list.append(peer)
        return peer

    def config_text(self) -> str:
        return "\n".join(["frr defaults traditional", "log stdout debugging", "log timestamp precision 3",
                          "debug bfd peer", "!", "bfd", *(p.render() for p in self.peer_list), "!", ""])

    def start(self) -> FrrBfdd:
        self.conf.write_text(self.config_text())
        shutil.chown(self.conf, "frr", "frr")
        argv = [self.bfdd, "-f", str(self.conf), "-i", str(self.dir / "bfdd.pid"),
                "--vty_socket", str(self.dir), "-z", str(self.dir / "zserv.api"),
                "--bfdctl", str(self.dir / "bfdd.sock"), "-P", "0", "--log", "stdout"]
        if self.proc is None:
            self.proc = self.lab.spawn(self.ns, argv, name=self.name)
        else:
            self.proc.start()
        wait_until(self._ready, 15, f"{self.name} vty socket", describe=self.proc.log_tail)
        return self

    def _ready(self) -> bool:
        self.lab.check_alive()
        if not (self.dir / "bfdd.vty").exists():
            return False
        return self._vtysh("show bfd peers json", check=False) is not None

    def _vtysh(self, command: str, check: bool = True) -> str | None:
        cp = run([self.vtysh, "--vty_socket", str(self.dir), "-d", "bfdd", "-c", command], check=False)
        if cp.returncode != 0:
            if check:
                raise NetlabError(f"vtysh -c {command!r} failed: {cp.stdout}{cp.stderr}\n"
                                  f"{self.proc.log_tail()}")
            return None
        return cp.stdout

    def peers(self) -> dict[str, dict]:
        """``show bfd peers json`` -> {peer address: FRR's JSON of the session} (status, diagnostic,
        remote-receive-interval, remote-transmit-interval, remote-detect-multiplier, ...)."""
        text = self._vtysh("show bfd peers json") or "[]"
        return {p["peer"]: p for p in json.loads(text)}

    def configure(self, *lines: str) -> str:
        """Change the running config: ``configure terminal``, ``bfd``, then ``lines`` in order, e.g.
        ``configure("peer 10.255.4.2 local-address 10.255.4.1", "shutdown")`` (AdminDown)."""
        argv = [self.vtysh, "--vty_socket", str(self.dir), "-d", "bfdd",
                "-c", "configure terminal", "-c", "bfd"]
        for line in lines:
            argv += ["-c", line]
        cp = run(argv, check=False)
        if cp.returncode != 0 or "%" in cp.stdout:
            raise NetlabError(f"vtysh {lines} failed: {cp.stdout}{cp.stderr}\n{self.proc.log_tail()}")
        return cp.stdout

    def pause(self) -> None:
        self.proc.pause()

    def resume(self) -> None:
        self.proc.resume()

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""
