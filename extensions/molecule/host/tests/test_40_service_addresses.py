"""fleet.bgp.service_addresses on the bgp_server: every host prefix the inventory announces (routes, the
health check's ip) plus the explicit extra is on lo, the aggregate is not; the record and its boot unit;
the server answers on a service address but not ARP for it on the LAN; an address stays while its route
is withdrawn and across `systemctl restart fleetbgp`; an operator's own address survives a prune;
`--check --diff` changes nothing; removing one address from the inventory removes exactly it; and after
a reboot of the container the unit puts them back (last: the container may get another IPv4 address
from podman, which the router's BIRD does not know).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from conftest import SERVER, podman_host, recap, run_playbook, wait_until

PLAYBOOK = Path(__file__).resolve().parent.parent / "service-addresses-only.yml"
RECORD = "/etc/fleetbgp/service-addresses"
UNIT = "fleetbgp-addresses.service"
LABEL = "lo:fleetbgp"
SYSTEM = {"127.0.0.1/8", "::1/128"}  # lo's own: never ours
# inventory/group_vars/bgp_servers.yml
ANNOUNCED = {"100.10.0.100/32", "2001:db8:100::100/128", "100.10.0.200/32"}  # routes, health check
EXTRA = "100.10.0.250/32"  # fleet_bgp_service_addresses
WANTED = ANNOUNCED | {EXTRA}
AGGREGATE = "100.10.8."  # 100.10.8.0/24 is announced, but no service address
OPERATOR = "192.0.2.77/32"  # put on lo by hand
ANYCAST = "100.10.0.100"
WITHDRAWN = "100.10.0.200/32"  # its health check is always DOWN (withdraw_on_down)
WEB_PORT = 18080


def lo(host) -> dict[str, str | None]:
    """lo's addresses: {ADDRESS/LEN: label (IPv4) or None}."""
    links = json.loads(host.check_output("ip -json address show dev lo"))
    return {f"{a['local']}/{a['prefixlen']}": a.get("label") for a in links[0]["addr_info"]}


def state(host) -> tuple[dict[str, str | None], str]:
    """What a run may change: lo's addresses and the record's checksum."""
    return lo(host), hashlib.sha256(host.file(RECORD).content).hexdigest()


def play(*args: str, **extra) -> str:
    """service-addresses-only.yml with extra vars; the server's PLAY RECAP line (the play must pass)."""
    proc = run_playbook(PLAYBOOK, "-e", json.dumps(extra), *args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return recap(proc.stdout, SERVER)


def eth0_ipv4(host) -> str:
    return json.loads(host.check_output("ip -4 -json address show dev eth0"))[0]["addr_info"][0]["local"]


def test_announced_and_extra_addresses_on_lo(server):
    addrs = lo(server)
    assert set(addrs) == WANTED | SYSTEM, addrs
    assert {a: addrs[a] for a in WANTED if ":" not in a} == {a: LABEL for a in WANTED if ":" not in a}
    assert not [a for a in addrs if a.startswith(AGGREGATE)], "an aggregate is no service address"


def test_record_is_the_boot_file(server):
    f = server.file(RECORD)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o644)
    lines = [line for line in f.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == [
        f"address replace 100.10.0.100/32 dev lo label {LABEL}",
        f"address replace 100.10.0.200/32 dev lo label {LABEL}",
        f"address replace {EXTRA} dev lo label {LABEL}",
        "address replace 2001:db8:100::100/128 dev lo nodad",
    ]
    before = lo(server)
    server.check_output(f"ip -batch {RECORD}")  # the comment header is fine for ip -batch
    assert lo(server) == before
    # the agent role keeps owning the directory (this role creates it without owner or mode)
    d = server.file("/etc/fleetbgp")
    assert (d.user, d.group, d.mode) == ("root", "fleetbgp", 0o750)


def test_boot_unit(server):
    unit = server.service(UNIT)
    assert unit.is_enabled and unit.is_running
    props = server.check_output(f"systemctl show {UNIT} -p Type -p RemainAfterExit -p Before -p ExecStart")
    assert "Type=oneshot" in props and "RemainAfterExit=yes" in props
    before = next(line for line in props.splitlines() if line.startswith("Before="))
    assert "network.target" in before and "fleetbgp.service" in before, before
    assert f"-batch {RECORD}" in props


def test_agent_unit_has_no_net_admin(server):
    caps = server.check_output("systemctl show fleetbgp.service -p CapabilityBoundingSet --value")
    assert "cap_net_admin" not in caps


def test_address_stays_while_its_route_is_withdrawn(server, router):
    def routes():
        out = router.check_output("birdc -r show route")
        return out if f"{ANYCAST}/32" in out else ""

    out = wait_until(routes, 30)
    assert out, "the anycast route never reached BIRD"
    assert WITHDRAWN not in out, "the DOWN health check's route is announced"
    assert WITHDRAWN in lo(server), "its address left lo"


def test_agent_restart_leaves_the_addresses(server):
    before = lo(server)
    server.check_output("systemctl restart fleetbgp.service")
    assert wait_until(lambda: server.service("fleetbgp").is_running, 20)
    assert lo(server) == before


def test_server_answers_on_a_service_address(server, router):
    """Routed to the server (as BIRD's ECMP route would be): ping and a real TCP connection to the
    anycast address on the server's lo."""
    via = eth0_ipv4(server)
    router.check_output(f"ip route replace {ANYCAST}/32 via {via} dev eth0")
    server.check_output(f"systemd-run --unit molecule-web --collect python3 -m http.server {WEB_PORT} "
                        f"--bind {ANYCAST} --directory /tmp")
    try:
        assert wait_until(lambda: f"{ANYCAST}:{WEB_PORT}" in server.check_output("ss -ltnH"), 15)
        assert router.run(f"ping -c 1 -W 2 {ANYCAST}").rc == 0
        status = router.check_output(
            "python3 -c \"import urllib.request as u; "
            f"print(u.urlopen('http://{ANYCAST}:{WEB_PORT}/', timeout=5).status)\"")
        assert status == "200"
    finally:
        server.run("systemctl stop molecule-web")
        router.run(f"ip route del {ANYCAST}/32")


def test_no_arp_reply_for_a_service_address_on_the_lan(server, router):
    """Asked directly on the LAN (an on-link route on the router, no next hop), the server does not
    answer ARP for the address on its lo: arp_ignore=1. Control: with arp_ignore=0 it does."""
    mac = server.file("/sys/class/net/eth0/address").content_string.strip()

    def ask() -> str:
        router.run(f"ip neigh del {ANYCAST} dev eth0")
        router.run(f"ping -c 1 -W 2 {ANYCAST}")
        return router.check_output(f"ip neigh show {ANYCAST} dev eth0")

    router.check_output(f"ip route replace {ANYCAST}/32 dev eth0")
    try:
        assert server.file("/proc/sys/net/ipv4/conf/all/arp_ignore").content_string.strip() == "1"
        answer = ask()
        assert "lladdr" not in answer, f"the server answered ARP for {ANYCAST} on eth0: {answer}"
        server.check_output("sysctl -qw net.ipv4.conf.all.arp_ignore=0")
        answer = ask()
        assert f"lladdr {mac}" in answer, f"control: no ARP answer even with arp_ignore=0: {answer!r}"
    finally:
        server.run("sysctl -qw net.ipv4.conf.all.arp_ignore=1")
        router.run(f"ip route del {ANYCAST}/32")
        router.run(f"ip neigh del {ANYCAST} dev eth0")


@pytest.fixture
def operator_address(server):
    server.check_output(f"ip address add {OPERATOR} dev lo")
    yield OPERATOR
    server.run(f"ip address del {OPERATOR} dev lo")


def test_check_diff_reports_and_changes_nothing(server, operator_address):
    before = state(server)
    proc = run_playbook(PLAYBOOK, "--check", "--diff", "-e", json.dumps({"fleet_bgp_service_addresses": []}))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "changed=0" not in recap(proc.stdout, SERVER), recap(proc.stdout, SERVER)
    assert f"-{EXTRA}" in proc.stdout, proc.stdout[-3000:]
    assert state(server) == before


def test_removing_one_address_removes_exactly_it(server, operator_address):
    before = lo(server)
    # the add phase (before the agent) never removes
    play(fleet_bgp_service_addresses=[], molecule_prune=False)
    assert lo(server) == before
    assert EXTRA in server.file(RECORD).content_string, "not pruned yet: still owned"
    # the prune phase (after the agent) removes exactly the address no longer wanted
    play(fleet_bgp_service_addresses=[])
    assert set(lo(server)) == set(before) - {EXTRA}
    assert operator_address in lo(server), "an operator's address was removed"
    assert EXTRA not in server.file(RECORD).content_string
    # back to the inventory
    assert "changed=0" not in play()
    assert lo(server) == before


def test_addresses_back_after_a_reboot(server):
    """Last: `podman restart` (a new network namespace: lo without our addresses), systemd boots, the
    unit puts them back from the record."""
    subprocess.run(["podman", "restart", "--time", "3", SERVER], check=True, capture_output=True, timeout=60)
    fresh = podman_host(SERVER)
    booted = ("running", "degraded")
    assert wait_until(lambda: fresh.run("systemctl is-system-running").stdout.strip() in booted, 60)
    assert fresh.service(UNIT).is_running, fresh.run(f"systemctl status {UNIT}").stdout
    addrs = lo(fresh)
    assert set(addrs) == WANTED | SYSTEM, addrs
    assert all(addrs[a] == LABEL for a in WANTED if ":" not in a)
