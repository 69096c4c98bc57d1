"""The speaker under test against GoBGP (Debian's gobgpd 3.x) as the receiver.

gobgpd runs in the router namespace with its gRPC API on that namespace's loopback; the
``gobgp`` CLI reads its RIB as JSON. GoBGP is passive here: its own connect timer waits several
seconds before dialing, and the speaker dials anyway.
"""

from __future__ import annotations

import pytest
from interop_env import AGENT_AS, ROUTER_AS, ROUTES_V4, ROUTES_V6, v4_neighbor, v6_neighbor

from netlab import GoBgpPeer, diff, expected

pytestmark = pytest.mark.interop


def want(routes, speaker, next_hop):
    return {r.prefix: expected(r, AGENT_AS, ebgp=True, next_hop=next_hop,
                               prepend_on_ebgp=speaker.prepends_as_path) for r in routes}


def test_gobgp_receives_ipv4_and_ipv6_routes_with_attributes(topo, gobgp, make_speaker):
    link = topo.link
    gobgp.add_peer(GoBgpPeer(link.b4, AGENT_AS, local_address=link.a4, passive=True))
    gobgp.add_peer(GoBgpPeer(link.b6, AGENT_AS, local_address=link.a6, families=("ipv6-unicast",),
                             passive=True))
    gobgp.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link), v6_neighbor(link)]).start()
    gobgp.wait_established(link.b4)
    gobgp.wait_established(link.b6)
    got4 = gobgp.wait_rib([r.prefix for r in ROUTES_V4], "ipv4")
    got6 = gobgp.wait_rib([r.prefix for r in ROUTES_V6], "ipv6")
    problems = diff(want(ROUTES_V4, speaker, link.b4), got4) + diff(want(ROUTES_V6, speaker, link.b6), got6)
    assert not problems, "GoBGP holds routes that differ from what was announced:\n" + "\n".join(problems)


def test_gobgp_sees_the_withdraw(topo, gobgp, make_speaker):
    link = topo.link
    gobgp.add_peer(GoBgpPeer(link.b4, AGENT_AS, local_address=link.a4, passive=True))
    gobgp.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link)]).start()
    gobgp.wait_established(link.b4)
    gobgp.wait_rib([r.prefix for r in ROUTES_V4], "ipv4")
    speaker.reload([v4_neighbor(link, routes=ROUTES_V4[1:])])
    got = gobgp.wait_rib([r.prefix for r in ROUTES_V4[1:]], "ipv4")
    problems = diff(want(ROUTES_V4[1:], speaker, link.b4), got)
    assert not problems, "\n".join(problems)
    assert gobgp.established(link.b4)


def test_gobgp_dials_the_speaker(topo, gobgp, make_speaker):
    """A passive speaker: GoBGP dials (connect-retry 1 s, the shortest GoBGP allows) its listener."""
    link = topo.link
    gobgp.add_peer(GoBgpPeer(link.b4, AGENT_AS, local_address=link.a4))
    gobgp.start()
    make_speaker(topo.s, [v4_neighbor(link, passive=True)]).start()
    gobgp.wait_established(link.b4, timeout=40)
    gobgp.wait_rib([r.prefix for r in ROUTES_V4], "ipv4")


_ = ROUTER_AS
