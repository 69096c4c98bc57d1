"""fleet.bgp.agent_info against the agent's real control server (fake speaker, sample_speaker():
192.0.2.1 Established, 192.0.2.9 Active, 2001:db8::1 Established with IPv4 and IPv6)."""

from __future__ import annotations

import socket
import threading
import time

from ansible_collections.fleet.bgp.plugins.modules import agent_info
from control_fakes import LoopThread, sample_speaker, short_tmpdir

from fleetbgp.control import ControlServer
from fleetbgp.settings import AgentSettings


def test_reports_status_neighbors_health_and_counts(agent, run_module):
    failed, result = run_module(agent_info, {"socket": agent.path})
    assert not failed and result["changed"] is False
    assert result["status"]["version"] == "0.1.0"
    assert result["status"]["config_sha256"] == "ab" * 32
    assert result["status"]["maintenance"] is False
    assert [n["address"] for n in result["neighbors"]] == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert result["neighbors"][0]["state"] == "Established"
    assert (result["configured"], result["established"]) == (3, 2)
    assert result["not_established"] == ["192.0.2.9"]
    assert result["health"] == []
    assert "routes" not in result, "routes only with include_routes"
    assert "waited" not in result


def test_health_checks_are_a_list(agent, run_module):
    class Health:  # what HealthManager.status() returns: one entry per check, by name
        def status(self):
            return [{"name": "web", "state": "UP", "since": 1.0}]

    agent.speaker.health = Health()
    _failed, result = run_module(agent_info, {"socket": agent.path})
    assert result["health"] == [{"name": "web", "state": "UP", "since": 1.0}]


def test_include_routes_with_limit(agent, run_module):
    _failed, result = run_module(agent_info, {"socket": agent.path, "include_routes": True})
    assert result["routes_total"] == 6 and len(result["routes"]) == 6
    assert result["routes_truncated"] is False
    first = result["routes"][0]
    assert {"neighbor", "family", "prefix", "next_hop", "owner", "route"} <= set(first)
    _failed, result = run_module(agent_info, {"socket": agent.path, "include_routes": True,
                                              "routes_limit": 2})
    assert (len(result["routes"]), result["routes_total"], result["routes_truncated"]) == (2, 6, True)
    _failed, result = run_module(agent_info, {"socket": agent.path, "include_routes": True,
                                              "routes_limit": 0})
    assert len(result["routes"]) == 6


def test_neighbors_filter_applies_to_everything(agent, run_module):
    _failed, result = run_module(agent_info, {"socket": agent.path, "neighbors": ["192.0.2.9"],
                                              "include_routes": True})
    assert [n["address"] for n in result["neighbors"]] == ["192.0.2.9"]
    assert (result["configured"], result["established"]) == (1, 0)
    assert {r["neighbor"] for r in result["routes"]} == {"192.0.2.9"}
    assert result["status"]["neighbors"] == 3, "status is about the whole agent"


def test_unknown_neighbor_fails_listing_the_agents_neighbors(agent, run_module):
    failed, result = run_module(agent_info, {"socket": agent.path, "neighbors": ["203.0.113.7"]})
    assert failed
    assert "203.0.113.7" in result["msg"]
    assert "192.0.2.1, 192.0.2.9, 2001:db8::1" in result["msg"]
    assert result["error_code"] == "unknown_neighbor"


def test_check_mode_reads_as_usual(agent, run_module):
    failed, result = run_module(agent_info, {"socket": agent.path}, check_mode=True)
    assert not failed and result["configured"] == 3


def test_wait_for_established_returns_when_all_up(agent, run_module):
    failed, result = run_module(agent_info, {"socket": agent.path, "wait_for": "established",
                                             "neighbors": ["192.0.2.1", "2001:db8::1"]})
    assert not failed
    assert result["established"] == result["configured"] == 2
    assert result["not_established"] == []
    assert 0 <= result["waited"] < 1


def test_wait_for_established_times_out_naming_the_sessions_that_are_down(agent, run_module):
    start = time.monotonic()
    failed, result = run_module(agent_info, {"socket": agent.path, "wait_for": "established",
                                             "timeout": 1.5})
    took = time.monotonic() - start
    assert failed
    assert 1.4 < took < 5
    assert "timed out after 1.5 s" in result["msg"]
    assert "1 of 3 not up" in result["msg"]
    assert "192.0.2.9 (Active: connect to 192.0.2.9 port 179 failed: refused)" in result["msg"]
    assert "192.0.2.1" not in result["msg"]
    assert result["not_established"] == ["192.0.2.9"]
    assert result["error_code"] == "not_established"
    assert (result["established"], result["configured"]) == (2, 3)
    assert len(result["neighbors"]) == 3


def test_wait_for_established_waits_for_a_session_coming_up(agent, run_module):
    peer = agent.speaker.peers["192.0.2.9"]

    def come_up():
        time.sleep(1.2)

        def up():
            peer.state = "Established"
            peer.established_since = time.time()
        agent.loop.call(up)

    threading.Thread(target=come_up, daemon=True).start()
    failed, result = run_module(agent_info, {"socket": agent.path, "wait_for": "established",
                                             "timeout": 15})
    assert not failed, result["msg"]
    assert result["established"] == 3
    assert 1.0 < result["waited"] < 10


def test_wait_for_established_waits_for_the_agent_to_start(run_module):
    """Right after `systemctl start` the socket may not be there yet: not an error while waiting."""
    path = str(short_tmpdir() / "control.sock")
    loop = LoopThread()
    server = ControlServer(sample_speaker(), AgentSettings(control_socket=path))

    def start_later():
        time.sleep(1.2)
        loop.run(server.start())

    threading.Thread(target=start_later, daemon=True).start()
    try:
        failed, result = run_module(agent_info, {"socket": path, "wait_for": "established",
                                                 "neighbors": ["192.0.2.1"], "timeout": 15})
        assert not failed, result["msg"]
        assert result["waited"] > 1.0
    finally:
        loop.run(server.stop())
        loop.close()


def test_wait_for_an_agent_that_never_comes_says_so(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(agent_info, {"socket": path, "wait_for": "established", "timeout": 1})
    assert failed
    assert result["msg"].startswith("timed out after 1 s waiting for the agent: ")
    assert "the agent is not running? systemctl status fleetbgp" in result["msg"]


def test_wait_for_with_no_neighbors_fails(run_module):
    from control_fakes import FakeSpeaker, served

    with served(FakeSpeaker([])) as (_s, path, _lt):
        failed, result = run_module(agent_info, {"socket": path, "wait_for": "established"})
    assert failed
    assert "no neighbors configured" in result["msg"]


def test_missing_socket(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(agent_info, {"socket": path})
    assert failed
    assert result["msg"] == (f"cannot reach the fleetbgp agent: there is no control socket at {path} "
                             "(the agent is not running? systemctl status fleetbgp)")
    assert result["error_code"] == "unavailable"


def test_permission_denied_fails_at_once_even_while_waiting(agent, run_module, monkeypatch):
    def deny(self, address):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", deny)
    start = time.monotonic()
    failed, result = run_module(agent_info, {"socket": agent.path, "wait_for": "established",
                                             "timeout": 30})
    assert failed and time.monotonic() - start < 5
    assert "run the task with become, or add the user to group fleetbgp" in result["msg"]


def test_bad_arguments(agent, run_module):
    failed, result = run_module(agent_info, {"socket": agent.path, "timeout": 0})
    assert failed and "timeout" in result["msg"]
    failed, result = run_module(agent_info, {"socket": agent.path, "routes_limit": -1})
    assert failed and "routes_limit" in result["msg"]
    failed, result = run_module(agent_info, {"socket": agent.path, "wait_for": "up"})
    assert failed and "wait_for" in result["msg"]


def test_deployed_revision_is_returned(agent, run_module, tmp_path):
    record = tmp_path / "deployed.json"
    missing = tmp_path / "none.json"
    _failed, result = run_module(agent_info, {"socket": agent.path, "deployed_path": str(missing)})
    assert result["deployed"] is None
    record.write_text('{"sha": "9f29", "ref": "main", "config_sha256": "ab"}')
    failed, result = run_module(agent_info, {"socket": agent.path, "deployed_path": str(record)})
    assert not failed and result["deployed"] == {"sha": "9f29", "ref": "main", "config_sha256": "ab"}


def test_unreadable_deployed_record_is_an_error_entry_not_a_failure(agent, run_module, tmp_path):
    record = tmp_path / "deployed.json"
    record.write_text('{"sha": ')
    failed, result = run_module(agent_info, {"socket": agent.path, "deployed_path": str(record)})
    assert not failed
    assert set(result["deployed"]) == {"error"} and str(record) in result["deployed"]["error"]
    record.write_text('["not", "a", "dict"]')
    _failed, result = run_module(agent_info, {"socket": agent.path, "deployed_path": str(record)})
    assert result["deployed"] == {"error": f"{record}: not a JSON object"}


def test_the_bfd_status_of_each_neighbor_is_passed_through(agent, run_module):
    from fleetbgp.bfd.machine import Timers
    from fleetbgp.bfd.packet import BfdState, Diag
    from fleetbgp.bfd.status import BfdStatus

    agent.speaker.peers["192.0.2.1"].bfd = BfdStatus(
        state=BfdState.UP, remote_state=BfdState.UP, local_diag=Diag.NONE, remote_diag=Diag.NONE,
        local_discr=7, remote_discr=9, tx_interval_ms=300, detect_time_ms=900, remote_min_tx_ms=300,
        remote_min_rx_ms=300, remote_multiplier=3, configured=Timers(), auth="keyed-sha1",
        up_since=1795406561.0, transitions=2, packets_sent=10, packets_received=9, packets_dropped=0,
        last_down_reason=None)
    failed, result = run_module(agent_info, {"socket": agent.path})
    assert not failed
    bfd = {n["address"]: n["bfd"] for n in result["neighbors"]}
    assert bfd["192.0.2.9"] is None, "no bfd in its config: null"
    assert bfd["192.0.2.1"]["state"] == "Up" and bfd["192.0.2.1"]["detect_time_ms"] == 900
    assert bfd["192.0.2.1"]["auth"] == "keyed-sha1" and bfd["192.0.2.1"]["holding_bgp"] is False
