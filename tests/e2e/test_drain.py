"""Issue 6, proof 6: fleet.bgp.drain / fleet.bgp.undrain on the e2e lab fleet.

Draining srv1 makes BIRD lose srv1's paths (anycast and the primary of the MED pair) and keep the
others', with the sessions up and a path for the anycast prefix at every sample; srv2, then the last
host announcing 100.10.0.200/32, is refused (nothing changes on it); `-e fleet_bgp_drain_force=true` drains it anyway;
undraining both brings every path back, srv1 best again for the MED pair.

The metric mode, by choice (fleet_bgp_agent_maintenance_mode: metric on srv1): draining keeps srv1's
paths at BIRD with the disabled metric (MED 1000), so the backup (srv2, MED 200) becomes best for the
MED pair without any path going away; undrain puts MED 100 back and srv1 is best again. Asking a
metric-mode host for a withdraw drain is refused with a hint, and changes nothing.
"""

from __future__ import annotations

from e2e_lab import AGENT, ANYCAST, SERVICE, BirdSampler, Lab

DISABLED_METRIC = 1000  # the agent's default maintenance metric (ExaBGP healthcheck's disabled metric)


def undrain_all(lab: Lab) -> None:
    for s in lab.servers:
        lab.exec(s, AGENT, "maintenance", "off", check=False, timeout=30)


def test_drain_undrain_and_last_announcer(lab: Lab) -> None:
    lab.wait_converged()
    try:
        # 1. drain srv1: its paths go, the others stay; BIRD always had a path for the anycast prefix.
        with BirdSampler(lab, ANYCAST) as sampler:
            out = lab.playbook("fleet.bgp.drain", "--limit", "srv1").stdout
        assert "srv1 drained (withdraw): every route withdrawn" in out, out
        assert lab.path_hosts(ANYCAST) == {"srv2", "srv3"}
        assert lab.path_hosts(SERVICE) == {"srv2"}
        assert lab.best_path(SERVICE) == lab.addr("srv2")
        assert set(lab.sessions().values()) == {"Established"}, "a drain must keep the sessions up"
        assert lab.agent_status("srv1")["maintenance"] is True
        assert not sampler.gaps(), f"BIRD had no path for {ANYCAST} at some sample"
        assert sampler.min_paths() >= 2 and not sampler.errors
        assert len(sampler.samples) >= 4

        # 2. srv2 is now the last host announcing the MED pair's prefix: refused, nothing changes.
        pid = lab.agent_status("srv2")["pid"]
        refused = lab.playbook("fleet.bgp.drain", "--limit", "srv2", check=False)
        assert refused.returncode != 0, refused.stdout
        assert "refusing to drain srv2" in refused.stdout and SERVICE in refused.stdout, refused.stdout
        assert "Nothing was drained" in refused.stdout
        status = lab.agent_status("srv2")
        assert status["maintenance"] is False and status["pid"] == pid
        assert lab.path_hosts(SERVICE) == {"srv2"}
        assert lab.path_hosts(ANYCAST) == {"srv2", "srv3"}

        # 3. forced: srv2 drains, and the MED pair's prefix is gone from BIRD (what force means).
        out = lab.playbook("fleet.bgp.drain", "--limit", "srv2", extra_vars={"fleet_bgp_drain_force": True}).stdout
        assert "srv2 drained (withdraw)" in out
        assert lab.path_hosts(SERVICE) == set()
        assert lab.path_hosts(ANYCAST) == {"srv3"}

        # 4. undrain both: every path back, srv1 (MED 100) best again.
        out = lab.playbook("fleet.bgp.undrain", "--limit", "srv1,srv2").stdout
        assert "srv1 in service: 2/2 sessions Established, 3 routes announced" in out, out
        lab.wait_converged(timeout=15)
        assert lab.best_path(SERVICE) == lab.addr("srv1")
        for s in lab.servers:
            assert lab.agent_status(s)["maintenance"] is False
    finally:
        undrain_all(lab)


def test_metric_drain_keeps_the_paths_with_the_disabled_metric(lab: Lab) -> None:
    host = "srv1"
    lab.wait_converged()
    before = lab.meds(SERVICE)
    assert before == {"srv1": 100, "srv2": 200}, before
    try:
        # An agent setting only (the unit's FLEETBGP_MAINTENANCE_MODE): the agent role alone switches it,
        # with the role's drained restart; the full fleet.bgp.site run changes nothing more here.
        lab.agent_role(host, extra_vars={"fleet_bgp_agent_maintenance_mode": "metric"})
        lab.wait_converged()
        assert lab.agent_status(host)["maintenance_mode"] == "metric"

        # A withdraw drain asked of a metric-mode agent: refused with the way out, nothing changes.
        refused = lab.playbook("fleet.bgp.drain", "--limit", host, check=False, extra_vars={"fleet_bgp_drain_mode": "withdraw"})
        assert refused.returncode != 0, refused.stdout
        assert "drains in 'metric' mode, not 'withdraw'" in refused.stdout, refused.stdout
        assert lab.agent_status(host)["maintenance"] is False

        with BirdSampler(lab, SERVICE) as sampler:
            out = lab.playbook("fleet.bgp.drain", "--limit", host, extra_vars={"fleet_bgp_drain_mode": "metric"}).stdout
            lab.wait_until(lambda: lab.meds(SERVICE) == {"srv1": DISABLED_METRIC, "srv2": 200}, 15,
                           f"srv1's path for {SERVICE} at BIRD with MED {DISABLED_METRIC}")
        assert f"{host} drained (metric): routes re-announced with MED {DISABLED_METRIC}" in out, out
        assert lab.best_path(SERVICE) == lab.addr("srv2"), "the backup is best while the primary is drained"
        assert lab.meds(ANYCAST)[host] == DISABLED_METRIC
        assert lab.path_hosts(ANYCAST) == {"srv1", "srv2", "srv3"}, "metric mode keeps every path"
        assert not sampler.gaps() and sampler.min_paths() == 2, "no path for the MED pair went away"
        assert set(lab.sessions().values()) == {"Established"}

        lab.playbook("fleet.bgp.undrain", "--limit", host)
        lab.wait_until(lambda: lab.meds(SERVICE) == before, 15, f"MED 100 back on srv1's path for {SERVICE}")
        assert lab.best_path(SERVICE) == lab.addr("srv1")
    finally:
        undrain_all(lab)
        lab.agent_role(host)  # back to the inventory's withdraw mode
        lab.wait_converged()
