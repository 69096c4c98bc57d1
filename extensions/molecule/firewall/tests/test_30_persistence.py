"""Persistence: the rules survive `systemctl restart nftables` (nftables backend) and the iptables
backend's own restore path (fleetbgp-firewall.service), without touching the host's rules."""

from __future__ import annotations

from conftest import (
    OUTSIDER,
    ROUTER,
    addresses,
    bird_protocol,
    bird_state,
    connect_from,
    counters,
    live_id,
    podman_host,
    target,
    wait_until,
)


def test_rules_survive_nftables_restart(router):
    server = "fw-nft"
    h = podman_host(server)
    before = live_id(server)
    assert before
    h.check_output("systemctl restart nftables.service")
    assert live_id(server) == before, "table inet fleetbgp is not back after `systemctl restart nftables`"
    assert "hostfw-marker" in h.check_output("nft list table inet hostfw")
    # the reloaded rules work: the outsider is dropped and counted, the peer's sessions are up
    v4, _ = addresses(server)
    dropped = counters(server)["bgp"]
    assert connect_from(OUTSIDER, [target(v4, 179)])[target(v4, 179)] == "timeout"
    assert counters(server)["bgp"] > dropped
    for fam in ("v4", "v6"):
        protocol = bird_protocol(server, fam)
        up = wait_until(lambda p=protocol: bird_state(router, p).endswith("Established"), 30)
        assert up, bird_state(router, protocol)


def test_iptables_chains_come_back_with_their_unit():
    server = "fw-ipt"
    h = podman_host(server)
    before = live_id(server)
    assert before
    # the unit's own restart: the chains are re-loaded, the jump is not duplicated
    h.check_output("systemctl restart fleetbgp-firewall.service")
    assert live_id(server) == before
    # after something flushed our chains (e.g. a tool that reloads the whole filter table), a restart
    # of the unit brings them back
    h.check_output("iptables -F FLEETBGP-INPUT && ip6tables -F FLEETBGP-INPUT")
    assert live_id(server) == ""
    h.check_output("systemctl restart fleetbgp-firewall.service")
    assert live_id(server) == before
    for ipt in ("iptables", "ip6tables"):
        assert h.check_output(f"{ipt} -S INPUT").splitlines().count("-A INPUT -j FLEETBGP-INPUT") == 1
    assert "hostipt-marker" in h.check_output("iptables -S INPUT")
    v4, _ = addresses(server)
    assert connect_from(OUTSIDER, [target(v4, 179)])[target(v4, 179)] == "timeout"
    assert connect_from(ROUTER, [target(v4, 179)])[target(v4, 179)] == "open"
