"""Fixtures of the e2e tests (tests/e2e): `lab`, the e2e lab fleet with the baseline deployed
(session scope), and `bird_sampler` (the BirdSampler class). The harness itself is e2e_lab.py:
test modules import what they need from it, e.g. `from e2e_lab import ANYCAST, BirdSampler, Lab`.

Run: scripts/run-pytest.sh --root tests/e2e    (root: rootful podman). The lab stays up afterwards;
docs/lab.md ("The e2e lab") says how to look at it and how to remove it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_lab import BirdSampler, Lab

E2E_LOCK = "/run/lock/fleetbgp-e2e.lock"
# Modules whose tests leave the lab off its baseline on purpose (see their docstrings), in the order they
# run, after all the others: test_route_plan leaves 100.10.0.200/32 withdrawn on srv1 and srv2 for
# test_rollout's good commit to put back (one rollout less), which leaves its own commit deployed.
LEAVE_THE_BASELINE = ("test_route_plan.py", "test_rollout.py", "test_rollout_pull.py")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root (rootful podman)")
    # One e2e session at a time on the shared e2e lab: /run/lock/fleetbgp-e2e.lock, held for the whole
    # session (a caller that already holds it, e.g. `flock LOCK cmd`, sets FLEETBGP_E2E_LOCK_HELD=1).
    with open(E2E_LOCK, "a") as lock:
        if os.environ.get("FLEETBGP_E2E_LOCK_HELD") != "1":
            fcntl.flock(lock, fcntl.LOCK_EX)
        the_lab = Lab()
        the_lab.up()
        the_lab.ensure_baseline()
        yield the_lab


@pytest.fixture
def bird_sampler() -> type[BirdSampler]:
    return BirdSampler


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs on the e2e lab fleet (podman containers; root)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test's timeout also covers the session fixture's setup (lab up, baseline deploy, waiting
    # for the lock): far above pytest's default 300 s on a loaded machine. FLEETBGP_E2E_TIMEOUT.
    here = Path(__file__).parent
    # test_rollout leaves its good commit deployed (one more anycast prefix): the modules after it
    # would pay a full baseline redeploy (minutes) in their fixtures, so it runs last, after
    # test_route_plan (whose withdrawn route its good commit brings back). A stable sort: the other
    # modules keep pytest's order.
    items.sort(key=lambda item: (LEAVE_THE_BASELINE.index(item.path.name) + 1
                                 if item.path.name in LEAVE_THE_BASELINE else 0))
    timeout = int(os.environ.get("FLEETBGP_E2E_TIMEOUT", "1800"))
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(timeout))


# --- failover and restart measurements (test_failover.py, test_rolling_restart.py): printed at the end of the run, kept as JSON -------------
_FAILOVER: list[dict[str, object]] = []


@pytest.fixture
def failover_report() -> Callable[..., None]:
    """failover_report(WHAT, **numbers): one row of the failover table (seconds, counts)."""

    def report(what: str, **numbers: object) -> None:
        _FAILOVER.append({"what": what, **numbers})

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FAILOVER:
        return
    tr = terminalreporter
    tr.section("failover, as the client saw it (seconds after the change)")
    every = ("rate", "requests", "failed", "moved", "bound", "to_bird", "to_fib", "to_last_failure", "drain_play",
             "min_paths", "bird_gap", "per_host", "play")
    # Only the columns some row has: the restart rows (test_rolling_restart.py) add their own.
    cols = tuple(c for c in every if any(c in row for row in _FAILOVER))
    tr.write_line(f"{'':48} " + " ".join(f"{c:>15}" for c in cols))
    for row in _FAILOVER:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{v:>15.2f}" if isinstance(v, float) else f"{'-' if v is None else v:>15}")
        tr.write_line(f"{row['what']:48} " + " ".join(cells))
    out = Path(os.environ.get("FLEETBGP_E2E_LAB_STATE", "/run/fleetbgp-e2e-lab")) / "failover.json"
    try:
        out.write_text(json.dumps(_FAILOVER, indent=1) + "\n")
        tr.write_line(f"(also in {out})")
    except OSError as exc:
        tr.write_line(f"(could not write {out}: {exc})")
