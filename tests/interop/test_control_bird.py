"""The control socket, the CLI and the metrics endpoint of a real `fleetbgp run` against BIRD 2.

Topology as in every interop test (conftest.py): BIRD in ns "r", the agent in ns "s". Each agent
gets its own control socket in a per-test temporary directory (never /run/fleetbgp, which belongs
to whatever runs on the host) and serves metrics on 127.0.0.1:9101 of its own, fresh namespace.
The CLI runs on the host: a unix socket is a file, reachable from any network namespace; the
metrics are scraped from inside the agent's namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from interop_env import AGENT_AS, ROUTER_AS, ROUTES_V4, bird_v4_peer, v4_neighbor
from prometheus_client.parser import text_string_to_metric_families

from netlab import Route, wait_until
from netlab.exaconf import render_config
from netlab.fleetbgp import AGENT_SRC, FleetbgpAgent

pytestmark = pytest.mark.interop

METRICS_PORT = 9101  # free: the agent's namespace is new and nothing else runs in it


@pytest.fixture(autouse=True)
def _fleetbgp_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("control socket, CLI and metrics are fleetbgp's own")


@pytest.fixture
def ctl_dir(tmp_path):
    """The test's own directory for the control socket. A unix socket path may not exceed 107
    bytes: when pytest's tmp_path is too long, a fresh directory under /tmp for this test alone."""
    if len(str(tmp_path / "ctl" / "control.sock")) <= 100:
        yield tmp_path / "ctl"  # the agent creates it (mode 0750)
        return
    path = Path(tempfile.mkdtemp(prefix="fbi-ctl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Agent:
    """A FleetbgpAgent plus its control socket and metrics."""

    def __init__(self, topo, neighbors, ctl_dir: Path, config_text: str | None = None, **env: str) -> None:
        self.topo = topo
        self.socket = str(ctl_dir / "control.sock")
        env = {"FLEETBGP_CONTROL_SOCKET": self.socket, "FLEETBGP_METRICS": f"127.0.0.1:{METRICS_PORT}", **env}
        self.agent = FleetbgpAgent(topo.lab, topo.s, neighbors, env=env, config_text=config_text)

    def start(self) -> Agent:
        self.agent.start()
        wait_until(lambda: self._ready(), 15, "the agent's control socket", describe=self.agent.log_tail)
        return self

    def _ready(self) -> bool:
        self.agent.ensure_alive()
        return self.cli("show", "status", check=False).returncode == 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(AGENT_SRC)}
        cp = subprocess.run([sys.executable, "-m", "fleetbgp", *args, "--socket", self.socket],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
        if check and cp.returncode != 0:
            raise AssertionError(f"fleetbgp {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}{cp.stderr}\n"
                                 f"agent log:\n{self.agent.log_tail()}")
        return cp

    def json(self, *args: str) -> dict:
        return json.loads(self.cli(*args, "--json").stdout)

    def neighbor(self, address: str) -> dict:
        [n] = self.json("show", "neighbors", address)["neighbors"]
        return n

    def metrics(self) -> dict:
        code = ("import sys, urllib.request\n"
                "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
        text = self.topo.s.run([sys.executable, "-c", code, f"http://127.0.0.1:{METRICS_PORT}/metrics"]).stdout
        return {f.name: f for f in text_string_to_metric_families(text)}

    def log_ok(self) -> None:
        text = self.agent.log_text()
        assert "Traceback (most recent call last)" not in text, text
        assert "--- Logging error ---" not in text, text


def metric(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    found = [s for s in families[name].samples
             if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0].value


@pytest.fixture
def up(topo, bird, ctl_dir):
    """BIRD and the agent, session Established, ROUTES_V4 at BIRD."""
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    agent = Agent(topo, [v4_neighbor(topo.link)], ctl_dir).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    yield agent
    agent.log_ok()


def test_show_neighbors_established_with_the_right_counts(topo, bird, up):
    peer = topo.link.a4
    wait_until(lambda: up.neighbor(peer)["state"] == "Established", 10, "the agent to see Established")
    n = up.neighbor(peer)
    assert (n["local_as"], n["peer_as"]) == (AGENT_AS, ROUTER_AS)
    assert n["peer_router_id"] == topo.link.a4
    assert n["hold_time"] == 9
    assert n["prefixes"]["sent"] == {"ipv4 unicast": len(ROUTES_V4)}
    assert n["messages"]["received"] >= 2 and n["messages"]["sent"] >= 3  # OPEN, KEEPALIVE, UPDATE(s)
    assert n["updates"]["sent"] >= 1
    assert n["uptime"] is not None and n["uptime"] >= 0
    table = up.cli("show", "neighbors").stdout
    header, row = table.splitlines()
    assert row.split()[:4] == [peer, str(ROUTER_AS), str(AGENT_AS), "Established"]
    assert row[header.index("Sent"):header.index("Received")].strip() == str(len(ROUTES_V4))
    routes = up.json("show", "routes")
    assert sorted(r["prefix"] for r in routes["routes"]) == sorted(r.prefix for r in ROUTES_V4)
    status = up.json("show", "status")
    assert status["established"] == 1 and status["neighbors"] == 1


def test_announce_and_withdraw_change_what_bird_holds(topo, bird, up):
    since = bird.since("agent4")
    up.cli("announce", "route", "100.10.0.200/32", "next-hop", "self", "med", "300",
           "community", "[", "65001:300", "]")
    bird.wait_imported("agent4", len(ROUTES_V4) + 1)
    route = bird.route("100.10.0.200/32", "agent4")
    assert route is not None and route.med == 300 and (65001, 300) in route.communities
    assert route.next_hop == [topo.link.b4]
    owned = up.json("show", "routes", "--owner", "control:cli")
    assert [r["prefix"] for r in owned["routes"]] == ["100.10.0.200/32"]

    up.cli("withdraw", "route", "100.10.0.200/32")
    bird.wait_imported("agent4", len(ROUTES_V4))
    assert bird.route("100.10.0.200/32", "agent4") is None
    # a config route can be withdrawn at runtime too (until the next reload)
    up.cli("withdraw", ROUTES_V4[2].prefix)
    bird.wait_imported("agent4", len(ROUTES_V4) - 1)
    assert bird.since("agent4") == since, "runtime route changes must not flap the session"


def test_bad_route_is_refused_and_nothing_changes(topo, bird, up):
    cp = up.cli("announce", "route", "100.10.0.1/24", "next-hop", "self", check=False)
    assert cp.returncode == 1
    assert "host bits" in cp.stderr
    assert bird.imported_count("agent4") == len(ROUTES_V4)
    assert up.json("show", "status")["pid"] > 0, "the agent carries on"


def test_reload_from_the_cli(topo, bird, up):
    link = topo.link
    since = bird.since("agent4")
    new_route = Route("100.10.5.0/24", med=55)
    up.agent.neighbors = [v4_neighbor(link, routes=[*ROUTES_V4, new_route])]
    up.agent.write_config()
    cp = up.cli("reload")
    assert cp.stdout.startswith("reloaded: ")
    assert "1 route(s) announced or changed" in cp.stdout
    bird.wait_imported("agent4", len(ROUTES_V4) + 1)
    assert bird.route("100.10.5.0/24", "agent4").med == 55
    assert bird.since("agent4") == since, "a reload that only adds a route keeps the session"
    status = up.json("show", "status")
    assert status["last_reload"]["result"] == "success"
    sha = status["config_sha256"]

    up.agent.raw_config = up.agent.config_text().replace("local-as", "local-as-typo", 1)
    up.agent.write_config()
    cp = up.cli("reload", check=False)
    assert cp.returncode == 1
    assert "reload refused" in cp.stderr
    assert f"{up.agent.conf}:" in cp.stderr, "the errors name file:line:col"
    status = up.json("show", "status")
    assert status["last_reload"]["result"] == "failure"
    assert status["config_sha256"] == sha, "the running config is unchanged"
    assert bird.imported_count("agent4") == len(ROUTES_V4) + 1
    assert bird.since("agent4") == since
    m = up.metrics()
    assert metric(m, "fleetbgp_config_reloads", "fleetbgp_config_reloads_total", result="success") == 1
    assert metric(m, "fleetbgp_config_reloads", "fleetbgp_config_reloads_total", result="failure") == 1
    assert metric(m, "fleetbgp_config_last_reload_successful") == 0


def test_maintenance_drains_at_bird_and_off_restores(topo, bird, up):
    since = bird.since("agent4")
    cp = up.cli("maintenance", "on")
    assert "withdrawing every announcement" in cp.stdout
    bird.wait_imported("agent4", 0)
    assert bird.established("agent4"), "a drain keeps the session up"
    assert up.neighbor(topo.link.a4)["prefixes"]["sent"] == {"ipv4 unicast": 0}
    assert metric(up.metrics(), "fleetbgp_maintenance") == 1
    # announcements made meanwhile wait for the end of the drain
    up.cli("announce", "100.10.0.222/32", "next-hop", "self")
    up.cli("maintenance", "off")
    bird.wait_imported("agent4", len(ROUTES_V4) + 1)
    assert bird.since("agent4") == since
    assert metric(up.metrics(), "fleetbgp_maintenance") == 0


def test_maintenance_metric_mode_raises_med_at_bird(topo, bird, ctl_dir):
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    agent = Agent(topo, [v4_neighbor(topo.link)], ctl_dir, FLEETBGP_MAINTENANCE_MODE="metric",
                  FLEETBGP_MAINTENANCE_METRIC="4000").start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    since = bird.since("agent4")
    assert "MED 4000" in agent.cli("maintenance", "on").stdout

    def meds():
        return {p: r["med"] for p, r in bird.rib("agent4").items()}
    wait_until(lambda: set(meds().values()) == {4000}, 15, "every route at BIRD with MED 4000",
               describe=lambda: str(meds()))
    assert len(meds()) == len(ROUTES_V4), "metric mode keeps every route"
    agent.cli("maintenance", "off")
    want = {r.prefix: r.med for r in ROUTES_V4}
    wait_until(lambda: meds() == want, 15, "the configured MEDs back at BIRD", describe=lambda: str(meds()))
    assert bird.since("agent4") == since
    agent.log_ok()


def test_metrics_match_birds_view(topo, bird, ctl_dir):
    link = topo.link
    bird.add_static("to_agent", "ipv4", ["198.51.100.0/24 blackhole", "198.51.101.0/24 blackhole"])
    bird.add_peer(bird_v4_peer(link, export="all"))
    bird.start()
    agent = Agent(topo, [v4_neighbor(link)], ctl_dir).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", len(ROUTES_V4))
    peer = link.a4

    def rib_in() -> float:
        return metric(agent.metrics(), "fleetbgp_adj_rib_in_routes", peer=peer, family="ipv4 unicast")
    wait_until(lambda: rib_in() == 2, 15, "the agent to count BIRD's 2 routes")
    m = agent.metrics()
    assert metric(m, "fleetbgp_session_up", peer=peer, local_as=str(AGENT_AS), peer_as=str(ROUTER_AS)) == 1
    assert metric(m, "fleetbgp_session_state", peer=peer, state="Established") == 1
    assert metric(m, "fleetbgp_adj_rib_out_routes", peer=peer, family="ipv4 unicast") == \
        bird.imported_count("agent4") == len(ROUTES_V4)
    assert metric(m, "fleetbgp_routes_announced", "fleetbgp_routes_announced_total", peer=peer) >= len(ROUTES_V4)
    assert metric(m, "fleetbgp_update_messages", "fleetbgp_update_messages_total", peer=peer,
                  direction="sent") >= 1
    assert metric(m, "fleetbgp_update_messages", "fleetbgp_update_messages_total", peer=peer,
                  direction="received") >= 1
    assert metric(m, "fleetbgp_session_established_timestamp_seconds", peer=peer) > 0
    sha = agent.json("show", "status")["config_sha256"]
    assert metric(m, "fleetbgp_config_info", sha256=sha, path=str(agent.agent.conf)) == 1

    # BIRD shuts the session down: a Cease NOTIFICATION received, a flap, session_up 0
    bird.disable("agent4")
    wait_until(lambda: metric(agent.metrics(), "fleetbgp_session_up", peer=peer, local_as=str(AGENT_AS),
                              peer_as=str(ROUTER_AS)) == 0, 15, "session_up to drop to 0")
    m = agent.metrics()
    assert metric(m, "fleetbgp_session_flaps", "fleetbgp_session_flaps_total", peer=peer) == 1
    cease = [s for s in m["fleetbgp_notifications"].samples
             if s.labels["peer"] == peer and s.labels["direction"] == "received" and s.labels["code"] == "6"]
    assert cease and cease[0].value == 1, m["fleetbgp_notifications"].samples
    n = agent.neighbor(peer)
    assert n["state"] != "Established"
    assert n["last_notification"]["direction"] == "received" and n["last_notification"]["code"] == 6
    bird.enable("agent4")
    bird.wait_established("agent4")
    wait_until(lambda: metric(agent.metrics(), "fleetbgp_session_established", "fleetbgp_session_established_total",
                              peer=peer) == 2, 15, "a second Established")
    agent.log_ok()


def test_socket_is_private_and_removed_on_shutdown(topo, bird, up):
    mode = os.stat(up.socket).st_mode & 0o777
    assert mode == 0o660
    assert up.agent.stop() == 0
    assert not os.path.exists(up.socket), "a clean shutdown removes the control socket"
    cp = up.cli("show", "status", check=False)
    assert cp.returncode == 3
    assert up.socket in cp.stderr and "systemctl status fleetbgp" in cp.stderr


HEALTH_PORT = 18080
LISTENER = ("import socket, time\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {HEALTH_PORT})); s.listen(16)\n"
            "while True:\n    c, _ = s.accept(); c.close()\n")


def test_health_and_processes_of_the_real_agent(topo, bird, ctl_dir):
    """`show health`, `show processes` and their metrics read the real subsystems' status."""
    link = topo.link
    config = render_config([v4_neighbor(link, routes=[])]) + f"""
process idler {{
    run /bin/sleep 600;
    encoder text;
}}
healthcheck web {{
    ip 100.10.0.100/32;
    check tcp 127.0.0.1:{HEALTH_PORT};
    interval 0.5;  fast-interval 0.2;  timeout 1;
    rise 1;  fall 1;
}}
"""
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    agent = Agent(topo, [], ctl_dir, config_text=config).start()
    bird.wait_established("agent4")

    def check() -> dict:
        [c] = agent.json("show", "health")["checks"]
        return c
    wait_until(lambda: check()["state"] == "DOWN", 15, "the check to be DOWN (nothing listens)",
               describe=lambda: str(check()))
    bird.wait_imported("agent4", 1)
    assert bird.route("100.10.0.100/32", "agent4").med == 1000, "DOWN announces the down-metric"
    table = agent.cli("show", "health").stdout
    assert table.splitlines()[1].split()[:2] == ["web", "DOWN"]
    assert "100.10.0.100/32 (MED 1000)" in table
    [proc] = agent.json("show", "processes")["processes"]
    assert proc["name"] == "idler" and proc["state"] == "running" and proc["pid"]
    m = agent.metrics()
    assert metric(m, "fleetbgp_healthcheck_state", check="web", state="DOWN") == 1
    assert metric(m, "fleetbgp_api_process_restarts", "fleetbgp_api_process_restarts_total", process="idler") == 0
    owners = {r["prefix"]: r["owner"] for r in agent.json("show", "routes")["routes"]}
    assert owners == {"100.10.0.100/32": "health:web"}

    topo.s.spawn([sys.executable, "-c", LISTENER], name="listener")
    wait_until(lambda: check()["state"] == "UP", 15, "the check to be UP", describe=lambda: str(check()))
    wait_until(lambda: bird.route("100.10.0.100/32", "agent4").med == 100, 15, "MED 100 at BIRD")
    m = agent.metrics()
    assert metric(m, "fleetbgp_healthcheck_state", check="web", state="UP") == 1
    assert metric(m, "fleetbgp_healthcheck_transitions", "fleetbgp_healthcheck_transitions_total",
                  check="web") >= 2
    agent.log_ok()
