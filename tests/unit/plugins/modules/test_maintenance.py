"""fleet.bgp.maintenance against the agent's real control server (fake speaker)."""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.fleet.bgp.plugins.modules import maintenance
from control_fakes import sample_speaker, served, short_tmpdir

from fleetbgp.settings import AgentSettings


def maintenance_calls(agent):
    return [c for c in agent.speaker.calls if c[0] == "maintenance"]


def test_drain_and_undrain_are_idempotent(agent, run_module):
    failed, result = run_module(maintenance, {"socket": agent.path, "state": "drained"})
    assert not failed
    assert (result["changed"], result["maintenance"]) == (True, True)
    assert (result["mode"], result["metric"], result["waited"]) == ("withdraw", 1000, 0)
    assert agent.speaker.maintenance is True
    assert all(p.drain_mode == "withdraw" for p in agent.speaker.peers.values())

    failed, result = run_module(maintenance, {"socket": agent.path, "state": "drained"})
    assert (result["changed"], result["maintenance"]) == (False, True)
    assert len(maintenance_calls(agent)) == 1

    failed, result = run_module(maintenance, {"socket": agent.path, "state": "active"})
    assert (result["changed"], result["maintenance"]) == (True, False)
    assert agent.speaker.maintenance is False
    failed, result = run_module(maintenance, {"socket": agent.path, "state": "active"})
    assert result["changed"] is False
    assert len(maintenance_calls(agent)) == 2


def test_check_mode_predicts_and_changes_nothing(agent, run_module):
    failed, result = run_module(maintenance, {"socket": agent.path, "state": "drained", "wait": 30},
                                check_mode=True, diff=True)
    assert not failed
    assert (result["changed"], result["maintenance"], result["waited"]) == (True, True, 0)
    assert agent.speaker.maintenance is False
    assert maintenance_calls(agent) == []
    assert result["diff"] == {"before": {"maintenance": False, "state": "active"},
                              "after": {"maintenance": True, "state": "drained"}}


def test_diff(agent, run_module):
    _f, result = run_module(maintenance, {"socket": agent.path, "state": "drained"}, diff=True)
    assert result["diff"]["after"] == {"maintenance": True, "state": "drained"}
    _f, result = run_module(maintenance, {"socket": agent.path, "state": "drained"}, diff=True)
    assert result["diff"]["before"] == result["diff"]["after"]


def test_wait_only_after_draining_in_this_run(agent, run_module, monkeypatch):
    slept = []
    monkeypatch.setattr(maintenance.time, "sleep", slept.append)
    _f, result = run_module(maintenance, {"socket": agent.path, "state": "drained", "wait": 7})
    assert (slept, result["waited"]) == ([7], 7)
    _f, result = run_module(maintenance, {"socket": agent.path, "state": "drained", "wait": 7})
    assert (slept, result["waited"]) == ([7], 0), "already drained: no wait"
    _f, result = run_module(maintenance, {"socket": agent.path, "state": "active", "wait": 7})
    assert (slept, result["waited"]) == ([7], 0), "no wait when undraining"


def test_metric_mode(run_module):
    settings = replace(AgentSettings(), maintenance_mode="metric", maintenance_metric=4000)
    with served(sample_speaker(settings), settings) as (_s, path, _lt):
        _f, check = run_module(maintenance, {"socket": path, "state": "drained"}, check_mode=True)
        _f, real = run_module(maintenance, {"socket": path, "state": "drained"})
    assert (check["mode"], check["metric"]) == ("metric", 4000)
    assert (real["mode"], real["metric"]) == ("metric", 4000)


def test_missing_socket(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(maintenance, {"socket": path, "state": "drained"})
    assert failed and "the agent is not running? systemctl status fleetbgp" in result["msg"]


def test_bad_arguments(agent, run_module):
    failed, result = run_module(maintenance, {"socket": agent.path, "state": "off"})
    assert failed and "state" in result["msg"]
    failed, result = run_module(maintenance, {"socket": agent.path, "state": "drained", "wait": -1})
    assert failed and "wait" in result["msg"]
    failed, result = run_module(maintenance, {"socket": agent.path})
    assert failed and "state" in result["msg"]
