"""Fixtures and probes of the Molecule scenario `keepalived` (testinfra on the native podman backend).

The probes read the state the guide (docs/operations/keepalived.md) tells the operator to read at
3 a.m.: where the VIP is (`ip address`), the MASTER state file, the agent's health check, the paths
BIRD has for the VIP, the router's kernel route, and who answers an HTTP request from the router.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files"))  # doc_files, for the tests
from podman_testinfra import host, instances, podman_host, wait_until  # noqa: F401 (host: a fixture)

SCENARIO_DIR = Path(__file__).resolve().parent.parent
REPO = SCENARIO_DIR.parents[2]
GUIDE = REPO / "docs" / "operations" / "keepalived.md"
SERVERS = instances(SCENARIO_DIR, "bgp_servers")  # web-1 (priority 150), web-2 (100)
ROUTER = instances(SCENARIO_DIR, "routers")[0]

# The guide's names and addresses (its keepalived.conf and health check block).
VIP = "10.89.67.100"
PREFIX = f"{VIP}/32"
STATE_FILE = "/run/fleetbgp-vrrp/VI_WEB.master"
CHECK = "vrrp-web"
WEB_PORT = 8080  # inventory/group_vars/all.yml
FLEETBGP = "/opt/fleetbgp/venv/bin/fleetbgp"
# A move needs: chk_* to fail (fall 2 x 1-2 s), the VRRP transition (up to 3 adverts), the agent's
# check (1 s), the UPDATE. Seconds; the bound is generous for a loaded machine, never asserted as a time.
MOVE_TIMEOUT = 120


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)


@pytest.fixture(scope="session")
def servers() -> dict[str, testinfra.host.Host]:
    return {name: podman_host(name) for name in SERVERS}


def run_ok(h: testinfra.host.Host, command: str) -> str:
    result = h.run(command)
    assert result.rc == 0, f"{command}: rc={result.rc}\n{result.stdout}{result.stderr}"
    return result.stdout


@dataclass
class ServerState:
    vip: bool
    state_file: bool
    check: str  # the agent's vrrp-web health check state (UP on the master)

    def active(self) -> bool:
        return self.vip and self.state_file and self.check == "UP"

    def passive(self) -> bool:
        return not self.vip and not self.state_file and self.check != "UP"


def server_state(h: testinfra.host.Host) -> ServerState:
    vip = f"inet {VIP}/" in h.run("ip -4 -o address show dev eth0").stdout
    health = h.run(f"{FLEETBGP} show health --json")
    checks = json.loads(health.stdout).get("checks", []) if health.rc == 0 else []
    state = next((str(c.get("state")) for c in checks if c.get("name") == CHECK), "agent unreachable")
    return ServerState(vip=vip, state_file=h.file(STATE_FILE).exists, check=state)


def bird_paths(router: testinfra.host.Host) -> set[str]:
    """BIRD protocols (web_1, web_2) it has a path for the VIP from."""
    result = router.run(f"birdc -r show route {PREFIX}")
    if "Network not found" in result.stdout:
        return set()
    assert result.rc == 0, f"birdc show route {PREFIX}: rc={result.rc}\n{result.stdout}{result.stderr}"
    return set(re.findall(r"\[(\w+) ", result.stdout))


def kernel_next_hop(router: testinfra.host.Host) -> str:
    """`via ADDRESS` of the router's kernel route to the VIP ('' when it goes straight to the segment)."""
    m = re.search(r"\bvia (\S+)", run_ok(router, f"ip route get {VIP}"))
    return m.group(1) if m else ""


def answer(router: testinfra.host.Host) -> str:
    """The body of http://VIP:8080/ fetched from the router (the server's name), or the error."""
    code = (
        "import urllib.request\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://{VIP}:{WEB_PORT}/', timeout=2).read().decode().strip())\n"
        "except OSError as exc:\n"
        "    print(f'error: {exc}')\n"
    )
    return router.run(f"python3 -c {shlex.quote(code)}").stdout.strip()


def address(h: testinfra.host.Host) -> str:
    out = run_ok(h, "ip -4 -o address show dev eth0")
    return re.search(r"inet (\S+)/", out).group(1)  # type: ignore[union-attr]


@dataclass
class Snapshot:
    servers: dict[str, ServerState]
    paths: set[str]
    next_hop: str
    answered_by: str
    addresses: dict[str, str] = field(default_factory=dict)

    def active_is(self, name: str) -> bool:
        """`name` alone holds the VIP and announces, BIRD has the path from it only, the router's
        kernel routes the VIP to it, and it answers."""
        others = [s for n, s in self.servers.items() if n != name]
        return (
            self.servers[name].active()
            and all(s.passive() for s in others)
            and self.paths == {name.replace("-", "_")}
            and self.next_hop == self.addresses[name]
            and self.answered_by == name
        )


def snapshot(router: testinfra.host.Host, servers: dict[str, testinfra.host.Host]) -> Snapshot:
    return Snapshot(
        servers={n: server_state(h) for n, h in servers.items()},
        paths=bird_paths(router),
        next_hop=kernel_next_hop(router),
        answered_by=answer(router),
        addresses={n: address(h) for n, h in servers.items()},
    )


def diagnostics(servers: dict[str, testinfra.host.Host]) -> str:
    """What the guide says to look at: keepalived's and the notify script's last lines."""
    return "\n".join(
        f"--- {n}\n" + h.run("journalctl -u keepalived -n 12 --no-pager -o short-precise;"
                             " journalctl -t fleetbgp-vrrp -n 5 --no-pager -o short-precise").stdout
        for n, h in servers.items()
    )


def wait_active(router: testinfra.host.Host, servers: dict[str, testinfra.host.Host], name: str) -> Snapshot:
    """Poll until `name` is the one active server (Snapshot.active_is); fail with the last snapshot."""
    last: list[Snapshot] = []

    def probe() -> bool:
        last[:] = [snapshot(router, servers)]
        return last[0].active_is(name)

    ok = wait_until(probe, timeout=MOVE_TIMEOUT, interval=1)
    assert ok, f"{name} never became the one active server: {last[0]}\n{diagnostics(servers)}"
    return last[0]
