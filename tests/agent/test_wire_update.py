"""UPDATE messages and path attributes (RFC 4271 4.3, 5; RFC 4760, 6793, 1997, 4360, 8092, 4724)."""

from __future__ import annotations

import pytest

from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import (
    AS_TRANS,
    Attributes,
    DecodeContext,
    EncodeContext,
    decode_attributes,
    encode_attributes,
    merge_as4_path,
)
from fleetbgp.wire.constants import MsgType, SegType
from fleetbgp.wire.messages import (
    MessageReader,
    decode_update,
    end_of_rib,
    frame,
    pack_announce,
    pack_withdraw,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, nlri_to_prefix

MARKER = "ff" * 16
SEQ, SET = SegType.AS_SEQUENCE, SegType.AS_SET

EBGP = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.254")
IBGP = EncodeContext(local_as=65001, peer_as=65001, next_hop_self_v4="192.0.2.254")
EBGP_OLD = EncodeContext(local_as=4200000001, peer_as=65002, asn4=False)  # toward a 2-octet speaker


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def body(message: bytes) -> bytes:
    [(msg_type, b)] = list(MessageReader(65535).feed(message))
    assert msg_type == MsgType.UPDATE
    return b


def enc(attrs: Attributes, ctx: EncodeContext = IBGP, ipv4_next_hop: bool = False) -> bytes:
    return encode_attributes(attrs, ctx, ipv4_next_hop=ipv4_next_hop)


def dec(data: bytes, asn4: bool = True, ibgp: bool = True) -> dict[str, object]:
    out = decode_attributes(data, DecodeContext(asn4=asn4, ibgp=ibgp))
    assert not out.treat_as_withdraw, out.notes
    return out.fields


# ---- byte-exact UPDATEs ------------------------------------------------------------------------

IPV4_ATTRS = Attributes.make(next_hop="192.0.2.1", med=100, communities=(0xFDE90064,),
                             ext_communities=(0x0002FDE900000064,), large_communities=((65001, 1, 2),))
IPV4_UPDATE = h(MARKER + """
    0059 02
    0000
    003c
      40 01 01 00
      40 02 06 02 01 0000fde9
      40 03 04 c0000201
      80 04 04 00000064
      c0 08 04 fde90064
      c0 10 08 0002fde900000064
      c0 20 0c 0000fde9 00000001 00000002
    18 cb0071
    08 0a
""")


def test_ipv4_update_byte_exact() -> None:
    msgs = list(pack_announce(IPV4_UNICAST, IPV4_ATTRS, [n("203.0.113.0/24"), n("10.0.0.0/8")], EBGP))
    assert msgs == [IPV4_UPDATE]


def test_ipv4_update_decodes() -> None:
    upd = decode_update(body(IPV4_UPDATE), DecodeContext(asn4=True, ibgp=False), [IPV4_UNICAST])
    assert not upd.treat_as_withdraw and upd.eor is None and upd.withdraw == {}
    attrs, items = upd.announce[IPV4_UNICAST]
    assert items == [n("203.0.113.0/24"), n("10.0.0.0/8")]
    assert attrs == IPV4_ATTRS.replace(as_path=((SEQ, (65001,)),))


IPV6_ATTRS = Attributes.make(next_hop="2001:db8::1")
IPV6_CTX = EncodeContext(local_as=65001, peer_as=65001, link_local_v6="fe80::1")
IPV6_UPDATE = h(MARKER + """
    0054 02
    0000
    003d
      80 0e 2c
         0002 01
         20 20010db8000000000000000000000001 fe800000000000000000000000000001
         00
         30 20010db80001
      40 01 01 00
      40 02 00
      40 05 04 00000064
""")


def test_ipv6_update_byte_exact_with_global_and_link_local_next_hop() -> None:
    # iBGP: empty AS_PATH, LOCAL_PREF 100 by default; MP_REACH_NLRI first (RFC 7606 5.1);
    # 32-byte next hop: global then link-local (RFC 2545 3).
    msgs = list(pack_announce(IPV6_UNICAST, IPV6_ATTRS, [n("2001:db8:1::/48")], IPV6_CTX))
    assert msgs == [IPV6_UPDATE]


def test_ipv6_update_decodes() -> None:
    upd = decode_update(body(IPV6_UPDATE), DecodeContext(asn4=True, ibgp=True), [IPV6_UNICAST])
    attrs, items = upd.announce[IPV6_UNICAST]
    assert items == [n("2001:db8:1::/48")]
    assert attrs == Attributes.make(next_hop="2001:db8::1", local_pref=100)


def test_ipv6_next_hop_16_bytes_without_link_local() -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v6="2001:db8::ff")
    [msg] = pack_announce(IPV6_UNICAST, Attributes.make(next_hop="self"), [n("2001:db8::/32")], ctx)
    assert h("800e 1a 0002 01 10 20010db80000000000000000000000ff 00 20 20010db8") in msg
    upd = decode_update(body(msg), DecodeContext(), [IPV6_UNICAST])
    assert upd.announce[IPV6_UNICAST][0].next_hop == "2001:db8::ff"


def test_ipv6_session_over_link_local_only() -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v6="fe80::1", link_local_v6="fe80::1")
    [msg] = pack_announce(IPV6_UNICAST, Attributes.make(next_hop="self"), [n("2001:db8::/32")], ctx)
    ll = "fe800000000000000000000000000001"
    assert h("0002 01 20" + ll + ll + "00") in msg
    upd = decode_update(body(msg), DecodeContext(), [IPV6_UNICAST])
    assert upd.announce[IPV6_UNICAST][0].next_hop == "fe80::1"


def test_decode_32_byte_next_hop_with_unspecified_global() -> None:
    mp = h("0002 01 20" + "00" * 16 + "fe800000000000000000000000000002" + "00 20 20010db8")
    attrs = h("800e") + bytes((len(mp),)) + mp + h("40 01 01 00 40 02 00")
    upd = decode_update(h("0000") + len(attrs).to_bytes(2, "big") + attrs, DecodeContext(), [IPV6_UNICAST])
    assert upd.announce[IPV6_UNICAST][0].next_hop == "fe80::2"


def test_next_hop_self_without_local_address_is_an_error() -> None:
    with pytest.raises(ValueError, match="next-hop self"):
        enc(Attributes.make(next_hop="self"), EncodeContext(local_as=1, peer_as=2), ipv4_next_hop=True)


# ---- End-of-RIB (RFC 4724 2) -------------------------------------------------------------------


def test_end_of_rib_ipv4_is_the_empty_update() -> None:
    assert end_of_rib(IPV4_UNICAST) == h(MARKER + "0017 02 0000 0000")
    assert decode_update(h("0000 0000"), DecodeContext()).eor == IPV4_UNICAST


def test_end_of_rib_ipv6_is_an_empty_mp_unreach() -> None:
    assert end_of_rib(IPV6_UNICAST) == h(MARKER + "001d 02 0000 0006 800f 03 0002 01")
    assert decode_update(h("0000 0006 800f 03 0002 01"), DecodeContext()).eor == IPV6_UNICAST


def test_end_of_rib_with_extended_length_flag() -> None:
    assert decode_update(h("0000 0007 900f 0003 0002 01"), DecodeContext()).eor == IPV6_UNICAST


def test_empty_mp_unreach_with_other_attributes_is_not_end_of_rib() -> None:
    upd = decode_update(h("0000 000a 800f 03 0002 01 40 01 01 00"), DecodeContext())
    assert upd.eor is None and upd.withdraw == {} and upd.announce == {}


def test_real_withdrawal_is_not_end_of_rib() -> None:
    upd = decode_update(h("0004 18 0a0000 0000"), DecodeContext())
    assert upd.eor is None and upd.withdraw == {IPV4_UNICAST: [n("10.0.0.0/24")]}
    upd = decode_update(h("0000 000b 800f 08 0002 01 20 20010db8"), DecodeContext(), [IPV6_UNICAST])
    assert upd.eor is None and upd.withdraw == {IPV6_UNICAST: [n("2001:db8::/32")]}


# ---- each attribute ------------------------------------------------------------------------------


@pytest.mark.parametrize(("origin", "byte"), [(0, "00"), (1, "01"), (2, "02")])
def test_origin(origin: int, byte: str) -> None:
    raw = enc(Attributes.make(origin=origin))
    assert raw.startswith(h("40 01 01" + byte))
    assert dec(raw)["origin"] == origin


def test_as_path_sequence_and_set_4_octet() -> None:
    attrs = Attributes.make(as_path=((SEQ, (65010, 4200000000)), (SET, (1, 2, 3))))
    raw = enc(attrs)
    assert raw == h("40 01 01 00  40 02 18 02 02 0000fdf2 fa56ea00 01 03 00000001 00000002 00000003"
                    "  40 05 04 00000064")
    assert dec(raw)["as_path"] == attrs.as_path


def test_as_path_2_octet_encoding() -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65001, asn4=False)
    raw = enc(Attributes.make(as_path=((SEQ, (65010, 65020)),)), ctx)
    assert h("40 02 06 02 02 fdf2 fdfc") in raw
    assert dec(raw, asn4=False)["as_path"] == ((SEQ, (65010, 65020)),)


def test_long_as_sequence_is_split_into_segments_of_255() -> None:
    path = tuple(range(1, 301))
    raw = enc(Attributes.make(as_path=((SEQ, path),)))
    # 2 + 255*4 + 2 + 45*4 = 1204 bytes: extended length.
    assert raw[4:8] == h("50 02 04b4")
    assert raw[8:10] == h("02 ff") and raw[10 + 255 * 4:12 + 255 * 4] == h("02 2d")
    assert dec(raw)["as_path"] == ((SEQ, path[:255]), (SEQ, path[255:]))


def test_ebgp_gets_the_local_as_only_when_no_path_is_configured() -> None:
    assert dec(enc(Attributes.make(), EBGP), ibgp=False)["as_path"] == ((SEQ, (65001,)),)


def test_a_configured_path_goes_out_as_written_as_exabgp_sends_it() -> None:
    # ExaBGP 5.0.15 sends `as-path [ 65001 64999 ]` as 65001 64999; prepending our AS again made
    # it 65001 65001 64999 and moved traffic for users who prepend by hand.
    for path in (((SEQ, (65001, 64999)),), ((SEQ, (65001, 65001, 65001)),), ((SEQ, (65010,)),),
                 ((SET, (65010, 65011)),), ((SEQ, tuple(range(1, 256))),)):
        assert dec(enc(Attributes.make(as_path=path), EBGP), ibgp=False)["as_path"] == path


def test_ibgp_sends_the_path_unchanged() -> None:
    assert dec(enc(Attributes.make(as_path=((SEQ, (65010,)),))))["as_path"] == ((SEQ, (65010,)),)
    assert h("40 02 00") in enc(Attributes.make())


def test_next_hop() -> None:
    raw = enc(Attributes.make(next_hop="198.51.100.7"), ipv4_next_hop=True)
    assert h("40 03 04 c6336407") in raw
    assert dec(raw)["next_hop"] == "198.51.100.7"
    raw = enc(Attributes.make(next_hop="self"), EBGP, ipv4_next_hop=True)
    assert h("40 03 04 c00002fe") in raw


@pytest.mark.parametrize("med", [0, 100, 0xFFFFFFFF])
def test_med(med: int) -> None:
    raw = enc(Attributes.make(med=med), EBGP)
    assert h("80 04 04") + med.to_bytes(4, "big") in raw
    assert dec(raw, ibgp=False)["med"] == med


def test_local_pref_only_on_ibgp_with_default_100() -> None:
    assert h("40 05 04 00000064") in enc(Attributes.make())
    assert h("40 05 04 000000c8") in enc(Attributes.make(local_pref=200))
    assert b"\x40\x05" not in enc(Attributes.make(local_pref=200), EBGP)
    assert dec(enc(Attributes.make(local_pref=200)))["local_pref"] == 200


def test_local_pref_from_an_ebgp_peer_is_discarded() -> None:
    out = decode_attributes(h("40 01 01 00 40 02 00 40 05 04 000000c8"), DecodeContext(ibgp=False))
    assert not out.treat_as_withdraw and "local_pref" not in out.fields


def test_atomic_aggregate_and_aggregator() -> None:
    attrs = Attributes.make(atomic_aggregate=True, aggregator=(4200000002, "192.0.2.9"))
    raw = enc(attrs)
    assert h("40 06 00  c0 07 08 fa56ea02 c0000209") in raw
    f = dec(raw)
    assert f["atomic_aggregate"] is True and f["aggregator"] == (4200000002, "192.0.2.9")


def test_communities_extended_and_large_go_out_in_ascending_order_as_exabgp_sends_them() -> None:
    # ExaBGP's qa/encoding conf-new-v4: community [ 30740:30740 30740:0 ] is sent 30740:0 first
    attrs = Attributes.make(communities=(0xFFFFFF01, 0xFDE90064),
                            ext_communities=(0x8006000000000000, 0x0002FDE900000064),
                            large_communities=((4200000000, 1, 2), (65001, 0, 0)))
    raw = enc(attrs)
    assert h("c0 08 08 fde90064 ffffff01") in raw
    assert h("c0 10 10 0002fde900000064 8006000000000000") in raw
    assert h("c0 20 18 0000fde9 00000000 00000000 fa56ea00 00000001 00000002") in raw
    f = dec(raw)
    assert f["communities"] == tuple(sorted(attrs.communities))
    assert f["ext_communities"] == tuple(sorted(attrs.ext_communities))
    assert f["large_communities"] == tuple(sorted(attrs.large_communities))


def test_attributes_go_out_in_ascending_type_order() -> None:
    attrs = Attributes.make(next_hop="192.0.2.1", med=1, atomic_aggregate=True, aggregator=(1, "1.1.1.1"),
                            communities=(1,), ext_communities=(1,), large_communities=((1, 2, 3),),
                            other=((0xC0, 99, b"z"), (0xC0, 20, b"y"), (0xC0, 40, b"x")))
    raw = enc(attrs, ipv4_next_hop=True)
    codes = []
    pos = 0
    while pos < len(raw):
        codes.append(raw[pos + 1])
        pos += (4 + int.from_bytes(raw[pos + 2:pos + 4], "big")) if raw[pos] & 0x10 else 3 + raw[pos + 2]
    assert codes == [1, 2, 3, 4, 5, 6, 7, 8, 16, 20, 32, 40, 99]


def test_extended_length_flag_above_255_bytes_only() -> None:
    raw = enc(Attributes.make(communities=tuple(range(63))))  # 252 bytes
    assert h("c0 08 fc") in raw
    raw = enc(Attributes.make(communities=tuple(range(64))))  # 256 bytes
    assert h("d0 08 0100 00000000 00000001") in raw
    assert dec(raw)["communities"] == tuple(range(64))


def test_extended_length_flag_accepted_on_short_attributes() -> None:
    assert dec(h("50 01 0001 00  50 02 0000"))["origin"] == 0


# ---- unknown attributes (RFC 4271 5, 9.1.2.2) -------------------------------------------------


def test_unknown_optional_transitive_passed_on_with_partial_bit() -> None:
    f = dec(h("40 01 01 00 40 02 00 c0 63 03 78797a"))
    assert f["other"] == ((0xC0, 99, b"xyz"),)
    raw = enc(Attributes.make(other=f["other"]), EBGP)  # type: ignore[arg-type]
    assert raw.endswith(h("e0 63 03 78797a"))


def test_unknown_optional_transitive_already_partial_stays_partial() -> None:
    f = dec(h("e0 63 01 78"))
    assert f["other"] == ((0xE0, 99, b"x"),)
    assert enc(Attributes.make(other=f["other"])).endswith(h("e0 63 01 78"))  # type: ignore[arg-type]


def test_unknown_optional_non_transitive_is_dropped() -> None:
    f = dec(h("80 62 02 6162"))
    assert f["other"] == ((0x80, 98, b"ab"),)  # kept for display, never passed on
    assert enc(Attributes.make(other=f["other"]), EBGP) == enc(Attributes.make(), EBGP)  # type: ignore[arg-type]
    assert enc(Attributes.make(other=f["other"])) == enc(Attributes.make())  # type: ignore[arg-type]


def test_unknown_attribute_with_extended_length_is_kept_as_its_value() -> None:
    f = dec(h("d0 63 0104") + b"v" * 260)
    assert f["other"] == ((0xC0, 99, b"v" * 260),)
    assert enc(Attributes.make(other=f["other"])).endswith(h("f0 63 0104") + b"v" * 260)  # type: ignore[arg-type]


# ---- 4-octet AS toward and from a 2-octet speaker (RFC 6793) ----------------------------------


def test_as4_path_and_as4_aggregator_toward_an_old_speaker() -> None:
    attrs = Attributes.make(as_path=((SEQ, (65010, 4200000005)), (SET, (4200000006, 7))),
                            aggregator=(4200000002, "192.0.2.9"))
    raw = enc(attrs, EBGP_OLD)
    # AS_PATH: every big AS becomes AS_TRANS (23456 = 0x5ba0).
    assert h("40 02 0c 02 02 fdf2 5ba0 01 02 5ba0 0007") in raw
    assert h("c0 07 06 5ba0 c0000209") in raw
    assert h("c0 11 14 02 02 0000fdf2 fa56ea05 01 02 fa56ea06 00000007") in raw
    assert h("c0 12 08 fa56ea02 c0000209") in raw


def test_no_as4_attributes_when_every_as_fits_in_2_octets() -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65002, asn4=False)
    raw = enc(Attributes.make(as_path=((SEQ, (65010,)),), aggregator=(65003, "192.0.2.9")), ctx)
    assert b"\xc0\x11" not in raw and b"\xc0\x12" not in raw
    assert h("c0 07 06 fdeb c0000209") in raw


def test_as4_path_excludes_confederation_segments() -> None:
    ctx = EncodeContext(local_as=4200000001, peer_as=4200000001, asn4=False)
    raw = enc(Attributes.make(as_path=((3, (64512,)), (SEQ, (4200000005,)))), ctx)
    assert h("c0 11 06 02 01 fa56ea05") in raw


def test_round_trip_through_an_old_speaker_restores_the_path() -> None:
    attrs = Attributes.make(as_path=((SEQ, (65010, 4200000005)), (SET, (4200000006, 7))),
                            aggregator=(4200000002, "192.0.2.9"))
    f = dec(enc(attrs, EBGP_OLD), asn4=False, ibgp=False)
    assert f["as_path"] == ((SEQ, (65010, 4200000005)), (SET, (4200000006, 7)))
    assert f["aggregator"] == (4200000002, "192.0.2.9")


def test_merge_when_the_old_speaker_prepended_more() -> None:
    # An OLD speaker in the middle prepended 65002 (RFC 6793 4.2.3): take the extra leading ASes
    # from AS_PATH, the rest from AS4_PATH.
    as_path = ((SEQ, (65002, AS_TRANS, AS_TRANS, 65010)),)
    as4_path = ((SEQ, (4200000001, 4200000002, 65010)),)
    assert merge_as4_path(as_path, as4_path) == ((SEQ, (65002, 4200000001, 4200000002, 65010)),)
    raw = h("40 02 0a 02 04 fdea 5ba0 5ba0 fdf2  c0 11 0e 02 03 fa56ea01 fa56ea02 0000fdf2")
    assert dec(raw, asn4=False)["as_path"] == ((SEQ, (65002, 4200000001, 4200000002, 65010)),)


def test_merge_counts_an_as_set_as_one() -> None:
    as_path = ((SEQ, (65002, AS_TRANS)), (SET, (AS_TRANS, 5)))
    as4_path = ((SEQ, (4200000001,)), (SET, (4200000002, 5)))
    assert merge_as4_path(as_path, as4_path) == ((SEQ, (65002, 4200000001)), (SET, (4200000002, 5)))


def test_as4_path_longer_than_as_path_is_ignored() -> None:
    as_path = ((SEQ, (65002,)),)
    assert merge_as4_path(as_path, ((SEQ, (4200000001, 4200000002)),)) == as_path


def test_real_2_octet_aggregator_means_as4_attributes_are_ignored() -> None:
    raw = h("40 02 04 02 01 5ba0  c0 07 06 fdea c0000209  c0 11 06 02 01 fa56ea01  c0 12 08 fa56ea02 c0000209")
    f = dec(raw, asn4=False)
    assert f["as_path"] == ((SEQ, (AS_TRANS,)),)
    assert f["aggregator"] == (65002, "192.0.2.9")


def test_as_trans_aggregator_takes_as4_aggregator() -> None:
    raw = h("40 02 04 02 01 5ba0  c0 07 06 5ba0 c0000209  c0 11 06 02 01 fa56ea01  c0 12 08 fa56ea02 c0000209")
    f = dec(raw, asn4=False)
    assert f["as_path"] == ((SEQ, (4200000001,)),)
    assert f["aggregator"] == (4200000002, "192.0.2.9")


def test_as4_attributes_from_a_new_speaker_are_discarded() -> None:
    out = decode_attributes(h("40 02 06 02 01 0000fde9  c0 11 06 02 01 fa56ea01  c0 12 08 fa56ea02 c0000209"),
                            DecodeContext(asn4=True))
    assert out.fields["as_path"] == ((SEQ, (65001,)),) and "aggregator" not in out.fields
    assert not out.treat_as_withdraw


# ---- whole UPDATEs: withdrawals, several families ---------------------------------------------


def test_ipv4_withdraw_vector() -> None:
    msgs = list(pack_withdraw(IPV4_UNICAST, [n("10.0.0.0/8"), n("192.0.2.128/25")], EBGP))
    assert msgs == [h(MARKER + "001e 02 0007 080a 19c0000280 0000")]
    upd = decode_update(body(msgs[0]), DecodeContext())
    assert upd.withdraw == {IPV4_UNICAST: [n("10.0.0.0/8"), n("192.0.2.128/25")]} and upd.announce == {}


def test_ipv6_withdraw_vector() -> None:
    msgs = list(pack_withdraw(IPV6_UNICAST, [n("2001:db8::/32"), n("::/0")], EBGP))
    assert msgs == [h(MARKER + "0023 02 0000 000c 800f 09 0002 01 20 20010db8 00")]
    upd = decode_update(body(msgs[0]), DecodeContext(), [IPV6_UNICAST])
    assert upd.withdraw == {IPV6_UNICAST: [n("2001:db8::/32"), n("::/0")]}


def test_update_with_withdrawals_and_announcements_of_two_families() -> None:
    mp_reach = h("800e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8")
    mp_unreach = h("800f 0a 0002 01 30 20010db80009")
    attrs = mp_unreach + mp_reach + h("40 01 01 02 40 02 00 40 03 04 c0000201")
    b = h("0002 08 0b") + len(attrs).to_bytes(2, "big") + attrs + h("18 c00002")
    upd = decode_update(b, DecodeContext(ibgp=True), [IPV4_UNICAST, IPV6_UNICAST])
    assert upd.withdraw == {IPV4_UNICAST: [n("11.0.0.0/8")], IPV6_UNICAST: [n("2001:db8:9::/48")]}
    a4, i4 = upd.announce[IPV4_UNICAST]
    a6, i6 = upd.announce[IPV6_UNICAST]
    assert (i4, i6) == ([n("192.0.2.0/24")], [n("2001:db8::/32")])
    assert (a4.next_hop, a6.next_hop, a4.origin, a6.origin) == ("192.0.2.1", "2001:db8::1", 2, 2)


def test_family_not_negotiated_is_ignored_with_a_note() -> None:
    mp_reach = h("800e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8")
    attrs = mp_reach + h("40 01 01 00 40 02 00")
    upd = decode_update(h("0000") + len(attrs).to_bytes(2, "big") + attrs, DecodeContext(), [IPV4_UNICAST])
    assert upd.announce == {} and any("not negotiated" in note for note in upd.notes)


def test_nlri_with_bits_set_past_the_prefix_length_is_normalised() -> None:
    upd = decode_update(h("0004 17 0a0001 0000"), DecodeContext())
    assert upd.withdraw == {IPV4_UNICAST: [n("10.0.0.0/23")]}


def test_prefix_helpers() -> None:
    assert prefix_to_nlri("10.0.0.0/24") == (IPV4_UNICAST, h("18 0a0000"))
    assert prefix_to_nlri("0.0.0.0/0") == (IPV4_UNICAST, h("00"))
    assert prefix_to_nlri("192.0.2.1") == (IPV4_UNICAST, h("20 c0000201"))
    assert prefix_to_nlri("2001:db8::/33") == (IPV6_UNICAST, h("21 20010db800"))
    assert nlri_to_prefix(IPV6_UNICAST, h("21 20010db800")) == "2001:db8::/33"
    assert nlri_to_prefix(IPV4_UNICAST, h("19 c0000280")) == "192.0.2.128/25"
    for bad in ("10.0.0.1/24", "10.0.0.0/33", "300.0.0.0/8", "2001:db8::1/32", "x"):
        with pytest.raises(ValueError):
            prefix_to_nlri(bad)


def test_flowspec_family_has_no_next_hop_on_the_wire() -> None:
    # Flowspec NLRI are opaque here; only the MP_REACH framing is checked (RFC 8955 4: nh length 0).
    [msg] = pack_announce(IPV4_FLOWSPEC, Attributes.make(), [h("05 0118 0a0000")], EBGP)
    assert h("800e 0b 0001 85 00 00 05 0118 0a0000") in msg


def test_frame_of_an_update() -> None:
    assert frame(MsgType.UPDATE, h("00000000")) == end_of_rib(IPV4_UNICAST)
