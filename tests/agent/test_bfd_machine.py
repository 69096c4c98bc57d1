"""The BFD session state machine (fleetbgp.bfd.machine) against RFC 5880 6.8: the state table of
6.8.6 row by row, timer negotiation (6.8.2-6.8.4), the slow 1 s rate while not Up, jitter (6.8.7),
the Poll Sequence (6.5, 6.8.3), AdminDown, and what is discarded. Time is whatever the test says."""

from __future__ import annotations

import random

import pytest

from fleetbgp.bfd.auth import AuthConfig, Authenticator
from fleetbgp.bfd.machine import (
    Action,
    BfdMachine,
    Discarded,
    SetTimer,
    StateChange,
    StopTimer,
    Timers,
    TimersChanged,
    Transmit,
)
from fleetbgp.bfd.packet import BfdState, ControlPacket, Diag, decode

AD, DOWN, INIT, UP = BfdState.ADMIN_DOWN, BfdState.DOWN, BfdState.INIT, BfdState.UP
LOCAL, REMOTE = 0x1000, 0x2000


def machine(timers: Timers | None = None, auth: AuthConfig | None = None, passive: bool = False) -> BfdMachine:
    return BfdMachine(local_discr=LOCAL, timers=timers or Timers(), auth=auth, passive=passive,
                      rng=random.Random(7))


def peer(state: BfdState, *, your: int | None = None, tx: int = 300_000, rx: int = 300_000, mult: int = 3,
         poll: bool = False, final: bool = False, diag: Diag = Diag.NONE, demand: bool = False) -> ControlPacket:
    """A packet from the peer, through the codec as the shell hands it over."""
    if your is None:
        your = 0 if state <= DOWN else LOCAL
    return decode(ControlPacket(state=state, diag=diag, poll=poll, final=final, demand=demand, detect_mult=mult,
                                my_discr=REMOTE, your_discr=your, desired_min_tx_us=tx,
                                required_min_rx_us=rx).encode())


def sent(actions: list[Action]) -> list[ControlPacket]:
    return [decode(a.data) for a in actions if isinstance(a, Transmit)]


def timers(actions: list[Action]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for a in actions:
        if isinstance(a, SetTimer):
            out[a.name] = a.delay
        elif isinstance(a, StopTimer):
            out[a.name] = None
    return out


def changes(actions: list[Action]) -> list[tuple[BfdState, BfdState, Diag]]:
    return [(a.old, a.new, a.diag) for a in actions if isinstance(a, StateChange)]


def in_state(state: BfdState, m: BfdMachine | None = None) -> BfdMachine:
    m = m or machine()
    m.start(0.0)
    if state is AD:
        m.admin_down(0.0)
    if state in (INIT, UP):
        m.receive(peer(DOWN), 0.1)
    if state is UP:
        m.receive(peer(UP), 0.2)
    assert m.state is state
    return m


# ---- 6.8.6: the state table, every row ----------------------------------------------------------

TABLE = [
    # local, received, new state (None: unchanged), diag of the change
    (DOWN, AD, None, None),
    (DOWN, DOWN, INIT, Diag.NONE),
    (DOWN, INIT, UP, Diag.NONE),
    (DOWN, UP, None, None),
    (INIT, AD, DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (INIT, DOWN, None, None),
    (INIT, INIT, UP, Diag.NONE),
    (INIT, UP, UP, Diag.NONE),
    (UP, AD, DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (UP, DOWN, DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN),
    (UP, INIT, None, None),
    (UP, UP, None, None),
    (AD, AD, None, None),
    (AD, DOWN, None, None),
    (AD, INIT, None, None),
    (AD, UP, None, None),
]


@pytest.mark.parametrize(("local", "received", "new", "diag"), TABLE,
                         ids=[f"{a}+{b}" for a, b, _, _ in TABLE])
def test_state_table(local: BfdState, received: BfdState, new: BfdState | None, diag: Diag | None) -> None:
    m = in_state(local)
    actions = m.receive(peer(received), 1.0)
    if new is None:
        assert changes(actions) == [] and m.state is local
    else:
        assert changes(actions) == [(local, new, diag)]
        assert m.state is new and m.local_diag is diag
    assert m.remote_state is received and m.remote_discr == REMOTE
    assert not any(isinstance(a, Discarded) for a in actions)
    # 6.8.6: in AdminDown the packet is discarded: no detection timer; otherwise it is re-armed.
    assert ("detect" in timers(actions)) == (local is not AD)


def test_state_change_reasons_for_the_log() -> None:
    m = in_state(UP)
    [change] = [a for a in m.receive(peer(DOWN, diag=Diag.CONTROL_DETECTION_TIME_EXPIRED), 1.0)
                if isinstance(a, StateChange)]
    assert change.reason == "neighbor signaled session down (control detection time expired)"
    m = in_state(UP)
    [change] = [a for a in m.receive(peer(AD, diag=Diag.ADMINISTRATIVELY_DOWN), 1.0)
                if isinstance(a, StateChange)]
    assert change.reason == "neighbor signaled session down: it is administratively down"
    # What the runtime needs to tell a peer's AdminDown (BGP stays up, RFC 5882 3.2) from a failure:
    assert m.remote_state is AD and m.remote_diag is Diag.ADMINISTRATIVELY_DOWN


def test_three_way_handshake_between_two_machines() -> None:
    a = BfdMachine(local_discr=1, timers=Timers(), rng=random.Random(1))
    b = BfdMachine(local_discr=2, timers=Timers(), rng=random.Random(2))
    now = 0.0
    wire_ab, wire_ba = sent(a.start(now)), sent(b.start(now))
    for _ in range(6):  # each side's periodic packets, alternately
        now += 1.0
        for pkt in wire_ab:
            wire_ba += sent(b.receive(pkt, now))
        wire_ab = []
        for pkt in wire_ba:
            wire_ab += sent(a.receive(pkt, now))
        wire_ba = []
        wire_ab += sent(a.timer_fired("tx", now))
        wire_ba += sent(b.timer_fired("tx", now))
    assert (a.state, b.state) == (UP, UP)
    assert (a.remote_discr, b.remote_discr) == (2, 1)
    assert not a.polling and not b.polling  # each one's going-Up poll answered
    assert (a.tx_interval, b.tx_interval, a.detect_time) == (0.3, 0.3, 0.9)


# ---- packets and the transmit schedule ----------------------------------------------------------


def test_start_sends_down_at_the_slow_rate() -> None:
    m = machine()
    actions = m.start(0.0)
    [pkt] = sent(actions)
    assert (pkt.state, pkt.diag, pkt.my_discr, pkt.your_discr, pkt.detect_mult) == (DOWN, Diag.NONE, LOCAL, 0, 3)
    # 6.8.3: Desired Min TX at least 1 s while not Up, whatever the config says; Required Min RX as configured.
    assert (pkt.desired_min_tx_us, pkt.required_min_rx_us, pkt.poll, pkt.final) == (1_000_000, 300_000, False, False)
    assert 0.75 <= timers(actions)["tx"] <= 1.0
    assert m.tx_interval == 1.0 and m.detect_time == 0.0


def test_periodic_packets_on_the_tx_timer() -> None:
    m = machine()
    m.start(0.0)
    actions = m.timer_fired("tx", 0.9)
    assert [p.state for p in sent(actions)] == [DOWN] and "tx" in timers(actions)


def test_slow_rate_kept_above_one_second_when_configured_slower() -> None:
    m = machine(Timers(min_tx_ms=2500))
    [pkt] = sent(m.start(0.0))
    assert pkt.desired_min_tx_us == 2_500_000 and m.tx_interval == 2.5


def test_init_still_slow_up_at_the_configured_rate() -> None:
    m = in_state(INIT)
    assert m.tx_interval == 1.0 and sent(m.timer_fired("tx", 1.0))[0].desired_min_tx_us == 1_000_000
    actions = m.receive(peer(UP), 1.1)
    # A decrease of Desired Min TX applies at once; the change goes out with P (6.8.3).
    assert m.tx_interval == 0.3 and TimersChanged() in actions
    [pkt] = sent(m.timer_fired("tx", 1.4))
    assert (pkt.state, pkt.desired_min_tx_us, pkt.poll) == (UP, 300_000, True)


def test_back_to_slow_when_down() -> None:
    m = in_state(UP)
    m.receive(peer(UP, final=True), 0.3)
    assert m.tx_interval == 0.3
    actions = m.receive(peer(DOWN), 0.5)
    assert m.state is DOWN and m.tx_interval == 1.0 and not m.polling
    assert TimersChanged() in actions
    [pkt] = sent(m.timer_fired("tx", 1.5))
    assert (pkt.desired_min_tx_us, pkt.poll, pkt.diag) == (1_000_000, False, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)


def test_negotiated_tx_interval_is_the_larger_of_ours_and_the_peers_min_rx() -> None:
    m = in_state(UP, machine(Timers(min_tx_ms=100)))
    m.receive(peer(UP, rx=250_000, final=True), 1.0)
    assert m.tx_interval == 0.25
    m.receive(peer(UP, rx=50_000), 1.1)
    assert m.tx_interval == 0.1


def test_a_changed_interval_counts_from_the_last_packet_sent() -> None:
    m = in_state(UP, machine(Timers(min_tx_ms=100)))
    m.receive(peer(UP, rx=100_000, final=True), 1.0)
    m.timer_fired("tx", 1.0)
    actions = m.receive(peer(UP, rx=500_000), 1.05)  # the peer wants fewer packets: slow down now
    delay = timers(actions)["tx"]
    assert delay is not None and 1.0 + 0.75 * 0.5 <= 1.05 + delay <= 1.0 + 0.5


def test_detection_time_from_the_peers_multiplier_and_the_larger_interval() -> None:
    m = in_state(INIT, machine(Timers(min_rx_ms=600)))
    actions = m.receive(peer(UP, mult=5, tx=400_000), 1.0)
    assert m.detect_time == 5 * 0.6 and timers(actions)["detect"] == 3.0
    actions = m.receive(peer(UP, mult=2, tx=900_000), 1.5)
    assert m.detect_time == 1.8 and timers(actions)["detect"] == 1.8 and TimersChanged() in actions
    assert (m.remote_multiplier, m.remote_min_tx_us, m.remote_min_rx_us) == (2, 900_000, 300_000)


def test_every_valid_packet_rearms_detection() -> None:
    m = in_state(UP)
    for now in (1.0, 1.3, 1.6):
        actions = m.receive(peer(UP), now)
        assert timers(actions) == {"detect": 0.9} and m.last_rx == now


@pytest.mark.parametrize("local", [INIT, UP])
def test_detection_time_expiry_takes_the_session_down(local: BfdState) -> None:
    m = in_state(local)
    actions = m.timer_fired("detect", 5.0)
    assert changes(actions) == [(local, DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)]
    [change] = [a for a in actions if isinstance(a, StateChange)]
    assert change.reason == "control detection time expired: no valid packet for 900 ms"
    assert m.remote_discr == 0 and m.remote_state is DOWN  # 6.8.1: forgotten
    [pkt] = sent(m.timer_fired("tx", 6.0))
    assert (pkt.state, pkt.diag, pkt.your_discr) == (DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED, 0)


def test_detection_time_expiry_while_down_only_forgets_the_peer() -> None:
    m = machine()
    m.start(0.0)
    m.receive(peer(UP), 0.5)  # Down + Up: stays Down
    assert m.state is DOWN and m.remote_discr == REMOTE
    assert changes(m.timer_fired("detect", 2.0)) == [] and m.remote_discr == 0


def test_jitter_is_75_to_100_percent() -> None:
    m = in_state(UP)
    m.receive(peer(UP, final=True), 0.3)
    delays = [timers(m.timer_fired("tx", 1.0 + i))["tx"] for i in range(2000)]
    assert all(0.75 * 0.3 <= d < 0.3 for d in delays)
    assert min(delays) < 0.76 * 0.3 and max(delays) > 0.99 * 0.3


def test_jitter_with_multiplier_one_is_75_to_90_percent() -> None:
    m = in_state(UP, machine(Timers(multiplier=1)))
    m.receive(peer(UP, final=True), 0.3)
    delays = [timers(m.timer_fired("tx", 1.0 + i))["tx"] for i in range(2000)]
    assert all(0.75 * 0.3 <= d <= 0.9 * 0.3 for d in delays)
    assert max(delays) > 0.89 * 0.3


def test_same_seed_same_schedule() -> None:
    def schedule() -> list[float | None]:
        m = machine()
        m.start(0.0)
        return [timers(m.timer_fired("tx", float(i)))["tx"] for i in range(5)]
    assert schedule() == schedule()


def test_no_periodic_packets_while_the_peer_wants_none() -> None:
    m = in_state(UP)
    actions = m.receive(peer(UP, rx=0), 1.0)
    assert timers(actions)["tx"] is None
    assert m.timer_fired("tx", 1.3) == []
    # ... but a Poll is still answered (6.8.6: without respect to transmission limitations).
    assert [p.final for p in sent(m.receive(peer(UP, rx=0, poll=True), 1.4))] == [True]
    actions = m.receive(peer(UP, rx=300_000), 1.5)
    assert "tx" in timers(actions)


def test_no_periodic_packets_while_the_peer_is_in_demand_mode_and_both_up() -> None:
    m = in_state(UP)
    assert timers(m.receive(peer(UP, demand=True), 1.0))["tx"] is None
    assert m.timer_fired("tx", 1.3) == []
    assert "tx" in timers(m.receive(peer(UP), 1.5))


def test_passive_waits_for_the_peer() -> None:
    m = machine(passive=True)
    assert m.start(0.0) == [] and m.timer_fired("tx", 1.0) == []
    actions = m.receive(peer(DOWN), 2.0)
    [pkt] = sent(actions)  # the first packet at once, then periodic
    assert (pkt.state, pkt.your_discr) == (INIT, REMOTE) and "tx" in timers(actions)
    m.timer_fired("detect", 9.0)  # the peer went away: 6.8.7, passive and no peer: silent again
    assert m.remote_discr == 0 and m.timer_fired("tx", 9.5) == []


# ---- 6.5, 6.8.3: Poll Sequence ------------------------------------------------------------------


@pytest.mark.parametrize("local", [DOWN, INIT, UP, AD])
def test_a_poll_is_answered_at_once_with_final(local: BfdState) -> None:
    m = in_state(local)
    packets = sent(m.receive(peer(DOWN if local is not UP else UP, poll=True), 1.0))
    if local is AD:
        assert packets == []  # 6.8.6: in AdminDown the packet is discarded before the P rule
        return
    [pkt] = packets
    assert pkt.final and not pkt.poll and pkt.state is m.state


def test_final_answer_never_carries_poll() -> None:
    m = in_state(UP)
    assert m.polling  # going Up changed Desired Min TX
    [pkt] = sent(m.receive(peer(UP, poll=True), 1.0))
    assert (pkt.final, pkt.poll) == (True, False)
    assert sent(m.timer_fired("tx", 1.2))[0].poll  # our own poll goes on


def test_poll_bit_until_final() -> None:
    m = in_state(UP)
    assert [sent(m.timer_fired("tx", t))[0].poll for t in (1.0, 1.3)] == [True, True]
    m.receive(peer(UP, final=True), 1.4)
    assert not m.polling and not sent(m.timer_fired("tx", 1.6))[0].poll


def test_final_without_a_poll_changes_nothing() -> None:
    m = in_state(UP)
    m.receive(peer(UP, final=True), 1.0)
    actions = m.receive(peer(UP, final=True), 1.1)
    assert not m.polling and TimersChanged() not in actions


def up_and_settled(timers_: Timers | None = None) -> BfdMachine:
    m = in_state(UP, machine(timers_))
    m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 0.3)
    assert not m.polling
    return m


def test_slower_tx_waits_for_the_final() -> None:
    m = up_and_settled()
    actions = m.set_timers(Timers(min_tx_ms=1000), 1.0)
    assert m.polling and m.tx_interval == 0.3 and TimersChanged() not in actions
    [pkt] = sent(m.timer_fired("tx", 1.2))
    assert (pkt.poll, pkt.desired_min_tx_us) == (True, 1_000_000)  # the new value goes out with P
    actions = m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 1.3)
    assert m.tx_interval == 1.0 and not m.polling and TimersChanged() in actions


def test_faster_tx_at_once() -> None:
    m = up_and_settled()
    actions = m.set_timers(Timers(min_tx_ms=100), 1.0)
    assert m.polling and m.tx_interval == 0.1 and TimersChanged() in actions and "tx" in timers(actions)


def test_smaller_min_rx_waits_for_the_final() -> None:
    m = up_and_settled()
    m.set_timers(Timers(min_rx_ms=100), 1.0)
    assert m.detect_time == 0.9  # 3 x 300 ms: the peer may still send at the old rate
    [pkt] = sent(m.timer_fired("tx", 1.1))
    assert (pkt.poll, pkt.required_min_rx_us) == (True, 100_000)
    actions = m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 1.2)
    assert m.detect_time == pytest.approx(0.3) and timers(actions)["detect"] == pytest.approx(0.3)


def test_larger_min_rx_at_once() -> None:
    m = up_and_settled()
    m.receive(peer(UP, tx=50_000, rx=50_000), 1.0)
    actions = m.set_timers(Timers(min_rx_ms=1000), 1.2)
    assert m.detect_time == 3.0 and TimersChanged() in actions
    assert timers(actions)["detect"] == pytest.approx(1.0 + 3.0 - 1.2)  # from the last packet received


def test_a_change_during_a_poll_waits_for_the_next_poll() -> None:
    m = up_and_settled()
    m.set_timers(Timers(min_tx_ms=1000), 1.0)
    m.set_timers(Timers(min_tx_ms=2000), 1.1)
    # The packets keep asking for what the first poll asked: its Final must answer those values.
    assert sent(m.timer_fired("tx", 1.2))[0].desired_min_tx_us == 1_000_000
    m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 1.3)
    assert m.polling and m.tx_interval == 1.0
    assert sent(m.timer_fired("tx", 2.3))[0].desired_min_tx_us == 2_000_000
    m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 2.4)
    assert not m.polling and m.tx_interval == 2.0


def test_timers_changed_back_during_a_poll_need_no_second_poll() -> None:
    m = up_and_settled()
    m.set_timers(Timers(min_tx_ms=1000), 1.0)
    m.set_timers(Timers(min_tx_ms=1000), 1.1)
    m.receive(peer(UP, tx=50_000, rx=50_000, final=True), 1.3)
    assert not m.polling


def test_timer_change_while_down_needs_no_poll() -> None:
    m = machine()
    m.start(0.0)
    actions = m.set_timers(Timers(min_tx_ms=1500, min_rx_ms=500), 0.5)
    assert not m.polling and m.tx_interval == 1.5 and TimersChanged() in actions
    [pkt] = sent(m.timer_fired("tx", 2.0))
    assert (pkt.desired_min_tx_us, pkt.required_min_rx_us, pkt.poll) == (1_500_000, 500_000, False)


def test_multiplier_change_goes_out_at_once() -> None:
    m = up_and_settled()
    m.set_timers(Timers(multiplier=5), 1.0)
    assert sent(m.timer_fired("tx", 1.2))[0].detect_mult == 5 and not m.polling


# ---- AdminDown ---------------------------------------------------------------------------------


def test_admin_down_says_so_at_once_and_keeps_saying_it() -> None:
    m = up_and_settled()
    actions = m.admin_down(1.0)
    assert changes(actions) == [(UP, AD, Diag.ADMINISTRATIVELY_DOWN)]
    [pkt] = sent(actions)
    assert (pkt.state, pkt.diag) == (AD, Diag.ADMINISTRATIVELY_DOWN)
    assert timers(actions)["detect"] is None
    assert m.tx_interval == 1.0
    assert [p.state for p in sent(m.timer_fired("tx", 2.0))] == [AD]
    assert m.receive(peer(DOWN), 2.1) == [] and m.state is AD
    assert m.admin_down(2.2) == []


def test_admin_up_goes_to_down_then_the_handshake() -> None:
    m = in_state(AD)
    actions = m.admin_up(1.0)
    assert changes(actions) == [(AD, DOWN, Diag.NONE)]
    assert m.admin_up(1.1) == []
    m.receive(peer(DOWN), 1.2)
    m.receive(peer(UP), 1.3)
    assert m.state is UP


# ---- what is discarded -------------------------------------------------------------------------


def test_your_discriminator_of_another_session() -> None:
    m = in_state(UP)
    actions = m.receive(peer(UP, your=0x9999), 1.0)
    assert actions == [Discarded(f"Your Discriminator {0x9999} is not this session's ({LOCAL})")]
    assert m.last_rx == 0.2  # not heard for the detection time


def test_authenticated_packet_without_authentication_configured() -> None:
    signer = Authenticator(AuthConfig("keyed-sha1", 1, b"k"))
    m = in_state(DOWN)
    pkt = decode(ControlPacket(state=DOWN, my_discr=REMOTE).encode(signer))
    assert m.receive(pkt, 1.0) == [Discarded("packet authenticated (keyed-sha1) but this session has no "
                                             "authentication")]


def test_unauthenticated_packet_with_authentication_configured() -> None:
    m = machine(auth=AuthConfig("keyed-md5", 1, b"k"))
    m.start(0.0)
    assert m.receive(peer(DOWN), 1.0) == [Discarded(
        "authentication failed: packet not authenticated (A bit clear) but keyed-md5 is configured")]
    assert m.state is DOWN and m.remote_discr == 0


def pair(auth_a: AuthConfig, auth_b: AuthConfig) -> tuple[BfdMachine, BfdMachine, list[Action]]:
    """Run a handshake between two machines; return them and b's actions on a's last packets."""
    a = BfdMachine(local_discr=1, timers=Timers(), auth=auth_a, rng=random.Random(1))
    b = BfdMachine(local_discr=2, timers=Timers(), auth=auth_b, rng=random.Random(2))
    to_b, to_a = sent(a.start(0.0)), sent(b.start(0.0))
    seen: list[Action] = []
    for step in range(1, 6):
        for pkt in to_b:
            seen = b.receive(pkt, float(step))
            to_a += sent(seen)
        to_b = []
        for pkt in to_a:
            to_b += sent(a.receive(pkt, float(step)))
        to_a = []
        to_b += sent(a.timer_fired("tx", float(step)))
        to_a += sent(b.timer_fired("tx", float(step)))
    return a, b, seen


@pytest.mark.parametrize("kind", ["simple", "keyed-md5", "meticulous-keyed-md5", "keyed-sha1",
                                  "meticulous-keyed-sha1"])
def test_authenticated_session_comes_up(kind: str) -> None:
    config = AuthConfig(kind, 3, b"same-key")
    a, b, _ = pair(config, config)
    assert (a.state, b.state) == (UP, UP) and a.auth_kind == kind


def test_wrong_key_keeps_the_session_down() -> None:
    a, b, seen = pair(AuthConfig("keyed-sha1", 3, b"one"), AuthConfig("keyed-sha1", 3, b"two"))
    assert (a.state, b.state) == (DOWN, DOWN)
    assert seen == [Discarded("authentication failed: wrong keyed-sha1 digest (a different key?)")]


def test_meticulous_sequence_numbers_go_up_by_one() -> None:
    m = machine(auth=AuthConfig("meticulous-keyed-sha1", 1, b"k"))
    seqs = [p.auth.sequence for p in sent(m.start(0.0))]
    seqs += [p.auth.sequence for t in (1.0, 2.0, 3.0) for p in sent(m.timer_fired("tx", t))]
    assert [(s - seqs[0]) % 2**32 for s in seqs] == [0, 1, 2, 3]


def test_replayed_packet_is_discarded() -> None:
    config = AuthConfig("meticulous-keyed-md5", 1, b"k")
    signer = Authenticator(config)
    m = machine(auth=config)
    m.start(0.0)
    pkt = decode(ControlPacket(state=DOWN, my_discr=REMOTE).encode(signer))
    assert changes(m.receive(pkt, 1.0)) == [(DOWN, INIT, Diag.NONE)]
    [discarded] = m.receive(pkt, 1.1)
    assert isinstance(discarded, Discarded) and "replayed" in discarded.reason


def test_sequence_forgotten_after_twice_the_detection_time() -> None:
    config = AuthConfig("meticulous-keyed-sha1", 1, b"k")
    m = machine(auth=config)
    m.start(0.0)
    signer = Authenticator(config)
    m.receive(decode(ControlPacket(state=DOWN, my_discr=REMOTE).encode(signer)), 1.0)
    assert m.detect_time == 3.0
    signer.xmit_seq -= 100  # the peer restarted: its numbers start elsewhere
    restarted = decode(ControlPacket(state=DOWN, my_discr=REMOTE).encode(signer))
    assert isinstance(m.receive(restarted, 6.9)[0], Discarded)
    assert changes(m.receive(restarted, 7.0)) == []  # taken: 2 x 3 s without a valid packet
    assert m.last_rx == 7.0


def test_sequence_forgotten_when_the_session_times_out() -> None:
    # The peer restarts its BFD session (a new discriminator, a new random sequence number): the
    # session must not wait 2 x the detection time before it takes the new packets.
    config = AuthConfig("meticulous-keyed-sha1", 1, b"k")
    a, _, _ = pair(config, config)
    assert a.state is UP
    assert a.last_rx == 5.0 and a.detect_time == 0.9
    assert changes(a.timer_fired("detect", 5.9)) == [(UP, DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)]
    signer = Authenticator(config)
    signer.xmit_seq = (signer.xmit_seq + 2**31) % 2**32
    restarted = decode(ControlPacket(state=DOWN, my_discr=REMOTE).encode(signer))
    assert changes(a.receive(restarted, 6.0)) == [(DOWN, INIT, Diag.CONTROL_DETECTION_TIME_EXPIRED)]


# ---- the machine's own contract -----------------------------------------------------------------


def test_stop_stops_both_timers_and_all_output() -> None:
    m = in_state(UP)
    assert m.stop() == [StopTimer("tx"), StopTimer("detect")]
    assert m.timer_fired("tx", 1.0) == [] and m.timer_fired("detect", 1.0) == []
    assert m.receive(peer(UP), 1.0) == []


def test_unknown_timer() -> None:
    with pytest.raises(ValueError, match="unknown BFD timer 'hold'"):
        machine().timer_fired("hold", 0.0)


@pytest.mark.parametrize(("kw", "message"), [
    ({"min_tx_ms": 0}, "BFD min-tx 0 is outside 1-60000"),
    ({"min_rx_ms": 60001}, "BFD min-rx 60001 is outside 1-60000"),
    ({"multiplier": 256}, "BFD multiplier 256 is outside 1-255"),
])
def test_timer_limits(kw: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timers(**kw)


def test_local_discriminator_must_be_non_zero_32_bit() -> None:
    for bad in (0, 1 << 32):
        with pytest.raises(ValueError, match="not a non-zero 32-bit number"):
            BfdMachine(local_discr=bad, timers=Timers())


def test_status_view() -> None:
    m = in_state(UP)
    m.receive(peer(UP, tx=200_000, rx=100_000, mult=4, final=True), 1.0)
    assert (m.state, m.remote_state, m.local_diag, m.remote_diag) == (UP, UP, Diag.NONE, Diag.NONE)
    assert (m.local_discr, m.remote_discr, m.timers) == (LOCAL, REMOTE, Timers())
    assert (m.tx_interval, m.detect_time) == (0.3, 1.2)
    assert (m.remote_min_tx_us, m.remote_min_rx_us, m.remote_multiplier) == (200_000, 100_000, 4)
    assert (m.polling, m.last_rx, m.passive, m.auth_kind) == (False, 1.0, False, None)
