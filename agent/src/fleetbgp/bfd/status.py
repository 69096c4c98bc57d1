"""What the agent shows of a BFD session: `BfdStatus`, a frozen snapshot the runtime's thread makes
and any thread may read, and its JSON form (control socket, `fleetbgp show neighbors`, agent_info).

No socket, no asyncio: control/ and metrics read this without pulling the runtime in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .machine import Timers
from .packet import BfdState, Diag


@dataclass(frozen=True, slots=True)
class BfdStatus:
    state: BfdState
    remote_state: BfdState
    local_diag: Diag
    remote_diag: Diag
    local_discr: int
    remote_discr: int
    tx_interval_ms: int          # negotiated periodic transmit interval (before jitter)
    detect_time_ms: int          # negotiated detection time (0: not known yet)
    remote_min_tx_ms: int
    remote_min_rx_ms: int
    remote_multiplier: int
    configured: Timers
    auth: str | None             # the authentication type, or None
    up_since: float | None       # epoch seconds of the last transition to Up
    transitions: int
    packets_sent: int
    packets_received: int
    packets_dropped: int
    last_down_reason: str | None
    passive: bool = False
    # BGP is held down by this session: it went from Up to Down (not by the peer's AdminDown) and
    # is not Up again yet (RFC 5882 3.2; a session never Up holds nothing)
    holding_bgp: bool = False
    # transitions by the state entered ("Up", "Down", ...): the metrics' `to` label
    transitions_to: Mapping[str, int] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.state is BfdState.UP

    def as_json(self) -> dict[str, Any]:
        """States and diagnostics as words, intervals as integer milliseconds."""
        return {
            "state": str(self.state),
            "remote_state": str(self.remote_state),
            "local_diag": self.local_diag.describe(),
            "remote_diag": self.remote_diag.describe(),
            "local_discriminator": self.local_discr,
            "remote_discriminator": self.remote_discr,
            "tx_interval_ms": self.tx_interval_ms,
            "detect_time_ms": self.detect_time_ms,
            "remote_min_tx_ms": self.remote_min_tx_ms,
            "remote_min_rx_ms": self.remote_min_rx_ms,
            "remote_multiplier": self.remote_multiplier,
            "configured": {"min_tx_ms": self.configured.min_tx_ms, "min_rx_ms": self.configured.min_rx_ms,
                           "multiplier": self.configured.multiplier, "passive": self.passive},
            "auth": self.auth,
            "up_since": self.up_since,
            "transitions": self.transitions,
            "packets": {"sent": self.packets_sent, "received": self.packets_received,
                        "dropped": self.packets_dropped},
            "last_down_reason": self.last_down_reason,
            "holding_bgp": self.holding_bgp,
        }
