"""The agent's health checks: one asyncio task per `healthcheck NAME { ... }` block of the config.

Each task runs its check, feeds the result to its Engine and applies the transitions through the
Speaker: routes are announced and withdrawn under the owner `health:NAME`, only when the state
changes. Before a hook of a state other than UP runs, the route change is on the wire: the runner
waits for `speaker.flushed()` of the peers concerned.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleetbgp.config.model import Config, HealthCheck
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.logutil import log_event
from fleetbgp.owner import Owner
from fleetbgp.reload_plan import NamedChanges, PlannedCheck, named_changes
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import Family

from .checks import Result, describe, run_check, run_command
from .engine import Engine, Settings, State, Transition, advert_routes

if TYPE_CHECKING:
    from fleetbgp.ports import HealthSpeaker

log = logging.getLogger("fleetbgp.health")

DISABLE_POLL = 0.5     # seconds between two looks at the disable file while waiting for a check
HOOK_TIMEOUT = 60.0    # a hook still running after this is killed
FLUSH_STEP = 30.0      # wait this long for the peers to flush, then log and wait again ...
FLUSH_MAX = 300.0      # ... up to this long in all (more than the default hold time: a stuck peer drops)
RETRY_AFTER_BUG = 5.0
STOP_WAIT = 3.0


def settings_for(hc: HealthCheck) -> Settings:
    """The engine settings of a config block. `extras` holds what else differs by state."""
    extras = tuple((state, hc.communities_and_as_path(state))
                   for state in (State.UP, State.DOWN, State.DISABLED))
    return Settings(rise=hc.rise, fall=hc.fall, interval=hc.interval, fast_interval=hc.fast_interval,
                    up_metric=hc.up_metric, down_metric=hc.down_metric,
                    disabled_metric=hc.disabled_metric, increase=hc.increase,
                    withdraw_on_down=hc.withdraw_on_down, execute=hc.execute, up_execute=hc.up_execute,
                    down_execute=hc.down_execute, disabled_execute=hc.disabled_execute, extras=extras)


def check_routes(hc: HealthCheck, engine: Engine) -> list[tuple[Family, bytes, Attributes | None]]:
    """Each IP of the check as the engine's state wants it: its attributes, or None (withdrawn).
    Nothing when the check has announced nothing yet. `CheckRunner.sync` announces exactly this,
    and the reload plan (`planned_check`) shows exactly this: one function, no drift."""
    advert = engine.announced
    if advert is None:
        return []
    out: list[tuple[Family, bytes, Attributes | None]] = []
    for ip, metric in advert_routes(advert, hc.ips):
        fam, nlri = prefix_to_nlri(ip)
        out.append((fam, nlri, None if metric is None
                    else hc.route_attributes(engine.route_state or advert.state, metric)))
    return out


def assumed_up(hc: HealthCheck) -> Engine:
    """The engine of a check that is not running yet, as if it had come UP: what the plan shows
    for a new check (it announces only once its checks pass)."""
    engine = Engine(settings_for(hc), time.time())
    engine.state = engine.route_state = State.UP
    engine.announced = engine.advert_for(State.UP)
    return engine


def planned_check(hc: HealthCheck, engine: Engine | None) -> PlannedCheck:
    """The plan's view of one check of the new file. `engine`: its running engine (None: a new
    check, planned as if UP). The running engine is not touched: a copy takes the new settings,
    as `CheckRunner.reconfigure` will."""
    if engine is None:
        planned, assumed = assumed_up(hc), True
    else:
        planned, assumed = copy.copy(engine), False
        planned.reconfigure(settings_for(hc), time.time())
    routes = tuple((fam, nlri, attrs) for fam, nlri, attrs in check_routes(hc, planned) if attrs is not None)
    return PlannedCheck(hc.owner, hc.neighbors, routes, assumed_up=assumed)


class CheckRunner:
    """One health check: its engine, its task, and the routes it wants on the wire."""

    def __init__(self, speaker: HealthSpeaker, hc: HealthCheck) -> None:
        self.speaker = speaker
        self.hc = hc
        self.engine = Engine(settings_for(hc), time.time())
        self.task: asyncio.Task[None] | None = None
        self.next_check: float | None = None  # epoch seconds
        self._stopped = False
        self._waiter: asyncio.Future[bool] | None = None
        self._woken = False  # wake() came while a check was running: skip the next wait

    @property
    def name(self) -> str:
        return self.hc.name

    @property
    def owner(self) -> Owner:
        return self.hc.owner

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"health:{self.name}")

    async def stop(self) -> None:
        # The flag as well as the cancel: asyncio.wait_for (3.11) can swallow a cancellation that
        # races with the end of what it waits for; the loop then sees the flag and ends.
        self._stopped = True
        task, self.task = self.task, None
        if task is None:
            return
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=STOP_WAIT)
        if not done:
            log.error("healthcheck %s: its task did not stop within %g s", self.name, STOP_WAIT)
        elif not task.cancelled() and task.exception() is not None:
            log.error("healthcheck %s: %r", self.name, task.exception())

    def wake(self) -> None:
        """Run the next check now."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        else:
            self._woken = True

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        log.info("healthcheck %s: started (%s, announcing %s)", self.name, describe(self.hc.check),
                 " ".join(self.hc.ips), extra=log_event("healthcheck_started"))
        while not self._stopped:
            try:
                await self._iteration()
                delay = self.engine.next_delay()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("healthcheck %s: internal error; retrying in %g s", self.name, RETRY_AFTER_BUG,
                              extra=log_event("healthcheck_error"))
                delay = RETRY_AFTER_BUG
            await self._wait(delay)

    async def _iteration(self) -> None:
        disabled = self._disabled()
        result: Result | None = None
        if not disabled:
            result = await run_check(self.hc.check, self.hc.timeout)
            log.debug("healthcheck %s: %s: %s", self.name, "ok" if result.ok else "failed", result.text)
        transitions = self.engine.feed(None if result is None else result.ok, time.time(),
                                       disabled=disabled, text="" if result is None else result.text)
        for t in transitions:
            await self.apply(t)

    def _disabled(self) -> bool:
        path = self.hc.disable_file
        return path is not None and os.path.exists(path)

    async def _wait(self, delay: float) -> None:
        """Sleep until the next check; wake early when the disable file appears or goes away
        (a drain takes effect within DISABLE_POLL seconds), on a reload, or to stop."""
        if self._woken:
            self._woken = False
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        self.next_check = time.time() + delay
        was_disabled = self.engine.disabled  # what the last check saw (the file may have changed since)
        try:
            while not self._stopped:
                left = deadline - loop.time()
                if left <= 0:
                    return
                if await self._sleep(min(left, DISABLE_POLL) if self.hc.disable_file else left):
                    return
                if self.hc.disable_file and self._disabled() != was_disabled:
                    return
        finally:
            self.next_check = None

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; True when woken early by wake()."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter

        def expire() -> None:
            if not waiter.done():
                waiter.set_result(False)

        handle = loop.call_later(seconds, expire)
        try:
            return await waiter
        finally:
            handle.cancel()
            self._waiter = None

    # -- effects --------------------------------------------------------------------------------

    async def apply(self, t: Transition) -> None:
        if t.before is not t.after:
            log.info("healthcheck %s: %s -> %s%s", self.name, t.before, t.after,
                     f" ({t.reason})" if t.reason else "", extra=log_event("healthcheck_state"))
        if t.hooks_first:
            await self._hooks(t)
        if t.advert is not None:
            self.sync()
            if t.hooks and not t.hooks_first:
                await self._flushed()
        if not t.hooks_first:
            await self._hooks(t)

    def _neighbors(self) -> list[str] | None:
        return list(self.hc.neighbors) if self.hc.neighbors is not None else None

    def sync(self) -> int:
        """Make the adj-rib-outs hold exactly what the current state wants: announce (or
        withdraw) each IP on the selected peers, and withdraw whatever else this check owns
        (IPs no longer configured, peers no longer selected). Returns how many peers changed."""
        neighbors = self._neighbors()
        try:
            peers = {p.address for p in self.speaker.select(neighbors)}
        except ValueError as exc:
            log.error("healthcheck %s: %s", self.name, exc, extra=log_event("healthcheck_error"))
            return 0
        wanted: set[tuple[Family, bytes]] = set()
        changed = 0
        for fam, nlri, attrs in check_routes(self.hc, self.engine):
            if attrs is None:
                changed += self.speaker.withdraw(fam, nlri, owner=self.owner, neighbors=neighbors)
            else:
                changed += self.speaker.announce(fam, nlri, attrs, owner=self.owner, neighbors=neighbors)
                wanted.add((fam, nlri))
        for address, table in self.speaker.owned(self.owner).items():
            for fam, nlris in table.items():
                for nlri in nlris:
                    if address not in peers or (fam, nlri) not in wanted:
                        changed += self.speaker.withdraw(fam, nlri, owner=self.owner, neighbors=[address])
        return changed

    async def _flushed(self) -> None:
        neighbors = self._neighbors()
        waited = 0.0
        while waited < FLUSH_MAX:
            try:
                if await self.speaker.flushed(neighbors, timeout=FLUSH_STEP):
                    return
            except ValueError as exc:  # a neighbor went away in a reload: nothing to wait for
                log.debug("healthcheck %s: %s", self.name, exc)
                return
            waited += FLUSH_STEP
            log.warning("healthcheck %s: the route change is still not on the wire to every peer "
                        "after %g s; hooks wait", self.name, waited,
                        extra=log_event("healthcheck_not_flushed"))
        log.error("healthcheck %s: gave up waiting for the peers to take the route change after "
                  "%g s; running the hooks anyway", self.name, FLUSH_MAX,
                  extra=log_event("healthcheck_not_flushed"))

    async def _hooks(self, t: Transition) -> None:
        env = {"STATE": str(t.after), "FLEETBGP_HEALTHCHECK": self.name}
        for command in t.hooks:
            log.info("healthcheck %s: %s: running %r", self.name, t.after, command,
                     extra=log_event("healthcheck_hook"))
            try:
                status, output = await run_command(command, HOOK_TIMEOUT, env)
            except OSError as exc:
                log.error("healthcheck %s: hook %r cannot run: %s", self.name, command, exc,
                          extra=log_event("healthcheck_hook_failed"))
                continue
            if status is None:
                log.error("healthcheck %s: hook %r killed after %g s", self.name, command, HOOK_TIMEOUT,
                          extra=log_event("healthcheck_hook_failed"))
            elif status != 0:
                log.warning("healthcheck %s: hook %r exited %d%s", self.name, command, status,
                            f": {output}" if output else "", extra=log_event("healthcheck_hook_failed"))

    # -- reload ---------------------------------------------------------------------------------

    def reconfigure(self, hc: HealthCheck) -> None:
        """New settings: the state is kept, the routes follow the new settings at once and the
        next check runs now."""
        self.hc = hc
        self.engine.reconfigure(settings_for(hc), time.time())
        self.sync()
        self.wake()

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        e = self.engine
        metrics = e.announced.metrics(len(self.hc.ips)) if e.announced is not None else []
        return {
            "name": self.name,
            "state": str(e.state),
            "since": e.since,
            "check": describe(self.hc.check),
            "last_result": e.last_text,
            "last_ok": e.last_ok,
            "last_check": e.last_check,
            "next_check": self.next_check,
            "consecutive_ok": e.ok_streak,
            "consecutive_fail": e.fail_streak,
            "checks": e.total_checks,
            "transitions": e.transitions,
            "disabled": e.disabled,
            "ips": list(self.hc.ips),
            "metric": e.metric,
            "announced": {ip: m for ip, m in zip(self.hc.ips, metrics, strict=False) if m is not None},
            "neighbors": self._neighbors(),
            "next_hop": self.hc.next_hop,
            "owner": str(self.owner),
            # The timers bound how long a failing service keeps its traffic: from UP, the first
            # failed check within `interval`, then `fall` - 1 more `fast_interval` apart.
            "timers": {"interval": self.hc.interval, "fast_interval": self.hc.fast_interval,
                       "timeout": self.hc.timeout, "rise": self.hc.rise, "fall": self.hc.fall},
            "withdraw_on_down": self.hc.withdraw_on_down,
        }


class HealthManager:
    """All the health checks of the running config (the agent's `speaker.health`)."""

    def __init__(self, speaker: HealthSpeaker, config: Config) -> None:
        self.speaker = speaker
        self.config = config
        self.runners: dict[str, CheckRunner] = {}

    async def start(self) -> None:
        for hc in self.config.healthchecks.values():
            self._add(hc)

    def _add(self, hc: HealthCheck) -> None:
        runner = CheckRunner(self.speaker, hc)
        self.runners[hc.name] = runner
        runner.start()

    async def stop(self) -> None:
        """Stop every check. Their routes stay (the speaker is normally stopping too)."""
        runners = list(self.runners.values())
        self.runners.clear()
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)

    async def reload(self, config: Config, changes: NamedChanges | None = None) -> None:
        """Checks removed from the config stop and their routes are withdrawn; new ones start;
        changed ones keep their state and take the new settings; unchanged ones carry on
        untouched (their routes are re-put on peers that a reload added or restarted).
        `changes`: the reload plan's (`reload_plan.reconcile`); None: worked out the same way."""
        if changes is None:
            changes = named_changes(self.config.healthchecks, config.healthchecks)
        self.config = config
        wanted = config.healthchecks
        for name in changes.removed:
            gone = self.runners.pop(name)
            await gone.stop()
            count = self.speaker.withdraw_owner(gone.owner)
            log.info("healthcheck %s: removed from the configuration (%d route(s) withdrawn)", name, count,
                     extra=log_event("healthcheck_removed"))
        for name, hc in wanted.items():
            runner = self.runners.get(name)
            if name in changes.added:
                log.info("healthcheck %s: added", name, extra=log_event("healthcheck_added"))
                self._add(hc)
            elif runner is not None and name in changes.changed:
                log.info("healthcheck %s: settings changed (state %s kept)", name, runner.engine.state,
                         extra=log_event("healthcheck_changed"))
                runner.reconfigure(hc)
            elif runner is not None:
                runner.sync()

    def plan(self, config: Config) -> dict[str, PlannedCheck]:
        """What each check of `config` would announce after a reload to it (reload_plan)."""
        out = {}
        for name, hc in config.healthchecks.items():
            runner = self.runners.get(name)
            out[name] = planned_check(hc, None if runner is None else runner.engine)
        return out

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in sorted(self.runners.values(), key=lambda r: r.name)]

    def get(self, name: str) -> CheckRunner | None:
        return self.runners.get(name)

    def names(self) -> Sequence[str]:
        return sorted(self.runners)
