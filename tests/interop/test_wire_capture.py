"""tshark as an independent wire-format oracle: one whole session of the speaker with BIRD
(open, routes of both families, withdraws, routes received, close) captured on the router's veth.

What counts: malformed packets (``_ws.malformed``) and expert infos of severity warning or above.
On clean BGP sessions tshark 4.0 raises, at warning level, only "Connection reset (RST)" on a
TCP connection that never carried a BGP message (a SYN refused because the other side was not
listening yet) or after a NOTIFICATION closed the session (unread data at close). That is
transport noise, listed but not counted (netlab.capture._ignorable). A RST that aborts a BGP
session without a NOTIFICATION does count: ExaBGP 5.0.15, for one, resolves a connection
collision that way (seen while building this harness); BIRD is passive here to avoid collisions.
Notes such as '"Time To Live" only 1' (direct eBGP) and chats are not counted either.
"""

from __future__ import annotations

import pytest
from interop_env import AGENT_AS, ROUTER_AS, ROUTES_V4, ROUTES_V6, bird_v4_peer, v4_neighbor, v6_neighbor

from netlab import BirdPeer

pytestmark = pytest.mark.interop


def test_one_whole_session_is_well_formed_on_the_wire(topo, bird, make_speaker, capture, speaker_kind):
    link = topo.link
    bird.add_static("st4", "ipv4", ["198.51.100.0/24 blackhole", "198.51.101.0/24 blackhole"])
    bird.add_static("st6", "ipv6", ["2001:db8:fff::/48 blackhole"])
    # BIRD passive: one TCP connection per session (no collision), so the capture is deterministic
    bird.add_peer(bird_v4_peer(link, export="all", passive=True))
    bird.add_peer(BirdPeer("agent6", neighbor=link.b6, peer_as=AGENT_AS, local_as=ROUTER_AS,
                           local_address=link.a6, ipv4=False, ipv6=True, export="all", passive=True))
    bird.start()
    cap = capture("session")
    speaker = make_speaker(topo.s, [v4_neighbor(link, adj_rib_in=True), v6_neighbor(link, adj_rib_in=True)])
    speaker.start()
    for proto, n in (("agent4", len(ROUTES_V4)), ("agent6", len(ROUTES_V6))):
        bird.wait_established(proto)
        bird.wait_imported(proto, n)
    # withdraw one route of each family, keep the session
    speaker.reload([v4_neighbor(link, routes=ROUTES_V4[1:], adj_rib_in=True),
                    v6_neighbor(link, routes=ROUTES_V6[1:], adj_rib_in=True)])
    bird.wait_imported("agent4", len(ROUTES_V4) - 1)
    bird.wait_imported("agent6", len(ROUTES_V6) - 1)
    # close
    speaker.stop()
    bird.wait_not_established("agent4", timeout=10)
    bird.wait_not_established("agent6", timeout=10)
    cap.stop()

    report = cap.report()
    assert report.malformed == 0 and not report.expert_warnings, f"tshark found problems:\n{report.summary()}"

    src = f"(ip.src == {link.b4} || ipv6.src == {link.b6})"
    sent = {int(t) for row in cap.frames(f"{src} && bgp", "bgp.type") for t in row[0].split(",") if t}
    assert {1, 2, 4} <= sent, f"the speaker's side of the capture lacks OPEN/UPDATE/KEEPALIVE: {sorted(sent)}"
    assert cap.count(f"ip.src == {link.b4} && bgp.update.withdrawn_routes.length > 0"), \
        "no IPv4 withdraw (UPDATE with withdrawn routes) from the speaker"
    assert cap.count(f"ipv6.src == {link.b6} && bgp.update.path_attribute.type_code == 15"), \
        "no IPv6 withdraw (MP_UNREACH_NLRI) from the speaker"
    assert cap.count(f"ipv6.src == {link.b6} && bgp.update.path_attribute.type_code == 14"), \
        "no IPv6 announcement (MP_REACH_NLRI) from the speaker"
    if speaker_kind == "fleetbgp":
        # a clean stop says goodbye: NOTIFICATION Cease (6) on both sessions
        notes = cap.frames(f"{src} && bgp.type == 3", "bgp.notify.major_error")
        assert len(notes) >= 2 and all(r[0].split(",")[0] == "6" for r in notes), \
            f"expected NOTIFICATION Cease from the speaker on both sessions, saw {notes}"
