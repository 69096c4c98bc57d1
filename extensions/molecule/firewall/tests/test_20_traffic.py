"""Traffic: the peer's sessions are Established and its BFD sessions Up, the outsider's BGP, BFD and
metrics packets are dropped and counted, the scraper reaches the metrics port, the policy decides
about everything else."""

from __future__ import annotations

import subprocess

import pytest

from conftest import (
    METRICS_PORT,
    OUTSIDER,
    ROUTER,
    SERVERS,
    WEB_PORT,
    addresses,
    bfd_sessions,
    bird_protocol,
    bird_state,
    connect_from,
    connect_from_controller,
    counters,
    podman_host,
    policy,
    target,
    wait_until,
)


@pytest.mark.parametrize("fam", ["v4", "v6"])
@pytest.mark.parametrize("server", SERVERS)
def test_session_from_the_peer_established(router, server, fam):
    """BIRD dials the server (the agent is passive): the peer gets in on TCP 179, over IPv4 and IPv6."""
    protocol = bird_protocol(server, fam)
    line = wait_until(
        lambda: (lambda s: s if s.endswith("Established") else "")(bird_state(router, protocol)), 60
    )
    assert line, f"{protocol} at BIRD: {bird_state(router, protocol)!r}"


@pytest.mark.parametrize("server", SERVERS)
def test_bfd_with_the_router_up(router, server):
    """BFD (UDP 3784 both ways) gets through the server's firewall: BIRD's BFD sessions to the server are
    Up over IPv4 and IPv6 (fw-ipt: policy drop, so only the BFD rule lets the router's packets in)."""
    v4, v6 = addresses(server)
    up = wait_until(
        lambda: (lambda s: s if s.get(v4) == s.get(v6) == "Up" else None)(bfd_sessions(router)), 60
    )
    assert up, f"BIRD's BFD sessions: {bfd_sessions(router)}"


@pytest.mark.parametrize("server", SERVERS)
def test_bfd_from_the_outsider_dropped_and_counted(server):
    """A BFD packet from the outsider (not a peer) is dropped and counted."""
    v4, _ = addresses(server)
    before = counters(server)["bfd"]
    send = (
        f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes(24), ('{v4}', 3784))"
    )
    subprocess.run(["podman", "exec", OUTSIDER, "python3", "-c", send], check=True, timeout=30)
    after = wait_until(lambda: (lambda n: n if n > before else 0)(counters(server)["bfd"]), 10)
    assert after > before, f"{server}: BFD drop counter {before} -> {counters(server)['bfd']}"


@pytest.mark.parametrize("server", SERVERS)
def test_bgp_from_the_outsider_dropped_and_counted(outsider_probe, server):
    v4, v6 = addresses(server)
    result = outsider_probe["result"]
    assert result[target(v4, 179)] == "timeout", result
    assert result[target(v6, 179)] == "timeout", result
    before, after = outsider_probe["before"][server]["bgp"], outsider_probe["after"][server]["bgp"]
    assert after >= before + 2, f"{server}: BGP drop counter {before} -> {after}"


@pytest.mark.parametrize("server", SERVERS)
def test_metrics_from_a_non_scraper_dropped_and_counted(outsider_probe, server):
    v4, _ = addresses(server)
    assert outsider_probe["result"][target(v4, METRICS_PORT)] == "timeout", outsider_probe["result"]
    before, after = outsider_probe["before"][server]["metrics"], outsider_probe["after"][server]["metrics"]
    assert after > before, f"{server}: metrics drop counter {before} -> {after}"


@pytest.mark.parametrize("server", SERVERS)
def test_metrics_from_a_scraper(server):
    """The router is a configured scraper: it gets the agent's metrics."""
    v4, _ = addresses(server)
    r = connect_from(ROUTER, [target(v4, METRICS_PORT)])
    assert r[target(v4, METRICS_PORT)] == "open", r
    url = f"http://{v4}:{METRICS_PORT}/metrics"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
    body = podman_host(ROUTER).check_output(f'python3 -c "{script}"')
    assert "fleetbgp_" in body


@pytest.mark.parametrize("server", SERVERS)
def test_metrics_from_the_controller(server):
    """The controller (the network's gateway) is a scraper too: the commit-confirm probe's path."""
    v4, _ = addresses(server)
    assert connect_from_controller(v4, METRICS_PORT) == "open"


@pytest.mark.parametrize("server", SERVERS)
def test_other_traffic_follows_the_policy(outsider_probe, server):
    """policy accept (fw-nft) leaves a service no rule names alone; policy drop (fw-ipt) drops and
    counts it."""
    v4, _ = addresses(server)
    got = outsider_probe["result"][target(v4, WEB_PORT)]
    if policy(server) == "accept":
        assert got == "open", f"{server}: {got}"
    else:
        assert got == "timeout", f"{server}: {got}"
        before, after = outsider_probe["before"][server]["policy"], outsider_probe["after"][server]["policy"]
        assert after > before, f"{server}: policy drop counter {before} -> {after}"


def test_outsider_is_not_cut_off_from_everything():
    """Control for the timeouts above: the outsider reaches the router's BIRD port (no rule there)."""
    v4, _ = addresses(ROUTER)
    r = connect_from(OUTSIDER, [target(v4, 179)])
    assert r[target(v4, 179)] in ("open", "refused"), r
