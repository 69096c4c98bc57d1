"""The RFC 4271 finite state machine of one connection, sans-IO: events in, actions out.

`Connection` runs one TCP connection's conversation from OpenSent to Established and refuses to
send what its state does not allow (`LocalProtocolError`, as h11's). The peer-level part (which of
two connections survives a collision, what the session sends) is peer_state.PeerState; when to
dial (Idle, Connect, Active, connect-retry with `Backoff`) is the asyncio shell's, in session.py.
Nothing here touches a socket or a clock: the shell feeds bytes and timer expiries in and carries
out the actions that come back. (The one exception is a clock the shell may hand in, read only to
say how long an UPDATE took to decode, for the processing-time histogram.)
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .wire.attributes import DecodeContext
from .wire.constants import ErrCode, FsmSub, MsgType, OpenSub
from .wire.errors import BGPError
from .wire.messages import (
    KEEPALIVE,
    MessageReader,
    Negotiated,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_update,
    negotiate,
)

# RFC 4271 8.2.2: "a large value" for the hold timer until the OPEN arrives.
OPEN_HOLD_TIME = 240


class State(enum.Enum):
    IDLE = "idle"
    CONNECT = "connect"
    ACTIVE = "active"
    OPENSENT = "opensent"
    OPENCONFIRM = "openconfirm"
    ESTABLISHED = "established"

    def __str__(self) -> str:
        return self.name.capitalize() if self is not State.OPENSENT and self is not State.OPENCONFIRM \
            else {"opensent": "OpenSent", "openconfirm": "OpenConfirm"}[self.value]


# ---- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class SetTimer:
    name: str  # "hold" | "keepalive"
    seconds: float


@dataclass(frozen=True, slots=True)
class StopTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the TCP connection; reason says why, for the log."""

    reason: str
    notification_sent: Notification | None = None
    notification_received: Notification | None = None
    # The state the connection was in (the FSM is in Idle by the time the action is carried out).
    state: State | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StateChange:
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class OpenReceived:
    open: Open


@dataclass(frozen=True, slots=True)
class SessionUp:
    negotiated: Negotiated


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    update: Update
    decode_seconds: float = 0.0  # 0 without a clock (Connection's `clock`)


@dataclass(frozen=True, slots=True)
class RefreshRequested:
    refresh: RouteRefresh


@dataclass(frozen=True, slots=True)
class KeepaliveReceived:
    pass


Action = Send | SetTimer | StopTimer | Close | StateChange | OpenReceived | SessionUp | UpdateReceived \
    | RefreshRequested | KeepaliveReceived


class LocalProtocolError(Exception):
    """We asked to send a message the connection's state does not allow (an UPDATE or a
    ROUTE-REFRESH before Established, anything after the close): a bug of the caller, as h11's
    LocalProtocolError, never something the peer did."""


@dataclass(frozen=True, slots=True)
class Expectations:
    """What we require of the peer's OPEN."""

    peer_as: int
    local_as: int
    local_router_id: str


class Connection:
    """One connection's BGP conversation. Call start() once the TCP connection is up."""

    def __init__(self, local_open: Open, expect: Expectations, direction: str = "out",
                 clock: Callable[[], float] | None = None) -> None:
        self.local_open = local_open
        self.clock = clock  # times UPDATE decoding only (UpdateReceived.decode_seconds)
        self.direction = direction  # "out": we dialed; "in": the peer dialed (collisions need it)
        self.expect = expect
        self.state = State.CONNECT
        self.reader = MessageReader()
        self.remote_open: Open | None = None
        self.negotiated: Negotiated | None = None
        self._decode_ctx = DecodeContext(asn4=True, ibgp=expect.peer_as == expect.local_as)
        self.closed = False

    # -- events --------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        actions: list[Action] = [Send(self.local_open.encode()), SetTimer("hold", OPEN_HOLD_TIME)]
        actions += self._move(State.OPENSENT)
        return actions

    def data_received(self, data: bytes) -> list[Action]:
        if self.closed:
            return []
        actions: list[Action] = []
        try:
            for msg_type, body in self.reader.feed(data):
                actions += self._message(msg_type, body)
                if self.closed:
                    break
        except BGPError as err:
            actions += self._error(err)
        return actions

    def timer_expired(self, name: str) -> list[Action]:
        if self.closed:
            return []
        if name == "hold":
            return self._notify_and_close(Notification(ErrCode.HOLD_TIMER_EXPIRED, 0),
                                          "hold timer expired")
        if name == "keepalive" and self.state in (State.OPENCONFIRM, State.ESTABLISHED):
            assert self.negotiated is not None
            if not self.negotiated.keepalive:
                return []  # hold time 0: no keepalives (RFC 4271 4.4); never re-arm a 0 s timer
            return [Send(KEEPALIVE), SetTimer("keepalive", self.negotiated.keepalive)]
        return []

    def connection_lost(self, why: str = "connection closed by peer") -> list[Action]:
        if self.closed:
            return []
        return self._finish(Close(why))

    def stop(self, notification: Notification) -> list[Action]:
        """Administrative stop: send the NOTIFICATION (normally a Cease) and close."""
        if self.closed:
            return []
        return self._notify_and_close(notification, "stopped")

    def close_silently(self, reason: str) -> list[Action]:
        """Close without a NOTIFICATION: a graceful restart towards a peer without RFC 8538's
        N bit, for which any NOTIFICATION ends graceful restart (RFC 4724 4.2)."""
        if self.closed:
            return []
        return self._finish(Close(reason))

    def check_send(self, msg_type: MsgType) -> None:
        """Raise LocalProtocolError unless a message of this type may be sent now: UPDATE and
        ROUTE-REFRESH only once Established (RFC 4271 9, RFC 2918 3)."""
        if self.closed or self.state is not State.ESTABLISHED:
            raise LocalProtocolError(f"cannot send {msg_type.name} in state {self.state}"
                                     + (" (connection closed)" if self.closed else ""))

    # -- internals -----------------------------------------------------------------------------

    def _move(self, new: State) -> list[Action]:
        old, self.state = self.state, new
        return [StateChange(old, new)] if old is not new else []

    def _finish(self, close: Close) -> list[Action]:
        self.closed = True
        actions: list[Action] = [StopTimer("hold"), StopTimer("keepalive"), replace(close, state=self.state)]
        actions += self._move(State.IDLE)
        return actions

    def _notify_and_close(self, note: Notification, reason: str) -> list[Action]:
        actions: list[Action] = [Send(note.encode())]
        return actions + self._finish(Close(reason, notification_sent=note))

    def _error(self, err: BGPError) -> list[Action]:
        return self._notify_and_close(Notification(err.code, err.subcode, err.data), err.reason)

    def _fsm_error(self, msg_type: int) -> list[Action]:
        sub = {State.OPENSENT: FsmSub.UNEXPECTED_IN_OPENSENT,
               State.OPENCONFIRM: FsmSub.UNEXPECTED_IN_OPENCONFIRM,
               State.ESTABLISHED: FsmSub.UNEXPECTED_IN_ESTABLISHED}.get(self.state, FsmSub.UNSPECIFIED)
        name = MsgType(msg_type).name
        return self._notify_and_close(Notification(ErrCode.FSM, sub),
                                      f"unexpected {name} in state {self.state}")

    def _message(self, msg_type: int, body: bytes) -> list[Action]:
        if msg_type == MsgType.NOTIFICATION:
            note = Notification.decode(body)
            return self._finish(Close("notification received", notification_received=note))
        if self.state is State.OPENSENT:
            if msg_type != MsgType.OPEN:
                return self._fsm_error(msg_type)
            return self._open(body)
        if self.state is State.OPENCONFIRM:
            if msg_type == MsgType.KEEPALIVE:
                actions = self._restart_hold()
                actions += self._move(State.ESTABLISHED)
                assert self.negotiated is not None
                actions.append(SessionUp(self.negotiated))
                return actions
            return self._fsm_error(msg_type)
        if self.state is State.ESTABLISHED:
            actions = self._restart_hold()
            if msg_type == MsgType.KEEPALIVE:
                actions.append(KeepaliveReceived())
            elif msg_type == MsgType.UPDATE:
                assert self.negotiated is not None
                clock = self.clock
                if clock is None:
                    actions.append(UpdateReceived(decode_update(body, self._decode_ctx,
                                                                self.negotiated.families)))
                else:
                    started = clock()
                    update = decode_update(body, self._decode_ctx, self.negotiated.families)
                    actions.append(UpdateReceived(update, clock() - started))
            elif msg_type == MsgType.ROUTE_REFRESH:
                actions.append(RefreshRequested(RouteRefresh.decode(body)))
            else:
                return self._fsm_error(msg_type)
            return actions
        return self._fsm_error(msg_type)

    def _open(self, body: bytes) -> list[Action]:
        remote = Open.decode(body)
        if remote.asn != self.expect.peer_as:
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.BAD_PEER_AS,
                           reason=f"peer says AS {remote.asn}, configured peer-as {self.expect.peer_as}")
        if remote.router_id == self.expect.local_router_id and remote.asn == self.expect.local_as:
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.BAD_BGP_IDENTIFIER,
                           reason=f"peer uses our own router-id {remote.router_id}")
        self.remote_open = remote
        neg = negotiate(self.local_open, remote)
        self.negotiated = neg
        self._decode_ctx = DecodeContext(asn4=neg.asn4, ibgp=self.expect.peer_as == self.expect.local_as,
                                         extended_next_hop=neg.extended_next_hop,
                                         addpath=neg.addpath_receive)
        if neg.extended_message:
            self.reader.max_size = neg.max_size
        actions: list[Action] = [OpenReceived(remote), Send(KEEPALIVE)]
        if neg.hold_time:
            actions += [SetTimer("hold", neg.hold_time), SetTimer("keepalive", neg.keepalive)]
        else:
            actions += [StopTimer("hold"), StopTimer("keepalive")]
        actions += self._move(State.OPENCONFIRM)
        return actions

    def _restart_hold(self) -> list[Action]:
        assert self.negotiated is not None
        return [SetTimer("hold", self.negotiated.hold_time)] if self.negotiated.hold_time else []


class Backoff:
    """Connect-retry delays: exponential from `base` to `cap`, with jitter, reset on success.

    RFC 4271 suggests a fixed 120 s ConnectRetryTimer; a server restarting its BGP peer wants its
    routes back within seconds, so we start low and back off (RFC 4271 8.2.1.3 allows tuning).
    """

    def __init__(self, base: float = 1.0, cap: float = 30.0, jitter: float = 0.25,
                 rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        delay: float = min(self.cap, self.base * (2 ** self.attempt))
        if delay < self.cap:
            # Stop counting once at the cap: 2 ** attempt as a float overflows after ~1000 tries.
            self.attempt += 1
        return delay * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0


def collision_winner(local_router_id: str, remote_router_id: str, *, local_as: int | None = None,
                     remote_as: int | None = None) -> str:
    """RFC 4271 6.8: which connection survives a collision: 'local' (the one we opened) if our
    BGP identifier is higher, else 'remote' (the one the peer opened). With equal identifiers
    (possible between ASes), the speaker with the larger AS number wins (RFC 6286 2.3)."""
    local = int(ipaddress.IPv4Address(local_router_id))
    remote = int(ipaddress.IPv4Address(remote_router_id))
    if local == remote and local_as is not None and remote_as is not None:
        return "local" if local_as > remote_as else "remote"
    return "local" if local > remote else "remote"
