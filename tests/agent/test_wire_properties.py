"""Property tests (hypothesis): decode(encode(x)) == x, and no input makes a decoder raise anything
but BGPError (which the FSM turns into a NOTIFICATION)."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fleetbgp.fsm import Close, Connection, Expectations, Send, State
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import (
    Attributes,
    DecodeContext,
    EncodeContext,
    decode_attributes,
    encode_attributes,
)
from fleetbgp.wire.constants import AS_TRANS, MsgType, SegType
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import (
    KEEPALIVE,
    Capabilities,
    MessageReader,
    Notification,
    Open,
    RouteRefresh,
    decode_update,
    end_of_rib,
    frame,
    pack_announce,
    pack_withdraw,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, Family

FAMS = [IPV4_UNICAST, IPV6_UNICAST]
KNOWN_ATTRS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32}
KNOWN_CAPS = {1, 2, 6, 64, 65, 69, 70, 128}

# ---- strategies --------------------------------------------------------------------------------

u32 = st.integers(min_value=0, max_value=2**32 - 1)
asn = st.integers(min_value=1, max_value=2**32 - 1).filter(lambda a: a != AS_TRANS)
asn2 = st.integers(min_value=1, max_value=0xFFFF).filter(lambda a: a != AS_TRANS)
v4 = st.integers(min_value=1, max_value=2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
# A next hop must be a host address (RFC 4271 6.3): no multicast, no limited broadcast.
v4_next_hop = st.integers(min_value=1, max_value=0xDFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))
v6_global = st.integers(min_value=0x2000 << 112, max_value=(0x3FFF << 112) | (2**112 - 1)).map(
    lambda i: str(ipaddress.IPv6Address(i)))


def segments(asns: st.SearchStrategy[int], types: list[int]) -> st.SearchStrategy[Any]:
    seg = st.tuples(st.sampled_from(types), st.lists(asns, min_size=1, max_size=20).map(tuple))
    return st.lists(seg, max_size=5).map(tuple)


def other_attrs() -> st.SearchStrategy[Any]:
    codes = st.lists(st.integers(min_value=11, max_value=255).filter(lambda c: c not in KNOWN_ATTRS),
                     unique=True, max_size=3).map(sorted)
    return codes.flatmap(lambda cs: st.tuples(*[
        st.tuples(st.just(0xE0), st.just(c), st.binary(max_size=300)) for c in cs]))


@st.composite
def attribute_sets(draw: st.DrawFn, four_octet: bool = True) -> Attributes:
    if four_octet:
        path = draw(segments(asn, [1, 2, 3, 4]))
        aggregator = draw(st.none() | st.tuples(asn, v4))
    else:
        path = draw(segments(asn, [1, 2]))
        # RFC 6793 4.2.3: a real 2-octet AGGREGATOR makes the receiver ignore AS4_PATH, so only
        # an aggregator that needs AS4_AGGREGATOR round-trips with any path.
        aggregator = draw(st.none() | st.tuples(st.integers(min_value=0x10000, max_value=2**32 - 1), v4))
    return Attributes.make(
        origin=draw(st.integers(0, 2)),
        as_path=path,
        next_hop=draw(v4_next_hop),
        med=draw(st.none() | u32),
        local_pref=draw(u32),
        atomic_aggregate=draw(st.booleans()),
        aggregator=aggregator,
        communities=tuple(draw(st.lists(u32, max_size=70))),
        ext_communities=tuple(draw(st.lists(st.integers(0, 2**64 - 1), max_size=10))),
        large_communities=tuple(draw(st.lists(st.tuples(u32, u32, u32), max_size=10))),
        other=draw(other_attrs()),
    )


def prefixes(family: Family) -> st.SearchStrategy[bytes]:
    bits = 32 if family == IPV4_UNICAST else 128

    def build(value: int, plen: int) -> bytes:
        net = value >> (bits - plen) << (bits - plen) if plen else 0
        text = str(ipaddress.IPv4Address(net) if bits == 32 else ipaddress.IPv6Address(net))
        return prefix_to_nlri(f"{text}/{plen}")[1]

    return st.builds(build, st.integers(0, 2**bits - 1), st.integers(0, bits))


# ---- attributes --------------------------------------------------------------------------------


def sent(attrs: Attributes) -> Attributes:
    """The attributes as they go on the wire: community lists in ascending order (as ExaBGP)."""
    return attrs.replace(communities=tuple(sorted(attrs.communities)),
                         ext_communities=tuple(sorted(attrs.ext_communities)),
                         large_communities=tuple(sorted(attrs.large_communities)))


@given(attribute_sets())
def test_attributes_round_trip_4_octet(attrs: Attributes) -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65001)
    raw = encode_attributes(attrs, ctx, ipv4_next_hop=True)
    out = decode_attributes(raw, DecodeContext(asn4=True, ibgp=True))
    assert not out.treat_as_withdraw, out.notes
    assert Attributes.make(**out.fields) == sent(attrs)


@given(attribute_sets(four_octet=False))
def test_attributes_round_trip_through_a_2_octet_session(attrs: Attributes) -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65001, asn4=False)
    raw = encode_attributes(attrs, ctx, ipv4_next_hop=True)
    out = decode_attributes(raw, DecodeContext(asn4=False, ibgp=True))
    assert not out.treat_as_withdraw, out.notes
    assert Attributes.make(**out.fields) == sent(attrs)


@given(attribute_sets(), asn)
def test_ebgp_sees_the_path_as_written_or_the_local_as(attrs: Attributes, local_as: int) -> None:
    # An eBGP peer refuses confederation segments (RFC 5065 5); only received paths hold them.
    attrs = attrs.replace(as_path=tuple(seg for seg in attrs.as_path if seg[0] in (1, 2)))
    ctx = EncodeContext(local_as=local_as, peer_as=local_as % 65000 + 1 if local_as != 1 else 2)
    out = decode_attributes(encode_attributes(attrs, ctx, ipv4_next_hop=True), DecodeContext(ibgp=False))
    assert out.fields["as_path"] == (attrs.as_path or ((SegType.AS_SEQUENCE, (local_as,)),))
    assert "local_pref" not in out.fields


# ---- UPDATEs and packing -------------------------------------------------------------------------


def decode_all(messages: list[bytes], max_size: int, ctx: DecodeContext) -> list[Any]:
    reader = MessageReader(max_size)
    updates = []
    for msg in messages:
        assert len(msg) <= max_size
        for msg_type, body in reader.feed(msg):
            assert msg_type == MsgType.UPDATE
            updates.append(decode_update(body, ctx, [*FAMS, IPV4_FLOWSPEC]))
    return updates


@settings(max_examples=60)
@given(attrs=attribute_sets(), items=st.lists(prefixes(IPV4_UNICAST), unique=True, max_size=2500),
       max_size=st.sampled_from([4096, 65535]))
def test_ipv4_announce_packs_every_route_once_within_the_size(attrs: Attributes, items: list[bytes],
                                                              max_size: int) -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65001, max_size=max_size)
    msgs = list(pack_announce(IPV4_UNICAST, attrs, items, ctx))
    got: list[bytes] = []
    for upd in decode_all(msgs, max_size, DecodeContext(ibgp=True)):
        a, chunk = upd.announce[IPV4_UNICAST]
        assert a == sent(attrs)
        got += chunk
    assert got == items


@settings(max_examples=60)
@given(attrs=attribute_sets(), nh=v6_global, items=st.lists(prefixes(IPV6_UNICAST), unique=True, max_size=1500),
       max_size=st.sampled_from([4096, 65535]), link_local=st.booleans())
def test_ipv6_announce_packs_every_route_once_within_the_size(attrs: Attributes, nh: str, items: list[bytes],
                                                              max_size: int, link_local: bool) -> None:
    attrs = attrs.replace(next_hop=nh)
    ctx = EncodeContext(local_as=65001, peer_as=65001, max_size=max_size,
                        link_local_v6="fe80::1" if link_local else None)
    msgs = list(pack_announce(IPV6_UNICAST, attrs, items, ctx))
    got: list[bytes] = []
    for upd in decode_all(msgs, max_size, DecodeContext(ibgp=True)):
        a, chunk = upd.announce[IPV6_UNICAST]
        assert a == sent(attrs)
        got += chunk
    assert got == items


@settings(max_examples=60)
@given(family=st.sampled_from(FAMS), data=st.data(), max_size=st.sampled_from([4096, 65535]))
def test_withdraw_packs_every_route_once_within_the_size(family: Family, data: st.DataObject,
                                                         max_size: int) -> None:
    items = data.draw(st.lists(prefixes(family), unique=True, max_size=3000))
    ctx = EncodeContext(local_as=1, peer_as=2, max_size=max_size)
    msgs = list(pack_withdraw(family, items, ctx))
    got: list[bytes] = []
    for upd in decode_all(msgs, max_size, DecodeContext()):
        assert upd.announce == {}
        got += upd.withdraw.get(family, [])
    assert got == items
    if items:
        # As few messages as the size allows: each one is full but for the last.
        per_msg = max_size - 19 - (4 if family == IPV4_UNICAST else 11)
        assert len(msgs) <= sum(len(i) for i in items) // (per_msg - 16) + 1


@given(attrs=attribute_sets())
def test_attributes_too_large_for_any_update_are_refused(attrs: Attributes) -> None:
    attrs = attrs.replace(communities=tuple(range(1100)))  # 4400 bytes of communities
    ctx = EncodeContext(local_as=65001, peer_as=65001)
    for family in FAMS:
        a = attrs if family == IPV4_UNICAST else attrs.replace(next_hop="2001:db8::1")
        try:
            list(pack_announce(family, a, [prefix_to_nlri("10.0.0.0/8" if family == IPV4_UNICAST
                                                          else "2001:db8::/32")[1]], ctx))
        except ValueError:
            continue
        raise AssertionError("an UPDATE larger than 4096 bytes was built")
    big = EncodeContext(local_as=65001, peer_as=65001, max_size=65535)
    [msg] = pack_announce(IPV4_UNICAST, attrs, [prefix_to_nlri("10.0.0.0/8")[1]], big)
    assert 4096 < len(msg) <= 65535


# ---- OPEN and capabilities -------------------------------------------------------------------------


@st.composite
def capability_sets(draw: st.DrawFn) -> Capabilities:
    fams = draw(st.lists(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST, IPV4_FLOWSPEC, Family(2, 133),
                                          Family(25, 70)]), unique=True, max_size=5))
    gr = draw(st.none() | st.integers(0, 4095))
    gr_fams = draw(st.dictionaries(st.sampled_from(fams), st.booleans())) if gr is not None and fams else {}
    unknown = draw(st.lists(st.tuples(st.integers(0, 255).filter(lambda c: c not in KNOWN_CAPS),
                                      st.binary(max_size=20)), max_size=3))
    return Capabilities(families=fams, asn4=draw(st.none() | asn), route_refresh=draw(st.booleans()),
                        enhanced_route_refresh=draw(st.booleans()), extended_message=draw(st.booleans()),
                        graceful_restart=gr, gr_restarting=draw(st.booleans()) if gr is not None else False,
                        gr_families=gr_fams, unknown=unknown,
                        # ADD-PATH: modes 1..3 (a family set to 0 is not sent, so does not come back)
                        add_path=draw(st.dictionaries(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST,
                                                                       Family(25, 70)]),
                                                      st.integers(1, 3))))


@given(capability_sets())
def test_capabilities_round_trip(caps: Capabilities) -> None:
    assert Capabilities.decode(caps.encode()) == caps


@given(caps=capability_sets(), hold=st.just(0) | st.integers(3, 65535), rid=v4, small=asn2)
def test_open_round_trip(caps: Capabilities, hold: int, rid: str, small: int) -> None:
    my_as = caps.asn4 if caps.asn4 is not None else small
    o = Open(asn=my_as, hold_time=hold, router_id=rid, capabilities=caps)
    msg = o.encode()
    assert len(msg) <= 4096
    [(msg_type, body)] = list(MessageReader().feed(msg))
    assert msg_type == MsgType.OPEN
    got = Open.decode(body)
    assert (got.asn, got.hold_time, got.router_id, got.capabilities, got.version) == (my_as, hold, rid, caps, 4)
    assert got.wire_asn == (my_as if my_as <= 0xFFFF else AS_TRANS)


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=100))
def test_notification_round_trip(code: int, subcode: int, data: bytes) -> None:
    note = Notification(code, subcode, data)
    [(msg_type, body)] = list(MessageReader().feed(note.encode()))
    assert msg_type == MsgType.NOTIFICATION and Notification.decode(body) == note


@given(st.integers(0, 65535), st.integers(0, 255), st.integers(0, 255))
def test_route_refresh_round_trip(afi: int, subtype: int, safi: int) -> None:
    rr = RouteRefresh(Family(afi, safi), subtype)
    [(msg_type, body)] = list(MessageReader().feed(rr.encode()))
    assert msg_type == MsgType.ROUTE_REFRESH and RouteRefresh.decode(body) == rr


@given(st.text(max_size=400))
def test_shutdown_message_round_trip_is_a_prefix(text: str) -> None:
    note = Notification.shutdown(text)
    if not text:
        assert note.data == b""
        return
    assert note.data[0] == len(note.data) - 1 <= 255
    got = note.shutdown_message
    assert got is not None and text.startswith(got)
    assert len(text.encode()) <= 255 or len(got.encode()) > 251


# ---- nothing but BGPError, whatever the bytes ------------------------------------------------------


def only_bgp_errors(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BGPError as err:
        assert 1 <= err.code <= 7
        assert 0 <= err.subcode <= 255


@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_random_update_bodies(body: bytes, asn4: bool, ibgp: bool) -> None:
    only_bgp_errors(decode_update, body, DecodeContext(asn4=asn4, ibgp=ibgp), FAMS)
    only_bgp_errors(decode_update, body, DecodeContext(asn4=asn4, ibgp=ibgp), None)


@given(st.binary(max_size=300))
def test_random_open_notification_refresh_bodies(body: bytes) -> None:
    only_bgp_errors(Open.decode, body)
    only_bgp_errors(Notification.decode, body)
    only_bgp_errors(RouteRefresh.decode, body)
    only_bgp_errors(Capabilities.decode, body)


@given(st.binary(max_size=300))
def test_random_bytes_into_the_reader(data: bytes) -> None:
    only_bgp_errors(lambda: list(MessageReader().feed(data)))
    only_bgp_errors(lambda: list(MessageReader().feed(b"\xff" * 16 + data)))


def _valid_messages() -> list[bytes]:
    ctx = EncodeContext(local_as=65001, peer_as=65002, link_local_v6="fe80::1", asn4=False)
    attrs = Attributes.make(next_hop="192.0.2.1", med=5, communities=(1, 2), large_communities=((1, 2, 3),),
                            as_path=((SegType.AS_SEQUENCE, (4200000000, 65010)), (SegType.AS_SET, (1, 2))),
                            aggregator=(4200000001, "192.0.2.2"), atomic_aggregate=True,
                            ext_communities=(7,), other=((0xC0, 99, b"x"),))
    return [
        *pack_announce(IPV4_UNICAST, attrs, [prefix_to_nlri("10.0.0.0/8")[1], prefix_to_nlri("192.0.2.0/25")[1]],
                       ctx),
        *pack_announce(IPV6_UNICAST, attrs.replace(next_hop="2001:db8::1"),
                       [prefix_to_nlri("2001:db8::/32")[1]], ctx),
        *pack_withdraw(IPV6_UNICAST, [prefix_to_nlri("2001:db8::/32")[1]], ctx),
        *pack_withdraw(IPV4_UNICAST, [prefix_to_nlri("10.0.0.0/8")[1]], ctx),
        end_of_rib(IPV6_UNICAST),
    ]


VALID_UPDATES = _valid_messages()
VALID_OPEN = Open(asn=4200000001, hold_time=90, router_id="10.0.0.2", capabilities=Capabilities(
    families=FAMS, asn4=4200000001, route_refresh=True, extended_message=True, graceful_restart=120,
    gr_families={IPV4_UNICAST: True})).encode()


@st.composite
def mutated(draw: st.DrawFn, messages: list[bytes]) -> bytes:
    msg = bytearray(draw(st.sampled_from(messages)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(19, max(19, len(msg) - 1)))
        if kind == "flip" and pos < len(msg):
            msg[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and pos < len(msg):
            msg[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del msg[pos:]
        elif kind == "insert":
            msg[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del msg[pos:pos + draw(st.integers(1, 8))]
    return bytes(msg)


@settings(max_examples=500)
@given(mutated(VALID_UPDATES), st.booleans())
def test_mutated_updates(msg: bytes, asn4: bool) -> None:
    only_bgp_errors(decode_update, msg[19:], DecodeContext(asn4=asn4), FAMS)
    fixed = frame(MsgType.UPDATE, msg[19:]) if len(msg) >= 19 else msg
    only_bgp_errors(lambda: [decode_update(b, DecodeContext(), FAMS) for _, b in MessageReader().feed(fixed)])


@settings(max_examples=300)
@given(mutated([VALID_OPEN]))
def test_mutated_opens(msg: bytes) -> None:
    only_bgp_errors(Open.decode, msg[19:])


# ---- the FSM turns every protocol error into NOTIFICATION + Close ------------------------------


def _established() -> Connection:
    local = Open(asn=65001, hold_time=90, router_id="10.0.0.1",
                 capabilities=Capabilities(families=FAMS, asn4=65001, route_refresh=True, extended_message=True))
    conn = Connection(local, Expectations(peer_as=4200000001, local_as=65001, local_router_id="10.0.0.1"))
    conn.start()
    conn.data_received(VALID_OPEN + KEEPALIVE)
    assert conn.state is State.ESTABLISHED
    return conn


def check_connection(conn: Connection, data: bytes) -> None:
    actions = conn.data_received(data)  # must not raise
    closes = [a for a in actions if isinstance(a, Close)]
    if closes:
        [close] = closes
        assert conn.closed and conn.state is State.IDLE
        if close.notification_received is None:
            assert close.notification_sent is not None
            sends = [a for a in actions if isinstance(a, Send)]
            assert sends[-1].data == close.notification_sent.encode()
        assert conn.data_received(KEEPALIVE) == []


@settings(max_examples=300)
@given(st.one_of(mutated([*VALID_UPDATES, KEEPALIVE, VALID_OPEN]), st.binary(max_size=200)),
       st.integers(1, 64))
def test_connection_never_raises_on_bad_input(data: bytes, step: int) -> None:
    conn = _established()
    for i in range(0, len(data), step):
        check_connection(conn, data[i:i + step])


@settings(max_examples=200)
@given(st.one_of(mutated([VALID_OPEN]), st.binary(max_size=200)))
def test_connection_in_opensent_never_raises(data: bytes) -> None:
    local = Open(asn=65001, hold_time=90, router_id="10.0.0.1", capabilities=Capabilities(asn4=65001))
    conn = Connection(local, Expectations(peer_as=4200000001, local_as=65001, local_router_id="10.0.0.1"))
    conn.start()
    check_connection(conn, data)


@given(mutated(VALID_UPDATES))
def test_prefix_lengths_never_exceed_the_family(msg: bytes) -> None:
    try:
        upd = decode_update(msg[19:], DecodeContext(), FAMS)
    except BGPError:
        return
    for fam, items in list(upd.withdraw.items()) + [(f, i) for f, (_, i) in upd.announce.items()]:
        bits = 32 if fam.afi == 1 else 128
        for item in items:
            assume(fam in FAMS)
            assert item[0] <= bits and len(item) == 1 + (item[0] + 7) // 8
