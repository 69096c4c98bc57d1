"""`fleetbgp check` verdicts from control-socket answers (cli_check.evaluate), and its usage and
no-agent exits. The states against a real agent and BIRD: tests/interop/test_check_bird.py."""

from __future__ import annotations

import io

import pytest

from fleetbgp import cli_check
from fleetbgp.cli import main as cli_main


def neighbor(address: str, state: str = "Established", sent: int = 2) -> dict:
    return {"address": address, "state": state, "prefixes": {"sent": {"ipv4 unicast": sent}}}


def verdict(*argv: str, status=None, neighbors=(), checks=()) -> cli_check.Result:
    args = cli_check.parser().parse_args(list(argv))
    return cli_check.evaluate(args, status or {}, list(neighbors), list(checks))


TWO_UP = [neighbor("192.0.2.1"), neighbor("192.0.2.2")]
ONE_DOWN = [neighbor("192.0.2.1"), neighbor("192.0.2.2", "Active")]


@pytest.mark.parametrize(("argv", "neighbors", "want"), [
    ((), TWO_UP, cli_check.OK),
    ((), ONE_DOWN, cli_check.WARNING),                            # default warning: all
    ((), [neighbor("192.0.2.1", "Idle"), neighbor("192.0.2.2", "Connect")], cli_check.CRITICAL),
    (("--sessions-warning", "1"), ONE_DOWN, cli_check.OK),
    (("--sessions-critical", "all"), ONE_DOWN, cli_check.CRITICAL),
    (("--routes-warning", "5"), TWO_UP, cli_check.WARNING),       # 4 announced
    (("--routes-warning", "4"), TWO_UP, cli_check.OK),
    (("--routes-critical", "5", "--routes-warning", "9"), TWO_UP, cli_check.CRITICAL),
    ((), [], cli_check.UNKNOWN),                                  # nothing configured
])
def test_sessions_and_routes(argv, neighbors, want):
    assert verdict(*argv, neighbors=neighbors).status == want


def test_routes_count_only_established_peers():
    r = verdict(neighbors=ONE_DOWN)
    assert "routes_announced=2;;;0;" in r.line()
    assert "sessions_up=1;2:;1:;0;2" in r.line()
    assert r.line().startswith("FLEETBGP WARNING - 1/2 sessions up (warning below 2; down: 192.0.2.2)")


@pytest.mark.parametrize(("state", "health", "want"), [
    ("UP", "warning", cli_check.OK),
    ("DOWN", "warning", cli_check.WARNING),
    ("FALLING", "critical", cli_check.CRITICAL),
    ("DOWN", "ignore", cli_check.OK),
    ("DISABLED", "critical", cli_check.OK),  # the operator's own disable file: not a fault
    ("RISING", "critical", cli_check.OK),
])
def test_health(state, health, want):
    checks = [{"name": "web", "state": state}, {"name": "dns", "state": "UP"}]
    r = verdict("--health", health, neighbors=TWO_UP, checks=checks)
    assert r.status == want, r.line()
    assert f"health_up={1 + (state == 'UP')};;;0;2" in r.line()
    if want != cli_check.OK:
        assert f"health check web {state}" in r.line()


def test_maintenance_and_failed_reload():
    assert verdict(status={"maintenance": True}, neighbors=TWO_UP).status == cli_check.WARNING
    assert verdict("--maintenance", "ok", status={"maintenance": True}, neighbors=TWO_UP).status == cli_check.OK
    failed = {"last_reload": {"result": "failure", "errors": ["x"]}}
    r = verdict(status=failed, neighbors=TWO_UP)
    assert r.status == cli_check.WARNING and "last config reload refused" in r.line()
    assert verdict("--reload-failed", "critical", status=failed, neighbors=TWO_UP).status == cli_check.CRITICAL


def test_usage_error_and_no_socket_are_unknown(tmp_path, capsys):
    out = io.StringIO()
    assert cli_check.main(["--routes-warning", "-1"], out=out) == cli_check.UNKNOWN
    assert out.getvalue().startswith("FLEETBGP UNKNOWN - usage: argument --routes-warning")
    assert cli_main(["check", "--socket", str(tmp_path / "none.sock")]) == cli_check.UNKNOWN
    line = capsys.readouterr().out
    assert line.startswith("FLEETBGP UNKNOWN - cannot reach the fleetbgp agent at ") and line.count("\n") == 1


def test_bfd_not_up_on_an_established_session_warns():
    with_bfd = [dict(neighbor("192.0.2.1"), bfd={"state": "Up"}), dict(neighbor("192.0.2.2"), bfd={"state": "Down"})]
    r = verdict(neighbors=with_bfd)
    assert r.status == cli_check.WARNING
    assert "BFD not up for established 192.0.2.2 (no fast failover)" in r.line() and "bfd_up=1;;;0;2" in r.line()
    assert verdict("--bfd", "critical", neighbors=with_bfd).status == cli_check.CRITICAL
    assert verdict("--bfd", "ignore", neighbors=with_bfd).status == cli_check.OK
    held = [dict(neighbor("192.0.2.1"), bfd={"state": "Up"}), dict(neighbor("192.0.2.2", "Idle"), bfd={"state": "Down"})]
    assert "BFD not up" not in verdict(neighbors=held).line(), "held down: the sessions check says it"
    assert "bfd" not in verdict(neighbors=TWO_UP).line(), "nothing about BFD without it"
