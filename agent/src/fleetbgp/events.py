"""Events a Peer reports to whoever listens: API programs, metrics, health checks.

An event names its peer by a `PeerRef`, a frozen value, never by the live Peer: a listener reads
what the peer was when the event happened and cannot reach into the session. The kinds, directions
and states are `StrEnum`s whose values are the words ExaBGP's API messages carry, so formatting one
writes the same text as the plain string did."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config.model import Neighbor
    from .wire.messages import Notification, Open, RouteRefresh, Update


class EventKind(enum.StrEnum):
    STATE = "state"
    UPDATE = "update"
    NOTIFICATION = "notification"
    OPEN = "open"
    KEEPALIVE = "keepalive"
    REFRESH = "refresh"


class Direction(enum.StrEnum):
    RECEIVE = "receive"
    SEND = "send"


class SessionState(enum.StrEnum):
    """What a `state` event reports."""

    NONE = ""  # not a state event
    CONNECTED = "connected"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class PeerRef:
    """The peer an event is about, as it was when the event happened. `local_address` is the
    session's own address while it is up, else the configured one ("" when the kernel chooses).
    `neighbor` is the configuration the peer ran with (which API programs it feeds)."""

    address: str  # the normalised key of Speaker.peers
    peer_address: str  # as configured
    local_address: str
    local_as: int
    peer_as: int
    router_id: str
    neighbor: Neighbor = field(repr=False, compare=False)  # a mutable config object: not hashed

    @classmethod
    def of(cls, address: str, neighbor: Neighbor, local_address: str | None = None) -> PeerRef:
        local = local_address or neighbor.local_address or ""
        return cls(address, neighbor.peer_address, local, neighbor.local_as, neighbor.peer_as,
                   neighbor.router_id, neighbor)


@dataclass(frozen=True, slots=True)
class PeerEvent:
    kind: EventKind
    peer: PeerRef
    direction: Direction = Direction.RECEIVE
    state: SessionState = SessionState.NONE  # kind STATE only
    reason: str = ""
    update: Update | None = None
    notification: Notification | None = None
    open: Open | None = None
    refresh: RouteRefresh | None = None
    time: float = field(default_factory=time.time)
