"""Commit-confirm, the failure path: rules that cut the controller's confirmation probe make the role
fail with a clear message, and each host's timer restores the previous rules by itself."""

from __future__ import annotations

from conftest import (
    METRICS_PORT,
    SCENARIO_DIR,
    SERVERS,
    addresses,
    connect_from_controller,
    live_id,
    persisted_id,
    podman_host,
    run_playbook,
    wait_until,
)


def timer_armed(server: str) -> bool:
    r = podman_host(server).run("systemctl is-active fleetbgp-firewall-rollback.timer")
    return r.stdout.strip() == "active"


def test_unconfirmed_rules_are_rolled_back_by_the_host():
    before = {s: live_id(s) for s in SERVERS}
    assert all(before.values()), before
    since = {s: podman_host(s).check_output("date +%s").strip() for s in SERVERS}
    proc = run_playbook(SCENARIO_DIR / "rollback.yml")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    flat = " ".join(out.split())
    for server in SERVERS:
        failed = f"the controller could not reach {server} again" in flat
        assert failed, f"no 'not confirmed' failure for {server}:\n{out[-4000:]}"
    assert out.count("The change is NOT confirmed") >= len(SERVERS), out[-4000:]

    # while a host's timer is still armed, the bad rules are live there (the role gave up after 4 s;
    # the timer fires 15 s after the rules were applied) ...
    for server in SERVERS:
        if not timer_armed(server):
            continue
        during = live_id(server)
        v4, _ = addresses(server)
        probe = connect_from_controller(v4, METRICS_PORT)
        if timer_armed(server):
            assert during and during != before[server], (server, during, before)
            assert probe == "timeout", probe

    # ... until each host's timer put the previous ones back, without the controller
    restored = wait_until(lambda: all(live_id(s) == before[s] for s in SERVERS), timeout=40, interval=1)
    assert restored, {s: (live_id(s), before[s]) for s in SERVERS}
    for server in SERVERS:
        v4, _ = addresses(server)
        assert connect_from_controller(v4, METRICS_PORT) == "open"
        assert persisted_id(server) == before[server], "the unconfirmed rules must never be persisted"
        journal = podman_host(server).check_output(
            f"journalctl -u fleetbgp-firewall-rollback.service --since @{since[server]} --no-pager -o cat"
        )
        assert "fleet.bgp.firewall: restore the rules" in journal, journal
