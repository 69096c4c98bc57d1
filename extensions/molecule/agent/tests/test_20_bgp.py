"""BGP: the session at BIRD, the routes it holds (static, health check, API program), agent_info."""

from __future__ import annotations

import json
import re

from conftest import (
    ALL_PREFIXES,
    API_PREFIX,
    HEALTH_PREFIX,
    STATIC_PREFIX,
    bird_routes,
    bird_session,
    birdc,
    established,
    run_module,
    wait_until,
)


def test_bird_session_established(router):
    line = wait_until(lambda: (lambda s: s if established(s) else "")(bird_session(router)), timeout=60)
    assert line, f"not Established at BIRD: {bird_session(router)!r}"


def test_bird_holds_every_announced_route(router):
    """The static route, the health check's and the API program's: the last two prove that checks and
    programs work under the hardened unit."""
    got = wait_until(
        lambda: (lambda r: r if r >= set(ALL_PREFIXES) else set())(bird_routes(router)), timeout=30
    )
    assert got >= set(ALL_PREFIXES), f"BIRD holds {sorted(bird_routes(router))}, want {ALL_PREFIXES}"


def _route_all(router, prefix: str) -> str:
    return birdc(router, f"show route for {prefix} all")


def test_static_route_attributes(router, server):
    out = _route_all(router, STATIC_PREFIX)
    server_ip = server.check_output("hostname -I").split()[0]
    assert re.search(r"BGP\.med:\s*100\b", out), out
    assert re.search(r"BGP\.as_path:\s*65001\s*$", out, re.M), out
    assert re.search(rf"BGP\.next_hop:\s*{re.escape(server_ip)}\b", out), out


def _health_med(router) -> int | None:
    m = re.search(r"BGP\.med:\s*(\d+)", _route_all(router, HEALTH_PREFIX))
    return int(m.group(1)) if m else None


def test_health_check_follows_the_service(router, server):
    """Stop the watched service: the check goes DOWN (MED 1000); start it: UP again (MED 100)."""
    assert wait_until(lambda: _health_med(router) == 100, timeout=15), _route_all(router, HEALTH_PREFIX)
    server.check_output("systemctl stop molecule-web.service")
    try:
        assert wait_until(lambda: _health_med(router) == 1000, timeout=20), _route_all(router, HEALTH_PREFIX)
    finally:
        server.check_output("systemctl start molecule-web.service")
    assert wait_until(lambda: _health_med(router) == 100, timeout=20), _route_all(router, HEALTH_PREFIX)


def test_api_program_route(router):
    out = _route_all(router, API_PREFIX)
    assert API_PREFIX.split("/")[0] in out and re.search(r"BGP\.med:\s*100\b", out), out


def test_agent_info_reports_established():
    res = run_module(
        "fleet.bgp.agent_info", {"wait_for": "established", "timeout": 60, "include_routes": True}
    )
    assert res["_rc"] == 0 and not res.get("failed"), json.dumps(res, indent=1)[:4000]
    assert res.get("changed") is False
    assert res["configured"] == 1 and res["established"] == 1, res
    (neighbor,) = res["neighbors"]
    assert str(neighbor["state"]).lower() == "established", neighbor
    assert neighbor["peer_as"] == 65000 and neighbor["local_as"] == 65001, neighbor
    assert res["status"]["maintenance"] in (False, "off", None), res["status"]
    assert res["status"]["config_path"] == "/etc/fleetbgp/fleetbgp.conf"
    routes = json.dumps(res["routes"])
    for prefix in ALL_PREFIXES:
        assert prefix in routes, f"{prefix} not in agent_info routes: {routes[:2000]}"
