"""ADD-PATH (RFC 7911) against BIRD 2 and GoBGP: several paths of one prefix, told apart by their
path id, go both ways.

  * the agent sends two paths of 100.77.0.0/24 (path-information 1 and 2, different MEDs and
    communities): BIRD (`add paths rx`) and GoBGP (`add-paths receive`) hold both;
  * BIRD (`add paths tx`) sends two paths of one prefix (two static protocols): the agent with
    `adj-rib-in true` keeps both, as its control socket shows (`show routes --received`);
  * a withdraw of one path id takes that path only.
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
from interop_env import AGENT_AS, ROUTER_AS, bird_v4_peer

from netlab import FleetbgpAgent, GoBgpPeer, wait_until
from netlab.fleetbgp import AGENT_SRC

pytestmark = pytest.mark.timeout(120)

PREFIX = "100.77.0.0/24"


@pytest.fixture(autouse=True)
def _fleetbgp_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("these configs use path-information with the agent's control socket")


@pytest.fixture
def ctl_dir():
    """A short directory for the control socket (a unix socket path is at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fbi-ap-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def agent_config(link, mode: str, routes: str = "", extra: str = "") -> str:
    return f"""
neighbor {link.a4} {{
    router-id {link.b4};
    local-address {link.b4};
    local-as {AGENT_AS};
    peer-as {ROUTER_AS};
    hold-time 9;
    {extra}
    family {{ ipv4 unicast; }}
    capability {{ add-path {mode}; }}
    static {{
{routes}
    }}
}}
"""


TWO_PATHS = f"""\
        route {PREFIX} next-hop self med 10 community [ 65001:1 ] path-information 1;
        route {PREFIX} next-hop self med 20 community [ 65001:2 ] path-information 0.0.0.2;
        route 100.77.1.0/24 next-hop self;
"""


def start_agent(topo, config: str, ctl: Path) -> FleetbgpAgent:
    agent = FleetbgpAgent(topo.lab, topo.s, config_text=config,
                          env={"FLEETBGP_CONTROL_SOCKET": str(ctl / "control.sock")})
    agent.start()
    # The agent under test is this worktree's (the harness puts its agent/src first on PYTHONPATH).
    assert agent.env()["PYTHONPATH"].split(os.pathsep)[0] == str(AGENT_SRC)
    return agent


def cli(agent: FleetbgpAgent, ctl: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(AGENT_SRC)}
    cp = subprocess.run([sys.executable, "-m", "fleetbgp", *args, "--socket", str(ctl / "control.sock")],
                        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert cp.returncode == 0, f"fleetbgp {' '.join(args)}: {cp.stdout}{cp.stderr}\n{agent.log_tail()}"
    return cp.stdout


def bird_paths(bird, proto: str, prefix: str) -> list:
    return [r for r in bird.routes("master4", proto) if r.prefix == prefix]


def test_bird_holds_both_paths_the_agent_sends(topo, bird, ctl_dir):
    bird.add_peer(bird_v4_peer(topo.link, channel_extra="add paths rx; "))
    bird.start()
    agent = start_agent(topo, agent_config(topo.link, "send", TWO_PATHS), ctl_dir)
    bird.wait_established("agent4")
    bird.wait_imported("agent4", 3)
    paths = bird_paths(bird, "agent4", PREFIX)
    assert sorted((r.med, tuple(r.communities)) for r in paths) == [(10, ((65001, 1),)),
                                                                      (20, ((65001, 2),))]
    assert all(r.next_hop == [topo.link.b4] for r in paths)
    agent.wait_log(r"add-path send: ipv4 unicast")

    # Withdraw path 1 only: BIRD keeps path 2 (and the path-less route).
    cli(agent, ctl_dir, "withdraw", "route", PREFIX, "path-information", "1")
    bird.wait_imported("agent4", 2)
    assert [r.med for r in bird_paths(bird, "agent4", PREFIX)] == [20]


def test_without_add_path_at_the_peer_one_path_goes(topo, bird, ctl_dir):
    """BIRD without `add paths`: the session comes up without ADD-PATH; the prefix goes once, and
    withdrawing one path while the other remains announces the other instead."""
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    agent = start_agent(topo, agent_config(topo.link, "send/receive", TWO_PATHS), ctl_dir)
    bird.wait_established("agent4")
    bird.wait_imported("agent4", 2)
    assert len(bird_paths(bird, "agent4", PREFIX)) == 1
    cli(agent, ctl_dir, "withdraw", "route", PREFIX, "path-information", "2")
    wait_until(lambda: [r.med for r in bird_paths(bird, "agent4", PREFIX)] == [10], 10,
               "BIRD to hold path 1 (MED 10) of the prefix", describe=lambda: bird.diagnostics("agent4"))
    assert bird.imported_count("agent4") == 2


def test_agent_keeps_both_paths_bird_sends(topo, bird, ctl_dir):
    # Two static protocols hold one prefix each: with `add paths tx` BIRD sends both paths.
    for name, community in (("sa", 1), ("sb", 2)):
        bird.extra.append(f"protocol static {name} {{\n  ipv4;\n"
                          f"  route {PREFIX} blackhole {{ bgp_community.add(({ROUTER_AS}, {community})); }};\n}}")
    bird.add_peer(bird_v4_peer(topo.link, export="all", channel_extra="add paths tx; "))
    bird.start()
    agent = start_agent(topo, agent_config(topo.link, "receive", extra="adj-rib-in true;"), ctl_dir)
    bird.wait_established("agent4")

    def received() -> list[dict] | None:
        out = json.loads(cli(agent, ctl_dir, "show", "routes", "--received", "--json"))
        routes = [r for r in out["routes"] if r["prefix"] == PREFIX]
        return routes if len(routes) == 2 else None

    routes = wait_until(received, 20, "the agent to hold two paths of the prefix",
                        describe=agent.log_tail)
    assert all("path_id" in r for r in routes) and len({r["path_id"] for r in routes}) == 2
    assert sorted(tuple(r["communities"]) for r in routes) == [(f"{ROUTER_AS}:1",), (f"{ROUTER_AS}:2",)]
    agent.wait_log(r"add-path receive: ipv4 unicast")
    # The exact-prefix query finds every path too.
    out = json.loads(cli(agent, ctl_dir, "show", "routes", "--received", "--json", "--prefix", PREFIX))
    assert len(out["routes"]) == 2

    # One path goes away at BIRD: the agent drops that path only.
    bird.disable("sa")
    wait_until(lambda: len(json.loads(cli(agent, ctl_dir, "show", "routes", "--received", "--json",
                                          "--prefix", PREFIX))["routes"]) == 1,
               20, "the agent to hold one path", describe=agent.log_tail)


def test_gobgp_holds_both_paths_the_agent_sends(topo, gobgp, ctl_dir):
    gobgp.add_peer(GoBgpPeer(neighbor=topo.link.b4, peer_as=AGENT_AS, add_paths_receive=True))
    gobgp.start()
    start_agent(topo, agent_config(topo.link, "send/receive", TWO_PATHS), ctl_dir)
    gobgp.wait_established(topo.link.b4)

    def paths():
        data = gobgp.cli_json("global", "rib", "-a", "ipv4") or {}
        found = data.get(PREFIX, [])
        return found if len(found) == 2 else None

    found = wait_until(paths, 30, "GoBGP to hold two paths of the prefix",
                       describe=lambda: gobgp.cli("global", "rib", "-a", "ipv4") + gobgp.proc.log_tail())
    meds = sorted(a.get("metric") for p in found for a in p.get("attrs", []) if a.get("type") == 4)
    assert meds == [10, 20]
    # (GoBGP's JSON does not show the path ids: the two paths are told apart by their attributes.)
    communities = sorted(c for p in found for a in p.get("attrs", []) if a.get("type") == 8
                         for c in a.get("communities", []))
    assert communities == [(65001 << 16) | 1, (65001 << 16) | 2]
