"""Revised UPDATE error handling (RFC 7606), plus RFC 4271 6.3 where RFC 7606 keeps it, RFC 7607 (AS 0)
and RFC 6793 6 (AS4_* attributes are discarded when malformed).

Three outcomes: treat-as-withdraw (the UPDATE's routes are withdrawn), attribute discard (the
attribute is dropped, the routes stay), session reset (BGPError: NOTIFICATION 3/x).
"""

from __future__ import annotations

import pytest

from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import DecodeContext
from fleetbgp.wire.constants import SegType
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import Update, decode_update
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST

SEQ = SegType.AS_SEQUENCE
FAMS = [IPV4_UNICAST, IPV6_UNICAST]
EBGP = DecodeContext(asn4=True, ibgp=False)
IBGP = DecodeContext(asn4=True, ibgp=True)
OLD = DecodeContext(asn4=False, ibgp=False)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return bytes((flags, code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, code, len(value))) + value


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, h("02 01 0000fdea"))
NEXT_HOP = attr(0x40, 3, h("c0000201"))
BASE = ORIGIN + AS_PATH + NEXT_HOP
NLRI = n("203.0.113.0/24") + n("10.0.0.0/8")
MP_REACH = attr(0x80, 14, h("0002 01 10 20010db8000000000000000000000001 00") + n("2001:db8::/32"))


def update(attrs: bytes, nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    return len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri


def decode(attrs: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"", ctx: DecodeContext = EBGP) -> Update:
    return decode_update(update(attrs, nlri, withdrawn), ctx, FAMS)


def reset(attrs: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"", ctx: DecodeContext = EBGP) -> BGPError:
    with pytest.raises(BGPError) as info:
        decode(attrs, nlri, withdrawn, ctx)
    assert info.value.code == 3  # RFC 7606 3(a): UPDATE Message Error
    return info.value


def assert_withdrawn(upd: Update) -> None:
    assert upd.treat_as_withdraw
    assert upd.announce == {}
    assert upd.withdraw[IPV4_UNICAST] == [n("203.0.113.0/24"), n("10.0.0.0/8")]


def assert_announced(upd: Update) -> None:
    assert not upd.treat_as_withdraw
    assert upd.announce[IPV4_UNICAST][1] == [n("203.0.113.0/24"), n("10.0.0.0/8")]


def test_valid_update_is_announced() -> None:
    upd = decode(BASE)
    assert_announced(upd)
    assert upd.notes == []


# ---- treat-as-withdraw (RFC 7606 3(c), 3(d), 3(e), 7.x) ----------------------------------------

TREAT_AS_WITHDRAW = {
    "ORIGIN length 2": attr(0x40, 1, b"\x00\x00") + AS_PATH + NEXT_HOP,
    "ORIGIN length 0": attr(0x40, 1, b"") + AS_PATH + NEXT_HOP,
    "ORIGIN value 3": attr(0x40, 1, b"\x03") + AS_PATH + NEXT_HOP,
    "ORIGIN optional flag": attr(0xC0, 1, b"\x00") + AS_PATH + NEXT_HOP,
    "AS_PATH unknown segment type": ORIGIN + attr(0x40, 2, h("05 01 0000fdea")) + NEXT_HOP,
    "AS_PATH zero-length segment": ORIGIN + attr(0x40, 2, h("02 00")) + NEXT_HOP,
    "AS_PATH segment overrun": ORIGIN + attr(0x40, 2, h("02 02 0000fdea")) + NEXT_HOP,
    "AS_PATH segment underrun": ORIGIN + attr(0x40, 2, h("02 01 0000fdea 00")) + NEXT_HOP,
    "AS_PATH with AS 0 (RFC 7607)": ORIGIN + attr(0x40, 2, h("02 02 0000fdea 00000000")) + NEXT_HOP,
    "AS_PATH non-transitive": ORIGIN + attr(0x00, 2, h("02 01 0000fdea")) + NEXT_HOP,
    "NEXT_HOP length 5": ORIGIN + AS_PATH + attr(0x40, 3, h("c000020100")),
    "NEXT_HOP length 0": ORIGIN + AS_PATH + attr(0x40, 3, b""),
    "NEXT_HOP optional": ORIGIN + AS_PATH + attr(0xC0, 3, h("c0000201")),
    "MED length 3": BASE + attr(0x80, 4, h("000064")),
    "MED length 0": BASE + attr(0x80, 4, b""),
    "MED transitive": BASE + attr(0xC0, 4, h("00000064")),
    "COMMUNITIES length 5": BASE + attr(0xC0, 8, h("fde9006401")),
    "COMMUNITIES length 0": BASE + attr(0xC0, 8, b""),
    "COMMUNITIES non-transitive": BASE + attr(0x80, 8, h("fde90064")),
    "EXTENDED_COMMUNITIES length 7": BASE + attr(0xC0, 16, h("0002fde9000000")),
    "EXTENDED_COMMUNITIES length 0": BASE + attr(0xC0, 16, b""),
    "LARGE_COMMUNITIES length 11": BASE + attr(0xC0, 32, h("0000fde9 00000001 000000")),
    "LARGE_COMMUNITIES length 0": BASE + attr(0xC0, 32, b""),
    "missing ORIGIN": AS_PATH + NEXT_HOP,
    "missing AS_PATH": ORIGIN + NEXT_HOP,
    "missing NEXT_HOP": ORIGIN + AS_PATH,
    "no attributes at all": b"",
    "attribute overruns the field": BASE + h("80 04 08 00000064"),
    "attribute header truncated": BASE + h("80 04"),
    "extended attribute header truncated": BASE + h("90 04 00"),
}


@pytest.mark.parametrize("attrs", TREAT_AS_WITHDRAW.values(), ids=TREAT_AS_WITHDRAW.keys())
def test_treat_as_withdraw(attrs: bytes) -> None:
    upd = decode(attrs)
    assert_withdrawn(upd)
    assert upd.notes


def test_local_pref_malformed_from_ibgp_is_treat_as_withdraw() -> None:
    assert_withdrawn(decode(BASE + attr(0x40, 5, h("000064")), ctx=IBGP))
    assert_withdrawn(decode(BASE + attr(0xC0, 5, h("00000064")), ctx=IBGP))
    upd = decode(BASE + attr(0x40, 5, h("00000064")), ctx=IBGP)
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].local_pref == 100


@pytest.mark.parametrize("value", [h("000064"), h("00000064"), b""])
@pytest.mark.parametrize("flags", [0x40, 0xC0])
def test_local_pref_from_ebgp_is_always_discarded(value: bytes, flags: int) -> None:
    # RFC 7606 7.5: from an external neighbor LOCAL_PREF is discarded, malformed or not.
    upd = decode(BASE + attr(flags, 5, value), ctx=EBGP)
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].local_pref is None


def test_treat_as_withdraw_covers_mp_reach_nlri_too() -> None:
    upd = decode(MP_REACH + ORIGIN + attr(0x40, 2, h("02 00")) + NEXT_HOP)
    assert_withdrawn(upd)
    assert upd.withdraw[IPV6_UNICAST] == [n("2001:db8::/32")]


def test_mp_reach_needs_no_next_hop_attribute() -> None:
    upd = decode(MP_REACH + ORIGIN + AS_PATH, nlri=b"")
    assert not upd.treat_as_withdraw
    assert upd.announce[IPV6_UNICAST][1] == [n("2001:db8::/32")]


def test_mp_reach_without_origin_is_treat_as_withdraw() -> None:
    upd = decode(MP_REACH + AS_PATH, nlri=b"")
    assert upd.treat_as_withdraw and upd.withdraw == {IPV6_UNICAST: [n("2001:db8::/32")]}


def test_withdrawals_survive_treat_as_withdraw() -> None:
    upd = decode(ORIGIN + AS_PATH, withdrawn=n("198.51.100.0/24"))
    assert upd.withdraw[IPV4_UNICAST] == [n("198.51.100.0/24"), n("203.0.113.0/24"), n("10.0.0.0/8")]


# ---- attribute discard (RFC 7606 3(f), 7.6, 7.7; RFC 6793 6; RFC 7607) ---------------------------

DISCARD = {
    "ATOMIC_AGGREGATE length 1": (attr(0x40, 6, b"\x00"), "atomic_aggregate"),
    "ATOMIC_AGGREGATE optional": (attr(0xC0, 6, b""), "atomic_aggregate"),
    "AGGREGATOR length 7": (attr(0xC0, 7, h("0000fdea c00002")), "aggregator"),
    "AGGREGATOR length 6 from a 4-octet speaker": (attr(0xC0, 7, h("fdea c0000209")), "aggregator"),
    "AGGREGATOR non-transitive": (attr(0x80, 7, h("0000fdea c0000209")), "aggregator"),
    "AGGREGATOR AS 0": (attr(0xC0, 7, h("00000000 c0000209")), "aggregator"),
}


@pytest.mark.parametrize(("extra", "field"), DISCARD.values(), ids=DISCARD.keys())
def test_attribute_discard(extra: bytes, field: str) -> None:
    upd = decode(BASE + extra)
    assert_announced(upd)
    attrs = upd.announce[IPV4_UNICAST][0]
    assert getattr(attrs, field) in (None, False)
    assert upd.notes


OLD_BASE = ORIGIN + attr(0x40, 2, h("02 02 fdea 5ba0")) + NEXT_HOP

AS4_DISCARD = {
    "AS4_PATH overrun": attr(0xC0, 17, h("02 02 fa56ea01")),
    "AS4_PATH zero-length segment": attr(0xC0, 17, h("02 00")),
    "AS4_PATH with AS 0": attr(0xC0, 17, h("02 01 00000000")),
    "AS4_PATH confederation segment": attr(0xC0, 17, h("03 01 fa56ea01")),
    "AS4_PATH well-known flags": attr(0x40, 17, h("02 01 fa56ea01")),
    "AS4_AGGREGATOR length 6": attr(0xC0, 18, h("fdea c0000209")),
    "AS4_AGGREGATOR AS 0": attr(0xC0, 18, h("00000000 c0000209")),
}


@pytest.mark.parametrize("extra", AS4_DISCARD.values(), ids=AS4_DISCARD.keys())
def test_as4_attributes_are_discarded_when_malformed(extra: bytes) -> None:
    upd = decode(OLD_BASE + extra, ctx=OLD)
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].as_path == ((SEQ, (65002, 23456)),)
    assert upd.notes


def test_duplicate_attribute_keeps_the_first() -> None:
    upd = decode(BASE + attr(0x80, 4, h("00000064")) + attr(0x80, 4, h("000000c8")))
    assert_announced(upd)
    assert upd.announce[IPV4_UNICAST][0].med == 100
    assert any("duplicate" in note for note in upd.notes)


def test_duplicate_of_a_malformed_attribute_does_not_rescue_it() -> None:
    assert_withdrawn(decode(BASE + attr(0x80, 4, h("000064")) + attr(0x80, 4, h("000000c8"))))


def test_duplicate_unknown_attribute_keeps_the_first() -> None:
    upd = decode(BASE + attr(0xC0, 99, b"a") + attr(0xC0, 99, b"b"))
    assert upd.announce[IPV4_UNICAST][0].other == ((0xC0, 99, b"a"),)


def test_treat_as_withdraw_beats_attribute_discard() -> None:
    assert_withdrawn(decode(BASE + attr(0x40, 6, b"\x00") + attr(0x80, 4, h("0064"))))


# ---- session reset ----------------------------------------------------------------------------


def test_unrecognized_well_known_attribute() -> None:
    bad = attr(0x40, 99, b"xy")
    err = reset(BASE + bad)
    assert (err.subcode, err.data) == (2, bad)  # RFC 4271 6.3: data is the attribute


@pytest.mark.parametrize("code", [14, 15])
def test_duplicate_mp_attribute(code: int) -> None:
    one = MP_REACH if code == 14 else attr(0x80, 15, h("0002 01"))
    err = reset(one + BASE + one, nlri=b"")
    assert err.subcode == 1


@pytest.mark.parametrize("flags", [0xC0, 0x40, 0x00])
def test_mp_attribute_flags_error(flags: int) -> None:
    err = reset(attr(flags, 14, MP_REACH[3:]) + ORIGIN + AS_PATH, nlri=b"")
    assert err.subcode == 4
    err = reset(attr(flags, 15, h("0002 01 20 20010db8")) + ORIGIN + AS_PATH, nlri=b"")
    assert err.subcode == 4


def test_mp_reach_shorter_than_5() -> None:
    assert reset(attr(0x80, 14, h("0002 01 00")) + ORIGIN + AS_PATH, nlri=b"").subcode == 9


def test_mp_reach_next_hop_length_past_the_attribute() -> None:
    assert reset(attr(0x80, 14, h("0002 01 10 20010db8 00")) + ORIGIN + AS_PATH, nlri=b"").subcode == 9


@pytest.mark.parametrize("nh", ["", "c0000201", "20010db8000000000000000000000001 00", "00" * 24])
def test_mp_reach_next_hop_length_inconsistent_with_ipv6(nh: str) -> None:
    # RFC 7606 7.11: the NLRI cannot be located reliably: session reset.
    value = h("0002 01") + bytes((len(h(nh)),)) + h(nh) + h("00") + n("2001:db8::/32")
    assert reset(attr(0x80, 14, value) + ORIGIN + AS_PATH, nlri=b"").subcode == 9


def test_mp_unreach_shorter_than_3() -> None:
    assert reset(attr(0x80, 15, h("0002")), nlri=b"").subcode == 9


def test_mp_attribute_overrunning_the_field() -> None:
    err = reset(BASE + h("80 0e 30 0002 01"), nlri=b"")
    assert err.subcode == 5


@pytest.mark.parametrize(("nlri", "what"), [(h("21 0a000000 00"), "length 33"), (h("18 0a00"), "overrun"),
                                            (h("18"), "no address bytes")])
def test_bad_nlri_field(nlri: bytes, what: str) -> None:
    assert reset(BASE, nlri=nlri).subcode == 10


def test_bad_withdrawn_routes_field() -> None:
    # RFC 7606 3(i): the Withdrawn Routes field is checked like the NLRI field.
    assert reset(b"", nlri=b"", withdrawn=h("21 0a000000 00")).subcode == 10


@pytest.mark.parametrize("mp", [
    attr(0x80, 14, h("0002 01 10 20010db8000000000000000000000001 00 81") + b"\x00" * 17),
    attr(0x80, 14, h("0002 01 10 20010db8000000000000000000000001 00 40 2001")),
    attr(0x80, 15, h("0002 01 81") + b"\x00" * 17),
    attr(0x80, 15, h("0002 01 40 2001")),
])
def test_bad_nlri_inside_mp_attributes(mp: bytes) -> None:
    assert reset(mp + ORIGIN + AS_PATH, nlri=b"").subcode == 10


def test_withdrawn_length_overruns_the_message() -> None:
    with pytest.raises(BGPError) as info:
        decode_update(h("0010 18 0a0000 0000"), EBGP, FAMS)
    assert (info.value.code, info.value.subcode) == (3, 1)  # RFC 7606 3(b)


def test_total_attribute_length_overruns_the_message() -> None:
    with pytest.raises(BGPError) as info:
        decode_update(h("0000 0010") + BASE[:8], EBGP, FAMS)
    assert (info.value.code, info.value.subcode) == (3, 1)


@pytest.mark.parametrize("body", [b"", h("00"), h("0000"), h("0000 00")])
def test_truncated_update_body(body: bytes) -> None:
    with pytest.raises(BGPError) as info:
        decode_update(body, EBGP, FAMS)
    assert info.value.code == 3


# ---- RFC 7606 5.2: no reachable NLRI ---------------------------------------------------------


def test_malformed_attribute_without_reachable_nlri_resets_the_session() -> None:
    bad_med = attr(0x80, 4, h("0064"))
    err = reset(BASE + bad_med, nlri=b"", withdrawn=n("10.0.0.0/8"))
    assert (err.subcode, err.data) == (5, bad_med)
    err = reset(ORIGIN + attr(0x40, 2, h("02 00")), nlri=b"")
    assert (err.subcode, err.data) == (11, b"")
    err = reset(attr(0x40, 1, b"\x07") + AS_PATH, nlri=b"")
    assert (err.subcode, err.data) == (6, attr(0x40, 1, b"\x07"))
    err = reset(BASE + attr(0x80, 8, h("00000001")), nlri=b"")
    assert (err.subcode, err.data) == (4, attr(0x80, 8, h("00000001")))


def test_mp_unreach_plus_malformed_attribute_resets_the_session() -> None:
    reset(attr(0x80, 15, h("0002 01 20 20010db8")) + attr(0x80, 4, h("0064")), nlri=b"")


def test_attribute_discard_without_reachable_nlri_does_not_reset() -> None:
    upd = decode(BASE + attr(0x40, 6, b"\x00"), nlri=b"", withdrawn=n("10.0.0.0/8"))
    assert upd.withdraw == {IPV4_UNICAST: [n("10.0.0.0/8")]} and not upd.treat_as_withdraw


def test_withdraw_only_update_needs_no_mandatory_attributes() -> None:
    upd = decode(b"", nlri=b"", withdrawn=n("10.0.0.0/8"))
    assert upd.withdraw == {IPV4_UNICAST: [n("10.0.0.0/8")]} and not upd.treat_as_withdraw
    assert upd.eor is None
