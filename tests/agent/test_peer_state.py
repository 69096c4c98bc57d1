"""The neighbor's sans-IO session state (peer_state.PeerState), driven by events with no socket:
collisions, the UPDATE stream, drain, End-of-RIB, route refresh, route ownership, and the sends
it refuses in a wrong state."""

from __future__ import annotations

import pytest

from fleetbgp.config import parse_text
from fleetbgp.fsm import Close, Connection, LocalProtocolError, Send, SessionUp, State, UpdateReceived
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.owner import CONFIG, Owner
from fleetbgp.peer_state import PeerState
from fleetbgp.wire.attributes import Attributes, DecodeContext
from fleetbgp.wire.constants import CeaseSub, ErrCode, MsgType
from fleetbgp.wire.messages import (
    KEEPALIVE,
    Capabilities,
    MessageReader,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_update,
)
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

LOCAL_ID = "192.0.2.2"
CONF = """
neighbor 192.0.2.1 {
  router-id 192.0.2.2; local-address 192.0.2.2; local-as 65001; peer-as 65000;
  family { ipv4 unicast; ipv6 unicast; }
  static {
    route 10.0.0.0/24 next-hop 192.0.2.2;
    route 10.0.1.0/24 next-hop 192.0.2.2 med 5;
  }
}
"""
FAMS = [IPV4_UNICAST, IPV6_UNICAST]
CONTROL = Owner.control("cli")
PROCESS = Owner.process("api")
ATTRS = Attributes.make(next_hop="192.0.2.2", med=50)


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def make_state(conf: str = CONF) -> PeerState:
    return PeerState(parse_text(conf, "peer.conf").neighbors[0])


def remote_open(router_id: str = "192.0.2.1", asn: int = 65000, *, route_refresh: bool = True,
                families: list[Family] | None = None, graceful_restart: int | None = None,
                gr_notification: bool = False) -> Open:
    return Open(asn=asn, hold_time=90, router_id=router_id,
                capabilities=Capabilities(families=FAMS if families is None else families, asn4=asn,
                                          route_refresh=route_refresh, graceful_restart=graceful_restart,
                                          gr_notification=gr_notification))


def to_openconfirm(state: PeerState, direction: str, remote: Open) -> tuple[Connection, list]:
    """A connection through OPEN received: (connection, the collision stops that OPEN caused)."""
    conn = state.new_connection(direction)
    conn.start()
    conn.data_received(remote.encode())
    return conn, state.open_received(conn, remote)


def establish(state: PeerState, remote: Open | None = None, direction: str = "out") -> Connection:
    conn, stops = to_openconfirm(state, direction, remote or remote_open())
    assert stops == []
    [up] = [a for a in conn.data_received(KEEPALIVE) if isinstance(a, SessionUp)]
    state.session_up(conn, up.negotiated, "192.0.2.2")
    return conn


def sent(messages) -> list[Update]:
    """UPDATE messages as the peer reads them."""
    reader = MessageReader()
    out = []
    for msg in messages:
        for msg_type, body in reader.feed(msg):
            assert msg_type == MsgType.UPDATE
            out.append(decode_update(body, DecodeContext(asn4=True), FAMS))
    return out


def announced(updates: list[Update]) -> dict[bytes, int | None]:
    return {nlri: attrs.med for u in updates for _f, (attrs, items) in u.announce.items() for nlri in items}


def withdrawn(updates: list[Update]) -> set[bytes]:
    return {nlri for u in updates for items in u.withdraw.values() for nlri in items}


def eors(updates: list[Update]) -> list[Family]:
    return [u.eor for u in updates if u.eor is not None]


def is_collision_cease(actions: list) -> bool:
    cease = Notification(ErrCode.CEASE, CeaseSub.CONNECTION_COLLISION_RESOLUTION)
    closes = [a for a in actions if isinstance(a, Close)]
    return Send(cease.encode()) in actions and len(closes) == 1 and closes[0].notification_sent == cease


# -- collisions (RFC 4271 6.8, RFC 6286 2.3) ------------------------------------------------------


def test_collision_our_higher_identifier_keeps_our_connection() -> None:
    state = make_state()
    out, _ = to_openconfirm(state, "out", remote_open("192.0.2.1"))
    inc, stops = to_openconfirm(state, "in", remote_open("192.0.2.1"))
    assert [conn for conn, _ in stops] == [inc]
    assert is_collision_cease(stops[0][1]) and inc.closed
    assert not out.closed and out.state is State.OPENCONFIRM


def test_collision_their_higher_identifier_keeps_their_connection() -> None:
    state = make_state()
    out, _ = to_openconfirm(state, "out", remote_open("192.0.2.9"))
    inc, stops = to_openconfirm(state, "in", remote_open("192.0.2.9"))
    assert [conn for conn, _ in stops] == [out]
    assert is_collision_cease(stops[0][1]) and out.closed and not inc.closed


def test_collision_seen_from_our_late_outgoing_connection() -> None:
    """The same decision when our dialed connection gets its OPEN second."""
    state = make_state()
    inc, _ = to_openconfirm(state, "in", remote_open("192.0.2.1"))
    out, stops = to_openconfirm(state, "out", remote_open("192.0.2.1"))
    assert [conn for conn, _ in stops] == [inc]  # our identifier is higher: ours stays
    assert inc.closed and not out.closed


@pytest.mark.parametrize(("remote_as", "closed"), [(65000, "in"), (65009, "out")])
def test_collision_equal_identifiers_the_larger_as_wins(remote_as: int, closed: str) -> None:
    conf = CONF.replace("peer-as 65000", f"peer-as {remote_as}")
    state = make_state(conf)
    same = remote_open(LOCAL_ID, remote_as)
    out, _ = to_openconfirm(state, "out", same)
    inc, stops = to_openconfirm(state, "in", same)
    loser = {"in": inc, "out": out}[closed]
    assert [conn for conn, _ in stops] == [loser] and is_collision_cease(stops[0][1])


def test_an_established_session_always_stays() -> None:
    state = make_state()
    # The peer's identifier is higher: against OpenConfirm its connection would win.
    session = establish(state, remote_open("192.0.2.9"), direction="out")
    inc, stops = to_openconfirm(state, "in", remote_open("192.0.2.9"))
    assert [conn for conn, _ in stops] == [inc] and is_collision_cease(stops[0][1])
    assert state.established is session and session.state is State.ESTABLISHED


def test_no_collision_before_the_other_connection_has_an_open() -> None:
    state = make_state()
    other = state.new_connection("out")
    other.start()  # OpenSent: the peer's identifier on it is not known yet
    _, stops = to_openconfirm(state, "in", remote_open("192.0.2.9"))
    assert stops == [] and not other.closed


def test_a_forgotten_connection_takes_no_part() -> None:
    state = make_state()
    out, _ = to_openconfirm(state, "out", remote_open("192.0.2.9"))
    state.forget(out)
    _, stops = to_openconfirm(state, "in", remote_open("192.0.2.9"))
    assert stops == [] and not out.closed


# -- the UPDATE stream and End-of-RIB ---------------------------------------------------------------


def test_session_up_sends_the_table_then_end_of_rib_per_family() -> None:
    state = make_state()
    establish(state)
    updates = sent(state.updates())
    assert announced(updates) == {n("10.0.0.0/24"): None, n("10.0.1.0/24"): 5}
    assert eors(updates) == [IPV4_UNICAST, IPV6_UNICAST]
    assert updates[-1].eor == IPV6_UNICAST and not state.pending
    assert sent(state.updates()) == []  # nothing more


def test_only_changes_follow() -> None:
    state = make_state()
    establish(state)
    list(state.updates())
    assert state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    assert state.retract(IPV4_UNICAST, n("10.0.0.0/24"))
    updates = sent(state.updates())
    assert withdrawn(updates) == {n("10.0.0.0/24")}
    assert announced(updates) == {n("10.9.0.0/24"): 50}
    assert eors(updates) == []
    # Withdrawals before announcements.
    assert updates[0].withdraw and not updates[0].announce


def test_manual_eor_waits_for_the_api_and_names_one_family() -> None:
    state = make_state(CONF.replace("family {", "manual-eor true; family {"))
    assert state.neighbor.manual_eor
    establish(state)
    assert eors(sent(state.updates())) == []
    assert state.send_eor([IPV6_UNICAST])
    assert eors(sent(state.updates())) == [IPV6_UNICAST]


def test_end_of_rib_only_for_negotiated_families() -> None:
    state = make_state()
    establish(state, remote_open(families=[IPV4_UNICAST]))
    assert eors(sent(state.updates())) == [IPV4_UNICAST]
    assert not state.send_eor([IPV6_UNICAST])


# -- drain --------------------------------------------------------------------------------------------


def test_withdraw_drain_withdraws_once_holds_changes_and_restores() -> None:
    state = make_state()
    establish(state)
    list(state.updates())
    assert state.set_drain("withdraw")
    assert not state.set_drain("withdraw")  # no change
    updates = sent(state.updates())
    assert withdrawn(updates) == {n("10.0.0.0/24"), n("10.0.1.0/24")} and announced(updates) == {}
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    assert sent(state.updates()) == []  # held until the drain ends
    assert state.set_drain(None)
    assert announced(sent(state.updates())) == {n("10.0.0.0/24"): None, n("10.0.1.0/24"): 5,
                                                n("10.9.0.0/24"): 50}


def test_metric_drain_rewrites_the_med_on_the_way_out_only() -> None:
    state = make_state()
    establish(state)
    list(state.updates())
    state.set_drain("metric", 700)
    assert set(announced(sent(state.updates())).values()) == {700}
    assert state.rib_out.routes[IPV4_UNICAST][n("10.0.1.0/24")].med == 5  # the table is unchanged
    state.set_drain(None)
    assert announced(sent(state.updates())) == {n("10.0.0.0/24"): None, n("10.0.1.0/24"): 5}


def test_a_drain_started_without_a_session_applies_when_it_comes_up() -> None:
    state = make_state()
    state.set_drain("withdraw")
    establish(state)
    updates = sent(state.updates())
    assert announced(updates) == {} and eors(updates) == [IPV4_UNICAST, IPV6_UNICAST]


# -- route refresh ------------------------------------------------------------------------------------


def test_refresh_received_sends_the_family_again_with_end_of_rib() -> None:
    state = make_state()
    establish(state)
    list(state.updates())
    assert state.refresh_received(IPV4_UNICAST)
    updates = sent(state.updates())
    assert announced(updates) == {n("10.0.0.0/24"): None, n("10.0.1.0/24"): 5}
    assert eors(updates) == [IPV4_UNICAST]


def test_refresh_for_a_family_not_negotiated_is_ignored() -> None:
    state = make_state()
    establish(state, remote_open(families=[IPV4_UNICAST]))
    list(state.updates())
    assert not state.refresh_received(IPV6_UNICAST)
    assert not state.pending


def test_refresh_requested_asks_per_negotiated_family() -> None:
    state = make_state()
    session = establish(state, remote_open(families=[IPV4_UNICAST]))
    conn, actions = state.route_refresh()
    assert conn is session and actions == [Send(RouteRefresh(IPV4_UNICAST).encode())]
    assert state.route_refresh([IPV6_UNICAST]) == (session, [])


def test_refresh_requested_refused_without_the_peers_capability() -> None:
    state = make_state()
    establish(state, remote_open(route_refresh=False))
    with pytest.raises(LocalProtocolError, match="route refresh"):
        state.route_refresh()


# -- sends refused in a wrong state ---------------------------------------------------------------


def test_nothing_is_sent_before_established() -> None:
    state = make_state()
    with pytest.raises(LocalProtocolError, match="UPDATE"):
        state.updates()
    with pytest.raises(LocalProtocolError, match="ROUTE_REFRESH"):
        state.route_refresh()
    with pytest.raises(LocalProtocolError):
        state.teardown()
    to_openconfirm(state, "out", remote_open())  # OpenConfirm is not Established either
    with pytest.raises(LocalProtocolError):
        state.updates()


def test_nothing_is_sent_once_the_session_is_down() -> None:
    state = make_state()
    session = establish(state)
    session.connection_lost("gone")
    assert state.session_down(session)
    with pytest.raises(LocalProtocolError):
        state.updates()
    assert not state.session_down(session)  # once


def test_the_connection_itself_refuses_when_closed() -> None:
    state = make_state()
    session = establish(state)
    session.stop(Notification(ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_SHUTDOWN))
    with pytest.raises(LocalProtocolError, match="closed"):
        state.updates()  # the core has not heard of the close yet; the fsm.Connection has


def test_teardown_closes_the_session_with_a_cease() -> None:
    state = make_state()
    session = establish(state)
    conn, actions = state.teardown(CeaseSub.ADMINISTRATIVE_RESET)
    assert conn is session and session.closed
    assert Send(Notification(ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_RESET).encode()) in actions


def test_a_new_session_sends_everything_again() -> None:
    state = make_state()
    first = establish(state)
    list(state.updates())
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    first.connection_lost("gone")
    state.session_down(first)
    state.forget(first)
    establish(state)
    assert set(announced(sent(state.updates()))) == {n("10.0.0.0/24"), n("10.0.1.0/24"), n("10.9.0.0/24")}


# -- what the peer sends, graceful restart ----------------------------------------------------------


def test_received_routes_are_dropped_with_the_session_graceful_restart_is_kept() -> None:
    state = make_state(CONF.replace("family {", "capability { graceful-restart 120; } family {"))
    assert state.graceful_restart.restart_time == 120
    session = establish(state, remote_open(graceful_restart=90))
    assert state.graceful_restart.peer_restart_time == 90
    # ORIGIN IGP, AS_PATH [65000], NEXT_HOP 192.0.2.1; 10.1.2.0/24
    path_attrs = bytes.fromhex("40010100" "40020602010000fde8" "400304c0000201")
    body = b"\x00\x00" + len(path_attrs).to_bytes(2, "big") + path_attrs + b"\x18\x0a\x01\x02"
    [update] = [a.update for a in session.data_received(_frame(MsgType.UPDATE, body))
                if isinstance(a, UpdateReceived)]
    state.update_received(update)
    assert state.rib_in.count(IPV4_UNICAST) == 1
    session.connection_lost("gone")
    state.session_down(session)
    assert state.rib_in.count(IPV4_UNICAST) == 0
    assert state.graceful_restart.peer_restart_time == 90  # what the peer offered, for a later restart


GR_CONF = CONF.replace("family {", "capability { graceful-restart 120; } family {")


def test_open_after_the_agent_starts_says_restarted_then_not_and_forwarding_per_family() -> None:
    """RFC 4724 3: R=1 in the OPENs until the first session is up after the agent (re)started,
    R=0 after (a session reset is no restart); F=1 for every family: the host forwards alone."""
    state = PeerState(parse_text(GR_CONF, "peer.conf").neighbors[0], restarting=True)
    first = state.local_open().capabilities
    assert first.gr_restarting is True and first.graceful_restart == 120
    assert first.gr_families and all(first.gr_families.values())
    # on the wire: restart flags R (0x8) and RFC 8538's N (0x4) over the time, F (0x80) per family
    raw = state.local_open().encode()
    assert bytes.fromhex("c078") + b"\x00\x01\x01\x80" in raw
    session = establish(state, remote_open(graceful_restart=90))
    assert state.local_open().capabilities.gr_restarting is False
    session.connection_lost("gone")
    state.session_down(session)
    assert state.local_open().capabilities.gr_restarting is False


def test_no_restart_bit_for_a_peer_a_reload_adds_and_none_without_graceful_restart() -> None:
    added = PeerState(parse_text(GR_CONF, "peer.conf").neighbors[0])
    assert added.local_open().capabilities.gr_restarting is False
    plain = PeerState(parse_text(CONF, "peer.conf").neighbors[0], restarting=True)
    caps = plain.local_open().capabilities
    assert caps.graceful_restart is None and caps.gr_restarting is False and not caps.gr_families
    kept_out = PeerState(parse_text(GR_CONF, "peer.conf").neighbors[0], forwarding=False)
    assert not any(kept_out.local_open().capabilities.gr_families.values())


def test_forwarding_state_off_goes_on_the_wire_as_zero_per_family() -> None:
    """The graceful-restart-forwarding setting off: F=0 for every family in the OPEN's bytes."""
    state = PeerState(parse_text(GR_CONF, "peer.conf").neighbors[0], restarting=True, forwarding=False)
    raw = state.local_open().encode()
    assert bytes.fromhex("c078" "0001 01 00" "0002 01 00".replace(" ", "")) in raw
    decoded = Open.decode(raw[19:]).capabilities
    assert decoded.gr_families == {IPV4_UNICAST: False, IPV6_UNICAST: False} and decoded.gr_notification


def stop_notes(actions: list) -> list[Notification]:
    """The NOTIFICATIONs a stop's actions send (what the peer reads)."""
    out = []
    for action in actions:
        if isinstance(action, Send):
            [(msg_type, body)] = list(MessageReader().feed(action.data))
            assert msg_type == MsgType.NOTIFICATION
            out.append(Notification.decode(body))
    return out


SHUTDOWN = Notification.shutdown("fleetbgp shutting down")


def gr_session(*, peer_gr: bool = True, peer_n: bool = True, conf: str = GR_CONF) -> tuple[PeerState, Connection]:
    state = PeerState(parse_text(conf, "peer.conf").neighbors[0], restarting=True)
    session = establish(state, remote_open(graceful_restart=90 if peer_gr else None, gr_notification=peer_n))
    return state, session


def test_graceful_stop_with_the_n_bit_sends_administrative_reset_which_keeps_graceful_restart() -> None:
    """RFC 8538 3: with N negotiated, any NOTIFICATION but Hard Reset keeps graceful restart."""
    state, session = gr_session()
    assert state.graceful_restart.negotiated and state.graceful_restart.notification
    [(conn, actions)] = state.stop(SHUTDOWN, graceful=True)
    assert conn is session and session.closed
    [note] = stop_notes(actions)
    assert (note.code, note.subcode) == (ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_RESET)
    assert note.shutdown_message == "fleetbgp shutting down"


def test_graceful_stop_without_the_n_bit_closes_without_notification() -> None:
    """RFC 4724 4.2: a peer without N ends graceful restart on any NOTIFICATION: TCP close only."""
    state, session = gr_session(peer_n=False)
    assert state.graceful_restart.negotiated and not state.graceful_restart.notification
    [(conn, actions)] = state.stop(SHUTDOWN, graceful=True)
    assert conn is session and session.closed
    assert stop_notes(actions) == []
    [close] = [a for a in actions if isinstance(a, Close)]
    assert close.notification_sent is None and "without NOTIFICATION" in close.reason


def test_real_stop_with_the_n_bit_is_a_hard_reset_around_the_administrative_shutdown() -> None:
    """RFC 8538 3: only Cease/Hard Reset ends graceful restart once N is negotiated; its data is
    the Administrative Shutdown (code, subcode, data)."""
    state, _ = gr_session()
    [(_, actions)] = state.stop(SHUTDOWN)
    [note] = stop_notes(actions)
    assert (note.code, note.subcode) == (ErrCode.CEASE, CeaseSub.HARD_RESET)
    assert note.hard_reset_of == SHUTDOWN and note.shutdown_message == "fleetbgp shutting down"
    # an API teardown ends it the same way
    state, _ = gr_session()
    _, actions = state.teardown(CeaseSub.ADMINISTRATIVE_RESET)
    [note] = stop_notes(actions)
    assert note.hard_reset_of == Notification(ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_RESET)


@pytest.mark.parametrize(("peer_gr", "peer_n", "conf", "graceful"), [
    (True, False, GR_CONF, False),   # GR without N: the Cease itself ends it (RFC 4724)
    (False, False, GR_CONF, True),   # the peer offered no graceful restart: nothing to keep
    (True, True, CONF, True),        # not configured here: a graceful request does not apply
])
def test_plain_administrative_shutdown_otherwise(peer_gr: bool, peer_n: bool, conf: str, graceful: bool) -> None:
    state, _ = gr_session(peer_gr=peer_gr, peer_n=peer_n, conf=conf)
    [(_, actions)] = state.stop(SHUTDOWN, graceful=graceful)
    assert stop_notes(actions) == [SHUTDOWN]


def test_stop_closes_connections_still_opening_with_the_plain_cease() -> None:
    state, session = gr_session()
    opening = state.new_connection("in")
    opening.start()
    stops = dict(state.stop(SHUTDOWN, graceful=True))
    assert set(stops) == {session, opening}
    assert stop_notes(stops[opening]) == [SHUTDOWN]
    assert state.stop(SHUTDOWN) == []  # everything is closed already


def _frame(msg_type: int, body: bytes) -> bytes:
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body


# -- route ownership ---------------------------------------------------------------------------------


def test_owner_of_each_route() -> None:
    state = make_state()
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    state.advertise(IPV4_UNICAST, n("10.9.1.0/24"), ATTRS, PROCESS, track=False)
    rib = state.rib_out
    assert rib.owner_of(IPV4_UNICAST, n("10.0.0.0/24")) is CONFIG
    assert rib.owner_of(IPV4_UNICAST, n("10.9.0.0/24")) is CONTROL
    assert rib.owner_of(IPV4_UNICAST, n("10.9.1.0/24")) is None  # untracked
    assert rib.owner_of(IPV4_UNICAST, n("10.99.0.0/24")) is None  # not there
    # The last announcement wins, the config's included.
    state.advertise(IPV4_UNICAST, n("10.0.0.0/24"), ATTRS, PROCESS)
    assert rib.owner_of(IPV4_UNICAST, n("10.0.0.0/24")) is PROCESS
    assert state.owned(CONFIG) == {IPV4_UNICAST: {n("10.0.1.0/24")}}


def test_retract_owner_takes_only_its_routes() -> None:
    state = make_state()
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    state.advertise(IPV4_UNICAST, n("10.9.1.0/24"), ATTRS, CONTROL)
    state.advertise(IPV4_UNICAST, n("10.9.2.0/24"), ATTRS, PROCESS)
    state.advertise(IPV4_UNICAST, n("10.9.1.0/24"), ATTRS, PROCESS)  # taken over
    assert state.owned(Owner.control("cli")) == {IPV4_UNICAST: {n("10.9.0.0/24")}}  # equal is identical
    assert state.retract_owner(CONTROL) == 1
    assert set(state.rib_out.routes[IPV4_UNICAST]) == {n("10.0.0.0/24"), n("10.0.1.0/24"), n("10.9.1.0/24"),
                                                       n("10.9.2.0/24")}
    assert state.retract_owner(CONTROL) == 0
    # A withdrawn route has no owner left behind.
    state.retract(IPV4_UNICAST, n("10.9.2.0/24"))
    assert state.owned(PROCESS) == {IPV4_UNICAST: {n("10.9.1.0/24")}}


def test_a_family_the_neighbor_does_not_have_is_refused() -> None:
    state = make_state(CONF.replace("ipv6 unicast; ", ""))
    assert not state.advertise(IPV6_UNICAST, n("2001:db8::/32"), ATTRS, CONTROL)
    assert state.owned(CONTROL) == {}


def test_reload_replaces_the_static_routes_and_keeps_runtime_ones() -> None:
    state = make_state()
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    state.advertise(IPV4_UNICAST, n("10.9.1.0/24"), ATTRS, PROCESS)
    new = parse_text(CONF.replace("route 10.0.0.0/24 next-hop 192.0.2.2;",
                                  "route 10.9.1.0/24 next-hop 192.0.2.2;"), "peer.conf").neighbors[0]
    assert state.set_static(new.static_routes) == (1, 1)  # 10.9.1.0/24 changed, 10.0.0.0/24 gone
    rib = state.rib_out
    assert n("10.0.0.0/24") not in rib.routes[IPV4_UNICAST]
    assert rib.owner_of(IPV4_UNICAST, n("10.9.0.0/24")) is CONTROL  # runtime route kept
    assert rib.owner_of(IPV4_UNICAST, n("10.9.1.0/24")) is CONFIG  # the config took it over
    assert state.owned(PROCESS) == {}
    assert [(o, nlri) for _f, nlri, _a, o in rib.runtime_routes()] == [(CONTROL, n("10.9.0.0/24"))]


def test_retract_all_forgets_every_owner() -> None:
    state = make_state()
    state.advertise(IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, CONTROL)
    assert state.retract_all() == 3
    assert state.owned(CONTROL) == {} and state.owned(CONFIG) == {}


def test_watchdog_routes_move_with_their_owner() -> None:
    conf = CONF.replace("route 10.0.1.0/24 next-hop 192.0.2.2 med 5;",
                        "route 10.0.1.0/24 next-hop 192.0.2.2 med 5 watchdog dog withdraw;")
    state = make_state(conf)
    assert n("10.0.1.0/24") not in state.rib_out.routes[IPV4_UNICAST]
    state.join_watchdog("dog", IPV4_UNICAST, n("10.9.0.0/24"), ATTRS, PROCESS, announced=False)
    assert state.move_watchdog("dog", announce=True) == 2
    assert state.rib_out.owner_of(IPV4_UNICAST, n("10.0.1.0/24")) is CONFIG
    assert state.rib_out.owner_of(IPV4_UNICAST, n("10.9.0.0/24")) is PROCESS
    assert state.move_watchdog("dog", announce=True) == 0
    assert state.move_watchdog("dog", announce=False) == 2
    assert state.owned(PROCESS) == {}
