"""VRRP decides, the agent follows (docs/operations/keepalived.md): at rest web-1 is the one active
server; each failure the guide's pattern covers moves the VIP, the route at BIRD, the router's kernel
route and the answers to web-2, and the recovery moves them back (preemption). Every wait polls."""

from __future__ import annotations

import pytest

from conftest import FLEETBGP, run_ok, wait_active

PRIMARY, BACKUP = "web-1", "web-2"


def test_at_rest_web1_is_master_and_the_only_one_announcing(router, servers):
    snap = wait_active(router, servers, PRIMARY)
    assert snap.servers[BACKUP].check == "DOWN", snap  # web-2's agent runs, announces nothing


# (what fails on web-1, how, how it comes back)
FAILURES = [
    pytest.param("systemctl stop vrrp-web", "systemctl start vrrp-web", id="service-stops"),
    pytest.param(f"{FLEETBGP} maintenance on", f"{FLEETBGP} maintenance off", id="operator-drains"),
    pytest.param("systemctl stop keepalived", "systemctl start keepalived", id="keepalived-stops"),
]


@pytest.mark.parametrize(("fail", "recover"), FAILURES)
def test_failover_and_back(router, servers, fail, recover):
    wait_active(router, servers, PRIMARY)
    primary = servers[PRIMARY]
    try:
        run_ok(primary, fail)
        moved = wait_active(router, servers, BACKUP)
        assert moved.paths == {"web_2"}, moved  # web-1 withdrew: BIRD has no path from it
    finally:
        run_ok(primary, recover)
    wait_active(router, servers, PRIMARY)
