"""BIRD 2 driver: config in the lab's work dir, its own control socket, run in the foreground
(``bird -f``) so the PID we hold is BIRD's; birdc helpers and a ``show route all`` parser."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .bfd import BirdBfdSession, parse_bird_bfd_sessions
from .errors import NetlabError
from .flowspec import BirdFlow, parse_bird_flows
from .ns import Lab, Namespace, run
from .util import wait_until, which_or_fail

_CLOCK = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?$")
SINCE_SLIP_MS = 3


@dataclass(frozen=True, eq=False)
class Since:
    """BIRD's "Since" of a protocol. Equal within SINCE_SLIP_MS: BIRD can move it by a millisecond a
    moment after the session reads Established, with no flap (seen under load even after
    wait_established settled); a real flap (Cease, TCP, OPEN, KEEPALIVE) takes longer than that."""

    text: str

    def _ms(self) -> int | None:
        m = _CLOCK.search(self.text)
        if m is None:
            return None
        h, mi, sec, ms = m.groups()
        return ((int(h) * 60 + int(mi)) * 60 + int(sec)) * 1000 + int(ms or 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Since):
            return NotImplemented
        a, b = self._ms(), other._ms()
        if a is None or b is None or self.text[:-12] != other.text[:-12]:
            return self.text == other.text
        return abs(a - b) <= SINCE_SLIP_MS

    def __str__(self) -> str:
        return self.text


@dataclass
class BirdPeer:
    """One ``protocol bgp`` block. ``neighbor`` may be ``fe80::2%IFACE`` for a link-local session."""

    name: str  # protocol name: avoid BIRD keywords (md5, ibgp, ...): prefer "agent4", "peer_x"
    neighbor: str
    peer_as: int
    local_as: int
    local_address: str | None = None
    ipv4: bool = True
    ipv6: bool = False
    import_: str = "all"
    export: str = "none"
    hold: int = 9
    keepalive: int | None = None
    password: str | None = None
    ttl_security: bool = False
    passive: bool = False
    multihop: int | None = None
    port: int | None = None
    channel_extra: str = ""  # raw options inside each channel block, e.g. "gateway direct;"
    flow4: bool = False  # a FlowSpec channel into the table flowtab4 (Bird adds the table)
    flow6: bool = False  # ... flowtab6
    bfd: bool = False  # `bfd on;` (needs a `protocol bfd`: netlab.bfd.bird_bfd_protocol)
    extra: str = ""  # raw lines inside the protocol block

    def render(self) -> str:
        local = (f"local {self.local_address} as {self.local_as};" if self.local_address
                 else f"local as {self.local_as};")
        neighbor, _, iface = self.neighbor.partition("%")
        lines = [
            f"protocol bgp {self.name} {{",
            f"  {local}",
            f"  neighbor {neighbor}{f' port {self.port}' if self.port else ''} as {self.peer_as};",
        ]
        if iface:  # BIRD's lexer rejects "fe80::2%name-with-dash": use the interface option
            lines.append(f'  interface "{iface}";')
        lines += [
            f"  hold time {self.hold};",
            # fast, deterministic recovery for tests (defaults: 5 s, 120 s, 60-300 s)
            "  connect delay time 1;",
            "  connect retry time 2;",
            "  error wait time 1, 2;",
            "  error forget time 10;",
        ]
        if self.keepalive is not None:
            lines.append(f"  keepalive time {self.keepalive};")
        if self.password is not None:
            lines.append(f'  password "{self.password}";')
        if self.ttl_security:
            lines.append("  ttl security on;")
        if self.passive:
            lines.append("  passive on;")
        if self.multihop is not None:
            lines.append(f"  multihop {self.multihop};")
        if self.bfd:
            lines.append("  bfd on;")
        for fam, on in (("ipv4", self.ipv4), ("ipv6", self.ipv6)):
            if on:
                lines.append(f"  {fam} {{ import {self.import_}; export {self.export}; "
                             f"{self.channel_extra}}};")
        for fam, on in (("flow4", self.flow4), ("flow6", self.flow6)):
            if on:
                lines.append(f"  {fam} {{ table flowtab{fam[-1]}; import {self.import_}; "
                             f"export {self.export}; }};")
        if self.extra:
            lines.extend("  " + x for x in self.extra.strip().splitlines())
        lines.append("}")
        return "\n".join(lines)


@dataclass
class BirdRoute:
    """One route from ``show route all``. Attribute values as BIRD prints them, normalised:
    as_path a list of ints, communities a list of (a, b), large_communities a list of (a, b, c)."""

    prefix: str
    table: str
    protocol: str
    primary: bool = False
    origin: str | None = None          # "IGP" | "EGP" | "Incomplete"
    as_path: list[int] = field(default_factory=list)
    next_hop: list[str] = field(default_factory=list)  # BGP.next_hop (may be global + link-local)
    gateway: str | None = None         # "via X on IF"
    med: int | None = None
    local_pref: int | None = None
    communities: list[tuple[int, int]] = field(default_factory=list)
    large_communities: list[tuple[int, int, int]] = field(default_factory=list)
    ext_communities: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)  # every "BGP.x: y" line, raw

    def common(self) -> dict:
        """The common route shape shared with the GoBGP and ExaBGP drivers."""
        return {
            "prefix": self.prefix, "next_hop": self.next_hop[0] if self.next_hop else self.gateway,
            "next_hops": list(self.next_hop), "origin": (self.origin or "").lower() or None,
            "as_path": list(self.as_path), "med": self.med, "local_pref": self.local_pref,
            "communities": list(self.communities), "large_communities": list(self.large_communities),
            "ext_communities": list(self.ext_communities),
        }

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "prefix", "table", "protocol", "origin", "as_path", "next_hop", "med", "local_pref",
            "communities", "large_communities", "ext_communities")}


_ROUTE_RE = re.compile(r"^(?P<prefix>\S+)?\s+(?P<kind>unicast|unreachable|blackhole|prohibit|\S+)\s+"
                       r"\[(?P<proto>\S+)\s[^\]]*\](?P<rest>.*)$")


def parse_bird_routes(text: str) -> list[BirdRoute]:
    """Parse the output of ``birdc show route [table X] all``."""
    routes: list[BirdRoute] = []
    table = ""
    prefix = None
    cur: BirdRoute | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("BIRD ") or line.startswith("Access restricted"):
            continue
        m = re.match(r"^Table (\S+):$", line)
        if m:
            table = m.group(1)
            continue
        m = _ROUTE_RE.match(line)
        if m and not raw.startswith("\t") and "[" in line and not line.lstrip().startswith("BGP."):
            if m.group("prefix"):
                prefix = m.group("prefix")
            cur = BirdRoute(prefix=prefix, table=table, protocol=m.group("proto"),
                            primary=" * " in (m.group("rest") + " "))
            routes.append(cur)
            continue
        if cur is None:
            continue
        s = line.strip()
        m = re.match(r"^via (\S+) on (\S+)", s)
        if m:
            cur.gateway = m.group(1)
            continue
        m = re.match(r"^BGP\.(\w+):\s*(.*)$", s)
        if not m:
            continue
        key, val = m.group(1), m.group(2).strip()
        cur.attrs[key] = val
        if key == "origin":
            cur.origin = val
        elif key == "as_path":
            cur.as_path = [int(x) for x in re.findall(r"\d+", val)]
        elif key == "next_hop":
            cur.next_hop = val.split()
        elif key == "med":
            cur.med = int(val)
        elif key == "local_pref":
            cur.local_pref = int(val)
        elif key == "community":
            cur.communities = [(int(a), int(b)) for a, b in re.findall(r"\((\d+),\s*(\d+)\)", val)]
        elif key == "large_community":
            cur.large_communities = [(int(a), int(b), int(c))
                                     for a, b, c in re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", val)]
        elif key == "ext_community":
            cur.ext_communities = re.findall(r"\(([^)]*)\)", val)
    return routes


class Bird:
    """A BIRD 2 instance in a namespace.

    >>> bird = Bird(lab, ns, router_id="10.255.1.1")
    >>> bird.add_peer(BirdPeer("p4", neighbor="10.255.1.2", peer_as=65001, local_as=65000))
    >>> bird.start(); bird.wait_established("p4")
    """

    def __init__(self, lab: Lab, ns: Namespace, router_id: str, name: str = "bird"):
        self.bird = which_or_fail("bird")
        self.birdc_path = which_or_fail("birdc")
        self.lab, self.ns, self.router_id, self.name = lab, ns, router_id, name
        self.conf = lab.path(f"{name}.conf")
        self.sock = lab.path(f"{name}.ctl")
        self.pidfile = lab.path(f"{name}.pid")
        self.peers: dict[str, BirdPeer] = {}
        self.statics: list[str] = []
        self.extra: list[str] = []
        self.proc = None

    # -- configuration -----------------------------------------------------------------------
    def add_peer(self, peer: BirdPeer = None, **kw) -> BirdPeer:
        peer = peer or BirdPeer(**kw)
        self.peers[peer.name] = peer
        return peer

    def add_static(self, name: str, family: str, routes: Sequence[str]) -> None:
        """A static protocol; ``routes`` like ``"192.0.2.0/24 blackhole"``, family ipv4|ipv6."""
        body = "\n".join(f"  route {r};" for r in routes)
        self.statics.append(f"protocol static {name} {{\n  {family};\n{body}\n}}")

    def config_text(self) -> str:
        parts = [
            "log stderr all;",
            f"router id {self.router_id};",
            "debug protocols { states, events };",
            "protocol device { scan time 10; }",
            *(f"flow{v} table flowtab{v};" for v in "46"
              if any(getattr(p, f"flow{v}") for p in self.peers.values())),
            *self.statics,
            *(p.render() for p in self.peers.values()),
            *self.extra,
        ]
        return "\n\n".join(parts) + "\n"

    def write_config(self) -> None:
        self.conf.write_text(self.config_text())
        cp = run([self.bird, "-p", "-c", str(self.conf)], check=False)
        if cp.returncode != 0:
            raise NetlabError(f"BIRD rejects {self.conf}: {cp.stderr.strip()}\n{self.config_text()}")

    # -- process -----------------------------------------------------------------------------
    def start(self) -> Bird:
        self.write_config()
        self.sock.unlink(missing_ok=True)
        argv = [self.bird, "-f", "-c", str(self.conf), "-s", str(self.sock), "-P", str(self.pidfile)]
        if self.proc is None:
            self.proc = self.lab.spawn(self.ns, argv, name=self.name)
        else:
            self.proc.start()
        wait_until(lambda: self._ready(), 10, f"{self.name} control socket", describe=self.proc.log_tail)
        return self

    def _ready(self) -> bool:
        self.lab.check_alive()
        if not self.sock.exists():
            return False
        return run([self.birdc_path, "-s", str(self.sock), "show", "status"], check=False).returncode == 0

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def kill(self) -> None:
        """SIGKILL BIRD (no NOTIFICATION reaches the peer: its TCP socket is just closed by the kernel)."""
        if self.proc:
            self.proc.kill()

    def pause(self) -> None:
        self.proc.pause()

    def resume(self) -> None:
        self.proc.resume()

    def reconfigure(self) -> str:
        """Write the current config and ``birdc configure`` it."""
        self.write_config()
        return self.birdc("configure")

    # -- birdc -------------------------------------------------------------------------------
    def birdc(self, *args: str, timeout: float = 10) -> str:
        cp = run([self.birdc_path, "-s", str(self.sock), *args], check=False, timeout=timeout)
        if cp.returncode != 0:
            raise NetlabError(f"birdc {' '.join(args)} failed: {cp.stdout}{cp.stderr}\n"
                              f"{self.proc.log_tail()}")
        return cp.stdout

    def restart(self, proto: str) -> str:
        return self.birdc("restart", proto)

    def disable(self, proto: str) -> str:
        return self.birdc("disable", proto)

    def enable(self, proto: str) -> str:
        return self.birdc("enable", proto)

    def protocol_info(self, proto: str) -> str:
        return self.birdc("show", "protocols", "all", proto)

    def state(self, proto: str) -> str:
        """BGP state of a protocol: Idle, Connect, Active, OpenSent, OpenConfirm, Established, Down."""
        m = re.search(r"BGP state:\s+(\S+)", self.protocol_info(proto))
        if m:
            return m.group(1)
        m = re.search(rf"^{re.escape(proto)}\s+BGP\s+\S+\s+(\S+)", self.protocol_info(proto), re.M)
        return m.group(1) if m else "?"

    def since(self, proto: str) -> Since:
        """The time of the protocol's last state change (the "Since" column): it changes when a
        session goes down and comes back, so comparing it tells whether a session flapped."""
        m = re.search(rf"^{re.escape(proto)}\s+BGP\s+\S+\s+\S+\s+(\S+(?: \S+)?)\s+\S+",
                      self.protocol_info(proto), re.M)
        return Since(m.group(1) if m else "?")

    def established(self, proto: str) -> bool:
        self.lab.check_alive()
        return self.state(proto) == "Established"

    def wait_established(self, proto: str, timeout: float = 20) -> None:
        """Established, and settled: BIRD can move the "Since" time once more a moment after the BGP
        state reads Established (seen: 1 ms later, no flap), and tests compare since() to tell flaps."""
        def settled() -> bool:
            if not self.established(proto):
                return False
            first = self.since(proto)
            time.sleep(0.1)
            return self.established(proto) and self.since(proto) == first

        wait_until(settled, timeout, f"BIRD protocol {proto} Established",
                   describe=lambda: self.diagnostics(proto))

    def wait_not_established(self, proto: str, timeout: float = 30) -> None:
        wait_until(lambda: not self.established(proto), timeout,
                   f"BIRD protocol {proto} to leave Established",
                   describe=lambda: self.diagnostics(proto))

    def imported_count(self, proto: str) -> int:
        """Sum over the protocol's channels of ``Routes: N imported``."""
        text = self.protocol_info(proto)
        return sum(int(n) for n in re.findall(r"Routes:\s+(\d+) imported", text))

    def wait_imported(self, proto: str, count: int, timeout: float = 20) -> None:
        def check() -> bool:
            self.lab.check_alive()
            return self.imported_count(proto) == count

        wait_until(check, timeout,
                   f"BIRD {proto} to hold exactly {count} imported routes",
                   describe=lambda: self.diagnostics(proto))

    def routes(self, table: str | None = None, proto: str | None = None) -> list[BirdRoute]:
        """Routes of one table (``master4``/``master6``) or, with table None, of all tables."""
        args = ["show", "route"]
        if table:
            args += ["table", table]
        else:
            args += ["table", "all"]
        if proto:
            args += ["protocol", proto]
        args.append("all")
        return parse_bird_routes(self.birdc(*args))

    def rib(self, proto: str | None = None, table: str | None = None) -> dict[str, dict]:
        """``{prefix: route}`` in the common shape, for the routes learnt from ``proto``."""
        return {r.prefix: r.common() for r in self.routes(table, proto)}

    def route(self, prefix: str, proto: str | None = None) -> BirdRoute | None:
        table = "master6" if ":" in prefix else "master4"
        found = [r for r in self.routes(table, proto) if r.prefix == prefix]
        return found[0] if found else None

    def flows(self, table: str = "flowtab4") -> dict[str, BirdFlow]:
        """FlowSpec rules of ``flowtab4``/``flowtab6``: ``{"flow4 { dst ...; }": BirdFlow}``."""
        return {f.flow: f for f in parse_bird_flows(self.birdc("show", "route", "table", table, "all"))}

    def bfd_sessions(self) -> dict[str, BirdBfdSession]:
        """``show bfd sessions`` of every ``protocol bfd``: {address: session} (netlab.bfd)."""
        return parse_bird_bfd_sessions(self.birdc("show", "bfd", "sessions"))

    def diagnostics(self, proto: str | None = None) -> str:
        out = []
        try:
            args = ("show", "protocols", "all", proto) if proto else ("show", "protocols")
            out.append(self.birdc(*args))
        except Exception as exc:
            out.append(f"(birdc failed: {exc})")
        if self.proc:
            out.append(self.proc.log_tail(40))
        return "\n".join(out)
