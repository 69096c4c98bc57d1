"""The asyncio shell around a neighbor's sans-IO state (peer_state.PeerState, fsm.Connection):
sockets, timers, dialing, the send task with its flow control, logs, statistics and events. What to
send and which connection is the session is decided there; here it is carried out."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import fsm
from .config.model import DEFAULT_PORT
from .durations import DurationHistogram, update_histograms
from .events import Direction, EventKind, PeerEvent, PeerRef, SessionState
from .fsm import Backoff, Expectations, LocalProtocolError, State
from .logutil import RateLimiter, log_event
from .owner import Owner
from .peer_state import PeerState
from .rib import AdjRibIn, OwnedRibOut, RouteTable
from .transport import (
    TransportError,
    md5_key,
    normalise_peer,
    outgoing_socket,
    set_min_ttl,
    set_ttl,
    sockaddr,
)
from .wire.attributes import Attributes, DecodeContext, EncodeContext
from .wire.constants import HEADER_LEN, MAX_EXTENDED_MESSAGE, CeaseSub, ErrCode, MsgType, describe_error
from .wire.errors import BGPError
from .wire.messages import (
    MessageReader,
    Negotiated,
    Notification,
    Open,
    Update,
    decode_update,
)
from .wire.nlri import Family, family_name

if TYPE_CHECKING:
    from .bfd.status import BfdStatus
    from .config.model import Neighbor, WatchdogRoute

# Every message in hex at DEBUG, only when packet logging is on (FLEETBGP_LOG_PACKETS).
packets_log = logging.getLogger("fleetbgp.packets")

CONNECT_TIMEOUT = 10.0
# Messages written before we give the event loop a turn, so timers and other peers keep running
# while a large table goes out.
WRITE_BATCH = 64

STAT_KEYS = ("messages_in", "messages_out", "updates_in", "updates_out", "keepalives_in",
             "notifications_in", "notifications_out", "established_count", "flaps", "bytes_in",
             "routes_announced", "routes_withdrawn")

# UPDATEs with attribute problems logged per peer per window; the rest are counted (one peer sending
# thousands of broken UPDATEs once wrote millions of lines and delayed keepalives to other peers).
UPDATE_PROBLEMS_BURST = 10
UPDATE_PROBLEMS_WINDOW = 10.0
# Bytes read from a broken connection's receive buffer, looking for the peer's NOTIFICATION.
DRAIN_LIMIT = 1 << 20

_STATE_ORDER = [State.IDLE, State.CONNECT, State.ACTIVE, State.OPENSENT, State.OPENCONFIRM,
                State.ESTABLISHED]


class PeerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        # A scoped address (fe80::1%eth0) must not turn into a %-format directive.
        peer = str(self.extra["peer"]).replace("%", "%%")
        return f"peer {peer}: {msg}", kwargs


class BGPProtocol(asyncio.Protocol):
    """One TCP connection to a peer, driving a fsm.Connection."""

    def __init__(self, peer: Peer, direction: str) -> None:
        self.peer = peer
        self.direction = direction  # "out": we dialed; "in": the peer dialed
        self.conn = peer.core.new_connection(direction, time.perf_counter)
        self._received_seconds = peer.update_seconds["received"]  # looked up once, not per UPDATE
        self.transport: asyncio.Transport | None = None
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.local_address: str | None = None
        self.remote_address: str | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._packet_reader: MessageReader | None = None

    @property
    def state(self) -> State:
        return self.conn.state

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        self.local_address = sockname[0] if sockname else None
        self.remote_address = peername[0] if peername else None
        self.peer.log.debug("TCP %s connection %s -> %s", self.direction, self.local_address,
                            self.remote_address)
        self.peer.emit(PeerEvent(EventKind.STATE, self.peer.ref, state=SessionState.CONNECTED))
        self.execute(self.conn.start())
        self.peer.emit(PeerEvent(EventKind.OPEN, self.peer.ref, direction=Direction.SEND,
                                 open=self.conn.local_open))

    def data_received(self, data: bytes) -> None:
        self.peer.stats["bytes_in"] += len(data)
        if packets_log.isEnabledFor(logging.DEBUG):
            self._log_received(data)
        self.execute(self.conn.data_received(data))

    def _log_received(self, data: bytes) -> None:
        # A framer of its own, so logging never changes what the FSM sees.
        if self._packet_reader is None:
            self._packet_reader = MessageReader(MAX_EXTENDED_MESSAGE)
        try:
            for msg_type, body in self._packet_reader.feed(data):
                packets_log.debug("peer %s: received %s (%d bytes) %s", self.peer.address,
                                  _msg_name(msg_type), len(body) + HEADER_LEN, body.hex())
        except BGPError as exc:
            packets_log.debug("peer %s: received undecodable bytes (%s) %s", self.peer.address, exc,
                              data.hex())
            self._packet_reader = None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.conn.closed:
            self._read_what_is_left()
        why = f"connection lost: {exc}" if exc else "connection closed by peer"
        self.execute(self.conn.connection_lost(why))
        self._cleanup()

    def _read_what_is_left(self) -> None:
        """A write failed (EPIPE, ECONNRESET) and asyncio stopped reading: the peer may have sent a
        NOTIFICATION before it closed, still unread in the kernel. Read it so the log says why the
        peer closed, not just 'Broken pipe'. The socket is open until this callback returns."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return
        left = DRAIN_LIMIT
        try:
            with sock.dup() as dup:
                dup.setblocking(False)
                while left > 0 and not self.conn.closed:
                    data = dup.recv(min(left, 65536))
                    if not data:
                        break
                    left -= len(data)
                    self.data_received(data)
        except OSError:
            pass  # nothing more to read (EAGAIN), or the error itself: connection_lost reports it

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- actions -------------------------------------------------------------------------------

    def execute(self, actions: list[fsm.Action]) -> None:
        stats = self.peer.stats
        for action in actions:
            if isinstance(action, fsm.Send):
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(action.data)
                    stats["messages_out"] += 1
                    if packets_log.isEnabledFor(logging.DEBUG):
                        _log_sent(self.peer.address, action.data)
            elif isinstance(action, fsm.SetTimer):
                self._set_timer(action.name, action.seconds)
            elif isinstance(action, fsm.StopTimer):
                handle = self.timers.pop(action.name, None)
                if handle:
                    handle.cancel()
            elif isinstance(action, fsm.StateChange):
                self.peer.on_state_change(self, action.old, action.new)
            elif isinstance(action, fsm.UpdateReceived):
                started = time.perf_counter()
                stats["messages_in"] += 1
                stats["updates_in"] += 1
                self.peer.on_update(action.update)
                self._received_seconds.observe(action.decode_seconds + time.perf_counter() - started)
            elif isinstance(action, fsm.KeepaliveReceived):
                stats["messages_in"] += 1
                stats["keepalives_in"] += 1
                self.peer.emit(PeerEvent(EventKind.KEEPALIVE, self.peer.ref))
            elif isinstance(action, fsm.OpenReceived):
                stats["messages_in"] += 1
                self.peer.emit(PeerEvent(EventKind.OPEN, self.peer.ref, open=action.open))
                self.peer.on_open(self, action.open)
            elif isinstance(action, fsm.SessionUp):
                stats["messages_in"] += 1  # the KEEPALIVE that completed the handshake
                self.peer.on_established(self, action.negotiated)
            elif isinstance(action, fsm.RefreshRequested):
                stats["messages_in"] += 1
                self.peer.emit(PeerEvent(EventKind.REFRESH, self.peer.ref, refresh=action.refresh))
                self.peer.on_refresh(self, action.refresh.family)
            elif isinstance(action, fsm.Close):
                if action.notification_received is not None:
                    stats["messages_in"] += 1
                self.peer.on_close(self, action)
                if self.transport is not None:
                    self.transport.close()
                self._cleanup()

    def _set_timer(self, name: str, seconds: float) -> None:
        old = self.timers.pop(name, None)
        if old:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.timers[name] = loop.call_later(seconds, self._timer_fired, name)

    def _timer_fired(self, name: str) -> None:
        self.timers.pop(name, None)
        self.execute(self.conn.timer_expired(name))

    def _cleanup(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self._can_write.set()
        if not self.done.done():
            self.done.set_result(None)
        self.peer.forget(self)

    # -- sending the RIB -----------------------------------------------------------------------

    async def write_messages(self, messages: Iterable[bytes]) -> int:
        """Write an iterable of messages with flow control; stop early if the connection closes."""
        sent = 0
        batch = 0
        log_packets = packets_log.isEnabledFor(logging.DEBUG)
        report = self._sent_context() if self.peer.report_sent else None
        # Each UPDATE's time runs from asking `messages` for it (which encodes it) to its bytes
        # handed on: one clock read per UPDATE ends its time and starts the next one's, and the
        # clock restarts after the waits below, which are not the UPDATE's doing.
        observe = self.peer.update_seconds["sent"].observe
        clock = time.perf_counter
        started = clock()
        for msg in messages:
            if self.transport is None or self.transport.is_closing() or self.conn.closed:
                break
            self.transport.write(msg)
            if log_packets:
                _log_sent(self.peer.address, msg)
            if report is not None:
                self._report_sent(msg, report)
            now = clock()
            observe(now - started)
            started = now
            sent += 1
            batch += 1
            if batch >= WRITE_BATCH or not self._can_write.is_set():
                batch = 0
                await self._can_write.wait()
                await asyncio.sleep(0)
                started = clock()
        self.peer.stats["messages_out"] += sent
        self.peer.stats["updates_out"] += sent
        return sent

    def _sent_context(self) -> tuple[DecodeContext, tuple[Family, ...]] | None:
        """How to read back what this session sends: our own send-side choices (path ids, IPv6
        next hops for IPv4 routes)."""
        neg = self.peer.negotiated
        if neg is None:
            return None
        ctx = DecodeContext(asn4=neg.asn4, ibgp=self.peer.neighbor.peer_as == self.peer.neighbor.local_as,
                            addpath=neg.addpath_send, extended_next_hop=neg.extended_next_hop)
        return ctx, neg.families

    def _report_sent(self, msg: bytes, context: tuple[DecodeContext, tuple[Family, ...]]) -> None:
        """An UPDATE we sent, as an event for the API programs that asked (`send { update; }`),
        decoded from the bytes that went out, as ExaBGP reports it."""
        ctx, families = context
        try:
            update = decode_update(msg[HEADER_LEN:], ctx, families)
        except BGPError as exc:  # our own message: a bug, but not one to stop sending for
            self.peer.log.error("cannot report a sent UPDATE to the API: %s", exc)
            return
        self.peer.emit(PeerEvent(EventKind.UPDATE, self.peer.ref, direction=Direction.SEND, update=update))

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def unacked_bytes(self) -> int:
        """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ); 0 when
        the kernel cannot say (no socket, another OS): the transport's own buffer is checked apart."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):
            return 0
        return int(struct.unpack("i", raw)[0])

    def stop(self, notification: Notification) -> None:
        self.execute(self.conn.stop(notification))


class Peer:
    """A configured neighbor's asyncio shell: dials (unless passive), accepts, runs the send task,
    logs and counts. What the session is and sends is its sans-IO core, `core` (a PeerState)."""

    def __init__(self, neighbor: Neighbor, *, on_event: Callable[[PeerEvent], None] | None = None,
                 default_connect_port: int = DEFAULT_PORT, restarting: bool = False,
                 forwarding: bool = True) -> None:
        self.neighbor = neighbor
        # restarting: created as the agent starts (graceful restart's Restart State bit);
        # forwarding: the Forwarding State bit of every family (the graceful-restart-forwarding setting)
        self.core = PeerState(neighbor, restarting=restarting, forwarding=forwarding)
        self.default_connect_port = default_connect_port
        # An API program asked for the UPDATEs we send (`api { send { update; } }`): the API
        # manager sets it, so that nobody pays for decoding our own messages otherwise.
        self.report_sent = False
        self.address = normalise_peer(neighbor.peer_address)
        self.log = PeerLog(logging.getLogger("fleetbgp.peer"), {"peer": neighbor.peer_address})
        # The core's tables, never replaced: read directly by control, metrics, flows and the API.
        self.rib_out: OwnedRibOut = self.core.rib_out
        self.rib_in: AdjRibIn = self.core.rib_in
        self._idle = asyncio.Event()
        self.protocols: set[BGPProtocol] = set()
        self.established: BGPProtocol | None = None
        self.idle_state = State.IDLE
        self.backoff = Backoff()
        self.running = False
        self._changed = asyncio.Event()
        self._dialer: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._send_wanted = asyncio.Event()
        self.on_event = on_event
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        # fleetbgp_update_processing_seconds: by direction ("received", "sent"), kept as stats are
        self.update_seconds: dict[str, DurationHistogram] = update_histograms()
        self.notifications: dict[tuple[str, int, int], int] = {}
        self.last_notification: dict[str, Any] | None = None
        self.established_since: float | None = None
        self.last_error: str = ""
        self.update_problem_limit = RateLimiter(UPDATE_PROBLEMS_BURST, UPDATE_PROBLEMS_WINDOW)
        self._problem_flush: asyncio.TimerHandle | None = None
        self._ref: PeerRef | None = None
        # BFD (the Speaker sets these): where this peer's BFD status is read, and why BGP is held
        # down (None: not held): the BFD session went Down after having been Up.
        self.bfd_lookup: Callable[[str], BfdStatus | None] | None = None
        self.bfd_hold: str | None = None
        self._wake = asyncio.Event()  # cuts the dial loop's back-off short (BFD is up again)
        self.refused_log = RateLimiter(1, 60.0)
        self.schedule_send()

    # -- the core's state, as the rest of the agent reads it -----------------------------------------

    @property
    def negotiated(self) -> Negotiated | None:
        return self.core.negotiated

    @negotiated.setter
    def negotiated(self, value: Negotiated | None) -> None:  # tests pretend a session is up
        self.core.negotiated = value

    @property
    def encode_ctx(self) -> EncodeContext | None:
        return self.core.encode_ctx

    @property
    def drain_mode(self) -> str | None:
        return self.core.drain_mode

    @property
    def drain_metric(self) -> int:
        return self.core.drain_metric

    @property
    def send_queue_empty(self) -> bool:
        """Nothing of ours is waiting to reach the peer: no change pending in the core, the send task
        idle, the transport's buffer empty and every byte in the socket acknowledged by the peer's TCP
        (Linux SIOCOUTQ). True without a session (nothing can be sent). Rolling restarts wait for it
        after a drain: the withdraws have reached the router, not just our own buffers."""
        proto = self.established
        if proto is None:
            return True
        if self.core.pending or not self._idle.is_set() or proto.write_buffer_size() > 0:
            return False
        return proto.unacked_bytes() == 0

    @property
    def bfd(self) -> BfdStatus | None:
        """The BFD session's status; None without `bfd` in the neighbor's config."""
        if self.bfd_lookup is None or self.neighbor.bfd is None:
            return None
        return self.bfd_lookup(self.address)

    def hold_for_bfd(self, reason: str) -> None:
        """BFD went Down: close the BGP session at once with Cease/BFD Down (RFC 9384; inside a
        Hard Reset where RFC 8538's N bit was negotiated: the peer must drop our routes, not keep
        them as stale) and neither dial nor accept until `release_bfd_hold`. The adj-rib-out is
        kept: the next session sends it all again."""
        if self.bfd_hold is not None:
            return
        self.bfd_hold = reason
        note = Notification(ErrCode.CEASE, CeaseSub.BFD_DOWN)
        if self.protocols:
            self.log.warning("BFD down (%s): closing the BGP session, held down until BFD is up again",
                             reason, extra=log_event("bgp_held_by_bfd"))
        else:
            self.log.warning("BFD down (%s): no BGP connection; held down until BFD is up again", reason,
                             extra=log_event("bgp_held_by_bfd"))
        for conn, actions in self.core.stop(note):
            self._carry_out(conn, actions)
        for proto in list(self.protocols):
            proto.stop(note)
        self.last_error = f"held down: BFD down ({reason})"
        self._changed.set()

    def release_bfd_hold(self, why: str = "BFD is up again") -> None:
        if self.bfd_hold is None:
            return
        self.bfd_hold = None
        self.last_error = ""
        self.backoff.reset()
        self.log.info("%s: BGP may connect again", why, extra=log_event("bgp_released_by_bfd"))
        self._changed.set()
        self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        self._dialer = asyncio.create_task(self._dial_loop(), name=f"dial {self.address}")
        self._sender = asyncio.create_task(self._send_loop(), name=f"send {self.address}")

    async def stop(self, notification: Notification | None = None, timeout: float = 3.0, *,
                   graceful: bool = False) -> None:
        """Close every connection and stop dialling. `notification` ends the session (and graceful
        restart); graceful=True keeps graceful restart going where the session has it (the core's
        `stop` decides what goes on the wire)."""
        self.running = False
        note = notification or Notification.shutdown("fleetbgp shutting down")
        for task in (self._dialer, self._sender):
            if task:
                task.cancel()
        protocols = list(self.protocols)
        for conn, actions in self.core.stop(note, graceful=graceful):
            self._carry_out(conn, actions)
        for proto in protocols:
            proto.stop(note)  # any the core does not know of (nothing happens for a closed one)
        waits = [p.done for p in protocols if not p.done.done()]
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        for task in (self._dialer, self._sender):
            if task:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @property
    def state(self) -> State:
        if not self.protocols:
            return self.idle_state
        return max((p.state for p in self.protocols), key=_STATE_ORDER.index)

    # -- what we send and expect ------------------------------------------------------------------

    def local_open(self) -> Open:
        return self.core.local_open()

    def router_id(self) -> str:
        return self.core.router_id()

    def expectations(self) -> Expectations:
        return self.core.expectations()

    def outgoing_ttl(self) -> int | None:
        """GTSM (RFC 5082) only works if both directions use it: a neighbor that checks incoming
        TTLs sends with TTL 255 unless told otherwise."""
        n = self.neighbor
        if n.outgoing_ttl:
            return n.outgoing_ttl
        return 255 if n.incoming_ttl else None

    def _md5(self) -> bytes | None:
        secret = self.neighbor.md5_password
        if secret is None:
            return None
        return md5_key(secret.reveal(), self.neighbor.md5_base64)

    # -- routes: the core decides, the send task is woken when something is to be sent ---------------

    def set_static(self, routes: RouteTable) -> tuple[int, int]:
        """Make the static routes equal `routes`; only the differences are sent."""
        counts = self.core.set_static(routes)
        self.schedule_send()
        return counts

    def set_watchdogs(self, groups: Mapping[str, Sequence[WatchdogRoute]]) -> None:
        self.core.set_watchdogs(groups)

    def join_watchdog(self, name: str, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                      announced: bool) -> None:
        self.core.join_watchdog(name, fam, nlri, attrs, owner, announced)

    def move_watchdog(self, name: str, announce: bool) -> int:
        moved = self.core.move_watchdog(name, announce)
        if moved:
            self.schedule_send()
        return moved

    def advertise(self, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                  track: bool = True) -> bool:
        """Put a route in the adj-rib-out on behalf of owner; the last announcement wins."""
        changed = self.core.advertise(fam, nlri, attrs, owner, track)
        if changed:
            self.schedule_send()
        return changed

    def retract(self, fam: Family, nlri: bytes) -> bool:
        changed = self.core.retract(fam, nlri)
        if changed:
            self.schedule_send()
        return changed

    def owned(self, owner: Owner) -> dict[Family, set[bytes]]:
        return self.core.owned(owner)

    def retract_all(self) -> int:
        """Every route withdrawn, whoever announced it (ExaBGP's `clear adj-rib out`)."""
        count = self.core.retract_all()
        if count:
            self.schedule_send()
        return count

    def retract_owner(self, owner: Owner) -> int:
        count = self.core.retract_owner(owner)
        if count:
            self.schedule_send()
        return count

    def set_drain(self, mode: str | None, metric: int = 1000) -> None:
        """Maintenance: see PeerState.set_drain."""
        if self.core.set_drain(mode, metric):
            self.schedule_send()

    def send_eor(self, families: Iterable[Family] | None = None) -> bool:
        """End-of-RIB after what is pending (API `announce eor [AFI SAFI]`)."""
        if not self.core.send_eor(families):
            return False
        self.schedule_send()
        return True

    def request_refresh(self, families: Iterable[Family] | None = None) -> bool:
        """Ask the peer to send its routes again (ROUTE-REFRESH, RFC 2918). False without a
        session that offers it, or when no family of the session is asked for."""
        try:
            conn, actions = self.core.route_refresh(families)
        except LocalProtocolError:
            return False
        if not actions:
            return False
        self._carry_out(conn, actions)
        return True

    def resend(self, families: Iterable[Family] | None = None) -> bool:
        """Send the whole adj-rib-out again (API `flush adj-rib out`)."""
        if not self.core.resend(families):
            return False
        self.schedule_send()
        return True

    def teardown(self, subcode: int = CeaseSub.ADMINISTRATIVE_RESET, message: str = "") -> bool:
        """Close the session with a Cease (API `neighbor X teardown N`); the peer dials again."""
        try:
            conn, actions = self.core.teardown(subcode, message)
        except LocalProtocolError:
            return False
        self._carry_out(conn, actions)
        return True

    def _carry_out(self, conn: fsm.Connection, actions: list[fsm.Action]) -> None:
        """Actions the core addressed to one connection, on that connection's transport."""
        for proto in list(self.protocols):
            if proto.conn is conn:
                proto.execute(actions)
                return
        if self.established is not None and self.established.conn is conn:
            self.established.execute(actions)

    def schedule_send(self) -> None:
        self._idle.clear()
        self._send_wanted.set()

    async def flushed(self, timeout: float = 10.0) -> bool:
        """Wait until every pending change has been handed to the kernel (or there is no session).
        Returns False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            proto = self.established
            if proto is None:
                return True
            if self._idle.is_set() and proto.write_buffer_size() == 0:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not self._idle.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), min(remaining, 0.5))
            else:
                await asyncio.sleep(0.01)

    async def _send_loop(self) -> None:
        while self.running:
            if not self._send_wanted.is_set():
                self._idle.set()
            await self._send_wanted.wait()
            self._send_wanted.clear()
            proto = self.established
            if proto is None:
                continue
            try:
                messages = self.core.updates()
            except LocalProtocolError:
                continue  # the session went down meanwhile: the next one sends everything
            started = time.monotonic()
            sent = await proto.write_messages(messages)
            self.stats["routes_announced"] = self.rib_out.sent_announced
            self.stats["routes_withdrawn"] = self.rib_out.sent_withdrawn
            if sent:
                self.log.info("sent %d UPDATE message(s) in %.3f s; adj-rib-out %s", sent,
                              time.monotonic() - started, self.rib_out_counts(),
                              extra=log_event("updates_sent"))

    def rib_out_counts(self) -> dict[str, int]:
        return {family_name(f): self.rib_out.count(f) for f in self.neighbor.families}

    # -- dialing ----------------------------------------------------------------------------------

    async def _dial_loop(self) -> None:
        while self.running:
            if self.protocols:
                self._changed.clear()
                await self._changed.wait()
                continue
            if self.bfd_hold is not None:
                self._set_idle_state(State.IDLE)
                self._changed.clear()
                await self._changed.wait()
                continue
            if self.neighbor.passive:
                self._set_idle_state(State.ACTIVE)
                self._changed.clear()
                await self._changed.wait()
                continue
            self._set_idle_state(State.CONNECT)
            proto = await self._connect()
            if proto is not None:
                await proto.done
            self._set_idle_state(State.ACTIVE if self.running else State.IDLE)
            delay = self.backoff.next_delay()
            self.log.debug("next connection attempt in %.1f s", delay)
            # An incoming connection may arrive meanwhile; the loop then waits for it to end. BFD
            # coming back up ends the wait at once.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _set_idle_state(self, new: State) -> None:
        if new is not self.idle_state and not self.protocols:
            self.log.debug("state %s -> %s", self.idle_state, new)
        self.idle_state = new

    async def _connect(self) -> BGPProtocol | None:
        n = self.neighbor
        loop = asyncio.get_running_loop()
        try:
            sock = outgoing_socket(n.peer_address, n.local_address, md5=self._md5(),
                                   ttl=self.outgoing_ttl(), min_ttl=n.incoming_ttl)
        except (OSError, TransportError, ValueError) as exc:
            self.last_error = f"cannot prepare socket: {exc}"
            self.log.error("%s", self.last_error, extra=log_event("connect_failed"))
            return None
        port = n.connect_port or self.default_connect_port
        proto: BGPProtocol | None = None
        try:
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr(n.peer_address, port)),
                                   CONNECT_TIMEOUT)
            if self.bfd_hold is not None:  # BFD went down while we dialed
                sock.close()
                return None
            proto = BGPProtocol(self, "out")
            self.protocols.add(proto)
            await loop.create_connection(lambda: proto, sock=sock)
            return proto
        except (OSError, TimeoutError) as exc:
            if proto is not None:  # left in, the dial loop would wait for it to end: forever
                self.protocols.discard(proto)
            sock.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            self.last_error = f"connect to {n.peer_address} port {port} failed: {reason}"
            self.log.debug("%s", self.last_error)
            return None

    def accept(self, sock: socket.socket) -> None:
        """An incoming connection from this peer's address."""
        if not self.running:
            sock.close()
            return
        if self.bfd_hold is not None:
            if self.refused_log.allow()[0]:
                self.log.info("incoming connection refused: BGP is held down while BFD is down (%s)",
                              self.bfd_hold)
            sock.close()
            return
        if self.neighbor.incoming_ttl or self.neighbor.outgoing_ttl:
            try:
                set_ttl(sock, self.outgoing_ttl() or 64)
                if self.neighbor.incoming_ttl:
                    set_min_ttl(sock, self.neighbor.incoming_ttl)
            except TransportError as exc:
                self.log.error("%s", exc)
                sock.close()
                return
        proto = BGPProtocol(self, "in")
        self.protocols.add(proto)
        self._changed.set()
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(lambda: proto, sock))
        task.add_done_callback(lambda t: self._accept_done(t, proto))

    def _accept_done(self, task: asyncio.Task[Any], proto: BGPProtocol) -> None:
        if task.exception() is not None:
            self.forget(proto)

    def forget(self, proto: BGPProtocol) -> None:
        self.core.forget(proto.conn)
        if proto in self.protocols:
            self.protocols.discard(proto)
            self._changed.set()

    # -- events from connections ---------------------------------------------------------------

    def on_state_change(self, proto: BGPProtocol, old: State, new: State) -> None:
        self.log.debug("%s connection: %s -> %s", proto.direction, old, new)

    def on_open(self, proto: BGPProtocol, remote: Open) -> None:
        """Collision detection (RFC 4271 6.8) once this connection knows the peer's identifier."""
        for loser, actions in self.core.open_received(proto.conn, remote):
            self.log.info("connection collision: closing the %s connection", loser.direction,
                          extra=log_event("connection_collision"))
            self._carry_out(loser, actions)

    def on_established(self, proto: BGPProtocol, neg: Negotiated) -> None:
        self.established = proto
        self.core.session_up(proto.conn, neg, proto.local_address)
        self.backoff.reset()
        self.stats["established_count"] += 1
        self.established_since = time.time()
        self.last_error = ""
        fams = ", ".join(family_name(f) for f in neg.families) or "none"
        addpath = "".join(f"; add-path {what}: " + ", ".join(family_name(f) for f in fs)
                          for what, fs in (("send", sorted(neg.addpath_send)),
                                           ("receive", sorted(neg.addpath_receive))) if fs)
        self.log.info("session established (%s, peer AS %d, router-id %s, hold %d s, families: %s%s)",
                      proto.direction, neg.peer_as, neg.peer_router_id, neg.hold_time, fams, addpath,
                      extra=log_event("session_established"))
        missing = [f for f in self.neighbor.families if f not in neg.families]
        if missing:
            self.log.warning("peer did not accept families: %s",
                             ", ".join(family_name(f) for f in missing),
                             extra=log_event("families_not_accepted"))
        refused = [f for f in self.neighbor.capabilities.extended_next_hop
                   if f in neg.families and f not in neg.extended_next_hop]
        if refused:
            # Its routes with an IPv6 next hop (and `next-hop self` on an IPv6 session) stay unsent.
            self.log.warning("peer did not offer the extended next hop (RFC 8950) for %s: routes of "
                             "that family with an IPv6 next hop are not sent",
                             ", ".join(family_name(f) for f in refused),
                             extra=log_event("extended_next_hop_refused"))
        self.schedule_send()
        self.emit(PeerEvent(EventKind.STATE, self.ref, state=SessionState.UP))

    def on_close(self, proto: BGPProtocol, close: fsm.Close) -> None:
        was_established = self.core.session_down(proto.conn) or proto is self.established
        detail = close.reason
        if close.notification_sent is not None:
            n = close.notification_sent
            detail = f"{close.reason}; sent NOTIFICATION {describe_notification(n)}"
            self._count_notification("sent", n, detail)
        if close.notification_received is not None:
            n = close.notification_received
            detail = f"NOTIFICATION received: {describe_notification(n)}"
            if n.shutdown_message:
                detail += f" ({n.shutdown_message!r})"
            self._count_notification("received", n, detail)
        self.last_error = detail
        if was_established:
            self.established = None
            self.established_since = None
            self.stats["flaps"] += 1
            self.log.warning("session down: %s", detail, extra=log_event("session_down"))
            self.emit(PeerEvent(EventKind.STATE, self.ref, state=SessionState.DOWN, reason=detail))
        else:
            self.log.info("%s connection closed in %s: %s", proto.direction, close.state or proto.state,
                          detail, extra=log_event("connection_closed"))

    def on_update(self, update: Update) -> None:
        if update.notes:
            self._log_update_problems(update.notes)
        self.core.update_received(update)
        if update.eor is not None:
            self.log.info("received End-of-RIB for %s; adj-rib-in: %s", family_name(update.eor),
                          self.rib_in.counts(), extra=log_event("eor_received"))
        elif self.log.isEnabledFor(logging.DEBUG):
            ann = sum(len(i) for _attrs, i in update.announce.values())
            wd = sum(len(i) for i in update.withdraw.values())
            self.log.debug("UPDATE received: %d announced, %d withdrawn; adj-rib-in: %s", ann, wd,
                           self.rib_in.counts())
        self.emit(PeerEvent(EventKind.UPDATE, self.ref, update=update))

    def _log_update_problems(self, notes: list[str]) -> None:
        """One line per UPDATE, and at most UPDATE_PROBLEMS_BURST lines per window for this peer;
        the count of the rest is logged when the window ends."""
        ok, held = self.update_problem_limit.allow()
        if held:
            self._log_problems_not_logged(held)
        if ok:
            self.log.warning("UPDATE: %s", summarise_notes(notes), extra=log_event("update_problems"))
        elif self._problem_flush is None:
            with contextlib.suppress(RuntimeError):  # no event loop: the count waits for the next line
                self._problem_flush = asyncio.get_running_loop().call_later(
                    self.update_problem_limit.window_left(), self._flush_problem_count)

    def _flush_problem_count(self) -> None:
        self._problem_flush = None
        held = self.update_problem_limit.take_suppressed()
        if held:
            self._log_problems_not_logged(held)

    def _log_problems_not_logged(self, count: int) -> None:
        self.log.warning("%d more UPDATE(s) with attribute problems not logged", count,
                         extra=log_event("update_problems"))

    def on_refresh(self, proto: BGPProtocol, fam: Family) -> None:
        if not self.core.refresh_received(fam):
            self.log.warning("ROUTE-REFRESH for %s, which was not negotiated: ignored", fam,
                             extra=log_event("route_refresh_received"))
            return
        self.log.info("ROUTE-REFRESH for %s: sending %d route(s) again", family_name(fam),
                      self.rib_out.count(fam), extra=log_event("route_refresh_received"))
        self.schedule_send()

    def _count_notification(self, direction: str, n: Notification, text: str) -> None:
        key = (direction, n.code, n.subcode)
        self.notifications[key] = self.notifications.get(key, 0) + 1
        self.stats["notifications_in" if direction == "received" else "notifications_out"] += 1
        self.last_notification = {"direction": direction, "code": n.code, "subcode": n.subcode,
                                  "text": text, "time": time.time()}
        self.emit(PeerEvent(EventKind.NOTIFICATION, self.ref, direction=Direction.RECEIVE
                            if direction == "received" else Direction.SEND, notification=n))

    @property
    def local_address(self) -> str | None:
        return self.established.local_address if self.established else None

    @property
    def remote_address(self) -> str | None:
        return self.established.remote_address if self.established else None

    @property
    def ref(self) -> PeerRef:
        """This peer as events name it, now: a frozen value, made again only when the config or
        the session's address changed (not once per event)."""
        local = self.local_address or self.neighbor.local_address or ""
        ref = self._ref
        if ref is None or ref.neighbor is not self.neighbor or ref.local_address != local:
            ref = self._ref = PeerRef.of(self.address, self.neighbor, local)
        return ref

    def emit(self, event: PeerEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                self.log.exception("event subscriber failed on %s", event.kind)


def describe_notification(n: Notification) -> str:
    """'Cease/Administrative Shutdown', and what a Cease/Hard Reset carries (RFC 8538 3)."""
    inner = n.hard_reset_of
    text = describe_error(n.code, n.subcode)
    return f"{text} ({describe_error(inner.code, inner.subcode)})" if inner is not None else text


def summarise_notes(notes: list[str], shown: int = 3) -> str:
    """The RFC 7606 notes of one UPDATE as one line: the first few, those that cost routes first."""
    if len(notes) == 1:
        return notes[0]
    ordered = sorted(notes, key=lambda note: "treated as withdrawn" not in note)
    text = "; ".join(ordered[:shown])
    if len(notes) > shown:
        text += f"; and {len(notes) - shown} more"
    return f"{len(notes)} attribute problems: {text}"


def _msg_name(msg_type: int) -> str:
    try:
        return MsgType(msg_type).name
    except ValueError:
        return f"type {msg_type}"


def _log_sent(peer: str, msg: bytes) -> None:
    packets_log.debug("peer %s: sent %s (%d bytes) %s", peer, _msg_name(msg[18]), len(msg),
                      msg[HEADER_LEN:].hex())
