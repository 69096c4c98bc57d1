"""Render ExaBGP-syntax configuration (the language our agent ``fleetbgp`` also speaks).

The same ``Neighbor``/``Route`` objects configure ExaBGP (as sender or receiver) and the agent,
so a test states once what is announced and compares it with what the peer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Route:
    prefix: str
    next_hop: str = "self"
    med: int | None = None
    local_pref: int | None = None
    origin: str | None = None            # igp | egp | incomplete
    as_path: Sequence[int] = ()
    communities: Sequence[tuple[int, int]] = ()
    large_communities: Sequence[tuple[int, int, int]] = ()
    ext_communities: Sequence[str] = ()     # e.g. "target:65000:1"

    def render(self) -> str:
        parts = [f"route {self.prefix} next-hop {self.next_hop}"]
        if self.med is not None:
            parts.append(f"med {self.med}")
        if self.local_pref is not None:
            parts.append(f"local-preference {self.local_pref}")
        if self.origin is not None:
            parts.append(f"origin {self.origin}")
        if self.as_path:
            parts.append("as-path [ " + " ".join(str(a) for a in self.as_path) + " ]")
        if self.communities:
            parts.append("community [ " + " ".join(f"{a}:{b}" for a, b in self.communities) + " ]")
        if self.large_communities:
            large = " ".join(f"{a}:{b}:{c}" for a, b, c in self.large_communities)
            parts.append(f"large-community [ {large} ]")
        if self.ext_communities:
            parts.append("extended-community [ " + " ".join(self.ext_communities) + " ]")
        return " ".join(parts) + ";"

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.prefix else "ipv4"


@dataclass
class Neighbor:
    peer_address: str
    local_address: str
    local_as: int
    peer_as: int
    router_id: str | None = None
    hold_time: int | None = 9
    families: Sequence[str] = ("ipv4 unicast",)
    routes: list[Route] = field(default_factory=list)
    md5_password: str | None = None
    incoming_ttl: int | None = None     # GTSM: minimum TTL accepted
    outgoing_ttl: int | None = None     # GTSM: TTL sent (255)
    passive: bool = False
    adj_rib_in: bool | None = None
    description: str | None = None
    api_processes: Sequence[str] = ()
    api_receive: bool = False              # receive { parsed; update; } + neighbor-changes
    api_receive_open: bool = False         # with api_receive: the OPENs too (`receive { ... open; }`)
    extra: str = ""                        # raw lines inside the neighbor block

    def render(self) -> str:
        rid = self.router_id or (self.local_address if ":" not in self.local_address else "10.255.255.254")
        lines = [f"neighbor {self.peer_address} {{"]
        if self.description:
            lines.append(f'  description "{self.description}";')
        lines += [
            f"  router-id {rid};",
            f"  local-address {self.local_address};",
            f"  local-as {self.local_as};",
            f"  peer-as {self.peer_as};",
        ]
        if self.hold_time is not None:
            lines.append(f"  hold-time {self.hold_time};")
        if self.md5_password is not None:
            lines.append(f'  md5-password "{self.md5_password}";')
        if self.incoming_ttl is not None:
            lines.append(f"  incoming-ttl {self.incoming_ttl};")
        if self.outgoing_ttl is not None:
            lines.append(f"  outgoing-ttl {self.outgoing_ttl};")
        if self.passive:
            lines.append("  passive true;")
        if self.adj_rib_in is not None:
            lines.append(f"  adj-rib-in {'true' if self.adj_rib_in else 'false'};")
        lines.append("  family {")
        lines += [f"    {f};" for f in self.families]
        lines.append("  }")
        if self.api_processes:
            lines.append("  api {")
            lines.append("    processes [ " + " ".join(self.api_processes) + " ];")
            if self.api_receive:
                lines.append("    neighbor-changes;")
                opens = "open; " if self.api_receive_open else ""
                lines.append(f"    receive {{ parsed; update; {opens}}}")
            lines.append("  }")
        if self.extra:
            lines += ["  " + x for x in self.extra.strip().splitlines()]
        if self.routes:
            lines.append("  static {")
            lines += ["    " + r.render() for r in self.routes]
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines)


@dataclass
class Process:
    name: str
    run: str
    encoder: str = "json"

    def render(self) -> str:
        return f"process {self.name} {{\n  run {self.run};\n  encoder {self.encoder};\n}}"


def render_config(neighbors: Sequence[Neighbor], processes: Sequence[Process] = ()) -> str:
    return "\n\n".join([*(p.render() for p in processes), *(n.render() for n in neighbors)]) + "\n"
