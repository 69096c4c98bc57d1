"""The e2e tests' split of failed requests into "reset in flight at a router path change" and the
rest (tests/e2e/e2e_traffic.py), on hand-made route events and records: no lab needed."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from traffic.loadclient import Record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_traffic import Load, RouteEvent, RouteWatch

ADDR = "100.10.0.100"
PREFIX = f"{ADDR}/32"
LAB: Any = SimpleNamespace(container=lambda host: host, client="client", router="router")


def watch(*fibs: tuple[float, list[str]]) -> RouteWatch:
    routes = RouteWatch(LAB, [PREFIX])
    routes.events = [RouteEvent(t, PREFIX, fib=fib) for t, fib in fibs]
    return routes


def load(*records: Record) -> Load:
    result = Load(LAB, [ADDR])
    result.records = list(records)
    return result


def reset(t: float, latency: float = 0.002, error: str = "reset") -> Record:
    return Record(t=t, addr=ADDR, host=None, ok=False, latency=latency, error=error)


THREE = ["10.89.8.11", "10.89.8.12", "10.89.8.13"]
TWO = THREE[:2]


def test_only_a_change_of_the_next_hops_is_a_path_change() -> None:
    routes = watch((0.0, THREE), (5.0, list(reversed(THREE))), (10.0, TWO), (20.0, THREE))
    assert routes.path_changes(ADDR) == [10.0, 20.0]
    assert routes.path_changes(PREFIX) == [10.0, 20.0]
    assert routes.path_changes("100.10.0.200") == []


def test_a_reset_in_flight_at_a_change_is_moved() -> None:
    routes = watch((0.0, THREE), (10.0, TWO))
    # In flight across the change, and seen by the watcher up to its slack after the request ended.
    across, seen_late = reset(9.999), reset(10.0 - 0.002 - routes.slack + 0.01)
    moved, others = load(across, seen_late).split_at_path_changes(routes)
    assert moved == [across, seen_late] and others == []


@pytest.mark.parametrize("record", [
    reset(9.0),                           # a reset a second before the change
    reset(10.001),                        # started after the change: the new path resets it
    reset(9.999, error="timeout"),        # not a reset: a server that does not answer
    reset(9.999, error="refused"),
], ids=["before", "after", "timeout", "refused"])
def test_other_failures_are_not_excused(record: Record) -> None:
    moved, others = load(record).split_at_path_changes(watch((0.0, THREE), (10.0, TWO)))
    assert moved == [] and others == [record]


def test_the_assertion_fails_on_other_failures_and_on_too_many_moved() -> None:
    routes = watch((0.0, THREE), (10.0, TWO))
    assert load(reset(9.999)).assert_no_failure_but_moved(routes) == [reset(9.999)]
    with pytest.raises(AssertionError, match="away from a path change"):
        load(reset(9.999), reset(3.0)).assert_no_failure_but_moved(routes)
    with pytest.raises(AssertionError, match="more than a stateless ECMP rehash explains"):
        load(*[reset(9.999 - i * 0.0001, latency=0.01) for i in range(3)]).assert_no_failure_but_moved(routes)
