"""A hostile or broken peer must not flood the log, reset the session over something RFC 7606 or
RFC 4760 lets us survive, or hide why it closed the session; plus the RFC 7606 checks for
ORIGINATOR_ID, CLUSTER_LIST, confederation segments and unusable next hops."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import types

import pytest
from test_wire_rfc7606 import AS_PATH, BASE, EBGP, IBGP, NEXT_HOP, NLRI, ORIGIN, attr, h, n

from fleetbgp.api.process import ProcessRunner
from fleetbgp.config import parse_text
from fleetbgp.fsm import Connection, Expectations, UpdateReceived
from fleetbgp.logutil import RateLimiter
from fleetbgp.session import BGPProtocol, Peer
from fleetbgp.wire.attributes import DecodeContext
from fleetbgp.wire.constants import CeaseSub, ErrCode, UpdateSub
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import (
    KEEPALIVE,
    Capabilities,
    MessageReader,
    Notification,
    Open,
    Update,
    decode_update,
    frame,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, Family

FAMS = [IPV4_UNICAST, IPV6_UNICAST]


def update(attrs: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    return len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri


def decode(attrs: bytes, nlri: bytes = NLRI, ctx: DecodeContext = EBGP,
           families: list[Family] | None = None) -> Update:
    return decode_update(update(attrs, nlri), ctx, FAMS if families is None else families)


def assert_withdrawn(upd: Update) -> None:
    assert upd.treat_as_withdraw
    assert upd.announce == {}
    assert upd.withdraw[IPV4_UNICAST] == [n("203.0.113.0/24"), n("10.0.0.0/8")]


def assert_announced(upd: Update) -> None:
    assert not upd.treat_as_withdraw, upd.notes
    assert upd.announce[IPV4_UNICAST][1] == [n("203.0.113.0/24"), n("10.0.0.0/8")]


# ---- 7: one log line per UPDATE, and a per-peer rate limit ----------------------------------------

CONF = """
neighbor 127.0.0.1 { router-id 192.0.2.1; local-address 127.0.0.1; local-as 65001; peer-as 65002; passive;
  family { ipv4 unicast; } }
"""


def make_peer() -> Peer:
    return Peer(parse_text(CONF, "hostile.conf").neighbors[0])


# An extended message's worth: a MED, then a thousand copies of it.
FLOOD = update(BASE + attr(0x80, 4, h("00000064")) * 1001)


def established_connection() -> Connection:
    local = Open(asn=65001, hold_time=90, router_id="192.0.2.1",
                 capabilities=Capabilities(families=[IPV4_UNICAST], asn4=65001, extended_message=True))
    conn = Connection(local, Expectations(peer_as=65002, local_as=65001, local_router_id="192.0.2.1"))
    conn.start()
    remote = Open(asn=65002, hold_time=90, router_id="192.0.2.2",
                  capabilities=Capabilities(families=[IPV4_UNICAST], asn4=65002, extended_message=True))
    conn.data_received(remote.encode())
    conn.data_received(KEEPALIVE)
    return conn


def receive(conn: Connection, peer: Peer, body: bytes) -> None:
    """What BGPProtocol does with the bytes: the FSM decodes, the Peer handles (and logs)."""
    for action in conn.data_received(frame(2, body)):
        if isinstance(action, UpdateReceived):
            peer.on_update(action.update)


def peer_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fleetbgp.peer"]


def test_update_with_a_thousand_duplicate_attributes_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        conn, peer = established_connection(), make_peer()
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            receive(conn, peer, FLOOD)
        assert not conn.closed

    asyncio.run(go())
    lines = peer_warnings(caplog)
    assert len(lines) == 1, lines[:5]
    assert "duplicate attribute 4 discarded" in lines[0] and "1000" in lines[0]
    assert lines[0].startswith("peer 127.0.0.1: UPDATE")


def test_update_with_many_different_problems_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    # Two copies each of 200 different unknown optional attributes: 200 distinct problems.
    extra = b"".join(attr(0xC0, code, b"x") * 2 for code in range(40, 240))

    async def go() -> None:
        conn, peer = established_connection(), make_peer()
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            receive(conn, peer, update(BASE + extra))

    asyncio.run(go())
    lines = peer_warnings(caplog)
    assert len(lines) == 1, lines[:5]
    assert "200 attribute problems" in lines[0] and "duplicate attribute 40 discarded" in lines[0]
    assert len(lines[0]) < 500


def test_update_with_one_problem_still_names_it(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        conn, peer = established_connection(), make_peer()
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            receive(conn, peer, update(BASE + attr(0x80, 4, h("000064"))))

    asyncio.run(go())
    lines = peer_warnings(caplog)
    assert len(lines) == 1
    assert "MULTI_EXIT_DISC length 3" in lines[0] and "treated as withdrawn" in lines[0]


def test_a_stream_of_bad_updates_logs_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        conn, peer = established_connection(), make_peer()
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            for _ in range(300):
                receive(conn, peer, FLOOD)
        assert not conn.closed

    asyncio.run(go())
    assert len(peer_warnings(caplog)) <= 25


def test_suppressed_count_is_logged_when_the_window_ends(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        conn, peer = established_connection(), make_peer()
        peer.update_problem_limit = RateLimiter(2, 0.2)
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            for _ in range(10):
                receive(conn, peer, FLOOD)
            assert len(peer_warnings(caplog)) == 2
            await asyncio.sleep(0.4)  # the window ends with no further UPDATE: the count still shows

    asyncio.run(go())
    lines = peer_warnings(caplog)
    assert len(lines) == 3, lines
    assert "8 more UPDATE(s) with attribute problems not logged" in lines[2]


def test_rate_limits_are_per_peer(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        first, second = make_peer(), make_peer()
        first.update_problem_limit = RateLimiter(1, 60)
        second.update_problem_limit = RateLimiter(1, 60)
        with caplog.at_level(logging.WARNING, logger="fleetbgp.peer"):
            for peer in (first, second, first, second):
                receive(established_connection(), peer, FLOOD)

    asyncio.run(go())
    assert len(peer_warnings(caplog)) == 2


def test_rate_limiter_counts_and_reports_once() -> None:
    limit = RateLimiter(2, 60.0)
    assert [limit.allow() for _ in range(5)] == [(True, 0), (True, 0), (False, 0), (False, 0), (False, 0)]
    assert limit.suppressed == 3
    assert 0 < limit.window_left() <= 60.0
    assert limit.take_suppressed() == 3
    assert limit.take_suppressed() == 0


def test_duplicate_attributes_cost_one_note_per_code() -> None:
    upd = decode(BASE + attr(0x80, 4, h("00000064")) * 1000)
    assert_announced(upd)
    assert len(upd.notes) <= 2, upd.notes[:5]


# ---- 8a: MP_REACH_NLRI of a family not negotiated ----------------------------------------------


@pytest.mark.parametrize(("afi", "safi", "nh"), [
    (99, 1, "c0000201"),             # unknown AFI, SAFI 1: used to reset the session
    (99, 1, ""),
    (99, 128, "c0000201"),           # unknown AFI, other SAFI: always ignored
    (2, 1, "c0000201"),              # IPv6 unicast, not negotiated here
    (25, 65, "00" * 7),
])
def test_mp_reach_of_a_family_not_negotiated_is_ignored(afi: int, safi: int, nh: str) -> None:
    mp = attr(0x80, 14, struct.pack("!HBB", afi, safi, len(h(nh))) + h(nh) + b"\x00" + h("18 0a0000"))
    upd = decode(mp + BASE, families=[IPV4_UNICAST])
    assert_announced(upd)
    assert list(upd.announce) == [IPV4_UNICAST]
    assert any("not negotiated: ignored" in note for note in upd.notes), upd.notes


def test_mp_reach_next_hop_of_a_negotiated_family_is_still_checked() -> None:
    mp = attr(0x80, 14, h("0002 01 04 c0000201 00") + n("2001:db8::/32"))
    with pytest.raises(BGPError) as info:
        decode(mp + ORIGIN + AS_PATH, nlri=b"")
    assert (info.value.code, info.value.subcode) == (ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR)


# ---- 8b: control characters in `unknown command '...'` --------------------------------------------


def test_unknown_command_log_line_escapes_control_characters(caplog: pytest.LogCaptureFixture) -> None:
    definition = types.SimpleNamespace(name="prog", encoder="text", withdraw_on_exit=None)
    def dispatch(runner: ProcessRunner, cmd: object) -> None:
        raise AssertionError(f"{cmd!r} is not a command")

    runner = ProcessRunner(definition, dispatch, routes=types.SimpleNamespace())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="fleetbgp.api"):
        runner._handle_line("fo\x00o\ufffd\x1b[31m\x7f route")
    [message] = [r.getMessage() for r in caplog.records]
    assert "unknown command 'fo\\x00o\\ufffd\\x1b'" in message, message
    for raw in ("\x00", "\ufffd", "\x1b", "\x7f"):
        assert raw not in message, message


# ---- 8c: a NOTIFICATION that arrives just before the connection breaks ---------------------------


def test_notification_before_a_broken_pipe_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        peer = make_peer()
        proto = BGPProtocol(peer, "out")
        peer.protocols.add(proto)
        await loop.create_connection(lambda: proto, "127.0.0.1", listener.getsockname()[1])
        remote, _ = await loop.sock_accept(listener)
        listener.close()
        try:
            reader = MessageReader()
            got = await loop.sock_recv(remote, 4096)
            assert [t for t, _ in reader.feed(got)] == [1]  # our OPEN
            their_open = Open(asn=65002, hold_time=90, router_id="192.0.2.2",
                              capabilities=Capabilities(families=[IPV4_UNICAST], asn4=65002))
            await loop.sock_sendall(remote, their_open.encode())
            for _ in range(100):
                if proto.state.name == "OPENCONFIRM":
                    break
                await asyncio.sleep(0.01)
            assert proto.state.name == "OPENCONFIRM"
            # The agent is slow to read: the router's Cease and its close both arrive before the
            # agent next writes. The KEEPALIVE the agent sent is unread, so the close is a reset.
            assert proto.transport is not None
            proto.transport.pause_reading()
            await loop.sock_sendall(remote, Notification(ErrCode.CEASE, CeaseSub.CONNECTION_REJECTED).encode())
            remote.shutdown(socket.SHUT_WR)
            await asyncio.sleep(0.05)
        finally:
            remote.close()
        await asyncio.sleep(0.05)
        proto._timer_fired("keepalive")  # the write that fails (EPIPE)
        await asyncio.wait_for(proto.done, 2)
        assert peer.last_notification is not None
        assert (peer.last_notification["direction"], peer.last_notification["code"],
                peer.last_notification["subcode"]) == ("received", 6, CeaseSub.CONNECTION_REJECTED)

    with caplog.at_level(logging.INFO, logger="fleetbgp.peer"):
        asyncio.run(go())
    closed = [m for m in peer_warnings(caplog) if "connection closed" in m]
    assert closed and "NOTIFICATION received: Cease/Connection Rejected" in closed[-1], closed
    assert "closed in OpenConfirm" in closed[-1]  # not in Idle, where the FSM is by then


# ---- 9: RFC 7606 7.9, 7.10: ORIGINATOR_ID and CLUSTER_LIST ----------------------------------------

ORIGINATOR_ID = attr(0x80, 9, h("c0000209"))
CLUSTER_LIST = attr(0x80, 10, h("c0000209 c000020a"))


def test_valid_route_reflection_attributes_from_ibgp_are_kept() -> None:
    upd = decode(BASE + ORIGINATOR_ID + CLUSTER_LIST, ctx=IBGP)
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].other == ((0x80, 9, h("c0000209")), (0x80, 10, h("c0000209 c000020a")))


@pytest.mark.parametrize("bad", [
    attr(0x80, 9, h("c00002")), attr(0x80, 9, h("c0000209 00")), attr(0x80, 9, b""),
    attr(0x80, 10, b""), attr(0x80, 10, h("c0000209 c0")), attr(0x80, 10, h("c00002")),
    attr(0xC0, 9, h("c0000209")), attr(0x40, 10, h("c0000209")),
], ids=["originator-3", "originator-5", "originator-0", "cluster-0", "cluster-6", "cluster-3",
        "originator-transitive", "cluster-well-known"])
def test_malformed_route_reflection_attributes_from_ibgp_are_treat_as_withdraw(bad: bytes) -> None:
    upd = decode(BASE + bad, ctx=IBGP)
    assert_withdrawn(upd)
    assert any("treated as withdrawn" in note for note in upd.notes), upd.notes


@pytest.mark.parametrize("extra", [ORIGINATOR_ID + CLUSTER_LIST, attr(0x80, 9, h("c00002")),
                                   attr(0x80, 10, b"")], ids=["valid", "originator-3", "cluster-0"])
def test_route_reflection_attributes_from_ebgp_are_discarded(extra: bytes) -> None:
    upd = decode(BASE + extra, ctx=EBGP)
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].other == ()
    assert any("from an eBGP peer discarded" in note for note in upd.notes), upd.notes


# ---- 9: RFC 5065 5: confederation segments from outside the confederation -------------------------


@pytest.mark.parametrize("path", [h("03 01 0000fde9 02 01 0000fdea"), h("04 02 0000fde9 0000fdeb"),
                                  h("02 01 0000fdea 03 01 0000fde9")],
                         ids=["confed-sequence", "confed-set", "confed-sequence-last"])
def test_confederation_segments_from_ebgp_are_treat_as_withdraw(path: bytes) -> None:
    upd = decode(ORIGIN + attr(0x40, 2, path) + NEXT_HOP, ctx=EBGP)
    assert_withdrawn(upd)
    assert any("confederation" in note for note in upd.notes), upd.notes


def test_confederation_segments_from_ibgp_are_accepted() -> None:
    path = h("03 01 0000fde9 02 01 0000fdea")
    assert_announced(decode(ORIGIN + attr(0x40, 2, path) + NEXT_HOP, ctx=IBGP))


def test_confederation_segments_from_ebgp_without_nlri_reset_as_rfc_7606_5_2_says() -> None:
    with pytest.raises(BGPError) as info:
        decode(ORIGIN + attr(0x40, 2, h("03 01 0000fde9")) + NEXT_HOP, nlri=b"")
    assert (info.value.code, info.value.subcode) == (ErrCode.UPDATE_MESSAGE, UpdateSub.MALFORMED_AS_PATH)


# ---- 9: RFC 4271 6.3: a NEXT_HOP that is not a host address --------------------------------------


@pytest.mark.parametrize("nh", ["00000000", "e0000005", "efffffff", "ffffffff"],
                         ids=["0.0.0.0", "224.0.0.5", "239.255.255.255", "255.255.255.255"])
def test_next_hop_that_is_not_a_host_address_is_treat_as_withdraw(nh: str) -> None:
    upd = decode(ORIGIN + AS_PATH + attr(0x40, 3, h(nh)))
    assert_withdrawn(upd)
    assert any("NEXT_HOP" in note for note in upd.notes), upd.notes


@pytest.mark.parametrize("nh", ["c0000201", "0a000001", "f0000001", "dfffffff"])
def test_ordinary_next_hops_are_accepted(nh: str) -> None:
    assert_announced(decode(ORIGIN + AS_PATH + attr(0x40, 3, h(nh))))


def test_bogus_next_hop_attribute_next_to_mp_reach_only_is_ignored() -> None:
    # RFC 4760 3: without IPv4 NLRI the NEXT_HOP attribute is ignored, whatever it holds.
    mp = attr(0x80, 14, h("0002 01 10 20010db8000000000000000000000001 00") + n("2001:db8::/32"))
    upd = decode(mp + ORIGIN + AS_PATH + attr(0x40, 3, h("00000000")), nlri=b"")
    assert not upd.treat_as_withdraw
    assert upd.announce[IPV6_UNICAST][1] == [n("2001:db8::/32")]


MP_V6 = "0002 01 {len:02x} {nh} 00"


@pytest.mark.parametrize("nh", ["00000000000000000000000000000000", "ff020000000000000000000000000005",
                                "ff0e0000000000000000000000000001",
                                "00000000000000000000000000000000 ff020000000000000000000000000001"],
                         ids=["::", "ff02::5", "ff0e::1", ":: + ff02::1"])
def test_mp_next_hop_that_is_not_a_host_address_is_treat_as_withdraw(nh: str) -> None:
    value = h(MP_V6.format(len=len(h(nh)), nh=nh)) + n("2001:db8::/32")
    upd = decode(attr(0x80, 14, value) + ORIGIN + AS_PATH, nlri=b"")
    assert upd.treat_as_withdraw
    assert upd.announce == {}
    assert upd.withdraw == {IPV6_UNICAST: [n("2001:db8::/32")]}


def test_bad_mp_next_hop_leaves_ipv4_routes_with_a_good_next_hop_alone() -> None:
    value = h(MP_V6.format(len=16, nh="00" * 16)) + n("2001:db8::/32")
    upd = decode(attr(0x80, 14, value) + BASE)
    assert upd.announce[IPV4_UNICAST][1] == [n("203.0.113.0/24"), n("10.0.0.0/8")]
    assert upd.withdraw == {IPV6_UNICAST: [n("2001:db8::/32")]}


def test_ipv6_link_local_next_hop_is_accepted() -> None:
    value = h(MP_V6.format(len=16, nh="fe800000000000000000000000000001")) + n("2001:db8::/32")
    upd = decode(attr(0x80, 14, value) + ORIGIN + AS_PATH, nlri=b"")
    assert upd.announce[IPV6_UNICAST][0].next_hop == "fe80::1"


# ---- found by the fuzz targets' logging contract -------------------------------------------------

def test_a_field_of_malformed_flowspec_nlri_is_one_note(caplog: pytest.LogCaptureFixture) -> None:
    # 1000 two-byte FlowSpec NLRI of an unknown component type: each is treat-as-withdraw, and they
    # were logged one line each (1000 lines for one UPDATE), outside the per-UPDATE limit.
    field = h("02 5b00") * 1000
    mp = attr(0x90, 14, h("0001 85 00 00") + field)
    with caplog.at_level(logging.WARNING):
        upd = decode(mp + ORIGIN + AS_PATH, families=[IPV4_FLOWSPEC])
    assert not caplog.records
    flow_notes = [note for note in upd.notes if "flow NLRI" in note]
    assert len(flow_notes) == 1 and flow_notes[0].startswith("1000 malformed ipv4 flow NLRI"), upd.notes
