"""The RFC 4271 8 state machine of one connection (fsm.Connection), connect-retry Backoff and
collision resolution (RFC 4271 6.8, RFC 6286 2.3). Bytes and timer events in, actions out."""

from __future__ import annotations

import random

import pytest

from fleetbgp.fsm import (
    OPEN_HOLD_TIME,
    Action,
    Backoff,
    Close,
    Connection,
    Expectations,
    KeepaliveReceived,
    OpenReceived,
    RefreshRequested,
    Send,
    SessionUp,
    SetTimer,
    State,
    StateChange,
    StopTimer,
    UpdateReceived,
    collision_winner,
)
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import Attributes, EncodeContext
from fleetbgp.wire.constants import CeaseSub, MsgType
from fleetbgp.wire.messages import (
    KEEPALIVE,
    Capabilities,
    MessageReader,
    Notification,
    Open,
    RouteRefresh,
    end_of_rib,
    frame,
    pack_announce,
)
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST

LOCAL_ID = "10.0.0.1"
PEER_ID = "10.0.0.2"
FAMS = [IPV4_UNICAST, IPV6_UNICAST]


def local_open(hold: int = 90, ext: bool = False, asn: int = 65001) -> Open:
    return Open(asn=asn, hold_time=hold, router_id=LOCAL_ID, capabilities=Capabilities(
        families=FAMS, asn4=asn, route_refresh=True, extended_message=ext))


def peer_open(hold: int = 180, asn: int = 65002, rid: str = PEER_ID, ext: bool = False) -> bytes:
    return Open(asn=asn, hold_time=hold, router_id=rid, capabilities=Capabilities(
        families=FAMS, asn4=asn, route_refresh=True, extended_message=ext)).encode()


def connection(hold: int = 90, peer_as: int = 65002, local_as: int = 65001, ext: bool = False) -> Connection:
    return Connection(local_open(hold, ext, local_as),
                      Expectations(peer_as=peer_as, local_as=local_as, local_router_id=LOCAL_ID))


def opensent(**kw: object) -> Connection:
    conn = connection(**kw)  # type: ignore[arg-type]
    conn.start()
    return conn


def openconfirm(peer_hold: int = 180, **kw: object) -> Connection:
    conn = opensent(**kw)
    conn.data_received(peer_open(hold=peer_hold, ext=bool(kw.get("ext"))))
    assert conn.state is State.OPENCONFIRM
    return conn


def established(**kw: object) -> Connection:
    conn = openconfirm(**kw)  # type: ignore[arg-type]
    conn.data_received(KEEPALIVE)
    assert conn.state is State.ESTABLISHED
    return conn


def sent(actions: list[Action]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def notification_sent(actions: list[Action]) -> Notification:
    [close] = [a for a in actions if isinstance(a, Close)]
    assert close.notification_sent is not None
    [data] = sent(actions)
    assert data == close.notification_sent.encode()
    [(msg_type, body)] = list(MessageReader().feed(data))
    assert msg_type == MsgType.NOTIFICATION
    return Notification.decode(body)


def assert_closed(conn: Connection, actions: list[Action], old: State) -> None:
    assert actions[-3:] == [StopTimer("keepalive"), *actions[-2:-1], StateChange(old, State.IDLE)]
    assert StopTimer("hold") in actions and StopTimer("keepalive") in actions
    assert conn.closed and conn.state is State.IDLE
    # Once closed, nothing more happens.
    assert conn.data_received(KEEPALIVE) == []
    assert conn.timer_expired("hold") == []
    assert conn.stop(Notification(6, 2)) == []
    assert conn.connection_lost() == []


# ---- the happy path -------------------------------------------------------------------------------


def test_start_sends_open_and_arms_the_large_hold_timer() -> None:
    conn = connection()
    assert conn.state is State.CONNECT
    actions = conn.start()
    assert actions == [Send(local_open().encode()), SetTimer("hold", OPEN_HOLD_TIME),
                       StateChange(State.CONNECT, State.OPENSENT)]
    assert OPEN_HOLD_TIME == 240  # RFC 4271 8.2.2: "4 minutes is suggested"


def test_open_received_moves_to_openconfirm_with_negotiated_timers() -> None:
    conn = opensent(hold=90)
    actions = conn.data_received(peer_open(hold=180))
    assert isinstance(actions[0], OpenReceived) and actions[0].open.asn == 65002
    assert actions[1:] == [Send(KEEPALIVE), SetTimer("hold", 90), SetTimer("keepalive", 30),
                           StateChange(State.OPENSENT, State.OPENCONFIRM)]
    assert conn.negotiated is not None and conn.negotiated.hold_time == 90


def test_peer_hold_time_lower_than_ours_wins() -> None:
    conn = opensent(hold=90)
    actions = conn.data_received(peer_open(hold=9))
    assert SetTimer("hold", 9) in actions and SetTimer("keepalive", 3) in actions


def test_hold_time_zero_means_no_timers() -> None:
    conn = opensent(hold=90)
    actions = conn.data_received(peer_open(hold=0))
    assert not any(isinstance(a, SetTimer) for a in actions)
    assert StopTimer("hold") in actions and StopTimer("keepalive") in actions
    actions = conn.data_received(KEEPALIVE)
    assert conn.state is State.ESTABLISHED
    assert not any(isinstance(a, SetTimer) for a in actions)
    assert conn.data_received(KEEPALIVE) == [KeepaliveReceived()]
    # No keepalive timer is armed; a stray expiry must not start a 0-second loop.
    assert conn.timer_expired("keepalive") == []


def test_keepalive_in_openconfirm_establishes() -> None:
    conn = openconfirm()
    actions = conn.data_received(KEEPALIVE)
    assert actions[:2] == [SetTimer("hold", 90), StateChange(State.OPENCONFIRM, State.ESTABLISHED)]
    assert isinstance(actions[2], SessionUp)
    neg = actions[2].negotiated
    assert (neg.peer_as, neg.hold_time, neg.keepalive, neg.families) == (65002, 90, 30, tuple(FAMS))


def test_open_and_keepalive_in_one_read() -> None:
    conn = opensent()
    actions = conn.data_received(peer_open() + KEEPALIVE)
    assert conn.state is State.ESTABLISHED
    assert sum(isinstance(a, SessionUp) for a in actions) == 1


def test_keepalive_timer_sends_and_rearms() -> None:
    for conn in (openconfirm(), established()):
        assert conn.timer_expired("keepalive") == [Send(KEEPALIVE), SetTimer("keepalive", 30)]


def test_keepalive_timer_in_opensent_does_nothing() -> None:
    assert opensent().timer_expired("keepalive") == []
    assert established().timer_expired("something-else") == []


def test_every_message_in_established_rearms_the_hold_timer() -> None:
    conn = established()
    assert conn.data_received(KEEPALIVE) == [SetTimer("hold", 90), KeepaliveReceived()]
    actions = conn.data_received(end_of_rib(IPV4_UNICAST))
    assert actions[0] == SetTimer("hold", 90)
    assert isinstance(actions[1], UpdateReceived) and actions[1].update.eor == IPV4_UNICAST
    actions = conn.data_received(RouteRefresh(IPV6_UNICAST).encode())
    assert actions == [SetTimer("hold", 90), RefreshRequested(RouteRefresh(IPV6_UNICAST))]


def test_update_is_decoded_with_the_session_context() -> None:
    conn = established()
    ctx = EncodeContext(local_as=65002, peer_as=65001)
    [msg] = pack_announce(IPV4_UNICAST, Attributes.make(next_hop="192.0.2.1", local_pref=300),
                          [prefix_to_nlri("10.0.0.0/8")[1]], ctx)
    [_, upd] = conn.data_received(msg)
    assert isinstance(upd, UpdateReceived)
    attrs, items = upd.update.announce[IPV4_UNICAST]
    assert items == [prefix_to_nlri("10.0.0.0/8")[1]]
    assert attrs.as_path == ((2, (65002,)),) and attrs.local_pref is None  # eBGP: not sent


def test_update_treat_as_withdraw_does_not_close() -> None:
    conn = established()
    # NLRI without ORIGIN/AS_PATH/NEXT_HOP: RFC 7606 treat-as-withdraw, the session stays up.
    actions = conn.data_received(frame(MsgType.UPDATE, bytes.fromhex("0000 0000 080a")))
    assert not conn.closed
    [upd] = [a for a in actions if isinstance(a, UpdateReceived)]
    assert upd.update.treat_as_withdraw and upd.update.withdraw == {IPV4_UNICAST: [b"\x08\x0a"]}


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", [KEEPALIVE, end_of_rib(IPV4_UNICAST), RouteRefresh(IPV4_UNICAST).encode()])
def test_anything_but_open_in_opensent_is_fsm_error_1(msg: bytes) -> None:
    conn = opensent()
    actions = conn.data_received(msg)
    assert notification_sent(actions) == Notification(5, 1)
    assert_closed(conn, actions, State.OPENSENT)


@pytest.mark.parametrize("msg", [peer_open(), end_of_rib(IPV4_UNICAST), RouteRefresh(IPV4_UNICAST).encode()])
def test_anything_but_keepalive_in_openconfirm_is_fsm_error_2(msg: bytes) -> None:
    conn = openconfirm()
    actions = conn.data_received(msg)
    assert notification_sent(actions) == Notification(5, 2)
    assert_closed(conn, actions, State.OPENCONFIRM)


def test_open_in_established_is_fsm_error_3() -> None:
    conn = established()
    actions = conn.data_received(peer_open())
    assert notification_sent(actions) == Notification(5, 3)
    assert_closed(conn, actions, State.ESTABLISHED)


@pytest.mark.parametrize("state", ["opensent", "openconfirm", "established"])
def test_notification_received_closes_without_sending_one(state: str) -> None:
    conn = {"opensent": opensent, "openconfirm": openconfirm, "established": established}[state]()
    old = conn.state
    note = Notification.shutdown("bye")
    actions = conn.data_received(note.encode())
    assert sent(actions) == []
    [close] = [a for a in actions if isinstance(a, Close)]
    assert close.notification_received == note and close.notification_sent is None
    assert close.notification_received.shutdown_message == "bye"
    assert_closed(conn, actions, old)


@pytest.mark.parametrize("state", ["opensent", "openconfirm", "established"])
def test_hold_timer_expiry_sends_4_0(state: str) -> None:
    conn = {"opensent": opensent, "openconfirm": openconfirm, "established": established}[state]()
    old = conn.state
    actions = conn.timer_expired("hold")
    assert notification_sent(actions) == Notification(4, 0)
    assert_closed(conn, actions, old)


@pytest.mark.parametrize("state", ["opensent", "openconfirm", "established"])
def test_stop_sends_cease_then_closes(state: str) -> None:
    conn = {"opensent": opensent, "openconfirm": openconfirm, "established": established}[state]()
    old = conn.state
    note = Notification.shutdown("maintenance")
    actions = conn.stop(note)
    assert actions[0] == Send(note.encode())
    assert notification_sent(actions) == note
    assert_closed(conn, actions, old)


@pytest.mark.parametrize("state", ["opensent", "openconfirm", "established"])
def test_connection_lost(state: str) -> None:
    conn = {"opensent": opensent, "openconfirm": openconfirm, "established": established}[state]()
    old = conn.state
    actions = conn.connection_lost("reset by peer")
    assert sent(actions) == []
    assert Close("reset by peer") in actions
    assert_closed(conn, actions, old)


def test_wrong_peer_as_is_2_2() -> None:
    conn = opensent(peer_as=65003)
    actions = conn.data_received(peer_open(asn=65002))
    assert notification_sent(actions) == Notification(2, 2)
    assert_closed(conn, actions, State.OPENSENT)


def test_4_octet_peer_as_is_checked_from_the_capability() -> None:
    conn = opensent(peer_as=4200000002)
    conn.data_received(peer_open(asn=4200000002))
    assert conn.state is State.OPENCONFIRM
    conn = opensent(peer_as=4200000002)
    actions = conn.data_received(peer_open(asn=65002))
    assert notification_sent(actions) == Notification(2, 2)


def test_our_own_router_id_on_ibgp_is_2_3() -> None:
    conn = opensent(peer_as=65001, local_as=65001)
    actions = conn.data_received(peer_open(asn=65001, rid=LOCAL_ID))
    assert notification_sent(actions) == Notification(2, 3)


def test_same_router_id_on_ebgp_is_allowed() -> None:
    conn = opensent()
    conn.data_received(peer_open(rid=LOCAL_ID))
    assert conn.state is State.OPENCONFIRM


def test_open_errors_answer_with_their_notification() -> None:
    conn = opensent()
    bad_version = bytearray(peer_open())
    bad_version[19] = 3
    actions = conn.data_received(bytes(bad_version))
    assert notification_sent(actions) == Notification(2, 1, b"\x00\x04")
    conn = opensent()
    actions = conn.data_received(peer_open(hold=2))
    assert notification_sent(actions) == Notification(2, 6)


def test_header_error_answers_1_x() -> None:
    conn = established()
    actions = conn.data_received(b"\xff" * 16 + b"\x00\x13\x09")
    assert notification_sent(actions) == Notification(1, 3, b"\x09")


def test_update_session_reset_answers_3_x() -> None:
    conn = established()
    actions = conn.data_received(frame(MsgType.UPDATE, bytes.fromhex("0000 0005 4063 02 7879")))
    assert notification_sent(actions) == Notification(3, 2, bytes.fromhex("4063 02 7879"))


def test_bad_route_refresh_answers_7_1() -> None:
    conn = established()
    bad = frame(MsgType.ROUTE_REFRESH, bytes.fromhex("0001 00 01 00"))
    actions = conn.data_received(bad)
    assert notification_sent(actions) == Notification(7, 1, bad)


def test_messages_after_a_fatal_one_in_the_same_read_are_ignored() -> None:
    conn = opensent()
    actions = conn.data_received(KEEPALIVE + peer_open())
    assert [type(a) for a in actions if isinstance(a, OpenReceived | SessionUp)] == []
    assert conn.closed


# ---- extended messages (RFC 8654) ----------------------------------------------------------------


def big_update() -> bytes:
    ctx = EncodeContext(local_as=65002, peer_as=65001, max_size=65535)
    attrs = Attributes.make(next_hop="192.0.2.1", communities=tuple(range(1500)))
    [msg] = pack_announce(IPV4_UNICAST, attrs, [prefix_to_nlri("10.0.0.0/8")[1]], ctx)
    assert len(msg) > 4096
    return msg


def test_extended_message_size_after_both_sides_agree() -> None:
    conn = established(ext=True)
    assert conn.negotiated is not None and conn.negotiated.max_size == 65535
    actions = conn.data_received(big_update())
    assert not conn.closed
    assert any(isinstance(a, UpdateReceived) for a in actions)


def test_large_message_without_extended_message_is_1_2() -> None:
    conn = established(ext=False)
    msg = big_update()
    actions = conn.data_received(msg)
    assert notification_sent(actions) == Notification(1, 2, len(msg).to_bytes(2, "big"))


def test_only_we_offering_extended_message_is_not_enough() -> None:
    conn = opensent(ext=True)
    conn.data_received(peer_open(ext=False) + KEEPALIVE)
    assert conn.negotiated is not None and conn.negotiated.max_size == 4096
    actions = conn.data_received(big_update())
    assert notification_sent(actions).code == 1


# ---- Backoff ----------------------------------------------------------------------------------------


def test_backoff_is_exponential_and_capped_without_jitter() -> None:
    b = Backoff(base=1.0, cap=30.0, jitter=0.0)
    assert [b.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    b.reset()
    assert b.next_delay() == 1


def test_backoff_jitter_stays_within_bounds() -> None:
    b = Backoff(base=0.5, cap=10.0, jitter=0.25, rng=random.Random(7))
    nominal = [0.5, 1, 2, 4, 8, 10, 10, 10, 10, 10] * 3
    delays: list[float] = []
    for i, expected in enumerate(nominal):
        if i and i % 10 == 0:
            b.reset()
        d = b.next_delay()
        delays.append(d)
        assert expected * 0.75 <= d <= expected
    assert len(set(delays)) > 5  # jitter actually varies


def test_backoff_survives_thousands_of_failures() -> None:
    b = Backoff(base=1.0, cap=30.0, jitter=0.0)
    for _ in range(5000):
        d = b.next_delay()
    assert d == 30


# ---- collisions (RFC 4271 6.8, RFC 6286 2.3) -------------------------------------------------------


def test_higher_bgp_identifier_keeps_its_own_connection() -> None:
    assert collision_winner("10.0.0.2", "10.0.0.1") == "local"
    assert collision_winner("10.0.0.1", "10.0.0.2") == "remote"
    # Compared as unsigned 32-bit integers, not strings.
    assert collision_winner("9.0.0.0", "10.0.0.0") == "remote"
    assert collision_winner("200.0.0.1", "100.0.0.1") == "local"


def test_equal_identifiers_larger_as_wins() -> None:
    assert collision_winner("10.0.0.1", "10.0.0.1", local_as=65002, remote_as=65001) == "local"
    assert collision_winner("10.0.0.1", "10.0.0.1", local_as=65001, remote_as=4200000000) == "remote"


def test_collision_cease_subcode() -> None:
    assert Notification(6, CeaseSub.CONNECTION_COLLISION_RESOLUTION).encode()[-2:] == b"\x06\x07"
