"""The health check state machine, shared by the agent (runner.py) and `fleetbgp healthcheck` (cli.py).

Sans-IO: the engine is fed the outcome of each check (and whether the disable file exists) with
the current time, and answers with the state transitions that result; it never runs a check, sleeps
or sends anything. The front ends do that, in the order a Transition asks for.

States and their counting are ExaBGP's healthcheck's (src/exabgp/application/healthcheck.py):

    INIT      -- first check: ok -> RISING (UP when rise <= 1); failed -> FALLING (DOWN when fall <= 1)
    RISING    -- ok: count; `rise` consecutive oks -> UP.      failed -> FALLING (count 1)
    FALLING   -- failed: count; `fall` consecutive fails -> DOWN.  ok -> RISING (count 1)
    UP        -- failed -> FALLING (count 1; DOWN at once when fall <= 1)
    DOWN      -- ok -> RISING (count 1; UP at once when rise <= 1)
    DISABLED  -- entered from any state while the disable file exists (no check is run then);
                 when the file goes away -> INIT, and counting starts again
    EXIT      -- the front end is stopping: withdraw everything that was announced
    END       -- `interval 0` (the CLI only): stop after the first announcement, keep the routes

Routes change only on entering UP, DOWN or DISABLED (and EXIT): UP announces with `up-metric`,
DOWN with `down-metric` (or withdraws, with `withdraw-on-down`), DISABLED with `disabled-metric`
(or withdraws, with `withdraw-on-down`). Unlike ExaBGP without `--debounce`, nothing is re-sent
while the state stays the same (ExaBGP issue #1241), and a transition whose routes are the ones
already announced sends nothing either.

Hooks: on entering a state, its `*-execute` commands run, then the `execute` ones (ExaBGP's
order), with STATE=<state> in their environment. When entering UP the hooks run *before* the
announcement (the service IP can be set up before traffic is drawn to it); in every other state
they run *after* the routes changed and the change is on the wire (ExaBGP issue #993: an address
removed while the route still drew traffic).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class State(enum.StrEnum):
    INIT = "INIT"
    DISABLED = "DISABLED"
    RISING = "RISING"
    FALLING = "FALLING"
    UP = "UP"
    DOWN = "DOWN"
    EXIT = "EXIT"
    END = "END"


# States whose entry changes what is announced.
ANNOUNCING = frozenset((State.UP, State.DOWN, State.DISABLED, State.EXIT))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What the engine needs to know; the same defaults as ExaBGP's healthcheck."""

    rise: int = 3
    fall: int = 3
    interval: float = 5.0
    fast_interval: float = 1.0
    up_metric: int = 100
    down_metric: int = 1000
    disabled_metric: int = 500
    increase: int = 1
    withdraw_on_down: bool = False
    execute: tuple[str, ...] = ()
    up_execute: tuple[str, ...] = ()
    down_execute: tuple[str, ...] = ()
    disabled_execute: tuple[str, ...] = ()
    # Per state, whatever else the front end puts in the routes (communities, as-path): only
    # compared, so that a transition re-sends the routes when these differ.
    extras: tuple[tuple[State, object], ...] = ()

    def extra(self, state: State) -> object:
        for st, value in self.extras:
            if st is state:
                return value
        return None

    def hooks(self, state: State) -> tuple[str, ...]:
        own = {State.UP: self.up_execute, State.DOWN: self.down_execute,
               State.DISABLED: self.disabled_execute}.get(state, ())
        return (*own, *self.execute)


@dataclass(frozen=True, slots=True)
class Advert:
    """What is announced for a state: withdrawn, or announced with `metric` for the first IP
    (each further IP gets `increase` more, as ExaBGP's --increase)."""

    state: State
    withdraw: bool
    metric: int | None = None
    increase: int = 0
    extra: object = None

    def metrics(self, count: int) -> list[int | None]:
        if self.withdraw or self.metric is None:
            return [None] * count
        return [self.metric + i * self.increase for i in range(count)]

    def same_routes(self, other: Advert | None) -> bool:
        """Does this put on the wire exactly what `other` did (whatever state each is for)?"""
        if other is None:
            return False
        if self.withdraw or other.withdraw:
            return self.withdraw and other.withdraw
        return (self.metric, self.increase, self.extra) == (other.metric, other.increase, other.extra)


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change. The front end applies it in this order:

    hooks_first: run `hooks`, then apply `advert`;
    otherwise:   apply `advert`, wait until it is on the wire, then run `hooks`.
    `advert` is None when the routes do not change.
    """

    before: State
    after: State
    time: float
    advert: Advert | None
    hooks: tuple[str, ...]
    reason: str

    @property
    def hooks_first(self) -> bool:
        return self.after is State.UP


class Engine:
    """One health check's state. `feed()` after each check; `stop()` when shutting down."""

    def __init__(self, settings: Settings, now: float = 0.0) -> None:
        self.settings = settings
        self.state = State.INIT
        self.since = now
        self.checks = 0          # ExaBGP's counter: consecutive checks in RISING/FALLING
        self.ok_streak = 0       # consecutive successful checks (whatever the state)
        self.fail_streak = 0     # consecutive failed checks
        self.total_checks = 0
        self.transitions = 0
        self.last_ok: bool | None = None
        self.last_text = ""
        self.last_check: float | None = None
        self.disabled = False
        self.announced: Advert | None = None  # what is on the wire now (None: nothing yet)
        self.route_state: State | None = None  # the last state entered that decides the routes

    # -- configuration ----------------------------------------------------------------------------

    def reconfigure(self, settings: Settings, now: float) -> Transition | None:
        """New settings (a reload): the state is kept. If the routes of the current state differ
        under the new settings, a transition to the same state re-applies them (no hooks)."""
        self.settings = settings
        if self.route_state is None or self.announced is None:
            return None
        advert = self.advert_for(self.route_state)
        if advert is None or advert.same_routes(self.announced):
            return None
        self.announced = advert
        return Transition(self.state, self.state, now, advert, (), "configuration changed")

    def advert_for(self, state: State) -> Advert | None:
        s = self.settings
        if state is State.UP:
            return Advert(State.UP, False, s.up_metric, s.increase, s.extra(state))
        if state is State.EXIT:
            return Advert(State.EXIT, True)
        if state in (State.DOWN, State.DISABLED):
            if s.withdraw_on_down:
                return Advert(state, True)
            metric = s.down_metric if state is State.DOWN else s.disabled_metric
            return Advert(state, False, metric, s.increase, s.extra(state))
        return None

    # -- the machine ------------------------------------------------------------------------------

    def feed(self, ok: bool | None, now: float, *, disabled: bool = False,
             text: str = "") -> list[Transition]:
        """One iteration: the check's outcome (None when it was not run because the service is
        disabled) and whether the disable file exists. Returns the transitions (0 or 1)."""
        s = self.settings
        self.disabled = disabled
        if ok is not None:
            self.total_checks += 1
            self.last_ok = ok
            self.last_text = text
            self.last_check = now
            if ok:
                self.ok_streak += 1
                self.fail_streak = 0
            else:
                self.fail_streak += 1
                self.ok_streak = 0
        successful = disabled or bool(ok)
        state = self.state
        if state is not State.DISABLED and disabled:
            return [self._go(State.DISABLED, now, "disable file present")]
        if state is State.INIT:
            if successful and s.rise <= 1:
                return [self._go(State.UP, now, text)]
            self.checks = 1
            return [self._go(State.RISING if successful else State.FALLING, now, text)]
        if state is State.DISABLED:
            if not disabled:
                return [self._go(State.INIT, now, "disable file removed")]
            return []
        if state is State.RISING:
            if successful:
                self.checks += 1
                if self.checks >= s.rise:
                    return [self._go(State.UP, now, text)]
                return []
            self.checks = 1
            return [self._go(State.FALLING, now, text)]
        if state is State.FALLING:
            if not successful:
                self.checks += 1
                if self.checks >= s.fall:
                    return [self._go(State.DOWN, now, text)]
                return []
            self.checks = 1
            return [self._go(State.RISING, now, text)]
        if state is State.UP:
            if not successful:
                self.checks = 1
                return [self._go(State.FALLING, now, text)]
            return []
        if state is State.DOWN:
            if successful:
                self.checks = 1
                return [self._go(State.RISING, now, text)]
            return []
        raise ValueError(f"feed() after {state}")

    def stop(self, now: float) -> Transition:
        """Shutting down: withdraw what was announced (advert None when nothing was)."""
        before = self.state
        advert = None
        if self.announced is not None and not self.announced.withdraw:
            advert = Advert(State.EXIT, True)
            self.announced = advert
        self.route_state = State.EXIT
        self.state = State.EXIT
        self.since = now
        self.transitions += 1
        return Transition(before, State.EXIT, now, advert, (), "stopping")

    def end(self, now: float) -> Transition:
        """`interval 0`: stop without withdrawing (ExaBGP's END)."""
        before = self.state
        self.state = State.END
        self.since = now
        return Transition(before, State.END, now, None, (), "interval 0: exiting after the announcement")

    def _go(self, target: State, now: float, reason: str) -> Transition:
        s = self.settings
        # ExaBGP's shortcuts: RISING with rise <= 1 is UP, FALLING with fall <= 1 is DOWN.
        if target is State.RISING and s.rise <= 1:
            target = State.UP
        elif target is State.FALLING and s.fall <= 1:
            target = State.DOWN
        before = self.state
        self.state = target
        self.since = now
        self.transitions += 1
        advert = self.advert_for(target)
        if advert is not None:
            self.route_state = target
            if advert.same_routes(self.announced):
                advert = None
            else:
                self.announced = advert
        return Transition(before, target, now, advert, s.hooks(target), reason)

    # -- scheduling -------------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds until the next check: `fast-interval` while the state is about to change
        (RISING, FALLING) and right after the disable file went away (INIT), else `interval`."""
        if self.state in (State.RISING, State.FALLING, State.INIT):
            return self.settings.fast_interval
        return self.settings.interval

    @property
    def metric(self) -> int | None:
        """The metric announced for the first IP now; None when nothing is announced."""
        a = self.announced
        if a is None or a.withdraw:
            return None
        return a.metric


def advert_routes(advert: Advert, ips: Sequence[str]) -> list[tuple[str, int | None]]:
    """(ip, metric) per IP, in order; metric None means withdraw."""
    return list(zip(ips, advert.metrics(len(ips)), strict=True))
