"""Graceful restart with ExaBGP 5.0.15 as the receiver, as far as it supports it.

ExaBGP is no graceful-restart helper (docs/agent/running.md, "ExaBGP as a graceful-restart
receiver": no stale routes, no restart timer; its adj-rib-in is cleared when the new session comes
up), so "no route ever absent" cannot hold and is not tested here. What it does support is checked:
it negotiates the capability and reads our flags -- every OPEN the agent sends after it starts
(the first one, and the one after a kill -9) says Restart State and Forwarding State for IPv4
unicast, whatever RFC 8538's N bit next to them -- and after the restart it ends with exactly the
routes of the new config, End-of-RIB included."""

from __future__ import annotations

import graceful_restart_env as gre
import pytest
from interop_env import AGENT_AS, ROUTER_AS, v4_neighbor

from netlab import ExaBgp, Neighbor
from netlab.util import wait_until

pytestmark = pytest.mark.interop


def received_opens(receiver: ExaBgp, peer: str) -> list[dict]:
    return [m["neighbor"]["open"] for m in receiver.messages()
            if m.get("type") == "open" and m["neighbor"].get("direction") == "receive"
            and m["neighbor"]["address"]["peer"] == peer]


def test_exabgp_reads_restart_and_forwarding_state_and_ends_with_the_new_routes(topo, make_speaker, speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the agent's restart is what is measured")
    link = topo.link
    router_side = Neighbor(link.b4, link.a4, ROUTER_AS, AGENT_AS, extra=gre.GR, api_receive_open=True)
    receiver = ExaBgp(topo.lab, topo.r, [router_side], receiver=True, name="exabgp-receiver",
                      listen=link.a4).start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, routes=gre.ROUTES, extra=gre.GR)]).start()
    receiver.wait_established(link.b4)
    receiver.wait_rib(link.b4, sorted(gre.prefixes(gre.ROUTES)))
    speaker.kill()
    speaker.neighbors = [v4_neighbor(link, routes=gre.ROUTES[:-1], extra=gre.GR)]
    speaker.start()
    wait_until(lambda: len(received_opens(receiver, link.b4)) >= 2, 30, "ExaBGP to receive the second OPEN",
               describe=receiver.log_tail)
    receiver.wait_established(link.b4)
    receiver.wait_rib(link.b4, sorted(gre.prefixes(gre.ROUTES[:-1])))
    for seen in received_opens(receiver, link.b4):
        gr = seen["capabilities"]["64"]
        assert gr["time"] == gre.RESTART_TIME, gr
        assert "forwarding" in gr["restart-flags"], f"no Restart State (ExaBGP names it 'forwarding'): {gr}"
        assert gr["address-family-flags"] == {"ipv4/unicast": ["restart"]}, (
            f"no Forwarding State for ipv4 unicast (ExaBGP names it 'restart'): {gr}")
    assert receiver.eor(link.b4).count("ipv4 unicast") >= 2, "an End-of-RIB after each session's routes"
