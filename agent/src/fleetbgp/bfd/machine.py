"""One BFD session's state machine (RFC 5880 6.8), sans-IO: decoded packets and timer expiries in,
actions out (packets to send, timers to arm, state changes to report), like fsm.py for BGP.

What it implements, section by section of RFC 5880:
- 6.8.6: the reception rules that need the session (Your Discriminator, authentication) and the
  state table: Down+Down -> Init, Down+Init -> Up, Init+Init/Up -> Up, Up+Down -> Down (diag 3),
  a peer's AdminDown takes Init/Up to Down (diag 3); in AdminDown every packet is ignored.
- 6.8.3: the advertised Desired Min TX is at least 1 s while the session is not Up; timer changes
  while Init/Up run a Poll Sequence (6.5); while Up, a larger Desired Min TX and a smaller Required
  Min RX take effect only when the Final arrives, the other way round at once.
- 6.8.2/6.8.7: packets go out every max(Desired Min TX in effect, peer's Required Min RX), less
  0-25 % of jitter (10-25 % with Detect Mult 1); none while the peer's Required Min RX is 0, while
  passive and no peer is known, or while the peer is in Demand mode and both are Up. A Poll is
  answered at once with a Final, outside that schedule.
- 6.8.4: detection time = peer's Detect Mult x max(Required Min RX in effect, peer's Desired Min
  TX); its expiry in Init/Up takes the session Down (diag 1).

The shell (runtime.py) decodes datagrams (packet.decode), checks TTL 255 and finds the session;
it owns the clock: `now` is its monotonic time in seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .auth import AuthConfig, Authenticator
from .packet import BfdState, ControlPacket, Diag, encode_control

SLOW_TX_US = 1_000_000  # 6.8.3: Desired Min TX while the session is not Up
TIMER_NAMES = ("tx", "detect")


@dataclass(frozen=True, slots=True)
class Timers:
    """A session's configured timers (milliseconds, as in the config)."""

    min_tx_ms: int = 300  # bfd.DesiredMinTxInterval (config `min-tx`)
    min_rx_ms: int = 300  # bfd.RequiredMinRxInterval (config `min-rx`)
    multiplier: int = 3   # bfd.DetectMult (config `multiplier`)

    def __post_init__(self) -> None:
        for name, value, top in (("min-tx", self.min_tx_ms, 60000), ("min-rx", self.min_rx_ms, 60000),
                                 ("multiplier", self.multiplier, 255)):
            if not 1 <= value <= top:
                raise ValueError(f"BFD {name} {value} is outside 1-{top}")


# ---- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """A Control packet to send, encoded and signed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm timer `name` ("tx" | "detect") to fire `delay` seconds from now."""

    name: str
    delay: float


@dataclass(frozen=True, slots=True)
class StopTimer:
    name: str


@dataclass(frozen=True, slots=True)
class StateChange:
    old: BfdState
    new: BfdState
    diag: Diag
    reason: str  # in words, for the log


@dataclass(frozen=True, slots=True)
class Discarded:
    """A received packet dropped by a check that needs the session (the shell counts it)."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimersChanged:
    """The negotiated transmit interval or the detection time changed."""


Action = Transmit | SetTimer | StopTimer | StateChange | Discarded | TimersChanged


class BfdMachine:
    """One BFD session. Call start() to begin; feed receive() and timer_fired(); carry out the
    actions in order."""

    def __init__(self, *, local_discr: int, timers: Timers, auth: AuthConfig | None = None,
                 passive: bool = False, rng: random.Random | None = None) -> None:
        if not 0 < local_discr < 1 << 32:
            raise ValueError(f"BFD local discriminator {local_discr} is not a non-zero 32-bit number")
        self._rng = rng or random.Random()
        self._local_discr = local_discr
        self._timers = timers
        self._passive = passive
        self._auth = Authenticator(auth, self._rng) if auth is not None else None
        self._running = False
        self._state = BfdState.DOWN
        self._diag = Diag.NONE
        # The peer as last heard (RFC 5880 6.8.1's initial values).
        self._remote_state = BfdState.DOWN
        self._remote_diag = Diag.NONE
        self._remote_discr = 0
        self._remote_min_tx_us = 0
        self._remote_min_rx_us = 1
        self._remote_mult = 0
        self._remote_demand = False
        # What our packets say (adv) and what we go by (eff): they differ while a Poll Sequence
        # holds back a change (6.8.3).
        self._adv_tx_us = self._eff_tx_us = self._wanted_tx_us()
        self._adv_rx_us = self._eff_rx_us = timers.min_rx_ms * 1000
        self._polling = False
        self._pending: tuple[int, int] | None = None  # a change waiting for the current poll to end
        self._last_rx: float | None = None
        self._last_tx: float | None = None
        self._tx_armed = False
        self._detect_armed = False
        self._cache_key: tuple[int, ...] = ()
        self._cache = b""

    # ---- read-only view, for status -------------------------------------------------------------

    @property
    def state(self) -> BfdState:
        return self._state

    @property
    def remote_state(self) -> BfdState:
        return self._remote_state

    @property
    def local_diag(self) -> Diag:
        return self._diag

    @property
    def remote_diag(self) -> Diag:
        return self._remote_diag

    @property
    def local_discr(self) -> int:
        return self._local_discr

    @property
    def remote_discr(self) -> int:
        return self._remote_discr

    @property
    def timers(self) -> Timers:
        return self._timers

    @property
    def passive(self) -> bool:
        return self._passive

    @property
    def auth_kind(self) -> str | None:
        return self._auth.kind if self._auth is not None else None

    @property
    def tx_interval(self) -> float:
        """Seconds between our periodic packets before jitter (6.8.7)."""
        return max(self._eff_tx_us, self._remote_min_rx_us) / 1e6

    @property
    def detect_time(self) -> float:
        """Seconds without a valid packet after which the session goes Down (6.8.4); 0 before the
        peer was heard."""
        return self._remote_mult * max(self._eff_rx_us, self._remote_min_tx_us) / 1e6

    @property
    def remote_min_tx_us(self) -> int:
        return self._remote_min_tx_us

    @property
    def remote_min_rx_us(self) -> int:
        return self._remote_min_rx_us

    @property
    def remote_multiplier(self) -> int:
        return self._remote_mult

    @property
    def polling(self) -> bool:
        return self._polling

    @property
    def last_rx(self) -> float | None:
        return self._last_rx

    @property
    def advertised_min_tx_us(self) -> int:
        """Desired Min TX Interval in our packets (1 s while not Up; the new value during a poll)."""
        return self._adv_tx_us

    @property
    def advertised_min_rx_us(self) -> int:
        return self._adv_rx_us

    # ---- inputs -----------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """The session is enabled: Down, and periodic packets begin (unless passive)."""
        if self._running:
            return []
        self._running = True
        actions: list[Action] = []
        self._arm_tx(now, actions)
        return actions

    def stop(self) -> list[Action]:
        """The session is removed: no more timers. (runtime sends AdminDown first: admin_down().)"""
        self._running = False
        self._tx_armed = self._detect_armed = False
        return [StopTimer("tx"), StopTimer("detect")]

    def receive(self, pkt: ControlPacket, now: float) -> list[Action]:
        """A packet that passed packet.decode (and the shell's TTL check) for this session."""
        if not self._running:
            return []
        if pkt.your_discr and pkt.your_discr != self._local_discr:
            return [Discarded(f"Your Discriminator {pkt.your_discr} is not this session's "
                              f"({self._local_discr})")]
        if self._auth is None:
            if pkt.auth_present:
                kind = pkt.auth.auth_type.kind if pkt.auth is not None else "?"
                return [Discarded(f"packet authenticated ({kind}) but this session has no authentication")]
        else:
            reason = self._auth.verify(pkt, now)
            if reason is not None:
                return [Discarded(f"authentication failed: {reason}")]
        before = (self.tx_interval, self.detect_time)
        actions: list[Action] = []
        self._remote_discr = pkt.my_discr
        self._remote_state = pkt.state
        self._remote_diag = pkt.diag
        self._remote_demand = pkt.demand
        self._remote_min_rx_us = pkt.required_min_rx_us
        self._remote_min_tx_us = pkt.desired_min_tx_us
        self._remote_mult = pkt.detect_mult
        if pkt.final and self._polling:
            self._end_poll()
        if self._state is BfdState.ADMIN_DOWN:
            # 6.8.6: discarded (not a fault: nothing to count); the peer's values are kept.
            self._settle(now, before, actions)
            return actions
        self._state_table(pkt, actions)
        if pkt.poll:
            # 6.8.6: a Final at once, whatever the state and the transmit schedule.
            actions.append(Transmit(self._encode(final=True)))
        self._last_rx = now
        self._settle(now, before, actions, rearm_detect=False)
        self._detect_armed = True
        actions.append(SetTimer("detect", self.detect_time))
        return actions

    def timer_fired(self, name: str, now: float) -> list[Action]:
        if name not in TIMER_NAMES:
            raise ValueError(f"unknown BFD timer {name!r} (expected one of {', '.join(TIMER_NAMES)})")
        actions: list[Action] = []
        if not self._running:
            return actions
        if name == "tx":
            self._tx_armed = False
            if self._may_transmit():
                actions.append(Transmit(self._encode()))
                self._last_tx = now
                self._tx_armed = True
                actions.append(SetTimer("tx", self._jittered()))
            return actions
        if not self._detect_armed:
            return actions
        self._detect_armed = False
        before = (self.tx_interval, self.detect_time)
        if self._state in (BfdState.INIT, BfdState.UP):
            self._set_state(BfdState.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED,
                            f"control detection time expired: no valid packet for "
                            f"{round(before[1] * 1000)} ms", actions)
            # A peer that lost its session starts a new one with a new random sequence number;
            # 6.8.1 would keep the old one for 2 x the detection time (6 s while Down at 1 s x 3),
            # dropping the new session's packets and holding BGP down that long. BIRD forgets it at
            # this point too: a replay needs a packet signed within the window anyway.
            if self._auth is not None:
                self._auth.reset_sequence()
        # 6.8.1: bfd.RemoteDiscr goes back to 0 when a detection time passes without a packet.
        self._remote_discr = 0
        self._remote_state = BfdState.DOWN
        self._remote_demand = False
        self._settle(now, before, actions)
        return actions

    def set_timers(self, timers: Timers, now: float) -> list[Action]:
        """New configured timers (a reload): a Poll Sequence when Init/Up, never a session drop."""
        before = (self.tx_interval, self.detect_time)
        self._timers = timers
        actions: list[Action] = []
        self._settle(now, before, actions)
        return actions

    def set_auth(self, auth: AuthConfig | None) -> None:
        """New authentication (a reload). A peer still on the old key drops our packets (and we
        its) until it has the new one too: RFC 5880 has no key rollover."""
        if auth != (self._auth.config if self._auth is not None else None):
            self._auth = Authenticator(auth, self._rng) if auth is not None else None

    def admin_down(self, now: float) -> list[Action]:
        """AdminDown (diag 7): we say so at once and keep saying it; received packets are ignored."""
        if self._state is BfdState.ADMIN_DOWN:
            return []
        before = (self.tx_interval, self.detect_time)
        actions: list[Action] = []
        self._set_state(BfdState.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, "administratively down", actions)
        if self._detect_armed:
            self._detect_armed = False
            actions.append(StopTimer("detect"))
        if self._may_transmit():
            # Outside the schedule, so that a stopping agent tells the peer before it goes.
            actions.append(Transmit(self._encode()))
            self._last_tx = now
        self._settle(now, before, actions)
        return actions

    def admin_up(self, now: float) -> list[Action]:
        """Back from AdminDown to Down (then the handshake as usual)."""
        if self._state is not BfdState.ADMIN_DOWN:
            return []
        before = (self.tx_interval, self.detect_time)
        actions: list[Action] = []
        self._set_state(BfdState.DOWN, Diag.NONE, "administratively enabled", actions)
        self._settle(now, before, actions)
        return actions

    # ---- the rules ----------------------------------------------------------------------------------

    def _state_table(self, pkt: ControlPacket, actions: list[Action]) -> None:
        state, remote = self._state, pkt.state
        if remote is BfdState.ADMIN_DOWN:
            if state is not BfdState.DOWN:
                self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN,
                                "neighbor signaled session down: it is administratively down", actions)
        elif state is BfdState.DOWN:
            if remote is BfdState.DOWN:
                self._set_state(BfdState.INIT, self._diag, "neighbor is Down: handshake begun", actions)
            elif remote is BfdState.INIT:
                self._set_state(BfdState.UP, Diag.NONE, "neighbor is Init: handshake complete", actions)
        elif state is BfdState.INIT:
            if remote in (BfdState.INIT, BfdState.UP):
                self._set_state(BfdState.UP, Diag.NONE, f"neighbor is {remote}: handshake complete", actions)
        elif remote is BfdState.DOWN:  # we are Up
            self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN,
                            f"neighbor signaled session down ({pkt.diag.describe()})", actions)

    def _set_state(self, new: BfdState, diag: Diag, reason: str, actions: list[Action]) -> None:
        old = self._state
        self._state, self._diag = new, diag
        if new in (BfdState.DOWN, BfdState.ADMIN_DOWN):
            # Nobody left to answer a poll: what it carried applies now (the next one will tell).
            self._polling, self._pending = False, None
            self._eff_tx_us, self._eff_rx_us = self._adv_tx_us, self._adv_rx_us
        actions.append(StateChange(old, new, diag, reason))

    def _wanted_tx_us(self) -> int:
        tx = self._timers.min_tx_ms * 1000
        return tx if self._state is BfdState.UP else max(tx, SLOW_TX_US)

    def _apply_wanted(self) -> None:
        """Bring the advertised timers to what the config and the state want (6.8.3)."""
        wanted = (self._wanted_tx_us(), self._timers.min_rx_ms * 1000)
        if self._polling:
            # One change per Poll Sequence: a Final must answer the values it polled for.
            self._pending = wanted if wanted != (self._adv_tx_us, self._adv_rx_us) else None
            return
        if wanted != (self._adv_tx_us, self._adv_rx_us):
            self._begin_change(*wanted)

    def _begin_change(self, tx_us: int, rx_us: int) -> None:
        self._adv_tx_us, self._adv_rx_us = tx_us, rx_us
        if self._state is BfdState.UP:
            # A faster TX and a longer detection are safe at once; the others wait for the Final.
            self._eff_tx_us = min(self._eff_tx_us, tx_us)
            self._eff_rx_us = max(self._eff_rx_us, rx_us)
        else:
            self._eff_tx_us, self._eff_rx_us = tx_us, rx_us
        # Someone to tell (6.8.3: a change MUST start a Poll Sequence); P rides on periodic packets.
        self._polling = self._state in (BfdState.INIT, BfdState.UP)

    def _end_poll(self) -> None:
        self._polling = False
        self._eff_tx_us, self._eff_rx_us = self._adv_tx_us, self._adv_rx_us
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if pending != (self._adv_tx_us, self._adv_rx_us):
                self._begin_change(*pending)

    def _settle(self, now: float, before: tuple[float, float], actions: list[Action],
                rearm_detect: bool = True) -> None:
        """After any input: timers as the state wants them, TimersChanged and the timers re-armed
        when the negotiated values moved."""
        self._apply_wanted()
        tx_interval, detect_time = self.tx_interval, self.detect_time
        if (tx_interval, detect_time) != before:
            actions.append(TimersChanged())
            if self._auth is not None and detect_time > 0:
                self._auth.forget_after = 2 * detect_time
        if tx_interval != before[0] or self._tx_armed != self._may_transmit():
            self._arm_tx(now, actions)
        if rearm_detect and detect_time != before[1] and self._detect_armed and self._last_rx is not None:
            actions.append(SetTimer("detect", max(0.0, self._last_rx + detect_time - now)))

    def _may_transmit(self) -> bool:
        return (self._running and self._remote_min_rx_us != 0
                and not (self._passive and self._remote_discr == 0)
                and not (self._remote_demand and self._state is BfdState.UP
                         and self._remote_state is BfdState.UP))

    def _arm_tx(self, now: float, actions: list[Action]) -> None:
        if not self._may_transmit():
            if self._tx_armed:
                self._tx_armed = False
                actions.append(StopTimer("tx"))
            return
        self._tx_armed = True
        if self._last_tx is None:  # the first packet: nothing to keep an interval from
            actions.append(Transmit(self._encode()))
            self._last_tx = now
            actions.append(SetTimer("tx", self._jittered()))
        else:  # a new interval counts from the last packet sent
            actions.append(SetTimer("tx", max(0.0, self._last_tx + self._jittered() - now)))

    def _jittered(self) -> float:
        # 6.8.7: 75-100 % of the interval; with Detect Mult 1, 75-90 %.
        top = 0.9 if self._timers.multiplier == 1 else 1.0
        return self.tx_interval * self._rng.uniform(0.75, top)

    def _encode(self, final: bool = False) -> bytes:
        poll = self._polling and not final
        key: tuple[int, ...] = ()
        if self._auth is None:  # unsigned packets repeat: encode once per change
            key = (self._state, self._diag, self._remote_discr, self._adv_tx_us, self._adv_rx_us,
                   self._timers.multiplier, poll, final)
            if key == self._cache_key:
                return self._cache
        data = encode_control(state=self._state, diag=self._diag, poll=poll, final=final,
                              detect_mult=self._timers.multiplier, my_discr=self._local_discr,
                              your_discr=self._remote_discr, desired_min_tx_us=self._adv_tx_us,
                              required_min_rx_us=self._adv_rx_us, auth=self._auth)
        if self._auth is None:
            self._cache_key, self._cache = key, data
        return data
