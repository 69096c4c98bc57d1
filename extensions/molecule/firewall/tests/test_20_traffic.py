"""Traffic: the peer's sessions are Established, the outsider's BGP and metrics connections are dropped
and counted, the scraper reaches the metrics port, the policy decides about everything else."""

from __future__ import annotations

import pytest

from conftest import (
    METRICS_PORT,
    OUTSIDER,
    ROUTER,
    SERVERS,
    WEB_PORT,
    addresses,
    bird_protocol,
    bird_state,
    connect_from,
    connect_from_controller,
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
