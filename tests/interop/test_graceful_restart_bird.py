"""Graceful restart (RFC 4724) against BIRD 2 with `graceful restart on`: the agent killed with
SIGKILL and started again. BIRD keeps the routes as stale while the agent is away, the new OPEN
says Restart State 1 and Forwarding State 1 for IPv4 unicast, and the End-of-RIB after the initial
routes removes only the route the new config no longer has. BIRD is sampled as fast as it answers
(its RIB, every 50 ms at most): no kept route may be missing from any sample, and BIRD's import
time of each kept route is the one from before the restart: BIRD never withdrew and re-imported it
(without Restart State and Forwarding State it drops the stale routes at the reconnection and
imports them again, a gap too short for any sampler but seen by every router downstream)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from interop_env import ROUTES_V4, bird_v4_peer, v4_neighbor

GR = "capability { graceful-restart 120; }"


def import_times(bird, proto: str) -> dict[str, str]:
    """{prefix: when BIRD imported it} (ms resolution, `timeformat route` set below)."""
    text = bird.birdc("show", "route", "protocol", proto)
    return dict(re.findall(rf"^(\S+)\s+unicast\s+\[{re.escape(proto)} (\S+)\]", text, re.M))


class Sampler(threading.Thread):
    """BIRD's routes from the agent, sampled until stopped: which kept prefixes were ever missing."""

    def __init__(self, bird, proto: str, kept: set[str]) -> None:
        super().__init__(daemon=True)
        self.bird, self.proto, self.kept = bird, proto, kept
        self.samples = 0
        self.missing: list[tuple[float, set[str]]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            started = time.monotonic()
            held = set(self.bird.rib(self.proto))
            self.samples += 1
            if self.kept - held:
                self.missing.append((started, self.kept - held))
            self._done.wait(max(0.0, 0.05 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._done.set()
        self.join(10)


def test_kill_and_restart_keeps_every_route_at_bird_and_end_of_rib_removes_the_gone_one(
        topo, bird, make_speaker, speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the agent's restart (SIGKILL, start again) is what is measured")
    link = topo.link
    bird.extra.append('timeformat route "%T.%3f";')
    bird.add_peer(bird_v4_peer(link, extra="graceful restart on;"))
    bird.start()
    speaker = make_speaker(topo.s, [v4_neighbor(link, extra=GR)]).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    gone, kept = ROUTES_V4[-1].prefix, {r.prefix for r in ROUTES_V4[:-1]}
    before = import_times(bird, "agent4")
    assert set(before) == kept | {gone}, before

    sampler = Sampler(bird, "agent4", kept)
    sampler.start()
    try:
        speaker.kill()
        time.sleep(1.0)  # BIRD notices the connection is gone and marks the routes stale
        speaker.neighbors = [v4_neighbor(link, routes=ROUTES_V4[:-1], extra=GR)]
        speaker.start()
        bird.wait_established("agent4")
        deadline = time.monotonic() + 20
        while gone in bird.rib("agent4") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        sampler.stop()
    assert sampler.samples > 20, f"only {sampler.samples} samples of BIRD's RIB"
    assert not sampler.missing, (
        f"BIRD lost kept routes during the restart ({len(sampler.missing)} of {sampler.samples} "
        f"samples), first: {sorted(sampler.missing[0][1])}")
    held = bird.rib("agent4")
    assert gone not in held, "End-of-RIB should have removed the route the new config dropped"
    assert set(held) == kept
    after = import_times(bird, "agent4")
    assert {p: after[p] for p in kept} == {p: before[p] for p in kept}, (
        f"BIRD withdrew and re-imported the kept routes (import times before {before}, after {after})")
