"""The harness's own parsers, on outputs recorded from the real tools (BIRD 2.0.12, GoBGP 3.10,
ExaBGP 5.0.15, tshark 4.0.17): if a tool's output format changes, these fail first and say where."""

from __future__ import annotations

from datetime import datetime

import pytest

from netlab import Route, diff, expected, parse_bird_routes
from netlab.bfd import BirdBfdSession, bird_log_events, parse_bird_bfd_sessions
from netlab.capture import _parse_io_stat
from netlab.exabgp import normalise_exabgp
from netlab.gobgp import decode_gobgp_path

pytestmark = pytest.mark.interop

BIRD_SHOW_ROUTE_ALL = """BIRD 2.0.12 ready.
Table master4:
100.10.0.101/32      unicast [p4 21:10:15.006] * (100) [AS65001e]
\tvia 10.255.1.2 on fbt-4d9969-1a
\tType: BGP univ
\tBGP.origin: EGP
\tBGP.as_path: 65001
\tBGP.next_hop: 10.255.1.2
\tBGP.local_pref: 100
100.10.0.100/32      unicast [p4 21:10:15.006] * (100) [AS65010i]
\tvia 10.255.1.2 on fbt-4d9969-1a
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001 65010
\tBGP.next_hop: 10.255.1.2
\tBGP.med: 100
\tBGP.local_pref: 100
\tBGP.community: (65001,100) (65001,200)
\tBGP.large_community: (65001, 1, 1)

Table master6:
2001:db8:100::/48    unicast [agentll 21:22:25.368] * (100) [AS65001i]
\tvia fe80::2 on fbt-14dcad-1a
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001
\tBGP.next_hop: :: fe80::2
\tBGP.med: 5
\tBGP.local_pref: 100
"""


def test_parse_bird_show_route_all():
    routes = {r.prefix: r for r in parse_bird_routes(BIRD_SHOW_ROUTE_ALL)}
    assert set(routes) == {"100.10.0.101/32", "100.10.0.100/32", "2001:db8:100::/48"}
    r = routes["100.10.0.100/32"]
    assert (r.table, r.protocol, r.primary, r.gateway) == ("master4", "p4", True, "10.255.1.2")
    assert r.common() == {
        "prefix": "100.10.0.100/32", "next_hop": "10.255.1.2", "next_hops": ["10.255.1.2"], "origin": "igp",
        "as_path": [65001, 65010], "med": 100, "local_pref": 100,
        "communities": [(65001, 100), (65001, 200)], "large_communities": [(65001, 1, 1)],
        "ext_communities": [],
    }
    assert routes["100.10.0.101/32"].med is None
    assert routes["2001:db8:100::/48"].next_hop == ["::", "fe80::2"]


def test_expected_and_diff():
    route = Route("100.10.0.100/32", med=100, communities=[(65001, 200), (65001, 100)],
                  large_communities=[(65001, 1, 1)], as_path=[65010])
    want = {route.prefix: expected(route, 65001, ebgp=True, next_hop="10.255.1.2", default_local_pref=100)}
    got = {r.prefix: r.common() for r in parse_bird_routes(BIRD_SHOW_ROUTE_ALL)}
    got = {k: v for k, v in got.items() if k == route.prefix}
    assert diff(want, got) == []
    got[route.prefix]["med"] = 101
    assert diff(want, got) == ["100.10.0.100/32: med expected 100, received 101"]
    # ExaBGP-style expectation: a configured as-path is sent verbatim
    verbatim = expected(route, 65001, ebgp=True, next_hop="x", prepend_on_ebgp=False)
    assert verbatim["as_path"] == [65010]
    assert expected(Route("1.0.0.0/8"), 65001, ebgp=True, next_hop="x", prepend_on_ebgp=False)["as_path"] == [65001]
    ibgp = expected(Route("1.0.0.0/8", local_pref=50), 65000, ebgp=False, next_hop="x")
    assert (ibgp["as_path"], ibgp["local_pref"]) == ([], 50)
    assert diff({"a": want[route.prefix]}, {}) == ["a: missing at the receiver"]


def test_decode_gobgp_rib_json():
    path = {"attrs": [
        {"type": 1, "value": 0},
        {"type": 2, "as_paths": [{"segment_type": 2, "num": 2, "asns": [65001, 65010]}]},
        {"type": 3, "nexthop": "10.255.1.2"},
        {"type": 4, "metric": 100},
        {"type": 8, "communities": [4259905636]},
        {"type": 32, "value": [{"ASN": 65001, "LocalData1": 1, "LocalData2": 1}]},
    ], "best": True}
    d = decode_gobgp_path(path)
    assert (d["origin"], d["as_path"], d["next_hop"], d["med"]) == ("igp", [65001, 65010], "10.255.1.2", 100)
    assert d["communities"] == [(65001, 100)]
    assert d["large_communities"] == [(65001, 1, 1)]
    v6 = decode_gobgp_path({"attrs": [{"type": 14, "nexthop": "fd00:fb:0:1::2", "afi": 2, "safi": 1}]})
    assert v6["next_hop"] == "fd00:fb:0:1::2"


def test_normalise_exabgp_json_attributes():
    attrs = {"origin": "igp", "as-path": {"0": {"element": "as-sequence", "value": [65001, 65010]}},
             "confederation-path": [], "med": 100, "community": [[65001, 100]],
             "large-community": [[65001, 1, 1]]}
    r = normalise_exabgp("100.10.0.100/32", "ipv4 unicast", "10.255.1.2", attrs)
    assert (r["as_path"], r["med"], r["local_pref"], r["origin"]) == ([65001, 65010], 100, None, "igp")
    assert r["communities"] == [(65001, 100)] and r["large_communities"] == [(65001, 1, 1)]


def test_parse_tshark_io_stat():
    text = """
=================================================================
| IO Statistics                                                 |
| Interval       | Frames | Bytes | Frames | Bytes | Frames | Bytes | Frames | Bytes | Frames | Bytes |
|----------------------------------------------------------------|
| 0.000 <> 3.307 |     25 |  2411 |      9 |   971 |      3 |   397 |      0 |     0 |      1 |    54 |
=================================================================
"""
    assert _parse_io_stat(text) == (25, 9, 3, 0, 1)


# BIRD 2.0.12: a long interface name runs into the State column (one space, not aligned)
BIRD_SHOW_BFD_SESSIONS = """BIRD 2.0.12 ready.
bfd1:
IP address                Interface  State      Since         Interval  Timeout
fd00:fb:0:1::2            fbt-79a089-1a Up         08:26:23.911    0.300    0.900
10.255.1.2                fbt-79a089-1a Down       08:26:27.765    1.000    0.000
"""

BIRD_LOG = """=== start 08:30:53: ip netns exec fbt-32361f-r /usr/sbin/bird -f -c b1.conf
2026-12-07 08:26:27.765 <TRACE> bfd1: Session to 10.255.1.2 changed state from Up to Down
2026-12-07 08:26:27.765 <TRACE> p: BFD session down
2026-12-07 08:30:53.896 <AUTH> bfd1: Authentication failed for 10.255.1.2 - wrong authentication code (1)
"""


def test_parse_bird_bfd_sessions_and_log():
    s = parse_bird_bfd_sessions(BIRD_SHOW_BFD_SESSIONS)
    assert s["fd00:fb:0:1::2"] == BirdBfdSession("fd00:fb:0:1::2", "fbt-79a089-1a", "Up", "08:26:23.911", 0.3, 0.9)
    assert (s["10.255.1.2"].state, s["10.255.1.2"].interval, s["10.255.1.2"].timeout) == ("Down", 1.0, 0.0)
    down = bird_log_events(BIRD_LOG, r"^p: BFD session down")
    assert len(down) == 1 and down[0][1] == "p: BFD session down"
    assert down[0][0] == datetime(2026, 12, 7, 8, 26, 27, 765000).timestamp()
    assert len(bird_log_events(BIRD_LOG, r"Authentication failed for 10\.255\.1\.2", after=down[0][0] + 1)) == 1
    assert bird_log_events(BIRD_LOG, r"Session to", after=down[0][0] + 0.001) == []
