"""API programs of the agent against BIRD 2: what a program announces reaches BIRD, what BIRD sends
reaches the program (text and ExaBGP-JSON), supervision keeps the session up, a flood of a million
commands neither stalls the agent nor loses a route.

Topology as in every interop test (conftest.py): BIRD in the router namespace (AS 65000), the agent
in the server namespace (AS 65001); the API programs run inside the agent's namespace, as its
children. The agent's own metrics are off (the seed exporter wants port 9101 in that namespace) and
its control socket is in /tmp, so the test can ask it for `show processes`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
from interop_env import AGENT_AS, ROUTER_AS, assert_never, assert_routes, bird_v4_peer, v4_neighbor

from netlab import Route, wait_until

pytestmark = pytest.mark.interop

FIXTURES = Path(__file__).parent / "fixtures"
PY = sys.executable

# A program driven by the test: it forwards the whole lines appended to CMDS to its stdout (the
# agent reads them as commands) and appends what it reads on stdin (acks, events) to RECORD.
DRIVER = r"""
import sys, time, threading
cmds, record = sys.argv[1], sys.argv[2]
def copy_stdin():
    with open(record, 'a', buffering=1) as out:
        for line in sys.stdin:
            out.write(line)
threading.Thread(target=copy_stdin, daemon=True).start()
pos = 0
while True:
    try:
        with open(cmds, 'rb') as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        data = b''
    end = data.rfind(b'\n')
    if end >= 0:
        pos += end + 1
        sys.stdout.write(data[:end + 1].decode())
        sys.stdout.flush()
    time.sleep(0.05)
"""

FLOOD = r"""
import sys, time
out = sys.stdout
for i in range(int(sys.argv[1])):
    out.write(f'announce route {100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24 next-hop self\n')
out.flush()
while True:
    time.sleep(3600)
"""


def skip_unless_fleetbgp(speaker_kind: str) -> None:
    if speaker_kind != "fleetbgp":
        pytest.skip("API programs: the agent's own behaviour (ExaBGP groups routes and gives up respawning)")


def make_agent(topo, make_speaker, processes: str, neighbor):
    """The agent (via make_speaker: its log is checked for tracebacks afterwards) with `processes`
    prepended to the rendered neighbor."""
    agent = make_speaker(topo.s, [neighbor])
    agent.raw_config = processes + "\n" + neighbor.render() + "\n"
    agent.control = f"/tmp/{topo.lab.name}.ctl"
    agent.extra_env.update({"FLEETBGP_METRICS": "off", "FLEETBGP_CONTROL_SOCKET": agent.control})
    return agent


def show_processes(agent) -> list[dict]:
    cp = subprocess.run([PY, "-m", "fleetbgp", "show", "processes", "--json", "--socket", agent.control],
                        capture_output=True, text=True, timeout=20, env=_env(agent), check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return json.loads(cp.stdout)["processes"]


def _env(agent) -> dict[str, str]:
    return {**os.environ, **agent.env()}


def lines_of(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def command(route: Route, verb: str = "announce") -> str:
    return f"{verb} {route.render()[:-1]}\n"


# -- a text program announces and withdraws; BIRD agrees ------------------------------------------------

def test_text_program_announces_and_withdraws_and_bird_agrees(topo, bird, make_speaker, speaker_kind):
    skip_unless_fleetbgp(speaker_kind)
    link, lab = topo.link, topo.lab
    bird.add_peer(bird_v4_peer(link, export="all"))
    bird.add_static("from_bird", "ipv4", ["192.0.2.0/24 blackhole"])
    bird.start()
    driver = lab.path("driver.py")
    driver.write_text(DRIVER)
    cmds, record = lab.path("commands.txt"), lab.path("stdin.txt")
    processes = (f"process healthcheck {{\n  run {PY} {driver} {cmds} {record};\n  encoder text;\n}}\n")
    neighbor = v4_neighbor(link, routes=[], api_processes=["healthcheck"], api_receive=True)
    agent = make_agent(topo, make_speaker, processes, neighbor).start()
    bird.wait_established("agent4")
    since = bird.since("agent4")

    routes = [
        Route("100.10.0.100/32", med=100, communities=[(65001, 100)], large_communities=[(65001, 1, 1)]),
        Route("100.10.0.101/32", origin="egp", as_path=[65010, 65020], med=0,
              ext_communities=["target:65001:7"]),
        Route("100.10.1.0/24", origin="incomplete", local_pref=300),
    ]
    with cmds.open("a") as f:
        f.writelines(command(r) for r in routes)
    bird.wait_imported("agent4", 3)
    assert_routes(bird, "agent4", routes, agent, next_hop=link.b4)

    with cmds.open("a") as f:
        f.write(command(Route("100.10.0.101/32"), "withdraw").replace(" next-hop self", ""))
        f.write("announce route 100.10.2.0/24 next-hop self mde 100\n")  # a typo: error, nothing else
        f.write("announce attributes next-hop self med 7 nlri 100.10.3.0/24 100.10.4.0/24\n")
    bird.wait_imported("agent4", 4)
    got = bird.rib("agent4")
    assert set(got) == {"100.10.0.100/32", "100.10.1.0/24", "100.10.3.0/24", "100.10.4.0/24"}
    assert got["100.10.4.0/24"]["med"] == 7

    # acks in order; the error names the line; the session never moved
    acks = wait_until(lambda: [x for x in lines_of(record) if x in ("done", "error")][:6] or None, 10, "acks")
    assert acks == ["done", "done", "done", "done", "error", "done"]
    agent.wait_log(r"process healthcheck line 5: unknown route attribute 'mde' \(did you mean 'med'\?\)")
    assert bird.since("agent4") == since and bird.established("agent4")

    # the program was told, in ExaBGP's text form, that the session came up and what BIRD sent
    text = "\n".join(lines_of(record))
    assert f"neighbor {link.a4} up" in text
    assert re.search(rf"neighbor {re.escape(link.a4)} receive update announced 192\.0\.2\.0/24 "
                     rf"next-hop {re.escape(link.a4)} origin igp as-path \( {ROUTER_AS} \)", text), text


# -- the seed guide's Prometheus exporter, unchanged, as a JSON consumer ---------------------------------

def scrape(topo, port: int = 9101) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"
    cp = topo.s.run([PY, "-c", code], check=False)
    if cp.returncode != 0:
        return {}
    out = {}
    for family in text_string_to_metric_families(cp.stdout):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_seed_exporter_counts_sessions_and_routes(topo, bird, make_speaker, speaker_kind):
    skip_unless_fleetbgp(speaker_kind)
    link = topo.link
    exported = [f"198.18.{i}.0/24" for i in range(40)] + [f"198.19.{i}.{j}/32" for i in range(2) for j in range(5)]
    bird.add_peer(bird_v4_peer(link, export="all"))
    bird.add_static("from_bird", "ipv4", [f"{p} blackhole" for p in exported])
    bird.start()
    # The process block and the neighbor's api block exactly as the seed guide writes them.
    processes = ("process prometheus_exporter {\n"
                 f"  run {PY} {FIXTURES / 'exabgp_exporter.py'};\n"
                 "  encoder json;\n"
                 "  receive {\n    parsed;\n    updates;\n    neighbor-changes;\n  }\n}\n")
    neighbor = v4_neighbor(link, routes=[Route("100.10.0.100/32", med=100)],
                           api_processes=["prometheus_exporter"])
    agent = make_agent(topo, make_speaker, processes, neighbor).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", 1)  # BIRD accepts ours
    peer = {"peer": link.a4}
    fam = {"afi": "ipv4", "safi": "unicast"}

    def counts():
        s = scrape(topo)
        up = metric(s, "exabgp_bgp_session_up", **peer, local_as=str(AGENT_AS), peer_as=str(ROUTER_AS))
        return (up, metric(s, "exabgp_active_routes", **peer, **fam),
                metric(s, "exabgp_routes_announced_total", **peer, **fam),
                metric(s, "exabgp_routes_withdrawn_total", **peer, **fam))

    n = len(exported)
    wait_until(lambda: counts()[:3] == (1.0, n, n), 30, f"exporter to count the session and {n} routes",
               describe=lambda: f"{counts()}\n{agent.log_tail(30)}")

    # BIRD withdraws 15 of them: the exporter's active count follows
    keep = exported[:25] + exported[40:]
    bird.statics = []
    bird.add_static("from_bird", "ipv4", [f"{p} blackhole" for p in keep])
    bird.reconfigure()
    wait_until(lambda: counts() == (1.0, len(keep), n, n - len(keep)), 30, "exporter to count the withdrawals",
               describe=lambda: f"{counts()}\n{agent.log_tail(30)}")
    assert "Error processing message" not in agent.log_text().replace(
        "Error processing message: 'update'", ""), "only End-of-RIB (no 'update' key) may trip the exporter"

    # the session goes down: the exporter says so
    bird.disable("agent4")
    wait_until(lambda: counts()[0] == 0.0, 30, "exporter to see the session down")


# -- supervision: a program that exits at once is restarted, later and later; the session stays ---------

def test_program_that_exits_at_once_is_restarted_with_growing_delays(topo, bird, make_speaker, speaker_kind):
    skip_unless_fleetbgp(speaker_kind)
    link = topo.link
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    processes = ("process crasher {\n"
                 "  run /bin/sh -c \"echo 'announce route 100.10.9.0/24 next-hop self'; echo broken >&2; exit 3\";\n"
                 "  encoder text;\n}\n")
    neighbor = v4_neighbor(link, routes=[Route("100.10.0.100/32")], api_processes=["crasher"])
    agent = make_agent(topo, make_speaker, processes, neighbor).start()
    bird.wait_established("agent4")
    since = bird.since("agent4")
    bird.wait_imported("agent4", 2)

    matches = agent.wait_log(r"process crasher exited with code 3 after [\d.]+ s; restarting in (\d+) s", timeout=40,
                             count=5)
    delays = [int(m.group(1)) for m in matches]
    assert delays[:5] == [1, 2, 4, 8, 16], delays
    starts = [time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000 for m in
              re.finditer(r"^(\S+ \S+),(\d+) INFO fleetbgp.api: process crasher started", agent.log_text(), re.M)]
    gaps = [b - a for a, b in pairwise(starts)]
    assert len(gaps) >= 4 and all(later > earlier for earlier, later in pairwise(gaps)), gaps
    assert "WARNING fleetbgp.api: process crasher: broken" in agent.log_text()

    status = {p["name"]: p for p in show_processes(agent)}["crasher"]
    assert status["restarts"] >= 4 and status["last_exit"]["code"] == 3
    assert status["state"] in ("backoff", "running", "starting")
    assert bird.since("agent4") == since and bird.established("agent4"), "the session must not move"
    assert "100.10.9.0/24" in bird.rib("agent4"), "what it announced before dying stays"
    agent.ensure_alive()


# -- withdraw-on-exit: a program killed and restarted keeps what it announces again ----------------------

RESTARTING = r"""
import os, sys, time
state = sys.argv[1]
runs = int(open(state).read()) if os.path.exists(state) else 0
open(state, 'w').write(str(runs + 1))
print('announce route 100.10.0.100/32 next-hop self med 100', flush=True)
if runs == 0:
    print('announce route 100.10.0.101/32 next-hop self med 100', flush=True)
while True:
    time.sleep(3600)
"""


def test_withdraw_on_exit_keeps_what_the_restarted_program_announces(topo, bird, make_speaker, speaker_kind):
    skip_unless_fleetbgp(speaker_kind)
    link, lab = topo.link, topo.lab
    bird.add_peer(bird_v4_peer(link))
    bird.start()
    program = lab.path("restarting.py")
    program.write_text(RESTARTING)
    processes = (f"process anycast {{\n  run {PY} {program} {lab.path('runs')};\n  encoder text;\n"
                 "  withdraw-on-exit 4;\n}\n")
    agent = make_agent(topo, make_speaker, processes, v4_neighbor(link, routes=[], api_processes=["anycast"]))
    agent.start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", 2)
    since = bird.since("agent4")
    [status] = show_processes(agent)
    os.kill(status["pid"], signal.SIGKILL)  # a crash; it comes back after 1 s and announces only .100
    agent.wait_log(r"process anycast was killed by SIGKILL after .*restarting in 1 s")
    agent.wait_log(r"its 2 route\(s\) will be withdrawn in 4 s unless it announces them again")

    def only_the_kept_one():
        rib = bird.rib("agent4")
        assert "100.10.0.100/32" in rib, "the route the restarted program announced again was withdrawn"
        return set(rib) == {"100.10.0.100/32"}

    wait_until(only_the_kept_one, 15, "BIRD to lose only the route not announced again",
               describe=lambda: f"{bird.rib('agent4')}\n{agent.log_tail(20)}")
    agent.wait_log(r"process anycast: withdrew 1 route\(s\) it did not announce again within 4 s")
    assert_never(lambda: "100.10.0.100/32" not in bird.rib("agent4"), 2, "withdrawal of the kept route")
    assert bird.since("agent4") == since


# -- back-pressure: a million commands, stdin never read ---------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_million_line_program_every_route_reaches_bird(topo, bird, make_speaker, speaker_kind, record_property):
    skip_unless_fleetbgp(speaker_kind)
    total = 1_000_000
    link, lab = topo.link, topo.lab
    bird.add_peer(bird_v4_peer(link, hold=3))
    bird.start()
    flood = lab.path("flood.py")
    flood.write_text(FLOOD)
    processes = f"process flood {{\n  run {PY} {flood} {total};\n  encoder text;\n}}\n"
    neighbor = v4_neighbor(link, routes=[], api_processes=["flood"], hold_time=3)
    # the hold timer is 3 s on both sides: one missed keepalive second would drop the session
    agent = make_agent(topo, make_speaker, processes, neighbor)
    agent.start()
    bird.wait_established("agent4")
    since = bird.since("agent4")
    started = time.monotonic()
    peak = 0

    def progress():
        nonlocal peak
        peak = max(peak, agent.proc.rss_kib("VmHWM"))
        assert bird.since("agent4") == since, "the BGP session flapped during the flood"
        return bird.imported_count("agent4") == total

    wait_until(progress, 1500, f"BIRD to hold all {total} routes", interval=2,
               describe=lambda: f"{bird.imported_count('agent4')} imported\n{agent.log_tail(20)}")
    took = time.monotonic() - started
    peak = max(peak, agent.proc.rss_kib("VmHWM"))
    record_property("seconds_until_bird_holds_all", round(took, 1))
    record_property("agent_peak_rss_mib", round(peak / 1024, 1))
    print(f"\n1,000,000 API lines: BIRD held every route after {took:.1f} s; agent peak RSS {peak / 1024:.0f} MiB")
    # the agent kept the session and stays responsive; acks beyond the queue were dropped, once warned
    assert bird.established("agent4")
    assert_never(lambda: not bird.established("agent4"), 5, "session drop after the flood")
    status = {p["name"]: p for p in show_processes(agent)}["flood"]
    assert status["lines"] == total and status["dropped"] > 0 and status["errors"] == 0
    assert agent.log_text().count("is not reading its input") == 1
    assert "session down" not in agent.log_text()
    assert peak < 1024 * 1024, f"agent peak RSS {peak / 1024:.0f} MiB: memory is not bounded as it should be"


# -- ExaBGP's route options and capabilities, as BIRD sees them -------------------------------------------

def test_split_watchdog_and_hostname_reach_bird(topo, bird, make_speaker, speaker_kind):
    """`split /N` makes the /N routes, `watchdog NAME` groups (the config's and the API's) move at
    once on `announce/withdraw watchdog NAME`, `withdraw` starts one held back, `name` is only a
    label; host-name/domain-name reach BIRD in the hostname capability."""
    skip_unless_fleetbgp(speaker_kind)
    link, lab = topo.link, topo.lab
    bird.add_peer(bird_v4_peer(link, export="none"))
    bird.start()
    driver = lab.path("driver.py")
    driver.write_text(DRIVER)
    cmds, record = lab.path("commands.txt"), lab.path("stdin.txt")
    processes = f"process dog {{\n  run {PY} {driver} {cmds} {record};\n  encoder text;\n}}\n"
    neighbor = v4_neighbor(link, routes=[], api_processes=["dog"], extra="""
host-name agent-one;
domain-name lab.example;
capability { software-version enable; }
static {
  route 100.70.0.0/23 next-hop self med 70 split /24 watchdog web;
  route 100.70.9.0/24 next-hop self watchdog spare withdraw name spare-pool;
}""")
    make_agent(topo, make_speaker, processes, neighbor).start()
    bird.wait_established("agent4")
    bird.wait_imported("agent4", 2)
    got = bird.rib("agent4")
    assert set(got) == {"100.70.0.0/24", "100.70.1.0/24"} and got["100.70.1.0/24"]["med"] == 70
    shown = bird.birdc("show", "protocols", "all", "agent4")
    assert "Hostname: agent-one" in shown, shown  # BIRD 2.0.12 shows the host name, not the domain

    with cmds.open("a") as f:
        f.write("withdraw watchdog web\nannounce watchdog spare\n")
    wait_until(lambda: set(bird.rib("agent4")) == {"100.70.9.0/24"} or None, 15, "the watchdogs moved")
    with cmds.open("a") as f:
        f.write("announce route 100.71.0.0/23 next-hop self split /24 watchdog api\n")
    wait_until(lambda: set(bird.rib("agent4")) == {"100.70.9.0/24", "100.71.0.0/24", "100.71.1.0/24"} or None,
               15, "the API's split routes")
    with cmds.open("a") as f:
        f.write("withdraw watchdog api\nannounce watchdog web\n")
    wait_until(lambda: set(bird.rib("agent4")) == {"100.70.9.0/24", "100.70.0.0/24", "100.70.1.0/24"} or None,
               15, "the API's watchdog withdrawn, the config's back")
    acks = [x for x in lines_of(record) if x in ("done", "error")]
    assert acks == ["done"] * 5, acks
    assert bird.established("agent4")
