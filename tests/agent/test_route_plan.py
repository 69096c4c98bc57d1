"""The route plan of `fleetbgp reload --dry-run [--config FILE]`: per neighbor, the routes of the
file and of the health checks announced, withdrawn and changed; a candidate file planned against
the running agent; and the proof that the plan is what a real reload then does to the adj-rib-outs.

Health checks are driven by hand (their engine fed, no task, no check run): the plan depends on
their state, not on time. The Speaker's peers dial port 9 on loopback (see test_speaker)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_speaker import CONF, make_speaker, nlri

from fleetbgp import cli, cli_plan
from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.health.runner import CheckRunner, HealthManager
from fleetbgp.owner import Owner
from fleetbgp.reload_plan import NeighborAction, reconcile
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST

CHECK = """
healthcheck {name} {{ ip {ip}; check command "true"; rise 1; fall 1; up-metric {med}; community [ 65001:200 ]; }}
"""


def conf(routes: str = "route 100.10.0.100/32 next-hop self med 100;", peer_as: int = 65000,
         checks: tuple[tuple[str, str, int], ...] = (("service", "100.10.0.200/32", 100),)) -> str:
    return CONF.format(routes=routes, peer_as=peer_as) + "".join(
        CHECK.format(name=n, ip=ip, med=med) for n, ip, med in checks)


def start_checks(sp: Speaker) -> HealthManager:
    """The health subsystem with each check UP (fed one good result), without tasks."""
    hm = HealthManager(sp, sp.config)
    for hc in sp.config.healthchecks.values():
        runner = CheckRunner(sp, hc)
        hm.runners[hc.name] = runner
        assert [t.after for t in runner.engine.feed(True, 0.0)] == ["UP"]
        runner.sync()
    sp.health = hm
    return hm


def adj_ribs_out(sp: Speaker) -> dict[str, dict[Any, Attributes]]:
    return {a: {(f, n): attrs for f, t in p.rib_out.routes.items() for n, attrs in t.items()}
            for a, p in sp.peers.items()}


def lines(step: dict[str, Any]) -> list[str]:
    return cli_plan.route_lines(step)


def test_a_health_check_med_change_is_shown_old_to_new(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            start_checks(sp)
            new = conf(checks=(("service", "100.10.0.200/32", 200),))
            result = await sp.reload(dry_run=True, candidate=("/tmp/candidate.conf", new, {}))
            assert result.ok and result.plan is not None
            routes = result.plan.as_dict(routes=True)["routes"]
            assert [(r["neighbor"], lines(r)) for r in routes] == [
                ("127.100.0.1", ["~ 100.10.0.200/32 med 100 -> 200 (health:service)"]),
                ("127.100.0.5", ["~ 100.10.0.200/32 med 100 -> 200 (health:service)"])]
            assert [s.action for s in result.plan.neighbors] == [NeighborAction.UPDATE] * 2
            # Planned, not applied: the running check and the adj-rib-outs are as they were.
            assert sp.health is not None and sp.health.runners["service"].engine.metric == 100
            assert sp.peers["127.100.0.1"].rib_out.routes[IPV4_UNICAST][nlri("100.10.0.200/32")].med == 100
            assert sp.config.healthchecks["service"].up_metric == 100
        finally:
            await sp.stop()

    asyncio.run(go())


def test_new_checks_are_planned_as_if_up_and_removed_ones_withdrawn(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            start_checks(sp)
            new = conf(checks=(("anycast", "100.10.0.150/32", 100),))
            result = await sp.reload(dry_run=True, candidate=("/tmp/candidate.conf", new, {}))
            assert result.plan is not None
            first = result.plan.as_dict(routes=True)["routes"][0]
            assert lines(first) == [
                "+ 100.10.0.150/32 next-hop self med 100 community 65001:200 (health:anycast, assumed UP)",
                "- 100.10.0.200/32 next-hop self med 100 community 65001:200 (health:service)"]
            assert result.plan.as_dict(routes=True)["assumed_up"] == ["anycast"]
        finally:
            await sp.stop()

    asyncio.run(go())


def test_the_plan_is_what_the_real_reload_sends(tmp_path: Path) -> None:
    """Config routes changed, added and withdrawn, a check's MED changed, a check removed, a
    session restarted, a control route left alone: the dry run's route lists, neighbor by
    neighbor, are exactly the adj-rib-out differences the real reload then makes."""
    async def go() -> None:
        old = conf("route 100.10.0.100/32 next-hop self med 100; route 100.10.0.102/32 next-hop self;",
                   checks=(("service", "100.10.0.200/32", 100), ("gone", "100.10.0.201/32", 100)))
        sp = make_speaker(tmp_path, old)
        await sp.start()
        try:
            start_checks(sp)
            sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), Attributes.make(next_hop="self"),
                        owner=Owner.control("t"))
            new = conf("route 100.10.0.100/32 next-hop self med 200; route 100.10.0.101/32 next-hop self;",
                       peer_as=65002, checks=(("service", "100.10.0.200/32", 300),))
            before = adj_ribs_out(sp)
            dry = await sp.reload(dry_run=True, candidate=(str(tmp_path / "fleetbgp.conf"), new, {}))
            assert adj_ribs_out(sp) == before
            (tmp_path / "fleetbgp.conf").write_text(new)
            real = await sp.reload()
            assert dry.plan is not None and real.plan is not None
            assert dry.plan.as_dict(routes=True)["routes"] == real.plan.as_dict(routes=True)["routes"]
            after = adj_ribs_out(sp)
            for step in dry.plan.neighbors:
                was, now = before[step.address], after[step.address]
                assert {k for k, _a, _o in step.routes.announce} == set(now) - set(was)
                assert {k for k, _a, _o in step.routes.withdraw} == set(was) - set(now)
                assert {k: new for k, _old, new, _o in step.routes.change} == \
                    {k: a for k, a in now.items() if k in was and was[k] != a}
            # Something of each kind happened (the test would prove nothing otherwise).
            kinds = {(step.action, bool(step.routes.announce), bool(step.routes.withdraw),
                      bool(step.routes.change)) for step in dry.plan.neighbors}
            assert kinds == {(NeighborAction.UPDATE, True, True, True),
                             (NeighborAction.RESTART, False, True, True)}
            control = (IPV4_UNICAST, nlri("198.51.100.0/24"))
            assert all(control in table for table in after.values())
        finally:
            await sp.stop()

    asyncio.run(go())


def test_with_no_agent_a_candidate_is_planned_against_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "candidate.conf"
    path.write_text(conf())
    code = cli.main(["reload", "--dry-run", "--config", str(path), "--socket", str(tmp_path / "none.sock"),
                     "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["agent"] == "none" and "planned against nothing" in out["note"]
    routes = {r["neighbor"]: [(e["prefix"], e["owner"], e.get("assumed_up", False)) for e in r["announce"]]
              for r in out["plan"]["routes"]}
    assert routes == {"127.100.0.1": [("100.10.0.100/32", "config", False),
                                      ("100.10.0.200/32", "health:service", True)],
                      "127.100.0.5": [("100.10.0.200/32", "health:service", True)]}
    assert out["plan"]["prefixes"] == {"before": [], "after": ["100.10.0.100/32", "100.10.0.200/32"]}
    code = cli.main(["reload", "--dry-run", "--config", str(path), "--socket", str(tmp_path / "none.sock")])
    text = capsys.readouterr().out
    assert code == 0 and text.startswith("note: no agent is running")
    assert "neighbor 127.100.0.1: add (new session)\n  + 100.10.0.100/32 next-hop self med 100 (config)\n" in text


def test_a_bad_candidate_names_file_and_line_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.conf"
    path.write_text(conf().replace("peer-as 65000;", "peer-as sixty;"))
    code = cli.main(["reload", "--dry-run", "--config", str(path), "--socket", str(tmp_path / "none.sock")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:2:" in err
    assert cli.main(["reload", "--config", str(path)]) == 2  # --config without --dry-run: usage


def test_a_candidate_without_health_view_plans_config_routes_only() -> None:
    old, new = parse_text(conf(), "old.conf"), parse_text(conf(checks=()), "new.conf")
    plan = reconcile(old, new, {})
    assert plan.as_dict(routes=True)["routes_note"].startswith("routes of the config file only")


def test_a_candidates_secrets_come_from_its_env_and_do_not_stay(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            new = conf().replace("peer-as 65000;", "peer-as 65000; md5-password env['PLAN_TEST_MD5'];", 1)
            refused = await sp.reload(dry_run=True, candidate=("/c.conf", new, {}))
            assert not refused.ok and "PLAN_TEST_MD5 is not set" in refused.errors[0]
            result = await sp.reload(dry_run=True, candidate=("/c.conf", new, {"PLAN_TEST_MD5": "s3cret"}))
            assert result.plan is not None and result.plan.neighbors[0].settings == ("md5-password",)
            assert "PLAN_TEST_MD5" not in os.environ and "s3cret" not in json.dumps(result.plan.as_dict(routes=True))
        finally:
            await sp.stop()

    asyncio.run(go())


@pytest.mark.parametrize("value", [
    "text", [], {"name": "c"}, {"text": "x"}, {"name": 1, "text": ""}, {"name": "c", "text": None},
    {"name": "c", "text": "", "env": []}, {"name": "c", "text": "", "env": {"A": 1}},
    {"name": "c", "text": "", "extra": 1}])
def test_a_malformed_candidate_request_is_a_bad_request(value: object) -> None:
    from fleetbgp.control.commands import _candidate
    from fleetbgp.control.protocol import ControlError

    with pytest.raises(ControlError) as exc:
        _candidate(value)
    assert exc.value.code == "bad_request" and "config must be" in exc.value.message


def test_a_route_moving_between_the_file_and_a_check_is_one_change(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            start_checks(sp)
            # 100.10.0.100/32: the file's (MED 100) -> the new check's (MED 300, a community).
            new = conf(checks=(("service", "100.10.0.200/32", 100), ("anycast", "100.10.0.100/32", 300)))
            dry = await sp.reload(dry_run=True, candidate=("/c.conf", new, {}))
            assert dry.plan is not None
            first = dry.plan.as_dict(routes=True)["routes"][0]
            assert lines(first) == ["~ 100.10.0.100/32 community none -> 65001:200, med 100 -> 300 "
                                    "(health:anycast, assumed UP)"]
        finally:
            await sp.stop()

    asyncio.run(go())


def test_a_checks_routes_go_only_to_neighbors_with_their_family(tmp_path: Path) -> None:
    """127.100.0.1 has ipv4 unicast only: the check's IPv6 route is not planned there, as the
    agent does not put it in that neighbor's adj-rib-out either."""
    text = conf(checks=(("v6", "2001:db8::1/128", 100),))
    path = tmp_path / "candidate.conf"
    path.write_text(text)
    new = parse_text(text, str(path))
    from fleetbgp.config import Config
    from fleetbgp.health.runner import planned_check

    checks = {n: planned_check(hc, None) for n, hc in new.healthchecks.items()}
    plan = reconcile(Config(neighbors=[], processes={}, listen=[], path=""), new, {}, checks=checks)
    routes = {r["neighbor"]: [e["prefix"] for e in r["announce"]] for r in plan.as_dict(routes=True)["routes"]}
    assert routes == {"127.100.0.1": ["100.10.0.100/32"], "127.100.0.5": ["2001:db8::1/128"]}
