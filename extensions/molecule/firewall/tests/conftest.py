"""Fixtures of the Molecule scenario `firewall` (testinfra).

Every fixture talks to the instances through testinfra's native podman backend (`podman exec`), as in
the agent scenario: `host` (the one Molecule parametrizes over its inventory) is re-targeted to
`podman://NAME`. Network probes are real TCP connects between the containers on the scenario's
network (and from the controller, which sits on the network's gateway address).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
# host: a fixture (pytest registers it here); run_playbook: imported by the tests from here
from podman_testinfra import host, instances, podman_host, run_playbook, wait_until  # noqa: F401

SCENARIO_DIR = Path(__file__).resolve().parent.parent

ROUTER = instances(SCENARIO_DIR, "routers")[0]
OUTSIDER = instances(SCENARIO_DIR, "outsiders")[0]
SERVERS = instances(SCENARIO_DIR, "bgp_servers")
HOST_VARS = SCENARIO_DIR / "inventory" / "host_vars"
METRICS_PORT = 9101  # inventory/group_vars/all.yml
WEB_PORT = 8080
CONNECT_TIMEOUT = 2.0
ID_RE = re.compile(r"fleet\.bgp\.firewall id=([0-9a-f]+)")


def backend(server: str) -> str:
    """The firewall backend of a server, from its host_vars (nftables unless it says otherwise)."""
    path = HOST_VARS / f"{server}.yml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return (data or {}).get("fleet_bgp_firewall_backend", "nftables")


def policy(server: str) -> str:
    path = HOST_VARS / f"{server}.yml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return (data or {}).get("fleet_bgp_firewall_policy", "accept")


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)


def addresses(name: str) -> tuple[str, str]:
    """(IPv4, IPv6) of an instance on the scenario's network (global addresses)."""
    h = podman_host(name)
    v4 = h.check_output("ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1")
    v6 = h.check_output("ip -6 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1")
    return v4.strip(), v6.strip()


# --- what the rules say -----------------------------------------------------------------------------
def live_id(server: str) -> str:
    """The id of our live rules ('' when they are not there or incomplete)."""
    h = podman_host(server)
    if backend(server) == "nftables":
        r = h.run("nft list table inet fleetbgp")
        m = ID_RE.search(r.stdout) if r.rc == 0 else None
        return m.group(1) if m else ""
    ids = set()
    for ipt in ("iptables", "ip6tables"):
        out = h.check_output(f"{ipt}-save -t filter")
        if "-A INPUT -j FLEETBGP-INPUT" not in out.splitlines():
            return ""
        m = ID_RE.search(out)
        ids.add(m.group(1) if m else "")
    return ids.pop() if len(ids) == 1 else ""


def persisted_id(server: str) -> str:
    h = podman_host(server)
    name = "fleetbgp.nft" if backend(server) == "nftables" else "rules.v4"
    path = f"/etc/fleetbgp-firewall/{name}"
    m = ID_RE.search(h.check_output(f"cat {path}"))
    return m.group(1) if m else ""


def counters(server: str) -> dict[str, int]:
    """Packets dropped by our rules: {'bgp': n, 'bfd': n, 'metrics': n, 'policy': n} (v4 + v6)."""
    h = podman_host(server)
    result = {"bgp": 0, "bfd": 0, "metrics": 0, "policy": 0}
    if backend(server) == "nftables":
        for name in list(result):
            r = h.run(f"nft -j list counter inet fleetbgp {name}_dropped")
            if r.rc == 0:
                for item in json.loads(r.stdout)["nftables"]:
                    if "counter" in item:
                        result[name] += int(item["counter"]["packets"])
        return result
    marks = {
        "bgp": "BGP from a non-peer dropped",
        "bfd": "BFD from a non-peer dropped",
        "metrics": "metrics from a non-scraper dropped",
        "policy": "other traffic dropped",
    }
    for ipt in ("iptables", "ip6tables"):
        for line in h.check_output(f"{ipt}-save -c -t filter").splitlines():
            for name, mark in marks.items():
                if mark in line and line.startswith("["):
                    result[name] += int(line[1:].split(":", 1)[0])
    return result


# --- traffic ------------------------------------------------------------------------------------------
PROBE = r"""
import json, socket, sys, concurrent.futures as cf
def one(target):
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    try:
        s = socket.create_connection((host, int(port)), timeout=float(sys.argv[1]))
        s.close()
        return target, "open"
    except socket.timeout:
        return target, "timeout"
    except ConnectionRefusedError:
        return target, "refused"
    except OSError as exc:
        return target, "error " + str(exc)
with cf.ThreadPoolExecutor(32) as ex:
    print(json.dumps(dict(ex.map(one, sys.argv[2:]))))
"""


def connect_from(name: str, targets: list[str], timeout: float = CONNECT_TIMEOUT) -> dict[str, str]:
    """TCP connects from inside container `name` to HOST:PORT targets, in parallel:
    {target: open|timeout|refused|error ...}. A dropped SYN times out; a closed port is refused."""
    proc = subprocess.run(
        ["podman", "exec", name, "python3", "-c", PROBE, str(timeout), *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def connect_from_controller(address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str:
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return "open"
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error {exc}"


def target(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@pytest.fixture(scope="session")
def outsider_probe() -> dict[str, Any]:
    """From the outsider, one parallel round of connects to every server: BGP (v4, v6), metrics,
    the unnamed service; with the drop counters before and after."""
    before = {s: counters(s) for s in SERVERS}
    targets = []
    for s in SERVERS:
        v4, v6 = addresses(s)
        targets += [target(v4, 179), target(v6, 179), target(v4, METRICS_PORT), target(v4, WEB_PORT)]
    result = connect_from(OUTSIDER, targets)
    after = {s: counters(s) for s in SERVERS}
    return {"result": result, "before": before, "after": after}


def bfd_sessions(router: testinfra.host.Host) -> dict[str, str]:
    """BIRD's BFD sessions: {peer address: state} (`birdc show bfd sessions`)."""
    out = birdc(router, "show bfd sessions")
    return {f[0]: f[2] for f in (line.split() for line in out.splitlines())
            if len(f) >= 6 and f[2] in ("AdminDown", "Down", "Init", "Up")}


def birdc(router: testinfra.host.Host, command: str) -> str:
    r = router.run(f"birdc -r {command}")
    assert r.rc == 0, f"birdc {command}: {r.stderr}"
    return r.stdout


def bird_protocol(server: str, fam: str) -> str:
    return f"bgp_{server.replace('-', '_')}_{fam}"


def bird_state(router: testinfra.host.Host, protocol: str) -> str:
    for line in birdc(router, f"show protocols {protocol}").splitlines():
        if line.startswith(protocol + " "):
            return " ".join(line.split())
    return ""
