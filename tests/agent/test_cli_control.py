"""`fleetbgp show|announce|withdraw|maintenance|reload` against a control server with a fake
Speaker: tables for people, JSON for scripts, and the exit codes (0 ok, 1 refused, 2 usage,
3 cannot reach the agent)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from control_fakes import ReloadResult, sample_speaker, served, short_tmpdir

import fleetbgp
from fleetbgp.cli import main
from fleetbgp.cli_control import fmt_duration, table


@pytest.fixture
def agent():
    speaker = sample_speaker()
    with served(speaker) as (_server, path, _lt):
        yield speaker, path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def columns(header: str, line: str, name: str, following: str) -> str:
    """The text of column `name` in `line`, using the header's column positions."""
    start = header.index(name)
    end = header.index(following) if following else None
    return line[start:end].strip()


def test_show_neighbors_table(agent, capsys):
    _speaker, path = agent
    code, out, err = run(capsys, "show", "neighbors", "--socket", path)
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == ["Neighbor", "Peer", "AS", "Local", "AS", "State", "Since", "Uptime", "Hold",
                              "Msgs", "in/out", "Sent", "Received", "Flaps", "Info"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"192.0.2.1", "192.0.2.9", "2001:db8::1"}
    a = rows["192.0.2.1"]
    assert columns(header, a, "State", "Since") == "Established"
    assert columns(header, a, "Sent", "Received") == "3"
    assert columns(header, a, "Msgs in/out", "Sent") == "12/15"
    assert columns(header, a, "Uptime", "Hold") == "1h02m"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", columns(header, a, "Since", "Uptime"))
    b = rows["192.0.2.9"]
    assert columns(header, b, "State", "Since") == "Active"
    assert columns(header, b, "Sent", "Received") == "0"
    assert "refused" in columns(header, b, "Info", "")
    assert columns(header, rows["2001:db8::1"], "Sent", "Received") == "ipv4:1 ipv6:1"
    # aligned: every row has its State column where the header has it
    for line in lines[1:]:
        assert line[header.index("State") - 2:header.index("State")] == "  "


def test_show_neighbors_json_is_the_protocol_result(agent, capsys):
    _speaker, path = agent
    code, out, _ = run(capsys, "show", "neighbors", "192.0.2.1", "--json", "--socket", path)
    assert code == 0
    data = json.loads(out)
    assert [n["address"] for n in data["neighbors"]] == ["192.0.2.1"]
    assert data["neighbors"][0]["prefixes"]["sent"] == {"ipv4 unicast": 3}


def test_show_status(agent, capsys):
    speaker, path = agent
    speaker.maintenance = True
    code, out, _ = run(capsys, "show", "status", "--socket", path)
    assert code == 0
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())
    assert fields["version"] == "fleetbgp 0.1.0, pid 4242"
    assert fields["config"] == "/etc/fleetbgp/fleetbgp.conf"
    assert fields["config sha256"] == "ab" * 32
    assert fields["neighbors"] == "3 configured, 2 established"
    assert fields["maintenance"] == "on (withdraw)"
    assert fields["last reload"] == "none since start"
    assert fields["up"].startswith("1h00m")
    code, out, _ = run(capsys, "show", "status", "--json", "--socket", path)
    assert json.loads(out)["pid"] == 4242


def test_show_routes_table_and_filters(agent, capsys):
    _speaker, path = agent
    code, out, _ = run(capsys, "show", "routes", "--socket", path, "--neighbor", "192.0.2.1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["Neighbor", "Family", "Prefix", "Next"]
    assert lines[-1] == "3 routes"
    row = next(line for line in lines if "100.10.0.100/32" in line)
    assert row.split()[:6] == ["192.0.2.1", "ipv4", "100.10.0.100/32", "self", "100", "-"]
    assert "65001:100 no-export 65001:1:1" in row and row.rstrip().endswith("config")
    code, out, _ = run(capsys, "show", "routes", "--socket", path, "--prefix", "100.10.0.0/16", "--longer",
                       "--limit", "2")
    assert code == 0
    assert out.splitlines()[-1] == "2 of 5 routes shown (--limit N for more, --limit 0 for all)"
    code, out, _ = run(capsys, "show", "routes", "--socket", path, "--family", "ipv6", "--json")
    data = json.loads(out)
    assert [r["prefix"] for r in data["routes"]] == ["2001:db8:100::/48"]
    assert data["routes"][0]["route"] == "2001:db8:100::/48 next-hop self med 50"


def test_show_routes_empty(agent, capsys):
    _speaker, path = agent
    code, out, _ = run(capsys, "show", "routes", "--socket", path, "--prefix", "203.0.113.0/24")
    assert (code, out) == (0, "0 routes\n")


def test_show_health_and_processes(agent, capsys):
    speaker, path = agent
    assert run(capsys, "show", "health", "--socket", path)[1] == "no health checks configured\n"
    assert run(capsys, "show", "processes", "--socket", path)[1] == "no API processes configured\n"

    class Health:
        def status(self):
            now = time.time()
            return [{"name": "web", "state": "UP", "since": now - 125, "transitions": 3, "checks": 40,
                     "ips": ["100.10.0.100/32", "100.10.0.101/32"], "announced": {"100.10.0.100/32": 100},
                     "consecutive_ok": 7, "consecutive_fail": 0, "last_check": now - 2,
                     "metric": 100, "last_result": "tcp 127.0.0.1:80 ok"}]

    class Api:
        def status(self):
            return [{"name": "hc", "state": "running", "pid": 99, "restarts": 1, "run": "/usr/bin/hc --x"}]

    speaker.health, speaker.api = Health(), Api()
    out = run(capsys, "show", "health", "--socket", path)[1]
    header, row = out.splitlines()
    assert header.split() == ["Check", "State", "Since", "For", "Announced", "Streak", "Checks", "Changes",
                              "Last", "check", "Last", "result"]
    assert row.split()[:2] == ["web", "UP"]
    assert columns(header, row, "For", "Announced") == "2m05s"
    assert columns(header, row, "Announced", "Streak") == "100.10.0.100/32 (MED 100), 100.10.0.101/32 (withdrawn)"
    assert columns(header, row, "Streak", "Checks") == "7 ok"
    assert columns(header, row, "Last check", "Last result") == "2s ago"
    assert row.endswith("tcp 127.0.0.1:80 ok")
    out = run(capsys, "show", "processes", "--socket", path)[1]
    assert out.splitlines()[1].split() == ["hc", "running", "99", "1", "/usr/bin/hc", "--x"]


def test_announce_and_withdraw(agent, capsys):
    speaker, path = agent
    code, out, err = run(capsys, "announce", "route", "100.10.0.100/32", "next-hop", "self", "med", "100",
                         "--socket", path)
    assert code == 0, err
    assert out == "announced 1 route (owner control:cli) to 3 neighbors\n"
    _, _fam, _, attrs, owner, neighbors = speaker.calls[-1]
    assert (attrs.med, owner, neighbors) == (100, "control:cli", None)
    code, out, _ = run(capsys, "announce", "--neighbor", "192.0.2.1", "--owner", "deploy", "--json",
                       "--socket", path, "100.10.0.150/32", "next-hop", "self", "community", "[", "65001:1",
                       "65001:2", "]")
    assert code == 0
    assert json.loads(out) == {"routes": 1, "changed": 1, "owner": "control:deploy", "maintenance": False}
    assert speaker.calls[-1][3].communities == ((65001 << 16) | 1, (65001 << 16) | 2)
    code, out, _ = run(capsys, "withdraw", "route", "100.10.0.150/32", "--socket", path)
    assert (code, out) == (0, "withdrew 1 route (owner control:cli) from 1 neighbor\n")
    code, out, _ = run(capsys, "withdraw", "--all", "--owner", "deploy", "--socket", path)
    assert (code, out) == (0, "withdrew every route (owner control:deploy): nothing changed at any neighbor\n")


def test_announce_during_maintenance_says_so(agent, capsys):
    speaker, path = agent
    speaker.maintenance = True
    out = run(capsys, "announce", "100.10.0.160/32", "next-hop", "self", "--socket", path)[1]
    assert "maintenance is on" in out


def test_invalid_route_exits_1_with_the_reason(agent, capsys):
    _speaker, path = agent
    code, out, err = run(capsys, "announce", "route", "100.10.0.1/24", "next-hop", "self", "--socket", path)
    assert code == 1
    assert out == ""
    assert "host bits" in err and "did you mean 100.10.0.0/24" in err
    code, out, err = run(capsys, "announce", "route", "100.10.0.1/32", "next-hop", "self", "--neighbor",
                         "203.0.113.1", "--socket", path, "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "unknown_neighbor"
    assert "203.0.113.1" in err


def test_maintenance(agent, capsys):
    speaker, path = agent
    assert run(capsys, "maintenance", "--socket", path)[1] == "maintenance off (already)\n"
    code, out, _ = run(capsys, "maintenance", "on", "--socket", path)
    assert (code, out) == (0, "maintenance on (withdrawing every announcement)\n")
    assert speaker.maintenance is True
    code, out, _ = run(capsys, "maintenance", "off", "--socket", path, "--json")
    assert json.loads(out)["maintenance"] is False


def test_maintenance_metric_mode_text():
    from fleetbgp.cli_control import _render_maintenance
    assert _render_maintenance({"maintenance": True, "mode": "metric", "metric": 1000, "changed": True}) == \
        "maintenance on (announcing everything with MED 1000)\n"


def test_reload(agent, capsys):
    speaker, path = agent
    code, out, _ = run(capsys, "reload", "--socket", path)
    assert (code, out) == (0, "reloaded: no change to sessions or routes\n")
    speaker.reload_result = ReloadResult(False, ["/etc/f.conf:3:1: bad thing", "/etc/f.conf:4:1: worse"],
                                         "reload refused: the running configuration is unchanged")
    code, out, err = run(capsys, "reload", "--socket", path)
    assert code == 1
    assert err.splitlines() == ["fleetbgp reload: reload refused: the running configuration is unchanged",
                                "  /etc/f.conf:3:1: bad thing", "  /etc/f.conf:4:1: worse"]


def test_restart(agent, capsys):
    speaker, path = agent
    code, out, _ = run(capsys, "restart", "--graceful", "--socket", path)
    assert code == 0 and speaker.calls[-1] == ("restart", True)
    assert out.startswith("graceful restart: the agent stops now and exits with status 75")
    code, out, _ = run(capsys, "restart", "--socket", path)
    assert code == 0 and speaker.calls[-1] == ("restart", False) and out.startswith("restart: ")


def test_show_neighbors_says_graceful_restart_and_the_n_bit():
    from fleetbgp.cli_control import render_neighbors
    base = {"address": "192.0.2.1", "state": "Established"}
    rows = [dict(base, graceful_restart={"negotiated": True, "notification": True}),
            dict(base, address="192.0.2.3", graceful_restart={"negotiated": True, "notification": False}),
            dict(base, address="192.0.2.5", graceful_restart={"negotiated": False})]
    lines = render_neighbors({"neighbors": rows}).splitlines()
    assert lines[1].endswith("GR+N") and lines[2].endswith("GR") and not lines[3].rstrip().endswith("GR")


def test_cannot_reach_the_agent_exits_3_naming_the_socket(capsys):
    path = str(short_tmpdir() / "control.sock")
    for argv in (["show", "status"], ["announce", "100.10.0.1/32", "next-hop", "self"], ["reload"],
                 ["maintenance", "on"]):
        code, out, err = run(capsys, *argv, "--socket", path)
        assert code == 3, argv
        assert path in err
        assert "systemctl status fleetbgp" in err
    code, out, _ = run(capsys, "show", "neighbors", "--json", "--socket", path)
    assert json.loads(out)["error"]["code"] == "unavailable"


def test_socket_from_the_environment(agent, capsys, monkeypatch):
    _speaker, path = agent
    monkeypatch.setenv("FLEETBGP_CONTROL_SOCKET", path)
    assert run(capsys, "show", "status", "--json")[0] == 0


@pytest.mark.parametrize("argv", [
    ["show"], ["show", "everything"], ["show", "status", "192.0.2.1"], ["show", "neighbors", "--prefix", "x"],
    ["show", "routes", "--longer"], ["announce"], ["withdraw", "--all", "10.0.0.0/8"], ["maintenance", "maybe"],
    ["show", "routes", "--limit", "many"],
])
def test_usage_errors_exit_2(argv, capsys):
    code, _out, err = run(capsys, *argv, "--socket", "/nonexistent/s.sock")
    assert code == 2, (argv, err)
    assert err


def test_table_and_duration_helpers():
    assert table(["A", "Long header"], [["xxxxx", 1], [None, "y"]]) == (
        "A      Long header\n"
        "xxxxx  1\n"
        "       y\n")
    assert [fmt_duration(s) for s in (5, 65, 3725, 90061, None)] == ["5s", "1m05s", "1h02m", "1d01h", "-"]


def test_python_dash_m_show_fails_cleanly_without_an_agent(tmp_path):
    src = Path(fleetbgp.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "fleetbgp", "show", "status", "--socket",
                           str(tmp_path / "none.sock")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src)}, check=False, timeout=60)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
