"""The speaker under test against BIRD 2 (Debian's bird2), both in their own network namespaces.

BIRD is the router (AS 65000, 10.255.1.1 / fd00:fb:0:1::1 / fe80::1), the speaker the server
(AS 65001, 10.255.1.2 / fd00:fb:0:1::2 / fe80::2). What BIRD holds is read with birdc
(``show route ... all``, ``show protocols all``); BIRD's timers are short (connect delay 1 s,
error wait 1-2 s) so that recoveries are quick.
"""

from __future__ import annotations

import re
import time

import pytest
from interop_env import (
    AGENT_AS,
    ROUTER_AS,
    ROUTES_V4,
    ROUTES_V6,
    assert_never,
    assert_routes,
    bird_v4_peer,
    v4_neighbor,
    v6_neighbor,
)

from netlab import BirdPeer, Neighbor, Route, diff, expected, nstat_counter, wait_until
from netlab.nstat import tcp_established

pytestmark = pytest.mark.interop


# -- sessions and attributes --------------------------------------------------------------------

def test_ipv4_session_routes_arrive_with_exact_attributes(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    assert_routes(bird, "agent4", ROUTES_V4, speaker, next_hop=link.b4)


def test_ipv6_session_over_global_address(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(BirdPeer("agent6", neighbor=link.b6, peer_as=AGENT_AS, local_as=ROUTER_AS,
                           local_address=link.a6, ipv4=False, ipv6=True))
    bird.start()
    speaker = make_speaker(topo.s, [v6_neighbor(link)]).start()
    bird.wait_established("agent6")
    bird.wait_imported("agent6", len(ROUTES_V6))
    assert_routes(bird, "agent6", ROUTES_V6, speaker, next_hop=link.b6)


def test_ipv6_session_over_link_local(topo, bird, make_speaker, speaker_kind):
    if speaker_kind == "exabgp":
        pytest.xfail("ExaBGP 5.0.15 cannot bind a session to a link-local address with a scope")
    link = topo.link
    bird.add_peer(BirdPeer("agentll", neighbor=f"{link.b_ll}%{link.a_if}", peer_as=AGENT_AS,
                           local_as=ROUTER_AS, ipv4=False, ipv6=True))
    bird.start()
    neighbor = Neighbor(f"{link.a_ll}%{link.b_if}", f"{link.b_ll}%{link.b_if}", AGENT_AS, ROUTER_AS,
                        router_id=link.b4, families=("ipv6 unicast",), routes=list(ROUTES_V6))
    speaker = make_speaker(topo.s, [neighbor]).start()
    bird.wait_established("agentll")
    bird.wait_imported("agentll", len(ROUTES_V6))
    got = bird.rib("agentll")
    for prefix, route in got.items():
        # over a link-local session the next hop is (or includes) the speaker's link-local address
        assert link.b_ll in route["next_hops"], f"{prefix}: next hop {route['next_hops']} lacks {link.b_ll}"
    want = {r.prefix: expected(r, AGENT_AS, ebgp=True, next_hop="-", prepend_on_ebgp=speaker.prepends_as_path,
                               default_local_pref=100) for r in ROUTES_V6}
    problems = diff(want, got, fields=("origin", "as_path", "med", "communities", "large_communities"))
    assert not problems, "\n".join(problems)


def test_ibgp_local_pref_and_as_path_kept(topo, bird, make_speaker):
    link = topo.link
    routes = [
        Route("100.10.0.100/32", med=100, local_pref=200, communities=[(65000, 100)],
              large_communities=[(65000, 1, 1)], as_path=[65010]),
        Route("100.10.0.110/32", local_pref=50, origin="egp"),
        Route("100.10.0.111/32"),  # no LOCAL_PREF configured: iBGP still carries one (default 100)
    ]
    bird.add_peer(BirdPeer("agent_ibgp", neighbor=link.b4, peer_as=ROUTER_AS, local_as=ROUTER_AS,
                           local_address=link.a4, extra="direct;", channel_extra="gateway direct;"))
    bird.start()
    speaker = make_speaker(topo.s, [Neighbor(link.a4, link.b4, ROUTER_AS, ROUTER_AS, routes=routes)]).start()
    bird.wait_established("agent_ibgp")
    bird.wait_imported("agent_ibgp", len(routes))
    assert_routes(bird, "agent_ibgp", routes, speaker, next_hop=link.b4, ebgp=False, local_as=ROUTER_AS)
    raw = bird.route("100.10.0.111/32", "agent_ibgp")
    assert "local_pref" in raw.attrs, "an iBGP UPDATE must carry LOCAL_PREF (RFC 4271 5.1.5)"


def test_withdraw_on_reload_without_flapping_the_session(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    since = bird.since("agent4")

    speaker.reload([v4_neighbor(link, routes=ROUTES_V4[:1])])
    bird.wait_imported("agent4", 1)
    assert_routes(bird, "agent4", ROUTES_V4[:1], speaker, next_hop=link.b4)

    speaker.reload([v4_neighbor(link, routes=ROUTES_V4)])
    bird.wait_imported("agent4", len(ROUTES_V4))
    assert_routes(bird, "agent4", ROUTES_V4, speaker, next_hop=link.b4)
    assert bird.since("agent4") == since, "the session flapped on a reload that changed only routes"
    assert bird.established("agent4")


# -- transport security ---------------------------------------------------------------------------

def test_md5_right_password_establishes(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link, password="s3cret-Pw"))
    bird.start()
    make_speaker(topo.s, [v4_neighbor(link, md5_password="s3cret-Pw")]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    # the speaker's own socket carries the key (not only BIRD's)
    ss = topo.s.run(["ss", "-tnie", "state", "established", "( dport = :179 or sport = :179 )"]).stdout
    assert "md5keys:" in ss, f"no TCP MD5 key on the speaker's BGP socket:\n{ss}"


def test_md5_wrong_password_never_establishes(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link, password="right-one"))
    bird.start()
    before = nstat_counter(topo.r, "TcpExtTCPMD5Failure") + nstat_counter(topo.s, "TcpExtTCPMD5Failure")
    speaker = make_speaker(topo.s, [v4_neighbor(link, md5_password="wrong-one")]).start()

    def failures():
        return nstat_counter(topo.r, "TcpExtTCPMD5Failure") + nstat_counter(topo.s, "TcpExtTCPMD5Failure")

    wait_until(lambda: failures() > before, 15, "TcpExtTCPMD5Failure to rise",
               describe=lambda: bird.diagnostics("agent4"))
    assert_never(lambda: bird.established("agent4") or speaker.established(link.a4), 5,
                 "a session with a wrong MD5 password established", describe=speaker.log_tail)


@pytest.mark.parametrize("gtsm", ["incoming-ttl 255; outgoing-ttl 255;", "incoming-ttl 255;", "ttl-security 255;"],
                         ids=["incoming+outgoing", "incoming-only", "exabgp3-ttl-security"])
def test_gtsm_on_both_sides(topo, bird, make_speaker, capture, speaker_kind, gtsm):
    if speaker_kind == "exabgp" and gtsm.startswith("ttl-security"):
        pytest.xfail("ExaBGP 5 does not accept ExaBGP 3's ttl-security keyword")
    link = topo.link
    bird.add_peer(bird_v4_peer(link, ttl_security=True))
    bird.start()
    cap = capture()
    make_speaker(topo.s, [v4_neighbor(link, extra=gtsm)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    cap.stop()
    ttls = {row[0] for row in cap.frames(f"ip.src == {link.b4} && bgp", "ip.ttl")}
    assert ttls == {"255"}, f"the speaker's BGP packets must have TTL 255, saw {sorted(ttls)}"


def test_gtsm_rejects_a_peer_that_does_not_send_ttl_255(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))  # BIRD without "ttl security": sends TTL 1 on direct eBGP
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, incoming_ttl=255, outgoing_ttl=255)]).start()
    assert_never(lambda: bird.established("agent4"), 6,
                 "a session with a peer sending TTL 1 established despite incoming-ttl 255",
                 describe=speaker.log_tail)


# -- failures and recovery ------------------------------------------------------------------------

def test_hold_timer_expires_when_bird_is_stopped_and_session_recovers(topo, bird, make_speaker, capture):
    link = topo.link
    bird.add_peer(bird_v4_peer(link, hold=9))
    bird.start()
    cap = capture()
    speaker = make_speaker(topo.s, [v4_neighbor(link, hold_time=9)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    sessions = tcp_established(topo.s)
    assert len(sessions) == 1, f"expected one BGP connection, found {sessions}"
    session = sessions[0]

    bird.pause()  # SIGSTOP: BIRD's kernel still ACKs, but no KEEPALIVE comes any more
    stopped_at = time.monotonic()
    try:
        wait_until(lambda: session not in tcp_established(topo.s), 20,
                   f"the speaker to drop the silent session {session} (hold time 9 s)",
                   describe=speaker.log_tail)
        took = time.monotonic() - stopped_at
        assert took > 5, f"the session was dropped {took:.1f}s after BIRD stopped: before any hold timer"
    finally:
        bird.resume()
    bird.wait_established("agent4", timeout=30)
    bird.wait_imported("agent4", len(ROUTES_V4))
    cap.stop()
    notes = topo.r.run(["tshark", "-n", "-r", str(cap.file), "-Y",
                        f"ip.src == {link.b4} && bgp.type == 3", "-T", "fields",
                        "-e", "bgp.notify.major_error"]).stdout.split()
    assert "4" in notes, f"no NOTIFICATION Hold Timer Expired (4) from the speaker on the wire; saw {notes}"


def test_birdc_restart_makes_the_speaker_reestablish_and_reannounce(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    for _ in range(2):
        since = bird.since("agent4")
        bird.restart("agent4")
        wait_until(lambda s=since: bird.since("agent4") != s and bird.established("agent4"), 30,
                   "BIRD to re-establish after `birdc restart`", describe=lambda: bird.diagnostics("agent4"))
        bird.wait_imported("agent4", len(ROUTES_V4))
        assert_routes(bird, "agent4", ROUTES_V4, speaker, next_hop=link.b4)


def test_bird_process_killed_and_restarted(topo, bird, make_speaker):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.add_peer(BirdPeer("agent6", neighbor=link.b6, peer_as=AGENT_AS, local_as=ROUTER_AS,
                           local_address=link.a6, ipv4=False, ipv6=True))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link), v6_neighbor(link)]).start()
    for proto, n in (("agent4", len(ROUTES_V4)), ("agent6", len(ROUTES_V6))):
        bird.wait_established(proto)
        bird.wait_imported(proto, n)
    bird.kill()  # SIGKILL: no NOTIFICATION, the kernel closes BIRD's sockets
    wait_until(lambda: not tcp_established(topo.s), 10, "the speaker to see the connections close",
               describe=speaker.log_tail)
    bird.start()
    for proto, n in (("agent4", len(ROUTES_V4)), ("agent6", len(ROUTES_V6))):
        bird.wait_established(proto, timeout=30)
        bird.wait_imported(proto, n)
    assert_routes(bird, "agent4", ROUTES_V4, speaker, next_hop=link.b4)
    assert_routes(bird, "agent6", ROUTES_V6, speaker, next_hop=link.b6)


# -- what the speaker receives --------------------------------------------------------------------

def test_speaker_decodes_routes_bird_exports(topo, bird, make_speaker):
    link = topo.link
    v4 = [f"198.51.{i}.0/24 blackhole" for i in range(5)] + ["203.0.113.7/32 blackhole"]
    v6 = [f"2001:db8:f{i}::/48 blackhole" for i in range(3)]
    bird.add_static("st4", "ipv4", v4)
    bird.add_static("st6", "ipv6", v6)
    bird.add_peer(bird_v4_peer(link, export="all"))
    bird.add_peer(BirdPeer("agent6", neighbor=link.b6, peer_as=AGENT_AS, local_as=ROUTER_AS,
                           local_address=link.a6, ipv4=False, ipv6=True, export="all"))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, routes=[], adj_rib_in=True),
                                    v6_neighbor(link, routes=[], adj_rib_in=True)]).start()
    bird.wait_established("agent4")
    bird.wait_established("agent6")
    want4, want6 = {"ipv4 unicast": len(v4)}, {"ipv6 unicast": len(v6)}
    wait_until(lambda: speaker.rib_in_counts(link.a4) == want4, 20,
               f"the speaker to report adj-rib-in {want4} from {link.a4}",
               describe=lambda: f"last reported: {speaker.rib_in_counts(link.a4)}\n{speaker.log_tail()}")
    wait_until(lambda: speaker.rib_in_counts(link.a6) == want6, 20,
               f"the speaker to report adj-rib-in {want6} from {link.a6}",
               describe=lambda: f"last reported: {speaker.rib_in_counts(link.a6)}\n{speaker.log_tail()}")
    # the speaker complained about nothing it received
    bad = [ln for ln in speaker.log_tail(500).splitlines()
           if re.search(r"(?i)\b(error|malformed|treat-as-withdraw|discard)", ln)]
    assert not bad, "the speaker logged problems with what BIRD sent:\n" + "\n".join(bad)


def test_four_octet_as_number(topo, bird, make_speaker):
    link = topo.link
    big_as = 4200000001
    bird.add_peer(bird_v4_peer(link, peer_as=big_as))
    bird.start()
    speaker = make_speaker(topo.s, [Neighbor(link.a4, link.b4, big_as, ROUTER_AS, routes=list(ROUTES_V4))]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    assert_routes(bird, "agent4", ROUTES_V4, speaker, next_hop=link.b4, local_as=big_as)


def test_route_refresh_from_bird_gets_everything_again(topo, bird, make_speaker, capture):
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    cap = capture()
    make_speaker(topo.s, [v4_neighbor(link, extra="capability { route-refresh; }")]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    since = bird.since("agent4")
    bird.birdc("reload", "in", "agent4")  # BIRD sends ROUTE-REFRESH and expects the table again
    time.sleep(1)
    cap.stop()
    assert bird.since("agent4") == since and bird.established("agent4"), "the session flapped"
    refresh = cap.frames(f"ip.src == {link.a4} && bgp.type == 5")
    assert refresh, "BIRD sent no ROUTE-REFRESH (was the capability negotiated?)"
    after = cap.frames(f"ip.src == {link.b4} && bgp.type == 2 && frame.number > {refresh[0][0]}",
                       "bgp.nlri_prefix")
    prefixes = {p.split("/")[0] for row in after for p in row[0].split(",") if p}
    want = {r.prefix.split("/")[0] for r in ROUTES_V4}
    assert want <= prefixes, f"after ROUTE-REFRESH the speaker re-sent only {sorted(prefixes)}"
    bird.wait_imported("agent4", len(ROUTES_V4))
