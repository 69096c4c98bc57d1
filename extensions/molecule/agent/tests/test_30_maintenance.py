"""fleet.bgp.maintenance: drained takes every route away from BIRD (the session stays up), active
brings them back; check mode changes nothing; a second drained changes nothing."""

from __future__ import annotations

import json

from conftest import ALL_PREFIXES, bird_routes, bird_session, established, run_module, wait_until


def _ok(res):
    assert res["_rc"] == 0 and not res.get("failed"), json.dumps(res, indent=1)[:3000]
    return res


def test_drain_and_undrain(router):
    assert wait_until(lambda: bird_routes(router) >= set(ALL_PREFIXES), timeout=30), bird_routes(router)
    try:
        # check mode: reports the change, makes none
        res = _ok(run_module("fleet.bgp.maintenance", {"state": "drained"}, check=True))
        assert res["changed"] is True
        assert bird_routes(router) >= set(ALL_PREFIXES)

        res = _ok(run_module("fleet.bgp.maintenance", {"state": "drained"}))
        assert res["changed"] is True and res["maintenance"] is True, res
        left = wait_until(lambda: not bird_routes(router), timeout=15)
        assert left, f"routes still at BIRD after drained: {sorted(bird_routes(router))}"
        assert established(bird_session(router)), "the session should stay up while drained"

        res = _ok(run_module("fleet.bgp.maintenance", {"state": "drained"}))
        assert res["changed"] is False and res["maintenance"] is True, res
    finally:
        res = run_module("fleet.bgp.maintenance", {"state": "active"})
    _ok(res)
    assert res["changed"] is True and res["maintenance"] is False, res
    back = wait_until(lambda: bird_routes(router) >= set(ALL_PREFIXES), timeout=30)
    assert back, f"after active BIRD holds {sorted(bird_routes(router))}, want {ALL_PREFIXES}"
