"""Issue 16, item 1: planned restarts never cost a request (proofs 1-4).

The load client sends RATE new connections per second to the anycast address (all three servers) and to
the primary/backup address (srv1 MED 100, srv2 MED 200) while the route watcher notes every change of
BIRD's paths (50 ms polls). Each test restarts every agent one way and measures the failed requests,
the fewest paths BIRD held for the anycast prefix, how long it held none (the gap), and the time per host
from the playbook's own report:
  1. fleet.bgp.site with an agent upgrade (a copy of agent/ with a higher version) and a unit change
     (memory limit 500M): one restart per host;
  2. fleet.bgp.restart on every server;
  3. fleet.bgp.rollout of a commit that sets the unit's memory limit back to the role's default (a
     restart everywhere); its revision also brings the bundled agent back, so the lab ends at its
     baseline (the deployments are shared: 3 playbook runs, no run only to go back);
  4. the old way, for the docs: `systemctl restart fleetbgp` on the three servers at once, no drain;
and a host that fails its gate stops fleet.bgp.restart there, with where and why.
The numbers are printed at the end of the run (conftest.py) and recorded in
docs/operations/zero-loss-changes.md. The e2e inventory sets short timers (settle 1 s, the gate looks
every second).
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_lab import AGENT, ANYCAST, SERVICE, Lab
from e2e_traffic import Load, RouteWatch
from test_rollout import Desired, rollout

RATE = 50  # requests per second per address: the 50
_PER_HOST = re.compile(r"(\w+): agent restarted drained and back in service in ([0-9.]+) s")
pytestmark = pytest.mark.timeout(1200)


class Measured:
    """Load on both addresses and the route watcher on both prefixes while the block runs."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.watch = RouteWatch(lab, [ANYCAST, SERVICE])
        self.load = Load(lab, [ANYCAST, SERVICE], rate=RATE)
        self.t0 = self.t1 = 0.0

    def __enter__(self) -> Measured:
        self.watch.__enter__()
        self.load.__enter__()
        time.sleep(1)  # steady state first
        self.t0 = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.t1 = time.time()
        time.sleep(1)
        self.load.__exit__(*exc)
        self.watch.__exit__(*exc)

    def states(self, prefix: str) -> list[tuple[float, int]]:
        """(time, number of BIRD paths) from the start of the change to its end."""
        first = self.watch.state(prefix, self.t0)
        later = [e for e in self.watch.events if e.prefix == prefix and self.t0 < e.t <= self.t1]
        return [(self.t0, len(first.bird))] + [(e.t, len(e.bird)) for e in later]

    def min_paths(self, prefix: str = ANYCAST) -> int:
        return min(n for _, n in self.states(prefix))

    def gap(self, prefix: str = ANYCAST) -> float:
        """Seconds BIRD held no path for PREFIX during the change."""
        points = [*self.states(prefix), (self.t1, -1)]
        return sum(b[0] - a[0] for a, b in itertools.pairwise(points) if a[1] == 0)

    def report(self, report: Callable[..., None], what: str, out: str = "") -> dict[str, float]:
        per_host = {h: float(s) for h, s in _PER_HOST.findall(out)}
        moved, _ = self.load.split_at_path_changes(self.watch)
        report(what, rate=RATE, requests=self.load.requests(), failed=len(self.load.failed()), moved=len(moved),
               min_paths=self.min_paths(), bird_gap=round(self.gap(), 2),
               per_host=round(max(per_host.values()), 1) if per_host else None, play=round(self.t1 - self.t0, 1))
        return per_host


LOWERED = "500M"  # test 1's memory limit; test 3 rolls the role's default back out
DEFAULT = "512M"  # roles/agent/defaults/main.yml fleet_bgp_service_memory_max


def upgraded(src: Path) -> dict[str, str]:
    """fleet.bgp.site's extra vars for test 1: the newer agent and a lower memory limit."""
    return {"fleet_bgp_agent_source": str(src), "fleet_bgp_service_memory_max": LOWERED}


def memory_max(lab: Lab, host: str) -> str:
    """The memory limit in the deployed unit file (the role writes it as given)."""
    unit = lab.exec(host, "grep", "-h", "^MemoryMax=", "/etc/systemd/system/fleetbgp.service", check=False).stdout
    return unit.strip().removeprefix("MemoryMax=")


def pids(lab: Lab) -> dict[str, int]:
    return {s: lab.agent_status(s)["pid"] for s in lab.servers}


def version(lab: Lab, host: str) -> str:
    return lab.exec(host, AGENT, "--version").stdout.split()[-1]


def assert_rolling(m: Measured, out: str, lab: Lab) -> None:
    m.load.assert_no_failure_but_moved(m.watch)
    # One host at a time: BIRD always kept two of the three anycast paths, and the backup's path for
    # the primary/backup prefix (one of the two at every moment).
    assert m.min_paths(ANYCAST) >= len(lab.servers) - 1, m.states(ANYCAST)
    assert m.min_paths(SERVICE) >= 1, m.states(SERVICE)
    assert not m.watch.events or m.gap() == 0.0
    per_host = dict(_PER_HOST.findall(out))
    assert set(per_host) == set(lab.servers), f"each server restarted drained once: {per_host}\n{out[-3000:]}"


@pytest.fixture(scope="module")
def newer_agent(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Iterator[tuple[Path, str]]:
    """A copy of agent/ whose version is higher than the bundled one: an upgrade for the role. The
    servers run the bundled agent and unit again afterwards (test 3 puts them back; if it did not, here)."""
    src = tmp_path_factory.mktemp("agent") / "agent"
    shutil.copytree(lab.repo / "agent", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    init = src / "src/fleetbgp/__init__.py"
    bundled = re.search(r'__version__ = "([^"]+)"', init.read_text())
    assert bundled
    newer = f"{bundled.group(1)}.post16"
    init.write_text(init.read_text().replace(bundled.group(0), f'__version__ = "{newer}"'))
    yield src, newer
    if any(version(lab, s) != bundled.group(1) or memory_max(lab, s) != DEFAULT for s in lab.servers):
        lab.reset()


def test_site_upgrade_restarts_drained_one_host_at_a_time(lab: Lab, newer_agent, failover_report) -> None:
    """1. fleet.bgp.site with a newer agent (and the unit's memory limit at 500M, which test 3's rollout
    sets back): each server drained, restarted, gated, undrained in turn; no request fails and BIRD
    always has two of the three anycast paths."""
    src, newer = newer_agent
    lab.wait_converged()
    before = pids(lab)
    with Measured(lab) as m:
        out = lab.playbook("fleet.bgp.site", extra_vars=upgraded(src)).stdout
    assert {s: version(lab, s) for s in lab.servers} == dict.fromkeys(lab.servers, newer)
    assert all(memory_max(lab, s) == LOWERED for s in lab.servers)
    assert all(pids(lab)[s] != before[s] for s in lab.servers)
    assert_rolling(m, out, lab)
    m.report(failover_report, "site, agent upgrade (drained, 1 at a time)", out)
    for s in lab.servers:
        assert lab.exec(s, "test", "!", "-e", "/var/lib/fleetbgp/restart-pending", check=False).returncode == 0


def test_restart_playbook_costs_no_request(lab: Lab, failover_report) -> None:
    """2. fleet.bgp.restart on every server."""
    lab.wait_converged()
    before = pids(lab)
    with Measured(lab) as m:
        out = lab.playbook("fleet.bgp.restart").stdout
    assert all(pids(lab)[s] != before[s] for s in lab.servers)
    assert_rolling(m, out, lab)
    m.report(failover_report, "fleet.bgp.restart (1 at a time)", out)


def test_rollout_of_a_unit_change_restarts_drained(lab: Lab, newer_agent, tmp_path: Path, failover_report) -> None:
    """3. A rollout whose commit sets the unit's memory limit back to the role's default (test 1 lowered
    it): every agent must restart; the rollout (batches [1, 100%]) restarts them drained, one after the
    other also within the second batch. The revision's agent is the bundled one, so the same restart
    brings the lab back to its baseline."""
    src, _ = newer_agent
    if any(memory_max(lab, s) != LOWERED for s in lab.servers):  # test 1 did not run (-k): its state first
        lab.playbook("fleet.bgp.site", extra_vars=upgraded(src))
    desired = Desired(tmp_path / "desired", lab.inventory)
    desired.edit_yaml("group_vars/bgp_servers/main.yml", lambda d: d.update(fleet_bgp_service_memory_max=DEFAULT))
    desired.commit(f"agent memory limit back to {DEFAULT} (a unit change: restart)")
    lab.wait_converged()
    before = pids(lab)
    try:
        with Measured(lab) as m:
            proc = rollout(lab, desired, "main", tmp_path / "work")
        assert proc.returncode == 0, proc.stdout
        assert all(memory_max(lab, s) == DEFAULT for s in lab.servers)
        assert all(pids(lab)[s] != before[s] for s in lab.servers)
        assert_rolling(m, proc.stdout, lab)
        m.report(failover_report, "rollout, unit change (memory limit) + agent back", proc.stdout)
    except BaseException:
        lab.reset()
        raise
    lab.ensure_baseline()


def test_old_way_all_at_once_is_worse(lab: Lab, failover_report) -> None:
    """4. Baseline: the three agents restarted at the same moment, no drain (what fleet.bgp.site did
    before). Measured only: it must lose requests or paths where the drained restarts lost none."""
    lab.wait_converged()
    before = pids(lab)
    with Measured(lab) as m:
        go = threading.Barrier(len(lab.servers))

        def restart(host: str) -> None:
            go.wait()
            lab.exec(host, "systemctl", "restart", "fleetbgp.service")

        threads = [threading.Thread(target=restart, args=(s,)) for s in lab.servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lab.wait_converged()  # back: sessions up, checks UP, every path at BIRD
    assert all(pids(lab)[s] != before[s] for s in lab.servers)
    m.report(failover_report, "old way: systemctl restart on all at once")
    assert len(m.load.failed()) > 0 or m.gap() > 0, "the old way should have cost something"
    assert m.min_paths(ANYCAST) == 0, m.states(ANYCAST)


def test_a_host_that_fails_its_gate_stops_the_restarts(lab: Lab) -> None:
    """A host whose restarted agent does not pass the gate (its service is down, so its health checks
    are) stops fleet.bgp.restart there, saying where and why; no host after it is restarted."""
    first, *others = lab.servers
    lab.wait_converged()
    before = pids(lab)
    try:
        lab.exec(first, "systemctl", "stop", "lab-web.service")
        proc = lab.playbook("fleet.bgp.restart", check=False, extra_vars={"fleet_bgp_rollout_gate_timeout": 4})
        assert proc.returncode != 0, proc.stdout
        assert f"RESTART STOPPED at {first}" in proc.stdout, proc.stdout
        assert f"health gate failed on {first}" in proc.stdout and "is DOWN" in proc.stdout, proc.stdout
        after = pids(lab)
        assert after[first] != before[first], "the first host was restarted"
        assert {s: after[s] for s in others} == {s: before[s] for s in others}, "no host after it was"
    finally:
        lab.exec(first, "systemctl", "start", "lab-web.service", check=False)
    lab.wait_converged()
