"""Reload without flaps, against BIRD 2: two neighbors, only the changed one restarts; a broken
file changes nothing on the wire."""

from __future__ import annotations

import pytest
from interop_env import ROUTES_V4, assert_never, bird_v4_peer, v4_neighbor

from netlab import Route


@pytest.fixture
def two_links(topo):
    """A second veth between the same namespaces: BIRD sees the agent as two neighbors."""
    return topo.link, topo.lab.link(topo.r, topo.s)


def test_only_the_changed_neighbor_restarts(topo, bird, make_speaker, speaker_kind, two_links):
    if speaker_kind != "fleetbgp":
        pytest.skip("ExaBGP restarts every neighbor whose block changed; this is fleetbgp's promise")
    first, second = two_links
    bird.add_peer(bird_v4_peer(first, name="agent_a"))
    bird.add_peer(bird_v4_peer(second, name="agent_b"))
    bird.start()
    n1 = v4_neighbor(first, routes=ROUTES_V4[:1])
    n2 = v4_neighbor(second, routes=ROUTES_V4[1:2])
    speaker = make_speaker(topo.s, [n1, n2]).start()
    for proto in ("agent_a", "agent_b"):
        bird.wait_established(proto)
        bird.wait_imported(proto, 1)
    since_first, since_second = bird.since("agent_a"), bird.since("agent_b")

    # Add a route to the first neighbor and change the second one's hold time.
    n1 = v4_neighbor(first, routes=[*ROUTES_V4[:1], Route("100.10.9.0/24", med=9)])
    n2 = v4_neighbor(second, routes=ROUTES_V4[1:2], hold_time=12)
    speaker.reload([n1, n2])
    bird.wait_imported("agent_a", 2)
    assert bird.route("100.10.9.0/24", "agent_a").attrs["med"] == "9"
    speaker.wait_log(r"neighbor \S+ restarted \(session settings changed\)")
    bird.wait_established("agent_b")
    assert bird.since("agent_a") == since_first, "an unchanged neighbor's session flapped on reload"
    assert bird.since("agent_b") != since_second, "the changed neighbor kept its old session"
    bird.wait_imported("agent_b", 1)


def test_broken_file_changes_nothing(topo, bird, make_speaker, speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("checks fleetbgp's reload error report")
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    since = bird.since("agent4")
    before = bird.rib("agent4")

    good = speaker.config_text()
    broken = good.replace("route 100.10.0.100/32", "route 100.10.0.100/33", 1)
    assert broken != good
    speaker.reload(config_text=broken)
    matches = speaker.wait_log(r"reload refused, keeping the running configuration")
    assert matches
    log = speaker.log_text()
    assert ":" in log and "prefix length must be 0..32" in log, "the error must name the problem"
    assert_never(lambda: bird.imported_count("agent4") != len(ROUTES_V4), 2,
                 "BIRD's routes changed after a broken reload")
    assert bird.rib("agent4") == before
    assert bird.since("agent4") == since
    assert bird.established("agent4")
