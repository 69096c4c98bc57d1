"""Shared data and helpers of the interop tests (a plain module: tests/interop is on sys.path)."""

from __future__ import annotations

import time

from netlab import BirdPeer, Neighbor, Route, diff, expected

ROUTER_AS = 65000   # BIRD / GoBGP / ExaBGP-receiver side
AGENT_AS = 65001    # the speaker under test

# What the speaker announces in most tests: every attribute the issue names, and some defaults.
ROUTES_V4 = [
    Route("100.10.0.100/32", med=100, communities=[(65001, 100), (65001, 200)],
          large_communities=[(65001, 1, 1)], as_path=[65010]),
    Route("100.10.0.101/32", origin="egp", as_path=[65010, 65020], med=0,
          communities=[(65535, 65281)], large_communities=[(65001, 2, 2), (4200000000, 7, 8)]),
    Route("100.10.1.0/24", origin="incomplete"),
]
ROUTES_V6 = [
    Route("2001:db8:100::/48", med=50, communities=[(65001, 600)], large_communities=[(65001, 6, 6)],
          as_path=[65010]),
    Route("2001:db8:101::1/128", origin="egp"),
]


def v4_neighbor(link, routes=ROUTES_V4, **kw) -> Neighbor:
    return Neighbor(link.a4, link.b4, AGENT_AS, kw.pop("peer_as", ROUTER_AS), routes=list(routes), **kw)


def v6_neighbor(link, routes=ROUTES_V6, **kw) -> Neighbor:
    return Neighbor(link.a6, link.b6, AGENT_AS, ROUTER_AS, router_id=link.b4, families=("ipv6 unicast",),
                    routes=list(routes), **kw)


def bird_v4_peer(link, name="agent4", **kw) -> BirdPeer:
    return BirdPeer(name, neighbor=link.b4, peer_as=kw.pop("peer_as", AGENT_AS), local_as=ROUTER_AS,
                    local_address=link.a4, **kw)


def assert_routes(bird, proto, routes, speaker, next_hop, ebgp=True, local_as=AGENT_AS):
    want = {r.prefix: expected(r, local_as, ebgp=ebgp, next_hop=next_hop,
                               prepend_on_ebgp=speaker.prepends_as_path, default_local_pref=100)
            for r in routes}
    got = bird.rib(proto)
    problems = diff(want, got)
    assert not problems, "BIRD holds routes that differ from what was announced:\n" + "\n".join(problems)


def assert_never(predicate, seconds: float, what: str, describe=None) -> None:
    """``predicate`` stays false for the whole window (a bounded negative check)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            raise AssertionError(f"{what} happened, but must not" + (f"\n{describe()}" if describe else ""))
        time.sleep(0.2)


