"""Events a Peer reports to whoever listens: API programs, metrics, health checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Peer
    from .wire.messages import Notification, Open, RouteRefresh, Update


@dataclass(frozen=True, slots=True)
class PeerEvent:
    kind: str  # "state" | "update" | "notification" | "open" | "keepalive" | "refresh"
    peer: Peer
    direction: str = "receive"  # or "send"
    state: str = ""  # kind == "state": "connected" | "up" | "down"
    reason: str = ""
    update: Update | None = None
    notification: Notification | None = None
    open: Open | None = None
    refresh: RouteRefresh | None = None
    time: float = field(default_factory=time.time)
