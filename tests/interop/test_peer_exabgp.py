"""The speaker under test against ExaBGP 5.0.15 as the receiver.

ExaBGP runs in the router namespace with an API process that appends every message it decodes
(JSON encoder, ``receive { parsed; update; }``) to a file; the test replays that file into a RIB.
ExaBGP both listens (exabgp.tcp.bind) and dials, so either side may win the connection.
"""

from __future__ import annotations

import pytest
from interop_env import AGENT_AS, ROUTER_AS, ROUTES_V4, ROUTES_V6

from netlab import ExaBgp, Neighbor, diff, expected

pytestmark = pytest.mark.interop


def test_exabgp_receives_ipv4_and_ipv6_routes_with_attributes(topo, make_speaker):
    link = topo.link
    receiver = ExaBgp(topo.lab, topo.r, [
        Neighbor(link.b4, link.a4, ROUTER_AS, AGENT_AS),
        Neighbor(link.b6, link.a6, ROUTER_AS, AGENT_AS, router_id=link.a4, families=("ipv6 unicast",)),
    ], receiver=True, name="exabgp-receiver", listen=f"{link.a4} {link.a6}").start()
    speaker = make_speaker(topo.s, [
        Neighbor(link.a4, link.b4, AGENT_AS, ROUTER_AS, routes=list(ROUTES_V4)),
        Neighbor(link.a6, link.b6, AGENT_AS, ROUTER_AS, router_id=link.b4, families=("ipv6 unicast",),
                 routes=list(ROUTES_V6)),
    ]).start()
    receiver.wait_established(link.b4)
    receiver.wait_established(link.b6)
    got4 = receiver.wait_rib(link.b4, [r.prefix for r in ROUTES_V4])
    got6 = receiver.wait_rib(link.b6, [r.prefix for r in ROUTES_V6])

    def want(routes, nh):
        return {r.prefix: expected(r, AGENT_AS, ebgp=True, next_hop=nh, prepend_on_ebgp=speaker.prepends_as_path)
                for r in routes}

    problems = diff(want(ROUTES_V4, link.b4), got4) + diff(want(ROUTES_V6, link.b6), got6)
    assert not problems, "ExaBGP decoded routes that differ from what was announced:\n" + "\n".join(problems)
    # ExaBGP logs what it could not parse; nothing of the kind may appear
    bad = [ln for ln in receiver.log_text().splitlines() if "error" in ln.lower() or "invalid" in ln.lower()]
    assert not bad, "ExaBGP complained:\n" + "\n".join(bad)
