"""fleet.bgp.flowspec and the fleet.bgp.mitigate playbook, run by ansible-playbook, with the rules
checked where they end up: in BIRD 2's flow4/flow6 tables.

Topology as in every interop test (conftest.py): BIRD in ns "r" (flow4 and flow6 channels on its
IPv4 session, into the tables flowtab4/flowtab6), a real `fleetbgp run` in ns "s" (families ipv4
unicast, ipv4 flow, ipv6 flow). Ansible runs on the host with a local connection: its inventory has
one bgp_server whose fleet_bgp_control_socket is the agent's socket (a unix socket is a file, reachable
from any namespace). The collection is this checkout, through a collections path that links to it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from interop_env import bird_v4_peer, v4_neighbor

from fleetbgp.control_client import ControlClient
from netlab import wait_until
from netlab.fleetbgp import AGENT_SRC, FleetbgpAgent
from netlab.flowspec import parse_bird_flows

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAMILIES = ("ipv4 unicast", "ipv4 flow", "ipv6 flow")
BIRD_FLOW_CHANNELS = ("flow4 { table flowtab4; import all; export none; };\n"
                      "flow6 { table flowtab6; import all; export none; };")
# The actions as BIRD shows them: extended communities (RFC 8955 section 7), 64-bit values
DISCARD = 0x80060000_00000000            # traffic-rate 0 bytes/s
RATE_1M = 0x80060000_49742400            # traffic-rate 1e6 bytes/s (IEEE float)
RATE_100MBIT = 0x80060000_4B3EBC20       # 12.5e6 bytes/s
REDIRECT_65001_999 = 0x8008FDE9_000003E7  # redirect to route target 65001:999
SAMPLE_TERMINAL = 0x80070000_00000003    # traffic-action sample + terminal
MARK_10 = 0x80090000_0000000A            # traffic-marking DSCP 10


def bird_flows(bird, table: str) -> dict[str, list[int]]:
    """{rule as BIRD prints it ("flow4 { dst 10.0.0.0/24; }"): its extended communities, sorted}."""
    text = bird.birdc("show", "route", "table", table, "all")
    return {f.flow: sorted(f.ext_communities) for f in parse_bird_flows(text)}


@pytest.fixture(autouse=True)
def _fleetbgp_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the Ansible modules drive fleetbgp's own control socket")


class Fleet:
    """BIRD + the agent + an Ansible inventory pointing at the agent's control socket."""

    def __init__(self, topo, bird) -> None:
        self.topo, self.bird = topo, bird
        self.dir = Path(tempfile.mkdtemp(prefix="fbfs-", dir="/tmp"))  # socket paths <= 107 bytes
        self.socket = str(self.dir / "control.sock")
        collections = self.dir / "collections" / "ansible_collections" / "fleet"
        collections.mkdir(parents=True)
        (collections / "bgp").symlink_to(REPO, target_is_directory=True)
        self.inventory = self.dir / "hosts.yml"
        self.inventory.write_text(json.dumps({"bgp_servers": {"hosts": {"srv1": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "ansible_become": False, "fleet_bgp_control_socket": self.socket,
            "bird_socket": str(bird.sock)}}}}))
        self.env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(self.dir / "collections"),
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                    "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_HOST_KEY_CHECKING": "0",
                    "ANSIBLE_LOCAL_TEMP": str(self.dir / "tmp"), "ANSIBLE_HOME": str(self.dir / "home"),
                    "PYTHONPATH": str(AGENT_SRC)}
        bird.statics.append("flow4 table flowtab4;\nflow6 table flowtab6;")  # declared before the peers
        bird.add_peer(bird_v4_peer(topo.link, extra=BIRD_FLOW_CHANNELS))
        bird.start()
        self.agent = FleetbgpAgent(topo.lab, topo.s, [v4_neighbor(topo.link, routes=[], families=FAMILIES)],
                                   env={"FLEETBGP_CONTROL_SOCKET": self.socket})
        self.agent.start()
        bird.wait_established("agent4")

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def playbook(self, playbook: str, *extra: str, check: bool = True,
                 warnings: bool = False) -> subprocess.CompletedProcess:
        if not playbook.startswith("fleet.bgp."):
            path = self.dir / "play.yml"
            path.write_text(playbook)
            playbook = str(path)
        t0 = time.monotonic()
        cp = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(self.inventory), playbook, *extra],
                            capture_output=True, text=True, env=self.env, timeout=120, check=False)
        print(f"ansible-playbook {' '.join(extra)}: {time.monotonic() - t0:.1f} s")
        if check and cp.returncode != 0:
            raise AssertionError(f"ansible-playbook {playbook} {' '.join(extra)} exited {cp.returncode}:\n"
                                 f"{cp.stdout}\n{cp.stderr}\nagent log:\n{self.agent.log_tail()}")
        if not warnings:
            assert_no_warning(cp.stdout + cp.stderr)
        return cp

    def mitigate(self, *pairs: str, check: bool = True, warnings: bool = False) -> subprocess.CompletedProcess:
        args = [a for pair in pairs for a in ("-e", pair)]
        return self.playbook("fleet.bgp.mitigate", *args, check=check, warnings=warnings)

    def mitigate_at_once(self, *runs: tuple[str, ...]) -> list[tuple[int, str]]:
        """Independent runs side by side (the agent serves one request at a time): [(rc, stdout)]."""
        procs = [subprocess.Popen([str(BIN / "ansible-playbook"), "-i", str(self.inventory), "fleet.bgp.mitigate",
                                   *[a for pair in run for a in ("-e", pair)]],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
                 for run in runs]
        done = [(p.returncode, out) for p in procs for out, _ in [p.communicate(timeout=120)]]
        for _, out in done:
            assert_no_warning(out)
        return done

    def wait_flows(self, table: str, predicate, what: str) -> dict[str, list[str]]:
        return wait_until(lambda: predicate(flows := bird_flows(self.bird, table)) and flows, 15, what,
                          describe=lambda: str(bird_flows(self.bird, table)))


def assert_no_warning(output: str) -> None:
    """The playbooks' option names are no reserved names (`action`, `port`): Ansible warns about
    nothing, so an operator who sees a [WARNING] knows it matters."""
    warned = [line for line in output.splitlines() if "[WARNING]" in line or "[DEPRECATION WARNING]" in line]
    assert not warned, "\n".join(warned)


def recap(cp: subprocess.CompletedProcess) -> dict[str, int]:
    m = re.search(r"^srv1\s+:\s+(.*)$", cp.stdout, re.M)
    assert m, cp.stdout
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture
def fleet(topo, bird):
    f = Fleet(topo, bird)
    yield f
    f.close()
    text = f.agent.log_text()
    assert "Traceback (most recent call last)" not in text, text


MODULE_PLAY = """
- hosts: bgp_servers
  gather_facts: false
  vars:
    web_match:
      destination: 203.0.113.0/24
      source: 192.0.2.0/24
      protocol: [tcp, udp]
      destination-port: [">=1024&<=2048", "=80"]
      source-port: 53
      tcp-flags: "[syn]"
      packet-length: ">512"
      dscp: 46
  tasks:
    - name: Check mode first
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: web-block
        match: "{{ web_match }}"
        then: {rate-limit: 1000000, action: sample-terminal, mark: 10}
      check_mode: true
      diff: true
      register: check

    - name: What BIRD holds after check mode
      ansible.builtin.command: birdc -s {{ bird_socket }} show route table flowtab4
      register: bird_after_check
      changed_when: false

    - name: Announce
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: web-block
        match: "{{ web_match }}"
        then: {rate-limit: 1000000, action: sample-terminal, mark: 10}
      register: first

    - name: Announce again
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: web-block
        match: "{{ web_match }}"
        then: {rate-limit: 1000000, action: sample-terminal, mark: 10}
      register: second

    - name: An IPv6 rule that redirects to a VRF
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: v6-scrub
        match: {destination: "2001:db8:1::/48", next-header: udp, flow-label: ">100"}
        then: {redirect: "65001:999"}
      register: v6

    - name: A rule that expires
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: short
        match: {source: 198.51.100.0/24}
        then: {discard: true}
        expires_after: 3s
      register: short

    - name: What the tasks did
      ansible.builtin.assert:
        that:
          - check is changed and 'flow4' not in bird_after_check.stdout
          - "'web-block' in check.diff.after and check.diff.before == ''"
          - first is changed and second is not changed
          - first.rule.announced_to | length == 1
          - v6 is changed and v6.rule.family == 'ipv6'
          - short.rule.expires_at > short.rule.created_at
          - short.rules | map(attribute='name') | list == ['short', 'v6-scrub', 'web-block']
"""

ABSENT_PLAY = """
- hosts: bgp_servers
  gather_facts: false
  tasks:
    - name: Withdraw
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: web-block
        state: absent
      register: gone

    - name: Withdraw again
      fleet.bgp.flowspec:
        socket: "{{ fleet_bgp_control_socket }}"
        name: web-block
        state: absent
      register: again

    - name: What the tasks did
      ansible.builtin.assert:
        that:
          - gone is changed and gone.removed == ['web-block']
          - again is not changed
"""


def test_flowspec_module_rules_at_bird(fleet):
    bird = fleet.bird
    start = time.monotonic()
    cp = fleet.playbook(MODULE_PLAY)
    assert recap(cp)["failed"] == 0
    web = ("flow4 { dst 203.0.113.0/24; src 192.0.2.0/24; proto 6,17; dport 1024..2048,80; sport 53; "
           "tcp flags !0x0/0x2; length > 512; dscp 46; }")  # SYN set (any of the bits)
    flows4 = fleet.wait_flows("flowtab4", lambda f: web in f, "the web-block rule in BIRD's flow4 table")
    assert flows4[web] == sorted([RATE_1M, SAMPLE_TERMINAL, MARK_10])
    assert flows4["flow4 { src 198.51.100.0/24; }"] == [DISCARD]
    flows6 = bird_flows(bird, "flowtab6")
    assert flows6 == {"flow6 { dst 2001:db8:1::/48; next header 17; label > 100; }": [REDIRECT_65001_999]}

    # expires_after 3s: the agent withdraws the rule by itself, and BIRD drops it
    fleet.wait_flows("flowtab4", lambda f: "flow4 { src 198.51.100.0/24; }" not in f,
                     "the expired rule gone from BIRD")
    assert time.monotonic() - start >= 3 - 0.5
    fleet.agent.wait_log(r"flow rule short expired")

    fleet.playbook(ABSENT_PLAY)
    wait_until(lambda: bird_flows(bird, "flowtab4") == {}, 15, "web-block withdrawn from BIRD",
               describe=lambda: str(bird_flows(bird, "flowtab4")))
    assert list(bird_flows(bird, "flowtab6")) == ["flow6 { dst 2001:db8:1::/48; next header 17; label > 100; }"]


def test_mitigate_playbook_at_bird(fleet):
    bird = fleet.bird
    # block a source: discard, with the default expiry of one hour
    cp = fleet.mitigate("fleet_bgp_mitigate_action=block", "fleet_bgp_mitigate_source=198.51.100.0/24")
    assert recap(cp)["changed"] == 1
    assert "block-198.51.100.0_24 [control:mitigate, expires " in cp.stdout
    fleet.wait_flows("flowtab4", lambda f: f.get("flow4 { src 198.51.100.0/24; }") == [DISCARD],
                     "the block rule at BIRD")
    with ControlClient(fleet.socket, timeout=10) as client:
        [rule] = client.call("flows")
    assert rule["owner"] == "control:mitigate"
    assert rule["expires_at"] == pytest.approx(time.time() + 3600, abs=120)
    # the same again: no change (the expiry starts again)
    cp = fleet.mitigate("fleet_bgp_mitigate_action=block", "fleet_bgp_mitigate_source=198.51.100.0/24")
    assert recap(cp)["changed"] == 0

    # rate-limit DNS to one address at 100 Mbit/s; redirect a /24 to the scrubbing VRF
    for rc, out in fleet.mitigate_at_once(
            ("fleet_bgp_mitigate_action=ratelimit", "fleet_bgp_mitigate_dport=53",
             "fleet_bgp_mitigate_destination=203.0.113.10", "fleet_bgp_mitigate_rate=100mbit"),
            ("fleet_bgp_mitigate_action=redirect", "fleet_bgp_mitigate_destination=203.0.113.0/24",
             "fleet_bgp_mitigate_target=65001:999", "fleet_bgp_mitigate_expires=2h")):
        assert rc == 0 and re.search(r"^srv1\s+:.*changed=1", out, re.M), out
    want = {"flow4 { src 198.51.100.0/24; }": [DISCARD],
            "flow4 { dst 203.0.113.10/32; proto 17; dport 53; }": [RATE_100MBIT],
            "flow4 { dst 203.0.113.0/24; }": [REDIRECT_65001_999]}
    fleet.wait_flows("flowtab4", lambda f: f == want, "the three mitigation rules at BIRD")

    # what the playbook refuses (and BIRD does not change), and the list, side by side
    nothing, zero, absurd, listed = fleet.mitigate_at_once(
        ("fleet_bgp_mitigate_action=ratelimit", "fleet_bgp_mitigate_dport=53", "fleet_bgp_mitigate_rate=10mbit"),
        ("fleet_bgp_mitigate_action=block", "fleet_bgp_mitigate_source=0.0.0.0/0"),
        ("fleet_bgp_mitigate_action=ratelimit", "fleet_bgp_mitigate_dport=53",
         "fleet_bgp_mitigate_destination=203.0.113.10", "fleet_bgp_mitigate_rate=5000gbit"),
        ("fleet_bgp_mitigate_action=list",))
    assert nothing[0] != 0 and "the rule has no destination and no source" in nothing[1], nothing[1]
    assert zero[0] != 0 and "0.0.0.0/0 is a /0" in zero[1], zero[1]
    assert absurd[0] != 0 and "above 1000gbit" in absurd[1], absurd[1]
    assert listed[0] == 0, listed[1]
    for name in ("block-198.51.100.0_24", "ratelimit-203.0.113.10_32-p53", "redirect-203.0.113.0_24"):
        assert name in listed[1]
    assert re.search(r"^srv1\s+:.*changed=0", listed[1], re.M)
    assert bird_flows(bird, "flowtab4") == want

    # clear one; clear the rest
    fleet.mitigate("fleet_bgp_mitigate_action=clear", "fleet_bgp_mitigate_rule=ratelimit-203.0.113.10_32-p53")
    fleet.wait_flows("flowtab4", lambda f: len(f) == 2 and "flow4 { dst 203.0.113.10/32; proto 17; dport 53; }"
                     not in f, "the rate-limit rule cleared at BIRD")
    cp = fleet.mitigate("fleet_bgp_mitigate_action=clear", "fleet_bgp_mitigate_all=true")
    assert recap(cp)["changed"] == 1 and "no FlowSpec rules" in cp.stdout
    wait_until(lambda: bird_flows(bird, "flowtab4") == {}, 15, "every rule cleared at BIRD")

    # the old reserved names are refused with the new name (Ansible itself warns about them)
    old = fleet.mitigate("action=block", "fleet_bgp_mitigate_source=198.51.100.0/24", check=False,
                         warnings=True)
    assert old.returncode != 0 and "-e action=block is now -e fleet_bgp_mitigate_action=block" in old.stdout, \
        old.stdout
    old = fleet.mitigate("fleet_bgp_mitigate_action=ratelimit", "port=53",
                         "fleet_bgp_mitigate_destination=203.0.113.10", "fleet_bgp_mitigate_rate=1mbit",
                         check=False, warnings=True)
    assert old.returncode != 0 and "-e port=53 is now -e fleet_bgp_mitigate_dport=53" in old.stdout, old.stdout
    assert bird_flows(bird, "flowtab4") == {}
