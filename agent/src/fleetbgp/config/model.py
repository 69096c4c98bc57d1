"""The typed result of reading a config file.

Static routes are stored compactly: per neighbor, `{Family: {nlri wire bytes: Attributes}}`, where
the Attributes objects are interned (100,000 routes with the same attributes share one object).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fleetbgp.owner import Owner
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

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickling keeps the value (the daemon may hand the config to a worker); printing never does.
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """OPEN capabilities we offer. graceful_restart: restart time in seconds, or None (not sent)."""

    graceful_restart: int | None = None
    route_refresh: bool = True
    asn4: bool = True
    extended_message: bool = False
    software_version: bool = False
    # RFC 8950 (ExaBGP's `nexthop { ipv4 unicast ipv6; }`): the families whose routes may carry
    # an IPv6 next hop, offered in the extended next hop capability. Only ipv4 unicast today.
    extended_next_hop: tuple[Family, ...] = ()
    # ADD-PATH (RFC 7911): 0 off, 1 receive, 2 send, 3 send/receive, for add_path_families.
    add_path: int = 0
    add_path_families: tuple[Family, ...] = ()


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
# A route of a `watchdog NAME` group: (family, nlri, attributes, started withdrawn)
WatchdogRoute = tuple[Family, bytes, Attributes, bool]

# AS_PATH as the route parser gives it: ((segment type, (ASN, ...)), ...); 2 = AS_SEQUENCE, 1 = AS_SET.
ASPath = tuple[tuple[int, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheckSpec:
    """`check tcp HOST:PORT;` -- ok when a TCP connection opens."""

    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheckSpec:
    """`check http URL [status N] [insecure];` -- ok on status N, or any 2xx/3xx without one."""

    url: str
    status: int | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsCheckSpec:
    """`check dns NAME [type A] [server ADDR] [port N];` -- ok on NOERROR with a record of the type."""

    name: str
    qtype: str = "A"
    server: str | None = None  # None: the nameservers of /etc/resolv.conf
    port: int = 53


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandCheckSpec:
    """`check command "CMD";` -- ok when the shell command exits 0 within the timeout."""

    command: str


CheckSpec = TcpCheckSpec | HttpCheckSpec | DnsCheckSpec | CommandCheckSpec


@dataclass(slots=True, kw_only=True)
class HealthCheck:
    """A top-level `healthcheck NAME { ... }` block: a check the agent runs itself, announcing `ips`
    (owner `health:NAME`) according to its state. Defaults are ExaBGP's healthcheck's.

    Two HealthChecks compare equal when everything but the place they were written is the same
    (what a reload uses to keep a check running untouched).
    """

    name: str
    ips: tuple[str, ...]
    check: CheckSpec
    next_hop: str = "self"
    neighbors: tuple[str, ...] | None = None  # None: every neighbor
    interval: float = 5.0
    fast_interval: float = 1.0
    timeout: float = 5.0
    rise: int = 3
    fall: int = 3
    up_metric: int = 100
    down_metric: int = 1000
    disabled_metric: int = 500
    increase: int = 1
    withdraw_on_down: bool = False
    disable_file: str | None = None
    communities: tuple[int, ...] = ()
    disabled_communities: tuple[int, ...] | None = None  # DOWN and DISABLED, when set
    large_communities: tuple[tuple[int, int, int], ...] = ()
    ext_communities: tuple[int, ...] = ()
    as_path: ASPath = ()
    up_as_path: ASPath | None = None
    down_as_path: ASPath | None = None
    disabled_as_path: ASPath | None = None
    local_pref: int | None = None
    execute: tuple[str, ...] = ()
    up_execute: tuple[str, ...] = ()
    down_execute: tuple[str, ...] = ()
    disabled_execute: tuple[str, ...] = ()
    source: Location = field(default=NOWHERE, compare=False)

    @property
    def owner(self) -> Owner:
        return Owner.health(self.name)

    # The health states are health.engine.State's values; config cannot import the engine (a
    # runtime module), and State is a StrEnum, so its members compare equal to these strings.
    def communities_and_as_path(self, state: str) -> tuple[tuple[int, ...], ASPath]:
        """What the routes carry in `state` besides the MED: UP has the communities, DOWN and
        DISABLED the disabled-community ones when set; each state its own as-path when set. Any
        other state: the block's own."""
        if state == "UP":
            as_path = self.up_as_path
        elif state == "DOWN":
            as_path = self.down_as_path
        elif state == "DISABLED":
            as_path = self.disabled_as_path
        else:
            return self.communities, self.as_path
        communities = self.communities
        if state != "UP" and self.disabled_communities is not None:
            communities = self.disabled_communities
        return communities, as_path if as_path is not None else self.as_path

    def route_attributes(self, state: str, metric: int) -> Attributes:
        """The attributes of this check's routes in `state` with MED `metric`: what the health
        runner announces, and what the config checks fits in one UPDATE."""
        communities, as_path = self.communities_and_as_path(state)
        return Attributes.make(next_hop=self.next_hop, med=metric, local_pref=self.local_pref,
                               communities=communities, large_communities=self.large_communities,
                               ext_communities=self.ext_communities, as_path=as_path)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRoute:
    """A config `flow { route NAME { match { ... } then { ... } } }` rule of a neighbor. The route
    itself is also in the neighbor's static_routes (family ipv4/ipv6 flow), so it is announced on
    session up and a reload sends only what changed; this keeps its name for `flows`."""

    name: str
    family: Family
    nlri: bytes
    attrs: Attributes
    source: Location = field(default=NOWHERE, compare=False)


# BFD (RFC 5880/5881): the authentication types of the `auth` keyword, with their longest secret
# in bytes (RFC 5880 4.2-4.4: 16 for simple passwords and MD5 keys, 20 for SHA1 keys).
BFD_AUTH_TYPES: dict[str, int] = {"simple": 16, "keyed-md5": 16, "meticulous-keyed-md5": 16,
                                  "keyed-sha1": 20, "meticulous-keyed-sha1": 20}
BFD_DEFAULT_INTERVAL_MS = 300
BFD_DEFAULT_MULTIPLIER = 3
BFD_MAX_INTERVAL_MS = 60000


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdSettings:
    """A neighbor's `bfd;` or `bfd { ... }`: a BFD session to the peer address, whose going Down
    takes the BGP session down. Not a session setting: a reload that changes it changes the BFD
    session (a poll sequence for new timers) and leaves the BGP session alone."""

    min_tx_ms: int = BFD_DEFAULT_INTERVAL_MS    # desired minimum transmit interval
    min_rx_ms: int = BFD_DEFAULT_INTERVAL_MS    # required minimum receive interval
    multiplier: int = BFD_DEFAULT_MULTIPLIER    # detection multiplier
    passive: bool = False                       # send nothing until the peer does
    auth: str | None = None                     # a key of BFD_AUTH_TYPES, or None
    auth_key_id: int = 1
    auth_password: Secret | None = None         # set exactly when auth is
    source: Location = field(default=NOWHERE, compare=False)


# Neighbor fields whose change needs a new BGP session, with the config keyword that sets each
# (what `fleetbgp reload --dry-run` names when it plans a restart).
SESSION_SETTINGS: dict[str, str] = {
    "peer_address": "peer-address", "local_as": "local-as", "peer_as": "peer-as",
    "router_id": "router-id", "local_address": "local-address", "hold_time": "hold-time",
    "passive": "passive", "listen_port": "listen", "connect_port": "connect",
    "md5_password": "md5-password", "md5_base64": "md5-base64", "md5_ip": "md5-ip",
    "outgoing_ttl": "outgoing-ttl", "incoming_ttl": "incoming-ttl", "families": "family",
    "capabilities": "capability", "host_name": "host-name", "domain_name": "domain-name",
    "source_interface": "source-interface",
}


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
    connect_port: int | None = None  # None: the agent's default (179, or exabgp.tcp.port)
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
    # ExaBGP's watchdogs: `announce watchdog NAME` / `withdraw watchdog NAME` on the API move these
    watchdogs: dict[str, tuple[WatchdogRoute, ...]] = field(default_factory=dict, repr=False)
    flow_routes: tuple[FlowRoute, ...] = ()
    api: tuple[Api, ...] = ()
    bfd: BfdSettings | None = None  # `bfd` (our extension: ExaBGP has no BFD)
    inherit: tuple[str, ...] = ()
    source: Location = field(default=NOWHERE, compare=False)

    def settings_key(self) -> tuple[Any, ...]:
        """Everything that needs the BGP session re-established when it changes; cheap to compare.

        On reload, a neighbor whose key is unchanged keeps its session: what else differs (static
        routes, api, description, group-updates, adj-rib-in, ...) is applied to the running session.
        The md5 password is part of the key (Secret compares by value and never prints it).
        """
        return tuple(getattr(self, name) for name in SESSION_SETTINGS)

    def changed_settings(self, other: Neighbor) -> list[str]:
        """The config keywords of the session settings that differ in `other` (never values: one
        of them is the md5 password)."""
        return [keyword for name, keyword in SESSION_SETTINGS.items()
                if getattr(self, name) != getattr(other, name)]

    def route_count(self) -> int:
        return sum(len(routes) for routes in self.static_routes.values())


@dataclass(slots=True, kw_only=True)
class Config:
    neighbors: list[Neighbor]
    processes: dict[str, Process]
    listen: list[tuple[str, int]]
    path: str
    healthchecks: dict[str, HealthCheck] = field(default_factory=dict)

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
