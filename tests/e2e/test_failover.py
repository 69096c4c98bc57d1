"""Issue 12: failover, as a client behind the router sees it.

The client container sends RATE requests per second to a service address, each a new TCP connection
through the router (BIRD's ECMP route in its kernel, L4 hashing) to whichever server the route points
at, while the route watcher in the router notes when BIRD and the kernel change their paths. Each test
changes one thing on a server and measures: from the change to BIRD losing (or demoting) the server's
path, to the kernel's route changing, and to the client's last failed request; how many requests
failed; who answered before, during and after. The bounds come from the health check's configured
timers, read from the agent (`fleetbgp show health --json`), not from constants here. The numbers are
printed at the end of the run (conftest.py) and recorded in docs/operations/failover.md.
"""

from __future__ import annotations

import time

from e2e_lab import AGENT, ANYCAST, ANYCAST6, SERVICE, Lab
from e2e_traffic import Load, RouteWatch

RATE = 50  # requests per second per address: at least the 50
SETTLE = 2.0  # seconds of traffic before and after each change, to see who answers in steady state
# The route watcher polls BIRD and the kernel every 50 ms: a change is seen up to this much later.
WATCH_LAG = 0.25


def health(lab: Lab, host: str, check: str) -> dict:
    """The agent's view of one of its health checks (state, timers, ...)."""
    checks = lab.health_checks(host)
    assert check in checks, f"{host} has no health check {check!r}: {sorted(checks)}"
    return checks[check]


def detection_bound(timers: dict, states: str = "fall", hung: bool = False) -> float:
    """Seconds from the service's change to the agent's new state: the first check that sees it comes
    within `interval`, the next `fall` - 1 (or `rise` - 1) ones `fast_interval` apart; plus 1 s for
    the UPDATE, BIRD and the kernel (the issue's margin). A service that hangs instead of refusing
    fails each check only at its `timeout` (the next check waits for the previous one's end)."""
    n = timers[states]
    waits = timers["interval"] + (n - 1) * timers["fast_interval"]
    return waits + (n * timers["timeout"] if hung else 0.0) + 1.0


def at(lab: Lab, host: str, *argv: str) -> float:
    """Run ARGV on HOST; return the time (the host's clock) just before it ran, not counting the
    `podman exec` that got it there (a few hundred ms on a loaded machine)."""
    out = lab.exec(host, "sh", "-c", 'date +%s.%N; exec "$@"', "sh", *argv).stdout
    return float(out.split()[0])


def test_health_check_down_moves_anycast_traffic(lab: Lab, failover_report) -> None:
    """1. The service behind the anycast address stops on srv3: its path is withdrawn within the
    check's bound, and the client is answered by srv1 and srv2 only from then on."""
    host = "srv3"
    lab.wait_converged()
    hc = health(lab, host, "anycast")
    assert hc["state"] == "UP" and hc["withdraw_on_down"], hc
    bound, via = detection_bound(hc["timers"]), lab.addr(host)
    rise_bound = detection_bound(hc["timers"], "rise") + 1.0  # + the service's own start
    try:
        with RouteWatch(lab, [ANYCAST]) as routes, Load(lab, [ANYCAST], rate=RATE) as load:
            time.sleep(SETTLE)
            t_stop = at(lab, host, "systemctl", "stop", "lab-web.service")
            t_bird = routes.wait(ANYCAST, lambda e: via not in e.vias(), bound + 10,
                                 f"{host}'s path for {ANYCAST} withdrawn at BIRD", after=t_stop)
            t_fib = routes.wait(ANYCAST, lambda e: via not in e.fib, 5, f"{host} out of the kernel's ECMP route",
                                after=t_stop)
            time.sleep(SETTLE)
            # The service back: the path returns after `rise` good checks.
            t_start = at(lab, host, "systemctl", "start", "lab-web.service")
            t_back = routes.wait(ANYCAST, lambda e: via in e.fib, rise_bound + 10,
                                 f"{host} back in the kernel's ECMP route", after=t_start)
            time.sleep(SETTLE)
    finally:
        lab.exec(host, "systemctl", "start", "lab-web.service", check=False)
    others = set(lab.servers) - {host}
    assert set(load.answered_by(ANYCAST, end=t_stop)) == set(lab.servers), "before: every server answers"
    during = load.answered_by(ANYCAST, start=t_fib, end=t_back - WATCH_LAG)
    assert set(during) == others, f"after the kernel's route changed, answered by {during}"
    moved, failed = load.split_at_path_changes(routes)
    late = [r for r in failed if r.t > t_fib]
    assert not late, f"requests started after the route changed failed (or while {host} came back): {late[:5]}"
    assert host in load.answered_by(ANYCAST, start=t_back + WATCH_LAG), f"{host} does not answer again"
    assert t_bird - t_stop <= bound, f"withdrawn {t_bird - t_stop:.2f} s after the stop, bound {bound:.1f} s"
    assert t_back - t_start <= rise_bound, f"back {t_back - t_start:.2f} s after the start, bound {rise_bound:.1f} s"
    last = load.last_failure_end()
    failover_report("health check DOWN, anycast (srv3 of 3)", rate=RATE, requests=load.requests(end=t_start),
                    failed=len(load.failed()), bound=bound, to_bird=t_bird - t_stop, to_fib=t_fib - t_stop,
                    to_last_failure=(last - t_stop) if last else None)
    failover_report("health check UP again, anycast (srv3 of 3)", rate=RATE, requests=load.requests(start=t_start),
                    failed=len([r for r in load.failed() if r.t >= t_start]),
                    moved=len([r for r in moved if r.t >= t_start]), bound=rise_bound, to_fib=t_back - t_start)


def test_hung_service_fails_over_at_the_check_timeout(lab: Lab, failover_report) -> None:
    """1b. The service on srv3 hangs (SIGSTOP: the kernel still accepts connections, nothing answers):
    each check fails only at its timeout, so the bound adds `timeout` per check; the client's requests
    to srv3 time out meanwhile."""
    host = "srv3"
    lab.wait_converged()
    hc = health(lab, host, "anycast")
    bound, via = detection_bound(hc["timers"], hung=True), lab.addr(host)
    try:
        with RouteWatch(lab, [ANYCAST]) as routes, Load(lab, [ANYCAST], rate=RATE) as load:
            time.sleep(SETTLE)
            t_stop = at(lab, host, "systemctl", "kill", "--signal", "SIGSTOP", "lab-web.service")
            t_bird = routes.wait(ANYCAST, lambda e: via not in e.vias(), bound + 10,
                                 f"{host}'s path for {ANYCAST} withdrawn at BIRD", after=t_stop)
            t_fib = routes.wait(ANYCAST, lambda e: via not in e.fib, 5, f"{host} out of the kernel's ECMP route",
                                after=t_stop)
            time.sleep(SETTLE)
    finally:
        lab.exec(host, "systemctl", "kill", "--signal", "SIGCONT", "lab-web.service", check=False)
    assert t_bird - t_stop <= bound, f"withdrawn {t_bird - t_stop:.2f} s after the hang, bound {bound:.1f} s"
    _, failed = load.split_at_path_changes(routes)
    assert {r.error for r in failed} <= {"timeout"}, load.summary["errors"]
    assert not [r for r in failed if r.t > t_fib], "no request started after the route moved fails"
    assert set(load.answered_by(ANYCAST, start=t_fib)) == set(lab.servers) - {host}
    last = load.last_failure_end()
    failover_report("service hangs, anycast (srv3 of 3)", rate=RATE, requests=load.requests(),
                    failed=len(load.failed()), bound=bound, to_bird=t_bird - t_stop, to_fib=t_fib - t_stop,
                    to_last_failure=(last - t_stop) if last else None)
    # Thawed, the service answers again: the path comes back after `rise` good checks.
    lab.wait_until(lambda: via in lab.paths(ANYCAST), detection_bound(hc["timers"], "rise") + 10,
                   f"{host}'s path back after the service resumed")


def test_primary_backup_by_med(lab: Lab, failover_report) -> None:
    """2. The primary's (srv1, MED 100) service stops: its check goes DOWN, MED 1000, and the backup
    (srv2, MED 200) answers; started again, the primary is back after `rise` checks."""
    primary, backup = "srv1", "srv2"
    lab.wait_converged()
    hc = health(lab, primary, "service")
    assert hc["state"] == "UP" and not hc["withdraw_on_down"], hc
    p_via, b_via = lab.addr(primary), lab.addr(backup)
    rise_bound = detection_bound(hc["timers"], "rise") + 1.0  # + the service's own start
    try:
        with RouteWatch(lab, [SERVICE]) as routes, Load(lab, [SERVICE], rate=RATE) as load:
            time.sleep(SETTLE)
            t_stop = at(lab, primary, "systemctl", "stop", "lab-web.service")
            t_bird = routes.wait(SERVICE, lambda e: e.best() == b_via, detection_bound(hc["timers"]) + 10,
                                 f"the backup {backup} best at BIRD", after=t_stop)
            t_fib = routes.wait(SERVICE, lambda e: e.fib == [b_via], 5, "the kernel's route via the backup",
                                after=t_stop)
            assert {p["via"]: p["med"] for p in routes.state(SERVICE).bird} == {p_via: 1000, b_via: 200}
            time.sleep(SETTLE)
            t_start = at(lab, primary, "systemctl", "start", "lab-web.service")
            t_back = routes.wait(SERVICE, lambda e: e.fib == [p_via], rise_bound + 10,
                                 f"the kernel's route via the primary {primary} again", after=t_start)
            time.sleep(SETTLE)
    finally:
        lab.exec(primary, "systemctl", "start", "lab-web.service", check=False)
    assert load.answered_by(SERVICE, end=t_stop).keys() == {primary}
    assert load.answered_by(SERVICE, start=t_fib, end=t_start).keys() == {backup}
    assert load.answered_by(SERVICE, start=t_back + WATCH_LAG).keys() == {primary}
    assert t_bird - t_stop <= detection_bound(hc["timers"])
    assert t_back - t_start <= rise_bound, f"back {t_back - t_start:.2f} s after the start, bound {rise_bound:.1f} s"
    # Once the backup has the route no request fails, but for the connections open at the instant the
    # router moves the route back to the primary: the primary resets those (no speaker can keep them).
    moved, failed = load.split_at_path_changes(routes)
    assert not [r for r in failed if r.t > t_fib], "no request fails once the backup has the route"
    assert len(moved) <= 2 * len(routes.path_changes(SERVICE)), moved
    last = load.last_failure_end()
    failover_report("primary/backup: primary DOWN (MED 100 -> 1000)", rate=RATE,
                    requests=load.requests(SERVICE, end=t_start), failed=len(load.failed()),
                    bound=detection_bound(hc["timers"]), to_bird=t_bird - t_stop, to_fib=t_fib - t_stop,
                    to_last_failure=(last - t_stop) if last else None)
    failover_report("primary/backup: primary UP again", rate=RATE, requests=load.requests(SERVICE, start=t_start),
                    failed=len([r for r in load.failed() if r.t >= t_start]),
                    moved=len([r for r in moved if r.t >= t_start]), bound=rise_bound, to_fib=t_back - t_start)


def test_drain_under_load(lab: Lab, failover_report) -> None:
    """3. fleet.bgp.drain on srv2 while the client sends requests: once the drain is done srv2 gets no
    new connection; fleet.bgp.undrain brings it back."""
    host = "srv2"
    lab.wait_converged()
    via = lab.addr(host)
    try:
        with RouteWatch(lab, [ANYCAST]) as routes, Load(lab, [ANYCAST], rate=RATE) as load:
            time.sleep(SETTLE)
            t_drain = time.time()
            lab.playbook("fleet.bgp.drain", "--limit", host)
            t_drained = time.time()
            t_fib = routes.first(ANYCAST, lambda e: via not in e.fib, after=t_drain)
            assert t_fib is not None and t_fib <= t_drained, "the drain returned before the router moved"
            time.sleep(SETTLE)
            t_undrain = time.time()
            lab.playbook("fleet.bgp.undrain", "--limit", host)
            t_back = routes.wait(ANYCAST, lambda e: via in e.fib, 30, f"{host} back in the ECMP route",
                                 after=t_undrain)
            time.sleep(SETTLE)
    finally:
        lab.exec(host, AGENT, "maintenance", "off", check=False, timeout=30)
    during = load.answered_by(ANYCAST, start=t_fib + WATCH_LAG, end=t_undrain)
    assert host not in during and set(during) == set(lab.servers) - {host}, during
    assert host in load.answered_by(ANYCAST, start=t_back + WATCH_LAG)
    # Expected 0: the drained server keeps its address and its service, so a connection whose reply
    # is under way when the route moves still completes there. Only a connection whose client side is
    # still sending at the instant the router rehashes it reaches another server, which resets it.
    moved, _ = load.split_at_path_changes(routes)
    failover_report("drain + undrain (fleet.bgp.drain, srv2 of 3)", rate=RATE, requests=load.requests(),
                    failed=len(load.failed()), moved=len(moved), to_fib=t_fib - t_drain,
                    drain_play=t_drained - t_drain)
    load.assert_no_failure_but_moved(routes)


def test_ipv6_anycast_reaches_every_server(lab: Lab, failover_report) -> None:
    """4. The anycast /128 over the IPv6 sessions: the client reaches all three servers over IPv6."""
    lab.wait_converged()
    with Load(lab, [ANYCAST6], rate=RATE) as load:
        time.sleep(3)
    assert set(load.answered_by(ANYCAST6)) == set(lab.servers), load.summary
    assert not load.failed(), load.failed()[:5]
    failover_report("IPv6 anycast, steady state", rate=RATE, requests=load.requests(), failed=0)
