"""Traffic in the e2e lab: what the client behind the router sees, and what the router does meanwhile.

    with RouteWatch(lab, [ANYCAST]) as routes, Load(lab, ["100.10.0.100"], rate=50) as load:
        ...change something on a server...
    load.failed()                 # the records of the failed requests
    routes.first(ANYCAST, lambda e: "10.89.8.13" not in e.vias(), after=t)   # when BIRD lost srv3's path

`Load` runs the load client (lab/traffic/loadclient.py, installed in the client container by
lab/fleet/lab.yml) for as long as the `with` block lasts; `RouteWatch` runs the route watcher
(lab/traffic/routewatch.py) in the router container. Both stamp events with the wall clock, which the
containers share with this machine, so their times compare with each other and with `time.time()`
taken around the test's own actions.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from traffic.loadclient import Record, records_from_json

if TYPE_CHECKING:
    from e2e_lab import Lab

LOADCLIENT = "/usr/local/lib/lab/loadclient.py"
ROUTEWATCH = "/usr/local/lib/lab/routewatch.py"


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Close the program's stdin (both stop at EOF), wait for it, kill it after TIMEOUT seconds."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _plain(addr: str) -> str:
    """An address as the load client takes it: without a prefix length."""
    return addr.split("/")[0]


class Load:
    """The load client in the lab's client container while the `with` block runs: RATE new TCP
    connections per second to each address, each an HTTP request answered with the server's name."""

    def __init__(self, lab: Lab, addrs: list[str], rate: float = 50, timeout: float = 1.0,
                 max_seconds: float = 600) -> None:
        self.lab = lab
        self.addrs = [_plain(a) for a in addrs]
        self.argv = ["podman", "exec", "-i", lab.container(lab.client), "python3", LOADCLIENT, "--json",
                     "--until-eof", "--rate", str(rate), "--timeout", str(timeout),
                     "--duration", str(max_seconds), *self.addrs]
        self.timeout = timeout
        self.summary: dict[str, Any] = {}
        self.records: list[Record] = []
        self.started = 0.0
        self.stopped = 0.0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Load:
        self.started = time.time()
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self.stopped = time.time()
        # --until-eof: no new requests, the in-flight ones finish
        out, err = _finish(self._proc, self.timeout + 60)
        if exc[0] is not None:
            return  # the block's own failure is the one to see
        assert self._proc.returncode == 0, f"the load client failed (exit {self._proc.returncode}): {err}"
        doc = json.loads(out)
        self.summary = doc["summary"]
        self.records = records_from_json(doc["records"])

    # --- what the client saw ------------------------------------------------------------------------
    def failed(self, addr: str | None = None) -> list[Record]:
        return [r for r in self.records if not r.ok and (addr is None or r.addr == _plain(addr))]

    def answered_by(self, addr: str, start: float = 0.0, end: float = float("inf")) -> dict[str, int]:
        """{host: requests it answered} for requests to ADDR started in [start, end)."""
        counts: dict[str, int] = {}
        for r in self.records:
            if r.ok and r.host and r.addr == _plain(addr) and start <= r.t < end:
                counts[r.host] = counts.get(r.host, 0) + 1
        return counts

    def requests(self, addr: str | None = None, start: float = 0.0, end: float = float("inf")) -> int:
        """Requests (to ADDR, default all) started in [start, end)."""
        return sum(1 for r in self.records if (addr is None or r.addr == _plain(addr)) and start <= r.t < end)

    def last_failure_end(self) -> float | None:
        """When the last failed request ended (start + latency), or None without failures."""
        return max((r.t + r.latency for r in self.failed()), default=None)

    def split_at_path_changes(self, routes: RouteWatch) -> tuple[list[Record], list[Record]]:
        """The failed requests as (moved, others): `moved` are the connections reset while in flight
        across a change of the router's next hops for their address. A router that hashes flows
        statelessly (Linux, and most ECMP hardware without resilient hashing) sends the rest of such a
        connection to another server, which answers it with a reset: no speaker can prevent that
        (docs/operations/zero-loss-changes.md, "Connections open at a path change"). Anything else
        (a refused connection, a timeout, a reset away from a path change) is in `others`."""
        moved: list[Record] = []
        others: list[Record] = []
        failed = self.failed()
        changes = {addr: routes.path_changes(addr) for addr in {r.addr for r in failed}}
        for r in failed:
            # The watcher sees a change up to `slack` after the kernel made it.
            if r.error == "reset" and any(r.t <= c <= r.t + r.latency + routes.slack for c in changes[r.addr]):
                moved.append(r)
            else:
                others.append(r)
        return moved, others

    def assert_no_failure_but_moved(self, routes: RouteWatch, per_change: int = 2) -> list[Record]:
        """No request failed except connections reset in flight at a path change (at most PER_CHANGE
        per change: at this rate about one connection is open at any instant); returns those."""
        moved, others = self.split_at_path_changes(routes)
        assert not others, f"{len(others)} request(s) failed away from a path change, e.g. {others[:5]}"
        changes = sum(len(routes.path_changes(a)) for a in self.addrs)
        assert len(moved) <= per_change * changes, (
            f"{len(moved)} connections reset at {changes} path change(s): more than a stateless ECMP "
            f"rehash explains, e.g. {moved[:5]}")
        return moved


@dataclass(frozen=True)
class RouteEvent:
    """What the router held for a prefix from time `t` on (one line of routewatch.py)."""

    t: float
    prefix: str
    bird: list[dict[str, Any]] = field(default_factory=list)
    fib: list[str] = field(default_factory=list)

    def vias(self) -> set[str]:
        return {p["via"] for p in self.bird}

    def best(self) -> str | None:
        return next((p["via"] for p in self.bird if p["best"]), None)


class RouteWatch:
    """The route watcher in the router container while the `with` block runs: every change of BIRD's
    paths or the kernel's next hops for each prefix, with its time (polled every `interval` s)."""

    def __init__(self, lab: Lab, prefixes: list[str], interval: float = 0.05) -> None:
        self.argv = ["podman", "exec", "-i", lab.container(lab.router), "python3", ROUTEWATCH,
                     "--until-eof", "--interval", str(interval), *prefixes]
        self.prefixes = prefixes
        # A change is seen up to one poll late, plus the poll itself on a busy machine.
        self.slack = 2 * interval + 0.05
        self.events: list[RouteEvent] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._seen = threading.Condition()

    def __enter__(self) -> RouteWatch:
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, name="routewatch", daemon=True)
        self._reader.start()
        # The first line per prefix is its state at the start: wait for all of them.
        self.wait_for(lambda: {e.prefix for e in self.events} >= set(self.prefixes), 30,
                      "the route watcher's first view of every prefix")
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            d = json.loads(line)
            with self._seen:
                self.events.append(RouteEvent(d["t"], d["prefix"], d["bird"], d["fib"]))
                self._seen.notify_all()

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        _, err = _finish(self._proc, 30)
        if self._reader is not None:
            self._reader.join(timeout=10)
        if exc[0] is None:
            assert self._proc.returncode == 0, f"the route watcher failed (exit {self._proc.returncode}): {err}"

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"not within {timeout:.0f} s: {what} (events: {self.events[-5:]})"
                assert self._proc is not None and self._proc.poll() is None, "the route watcher stopped"
                self._seen.wait(min(left, 0.5))

    def state(self, prefix: str, at: float | None = None) -> RouteEvent:
        """What the router held for PREFIX at time AT (default: now, the latest event)."""
        events = [e for e in self.events if e.prefix == prefix and (at is None or e.t <= at)]
        assert events, f"no view of {prefix} at {at}"
        return events[-1]

    def path_changes(self, addr: str) -> list[float]:
        """When the kernel's set of next hops for ADDR's watched prefix changed (the first view is
        not a change)."""
        events = [e for e in self.events if _plain(e.prefix) == _plain(addr)]
        return [b.t for a, b in itertools.pairwise(events) if set(a.fib) != set(b.fib)]

    def first(self, prefix: str, cond: Callable[[RouteEvent], bool], after: float = 0.0) -> float | None:
        """Time of the first change of PREFIX at or after AFTER that made COND true (None: never).
        A state that already held at AFTER counts at AFTER."""
        if cond(self.state(prefix, after)):
            return after
        return next((e.t for e in self.events if e.prefix == prefix and e.t >= after and cond(e)), None)

    def wait(self, prefix: str, cond: Callable[[RouteEvent], bool], timeout: float, what: str,
             after: float = 0.0) -> float:
        """Wait until COND holds for PREFIX (a change at or after AFTER); return when it first did."""
        found: list[float] = []

        def seen() -> bool:
            t = self.first(prefix, cond, after)
            if t is not None:
                found.append(t)
            return t is not None

        self.wait_for(seen, timeout, what)
        return found[0]
