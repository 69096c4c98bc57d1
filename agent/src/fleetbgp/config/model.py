"""The typed result of reading a config file.

Static routes are stored compactly: per neighbor, `{Family: {nlri wire bytes: Attributes}}`, where
the Attributes objects are interned (100,000 routes with the same attributes share one object).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

from .errors import Location

NOWHERE = Location("", 0, 0)

# The incoming listener when the config has no top-level `listen`: every address, port 179.
ANY_V4 = "0.0.0.0"
ANY_V6 = "::"
DEFAULT_PORT = 179


class Secret:
    """A value that must never be shown: repr() and str() are '***'. `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> Any:
        # Pickling keeps the value (the daemon may hand the config to a worker); printing never does.
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """OPEN capabilities we offer. graceful_restart: restart time in seconds, or None (not sent)."""

    graceful_restart: int | None = None
    route_refresh: bool = True
    asn4: bool = True
    extended_message: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFlags:
    """Which BGP messages an API process is sent (`receive { ... }`) or sees us send (`send { ... }`).

    parsed: decoded (text/json) form; packets: raw hex; the rest select message types.
    """

    parsed: bool = False
    packets: bool = False
    consolidate: bool = False
    open: bool = False
    update: bool = False
    notification: bool = False
    keepalive: bool = False
    refresh: bool = False
    operational: bool = False

    def any(self) -> bool:
        return any(getattr(self, name) for name in MESSAGE_FLAG_NAMES)

    def union(self, other: MessageFlags) -> MessageFlags:
        return MessageFlags(**{n: getattr(self, n) or getattr(other, n) for n in MESSAGE_FLAG_NAMES})


MESSAGE_FLAG_NAMES = ("parsed", "packets", "consolidate", "open", "update", "notification", "keepalive",
                      "refresh", "operational")
NO_MESSAGES = MessageFlags()


@dataclass(frozen=True, slots=True, kw_only=True)
class Api:
    """One `api [NAME] { ... }` block of a neighbor: which processes get which events."""

    name: str | None = None
    processes: tuple[str, ...] = ()
    processes_match: tuple[str, ...] = ()
    neighbor_changes: bool = False
    negotiated: bool = False
    fsm: bool = False
    signal: bool = False
    receive: MessageFlags = NO_MESSAGES
    send: MessageFlags = NO_MESSAGES
    source: Location = field(default=NOWHERE, compare=False)


@dataclass(slots=True, kw_only=True)
class Process:
    """A `process NAME { ... }` block: a program the agent runs, talking the API on its stdin/stdout.

    Events listed in the process itself (`receive { ... }`, `neighbor-changes`, ExaBGP 3 style)
    apply to every neighbor whose api lists the process, in addition to what that api block asks.
    """

    name: str
    run: tuple[str, ...]
    encoder: str = "text"
    working_directory: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    respawn: bool = True
    withdraw_on_exit: int | None = None
    neighbor_changes: bool = False
    receive: MessageFlags = NO_MESSAGES
    send: MessageFlags = NO_MESSAGES
    source: Location = field(default=NOWHERE, compare=False)


StaticRoutes = dict[Family, dict[bytes, Attributes]]


@dataclass(slots=True, kw_only=True)
class Neighbor:
    """One BGP peer. Every field has its final value: defaults applied, templates merged."""

    peer_address: str
    local_as: int
    peer_as: int
    router_id: str
    local_address: str | None = None  # None: let the kernel choose (ExaBGP's `auto`)
    hold_time: int = 180
    passive: bool = False
    listen_port: int | None = None  # `listen PORT`: the port this peer connects to us on
    connect_port: int = DEFAULT_PORT
    description: str = ""
    md5_password: Secret | None = None
    md5_base64: bool = False
    md5_ip: str | None = None
    outgoing_ttl: int | None = None
    incoming_ttl: int | None = None  # GTSM minimum TTL (`incoming-ttl`, `ttl-security`)
    group_updates: bool = True
    adj_rib_in: bool = False
    adj_rib_out: bool = True
    manual_eor: bool = False
    auto_flush: bool = True
    rate_limit: int | None = None
    host_name: str | None = None
    domain_name: str | None = None
    source_interface: str | None = None
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    capabilities: Capabilities = field(default_factory=Capabilities)
    static_routes: StaticRoutes = field(default_factory=dict, repr=False)
    api: tuple[Api, ...] = ()
    inherit: tuple[str, ...] = ()
    source: Location = field(default=NOWHERE, compare=False)

    def settings_key(self) -> tuple[Any, ...]:
        """Everything that needs the BGP session re-established when it changes; cheap to compare.

        On reload, a neighbor whose key is unchanged keeps its session: what else differs (static
        routes, api, description, group-updates, adj-rib-in, ...) is applied to the running session.
        The md5 password is part of the key (Secret compares by value and never prints it).
        """
        return (self.peer_address, self.local_as, self.peer_as, self.router_id, self.local_address,
                self.hold_time, self.passive, self.listen_port, self.connect_port, self.md5_password,
                self.md5_base64, self.md5_ip, self.outgoing_ttl, self.incoming_ttl, self.families,
                self.capabilities, self.host_name, self.domain_name, self.source_interface)

    def route_count(self) -> int:
        return sum(len(routes) for routes in self.static_routes.values())


@dataclass(slots=True, kw_only=True)
class Config:
    neighbors: list[Neighbor]
    processes: dict[str, Process]
    listen: list[tuple[str, int]]
    path: str

    def route_count(self) -> int:
        return sum(n.route_count() for n in self.neighbors)

    def neighbor(self, peer_address: str) -> Neighbor | None:
        for n in self.neighbors:
            if n.peer_address == peer_address:
                return n
        return None

    def subscriptions(self, neighbor: Neighbor) -> dict[str, Api]:
        """Per process name: what it gets about this neighbor, its api blocks and the process's own
        `receive`/`send`/`neighbor-changes` settings combined. `processes-match` is not expanded."""
        out: dict[str, Api] = {}
        for api in neighbor.api:
            for name in api.processes:
                prev = out.get(name)
                if prev is None:
                    proc = self.processes.get(name)
                    merged = Api(name=name, processes=(name,),
                                 neighbor_changes=api.neighbor_changes,
                                 negotiated=api.negotiated, fsm=api.fsm, signal=api.signal,
                                 receive=api.receive, send=api.send)
                    if proc is not None:
                        merged = _with_process(merged, proc)
                    out[name] = merged
                else:
                    out[name] = Api(name=name, processes=(name,),
                                    neighbor_changes=prev.neighbor_changes or api.neighbor_changes,
                                    negotiated=prev.negotiated or api.negotiated,
                                    fsm=prev.fsm or api.fsm, signal=prev.signal or api.signal,
                                    receive=prev.receive.union(api.receive),
                                    send=prev.send.union(api.send))
        return out


def _with_process(api: Api, proc: Process) -> Api:
    return Api(name=api.name, processes=api.processes,
               neighbor_changes=api.neighbor_changes or proc.neighbor_changes,
               negotiated=api.negotiated, fsm=api.fsm, signal=api.signal,
               receive=api.receive.union(proc.receive), send=api.send.union(proc.send))
