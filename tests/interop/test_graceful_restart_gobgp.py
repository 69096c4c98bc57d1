"""Graceful restart (RFC 4724, RFC 8538) against GoBGP 3 (Debian's gobgpd) with graceful restart
and `notification-enabled` (the N bit) on: the scenarios of test_graceful_restart_bird.py
(graceful_restart_env.py), where both sides set N, so

- `fleetbgp restart --graceful` ends the session with Cease/Administrative Reset, which keeps
  graceful restart going (RFC 8538 3), and GoBGP keeps every route until our End-of-RIB;
- a real stop (SIGTERM) sends Cease/Hard Reset carrying the Administrative Shutdown, and GoBGP
  drops every route at once.

GoBGP's RIB is sampled every 50 ms with `gobgp global rib -j`: no kept route may be missing."""

from __future__ import annotations

import graceful_restart_env as gre
import pytest
from interop_env import AGENT_AS, v4_neighbor

from netlab import GoBgpPeer

pytestmark = pytest.mark.interop


def test_gobgp_keeps_every_route_through_kill_and_graceful_restart_and_drops_them_on_stop(
        topo, gobgp, make_speaker, speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the agent's restarts (SIGKILL, fleetbgp restart --graceful) are what is measured")
    link = topo.link
    gobgp.add_peer(GoBgpPeer(link.b4, AGENT_AS, local_address=link.a4, passive=True,
                             graceful_restart=gre.RESTART_TIME, gr_notification=True))
    gobgp.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, routes=gre.ROUTES, extra=gre.GR)]).start()
    gobgp.wait_established(link.b4)
    gobgp.wait_rib(gre.prefixes(gre.ROUTES), "ipv4")
    router = gre.Router("GoBGP", held=lambda: gobgp.rib("ipv4"),
                        wait_up=lambda: gobgp.wait_established(link.b4))

    # 1. kill -9 and 2. fleetbgp restart --graceful, one route fewer each time; the graceful one
    # ends the session with a Cease that keeps graceful restart (N on both sides)
    gre.kill_then_graceful_restart(speaker, router, link)
    assert "sent NOTIFICATION Cease/Administrative Reset" in speaker.log_text()

    # 3. a real stop: Hard Reset, GoBGP drops every route
    gre.real_stop_drops_every_route(speaker, router)
    assert "sent NOTIFICATION Cease/Hard Reset (Cease/Administrative Shutdown)" in speaker.log_text()
