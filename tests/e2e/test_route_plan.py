"""The route plan on the e2e lab (issue 16, proof 6), with test_rollout's machinery: a git repository
of the e2e inventory gets commits that are rolled out with scripts/fleetbgp-rollout. In file order:

1. A commit that changes srv2's MED: fleet.bgp.site --check --diff --tags fleet_bgp_plan (the plan
   play alone) on that inventory shows
   `~ 100.10.0.200/32 med 200 -> 250` for srv2 only, no change for srv1 and srv3, changes nothing.
2. A commit that removes the only announcers of 100.10.0.200/32 (srv1 and srv2 announce it through
   their `service` health check; srv3 does not): `--check --diff` shows it withdrawn on srv1 and srv2
   and flags it fleet-wide; the real run is refused before any host changes (config sha256 and agent
   pid unchanged everywhere, BIRD still has the route); with -e fleet_bgp_allow_unannounced=true it
   goes through (BIRD loses the route). The lab's inventory puts it back: test_rollout's good commit,
   which runs next (conftest.py, LEAVE_THE_BASELINE) and rolls it out to every server, asserts the
   route is back from srv1 and srv2; without that test in the session, this module's fixture rolls a
   revert commit out to srv1 and srv2 when it is done (one rollout less for the whole suite).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e_lab import SERVICE, SERVICE_ANNOUNCERS, Lab
from test_rollout import Desired, snapshot

ROLLOUT_TIMEOUT = 900
PLAN_CODE = ("reload_plan.py", "cli_plan.py", "health/runner.py")
# Puts the route test 2 withdraws back (with every assertion of the fixture's own put-back).
PUTS_IT_BACK = "test_rollout.py::test_good_commit_rolls_out_everywhere_without_a_gap"
# No module timeout: the e2e default (FLEETBGP_E2E_TIMEOUT, 1800 s) also covers waiting for the lab's lock.


@pytest.fixture(scope="module")
def desired(lab: Lab, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Desired]:
    lab.ensure_baseline()  # an earlier test that failed may have left its commit deployed
    # The role installs the agent only when its version differs: a shared lab may run a build of
    # another tree with the same version. The plan is the agent's: install this tree's when the
    # servers' route planning code differs from it.
    mine = {hashlib.sha256((lab.repo / "agent/src/fleetbgp" / f).read_bytes()).hexdigest() for f in PLAN_CODE}
    if any(not mine <= set(lab.exec(s, "sh", "-c", "sha256sum " + " ".join(
            f"/opt/fleetbgp/venv/lib/python3*/site-packages/fleetbgp/{f}" for f in PLAN_CODE),
            check=False).stdout.split()) for s in lab.servers):
        # The whole site run: its restart play restarts the reinstalled agents (drained).
        lab.playbook("fleet.bgp.site", extra_vars={"fleet_bgp_agent_force_install": True})
        lab.wait_converged()
    repo = Desired(tmp_path_factory.mktemp("desired-plan"), lab.inventory)
    yield repo
    # Test 2 leaves the route withdrawn (its last commit, a revert, is not rolled out): test_rollout's
    # good commit puts it back when it runs in this session; otherwise the revert goes out here.
    if lab.path_hosts(SERVICE) == set(SERVICE_ANNOUNCERS) or any(
            item.nodeid.endswith(PUTS_IT_BACK) for item in request.session.items):
        return
    back = rollout(lab, repo, tmp_path_factory.mktemp("desired-plan-back"),
                   fleet_bgp_rollout_hosts=",".join(SERVICE_ANNOUNCERS))
    assert back.returncode == 0, back.stdout
    lab.wait_until(lambda: lab.path_hosts(SERVICE) == set(SERVICE_ANNOUNCERS), 60, f"{SERVICE} back at BIRD")
    lab.wait_converged()


def rollout(lab: Lab, desired: Desired, workdir: Path, *args: str,
            **extra: object) -> subprocess.CompletedProcess[str]:
    """scripts/fleetbgp-rollout of main, ansible-playbook ARGS and extra vars after `--`."""
    env = {**os.environ, **lab.env, "ANSIBLE_PLAYBOOK": str(lab.repo / ".venv/bin/ansible-playbook")}
    extra_vars = {"fleet_bgp_rollout_batches": ["100%"], "fleet_bgp_rollout_gate_timeout": 30, **extra}
    cmd = [str(lab.repo / "scripts/fleetbgp-rollout"), "--repo", str(desired.path), "--ref", "main",
           "--workdir", str(workdir), "--", "-e", json.dumps(extra_vars), *args]
    return subprocess.run(cmd, cwd=lab.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=ROLLOUT_TIMEOUT, check=False)


def host_plan(output: str, host: str) -> str:
    """The debug output of the task `Route plan of this host` for HOST."""
    marker = "TASK [fleet.bgp.agent : Route plan of this host]"
    section = output.split(marker, 1)[1].split("TASK [", 1)[0]
    return section.split(f"ok: [{host}]", 1)[1].split("\nok: [", 1)[0]


def test_a_med_change_shows_for_that_host_only_in_a_site_check_run(lab: Lab, desired: Desired) -> None:
    desired.edit_yaml("host_vars/srv2.yml", lambda d: d.update(lab_service_med=250))
    desired.commit("srv2: MED 250")
    before = snapshot(lab)
    try:
        # The plan play alone (--tags fleet_bgp_plan): the full check run is the next test's rollout.
        proc = lab.playbook("fleet.bgp.site", "--check", "--diff", "--tags", "fleet_bgp_plan",
                            inventory=str(desired.path / "inventory"))
    finally:
        desired.git("revert", "--no-edit", "HEAD")
    out = proc.stdout
    assert "PLAY [Route plan" in out.split("PLAY [Monitoring", 1)[0], out
    assert "TASK [fleet.bgp.agent : Install" not in out and "TASK [fleet.bgp.sysctl : Apply" not in out, out
    srv2 = host_plan(out, "srv2")
    assert f"~ {SERVICE} med 200 -> 250 (health:service)" in srv2, out
    for s in ("srv1", "srv3"):
        assert "no change to sessions, routes, processes or health checks" in host_plan(out, s), out
    assert "every prefix announced now keeps at least one announcer" in out, out
    assert snapshot(lab) == before


def test_removing_the_last_announcers_is_flagged_refused_then_allowed(lab: Lab, desired: Desired,
                                                                      tmp_path: Path) -> None:
    for s in ("srv1", "srv2"):
        desired.edit_yaml(f"host_vars/{s}.yml", lambda d: d.pop("lab_service_med"))
    desired.commit(f"srv1, srv2: stop announcing {SERVICE}")
    before = snapshot(lab)

    # The check run and the refused real run change nothing, so they run side by side (a minute less
    # of e2e time); the snapshot after both shows that neither changed a host.
    with ThreadPoolExecutor(max_workers=2) as pool:
        check_run = pool.submit(rollout, lab, desired, tmp_path / "check", "--check", "--diff")
        refused_run = pool.submit(rollout, lab, desired, tmp_path / "real")
        check, refused = check_run.result(), refused_run.result()
    assert check.returncode == 0, check.stdout
    for s in ("srv1", "srv2"):
        assert f"- {SERVICE} next-hop self med" in host_plan(check.stdout, s), check.stdout
    assert SERVICE not in host_plan(check.stdout, "srv3"), check.stdout
    assert f"FLAGGED: {SERVICE} is announced now by srv1, srv2 and would have NO announcer" in check.stdout
    assert snapshot(lab) == before

    assert refused.returncode != 0, refused.stdout
    assert f"refusing the change: after it no host would announce {SERVICE} (announced now by srv1, srv2)" \
        in refused.stdout, refused.stdout
    assert snapshot(lab) == before, "a host changed although the route plan refused the change"
    assert lab.path_hosts(SERVICE) == {"srv1", "srv2"}

    # The change touches srv1 and srv2 only: the rollout of those two (srv3 is planned as it is).
    allowed = rollout(lab, desired, tmp_path / "allowed", fleet_bgp_allow_unannounced=True,
                      fleet_bgp_rollout_hosts="srv1,srv2")
    assert allowed.returncode == 0, allowed.stdout
    lab.wait_until(lambda: not lab.paths(SERVICE), 30, f"{SERVICE} withdrawn at BIRD")

    # Back to the lab's inventory in the repository; rolled out by test_rollout's good commit (or by
    # the fixture, when that test does not run in this session).
    desired.git("revert", "--no-edit", "HEAD")
