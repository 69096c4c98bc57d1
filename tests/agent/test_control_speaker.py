"""The control socket against the real Speaker and real Peers (not connected to anyone): what the
commands do to them (routes fanned out to the peers' families, maintenance drains, reload and its
one lock). That the Speaker fits the control port, and that the test fakes do (control_fakes._fits),
is checked by mypy, not here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from control_fakes import Raw, real_agent

from fleetbgp.control_client import ControlError
from fleetbgp.reload_plan import ReloadPlan

CONF = """\
neighbor 192.0.2.1 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    local-address 192.0.2.2;
    family { ipv4 unicast; }
    static {
        route 100.10.0.100/32 next-hop self med 100;
        route 100.10.1.0/24 next-hop self;
    }
}
neighbor 2001:db8::1 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    family { ipv4 unicast; ipv6 unicast; }
}
"""


@pytest.fixture
def real(tmp_path: Path):
    with real_agent(CONF, tmp_path, config_sha256="cafe" * 16, maintenance_mode="withdraw") as a:
        yield a.speaker, a.client


def test_announce_withdraw_and_owners_on_real_peers(real):
    _speaker, client = real
    r = client.call("announce", route="route 100.10.0.200/32 next-hop self med 300")
    assert r["changed"] == 2
    routes = client.call("routes", prefix="100.10.0.200/32")["routes"]
    assert {(e["neighbor"], e["owner"], e["med"]) for e in routes} == {
        ("192.0.2.1", "control:cli", 300), ("2001:db8::1", "control:cli", 300)}
    v6 = client.call("announce", route="2001:db8:5::/48 next-hop self", neighbors=["2001:db8::1"])
    assert v6["changed"] == 1
    assert client.call("routes", owner="config")["count"] == 2
    assert client.call("routes", owner="control:cli")["count"] == 3
    assert client.call("withdraw", all=True)["changed"] == 3
    assert client.call("routes")["count"] == 2
    with pytest.raises(ControlError) as exc:
        client.call("announce", route="100.10.0.9/32 next-hop self", neighbors=["192.0.2.77"])
    assert exc.value.code == "unknown_neighbor"


def test_maintenance_drains_real_peers(real):
    speaker, client = real
    assert client.call("maintenance", state="on")["maintenance"] is True
    assert speaker.maintenance is True
    assert all(p.drain_mode == "withdraw" for p in speaker.peers.values())
    assert client.call("status")["maintenance"] is True
    client.call("maintenance", state="off")
    assert all(p.drain_mode is None for p in speaker.peers.values())


def test_reload_through_the_socket_with_a_broken_file(real, tmp_path):
    speaker, client = real
    Path(speaker.config_path).write_text("neighbor 192.0.2.1 { local-as 0; }\n")
    with pytest.raises(ControlError) as exc:
        client.call("reload")
    assert exc.value.code == "reload_failed"
    assert any(":1:" in line for line in exc.value.details)
    assert client.call("status")["last_reload"]["result"] == "failure"
    assert len(speaker.peers) == 2, "a broken file changes nothing"



def test_reload_dry_run_through_the_socket_shows_the_plan_and_changes_nothing(real):
    speaker, client = real
    Path(speaker.config_path).write_text(CONF.replace("med 100;", "med 200;").replace(
        "peer-as 65000;\n    router-id 192.0.2.2;\n    family { ipv4 unicast; ipv6", "peer-as 65009;\n"
        "    router-id 192.0.2.2;\n    family { ipv4 unicast; ipv6"))
    reply = client.call_args("reload", {"dry_run": True})
    assert reply["applied"] is False
    assert reply["plan"]["neighbors"] == [
        {"neighbor": "192.0.2.1", "action": "update", "announce": 1, "withdraw": 0},
        {"neighbor": "2001:db8::1", "action": "restart", "settings": ["peer-as"]}]
    assert client.call("status")["reloads"] == {"success": 0, "failure": 0}
    with pytest.raises(ControlError) as exc:
        client.call_args("reload", {"dry_run": "yes"})
    assert exc.value.code == "bad_request" and "dry_run" in exc.value.message
    # A candidate file sent by the client is planned the same way, the config file untouched.
    candidate = client.call_args("reload", {"dry_run": True, "config": {
        "name": "/elsewhere/candidate.conf", "text": Path(speaker.config_path).read_text()}})
    assert candidate["plan"] == reply["plan"]
    with pytest.raises(ControlError) as exc:
        client.call_args("reload", {"config": {"name": "c", "text": ""}})
    assert exc.value.code == "bad_request" and "dry_run" in exc.value.message
    applied = client.call("reload")
    # The real reload's reply has the same plan, without the route lists (dry runs only).
    assert applied["plan"] == {k: v for k, v in reply["plan"].items()
                               if k not in ("routes", "prefixes", "assumed_up", "routes_note")}
    assert "applied" not in applied


def test_concurrent_reload_requests_are_serialised_by_the_speaker_and_both_answered(tmp_path):
    """Two clients ask for a reload at once: the Speaker's own lock (the only one) runs them one
    after the other, and each client gets its reply."""
    with real_agent(CONF, tmp_path) as a:
        running, most, done = 0, 0, []

        async def slow_apply(plan: ReloadPlan, sha256: str) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.2)
            running -= 1
            done.append(plan)

        a.speaker._apply = slow_apply
        first, second = Raw(a.sock), Raw(a.sock)
        try:
            first.send(b'{"v":1,"id":1,"cmd":"reload"}\n')
            second.send(b'{"v":1,"id":2,"cmd":"reload"}\n')
            replies = [first.reply(), second.reply()]
        finally:
            first.close()
            second.close()
    assert [r["id"] for r in replies] == [1, 2]
    assert all(r["ok"] for r in replies), replies
    assert len(done) == 2
    assert most == 1, "the two reloads overlapped"


def test_restart_through_the_socket_answers_then_stops_the_real_agent(real):
    speaker, client = real
    with pytest.raises(ControlError) as exc:
        client.call_args("restart", {"graceful": "yes"})
    assert exc.value.code == "bad_request" and exc.value.message == (
        "restart: graceful must be true or false, not yes")
    reply = client.call_args("restart", {"graceful": True})
    assert reply["restarting"] and reply["graceful"] and reply["exit_status"] == 75
    assert "no neighbor has graceful-restart configured" in reply["message"]
    assert speaker.restart_graceful is True
