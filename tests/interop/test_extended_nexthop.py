"""The extended next hop (RFC 8950) on an IPv6-only link: IPv4 service routes with an IPv6 next
hop, between the agent and BIRD 2 (`ipv4 { extended next hop on; }`) and GoBGP.

The link's IPv4 addresses are removed first: an IPv4 next hop could not be resolved on it, so a
route BIRD installs as reachable proves the IPv6 next hop was carried and used. tshark checks
that every UPDATE on the wire is well-formed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from interop_env import AGENT_AS, ROUTER_AS

from netlab import BirdPeer, GoBgp, GoBgpPeer, Neighbor, Route, wait_until
from netlab.fleetbgp import AGENT_SRC

pytestmark = pytest.mark.interop

SERVICES = [Route("100.10.0.100/32", med=100), Route("100.10.1.0/24")]
WRITTEN = Route("100.10.2.0/24", next_hop="fd00:fb:0:1::2")  # the agent's own address, written
BIRD_ROUTES = ["198.51.100.0/24 blackhole", "203.0.113.0/25 blackhole"]
NEXTHOP = "nexthop { ipv4 unicast ipv6; }"


@pytest.fixture
def ipv6_only(topo):
    """The lab link without its IPv4 addresses (both ends)."""
    link = topo.link
    topo.r.run(["ip", "-4", "addr", "flush", "dev", link.a_if])
    topo.s.run(["ip", "-4", "addr", "flush", "dev", link.b_if])
    return topo


@pytest.fixture(autouse=True)
def _agent_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the agent's extended next hop (ExaBGP's own is covered by tests/parity)")


def agent_neighbor(link, routes, **kw) -> Neighbor:
    return Neighbor(link.a6, link.b6, AGENT_AS, ROUTER_AS, router_id="10.255.9.2",
                    families=("ipv4 unicast", "ipv6 unicast"), routes=list(routes), adj_rib_in=True,
                    extra=NEXTHOP, **kw)


def received(agent) -> list[dict]:
    """The agent's adj-rib-in, from its control socket (`fleetbgp show routes --received`)."""
    env = {**os.environ, "PYTHONPATH": str(AGENT_SRC)}
    cp = subprocess.run([sys.executable, "-m", "fleetbgp", "show", "routes", "--received", "--json",
                         "--socket", str(agent.control_socket)],
                        capture_output=True, text=True, env=env, timeout=60, check=False)
    if cp.returncode != 0:
        return []
    return json.loads(cp.stdout)["routes"]


def check_wire(cap, link) -> None:
    """tshark (an independent dissector) finds every BGP message well-formed, and the IPv4 routes
    in MP_REACH_NLRI (AFI 1) with an IPv6 next hop, both ways (RFC 8950)."""
    cap.stop()
    report = cap.report()
    assert report.updates > 0 and report.clean, report.summary()
    mp = "bgp.update.path_attribute.mp_reach_nlri"
    for sender in (link.b6, link.a6):  # the agent's, then BIRD's
        found = cap.count(f"{mp}.afi == 1 && {mp}.safi == 1 && {mp}.next_hop.ipv6 == {sender}"
                          " && bgp.mp_reach_nlri_ipv4_prefix")
        assert found > 0, f"no IPv4 route with next hop {sender} in MP_REACH_NLRI on the wire"


def test_bird_installs_ipv4_routes_with_the_agents_ipv6_next_hop(ipv6_only, bird, make_speaker, capture):
    topo = ipv6_only
    link = topo.link
    channels = ("ipv4 { import all; export all; extended next hop on; };\n"
                "  ipv6 { import all; export none; };")
    bird.add_static("st4", "ipv4", BIRD_ROUTES)
    bird.add_peer(BirdPeer("agent6", neighbor=link.b6, peer_as=AGENT_AS, local_as=ROUTER_AS,
                           local_address=link.a6, ipv4=False, ipv6=False, extra=channels))
    cap = capture()
    bird.start()
    agent = make_speaker(topo.s, [agent_neighbor(link, [*SERVICES, WRITTEN])])
    # The agent the lab starts is this tree's (PYTHONPATH=AGENT_SRC first).
    assert str(AGENT_SRC).startswith(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    agent.start()
    bird.wait_established("agent6")
    bird.wait_imported("agent6", len(SERVICES) + 1)

    routes = {r.prefix: r for r in bird.routes(proto="agent6")}
    assert set(routes) == {r.prefix for r in [*SERVICES, WRITTEN]}
    for prefix, route in routes.items():
        # BGP.next_hop is the agent's IPv6 address (global; BIRD may show a link-local second),
        # the route is usable (primary, "via ADDRESS on IFACE"), not unreachable.
        assert route.next_hop[:1] == [link.b6], (prefix, route)
        assert route.gateway == link.b6, (prefix, route)
        assert route.primary, (prefix, route)
    assert routes["100.10.0.100/32"].med == 100
    info = bird.protocol_info("agent6")
    assert "extended next hop" in info.lower() or "extended-next-hop" in info.lower(), info

    # The other way: BIRD's IPv4 routes, with BIRD's IPv6 address as next hop, in the agent's rib-in.
    def got() -> dict[str, str]:
        return {r["prefix"]: r.get("next_hop") for r in received(agent) if r.get("family") == "ipv4 unicast"}

    want = {r.split()[0]: link.a6 for r in BIRD_ROUTES}
    wait_until(lambda: got() == want, 20, "the agent to hold BIRD's IPv4 routes with an IPv6 next hop",
               describe=lambda: f"{got()}\n{agent.log_tail()}")
    assert "peer did not offer the extended next hop" not in agent.log_text()

    check_wire(cap, link)


def test_gobgp_receives_and_sends_ipv4_routes_with_ipv6_next_hops(ipv6_only, make_speaker):
    """GoBGP offers the extended next hop for ipv4-unicast on an IPv6 session by itself."""
    topo = ipv6_only
    link = topo.link
    # Listening on the IPv6 address only: the link has no IPv4 one left.
    gobgp = GoBgp(topo.lab, topo.r, asn=ROUTER_AS, router_id=link.a4, listen=[link.a6])
    gobgp.add_peer(GoBgpPeer(link.b6, AGENT_AS, local_address=link.a6, passive=True,
                             families=("ipv4-unicast", "ipv6-unicast")))
    gobgp.start()
    gobgp.cli("global", "rib", "-a", "ipv4", "add", "198.51.100.0/24", "nexthop", link.a6)
    agent = make_speaker(topo.s, [agent_neighbor(link, [*SERVICES, WRITTEN])]).start()
    gobgp.wait_established(link.b6)
    # GoBGP's global RIB also holds its own route.
    got = gobgp.wait_rib([r.prefix for r in [*SERVICES, WRITTEN]] + ["198.51.100.0/24"], "ipv4")
    for prefix, route in got.items():
        if prefix != "198.51.100.0/24":
            assert route["next_hop"] == link.b6, (prefix, route)
    assert "peer did not offer the extended next hop" not in agent.log_text()

    def received_v4() -> dict[str, str]:
        return {r["prefix"]: r.get("next_hop") for r in received(agent) if r.get("family") == "ipv4 unicast"}

    wait_until(lambda: received_v4() == {"198.51.100.0/24": link.a6}, 20,
               "the agent to hold GoBGP's IPv4 route with an IPv6 next hop",
               describe=lambda: f"{received_v4()}\n{agent.log_tail()}")
