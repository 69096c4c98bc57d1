"""Route syntax (grammar/route.py): prefixes, every attribute, RFC encodings, error indexes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetbgp.config.lexer import tokenize_line
from fleetbgp.grammar.communities import parse_community, parse_extended_community, parse_large_community
from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.grammar.route import (
    RouteOptions,
    parse_attributes,
    parse_prefix,
    parse_route,
    parse_route_options,
    split_route,
)
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, nlri_to_prefix


def route(text: str):
    return parse_route(tokenize_line(text))


def route_error(text: str) -> tuple[int, str]:
    with pytest.raises(RouteError) as info:
        route(text)
    return info.value.index, info.value.message


def ext_bytes(text: str) -> bytes:
    return struct.pack("!Q", parse_extended_community(text))


# -- prefixes ----------------------------------------------------------------------------------


def test_ipv4_prefix_to_wire_bytes():
    fam, nlri, attrs = route("10.0.0.0/24 next-hop self")
    assert fam == IPV4_UNICAST
    assert nlri == bytes([24, 10, 0, 0])
    assert attrs.next_hop == "self"


def test_host_route_without_length():
    assert route("192.0.2.1 next-hop self")[1] == bytes([32, 192, 0, 2, 1])


def test_ipv6_prefix():
    fam, nlri, attrs = route("2001:db8::/32 next-hop 2001:db8::1")
    assert fam == IPV6_UNICAST
    assert nlri == bytes([32, 0x20, 0x01, 0x0D, 0xB8])
    assert attrs.next_hop == "2001:db8::1"


def test_default_route():
    assert route("0.0.0.0/0 next-hop self")[1] == b"\x00"


def test_host_bits_set_message_comes_from_prefix_to_nlri():
    assert route_error("10.0.0.1/24 next-hop self") == (
        0, "'10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)")


@pytest.mark.parametrize("text", ["10.0.0.0/33", "10.0.0/24", "300.0.0.0/8", "banana", "2001:zz::/32"])
def test_bad_prefixes(text):
    index, message = route_error(f"{text} next-hop self")
    assert index == 0
    assert text.split("/")[0] in message


def test_missing_prefix():
    with pytest.raises(RouteError) as info:
        parse_route([])
    assert info.value.index == 0


def test_start_offset_indexes_into_the_whole_token_list():
    toks = tokenize_line("announce route 10.0.0.0/24 next-hop self med x")
    with pytest.raises(RouteError) as info:
        parse_route(toks, 2)
    assert info.value.index == 6
    assert toks[info.value.index] == "x"


@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans(), st.booleans())
def test_fast_ipv4_prefix_path_agrees_with_prefix_to_nlri(ip, plen, with_len, zero_pad):
    parts = [str((ip >> s) & 255) for s in (24, 16, 8, 0)]
    if zero_pad:
        parts[0] = parts[0].zfill(3)
    text = ".".join(parts) + (f"/{plen}" if with_len else "")
    try:
        expected = prefix_to_nlri(text)
    except ValueError as exc:
        with pytest.raises(RouteError) as info:
            parse_prefix([text])
        assert info.value.message == str(exc)
    else:
        assert parse_prefix([text]) == expected


@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.booleans(),
       st.sampled_from(["compressed", "exploded", "upper", "mapped"]))
def test_fast_ipv6_prefix_path_agrees_with_prefix_to_nlri(ip, plen, with_len, form):
    addr = ipaddress.IPv6Address(ip)
    if form == "mapped":
        addr = ipaddress.IPv6Address(ip & 0xFFFFFFFF | 0xFFFF00000000)
        text = f"::ffff:{ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)}"
    else:
        text = addr.exploded if form == "exploded" else addr.compressed
        text = text.upper() if form == "upper" else text
    text += f"/{plen}" if with_len else ""
    try:
        expected = prefix_to_nlri(text)
    except ValueError as exc:
        with pytest.raises(RouteError) as info:
            parse_prefix([text])
        assert info.value.message == str(exc)
    else:
        assert parse_prefix([text]) == expected


@given(st.text(alphabet="0123456789./:abcdef ", max_size=20))
def test_prefix_parser_never_raises_anything_but_route_error(text):
    try:
        parse_prefix([text])
    except RouteError:
        pass


# -- attributes ------------------------------------------------------------------------------


def test_every_attribute():
    _, _, a = route("10.0.0.0/24 next-hop 192.0.2.1 med 100 local-preference 200 origin egp "
                    "as-path [ 65001 65002 ] community [ 65000:100 no-export ] "
                    "large-community [ 65000:1:2 ] extended-community [ target:65000:100 ] "
                    "atomic-aggregate aggregator ( 65001:192.0.2.9 )")
    assert a.next_hop == "192.0.2.1"
    assert a.med == 100
    assert a.local_pref == 200
    assert a.origin == 1
    assert a.as_path == ((2, (65001, 65002)),)
    assert a.communities == (0xFDE80064, 0xFFFFFF01)
    assert a.large_communities == ((65000, 1, 2),)
    assert a.ext_communities == (0x0002FDE800000064,)
    assert a.atomic_aggregate is True
    assert a.aggregator == (65001, "192.0.2.9")


def test_defaults_when_only_next_hop():
    a = route("10.0.0.0/24 next-hop self")[2]
    assert a == Attributes.make(next_hop="self")


@pytest.mark.parametrize(("text", "origin"), [("igp", 0), ("egp", 1), ("incomplete", 2), ("IGP", 0)])
def test_origin(text, origin):
    assert route(f"10.0.0.0/24 next-hop self origin {text}")[2].origin == origin


def test_single_values_without_brackets():
    a = route("10.0.0.0/24 next-hop self as-path 65001 community 65000:1 large-community 1:2:3 "
              "extended-community origin:65000:7")[2]
    assert a.as_path == ((2, (65001,)),)
    assert a.communities == (0xFDE80001,)
    assert a.large_communities == ((1, 2, 3),)
    assert a.ext_communities == (0x0003FDE800000007,)


def test_as_path_with_as_set_and_asdot():
    a = route("10.0.0.0/24 next-hop self as-path [ 65001 1.10 ( 65010 65011 ) 65020 ]")[2]
    assert a.as_path == ((2, (65001, 65546)), (1, (65010, 65011)), (2, (65020,)))


def test_empty_as_path():
    assert route("10.0.0.0/24 next-hop self as-path [ ]")[2].as_path == ()


def test_list_items_may_be_separated_by_commas():
    a = route("10.0.0.0/24 next-hop self community [ 1:1, 2:2 ,3:3 ]")[2]
    assert a.communities == (0x00010001, 0x00020002, 0x00030003)


def test_duplicate_communities_collapse():
    assert route("10.0.0.0/24 next-hop self community [ 1:1 1:1 ]")[2].communities == (0x00010001,)


def test_aggregator_without_parentheses():
    assert route("10.0.0.0/24 next-hop self aggregator 4200000000:10.0.0.1")[2].aggregator == (
        4200000000, "10.0.0.1")


def test_next_hop_is_normalised():
    assert route("2001:db8::/32 next-hop 2001:DB8:0::1")[2].next_hop == "2001:db8::1"


def test_identical_attributes_are_one_interned_object():
    a = route("10.0.0.0/24 next-hop self med 5")[2]
    b = route("10.0.1.0/24 next-hop self med 5")[2]
    assert a is b


def test_parse_attributes_without_next_hop_for_withdraw_style_callers():
    a = parse_attributes(["med", "5"], IPV4_UNICAST, require_next_hop=False)
    assert a.med == 5 and a.next_hop is None


# -- communities -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("65000:100", 0xFDE80064),
    ("0:0", 0),
    ("65535:65535", 0xFFFFFFFF),
    ("no-export", 0xFFFFFF01),          # RFC 1997
    ("no-advertise", 0xFFFFFF02),
    ("no-export-subconfed", 0xFFFFFF03),
    ("nopeer", 0xFFFFFF04),             # RFC 3765
    ("no-peer", 0xFFFFFF04),
    ("blackhole", 0xFFFF029A),          # RFC 7999
    ("graceful-shutdown", 0xFFFF0000),  # RFC 8326
    ("4294967295", 0xFFFFFFFF),
    ("42", 42),
    ("0xFFFFFF01", 0xFFFFFF01),
])
def test_communities(text, value):
    assert parse_community(text) == value


@pytest.mark.parametrize("text", ["65536:1", "1:65536", "4294967296", "no-such", "1:2:3", ":1", "0xZZ", "0x1_0",
                                  "0x", "0x123456789"])
def test_bad_communities(text):
    with pytest.raises(ValueError):
        parse_community(text)


def test_large_community():
    assert parse_large_community("4294967295:0:1") == (4294967295, 0, 1)
    for bad in ("1:2", "1:2:3:4", "4294967296:1:1", "a:b:c"):
        with pytest.raises(ValueError):
            parse_large_community(bad)


# -- extended communities: byte values from RFC 4360, RFC 5668, RFC 8955 ------------------------


@pytest.mark.parametrize(("text", "wire"), [
    # RFC 4360 3.1 Two-Octet AS Specific, type 0x00, sub-type 0x02 route target: AS(2) local(4)
    ("target:65000:100", "0002 fde8 00000064"),
    ("rt:65000:100", "0002 fde8 00000064"),
    ("65000:100", "0002 fde8 00000064"),
    ("target:1:4294967295", "0002 0001 ffffffff"),
    # sub-type 0x03 route origin
    ("origin:65000:7", "0003 fde8 00000007"),
    ("soo:65000:7", "0003 fde8 00000007"),
    # RFC 4360 3.2 IPv4 Address Specific, type 0x01: address(4) local(2)
    ("target:192.0.2.1:5", "0102 c0000201 0005"),
    ("origin:1.2.3.4:5", "0103 01020304 0005"),
    # RFC 5668 Four-Octet AS Specific, type 0x02: AS(4) local(2)
    ("target:4200000000:7", "0202 fa56ea00 0007"),
    ("origin:4200000000:7", "0203 fa56ea00 0007"),
    ("target:65000L:1", "0202 0000fde8 0001"),
    ("target4:65000:1", "0202 0000fde8 0001"),
    ("origin4:1:2", "0203 00000001 0002"),
    # RFC 8955 7.4 redirect (traffic action), AS-2 form 0x80 0x08; RFC 7674 IPv4 / AS-4 forms
    ("redirect:65000:666", "8008 fde8 0000029a"),
    ("redirect:192.0.2.1:666", "8108 c0000201 029a"),
    ("redirect:4200000000:666", "8208 fa56ea00 029a"),
    # raw
    ("0x0002fde800000064", "0002 fde8 00000064"),
])
def test_extended_community_encodings(text, wire):
    assert ext_bytes(text) == bytes.fromhex(wire.replace(" ", ""))


@pytest.mark.parametrize("text", [
    "target:65000:4294967296",   # 2-octet AS: local is 32 bits
    "target:4200000000:65536",   # 4-octet AS: local is 16 bits
    "origin:1.2.3.4:65536",      # IPv4: local is 16 bits
    "target:4294967296:1",       # AS too large
    "bogus:1:1",
    "1:2:3:4",
    "0x1234",                    # raw form needs 16 hex digits
    "0xZZZZZZZZZZZZZZZZ",
    "0x000000000000_001",
    "target:1.2.3:4",
    "target:abc:1",
])
def test_bad_extended_communities(text):
    with pytest.raises(ValueError):
        parse_extended_community(text)


# -- errors and their token index --------------------------------------------------------------


@pytest.mark.parametrize(("text", "index", "fragment"), [
    ("10.0.0.0/24 med 5", 0, "no next-hop"),
    ("10.0.0.0/24 next-hop", 1, "'next-hop' needs a value"),
    ("10.0.0.0/24 next-hop banana", 2, "not an IP address"),
    ("10.0.0.0/24 next-hop 2001:db8::1 med x", 4, "med"),  # RFC 8950: an IPv6 next hop parses
    ("2001:db8::/32 next-hop 192.0.2.1", 2, "is IPv4, but the route is IPv6"),
    ("10.0.0.0/24 next-hop 0.0.0.0", 2, "cannot be used as a next hop"),
    ("10.0.0.0/24 next-hop self med -1", 4, "expected a number 0..4294967295"),
    ("10.0.0.0/24 next-hop self med 4294967296", 4, "expected a number"),
    ("10.0.0.0/24 next-hop self local-preference x", 4, "local-preference 'x'"),
    ("10.0.0.0/24 next-hop self origin bgp", 4, "expected igp, egp or incomplete"),
    ("10.0.0.0/24 next-hop self as-path [ 65001 0 ]", 6, "'0' is not an AS number"),
    ("10.0.0.0/24 next-hop self as-path [ 65001", 4, "not closed with ']'"),
    ("10.0.0.0/24 next-hop self as-path [ ( 1 2 ]", 5, "'(' is not closed"),
    ("10.0.0.0/24 next-hop self as-path [ ( ) ]", 6, "empty AS_SET"),
    ("10.0.0.0/24 next-hop self community [ 1:1 65536:1 ]", 6, "community '65536:1'"),
    ("10.0.0.0/24 next-hop self community [ 1:1", 4, "not closed with ']'"),
    ("10.0.0.0/24 next-hop self community", 3, "'community' needs a value"),
    ("10.0.0.0/24 next-hop self extended-community [ target:1:2 bad:1:2 ]", 6, "type 'bad' unknown"),
    ("10.0.0.0/24 next-hop self large-community 1:2", 4, "large-community '1:2'"),
    ("10.0.0.0/24 next-hop self aggregator ( 65001 )", 5, "expected ASN:IPv4-ADDRESS"),
    ("10.0.0.0/24 next-hop self aggregator ( 65001:1.2.3.4", 4, "'(' is not closed"),
    ("10.0.0.0/24 next-hop self med 1 med 2", 5, "'med' is given twice"),
    ("10.0.0.0/24 next-hop self communty 1:1", 3, "did you mean 'community'?"),
    # parse_route alone (health checks, the control socket) takes no route options
    ("10.0.0.0/24 next-hop self split /25", 3, "'split' makes several routes"),
    ("10.0.0.0/24 next-hop self watchdog x", 3, "'watchdog' groups routes"),
    ("10.0.0.0/24 next-hop self zzz", 3, "expected one of: next-hop, med"),
])
def test_route_errors_carry_the_token_index(text, index, fragment):
    got_index, message = route_error(text)
    assert (got_index, fragment in message) == (index, True), message


def test_cached_errors_are_reported_again_with_the_right_index():
    for _ in range(3):
        assert route_error("10.0.0.0/24 next-hop self med x")[0] == 4
        toks = ["x", "y", *tokenize_line("10.0.0.0/24 next-hop self med x")]
        with pytest.raises(RouteError) as info:
            parse_route(toks, 2)
        assert info.value.index == 6


@pytest.mark.parametrize("text,value", [
    # ExaBGP's own example configs (conf-extended-attributes, conf-flow-redirect,
    # conf-ipv46routes4family): a 2-octet AS with an IPv4 address as its 32-bit local part
    ("origin:9000:9.9.9.9", 0x0003_2328_0909_0909),
    ("target:1000:10.10.10.10", 0x0002_03E8_0A0A_0A0A),
    ("72:0.0.0.1", 0x0002_0048_0000_0001),
])
def test_extended_community_with_an_ipv4_local_part_as_exabgp_reads_it(text, value):
    assert parse_extended_community(text) == value


@pytest.mark.parametrize("text,message", [
    ("target:1:1.2.3", "local part must be 0..4294967295 or an IPv4 address"),
    ("target:1:01.2.3.4", "leading zero"),
    ("target:70000:1.2.3.4", "4-octet AS the local part must be 0..65535"),
])
def test_extended_community_ipv4_local_part_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_extended_community(text)


@pytest.mark.parametrize("text,path", [
    # ExaBGP's forms: groups one after the other, [ ] a sequence, ( ) a set
    ("as-path [ 65001 ] ( 65010 65011 )", ((2, (65001,)), (1, (65010, 65011)))),
    ("as-path ( 65010 65011 )", ((1, (65010, 65011)),)),
    ("as-path [ 65001 65002 ] ( 65010 ) [ 65020 ]", ((2, (65001, 65002)), (1, (65010,)), (2, (65020,)))),
    # the set inside the brackets, as fleetbgp wrote it before
    ("as-path [ 65001 ( 65010 65011 ) ]", ((2, (65001,)), (1, (65010, 65011)))),
    ("as-path 65005", ((2, (65005,)),)),
])
def test_as_path_forms_of_exabgp_and_fleetbgp(text, path):
    toks = tuple(tokenize_line(text))
    assert parse_attributes(toks, IPV4_UNICAST, require_next_hop=False).as_path == path


def test_the_as_path_ends_where_the_groups_end():
    toks = tuple(tokenize_line("as-path [ 65001 ] ( 65010 ) med 5"))
    attrs = parse_attributes(toks, IPV4_UNICAST, require_next_hop=False)
    assert (attrs.as_path, attrs.med) == (((2, (65001,)), (1, (65010,))), 5)


@pytest.mark.parametrize("name,value", [("no_export", 0xFFFFFF01), ("no_advertise", 0xFFFFFF02),
                                        ("NO_EXPORT_SUBCONFED", 0xFFFFFF03)])
def test_exabgps_underscore_community_names(name, value):
    assert parse_community(name) == value


@pytest.mark.parametrize("text,prefixes,options", [
    ("172.10.0.0/22 next-hop 192.0.2.1 med 200 community [174:666] split /24",
     ["172.10.0.0/24", "172.10.1.0/24", "172.10.2.0/24", "172.10.3.0/24"], RouteOptions(split=24)),
    ("172.10.0.0/24 next-hop self split /24", ["172.10.0.0/24"], RouteOptions(split=24)),
    ("2001:db8::/46 next-hop 2001:db8::1 split /48",
     ["2001:db8::/48", "2001:db8:1::/48", "2001:db8:2::/48", "2001:db8:3::/48"], RouteOptions(split=48)),
    ("1.0.0.0/24 next-hop 1.2.3.4 name this-is-a-test-route", ["1.0.0.0/24"],
     RouteOptions(name="this-is-a-test-route")),
    ("77.77.77.77 next-hop 1.2.3.4 watchdog dnsr withdraw", ["77.77.77.77/32"],
     RouteOptions(watchdog="dnsr", withdrawn=True)),
])
def test_exabgps_route_options(text, prefixes, options):
    fam, nlri, attrs, got = parse_route_options(tuple(tokenize_line(text)))
    assert got == options
    parts = split_route(fam, nlri, got.split) if got.split is not None else [nlri]
    assert [nlri_to_prefix(fam, p) for p in parts] == prefixes
    assert attrs.next_hop is not None


@pytest.mark.parametrize("text,index,message", [
    ("10.0.0.0/24 next-hop self split /23", 4, "between the prefix's own /24 and /32"),
    ("10.0.0.0/8 next-hop self split /32", 4, "makes 16777216 routes, more than 65536"),
    ("10.0.0.0/24 next-hop self split 25", 4, "expected a prefix length like /24"),
    ("10.0.0.0/24 next-hop self split", 3, "'split' needs a prefix length"),
    ("10.0.0.0/24 next-hop self withdraw", 3, "add 'watchdog NAME'"),
    ("10.0.0.0/24 next-hop self watchdog announce", 4, "cannot be watchdog names"),
    ("10.0.0.0/24 next-hop self name a name b", 5, "'name' is given twice"),
    ("10.0.0.0/24 next-hop self name x mde 5", 5, "unknown route attribute 'mde'"),
])
def test_route_option_errors_point_at_the_word(text, index, message):
    with pytest.raises(RouteError) as info:
        parse_route_options(tuple(tokenize_line(text)))
    assert info.value.index == index and message in info.value.message
