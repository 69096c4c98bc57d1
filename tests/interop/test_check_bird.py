"""`fleetbgp check` (the Nagios/NRPE plugin) against a real `fleetbgp run` peering with BIRD 2.

Topology as in every interop test (conftest.py): BIRD in ns "r", the agent in ns "s", the agent's
control socket in a per-test directory. The plugin runs on the host as NRPE would run it, and each
Nagios state is produced for real: OK with the session Established, CRITICAL after `birdc disable`,
OK again after `birdc enable`, WARNING on a threshold and in maintenance, UNKNOWN without a socket.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from interop_env import ROUTES_V4, bird_v4_peer, v4_neighbor

from netlab import wait_until
from netlab.fleetbgp import AGENT_SRC, FleetbgpAgent

pytestmark = pytest.mark.interop

PROTO = "agent4"  # bird_v4_peer's protocol name
# 'label'=value[UOM];[warn];[crit];[min];[max], Nagios plugin guidelines
PERFDATA = re.compile(r"^[a-z_]+=\d+;[\d:]*;[\d:]*;\d*;\d*$")


@pytest.fixture(autouse=True)
def _fleetbgp_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("fleetbgp check is fleetbgp's own")


@pytest.fixture
def ctl_dir():
    path = Path(tempfile.mkdtemp(prefix="fbi-chk-", dir="/tmp"))  # short: unix socket path limit
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_check(socket: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(AGENT_SRC)}
    env.pop("FLEETBGP_CONTROL_SOCKET", None)
    cp = subprocess.run([sys.executable, "-m", "fleetbgp", "check", "--socket", socket, *args],
                        capture_output=True, text=True, env=env, timeout=60, check=False)
    lines = cp.stdout.splitlines()
    assert len(lines) == 1, f"not one line of output: {cp.stdout!r} {cp.stderr!r}"
    return cp.returncode, lines[0]


def perfdata(line: str) -> dict[str, str]:
    _, sep, perf = line.partition(" | ")
    assert sep, f"no perfdata in {line!r}"
    out = {}
    for item in perf.split():
        assert PERFDATA.match(item), f"bad perfdata {item!r} in {line!r}"
        key, _, value = item.partition("=")
        out[key] = value
    return out


@pytest.fixture
def agent(topo, bird, ctl_dir):
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    socket = str(ctl_dir / "control.sock")
    a = FleetbgpAgent(topo.lab, topo.s, [v4_neighbor(topo.link)],
                      env={"FLEETBGP_CONTROL_SOCKET": socket, "FLEETBGP_METRICS": "off"})
    a.start()
    wait_until(lambda: a.ensure_alive() or os.path.exists(socket), 15, "the agent's control socket",
               describe=a.log_tail)
    bird.wait_established(PROTO)
    bird.wait_imported(PROTO, len(ROUTES_V4))
    a.socket = socket  # type: ignore[attr-defined]
    yield a
    text = a.log_text()
    assert "Traceback (most recent call last)" not in text, text


def test_check_states_follow_the_session(topo, bird, agent):
    sock = agent.socket
    routes = len(ROUTES_V4)

    rc, line = wait_until(lambda: (r := run_check(sock))[0] == 0 and r, 15, "check OK",
                          describe=lambda: run_check(sock)[1])
    assert line.startswith("FLEETBGP OK - 1/1 sessions up, 3 routes announced"), line
    perf = perfdata(line)
    assert perf["sessions_up"] == "1;1:;1:;0;1"
    assert perf["routes_announced"] == f"{routes};;;0;"
    assert perf["health_up"] == "0;;;0;0"

    # WARNING on a threshold: want more routes than announced; CRITICAL beats WARNING
    rc, line = run_check(sock, "--routes-warning", str(routes + 1))
    assert rc == 1 and line.startswith(f"FLEETBGP WARNING - {routes} routes announced (warning below 4)"), line
    assert perfdata(line)["routes_announced"] == f"{routes};{routes + 1}:;;0;"
    rc, line = run_check(sock, "--routes-warning", "10", "--routes-critical", "5")
    assert rc == 2 and "critical below 5" in line, line

    # the router shuts the session: CRITICAL, naming the peer
    bird.disable(PROTO)
    rc, line = wait_until(lambda: (r := run_check(sock))[0] == 2 and r, 30, "check CRITICAL",
                          describe=lambda: run_check(sock)[1])
    assert line.startswith("FLEETBGP CRITICAL - 0/1 sessions up (critical below 1; down: "), line
    assert f"down: {topo.link.a4})" in line, line
    assert perfdata(line)["sessions_up"] == "0;1:;1:;0;1"
    assert perfdata(line)["routes_announced"] == "0;;;0;"
    # a lenient threshold keeps it OK even so
    rc, line = run_check(sock, "--sessions-warning", "0", "--sessions-critical", "0")
    assert rc == 0, line

    bird.enable(PROTO)
    bird.wait_established(PROTO)
    rc, line = wait_until(lambda: (r := run_check(sock))[0] == 0 and r, 30, "check OK again",
                          describe=lambda: run_check(sock)[1])
    assert "1/1 sessions up" in line


def test_check_maintenance_warning_and_unknown_without_agent(agent):
    sock = agent.socket
    wait_until(lambda: run_check(sock)[0] == 0, 15, "check OK", describe=lambda: run_check(sock)[1])
    env = {**os.environ, "PYTHONPATH": str(AGENT_SRC)}
    subprocess.run([sys.executable, "-m", "fleetbgp", "maintenance", "on", "--socket", sock],
                   env=env, check=True, capture_output=True, timeout=60)
    rc, line = run_check(sock)
    assert rc == 1 and "maintenance on (routes drained)" in line, line
    assert perfdata(line)["routes_announced"] == "0;;;0;"  # drained by withdrawal
    assert run_check(sock, "--maintenance", "critical")[0] == 2
    assert run_check(sock, "--maintenance", "ok")[0] == 0

    rc, line = run_check(sock, "--sessions-warning", "many")
    assert rc == 3 and line.startswith("FLEETBGP UNKNOWN - usage:"), line

    agent.stop()
    rc, line = run_check(sock)
    assert rc == 3 and line.startswith("FLEETBGP UNKNOWN - cannot reach the fleetbgp agent at "), line
    rc, line = run_check(sock + ".missing")
    assert rc == 3 and "no such socket" in line, line
