"""Issue 12: the service addresses on the e2e lab's servers, as fleet.bgp.site left them.

Each server holds exactly the addresses it announces on `lo` (IPv4 with the label lo:fleetbgp, IPv6
too), and none of them claims a service address on the shared LAN: asked directly on the link (ARP for
IPv4, neighbour discovery for IPv6, by pointing an on-link route at the LAN in the router), no server
answers, while the same probe for a server's own LAN address is answered (the control).
"""

from __future__ import annotations

import json

import pytest
from e2e_lab import AGENT, ANYCAST, ANYCAST6, Lab

RECORD = "/etc/fleetbgp/service-addresses"


def lo_addresses(lab: Lab, host: str) -> dict[str, str | None]:
    """{ADDRESS/LEN: label} of the global addresses on the host's lo."""
    links = json.loads(lab.exec(host, "ip", "-json", "address", "show", "dev", "lo").stdout)
    return {f"{a['local']}/{a['prefixlen']}": a.get("label") for link in links for a in link["addr_info"]
            if a.get("scope") == "global" and a["local"] not in ("127.0.0.1", "::1")}


def announced(lab: Lab, host: str) -> set[str]:
    """The host prefixes the agent announces, or would when its health checks are UP."""
    routes = json.loads(lab.exec(host, AGENT, "show", "routes", "--json").stdout)["routes"]
    prefixes = {r["prefix"] for r in routes} | {ip for c in lab.health_checks(host).values() for ip in c["ips"]}
    return {p for p in prefixes if p.endswith(("/32", "/128"))}


def test_each_server_holds_what_it_announces_on_lo(lab: Lab) -> None:
    lab.wait_converged()
    for host in lab.servers:
        want = announced(lab, host)
        assert {ANYCAST, ANYCAST6} <= want, want
        have = lo_addresses(lab, host)
        assert set(have) == want, f"{host}: lo has {sorted(have)}, it announces {sorted(want)}"
        assert {a: label for a, label in have.items() if ":" not in a} == {a: "lo:fleetbgp" for a in want
                                                                           if ":" not in a}
        assert lab.exec(host, "systemctl", "is-active", "fleetbgp-addresses.service").stdout.strip() == "active"
        record = lab.exec(host, "cat", RECORD).stdout
        assert all(a in record for a in want), record


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_no_server_answers_arp_or_nd_for_a_service_address(lab: Lab, family: str) -> None:
    """The router asks the LAN itself who has the anycast address (an on-link route that wins over
    BIRD's): nobody answers, because arp_ignore=1 (IPv4) and Linux's per-interface neighbour discovery
    (IPv6) keep the addresses on lo. The same probe for srv1's LAN address is answered."""
    lab.wait_converged()
    v6 = family == "ipv6"
    target = (ANYCAST6 if v6 else ANYCAST).split("/")[0]
    control = lab.addr6("srv1") if v6 else lab.addr("srv1")
    ip = ["ip", "-6"] if v6 else ["ip", "-4"]
    ping = ["ping", "-6" if v6 else "-4", "-c", "2", "-W", "1", "-i", "0.3"]
    # metric 1 wins over BIRD's routes (metric 32) for as long as the probe lasts
    lab.exec(lab.router, *ip, "route", "add", f"{target}/{128 if v6 else 32}", "dev", "eth0", "metric", "1")
    try:
        lab.exec(lab.router, *ip, "neigh", "flush", "to", target, "dev", "eth0", check=False)
        probe = lab.exec(lab.router, *ping, target, check=False, timeout=30)
        neigh = lab.exec(lab.router, *ip, "neigh", "show", "to", target, "dev", "eth0").stdout
    finally:
        lab.exec(lab.router, *ip, "route", "del", f"{target}/{128 if v6 else 32}", "dev", "eth0", "metric", "1")
    assert probe.returncode != 0, f"a server answered for {target} on the LAN:\n{probe.stdout}\n{neigh}"
    assert "lladdr" not in neigh, f"the router learned a link-layer address for {target}: {neigh}"
    answered = lab.exec(lab.router, *ping, control, check=False, timeout=30)
    assert answered.returncode == 0, f"the control {control} did not answer:\n{answered.stdout}{answered.stderr}"
    # BIRD's ECMP route is the one in use again
    lab.wait_converged()
