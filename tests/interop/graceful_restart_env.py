"""Shared by the graceful-restart interop tests (test_graceful_restart_bird.py, _gobgp.py): the
routes, a sampler of the router's RIB, and the three things done to the agent -- kill -9 and start
again, `fleetbgp restart --graceful` with the unit's restart emulated, and a real stop (SIGTERM).

The router is seen through two callables (`Router`), so BIRD and GoBGP run the same scenarios:
`held()` the prefixes it has from the agent now, `wait_up()` until the session is Established."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from interop_env import ROUTES_V4, v4_neighbor

from netlab import Route
from netlab.util import wait_until

RESTART_TIME = 120  # ours, offered in the capability: far longer than any wait below
GR = f"capability {{ graceful-restart {RESTART_TIME}; }}"
# Six routes: one is removed from the config while the agent is down after the kill, another
# while it is down for the graceful restart; four are kept throughout.
ROUTES = [*ROUTES_V4, Route("100.10.2.0/24"), Route("100.10.3.0/24"), Route("100.10.4.0/24")]
SAMPLE_EVERY = 0.05  # seconds between the starts of two samples (each takes what the router takes)
# Margins for a loaded 2-core machine, not timings: the router must have dropped every route within
# STOP_DROP_WITHIN of a real stop (graceful restart would keep them RESTART_TIME seconds).
STOP_DROP_WITHIN = 15.0
EOR_WITHIN = 30.0


@dataclass
class Router:
    name: str
    held: Callable[[], Iterable[str]]  # prefixes it has from the agent, stale ones included
    wait_up: Callable[[], None]        # until the session with the agent is Established again


class Sampler(threading.Thread):
    """The router's routes from the agent, sampled every SAMPLE_EVERY seconds until stopped:
    which of `kept` were ever missing."""

    def __init__(self, router: Router, kept: set[str]) -> None:
        super().__init__(daemon=True)
        self.router, self.kept = router, kept
        self.samples = 0
        self.missing: list[tuple[float, set[str]]] = []
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            started = time.monotonic()
            try:
                held = set(self.router.held())
            except BaseException as exc:  # reported by stop(): a sampler that died proves nothing
                self.error = exc
                return
            self.samples += 1
            if self.kept - held:
                self.missing.append((started, self.kept - held))
            self._done.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - started)))

    def stop(self) -> None:
        self._done.set()
        self.join(15)
        if self.error is not None:
            raise AssertionError(f"sampling {self.router.name} failed: {self.error!r}") from self.error


def restart_keeps_every_route(agent, router: Router, neighbors_after: list, before: set[str],
                              after: set[str], how: str) -> Sampler:
    """Restart the agent `how` ("kill": SIGKILL, then start; "graceful": `fleetbgp restart
    --graceful`, then start after it exits 75) with `neighbors_after` in its config (announcing
    `after`, a subset of `before`). Polling the router all along: no route of `after` is ever
    absent, and the routes of `before` not in `after` are gone after the End-of-RIB."""
    assert set(router.held()) == before, f"{router.name} holds {sorted(router.held())}, not {sorted(before)}"
    gone = before - after
    sampler = Sampler(router, after)
    sampler.start()
    try:
        if how == "kill":
            agent.kill()
            time.sleep(1.0)  # the router sees the connection gone and marks our routes stale
            agent.neighbors = list(neighbors_after)
            agent.start()
        elif how == "graceful":
            agent.restart_as_the_unit_does(graceful=True, neighbors=neighbors_after)
        else:
            raise ValueError(how)
        router.wait_up()
        wait_until(lambda: not gone & set(router.held()), EOR_WITHIN,
                   f"{router.name} to remove {sorted(gone)} after the End-of-RIB",
                   describe=lambda: f"holds {sorted(router.held())}\n{agent.log_tail()}")
        time.sleep(0.5)  # a few more samples with the new session settled
    finally:
        sampler.stop()
    assert sampler.samples >= 10, f"only {sampler.samples} samples of {router.name}'s RIB"
    assert not sampler.missing, (
        f"{router.name} lost kept routes during the {how} restart ({len(sampler.missing)} of "
        f"{sampler.samples} samples), first: {sorted(sampler.missing[0][1])}")
    assert set(router.held()) == after
    return sampler


def real_stop_drops_every_route(agent, router: Router) -> float:
    """SIGTERM (`systemctl stop`): the Cease ends graceful restart, so the router drops every route
    at once instead of keeping them RESTART_TIME seconds. Returns how long it took."""
    assert set(router.held()), f"{router.name} holds nothing before the stop"
    started = time.monotonic()
    assert agent.stop() == 0, agent.log_tail()
    wait_until(lambda: not set(router.held()), STOP_DROP_WITHIN,
               f"{router.name} to drop every route after SIGTERM (graceful restart must end)",
               describe=lambda: f"holds {sorted(router.held())}")
    return time.monotonic() - started


def kill_then_graceful_restart(agent, router: Router, link) -> None:
    """Both restarts in turn, each with one route fewer in the config while the agent is down:
    kill -9, then `fleetbgp restart --graceful`. Four of the six ROUTES are kept throughout."""
    for how, count in (("kill", len(ROUTES) - 1), ("graceful", len(ROUTES) - 2)):
        restart_keeps_every_route(agent, router, [v4_neighbor(link, routes=ROUTES[:count], extra=GR)],
                                  prefixes(ROUTES[:count + 1]), prefixes(ROUTES[:count]), how)


def prefixes(routes: Iterable[Route]) -> set[str]:
    return {r.prefix for r in routes}
