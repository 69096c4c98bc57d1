"""The extended next hop (RFC 8950, ExaBGP's `nexthop` block and capability): IPv4 unicast routes
with an IPv6 next hop, in MP_REACH_NLRI, toward and from peers that both offered capability 5."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import sys
from pathlib import Path

import pytest
from control_fakes import Raw, replaying_program, sample_speaker, served
from test_api_process import recorded, settings, wait_for

from fleetbgp.api.encoders import JsonEncoder, TextEncoder, _capabilities_json, _capabilities_text
from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.model import Capabilities as ConfigCapabilities
from fleetbgp.events import Direction, EventKind, PeerEvent, PeerRef
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.rib import AdjRibOut
from fleetbgp.wire import fit
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext
from fleetbgp.wire.constants import HEADER_LEN, AttrCode
from fleetbgp.wire.messages import (
    Capabilities,
    Open,
    Update,
    decode_update,
    negotiate,
    pack_announce,
    pack_withdraw,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, Family

PY = sys.executable
V4_EXT = frozenset((IPV4_UNICAST,))
VENDOR = Path(__file__).parents[1] / "parity" / "vendor" / "exabgp"


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def ctx(*, extended: bool = True, v4: str | None = None, v6: str | None = "2001:db8::1",
        link_local: str | None = None, peer_as: int = 65000) -> EncodeContext:
    return EncodeContext(local_as=65001, peer_as=peer_as, next_hop_self_v4=v4, next_hop_self_v6=v6,
                         link_local_v6=link_local, extended_next_hop=V4_EXT if extended else frozenset())


def body(msg: bytes) -> bytes:
    return msg[HEADER_LEN:]


def attribute(msg: bytes, code: int) -> bytes | None:
    """The value of one path attribute of an UPDATE message."""
    data = body(msg)
    wlen = struct.unpack("!H", data[:2])[0]
    pos = 2 + wlen
    alen = struct.unpack("!H", data[pos:pos + 2])[0]
    pos += 2
    end = pos + alen
    while pos < end:
        flags, acode = data[pos], data[pos + 1]
        if flags & 0x10:
            length = struct.unpack("!H", data[pos + 2:pos + 4])[0]
            start = pos + 4
        else:
            length = data[pos + 2]
            start = pos + 3
        if acode == code:
            return data[start:start + length]
        pos = start + length
    return None


# -- the capability ---------------------------------------------------------------------------------

def test_capability_round_trip() -> None:
    caps = Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST], next_hops=[(IPV4_UNICAST, 2)])
    raw = caps.encode()
    # code 5, length 6: AFI 1, SAFI 1 (two octets), next hop AFI 2
    assert bytes.fromhex("0506" "0001" "0001" "0002") in raw
    assert Capabilities.decode(raw).next_hops == [(IPV4_UNICAST, 2)]


def test_capability_with_several_tuples_and_bad_ones() -> None:
    value = bytes.fromhex("000100010002" "000100850002" "000101000002" "000100010002")
    caps = Capabilities.decode(bytes((5, len(value))) + value)
    # SAFI 256 names nothing; the repeated tuple is kept once.
    assert caps.next_hops == [(IPV4_UNICAST, 2), (IPV4_FLOWSPEC, 2)]
    # A length that is no multiple of 6 is not an extended next hop capability: kept as unknown.
    odd = Capabilities.decode(bytes.fromhex("0505" "0001000100"))
    assert odd.next_hops == [] and odd.unknown == [(5, bytes.fromhex("0001000100"))]


def _open(next_hops: list[tuple[Family, int]], families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)) -> Open:
    return Open(asn=65001, hold_time=90, router_id="192.0.2.1",
                capabilities=Capabilities(families=list(families), asn4=65001, next_hops=next_hops))


def test_negotiation_needs_both_sides() -> None:
    both = negotiate(_open([(IPV4_UNICAST, 2)]), _open([(IPV4_UNICAST, 2)]))
    assert both.extended_next_hop == V4_EXT
    assert negotiate(_open([(IPV4_UNICAST, 2)]), _open([])).extended_next_hop == frozenset()
    assert negotiate(_open([]), _open([(IPV4_UNICAST, 2)])).extended_next_hop == frozenset()
    # The family itself must be negotiated, and only an IPv6 next hop for IPv4 NLRI counts.
    assert negotiate(_open([(IPV4_UNICAST, 2)]), _open([(IPV4_UNICAST, 2)], (IPV6_UNICAST,))) \
        .extended_next_hop == frozenset()
    assert negotiate(_open([(IPV6_UNICAST, 1)]), _open([(IPV6_UNICAST, 1)])).extended_next_hop == frozenset()


def test_the_open_we_send_offers_it() -> None:
    from fleetbgp.session import Peer

    config = parse_text(CONFIG, "x.conf")
    peer = Peer(config.neighbors[0])  # type: ignore[call-arg]
    assert peer.local_open().capabilities.next_hops == [(IPV4_UNICAST, 2)]
    plain = parse_text(CONFIG.replace("nexthop { ipv4 unicast ipv6; }", "").replace(
        "next-hop self;", "next-hop 192.0.2.1;").replace("next-hop 2001:db8::1;", "next-hop 192.0.2.1;"), "x.conf")
    assert Peer(plain.neighbors[0]).local_open().capabilities.next_hops == []  # type: ignore[call-arg]


# -- sending -------------------------------------------------------------------------------------------

def test_ipv4_route_with_ipv6_next_hop_goes_in_mp_reach() -> None:
    attrs = Attributes.make(next_hop="2001:db8::99")
    [msg] = pack_announce(IPV4_UNICAST, attrs, [n("10.0.0.0/24")], ctx(v4="192.0.2.1"))
    assert attribute(msg, AttrCode.NEXT_HOP) is None
    mp = attribute(msg, AttrCode.MP_REACH_NLRI)
    assert mp == (bytes.fromhex("0001" "01" "10") + ipaddress.IPv6Address("2001:db8::99").packed
                  + b"\x00" + n("10.0.0.0/24"))
    # No NLRI in the body: the withdrawn and NLRI fields are empty.
    data = body(msg)
    assert data[:2] == b"\x00\x00" and len(data) == 4 + struct.unpack("!H", data[2:4])[0]


def test_next_hop_self_on_an_ipv6_session() -> None:
    attrs = Attributes.make(next_hop="self")
    [msg] = pack_announce(IPV4_UNICAST, attrs, [n("10.0.0.0/24")], ctx())
    assert attribute(msg, AttrCode.MP_REACH_NLRI)[3:20] == b"\x10" + ipaddress.IPv6Address("2001:db8::1").packed
    # With a link-local session address as well: 32 bytes, as for IPv6 unicast.
    [msg] = pack_announce(IPV4_UNICAST, attrs, [n("10.0.0.0/24")], ctx(link_local="fe80::1"))
    mp = attribute(msg, AttrCode.MP_REACH_NLRI)
    assert mp[3] == 32 and mp[20:36] == ipaddress.IPv6Address("fe80::1").packed
    # On an IPv4 session, `self` is the IPv4 address, in NEXT_HOP, as always.
    [msg] = pack_announce(IPV4_UNICAST, attrs, [n("10.0.0.0/24")], ctx(v4="192.0.2.1", v6=None))
    assert attribute(msg, AttrCode.NEXT_HOP) == bytes((192, 0, 2, 1))
    assert attribute(msg, AttrCode.MP_REACH_NLRI) is None


def test_without_the_capability_nothing_is_sent() -> None:
    with pytest.raises(ValueError, match="did not negotiate the extended next hop"):
        list(pack_announce(IPV4_UNICAST, Attributes.make(next_hop="2001:db8::99"), [n("10.0.0.0/24")],
                           ctx(extended=False, v4="192.0.2.1")))
    with pytest.raises(ValueError, match=r"no local IPv4 address.*RFC 8950"):
        list(pack_announce(IPV4_UNICAST, Attributes.make(next_hop="self"), [n("10.0.0.0/24")],
                           ctx(extended=False)))


def test_withdrawal_goes_in_the_body_as_exabgp_sends_it() -> None:
    [msg] = pack_withdraw(IPV4_UNICAST, [n("10.0.0.0/24")], ctx())
    assert body(msg) == b"\x00\x04" + n("10.0.0.0/24") + b"\x00\x00"


def test_rib_flush_sends_with_the_capability_and_keeps_the_route_without(caplog: pytest.LogCaptureFixture) -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.0.0/24"), Attributes.make(next_hop="2001:db8::99"))
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), Attributes.make(next_hop="192.0.2.7"))
    with caplog.at_level(logging.ERROR):
        sent = list(rib.flush(ctx(extended=False, v4="192.0.2.1"), [IPV4_UNICAST]))
    assert len(sent) == 1 and attribute(sent[0], AttrCode.NEXT_HOP) == bytes((192, 0, 2, 7))
    assert "extended next hop" in caplog.text
    # Kept for a session that negotiates it.
    rib.mark_all([IPV4_UNICAST], fresh=True)
    sent = list(rib.flush(ctx(v4="192.0.2.1"), [IPV4_UNICAST]))
    assert len(sent) == 2 and {attribute(m, AttrCode.MP_REACH_NLRI) is not None for m in sent} == {True, False}


def test_size_bound_counts_the_mp_reach_form() -> None:
    # `next-hop self` may become 32 bytes of IPv6 next hop in MP_REACH_NLRI on an IPv6 session.
    attrs = Attributes.make(next_hop="self", as_path=((2, (65010,)),))
    nlri = n("10.0.0.0/24")
    [msg] = pack_announce(IPV4_UNICAST, attrs, [nlri], ctx(link_local="fe80::1", peer_as=65001))
    assert fit.update_size(IPV4_UNICAST, nlri, attrs) >= len(msg)
    assert fit._upper_bound(attrs) + len(nlri) >= fit.update_size(IPV4_UNICAST, nlri, attrs)
    v6nh = Attributes.make(next_hop="2001:db8::99")
    [msg] = pack_announce(IPV4_UNICAST, v6nh, [nlri], ctx(link_local="fe80::1", peer_as=65001))
    assert fit.update_size(IPV4_UNICAST, nlri, v6nh) >= len(msg)


# -- receiving -----------------------------------------------------------------------------------------

def _exabgp_update() -> bytes:
    """The first UPDATE ExaBGP 5.0 sends for extended-nexthop.conf (qa/encoding/extended-nexthop.msg):
    153.153.153.153/32 with next hop bad:cafe:bad:cafe:bad:cafe:bad:cafe in MP_REACH_NLRI."""
    line = (VENDOR / "qa" / "encoding" / "extended-nexthop.msg").read_text().splitlines()[0]
    return bytes.fromhex(line.split(":", 2)[2].replace(":", ""))[HEADER_LEN:]


def test_decodes_what_exabgp_sends() -> None:
    upd = decode_update(_exabgp_update(), DecodeContext(ibgp=True, extended_next_hop=V4_EXT),
                        [IPV4_UNICAST, IPV6_UNICAST])
    attrs, items = upd.announce[IPV4_UNICAST]
    assert items == [n("153.153.153.153/32")]
    assert attrs.next_hop == "bad:cafe:bad:cafe:bad:cafe:bad:cafe" and attrs.local_pref == 100
    assert not upd.notes


def test_round_trip_with_link_local() -> None:
    attrs = Attributes.make(next_hop="2001:db8::99", med=5)
    [msg] = pack_announce(IPV4_UNICAST, attrs, [n("10.0.0.0/24"), n("10.1.0.0/16")], ctx(link_local="fe80::1"))
    upd = decode_update(body(msg), DecodeContext(extended_next_hop=V4_EXT), [IPV4_UNICAST])
    got, items = upd.announce[IPV4_UNICAST]
    assert got.next_hop == "2001:db8::99" and got.med == 5 and items == [n("10.0.0.0/24"), n("10.1.0.0/16")]


def test_not_negotiated_routes_are_treated_as_withdrawn() -> None:
    upd: Update = decode_update(_exabgp_update(), DecodeContext(ibgp=True), [IPV4_UNICAST, IPV6_UNICAST])
    assert IPV4_UNICAST not in upd.announce and upd.treat_as_withdraw
    assert upd.withdraw[IPV4_UNICAST] == [n("153.153.153.153/32")]
    assert "extended next hop (RFC 8950) was not negotiated" in upd.notes[0]


def test_a_bad_next_hop_length_still_resets() -> None:
    from fleetbgp.wire.errors import BGPError

    mp = bytes.fromhex("0001" "01" "08") + bytes(8) + b"\x00" + n("10.0.0.0/24")
    attrs = bytes.fromhex("400101" "00" "400200") + bytes((0x80, 14, len(mp))) + mp
    with pytest.raises(BGPError):
        decode_update(b"\x00\x00" + struct.pack("!H", len(attrs)) + attrs,
                      DecodeContext(extended_next_hop=V4_EXT), [IPV4_UNICAST])


def test_encoders_show_the_route_and_the_capability() -> None:
    attrs = Attributes.make(next_hop="2001:db8::99")
    caps = Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST], next_hops=[(IPV4_UNICAST, 2)])
    assert _capabilities_json(caps)["5"] == {"name": "nexthop", "conversion": ["ipv4/unicast/ipv6"]}
    assert "nexthop(ipv4 unicast ipv6)" in _capabilities_text(caps)

    peer = PeerRef.of("2001:db8::2", parse_text(CONFIG, "x.conf").neighbors[0], "2001:db8::1")
    update = Update(announce={IPV4_UNICAST: (attrs, [n("10.0.0.0/24")])})
    event = PeerEvent(EventKind.UPDATE, peer, direction=Direction.RECEIVE, update=update)
    json_lines = JsonEncoder().event(event)
    # ExaBGP's form: announcements keyed by family, then by next hop.
    assert '"announce": {"ipv4 unicast": {"2001:db8::99": [{"nlri": "10.0.0.0/24"}]}}' in json_lines[0]
    text = " ".join(TextEncoder().event(event))
    assert "announced 10.0.0.0/24 next-hop 2001:db8::99" in text, text


# -- the config ----------------------------------------------------------------------------------------

CONFIG = """\
neighbor 2001:db8::2 {
    router-id 10.0.0.1;
    local-as 65001;
    peer-as 65002;
    family { ipv4 unicast; ipv6 unicast; }
    nexthop { ipv4 unicast ipv6; }
    static {
        route 10.1.0.0/24 next-hop self;
        route 10.2.0.0/24 next-hop 2001:db8::1;
    }
}
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "x.conf")
    return [str(d) for d in info.value.diagnostics]


def test_config_nexthop_block() -> None:
    neighbor = parse_text(CONFIG, "x.conf").neighbors[0]
    assert neighbor.capabilities.extended_next_hop == (IPV4_UNICAST,)
    assert neighbor.static_routes[IPV4_UNICAST][n("10.2.0.0/24")].next_hop == "2001:db8::1"
    # ExaBGP's spellings: the capability keyword as well as the block, with a boolean or not.
    for cap in ("capability { nexthop; }", "capability { nexthop true; }", "capability { nexthop enable; }"):
        text = CONFIG.replace("    nexthop {", f"    {cap}\n    nexthop {{")
        assert parse_text(text, "x.conf").neighbors[0].capabilities.extended_next_hop == (IPV4_UNICAST,)


def test_config_without_the_block_refuses_ipv6_next_hops_with_their_place() -> None:
    got = errors(CONFIG.replace("    nexthop { ipv4 unicast ipv6; }\n", ""))
    assert got[0].startswith("x.conf:7:15: ") and "'next-hop self', but the session is IPv6" in got[0]
    assert "nexthop { ipv4 unicast ipv6; }" in got[0]
    assert got[1].startswith("x.conf:8:15: ") and "next-hop 2001:db8::1 is IPv6" in got[1]
    assert "RFC 8950" in got[1]


def test_config_capability_disabled_turns_it_off() -> None:
    got = errors(CONFIG.replace("    nexthop {", "    capability { nexthop disable; }\n    nexthop {"))
    assert len(got) == 2 and "next-hop 2001:db8::1 is IPv6" in got[1]


def test_config_ipv4_session_takes_written_ipv6_next_hops() -> None:
    text = CONFIG.replace("neighbor 2001:db8::2", "neighbor 192.0.2.2").replace(
        "        route 10.1.0.0/24 next-hop self;\n", "")
    neighbor = parse_text(text, "x.conf").neighbors[0]
    assert neighbor.static_routes[IPV4_UNICAST][n("10.2.0.0/24")].next_hop == "2001:db8::1"


@pytest.mark.parametrize(("block", "where", "fragment"), [
    ("nexthop { ipv6 unicast ipv4; }", "6:15", "'ipv6 unicast ipv4' is not supported"),
    ("nexthop { ipv4 mpls-vpn ipv6; }", "6:20", "family 'ipv4 mpls-vpn' is not supported"),
    ("nexthop { ipv4 unicast ipv4; }", "6:28", "invalid next hop family 'ipv4'"),
    ("nexthop { ipv4 banana ipv6; }", "6:20", "invalid afi/safi pair ipv4/banana"),
    ("nexthop { ipv4 unicast; }", "6:15", "AFI SAFI NEXT-HOP-AFI"),
    ("nexthop { l2vpn unicast ipv6; }", "6:15", "unknown address family 'l2vpn'"),
    ("nexthop { }", "6:5", "the nexthop block lists nothing"),
    ("nexthop { ipv4 unicast ipv6; ipv4 unicast ipv6; }", "6:34", "listed twice (first at 6:15)"),
    ("nexthop { ipv4 unicast ipv6; } nexthop { ipv4 unicast ipv6; }", "6:36", "'nexthop' is given twice"),
    ("nexthop { ipv4 { unicast ipv6; } }", "6:15", "statements, not blocks"),
])
def test_config_nexthop_errors(block: str, where: str, fragment: str) -> None:
    got = errors(CONFIG.replace("nexthop { ipv4 unicast ipv6; }", block))
    # One error: the routes that needed the block are not reported again.
    assert len(got) == 1, got
    assert got[0].startswith(f"x.conf:{where}: ") and fragment in got[0], got


def test_config_nexthop_as_a_statement() -> None:
    got = errors(CONFIG.replace("nexthop { ipv4 unicast ipv6; }", "nexthop ipv4;"))
    assert got[0].startswith("x.conf:6:5: ") and "'nexthop' is a block" in got[0], got


def test_config_nexthop_needs_both_families() -> None:
    [msg] = errors(CONFIG.replace("family { ipv4 unicast; ipv6 unicast; }", "family { ipv4 unicast; }"))
    assert msg.startswith("x.conf:6:15: ") and "needs 'family { ipv6 unicast; }'" in msg, msg


def test_config_capability_without_the_block() -> None:
    text = CONFIG.replace("    nexthop { ipv4 unicast ipv6; }\n", "    capability { nexthop; }\n")
    got = errors(text)
    assert got[0].startswith("x.conf:6:18: ") and "without a nexthop block" in got[0], got


def test_config_template_gives_the_block() -> None:
    text = ("template { neighbor fabric { family { ipv4 unicast; ipv6 unicast; } nexthop { ipv4 unicast ipv6; } } }\n"
            + CONFIG.replace("    nexthop { ipv4 unicast ipv6; }\n", "    inherit fabric;\n")
            .replace("    family { ipv4 unicast; ipv6 unicast; }\n", ""))
    neighbor = parse_text(text, "x.conf").neighbors[0]
    assert neighbor.capabilities.extended_next_hop == (IPV4_UNICAST,)


def test_config_a_later_route_replacing_the_ipv6_next_hop_one_is_fine() -> None:
    text = CONFIG.replace("    nexthop { ipv4 unicast ipv6; }\n", "").replace(
        "next-hop self;", "next-hop 2001:db8::5;").replace(
        "        route 10.2.0.0/24 next-hop 2001:db8::1;\n",
        "        route 10.2.0.0/24 next-hop 2001:db8::1;\n        route 10.1.0.0/24 next-hop 192.0.2.1;\n")
    [msg] = errors(text)
    assert msg.startswith("x.conf:8:15: ") and "2001:db8::1" in msg, msg


# -- API programs and the control socket ---------------------------------------------------------------

def test_api_program_ipv6_next_hop_only_to_neighbors_with_it(tmp_path: Path) -> None:
    from fleetbgp.api.manager import ApiManager
    from fleetbgp.daemon import Speaker

    commands = tmp_path / "commands.txt"
    commands.write_text("\n".join([
        "announce route 10.0.0.0/24 next-hop 2001:db8::1",                        # one lacks it
        "neighbor 127.100.0.5 announce route 10.0.1.0/24 next-hop 2001:db8::1",  # has it
        "announce attributes next-hop 2001:db8::1 nlri 10.0.2.0/24 10.0.3.0/24",  # one lacks it
        "neighbor 127.100.0.1 announce route 10.0.4.0/24 next-hop 192.0.2.1",
    ]) + "\n")
    record = tmp_path / "stdin.txt"
    script = replaying_program(tmp_path, commands, record)
    text = f"""
process prog {{ run {PY} {script}; encoder text; }}
neighbor 127.100.0.1 {{ router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001;
  peer-as 65000; family {{ ipv4 unicast; ipv6 unicast; }} api {{ processes [ prog ]; }} }}
neighbor 127.100.0.5 {{ router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001;
  peer-as 65002; family {{ ipv4 unicast; ipv6 unicast; }} nexthop {{ ipv4 unicast ipv6; }}
  api {{ processes [ prog ]; }} }}
"""
    speaker = Speaker(parse_text(text, str(tmp_path / "f.conf")), settings())  # type: ignore[arg-type]
    api = ApiManager(speaker, speaker.config)
    speaker.api = api

    async def go() -> None:
        await speaker.start()
        await api.start()
        try:
            got = await wait_for(lambda: len(recorded(record)) >= 4 and recorded(record), what="acks")
            assert got == ["error", "done", "error", "done"]
            plain = speaker.peers["127.100.0.1"].rib_out.routes.get(IPV4_UNICAST, {})
            extended = speaker.peers["127.100.0.5"].rib_out.routes.get(IPV4_UNICAST, {})
            assert set(plain) == {n("10.0.4.0/24")}
            assert set(extended) == {n("10.0.1.0/24")}
        finally:
            await api.stop()
            await speaker.stop()

    asyncio.run(go())


def test_control_refuses_ipv6_next_hop_without_the_capability() -> None:
    speaker = sample_speaker()
    for peer in speaker.peers.values():
        peer.neighbor.capabilities = ConfigCapabilities()
    with served(speaker) as (_server, path, _lt):
        conn = Raw(path)
        try:
            reply = conn.ask("announce", {"route": "10.0.0.0/24 next-hop 2001:db8::7"})
            assert reply["ok"] is False and reply["error"]["code"] == "invalid_route"
            assert "announce route 10.0.0.0/24: next-hop 2001:db8::7 is IPv6" in reply["error"]["message"]
            assert "RFC 8950" in reply["error"]["message"]
            assert not [c for c in speaker.calls if c[0] == "announce"], "nothing announced"
            speaker.peers["2001:db8::1"].neighbor.capabilities = ConfigCapabilities(
                extended_next_hop=(IPV4_UNICAST,))
            reply = conn.ask("announce", {"route": "10.0.0.0/24 next-hop 2001:db8::7",
                                          "neighbors": ["2001:db8::1"]})
            assert reply["ok"] is True, reply
        finally:
            conn.close()
