"""Reload as a value: `reconcile` plans, the Speaker applies; `--dry-run` shows the plan only.

The Speaker tests use loopback peers that dial port 9, where nothing listens (see test_speaker)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from test_speaker import conf, make_speaker, nlri

from fleetbgp import cli_plan
from fleetbgp.config import parse_text
from fleetbgp.reload_plan import NeighborAction, RunningPeer, reconcile, route_delta
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST

PROCESS = 'process watcher {{ run "{run}"; encoder text; }}\n'


def running_of(text: str) -> dict[str, RunningPeer]:
    config = parse_text(text, "old.conf")
    return {n.peer_address: RunningPeer(n, n.static_routes, {f: dict(t) for f, t in n.static_routes.items()})
            for n in config.neighbors}


def plan_of(old_text: str, new_text: str):  # type: ignore[no-untyped-def]
    old = parse_text(old_text, "old.conf")
    return reconcile(old, parse_text(new_text, "new.conf"), running_of(old_text))


def test_an_unchanged_file_plans_nothing() -> None:
    plan = plan_of(conf(), conf())
    assert [s.action for s in plan.neighbors] == [NeighborAction.KEEP, NeighborAction.KEEP]
    assert plan.summary() == "no change to sessions or routes"
    assert plan.as_dict()["neighbors"] == [] and plan.as_dict()["unchanged_neighbors"] == 2
    assert not plan.processes and not plan.healthchecks and not plan.listeners_change


def test_route_changes_are_counted_and_a_session_setting_restarts() -> None:
    plan = plan_of(conf(), conf("route 100.10.0.100/32 next-hop self med 200; "
                                "route 100.10.0.101/32 next-hop self;", peer_as=65002))
    first, second = plan.neighbors
    assert (first.action, first.announce, first.withdraw) == (NeighborAction.UPDATE, 2, 0)
    assert (second.action, second.settings) == (NeighborAction.RESTART, ("peer-as",))
    assert plan.summary() == ("neighbor 127.100.0.1: 2 route(s) announced or changed, 0 withdrawn; "
                              "neighbor 127.100.0.5 restarted (session settings changed)")
    assert plan.as_dict()["neighbors"][1] == {"neighbor": "127.100.0.5", "action": "restart",
                                              "settings": ["peer-as"]}


def test_a_secret_change_is_named_but_never_shown() -> None:
    old = conf().replace("peer-as 65000;\n  family", "peer-as 65000; md5-password 'old-secret';\n  family", 1)
    new = old.replace("old-secret", "new-secret")
    plan = plan_of(old, new)
    assert plan.neighbors[0].settings == ("md5-password",)
    assert "secret" not in json.dumps(plan.as_dict(routes=True))


def test_removed_neighbors_come_first_then_the_new_files_order() -> None:
    only_second = conf().split("neighbor 127.100.0.5")[0].replace("127.100.0.1", "127.100.0.9")
    plan = plan_of(conf(), only_second)
    assert [(s.address, s.action) for s in plan.neighbors] == [
        ("127.100.0.1", NeighborAction.REMOVE), ("127.100.0.5", NeighborAction.REMOVE),
        ("127.100.0.9", NeighborAction.ADD)]


def test_processes_and_health_checks_are_planned_by_name(tmp_path: Path) -> None:
    old = PROCESS.format(run="/bin/cat") + conf()
    new = PROCESS.format(run="/bin/true") + conf()
    plan = plan_of(old, new)
    assert plan.processes.changed == ("watcher",) and not plan.processes.added
    assert plan_of(conf(), old).processes.added == ("watcher",)
    assert plan_of(old, conf()).processes.removed == ("watcher",)


def test_route_delta_counts_what_set_static_would_send() -> None:
    a, b = Attributes.make(next_hop="self", med=1), Attributes.make(next_hop="self", med=2)
    p, q, r = nlri("10.0.0.0/24"), nlri("10.0.1.0/24"), nlri("10.0.2.0/24")
    static = {IPV4_UNICAST: {p: a, q: a}}
    # r is a runtime route the new config now also announces, with other attributes
    announced = {IPV4_UNICAST: {p: a, q: a, r: b}}
    assert route_delta(static, announced, {IPV4_UNICAST: {p: a, r: a}}) == (1, 1)
    assert route_delta(static, announced, {IPV4_UNICAST: {p: a, r: b}}) == (0, 1)
    # a static route someone already withdrew (clear adj-rib out) is not withdrawn again
    assert route_delta(static, {IPV4_UNICAST: {}}, {}) == (0, 0)


def test_dry_run_applies_nothing_and_the_real_reload_applies_the_same_plan(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            first = sp.peers["127.100.0.1"]
            (tmp_path / "fleetbgp.conf").write_text(conf("route 100.10.0.101/32 next-hop self;", peer_as=65002))
            dry = await sp.reload(dry_run=True)
            assert dry.ok and dry.plan is not None
            assert sp.reload_counts == {"success": 0, "failure": 0}
            assert list(first.rib_out.routes[IPV4_UNICAST]) == [nlri("100.10.0.100/32")]
            real = await sp.reload()
            assert real.plan is not None and real.plan.as_dict() == dry.plan.as_dict()
            assert real.summary == dry.summary
            assert list(first.rib_out.routes[IPV4_UNICAST]) == [nlri("100.10.0.101/32")]
            assert sp.reload_counts == {"success": 1, "failure": 0}
            # A broken file: the dry run says so and counts nothing.
            (tmp_path / "fleetbgp.conf").write_text(conf("route 100.10.0.1/24 next-hop self;"))
            broken = await sp.reload(dry_run=True)
            assert not broken.ok and broken.plan is None and broken.errors
            assert sp.reload_counts == {"success": 1, "failure": 0} and sp.last_reload["result"] == "success"
        finally:
            await sp.stop()

    asyncio.run(go())


def test_the_cli_prints_the_plan() -> None:
    plan = plan_of(PROCESS.format(run="/bin/cat") + conf(),
                   conf("route 100.10.0.101/32 next-hop self;", peer_as=65002)).as_dict(routes=True)
    text = cli_plan.render_plan({"ok": True, "plan": plan, "applied": False})
    assert text == ("neighbor 127.100.0.1: announce or change 1 route(s), withdraw 1\n"
                    "  + 100.10.0.101/32 next-hop self (config)\n"
                    "  - 100.10.0.100/32 next-hop self med 100 (config)\n"
                    "neighbor 127.100.0.5: restart the session (changed: peer-as)\n"
                    "process watcher: remove\n"
                    "routes listed: routes of the config file only; API, control and health check "
                    "routes are not listed\n"
                    "dry run: nothing was applied\n")
    quiet = cli_plan.render_plan({"plan": plan_of(conf(), conf()).as_dict()})
    assert quiet == ("no change to sessions, routes, processes or health checks\n"
                     "2 neighbor(s) unchanged\ndry run: nothing was applied\n")
