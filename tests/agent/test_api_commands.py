"""The API command parser: ExaBGP's text commands -> Command objects (one frozen class per kind),
errors an operator can act on."""

from __future__ import annotations

import pytest

from fleetbgp.api.commands import (
    Announce,
    AnnounceInWatchdog,
    ClearAdjRib,
    CommandError,
    Comment,
    DisableAck,
    EnableAck,
    FlushAdjRibOut,
    Help,
    MoveWatchdog,
    NeighborFilter,
    Reload,
    RequestRouteRefresh,
    Restart,
    SendEndOfRib,
    ShowAdjRib,
    ShowNeighbor,
    Shutdown,
    SilenceAck,
    Teardown,
    Version,
    Withdraw,
    _parse_general,
    parse_command,
)
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def error(line: str) -> str:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    return info.value.message


# -- routes ------------------------------------------------------------------------------------------

def test_announce_route_with_every_attribute():
    cmd = parse_command("announce route 100.10.0.0/24 next-hop self med 100 local-preference 200 origin egp "
                        "as-path [ 65010 65020 ] community [ 65000:1 no-export ] large-community [ 65000:1:2 ] "
                        "extended-community [ target:65000:7 ]")
    assert isinstance(cmd, Announce)
    assert cmd.selector == ()
    [(fam, nlri, attrs)] = cmd.routes
    assert fam == IPV4_UNICAST and nlri == n("100.10.0.0/24")
    assert attrs is Attributes.make(next_hop="self", med=100, local_pref=200, origin=1,
                                    as_path=((2, (65010, 65020)),), communities=(65000 << 16 | 1, 0xFFFFFF01),
                                    large_communities=((65000, 1, 2),),
                                    ext_communities=(0x0002FDE800000007,))


def test_seed_guide_lines_parse():
    # every command the seed guide's programs write (its FlowSpec program too: test_flowspec_api.py)
    assert parse_command("announce route 100.10.0.100/32 next-hop self").routes[0][2] is \
        Attributes.make(next_hop="self")
    assert parse_command("announce route 100.10.0.100/32 next-hop self med 100").routes[0][2].med == 100
    assert isinstance(parse_command("withdraw route 100.10.0.100/32"), Withdraw)
    assert parse_command("announce route 100.0.39.0/24 next-hop self").routes[0][1] == n("100.0.39.0/24")
    flow = ("announce flow route { match { source 192.0.2.0/24; destination-port =80; protocol =tcp; } "
            "then { redirect 65001:999; } }")
    assert isinstance(parse_command(flow), Announce)


@pytest.mark.parametrize("line", [
    "announce route 10.0.0.0/24 next-hop self",
    "announce route 10.0.0.0/24 next-hop 192.0.2.1 med 5",
    "announce route 10.0.0.0/24 next-hop self community [ 65000:1 65000:2 ] med 7",
    "announce route 2001:db8::/32 next-hop 2001:db8::1 local-preference 50",
    "announce route 192.0.2.1 next-hop self",
    "withdraw route 10.0.0.0/24",
    "withdraw route 10.0.0.0/24 next-hop self med 5",
    "withdraw route 2001:db8:1::/48",
    # RFC 8950: an IPv6 next hop parses; the targeted neighbors are checked where it is applied.
    "announce route 10.0.0.0/24 next-hop 2001:db8::1",
])
def test_fast_path_agrees_with_the_general_parser(line):
    assert parse_command(line) == _parse_general(line)


@pytest.mark.parametrize("line", [
    "announce route 10.0.0.1/24 next-hop self",
    "announce route 10.0.0.0/24 next-hop self mde 5",
    "announce route 10.0.0.0/24",
    "announce route 10.0.0.0/33 next-hop self",
    "announce route 2001:db8::/32 next-hop 192.0.2.1",
    "withdraw route 10.0.0.0/24 colour blue",
])
def test_fast_path_errors_agree_with_the_general_parser(line):
    with pytest.raises(CommandError) as fast:
        parse_command(line)
    with pytest.raises(CommandError) as general:
        _parse_general(line)
    assert fast.value.message == general.value.message


def test_typo_in_an_attribute_names_the_right_one():
    assert error("announce route 10.0.0.0/24 next-hop self mde 100") == \
        "unknown route attribute 'mde' (did you mean 'med'?)"
    assert error("announce route 10.0.0.0/24 next-hop self local-pref 100") == \
        "unknown route attribute 'local-pref' (did you mean 'local-preference'?)"


def test_route_errors_are_specific():
    assert "host bits set (did you mean 10.0.0.0/24?)" in error("announce route 10.0.0.1/24 next-hop self")
    assert "no next-hop" in error("announce route 10.0.0.0/24 med 5")
    assert "is IPv4, but the route is IPv6" in error("announce route 2001:db8::/32 next-hop 192.0.2.1")
    assert "needs a prefix" in error("announce route")
    assert error("announce route 10.0.0.0/24 next-hop self med 5 med 6") == \
        "'med' is given twice in this route"


def test_withdraw_ignores_attributes_but_checks_them():
    cmd = parse_command("withdraw route 10.0.0.0/24 next-hop self med 100")
    assert cmd == Withdraw(((IPV4_UNICAST, n("10.0.0.0/24")),))
    assert "did you mean 'med'" in error("withdraw route 10.0.0.0/24 next-hop self mde 100")


def test_announce_ipv4_unicast_alias():
    cmd = parse_command("announce ipv4 unicast 10.0.0.0/24 next-hop self")
    assert cmd.routes[0][:2] == (IPV4_UNICAST, n("10.0.0.0/24"))
    cmd = parse_command("withdraw ipv6 unicast 2001:db8::/32")
    assert cmd.routes[0][:2] == (IPV6_UNICAST, n("2001:db8::/32"))
    assert "not an ipv6 prefix" in error("announce ipv6 unicast 10.0.0.0/24 next-hop self")


def test_bulk_attributes_nlri():
    cmd = parse_command("announce attributes next-hop self med 10 nlri 10.0.0.0/24 10.0.1.0/24 10.0.2.0/24")
    attrs = Attributes.make(next_hop="self", med=10)
    assert cmd == Announce(tuple((IPV4_UNICAST, n(p), attrs) for p in ("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24")))
    cmd = parse_command("withdraw attributes nlri 10.0.0.0/24 10.0.1.0/24")
    assert cmd == Withdraw(((IPV4_UNICAST, n("10.0.0.0/24")), (IPV4_UNICAST, n("10.0.1.0/24"))))
    assert parse_command("announce attribute next-hop self nlri 10.0.0.0/24").routes[0][2] is \
        Attributes.make(next_hop="self")
    assert "one command per family" in error("announce attributes next-hop self nlri 10.0.0.0/24 2001:db8::/32")
    assert "needs 'nlri" in error("announce attributes next-hop self med 5")
    assert "at least one prefix" in error("announce attributes next-hop self nlri")
    assert "no next-hop" in error("announce attributes med 5 nlri 10.0.0.0/24")


# -- neighbor selectors -----------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "neighbor 192.0.2.1, 192.0.2.2 announce route 10.0.0.0/24 next-hop self",
    "neighbor 192.0.2.1 , neighbor 192.0.2.2 announce route 10.0.0.0/24 next-hop self",
    "neighbor 192.0.2.1, neighbor 192.0.2.2 announce route 10.0.0.0/24 next-hop self",
    "neighbor 192.0.2.1 neighbor 192.0.2.2 announce route 10.0.0.0/24 next-hop self",
])
def test_selector_spellings(line):
    cmd = parse_command(line)
    assert cmd.selector == (NeighborFilter("192.0.2.1"), NeighborFilter("192.0.2.2"))
    assert cmd.routes[0][1] == n("10.0.0.0/24")


def test_selector_filters_and_star():
    cmd = parse_command("neighbor 192.0.2.1 local-ip 192.0.2.2 local-as 65001 peer-as 65000 router-id 1.1.1.1 "
                        "withdraw route 10.0.0.0/24")
    assert cmd.selector == (NeighborFilter("192.0.2.1", local_ip="192.0.2.2", local_as=65001, peer_as=65000,
                                           router_id="1.1.1.1"),)
    assert parse_command("neighbor * announce eor").selector == (NeighborFilter("*"),)
    assert "not an IP address" in error("neighbor bogus announce route 10.0.0.0/24 next-hop self")
    assert "needs a command" in error("neighbor 192.0.2.1")
    assert "does not take a neighbor selector" in error("neighbor 192.0.2.1 version")


# -- the other commands --------------------------------------------------------------------------------

def test_eor_and_route_refresh():
    assert parse_command("announce eor") == SendEndOfRib()
    assert parse_command("announce eor ipv6 unicast") == SendEndOfRib(IPV6_UNICAST)
    assert parse_command("announce route-refresh ipv4 unicast") == RequestRouteRefresh(IPV4_UNICAST)
    assert parse_command("announce route-refresh") == RequestRouteRefresh()
    assert "not supported" in error("announce eor ipv4 flow")
    assert parse_command("neighbor 192.0.2.1 announce eor").selector == (NeighborFilter("192.0.2.1"),)


def test_show_commands():
    assert parse_command("show neighbor summary") == ShowNeighbor(frozenset({"summary"}))
    assert parse_command("show neighbor 192.0.2.1 extensive") == \
        ShowNeighbor(frozenset({"extensive"}), target="192.0.2.1")
    assert parse_command("show neighbor json").options == frozenset({"json"})
    assert parse_command("show adj-rib out") == ShowAdjRib(frozenset({"out"}))
    assert parse_command("show adj-rib out extensive json").options == frozenset({"out", "extensive", "json"})
    assert parse_command("show adj-rib in").options == frozenset({"in"})
    assert "did you mean 'neighbor'" in error("show neighbour")


def test_simple_commands_and_acks():
    for word, kind in (("reload", Reload), ("shutdown", Shutdown), ("version", Version), ("help", Help),
                       ("enable-ack", EnableAck), ("disable-ack", DisableAck), ("silence-ack", SilenceAck),
                       ("restart", Restart)):
        assert parse_command(word) == kind()
    assert parse_command("flush adj-rib out") == FlushAdjRibOut()
    assert parse_command("neighbor 192.0.2.1 flush adj-rib out") == FlushAdjRibOut((NeighborFilter("192.0.2.1"),))
    assert parse_command("clear adj-rib in") == ClearAdjRib("in")
    assert parse_command("neighbor 192.0.2.1 teardown 2") == Teardown(2, (NeighborFilter("192.0.2.1"),))
    assert parse_command("# a comment") == Comment()
    assert Reload() != Help()  # the kind is part of a command's value
    assert "takes no arguments" in error("reload now")
    assert "Cease subcode" in error("teardown")


def test_watchdog_commands():
    self_hop = Attributes.make(next_hop="self")
    assert parse_command("announce route 10.0.0.0/24 next-hop self watchdog dns withdraw") == \
        AnnounceInWatchdog(((IPV4_UNICAST, n("10.0.0.0/24"), self_hop),), "dns", kept_back=True)
    assert parse_command("announce route 10.0.0.0/23 next-hop self split /24 watchdog dns") == \
        AnnounceInWatchdog(tuple((IPV4_UNICAST, n(p), self_hop) for p in ("10.0.0.0/24", "10.0.1.0/24")), "dns")
    assert parse_command("neighbor 192.0.2.1 announce watchdog dns") == \
        MoveWatchdog("dns", announce=True, selector=(NeighborFilter("192.0.2.1"),))
    assert parse_command("withdraw watchdog dns") == MoveWatchdog("dns", announce=False)


def test_unknown_commands_suggest():
    assert error("anounce route 10.0.0.0/24 next-hop self") == "unknown command 'anounce' (did you mean 'announce'?)"
    assert error("withdrew route 10.0.0.0/24") == "unknown command 'withdrew' (did you mean 'withdraw'?)"
    assert error("announce rout 10.0.0.0/24 next-hop self").startswith("unknown announce 'rout' (did you mean 'route'?)")
    assert error("announce watchdog") == "announce watchdog NAME: one name, the 'watchdog NAME' of the routes"
    assert error("clear adj-rib sideways") == "clear adj-rib in|out"
    assert error("   ") == "empty command"


def test_attribute_cache_does_not_leak_between_families():
    v4 = parse_command("announce route 10.0.0.0/24 next-hop 192.0.2.1").routes[0][2]
    assert v4.next_hop == "192.0.2.1"
    # the same tail text is an error for an IPv6 prefix (next hop of the wrong family)
    assert "IPv4" in error("announce route 2001:db8::/32 next-hop 192.0.2.1")


@pytest.mark.parametrize("line", [
    "withdraw route 1.1.0.0/25 next-hop 0.0.0.0",  # ExaBGP's own api-add-remove test writes this
    "withdraw route 1.1.0.0/25 next-hop self med many",
    "withdraw route 1.1.0.0/25 community [ 99999:1 ]",
    "withdraw ipv4 unicast 1.1.0.0/25 next-hop 0.0.0.0",
    "neighbor 127.0.0.1 withdraw route 1.1.0.0/25 next-hop 0.0.0.0",
    "withdraw attributes next-hop 0.0.0.0 nlri 1.1.0.0/25",
])
def test_a_withdraw_ignores_attribute_values_as_exabgp_does(line):
    """Before: 'cannot be used as a next hop', and the route stayed announced."""
    cmd = parse_command(line)
    assert isinstance(cmd, Withdraw)
    assert cmd.routes == ((IPV4_UNICAST, prefix_to_nlri("1.1.0.0/25")[1]),)


@pytest.mark.parametrize("line,message", [
    ("withdraw route 1.1.0.0/25 rd 65000:1", "VPN"),
    ("withdraw route 1.1.0.0/25 path-information 1.2.3", "path-information '1.2.3'"),
    ("withdraw route 1.1.0.0/25 next-hop self colour blue", "unknown route attribute 'colour'"),
])
def test_a_withdraw_still_refuses_another_nlri_or_a_word_that_is_no_attribute(line, message):
    with pytest.raises(CommandError, match=message):
        parse_command(line)
