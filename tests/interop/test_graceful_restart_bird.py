"""Graceful restart (RFC 4724) against BIRD 2 with `graceful restart on`, the agent restarted
twice and then stopped, in one session of BIRD (graceful_restart_env.py has the scenarios):

1. kill -9, then started again with one route fewer: BIRD keeps the routes as stale while the
   agent is away, the new OPEN says Restart State 1 and Forwarding State 1, and the End-of-RIB
   after the initial routes removes only the route the new config no longer has;
2. `fleetbgp restart --graceful`, the agent started again after it exits 75 (what the unit's
   RestartForceExitStatus= does), with another route fewer: the same. BIRD 2.0.12 does not set
   RFC 8538's N bit, so the agent closes the TCP connection without any NOTIFICATION;
3. SIGTERM: Cease/Administrative Shutdown, and BIRD drops every route at once.

BIRD is sampled every 50 ms (its RIB, as fast as it answers): no kept route may be missing from any
sample, and BIRD's import time of each kept route is the one from before the restarts: BIRD never
withdrew and re-imported it (without Restart State and Forwarding State it drops the stale routes
at the reconnection and imports them again, a gap too short for any sampler but seen by every
router downstream)."""

from __future__ import annotations

import re

import graceful_restart_env as gre
import pytest
from interop_env import bird_v4_peer, v4_neighbor

pytestmark = pytest.mark.interop


def import_times(bird, proto: str) -> dict[str, str]:
    """{prefix: when BIRD imported it} (ms resolution, `timeformat route` set below)."""
    text = bird.birdc("show", "route", "protocol", proto)
    return dict(re.findall(rf"^(\S+)\s+unicast\s+\[{re.escape(proto)} (\S+)\]", text, re.M))


def test_bird_keeps_every_route_through_kill_and_graceful_restart_and_drops_them_on_stop(
        topo, bird, make_speaker, speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the agent's restarts (SIGKILL, fleetbgp restart --graceful) are what is measured")
    link = topo.link
    bird.extra.append('timeformat route "%T.%3f";')
    bird.add_peer(bird_v4_peer(link, extra="graceful restart on;"))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, routes=gre.ROUTES, extra=gre.GR)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(gre.ROUTES))
    router = gre.Router("BIRD", held=lambda: bird.rib("agent4"),
                        wait_up=lambda: bird.wait_established("agent4"))
    before = import_times(bird, "agent4")
    assert set(before) == gre.prefixes(gre.ROUTES), before

    # 1. kill -9 and 2. fleetbgp restart --graceful, one route fewer each time
    gre.kill_then_graceful_restart(speaker, router, link)
    log = speaker.log_text()
    assert "graceful restart: closed without NOTIFICATION" in log, "BIRD sets no N bit: a bare close"
    kept = gre.prefixes(gre.ROUTES[:-2])
    after = import_times(bird, "agent4")
    assert {p: after[p] for p in kept} == {p: before[p] for p in kept}, (
        f"BIRD withdrew and re-imported the kept routes (import times before {before}, after {after})")

    # 3. a real stop ends graceful restart
    gre.real_stop_drops_every_route(speaker, router)
    assert "sent NOTIFICATION Cease/Administrative Shutdown" in speaker.log_text()
