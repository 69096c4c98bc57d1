"""The health check state machine (fleetbgp.health.engine), fed by hand with a fake clock.

The reference for the states and their counting is ExaBGP's healthcheck (application/healthcheck.py,
`loop.one` and `loop.trigger`); `exabgp_reference` below is that logic, transcribed, and a
property test holds the engine to it for random check sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetbgp.health.engine import Advert, Engine, Settings, State, advert_routes

S = State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def tick(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


def run(engine: Engine, clock: Clock, results: str, disabled: bool = False):
    """Feed a string of results: '+' ok, '-' failed, 'd' disabled (no check run).
    Returns every transition, in order."""
    out = []
    for r in results:
        if r == "d":
            out += engine.feed(None, clock.tick(), disabled=True)
        else:
            out += engine.feed(r == "+", clock.tick(), disabled=disabled, text=f"result {r}")
    return out


def states(transitions) -> list[State]:
    return [t.after for t in transitions]


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- every transition ---------------------------------------------------------------------------

def test_initial_state(clock):
    e = Engine(Settings(), clock.now)
    assert e.state is S.INIT and e.since == clock.now and e.announced is None and e.metric is None


def test_init_ok_rises_then_up_after_rise_checks(clock):
    e = Engine(Settings(rise=3), clock.now)
    t = run(e, clock, "+")
    assert states(t) == [S.RISING] and t[0].advert is None
    assert run(e, clock, "+") == []          # 2 of 3
    t = run(e, clock, "+")                   # 3 of 3
    assert states(t) == [S.UP]
    assert t[0].advert == Advert(S.UP, False, 100, 1, None)
    assert e.metric == 100 and e.since == clock.now


def test_init_failed_falls_then_down_after_fall_checks(clock):
    e = Engine(Settings(fall=2), clock.now)
    assert states(run(e, clock, "-")) == [S.FALLING]
    t = run(e, clock, "-")
    assert states(t) == [S.DOWN]
    assert t[0].advert == Advert(S.DOWN, False, 1000, 1, None)
    assert e.metric == 1000


def test_rise_1_goes_straight_up_and_fall_1_straight_down(clock):
    e = Engine(Settings(rise=1, fall=1), clock.now)
    assert states(run(e, clock, "+")) == [S.UP]
    assert states(run(e, clock, "-")) == [S.DOWN]     # UP -> FALLING is DOWN at once
    assert states(run(e, clock, "+")) == [S.UP]       # DOWN -> RISING is UP at once
    e2 = Engine(Settings(rise=1, fall=1), clock.now)
    assert states(run(e2, clock, "-")) == [S.DOWN]    # INIT -> FALLING is DOWN at once


def test_up_needs_fall_consecutive_failures(clock):
    e = Engine(Settings(rise=2, fall=3), clock.now)
    run(e, clock, "++")
    assert e.state is S.UP
    t = run(e, clock, "-")
    assert states(t) == [S.FALLING] and t[0].advert is None and e.metric == 100  # still announced as UP
    assert run(e, clock, "-") == []
    assert states(run(e, clock, "-")) == [S.DOWN]


def test_a_success_while_falling_starts_rising_from_one(clock):
    e = Engine(Settings(rise=3, fall=3), clock.now)
    run(e, clock, "+++")
    assert states(run(e, clock, "--+")) == [S.FALLING, S.RISING]
    assert e.checks == 1
    assert states(run(e, clock, "++")) == [S.UP]    # 1 + 2 = rise


def test_a_failure_while_rising_starts_falling_from_one(clock):
    e = Engine(Settings(rise=3, fall=3), clock.now)
    run(e, clock, "---")
    assert e.state is S.DOWN
    assert states(run(e, clock, "++-")) == [S.RISING, S.FALLING]
    assert e.checks == 1
    assert run(e, clock, "-") == []
    assert states(run(e, clock, "-")) == [S.DOWN]


def test_flapping_check_never_reaches_up(clock):
    e = Engine(Settings(rise=2, fall=2), clock.now)
    t = run(e, clock, "+-+-+-+-")
    assert set(states(t)) == {S.RISING, S.FALLING}
    assert all(x.advert is None for x in t) and e.announced is None


def test_down_stays_down_and_up_stays_up_without_transitions(clock):
    e = Engine(Settings(rise=1, fall=1), clock.now)
    run(e, clock, "+")
    assert run(e, clock, "++++") == []
    run(e, clock, "-")
    assert run(e, clock, "----") == []


# -- disable file -------------------------------------------------------------------------------

@pytest.mark.parametrize("before", ["", "+", "++", "+++", "-", "---"])
def test_disable_file_disables_from_any_state(clock, before):
    e = Engine(Settings(rise=3, fall=3), clock.now)
    run(e, clock, before)
    t = run(e, clock, "d")
    assert states(t) == [S.DISABLED]
    assert t[0].advert == Advert(S.DISABLED, False, 500, 1, None)
    assert e.disabled and e.metric == 500


def test_disabled_does_not_run_the_check_and_stays(clock):
    e = Engine(Settings(), clock.now)
    run(e, clock, "+++d")
    checks = e.total_checks
    assert run(e, clock, "ddd") == []
    assert e.total_checks == checks and e.state is S.DISABLED


def test_disable_file_removed_goes_to_init_and_counts_again(clock):
    e = Engine(Settings(rise=2, fall=2), clock.now)
    run(e, clock, "++d")
    t = run(e, clock, "+")          # the file is gone: INIT, this check is not counted
    assert states(t) == [S.INIT] and t[0].advert is None
    assert e.metric == 500          # the disabled announcement stays until a state decides
    assert states(run(e, clock, "+")) == [S.RISING]
    assert states(run(e, clock, "+")) == [S.UP]
    assert e.metric == 100


def test_disable_with_withdraw_on_down_withdraws(clock):
    e = Engine(Settings(rise=1, withdraw_on_down=True), clock.now)
    run(e, clock, "+")
    t = run(e, clock, "d")
    assert t[0].advert == Advert(S.DISABLED, True) and e.metric is None


# -- metrics and adverts --------------------------------------------------------------------------

def test_metrics_per_state_and_increase(clock):
    e = Engine(Settings(rise=1, fall=1, up_metric=10, down_metric=20, disabled_metric=30, increase=5),
               clock.now)
    up = run(e, clock, "+")[0].advert
    assert advert_routes(up, ["a", "b", "c"]) == [("a", 10), ("b", 15), ("c", 20)]
    down = run(e, clock, "-")[0].advert
    assert advert_routes(down, ["a", "b"]) == [("a", 20), ("b", 25)]
    disabled = run(e, clock, "d")[0].advert
    assert advert_routes(disabled, ["a"]) == [("a", 30)]


def test_withdraw_on_down(clock):
    e = Engine(Settings(rise=1, fall=1, withdraw_on_down=True), clock.now)
    t = run(e, clock, "-")
    assert t[0].advert == Advert(S.DOWN, True)       # sent even though nothing was announced yet:
    assert advert_routes(t[0].advert, ["a", "b"]) == [("a", None), ("b", None)]  # a restarted program
    up = run(e, clock, "+")[0].advert
    assert up is not None and not up.withdraw


def test_announce_only_on_state_change_not_every_check(clock):
    e = Engine(Settings(rise=1, fall=1), clock.now)
    t = run(e, clock, "+" * 50 + "-" * 50)
    assert [x.after for x in t if x.advert] == [S.UP, S.DOWN]


def test_back_to_up_with_the_same_routes_sends_nothing(clock):
    e = Engine(Settings(rise=2, fall=3), clock.now)
    run(e, clock, "++")
    t = run(e, clock, "-++")  # UP -> FALLING -> RISING -> UP
    assert states(t) == [S.FALLING, S.RISING, S.UP]
    assert all(x.advert is None for x in t)


def test_down_then_disabled_with_withdraw_on_down_sends_nothing_more(clock):
    e = Engine(Settings(rise=1, fall=1, withdraw_on_down=True), clock.now)
    run(e, clock, "+-")
    t = run(e, clock, "d")
    assert states(t) == [S.DISABLED] and t[0].advert is None


def test_same_metric_but_other_extras_is_sent_again(clock):
    extras = ((S.UP, "up-attrs"), (S.DOWN, "down-attrs"), (S.DISABLED, "disabled-attrs"))
    e = Engine(Settings(rise=1, fall=1, down_metric=500, disabled_metric=500, extras=extras), clock.now)
    down = run(e, clock, "-")[0].advert
    assert down.extra == "down-attrs"
    disabled = run(e, clock, "d")[0].advert
    assert disabled is not None and disabled.extra == "disabled-attrs"
    e2 = Engine(Settings(rise=1, fall=1, down_metric=500, disabled_metric=500), clock.now)
    run(e2, clock, "-")
    assert run(e2, clock, "d")[0].advert is None   # nothing differs: nothing to send


# -- hooks ----------------------------------------------------------------------------------------

def test_hooks_per_state_then_execute(clock):
    s = Settings(rise=1, fall=1, execute=("any1", "any2"), up_execute=("up",), down_execute=("down",),
                 disabled_execute=("disabled",))
    e = Engine(s, clock.now)
    up = run(e, clock, "+")[0]
    assert up.hooks == ("up", "any1", "any2") and up.hooks_first
    down = run(e, clock, "-")[0]
    assert down.hooks == ("down", "any1", "any2") and not down.hooks_first
    disabled = run(e, clock, "d")[0]
    assert disabled.hooks == ("disabled", "any1", "any2") and not disabled.hooks_first
    init = run(e, clock, "+")[0]
    assert init.after is S.INIT and init.hooks == ("any1", "any2")   # execute: every state change


def test_execute_runs_on_rising_and_falling_too(clock):
    e = Engine(Settings(rise=2, fall=2, execute=("x",), up_execute=("up",)), clock.now)
    t = run(e, clock, "+")
    assert t[0].after is S.RISING and t[0].hooks == ("x",)


def test_hooks_order_contract(clock):
    """UP: hooks, then the announcement (the address exists before traffic comes); every other
    state: the route change first, the hooks after it is on the wire (ExaBGP issue #993)."""
    e = Engine(Settings(rise=1, fall=1, withdraw_on_down=True, up_execute=("u",), down_execute=("d",)),
               clock.now)
    up, down = run(e, clock, "+")[0], run(e, clock, "-")[0]
    assert up.hooks_first and up.advert is not None
    assert not down.hooks_first and down.advert is not None and down.advert.withdraw


# -- scheduling, stop, reconfigure, bookkeeping ---------------------------------------------------

def test_next_delay_fast_while_changing(clock):
    e = Engine(Settings(rise=2, fall=2, interval=5, fast_interval=0.5), clock.now)
    assert e.next_delay() == 0.5               # INIT
    run(e, clock, "+")
    assert e.state is S.RISING and e.next_delay() == 0.5
    run(e, clock, "+")
    assert e.state is S.UP and e.next_delay() == 5
    run(e, clock, "-")
    assert e.state is S.FALLING and e.next_delay() == 0.5
    run(e, clock, "-d")
    assert e.state is S.DISABLED and e.next_delay() == 5


def test_stop_withdraws_what_was_announced(clock):
    e = Engine(Settings(rise=1), clock.now)
    run(e, clock, "+")
    t = e.stop(clock.tick())
    assert t.after is S.EXIT and t.advert == Advert(S.EXIT, True) and t.hooks == ()
    assert e.metric is None


def test_stop_without_announcement_sends_nothing(clock):
    e = Engine(Settings(rise=3), clock.now)
    run(e, clock, "+")
    assert e.stop(clock.tick()).advert is None


def test_end_keeps_the_routes(clock):
    e = Engine(Settings(rise=1), clock.now)
    run(e, clock, "+")
    t = e.end(clock.tick())
    assert t.after is S.END and t.advert is None and e.metric == 100


def test_reconfigure_keeps_state_and_resends_only_when_routes_change(clock):
    e = Engine(Settings(rise=1), clock.now)
    run(e, clock, "+")
    assert e.reconfigure(Settings(rise=5, fall=7), clock.tick()) is None
    assert e.state is S.UP
    t = e.reconfigure(Settings(rise=5, up_metric=42), clock.tick())
    assert t is not None and t.before is t.after is S.UP and t.hooks == ()
    assert t.advert == Advert(S.UP, False, 42, 1, None) and e.metric == 42


def test_reconfigure_before_any_announcement(clock):
    e = Engine(Settings(rise=3), clock.now)
    run(e, clock, "+")
    assert e.reconfigure(Settings(up_metric=1), clock.tick()) is None
    assert e.state is S.RISING


def test_bookkeeping(clock):
    e = Engine(Settings(rise=2, fall=2), clock.now)
    run(e, clock, "++-")
    assert (e.ok_streak, e.fail_streak, e.total_checks) == (0, 1, 3)
    assert e.last_ok is False and e.last_text == "result -" and e.last_check == clock.now
    assert e.transitions == 3     # RISING, UP, FALLING
    run(e, clock, "+++")
    assert (e.ok_streak, e.fail_streak) == (3, 0)


# -- ExaBGP's own logic as the reference ----------------------------------------------------------

@dataclass
class Ref:
    state: str = "INIT"
    checks: int = 0


def exabgp_reference(ref: Ref, successful_check: bool, disabled: bool, rise: int, fall: int) -> list[str]:
    """ExaBGP 5.0 healthcheck `one()` + `trigger()`, transcribed (announcements left out)."""
    out: list[str] = []

    def trigger(target: str) -> str:
        if target == "RISING" and rise <= 1:
            target = "UP"
        elif target == "FALLING" and fall <= 1:
            target = "DOWN"
        out.append(target)
        return target

    successful = disabled or successful_check
    state = ref.state
    if state != "DISABLED" and disabled:
        state = trigger("DISABLED")
    elif state == "INIT":
        if successful and rise <= 1:
            state = trigger("UP")
        elif successful:
            state = trigger("RISING")
            ref.checks = 1
        else:
            state = trigger("FALLING")
            ref.checks = 1
    elif state == "DISABLED":
        if not disabled:
            state = trigger("INIT")
    elif state == "RISING":
        if successful:
            ref.checks += 1
            if ref.checks >= rise:
                state = trigger("UP")
        else:
            state = trigger("FALLING")
            ref.checks = 1
    elif state == "FALLING":
        if not successful:
            ref.checks += 1
            if ref.checks >= fall:
                state = trigger("DOWN")
        else:
            state = trigger("RISING")
            ref.checks = 1
    elif state == "UP":
        if not successful:
            state = trigger("FALLING")
            ref.checks = 1
    elif state == "DOWN":  # noqa: SIM102 - kept as ExaBGP writes it
        if successful:
            state = trigger("RISING")
            ref.checks = 1
    ref.state = state
    return out


@settings(max_examples=300)
@given(rise=st.integers(1, 5), fall=st.integers(1, 5), withdraw=st.booleans(),
       steps=st.lists(st.sampled_from("++++---d"), min_size=1, max_size=60))
def test_same_transitions_as_exabgp(rise, fall, withdraw, steps):
    clock = Clock()
    e = Engine(Settings(rise=rise, fall=fall, withdraw_on_down=withdraw), clock.now)
    ref = Ref()
    announced: Advert | None = None
    for step in steps:
        disabled = step == "d"
        want = exabgp_reference(ref, step == "+", disabled, rise, fall)
        got = e.feed(None if disabled else step == "+", clock.tick(), disabled=disabled)
        assert [str(t.after) for t in got] == want
        assert str(e.state) == ref.state
        for t in got:
            if t.advert is not None:
                # an advert only on entering a state that decides the routes, never twice the same
                assert t.after in (S.UP, S.DOWN, S.DISABLED)
                assert not t.advert.same_routes(announced)
                announced = t.advert
    assert e.announced == announced
