"""GoBGP driver: ``gobgpd`` with a TOML config in the lab dir, its gRPC API on the namespace's
loopback, and ``gobgp -p PORT ... -j`` parsing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import NetlabError
from .flowspec import gobgp_flow_rib
from .ns import Lab, Namespace
from .util import wait_until, which_or_fail


@dataclass
class GoBgpPeer:
    neighbor: str
    peer_as: int
    local_address: str | None = None
    families: Sequence[str] = ("ipv4-unicast",)
    hold: int = 9
    keepalive: int = 3
    connect_retry: int = 1
    password: str | None = None
    ttl_security: bool = False
    passive: bool = False
    add_paths_receive: bool = False  # ADD-PATH (RFC 7911) receive, on every family
    add_paths_send_max: int = 0  # ADD-PATH send: up to this many paths per prefix (0: off)
    graceful_restart: int | None = None  # RFC 4724 restart time (None: off), on every family
    gr_notification: bool = False  # RFC 8538 N bit (GoBGP's notification-enabled)

    def render(self) -> str:
        q = json.dumps
        lines = ["[[neighbors]]", "  [neighbors.config]",
                 f"    neighbor-address = {q(self.neighbor)}", f"    peer-as = {self.peer_as}"]
        if self.password is not None:
            lines.append(f"    auth-password = {q(self.password)}")
        lines += ["  [neighbors.timers.config]",
                  f"    connect-retry = {self.connect_retry}",
                  f"    hold-time = {self.hold}",
                  f"    keepalive-interval = {self.keepalive}",
                  "    idle-hold-time-after-reset = 1",
                  "  [neighbors.transport.config]",
                  f"    passive-mode = {'true' if self.passive else 'false'}"]
        if self.local_address:
            lines.append(f"    local-address = {q(self.local_address)}")
        if self.ttl_security:
            lines += ["  [neighbors.ttl-security.config]", "    enabled = true", "    ttl-min = 255"]
        if self.graceful_restart is not None:
            lines += ["  [neighbors.graceful-restart.config]", "    enabled = true",
                      f"    restart-time = {self.graceful_restart}",
                      f"    notification-enabled = {'true' if self.gr_notification else 'false'}"]
        for fam in self.families:
            lines += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                      f"      afi-safi-name = {q(fam)}"]
            if self.graceful_restart is not None:
                lines += ["    [neighbors.afi-safis.mp-graceful-restart.config]", "      enabled = true"]
            if self.add_paths_receive or self.add_paths_send_max:
                lines += ["    [neighbors.afi-safis.add-paths.config]",
                          f"      receive = {'true' if self.add_paths_receive else 'false'}",
                          f"      send-max = {self.add_paths_send_max}"]
        return "\n".join(lines)


class GoBgp:
    """A gobgpd in a namespace. ``rib("ipv4")`` is ``gobgp global rib -a ipv4 -j`` decoded into
    ``{prefix: {"prefix", "next_hop", "as_path", "med", "local_pref", "origin", "communities",
    "large_communities", "attrs"}}`` (the common route shape; ``attrs`` is GoBGP's own JSON)."""

    def __init__(self, lab: Lab, ns: Namespace, asn: int, router_id: str, listen: Sequence[str] = (),
                 name: str = "gobgp", api_port: int = 50051):
        self.gobgpd = which_or_fail("gobgpd")
        self.gobgp = which_or_fail("gobgp")
        self.lab, self.ns, self.name = lab, ns, name
        self.asn, self.router_id, self.listen = asn, router_id, list(listen)
        self.api_port = api_port
        self.peers: list[GoBgpPeer] = []
        self.conf = lab.path(f"{name}.toml")
        self.proc = None

    def add_peer(self, peer: GoBgpPeer = None, **kw) -> GoBgpPeer:
        peer = peer or GoBgpPeer(**kw)
        self.peers.append(peer)
        return peer

    def config_text(self) -> str:
        g = ["[global.config]", f"  as = {self.asn}", f'  router-id = "{self.router_id}"']
        if self.listen:
            g.append("  local-address-list = [" + ", ".join(json.dumps(a) for a in self.listen) + "]")
        return "\n".join(g) + "\n\n" + "\n\n".join(p.render() for p in self.peers) + "\n"

    def start(self) -> GoBgp:
        self.conf.write_text(self.config_text())
        argv = [self.gobgpd, "-f", str(self.conf), "-t", "toml", "-p", "-l", "info",
                "--api-hosts", f"127.0.0.1:{self.api_port}", "--pprof-disable"]
        if self.proc is None:
            self.proc = self.lab.spawn(self.ns, argv, name=self.name)
        else:
            self.proc.start()
        wait_until(self._api_ready, 15, f"{self.name} gRPC API", describe=self.proc.log_tail)
        return self

    def _api_ready(self) -> bool:
        self.lab.check_alive()
        return self.ns.run([self.gobgp, "-p", str(self.api_port), "global"], check=False).returncode == 0

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def cli(self, *args: str) -> str:
        cp = self.ns.run([self.gobgp, "-p", str(self.api_port), *args], check=False, timeout=15)
        if cp.returncode != 0:
            raise NetlabError(f"gobgp {' '.join(args)} failed: {cp.stdout}{cp.stderr}\n"
                              f"{self.proc.log_tail()}")
        return cp.stdout

    def cli_json(self, *args: str):
        out = self.cli(*args, "-j").strip()
        return json.loads(out) if out else None

    def neighbors(self) -> list[dict]:
        return self.cli_json("neighbor") or []

    def state(self, neighbor: str) -> str:
        for n in self.neighbors():
            addresses = (n.get("state", {}).get("neighbor_address"),
                         n.get("conf", {}).get("neighbor_address"))
            if neighbor in addresses:
                return str(n.get("state", {}).get("session_state", "?"))
        return "absent"

    def established(self, neighbor: str) -> bool:
        self.lab.check_alive()
        return self.state(neighbor).lower() in ("established", "6")

    def wait_established(self, neighbor: str, timeout: float = 30) -> None:
        wait_until(lambda: self.established(neighbor), timeout, f"GoBGP session with {neighbor} Established",
                   describe=lambda: f"{self.cli('neighbor')}\n{self.proc.log_tail()}")

    def rib(self, family: str = "ipv4") -> dict[str, dict]:
        data = self.cli_json("global", "rib", "-a", family) or {}
        out: dict[str, dict] = {}
        for prefix, paths in data.items():
            best = next((p for p in paths if p.get("best")), paths[0])
            out[prefix] = {"prefix": prefix, **decode_gobgp_path(best)}
        return out

    def flow_rib(self, family: str = "ipv4-flowspec") -> dict[str, dict]:
        """FlowSpec rules: ``{GoBGP's rule text: {"actions": {"rate:9600", ...}, "path": ...}}``
        (JSON only: GoBGP's text output crashes on some IPv6 rules, see flowspec.py)."""
        return gobgp_flow_rib(self.cli_json("global", "rib", "-a", family))

    def wait_rib(self, prefixes: Sequence[str], family: str = "ipv4", timeout: float = 20) -> dict[str, dict]:
        want = set(prefixes)
        return wait_until(lambda: (lambda r: r if set(r) == want else None)(self.rib(family)), timeout,
                          f"GoBGP to hold exactly {sorted(want)}",
                          describe=lambda: f"holds: {sorted(self.rib(family))}\n{self.proc.log_tail()}")


def _community(v: int):
    return (v >> 16, v & 0xFFFF)


def decode_gobgp_path(path: dict) -> dict:
    """Flatten one path of ``gobgp ... rib -j`` into comparable fields."""
    d = {"next_hop": None, "as_path": [], "med": None, "local_pref": None, "origin": None,
         "communities": [], "large_communities": [], "attrs": path.get("attrs", [])}
    origin_names = {0: "igp", 1: "egp", 2: "incomplete"}
    for a in path.get("attrs", []):
        t = a.get("type")
        if t == 1:
            d["origin"] = origin_names.get(a.get("value"), a.get("value"))
        elif t == 2:
            for seg in a.get("as_paths", []):
                d["as_path"].extend(seg.get("asns", []))
        elif t == 3:
            d["next_hop"] = a.get("nexthop")
        elif t == 4:
            d["med"] = a.get("metric")
        elif t == 5:
            d["local_pref"] = a.get("value")
        elif t == 8:
            d["communities"] = [_community(v) for v in a.get("communities", [])]
        elif t == 14:
            d["next_hop"] = a.get("nexthop") or (a.get("nexthops") or [None])[0]
        elif t == 32:
            vals = a.get("value") or a.get("values") or []
            d["large_communities"] = [(v.get("ASN", v.get("global_admin")),
                                       v.get("LocalData1", v.get("local_data1")),
                                       v.get("LocalData2", v.get("local_data2"))) for v in vals]
    return d
