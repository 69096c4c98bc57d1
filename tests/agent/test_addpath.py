"""ADD-PATH (RFC 7911): capability, negotiation, NLRI with path ids on the wire, the RIBs keyed by
(prefix, path id), the config and API grammar (ExaBGP 5's), and how routes are shown."""

from __future__ import annotations

import json

import pytest

from fleetbgp.api.commands import CommandError, parse_command
from fleetbgp.api.encoders import JsonEncoder, TextEncoder
from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.model import Neighbor
from fleetbgp.events import Direction, EventKind, PeerEvent, PeerRef
from fleetbgp.grammar.prefix import parse_path_id, prefix_to_nlri
from fleetbgp.rib import AdjRibIn, AdjRibOut, keys_of_prefix
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import Capabilities, Open, decode_update, negotiate
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST, nlri_to_prefix, path_key, split_key


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def k(prefix: str, path_id: int | None) -> bytes:
    return path_key(n(prefix), path_id)


CTX = EncodeContext(local_as=1, peer_as=1, next_hop_self_v4="127.0.0.1")
CTX_AP = EncodeContext(local_as=1, peer_as=1, next_hop_self_v4="127.0.0.1",
                       addpath=frozenset({IPV4_UNICAST, IPV6_UNICAST}))


# -- keys -------------------------------------------------------------------------------------------


def test_a_route_without_path_id_keeps_the_plain_nlri_as_key() -> None:
    assert k("10.0.0.0/24", None) == n("10.0.0.0/24")
    assert k("10.0.0.0/24", 0) == n("10.0.0.0/24")  # path id 0 is no path id, as in ExaBGP
    assert k("10.0.0.0/24", 1) == h("ff 00000001 18 0a0000")
    assert split_key(k("10.0.0.0/24", 0x01020304)) == (0x01020304, n("10.0.0.0/24"))
    assert nlri_to_prefix(IPV4_UNICAST, k("10.0.0.10/32", 1)) == "10.0.0.10/32 path-information 0.0.0.1"


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("0.0.0.1", 1), ("1.2.3.4", 0x01020304),
                                             ("4294967295", 0xFFFFFFFF), ("0", 0)])
def test_path_id_integer_or_dotted(text: str, value: int) -> None:
    assert parse_path_id(text) == value


@pytest.mark.parametrize("text", ["4294967296", "1.2.3", "1.2.3.256", "-1", "x", "01.2.3.4", ""])
def test_bad_path_ids(text: str) -> None:
    with pytest.raises(ValueError, match="path-information"):
        parse_path_id(text)


# -- capability and negotiation ---------------------------------------------------------------------


def test_capability_round_trip_one_capability_for_every_family() -> None:
    caps = Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST],
                        add_path={IPV4_UNICAST: 3, IPV6_UNICAST: 1})
    raw = caps.encode()
    assert h("45 08 0001 01 03 0002 01 01") in raw
    assert Capabilities.decode(raw).add_path == {IPV4_UNICAST: 3, IPV6_UNICAST: 1}


def test_capability_of_disabled_families_is_not_sent() -> None:
    assert Capabilities(add_path={IPV4_UNICAST: 0}).encode() == b""


def _open(**caps: object) -> Open:
    return Open(asn=1, hold_time=90, router_id="1.1.1.1",
                capabilities=Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST], **caps))  # type: ignore[arg-type]


@pytest.mark.parametrize(("ours", "theirs", "send", "receive"), [
    (3, 3, True, True),
    (2, 1, True, False),
    (2, 2, False, False),   # both only send: nobody receives
    (1, 2, False, True),
    (3, 1, True, False),
    (3, 0, False, False),
    (0, 3, False, False),
])
def test_negotiation_per_direction(ours: int, theirs: int, send: bool, receive: bool) -> None:
    neg = negotiate(_open(add_path={IPV4_UNICAST: ours}), _open(add_path={IPV4_UNICAST: theirs}))
    assert (IPV4_UNICAST in neg.addpath_send) is send
    assert (IPV4_UNICAST in neg.addpath_receive) is receive
    assert IPV6_UNICAST not in neg.addpath_send | neg.addpath_receive


# -- wire: exactly what ExaBGP sends (qa/encoding/conf-path-information.msg) -------------------------


def test_announce_bytes_match_exabgp() -> None:
    rib = AdjRibOut()
    attrs = Attributes.make(next_hop="10.10.1.1")
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 1), attrs)
    (msg,) = list(rib.flush(CTX_AP, [IPV4_UNICAST]))
    assert msg == h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF 0035 02 00000015 400101004002004003040A0A0101"
                    "40050400000064 00000001 200A00000A")


def test_a_route_without_path_id_goes_with_path_id_zero_when_negotiated() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.0.0/24"), Attributes.make(next_hop="10.0.0.1"))
    (msg,) = list(rib.flush(CTX_AP, [IPV4_UNICAST]))
    assert msg.endswith(h("00000000 18 0a0000"))
    rib.remove(IPV4_UNICAST, n("10.0.0.0/24"))
    (msg,) = list(rib.flush(CTX_AP, [IPV4_UNICAST]))
    assert msg[19:] == h("0008 00000000 18 0a0000 0000")


def test_two_paths_of_one_prefix_both_go_and_one_is_withdrawn_alone() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 1), Attributes.make(next_hop="10.10.1.1"))
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 2), Attributes.make(next_hop="10.10.1.2"))
    assert len(list(rib.flush(CTX_AP, [IPV4_UNICAST]))) == 2
    assert rib.count(IPV4_UNICAST) == 2
    rib.remove(IPV4_UNICAST, k("10.0.0.10/32", 1))
    (msg,) = list(rib.flush(CTX_AP, [IPV4_UNICAST]))
    assert msg[19:] == h("0009 00000001 20 0a00000a 0000")
    assert list(rib.routes[IPV4_UNICAST]) == [k("10.0.0.10/32", 2)]


def test_ipv6_paths_go_in_mp_reach_and_mp_unreach() -> None:
    rib = AdjRibOut()
    rib.put(IPV6_UNICAST, k("2001:db8::/32", 7), Attributes.make(next_hop="2001:db8::1"))
    (msg,) = list(rib.flush(CTX_AP, [IPV6_UNICAST]))
    assert h("00000007 20 20010db8") in msg
    upd = decode_update(msg[19:], DecodeContext(ibgp=True, addpath=frozenset({IPV6_UNICAST})))
    assert upd.announce[IPV6_UNICAST][1] == [k("2001:db8::/32", 7)]
    rib.remove(IPV6_UNICAST, k("2001:db8::/32", 7))
    (msg,) = list(rib.flush(CTX_AP, [IPV6_UNICAST]))
    upd = decode_update(msg[19:], DecodeContext(ibgp=True, addpath=frozenset({IPV6_UNICAST})))
    assert upd.withdraw[IPV6_UNICAST] == [k("2001:db8::/32", 7)]


def test_without_add_path_paths_are_stripped_and_sent_once() -> None:
    rib = AdjRibOut()
    attrs = Attributes.make(next_hop="10.10.1.1")
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 1), attrs)
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 2), attrs)
    (msg,) = list(rib.flush(CTX, [IPV4_UNICAST]))
    assert msg.endswith(h("40050400000064 200a00000a")) and len(msg) == 0x31  # one NLRI, no path id


def test_without_add_path_withdrawing_one_path_announces_the_other_instead() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 1), Attributes.make(next_hop="10.10.1.1"))
    rib.put(IPV4_UNICAST, k("10.0.0.10/32", 2), Attributes.make(next_hop="10.10.1.2"))
    list(rib.flush(CTX, [IPV4_UNICAST]))
    rib.remove(IPV4_UNICAST, k("10.0.0.10/32", 1))
    (msg,) = list(rib.flush(CTX, [IPV4_UNICAST]))
    upd = decode_update(msg[19:], DecodeContext(ibgp=True))
    assert not upd.withdraw
    assert upd.announce[IPV4_UNICAST] == (Attributes.make(next_hop="10.10.1.2", origin=0, as_path=(),
                                                          local_pref=100), [n("10.0.0.10/32")])
    rib.remove(IPV4_UNICAST, k("10.0.0.10/32", 2))
    (msg,) = list(rib.flush(CTX, [IPV4_UNICAST]))
    assert decode_update(msg[19:], DecodeContext(ibgp=True)).withdraw == {IPV4_UNICAST: [n("10.0.0.10/32")]}


# -- receiving ----------------------------------------------------------------------------------------


RECEIVE = DecodeContext(ibgp=True, addpath=frozenset({IPV4_UNICAST}))


def test_received_paths_decode_and_are_kept_per_path_id() -> None:
    body = h("00000015 400101004002004003040A0A0101 40050400000064 00000001 200A00000A")
    body2 = h("00000015 400101004002004003040A0A0102 40050400000064 00000002 200A00000A")
    rib = AdjRibIn(keep_attributes=True)
    for raw in (body, body2):
        upd = decode_update(raw, RECEIVE)
        for fam, (attrs, items) in upd.announce.items():
            rib.put(fam, attrs, items)
    table = rib.routes[IPV4_UNICAST]
    assert {split_key(key): attrs.next_hop for key, attrs in table.items() if attrs} == {
        (1, n("10.0.0.10/32")): "10.10.1.1", (2, n("10.0.0.10/32")): "10.10.1.2"}
    assert sorted(keys_of_prefix(table, IPV4_UNICAST, n("10.0.0.10/32"), True)) == \
        [k("10.0.0.10/32", 1), k("10.0.0.10/32", 2)]
    upd = decode_update(h("0009 00000001 20 0a00000a 0000"), RECEIVE)
    rib.remove(IPV4_UNICAST, upd.withdraw[IPV4_UNICAST])
    assert list(table) == [k("10.0.0.10/32", 2)]


def test_received_path_id_zero_is_kept_as_a_path() -> None:
    upd = decode_update(h("0008 00000000 18 0a0000 0000"), RECEIVE)
    assert upd.withdraw[IPV4_UNICAST] == [h("ff 00000000 18 0a0000")]


@pytest.mark.parametrize("nlri", ["000000", "00000001 21 0a000000", "00000001 18 0a00"])
def test_truncated_add_path_nlri_resets_the_session(nlri: str) -> None:
    body = h("0000 0015 400101004002004003040A0A0101 40050400000064") + h(nlri)
    body = body[:2] + (len(body) - 4 - len(h(nlri))).to_bytes(2, "big") + body[4:]
    with pytest.raises(BGPError):
        decode_update(body, RECEIVE)


# -- config --------------------------------------------------------------------------------------------


CONF = """
neighbor 127.0.0.1 {{
    router-id 127.0.0.1; local-address 127.0.0.1; local-as 1; peer-as 1;
    family {{ ipv4 unicast; ipv6 unicast; }}
    capability {{ {capability} }}
    {block}
    static {{
        route 10.0.0.10 next-hop 10.10.1.1 path-information 0.0.0.1;
        route 10.0.0.10 next-hop 10.10.1.2 path-information 2;
        route 10.0.0.10 next-hop 10.10.1.3;
    }}
}}
"""


def test_config_exabgp_add_path_example() -> None:
    cfg = parse_text(CONF.format(capability="add-path send/receive;", block=""))
    nb = cfg.neighbors[0]
    assert nb.capabilities.add_path == 3
    assert nb.capabilities.add_path_families == (IPV4_UNICAST, IPV6_UNICAST)
    assert {key: a.next_hop for key, a in nb.static_routes[IPV4_UNICAST].items()} == {
        k("10.0.0.10/32", 1): "10.10.1.1", k("10.0.0.10/32", 2): "10.10.1.2",
        n("10.0.0.10/32"): "10.10.1.3"}


@pytest.mark.parametrize(("capability", "mode"), [("add-path send;", 2), ("add-path receive;", 1),
                                                  ("add-path disable;", 0), ("add-path disabled;", 0),
                                                  ("", 0)])
def test_config_add_path_modes(capability: str, mode: int) -> None:
    caps = parse_text(CONF.format(capability=capability, block="")).neighbors[0].capabilities
    assert caps.add_path == mode
    assert caps.add_path_families == ((IPV4_UNICAST, IPV6_UNICAST) if mode else ())


def test_config_add_path_block_picks_families() -> None:
    cfg = parse_text(CONF.format(capability="add-path send;", block="add-path { ipv6 unicast; }"))
    assert cfg.neighbors[0].capabilities.add_path_families == (IPV6_UNICAST,)
    # As ExaBGP: a family the neighbor does not enable, or one without path ids, is skipped.
    cfg = parse_text(CONF.format(capability="add-path send;", block="add-path { ipv4 flow; }"))
    assert cfg.neighbors[0].capabilities.add_path_families == ()


@pytest.mark.parametrize(("route", "message"), [
    ("route 10.0.0.0/24 next-hop 1.2.3.4 path-information 1.2.3;",
     "path-information '1.2.3': expected a number 0..4294967295 or a dotted path id like 0.0.0.1"),
    ("route 10.0.0.0/24 next-hop 1.2.3.4 path-information;", "'path-information' needs a value"),
    ("route 10.0.0.0/24 next-hop 1.2.3.4 path-information 1 path-information 2;",
     "'path-information' is given twice in this route"),
])
def test_config_bad_path_information_names_the_place(route: str, message: str) -> None:
    text = CONF.format(capability="add-path send;", block="").replace(
        "route 10.0.0.10 next-hop 10.10.1.3;", route)
    with pytest.raises(ConfigError) as err:
        parse_text(text, "f.conf")
    assert "f.conf:10:" in str(err.value) and message in str(err.value)


def test_config_add_path_block_errors() -> None:
    with pytest.raises(ConfigError, match="family 'ipv4 mpls-vpn' is not supported"):
        parse_text(CONF.format(capability="add-path send;", block="add-path { ipv4 mpls-vpn; }"))
    with pytest.raises(ConfigError, match="'add-path' is given twice"):
        parse_text(CONF.format(capability="add-path send;",
                               block="add-path { ipv4 unicast; } add-path { ipv4 unicast; }"))


def test_health_check_attributes_refuse_path_information() -> None:
    from fleetbgp.grammar.errors import RouteError
    from fleetbgp.grammar.route import parse_attributes
    with pytest.raises(RouteError, match="cannot be given here"):
        parse_attributes(["med", "1", "path-information", "1"], IPV4_UNICAST, require_next_hop=False)


# -- API -----------------------------------------------------------------------------------------------


def test_api_announce_and_withdraw_with_path_information() -> None:
    cmd = parse_command("announce route 10.0.0.0/24 next-hop 10.0.0.1 path-information 1")
    assert cmd.routes == ((IPV4_UNICAST, k("10.0.0.0/24", 1), Attributes.make(next_hop="10.0.0.1")),)
    cmd = parse_command("neighbor 127.0.0.1 announce route 10.0.0.0/24 path-information 2 next-hop 10.0.0.2")
    assert cmd.routes[0][1] == k("10.0.0.0/24", 2)
    cmd = parse_command("withdraw route 10.0.0.0/24 path-information 0.0.0.1")
    assert cmd.routes == ((IPV4_UNICAST, k("10.0.0.0/24", 1)),)
    cmd = parse_command("neighbor 127.0.0.1 withdraw route 10.0.0.0/24 next-hop 0.0.0.0 path-information 1")
    assert cmd.routes == ((IPV4_UNICAST, k("10.0.0.0/24", 1)),)
    cmd = parse_command("withdraw route 10.0.0.0/24")
    assert cmd.routes == ((IPV4_UNICAST, n("10.0.0.0/24")),)


def test_api_announce_attributes_path_information_as_exabgp_example() -> None:
    cmd = parse_command("neighbor 127.0.0.1 announce attributes path-information 1.2.3.4 next-hop 10.11.12.13 "
                        "community [14:15] local-preference 16 nlri 16.17.18.19/32 20.21.22.23/32")
    assert [key for _, key, _ in cmd.routes] == [k("16.17.18.19/32", 0x01020304),
                                                 k("20.21.22.23/32", 0x01020304)]
    cmd = parse_command("withdraw attributes path-information 4.3.2.1 nlri 16.17.18.19/32")
    assert cmd.routes == ((IPV4_UNICAST, k("16.17.18.19/32", 0x04030201)),)


@pytest.mark.parametrize(("line", "message"), [
    ("announce route 10.0.0.0/24 next-hop 10.0.0.1 path-information 1.2.3",
     "path-information '1.2.3': expected"),
    ("announce route 10.0.0.0/24 next-hop 10.0.0.1 path-information", "'path-information' needs a value"),
    ("withdraw route 10.0.0.0/24 path-information 4294967296", "path-information '4294967296'"),
    ("withdraw attributes path-information x nlri 10.0.0.0/24", "path-information 'x'"),
])
def test_api_bad_path_information(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(line)


# -- encoders --------------------------------------------------------------------------------------------


def _peer() -> PeerRef:
    return PeerRef.of("127.0.0.1", Neighbor(peer_address="127.0.0.1", local_address="127.0.0.1",
                                            local_as=1, peer_as=1, router_id="127.0.0.1"))


def _update_event(upd_body: bytes) -> PeerEvent:
    return PeerEvent(EventKind.UPDATE, _peer(), update=decode_update(upd_body, RECEIVE),
                     direction=Direction.RECEIVE)


def test_json_has_path_information_per_nlri_as_exabgp() -> None:
    body = h("00000015 400101004002004003040A0A0101 40050400000064 00000001 200A00000A")
    (line,) = JsonEncoder().event(_update_event(body))
    announce = json.loads(line)["neighbor"]["message"]["update"]["announce"]
    assert announce == {"ipv4 unicast": {"10.10.1.1": [{"nlri": "10.0.0.10/32",
                                                        "path-information": "0.0.0.1"}]}}
    (line,) = JsonEncoder().event(_update_event(h("0009 00000002 20 0a00000a 0000")))
    withdraw = json.loads(line)["neighbor"]["message"]["update"]["withdraw"]
    assert withdraw == {"ipv4 unicast": [{"nlri": "10.0.0.10/32", "path-information": "0.0.0.2"}]}


def test_text_has_path_information_after_the_prefix_as_exabgp() -> None:
    body = h("00000015 400101004002004003040A0A0101 40050400000064 00000001 200A00000A")
    lines = TextEncoder().event(_update_event(body))
    assert ("neighbor 127.0.0.1 receive update announced 10.0.0.10/32 path-information 0.0.0.1 "
            "next-hop 10.10.1.1 origin igp local-preference 100") in lines


def test_open_shows_the_add_path_capability() -> None:
    op = Open(asn=1, hold_time=90, router_id="1.1.1.1",
              capabilities=Capabilities(families=[IPV4_UNICAST], add_path={IPV4_UNICAST: 3}))
    event = PeerEvent(EventKind.OPEN, _peer(), open=op, direction=Direction.RECEIVE)
    caps = json.loads(JsonEncoder().event(event)[0])["neighbor"]["open"]["capabilities"]
    assert caps["69"] == {"name": "addpath", "ipv4/unicast": "send/receive"}
    assert "addpath(send/receive ipv4 unicast)" in TextEncoder().event(event)[0]


def test_flowspec_keys_are_not_taken_for_paths() -> None:
    rib = AdjRibOut()
    flow = h("ff") * 3  # not a valid rule, but a key starting 0xFF in a FlowSpec table
    rib.routes[IPV4_FLOWSPEC] = {flow: Attributes.make()}
    assert rib._wire(IPV4_FLOWSPEC, [flow], CTX_AP) == [flow]
