"""OPEN and capabilities (RFC 4271 4.2, 6.2; RFC 5492, 4760, 2918, 6793, 4724, 8654) and negotiation."""

from __future__ import annotations

import pytest

from fleetbgp.wire.constants import AS_TRANS, MsgType
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import Capabilities, MessageReader, Open, frame, negotiate
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, Family

MARKER = "ff" * 16


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def body_of(message: bytes) -> bytes:
    [(msg_type, body)] = list(MessageReader().feed(message))
    assert msg_type == MsgType.OPEN
    return body


def open_error(body: bytes) -> BGPError:
    with pytest.raises(BGPError) as info:
        Open.decode(body)
    return info.value


# ---- encoding ------------------------------------------------------------------------------------

# AS 65001, hold 180, id 192.0.2.1; MP ipv4+ipv6 unicast, route refresh, extended message,
# graceful restart (120 s, both families, forwarding not preserved), 4-octet AS 65001.
FULL_OPEN = h(MARKER + """
    0041 01
    04 fde9 00b4 c0000201 24
    02 22
       01 04 0001 00 01
       01 04 0002 00 01
       02 00
       06 00
       40 0a 0078 0001 01 00 0002 01 00
       41 04 0000fde9
""")


def full_open() -> Open:
    return Open(asn=65001, hold_time=180, router_id="192.0.2.1", capabilities=Capabilities(
        families=[IPV4_UNICAST, IPV6_UNICAST], asn4=65001, route_refresh=True, extended_message=True,
        graceful_restart=120, gr_families={IPV4_UNICAST: False, IPV6_UNICAST: False}))


def test_full_open_byte_exact() -> None:
    assert full_open().encode() == FULL_OPEN


def test_full_open_decodes_back() -> None:
    got = Open.decode(body_of(FULL_OPEN))
    assert got == Open(asn=65001, hold_time=180, router_id="192.0.2.1", capabilities=full_open().capabilities,
                       wire_asn=65001)


def test_minimal_open_without_capabilities() -> None:
    msg = Open(asn=65000, hold_time=90, router_id="10.0.0.1", capabilities=Capabilities()).encode()
    assert msg == h(MARKER + "001d 01 04 fde8 005a 0a000001 00")
    got = Open.decode(body_of(msg))
    assert (got.asn, got.hold_time, got.router_id, got.capabilities) == (65000, 90, "10.0.0.1", Capabilities())


def test_four_octet_as_puts_as_trans_in_my_as() -> None:
    msg = Open(asn=4200000001, hold_time=90, router_id="10.0.0.1",
               capabilities=Capabilities(asn4=4200000001)).encode()
    assert msg == h(MARKER + "0025 01 04 5ba0 005a 0a000001 08 02 06 41 04 fa56ea01")
    got = Open.decode(body_of(msg))
    assert (got.asn, got.wire_asn) == (4200000001, AS_TRANS)


def test_graceful_restart_restarting_bit_and_forwarding_flags() -> None:
    caps = Capabilities(graceful_restart=300, gr_restarting=True,
                        gr_families={IPV4_UNICAST: True, IPV6_UNICAST: False})
    # Restart flags 0x8 in the top 4 bits, 12-bit time 300 = 0x12c; per family AFI, SAFI, flags 0x80.
    assert caps.encode() == h("40 0a 812c 0001 01 80 0002 01 00")
    assert Capabilities.decode(caps.encode()) == caps


def test_graceful_restart_notification_bit_rfc8538() -> None:
    """N (0x4 of the Restart Flags) next to R, both read back; negotiated only when both set it."""
    caps = Capabilities(graceful_restart=120, gr_restarting=True, gr_notification=True,
                        gr_families={IPV4_UNICAST: True})
    assert caps.encode() == h("40 06 c078 0001 01 80")
    assert Capabilities.decode(caps.encode()) == caps
    only_n = Capabilities.decode(h("40 02 4078"))
    assert only_n.gr_notification and not only_n.gr_restarting and only_n.graceful_restart == 120
    # the two reserved flag bits are ignored
    assert Capabilities.decode(h("40 02 3078")) == Capabilities(graceful_restart=120)

    def neg(local: Capabilities, remote: Capabilities) -> bool:
        return negotiate(Open(asn=65001, hold_time=90, router_id="10.0.0.1", capabilities=local),
                         Open(asn=65000, hold_time=90, router_id="10.0.0.2", capabilities=remote)).gr_notification
    with_n = Capabilities(graceful_restart=120, gr_notification=True)
    assert neg(with_n, with_n)
    assert not neg(with_n, Capabilities(graceful_restart=120))
    assert not neg(with_n, Capabilities(gr_notification=True))  # no GR capability: no N either


def test_graceful_restart_without_families_is_end_of_rib_only() -> None:
    caps = Capabilities(graceful_restart=0)
    assert caps.encode() == h("40 02 0000")
    assert Capabilities.decode(h("40 02 0000")) == caps


def test_route_refresh_cisco_code_is_route_refresh() -> None:
    assert Capabilities.decode(h("80 00")).route_refresh
    assert Capabilities.decode(h("02 00")).route_refresh


def test_unknown_capabilities_are_kept_and_re_encoded() -> None:
    caps = Capabilities.decode(h("47 07 0001 01 80 000078  4a 04 0001 01 01"))
    assert caps.unknown == [(71, h("0001 01 80 000078")), (74, h("0001 01 01"))]
    assert caps.encode() == h("47 07 0001 01 80 000078  4a 04 0001 01 01")


def test_largest_open_that_fits_one_parameter() -> None:
    # 42 multiprotocol capabilities of 6 bytes = 252 bytes: one parameter, Opt Parm Len 254.
    fams = [Family(1, safi) for safi in range(1, 43)]
    msg = Open(asn=1, hold_time=90, router_id="1.1.1.1", capabilities=Capabilities(families=fams)).encode()
    body = body_of(msg)
    assert body[9] == 254 and body[10:12] == h("02 fc")
    assert Open.decode(body).capabilities.families == fams


def test_too_many_capabilities_for_one_open_is_an_error() -> None:
    # 43 of them would need more than the one-octet Optional Parameters Length can say.
    fams = [Family(1, safi) for safi in range(1, 44)]
    with pytest.raises(ValueError):
        Open(asn=1, hold_time=90, router_id="1.1.1.1", capabilities=Capabilities(families=fams)).encode()


# ---- decoding what real speakers send ---------------------------------------------------------


def test_decode_bird_style_open() -> None:
    # BIRD 2: one Capabilities parameter holding MP, route refresh, enhanced route refresh,
    # graceful restart "aware" (no families), 4-octet AS.
    msg = h(MARKER + """
        0033 01 04 fde8 00f0 0a000001 16
        02 14
           01 04 0001 00 01
           02 00
           46 00
           40 02 0078
           41 04 0000fde8
    """)
    got = Open.decode(body_of(msg))
    assert got.asn == 65000 and got.hold_time == 240 and got.router_id == "10.0.0.1"
    c = got.capabilities
    assert c.families == [IPV4_UNICAST]
    assert c.route_refresh and c.enhanced_route_refresh
    assert c.graceful_restart == 120 and c.gr_families == {} and not c.gr_restarting
    assert c.asn4 == 65000
    assert not c.extended_message and c.unknown == []


def test_decode_gobgp_style_open() -> None:
    # GoBGP: one Capabilities parameter per capability, Cisco route refresh too, FQDN (73).
    msg = h(MARKER + """
        0045 01 04 5ba0 005a c0a80001 28
        02 06 01 04 0002 00 01
        02 02 02 00
        02 02 80 00
        02 06 41 04 fa56ea02
        02 0a 49 08 05 676f626770 01 78
        02 02 06 00
    """)
    got = Open.decode(body_of(msg))
    assert got.asn == 4200000002 and got.wire_asn == AS_TRANS and got.router_id == "192.168.0.1"
    c = got.capabilities
    assert c.families == [IPV6_UNICAST]
    assert c.route_refresh and c.extended_message
    assert c.fqdn == ("gobgp", "x") and c.unknown == []


def test_duplicate_multiprotocol_capability_is_listed_once() -> None:
    assert Capabilities.decode(h("01 04 0001 00 01  01 04 0001 00 01")).families == [IPV4_UNICAST]


# ---- OPEN errors (RFC 4271 6.2) ---------------------------------------------------------------

GOOD_BODY = h("04 fde8 005a 0a000001 00")


def test_good_body() -> None:
    assert Open.decode(GOOD_BODY).asn == 65000


@pytest.mark.parametrize("version", [1, 2, 3, 5, 255])
def test_unsupported_version(version: int) -> None:
    err = open_error(bytes((version,)) + GOOD_BODY[1:])
    # Data: the largest version we support (RFC 4271 6.2), 2 octets.
    assert (err.code, err.subcode, err.data) == (2, 1, h("0004"))


@pytest.mark.parametrize("hold", [1, 2])
def test_hold_time_one_or_two_is_unacceptable(hold: int) -> None:
    err = open_error(h("04 fde8") + hold.to_bytes(2, "big") + h("0a000001 00"))
    assert (err.code, err.subcode) == (2, 6)


@pytest.mark.parametrize("hold", [0, 3, 65535])
def test_hold_time_zero_and_three_or_more_accepted(hold: int) -> None:
    assert Open.decode(h("04 fde8") + hold.to_bytes(2, "big") + h("0a000001 00")).hold_time == hold


def test_bgp_identifier_zero_is_bad() -> None:
    err = open_error(h("04 fde8 005a 00000000 00"))
    assert (err.code, err.subcode) == (2, 3)


@pytest.mark.parametrize("ptype", [1, 3, 255])
def test_unknown_optional_parameter(ptype: int) -> None:
    err = open_error(h("04 fde8 005a 0a000001 04") + bytes((ptype,)) + h("02 0000"))
    assert (err.code, err.subcode) == (2, 4)


def test_optional_parameter_overrun() -> None:
    err = open_error(h("04 fde8 005a 0a000001 04 02 05 0200"))
    assert (err.code, err.subcode) == (2, 0)


def test_capability_overrun_within_its_parameter() -> None:
    err = open_error(h("04 fde8 005a 0a000001 04 02 02 4104"))
    assert (err.code, err.subcode) == (2, 0)


def test_optional_parameters_length_disagrees_with_message() -> None:
    err = open_error(h("04 fde8 005a 0a000001 05 02 02 0200"))
    assert err.code in (1, 2)


@pytest.mark.parametrize("length", range(0, 10))
def test_truncated_open_body(length: int) -> None:
    with pytest.raises(BGPError):
        Open.decode(GOOD_BODY[:length])


# ---- negotiation ---------------------------------------------------------------------------------


def make(asn: int = 65000, hold: int = 90, rid: str = "10.0.0.1", **caps: object) -> Open:
    return Open(asn=asn, hold_time=hold, router_id=rid, capabilities=Capabilities(**caps))  # type: ignore[arg-type]


def test_hold_time_is_the_minimum_and_keepalive_a_third() -> None:
    neg = negotiate(make(hold=90), make(asn=65001, hold=180, rid="10.0.0.2"))
    assert (neg.hold_time, neg.keepalive) == (90, 30)
    neg = negotiate(make(hold=240), make(asn=65001, hold=10, rid="10.0.0.2"))
    assert (neg.hold_time, neg.keepalive) == (10, 3)


def test_hold_time_zero_wins() -> None:
    neg = negotiate(make(hold=90), make(hold=0, rid="10.0.0.2"))
    assert (neg.hold_time, neg.keepalive) == (0, 0)


def test_families_are_the_intersection_in_local_order() -> None:
    local = make(families=[IPV6_UNICAST, IPV4_UNICAST, IPV4_FLOWSPEC])
    remote = make(rid="10.0.0.2", families=[IPV4_UNICAST, IPV6_UNICAST])
    assert negotiate(local, remote).families == (IPV6_UNICAST, IPV4_UNICAST)


def test_no_multiprotocol_capability_means_ipv4_unicast_only() -> None:
    local = make(families=[IPV4_UNICAST, IPV6_UNICAST])
    assert negotiate(local, make(rid="10.0.0.2")).families == (IPV4_UNICAST,)
    assert negotiate(make(families=[IPV6_UNICAST]), make(rid="10.0.0.2")).families == ()


def test_capabilities_need_both_sides() -> None:
    both = dict(asn4=65000, route_refresh=True, extended_message=True, graceful_restart=120)
    neg = negotiate(make(**both), make(rid="10.0.0.2", **both))
    assert neg.asn4 and neg.route_refresh and neg.extended_message and neg.graceful_restart == 120
    assert neg.max_size == 65535
    neg = negotiate(make(**both), make(rid="10.0.0.2"))
    assert not neg.asn4 and not neg.route_refresh and not neg.extended_message
    assert neg.graceful_restart is None and neg.max_size == 4096
    neg = negotiate(make(), make(rid="10.0.0.2", **both))
    assert not neg.asn4 and not neg.route_refresh and not neg.extended_message
    assert neg.graceful_restart is None and neg.max_size == 4096


def test_negotiated_peer_identity() -> None:
    neg = negotiate(make(), make(asn=4200000001, rid="10.0.0.9", asn4=4200000001))
    assert (neg.peer_as, neg.peer_router_id) == (4200000001, "10.0.0.9")


def test_open_frame_helper_matches_encode() -> None:
    o = full_open()
    assert o.encode() == frame(MsgType.OPEN, body_of(o.encode()))


def test_hostname_and_software_version_capabilities_as_exabgp_encodes_them() -> None:
    # ExaBGP 5.0's qa/encoding conf-hostname and conf-cap-software-version OPENs
    caps = Capabilities(fqdn=("my-host-name", "my-domain-name.com"), software_version="ExaBGP/5.0.0-0+test")
    raw = caps.encode()
    assert bytes.fromhex("49200C6D792D686F73742D6E616D65126D792D646F6D61696E2D6E616D652E636F6D") in raw
    assert bytes.fromhex("4B14134578614247502F352E302E302D302B74657374") in raw
    back = Capabilities.decode(raw)
    assert (back.fqdn, back.software_version, back.unknown) == \
        (("my-host-name", "my-domain-name.com"), "ExaBGP/5.0.0-0+test", [])


@pytest.mark.parametrize("value", ["", "05616263", "0361626303", "03616263016162"])
def test_a_malformed_hostname_capability_is_kept_as_unknown(value: str) -> None:
    raw = bytes((73, len(value) // 2)) + bytes.fromhex(value)
    caps = Capabilities.decode(raw)
    assert caps.fqdn is None and caps.unknown == [(73, bytes.fromhex(value))]
