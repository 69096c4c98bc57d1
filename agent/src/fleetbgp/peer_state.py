"""Everything we know about one neighbor's BGP session, sans-IO: events in, messages and actions out.

`PeerState` is to a neighbor what fsm.Connection is to one TCP connection (and h11's Connection to
an HTTP one): no socket, no clock, no task. It decides which connection is the session (collision
resolution, RFC 4271 6.8), holds the routes we want the peer to have and who owns each one (an
OwnedRibOut), the routes it sent us, the drain, End-of-RIB and route refresh bookkeeping and the
graceful restart state, and it produces every message the session sends: UPDATEs (a lazy stream,
so a million routes are never built at once), End-of-RIB, ROUTE-REFRESH and the Cease that closes a
collision's loser or a torn-down session. Asked to send in a state that does not allow it, it
raises fsm.LocalProtocolError instead of producing bytes.

session.py's Peer is the asyncio shell around it: sockets, timers, the dialer, the send task, logs,
statistics and events. It feeds this state what happened and carries out what comes back; an
action is addressed to the fsm.Connection it is for (`Directed`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__
from .fsm import Action, Connection, Expectations, LocalProtocolError, State, collision_winner
from .fsm import Send as SendAction
from .owner import CONFIG, Owner
from .rib import AdjRibIn, OwnedRibOut, RouteTable
from .transport import split_scope
from .wire.attributes import Attributes, EncodeContext
from .wire.constants import AFI, CeaseSub, ErrCode, MsgType
from .wire.messages import Capabilities, Negotiated, Notification, Open, RouteRefresh, Update, end_of_rib
from .wire.nlri import Family

if TYPE_CHECKING:
    from .config.model import Neighbor, WatchdogRoute

__all__ = ["Directed", "DrainMode", "GracefulRestart", "LocalProtocolError", "PeerState", "WatchdogMember"]

# Actions for one connection: the shell carries them out on the transport of `conn`.
Directed = tuple[Connection, list[Action]]
DrainMode = str | None  # None, "withdraw" or "metric" (settings' maintenance_mode)
COLLISION = Notification(ErrCode.CEASE, CeaseSub.CONNECTION_COLLISION_RESOLUTION)
SILENT_CLOSE = "graceful restart: closed without NOTIFICATION (RFC 4724: the peer keeps our routes)"


@dataclass(slots=True)
class WatchdogMember:
    """A route of an ExaBGP watchdog group, moved out and back by `announce/withdraw watchdog`."""

    attrs: Attributes
    owner: Owner
    announced: bool


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """Graceful restart (RFC 4724) as the agent has it: offered in our OPEN (`restart_time`, None:
    not offered), what the peer offered on the last session where both did (`peer_restart_time`,
    kept after the session goes down; the agent is no helper: routes received are dropped when
    the session ends), and on the session up now: whether both offered it (`negotiated`) and
    RFC 8538's N bit (`notification`)."""

    restart_time: int | None
    peer_restart_time: int | None
    negotiated: bool = False
    notification: bool = False


class PeerState:
    """One neighbor's session state. Route changes return whether something is now waiting to be
    sent (the shell then wakes its send task); messages come from updates(), route_refresh() and
    teardown()."""

    def __init__(self, neighbor: Neighbor, *, restarting: bool = False, forwarding: bool = True) -> None:
        self.neighbor = neighbor
        # Graceful restart (RFC 4724 3), when configured: `restarting` is the Restart State bit of
        # our OPENs until the first session is up (the agent has just (re)started, so a helper
        # router waits for our End-of-RIB before it drops what it kept); `forwarding` is the
        # Forwarding State bit of every family: the host forwards without the agent, so what the
        # router kept stays usable while we are away.
        self.restarting = restarting
        self.forwarding = forwarding
        self.rib_out = OwnedRibOut()
        self.rib_in = AdjRibIn(neighbor.adj_rib_in)
        self.connections: list[Connection] = []  # open or opening, at most one per direction in practice
        self.established: Connection | None = None
        self.negotiated: Negotiated | None = None
        self.encode_ctx: EncodeContext | None = None
        self.drain_mode: DrainMode = None
        self.drain_metric = 1000
        self._drain_sent = False  # the withdraw drain's withdrawals went out on this session
        self._eor_pending: set[Family] = set()
        self._peer_restart_time: int | None = None
        # ExaBGP's watchdogs: name -> {(family, nlri): member}
        self.watchdogs: dict[str, dict[tuple[Family, bytes], WatchdogMember]] = {}
        self.rib_out.set_static(neighbor.static_routes)
        self.set_watchdogs(neighbor.watchdogs)

    # -- what we send and expect -------------------------------------------------------------------

    def router_id(self) -> str:
        n = self.neighbor
        if n.router_id:
            return n.router_id
        local = n.local_address
        if local and ipaddress.ip_address(split_scope(local)[0]).version == 4:
            return local
        raise ValueError(f"neighbor {n.peer_address}: no router-id")

    def local_open(self) -> Open:
        n = self.neighbor
        caps = n.capabilities
        families = list(n.families)
        gr = caps.graceful_restart is not None
        return Open(
            asn=n.local_as,
            hold_time=n.hold_time,
            router_id=self.router_id(),
            capabilities=Capabilities(
                families=families,
                asn4=n.local_as if caps.asn4 else None,
                route_refresh=caps.route_refresh,
                extended_message=caps.extended_message,
                graceful_restart=caps.graceful_restart,
                gr_restarting=self.restarting and gr,
                gr_notification=gr,  # RFC 8538: we tell a Hard Reset from a graceful Cease
                gr_families=dict.fromkeys(families, self.forwarding) if gr else {},
                fqdn=(n.host_name or "", n.domain_name or "") if n.host_name or n.domain_name else None,
                software_version=f"fleetbgp/{__version__}" if caps.software_version else None,
                next_hops=[(fam, AFI.IPV6) for fam in caps.extended_next_hop],
                add_path=dict.fromkeys(caps.add_path_families, caps.add_path),
            ),
        )

    def expectations(self) -> Expectations:
        n = self.neighbor
        return Expectations(peer_as=n.peer_as, local_as=n.local_as, local_router_id=self.router_id())

    @property
    def graceful_restart(self) -> GracefulRestart:
        neg = self.negotiated
        return GracefulRestart(self.neighbor.capabilities.graceful_restart, self._peer_restart_time,
                               negotiated=neg is not None and neg.graceful_restart is not None,
                               notification=neg is not None and neg.gr_notification)

    # -- connections ----------------------------------------------------------------------------------

    def new_connection(self, direction: str, clock: Callable[[], float] | None = None) -> Connection:
        """A connection to run the handshake on ("out": we dialed, "in": the peer did); `clock`
        times its UPDATE decoding (Connection)."""
        conn = Connection(self.local_open(), self.expectations(), direction, clock)
        self.connections.append(conn)
        return conn

    def forget(self, conn: Connection) -> None:
        """The connection is gone (closed, or never made it past accept)."""
        if conn in self.connections:
            self.connections.remove(conn)

    def open_received(self, conn: Connection, remote: Open) -> list[Directed]:
        """Collision detection (RFC 4271 6.8), once `conn` knows the peer's BGP identifier: the
        connection to close with a Cease (Connection Collision Resolution), if any. An established
        session always stays; against one in OpenConfirm the higher identifier's connection wins
        (RFC 6286 2.3 for equal identifiers)."""
        stops: list[Directed] = []
        for other in list(self.connections):
            if other is conn or other.closed:
                continue
            if other.state is State.ESTABLISHED:
                loser = conn
            elif other.state is State.OPENCONFIRM:
                winner = collision_winner(self.router_id(), remote.router_id,
                                          local_as=self.neighbor.local_as, remote_as=remote.asn)
                keep_direction = "out" if winner == "local" else "in"
                loser = other if conn.direction == keep_direction else conn
            else:
                continue
            stops.append((loser, loser.stop(COLLISION)))
            if loser is conn:
                break
        return stops

    def session_up(self, conn: Connection, neg: Negotiated, local_address: str | None) -> None:
        """`conn` reached Established: it is the session; everything is sent to the peer anew
        (it holds nothing of ours), End-of-RIB after it unless the API says when (`manual-eor`).
        `local_address` (our end of the TCP connection) is the `next-hop self` of its routes."""
        self.established = conn
        self.negotiated = neg
        self.restarting = False  # later sessions of this process are no restart
        if neg.graceful_restart is not None:
            self._peer_restart_time = neg.graceful_restart
        local_ip = ipaddress.ip_address(split_scope(local_address)[0]) if local_address else None
        v4 = v6 = link_local = None
        if local_ip is not None and local_ip.version == 4:
            v4 = str(local_ip)
        elif local_ip is not None:
            if local_ip.ipv4_mapped is not None:
                v4 = str(local_ip.ipv4_mapped)
            else:
                v6 = str(local_ip)
                if local_ip.is_link_local:
                    link_local = v6
        self.encode_ctx = EncodeContext(local_as=self.neighbor.local_as, peer_as=self.neighbor.peer_as,
                                        asn4=neg.asn4, next_hop_self_v4=v4, next_hop_self_v6=v6,
                                        link_local_v6=link_local, max_size=neg.max_size,
                                        extended_next_hop=neg.extended_next_hop,
                                        addpath=neg.addpath_send)
        self.rib_out.mark_all(neg.families, fresh=True)
        self._drain_sent = False
        self._eor_pending = set() if self.neighbor.manual_eor else set(neg.families)

    def session_down(self, conn: Connection) -> bool:
        """`conn` closed; True if it was the session (what the peer sent us is gone with it)."""
        if conn is not self.established:
            return False
        self.established = None
        self.negotiated = None
        self.encode_ctx = None
        self.rib_in.clear()
        return True

    # -- what the peer sends --------------------------------------------------------------------------

    def update_received(self, update: Update) -> None:
        for fam, items in update.withdraw.items():
            self.rib_in.remove(fam, items)
        for fam, (attrs, items) in update.announce.items():
            self.rib_in.put(fam, attrs, items)
        if update.eor is not None:
            self.rib_in.eor.add(update.eor)

    def refresh_received(self, fam: Family) -> bool:
        """The peer asked for a family again (RFC 2918): all of it goes out, then End-of-RIB.
        False (ignored) for a family the session did not negotiate."""
        if self.negotiated is None or fam not in self.negotiated.families:
            return False
        self.rib_out.mark_all([fam])
        self._eor_pending.add(fam)
        return True

    # -- routes ---------------------------------------------------------------------------------------

    def set_static(self, routes: RouteTable) -> tuple[int, int]:
        """Make the config's routes equal `routes`; runtime routes stay. (changed, withdrawn)."""
        return self.rib_out.set_static(routes)

    def set_watchdogs(self, groups: Mapping[str, Sequence[WatchdogRoute]]) -> None:
        """The config's watchdog routes, as the config says (a reload puts them back so): those
        that start withdrawn are not in the static routes, the others are."""
        for name in list(self.watchdogs):
            members = self.watchdogs[name]
            for key in [k for k, m in members.items() if m.owner is CONFIG]:
                del members[key]
            if not members:
                del self.watchdogs[name]
        for name, group in groups.items():
            members = self.watchdogs.setdefault(name, {})
            for fam, nlri, attrs, withdrawn in group:
                if fam in self.neighbor.families:
                    members[(fam, nlri)] = WatchdogMember(attrs, CONFIG, not withdrawn)

    def join_watchdog(self, name: str, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                      announced: bool) -> None:
        """An API route of a watchdog group: `announce/withdraw watchdog NAME` moves it later."""
        if fam in self.neighbor.families:
            self.watchdogs.setdefault(name, {})[(fam, nlri)] = WatchdogMember(attrs, owner, announced)

    def move_watchdog(self, name: str, announce: bool) -> int:
        """ExaBGP's `announce watchdog NAME` (the group's withdrawn routes go out) or `withdraw
        watchdog NAME` (its announced routes are withdrawn). Returns the routes moved."""
        moved = 0
        for (fam, nlri), member in self.watchdogs.get(name, {}).items():
            attrs, owner = member.attrs, member.owner
            if member.announced == announce:
                continue
            if announce:
                self.advertise(fam, nlri, attrs, owner, track=owner is not CONFIG)
                if owner is CONFIG:
                    self.rib_out.static.setdefault(fam, {})[nlri] = attrs
            else:
                self.retract(fam, nlri)
            member.announced = announce
            moved += 1
        return moved

    def advertise(self, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                  track: bool = True) -> bool:
        """Put a route in the adj-rib-out on behalf of owner; the last announcement wins. False for
        a family the neighbor does not have, or a route the peer already has so."""
        if fam not in self.neighbor.families:
            return False
        return self.rib_out.put_owned(fam, nlri, attrs, owner, track)

    def retract(self, fam: Family, nlri: bytes) -> bool:
        return self.rib_out.remove(fam, nlri)

    def owned(self, owner: Owner) -> dict[Family, set[bytes]]:
        return self.rib_out.owned_by(owner)

    def retract_owner(self, owner: Owner) -> int:
        return self.rib_out.remove_owned_by(owner)

    def retract_all(self) -> int:
        return self.rib_out.remove_all()

    # -- drain, End-of-RIB, refresh -------------------------------------------------------------------

    def set_drain(self, mode: DrainMode, metric: int = 1000) -> bool:
        """Maintenance: 'withdraw' takes every route away from the peer (kept here, sent again
        when the drain ends); 'metric' re-sends everything with MED = metric; None ends it.
        False when nothing changes."""
        if mode == self.drain_mode and metric == self.drain_metric:
            return False
        previous = self.drain_mode
        self.drain_mode = mode
        self.drain_metric = metric
        self._drain_sent = False
        families = self.negotiated.families if self.negotiated else self.neighbor.families
        if mode is None or mode == "metric":
            # Leaving a withdraw drain the peer holds nothing; otherwise its routes are replaced.
            self.rib_out.mark_all(families, fresh=previous == "withdraw")
        return True

    def _negotiated_families(self, families: Iterable[Family] | None) -> list[Family]:
        if self.negotiated is None:
            return []
        if families is None:
            return list(self.negotiated.families)
        return [f for f in families if f in self.negotiated.families]

    def send_eor(self, families: Iterable[Family] | None = None) -> bool:
        """End-of-RIB after what is pending (API `announce eor [AFI SAFI]`); False if no family
        of the session is named."""
        chosen = self._negotiated_families(families)
        if not chosen:
            return False
        self._eor_pending.update(chosen)
        return True

    def resend(self, families: Iterable[Family] | None = None) -> bool:
        """Send the whole adj-rib-out again (API `flush adj-rib out`)."""
        chosen = self._negotiated_families(families)
        if not chosen:
            return False
        self.rib_out.mark_all(chosen)
        return True

    # -- messages out ---------------------------------------------------------------------------------

    def _session(self, msg_type: MsgType) -> Connection:
        conn = self.established
        if conn is None:
            raise LocalProtocolError(f"cannot send {msg_type.name}: no established session")
        conn.check_send(msg_type)
        return conn

    def updates(self) -> Iterator[bytes]:
        """The UPDATEs (End-of-RIB included) that bring the peer up to date, in order, encoded as
        they are consumed: withdrawals, then announcements grouped by attribute set, per family.
        During a withdraw drain only the drain's withdrawals (once) and End-of-RIB go out; a
        metric drain rewrites the MED on the way out. Raises LocalProtocolError without a session.
        What is taken from the pending state is taken now, not when the stream is read."""
        self._session(MsgType.UPDATE)
        ctx, neg = self.encode_ctx, self.negotiated
        assert ctx is not None and neg is not None  # set together with `established`
        eor = self._eor_pending
        self._eor_pending = set()
        families = neg.families
        if self.drain_mode == "withdraw":
            # Changes wait in the table until the drain ends; only End-of-RIB goes out.
            withdrawals: Iterable[bytes] = () if self._drain_sent else \
                self.rib_out.withdrawals_of_all(ctx, families)
            self._drain_sent = True
            return _chain(withdrawals, (end_of_rib(f) for f in families if f in eor))
        transform = None
        if self.drain_mode == "metric":
            metric = self.drain_metric

            def transform(attrs: Attributes) -> Attributes:
                return attrs.replace(med=metric)

        return self.rib_out.flush(ctx, families, end_of_rib_for=eor, transform=transform)

    @property
    def pending(self) -> bool:
        """Something is waiting to be sent (routes or End-of-RIB)."""
        return self.rib_out.pending or bool(self._eor_pending)

    def route_refresh(self, families: Iterable[Family] | None = None) -> Directed:
        """ROUTE-REFRESH messages (RFC 2918) asking the peer for `families` (None: every family of
        the session) again; no message for a family the session does not have. Raises
        LocalProtocolError without a session, or when the peer did not offer route refresh."""
        conn = self._session(MsgType.ROUTE_REFRESH)
        assert self.negotiated is not None
        if not self.negotiated.route_refresh:
            raise LocalProtocolError("cannot send ROUTE_REFRESH: the peer did not offer route refresh")
        chosen = self._negotiated_families(families)
        return conn, [SendAction(RouteRefresh(f).encode()) for f in chosen]

    def teardown(self, subcode: int = CeaseSub.ADMINISTRATIVE_RESET, message: str = "") -> Directed:
        """Close the session with a Cease (API `neighbor X teardown N`); the peer dials again.
        It ends graceful restart: the peer drops our routes (a Hard Reset around it when the N bit
        was negotiated). Raises LocalProtocolError without a session."""
        conn = self.established
        if conn is None:
            raise LocalProtocolError("cannot tear down: no established session")
        note = Notification.shutdown(message, subcode) if message else Notification(ErrCode.CEASE, subcode)
        return conn, conn.stop(self.ending(note))

    def ending(self, note: Notification) -> Notification:
        """The NOTIFICATION that closes the session for good, whatever graceful restart says: with
        RFC 8538's N bit negotiated any other Cease would let the peer keep our routes as stale,
        so `note` goes inside a Cease/Hard Reset (RFC 8538 3); otherwise `note` itself, which
        ends graceful restart (RFC 4724 4.2)."""
        neg = self.negotiated
        if neg is not None and neg.gr_notification and note.hard_reset_of is None:
            return Notification.hard_reset(note)
        return note

    def stop(self, note: Notification, *, graceful: bool = False) -> list[Directed]:
        """Close every connection: the agent stops, or the neighbor goes away. `note` is the Cease
        of a real stop; on the session it ends graceful restart (`ending`).

        graceful=True (a planned restart; the agent comes back with Restart State 1): on a session
        where both offered graceful restart the peer must keep our routes, so with the N bit the
        session gets a Cease/Administrative Reset (RFC 8538: graceful restart goes on), without it
        no NOTIFICATION at all, just the TCP close (RFC 4724 4.2: a NOTIFICATION would end it).
        A session without graceful restart gets `note` as in a real stop. Connections not yet
        established always get `note` (no graceful restart state exists for them)."""
        out: list[Directed] = []
        for conn in list(self.connections):
            if conn.closed:
                continue
            if conn is not self.established:
                out.append((conn, conn.stop(note)))
            elif graceful and self.graceful_restart.negotiated:
                if self.graceful_restart.notification:
                    data = note.data if note.shutdown_message is not None else b""
                    out.append((conn, conn.stop(Notification(ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_RESET,
                                                             data))))
                else:
                    out.append((conn, conn.close_silently(SILENT_CLOSE)))
            else:
                out.append((conn, conn.stop(self.ending(note))))
        return out


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part
