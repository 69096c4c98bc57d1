"""fleet.bgp.rollout on the e2e lab (issue 6, proof 1-3): a git repository of inventory + variables
(a copy of tests/e2e/inventory) gets a good, an invalid and a BGP-breaking commit; each is rolled out
with scripts/fleetbgp-rollout (which runs the fleet.bgp.rollout playbook) while BirdSampler watches
BIRD on the lab router.

The tests run in file order and share one desired-state repository: invalid commit (nothing changes),
good commit (everything changes, no gap), broken canary (restored, nothing else touched). The lab is
left at the good commit (one more anycast /32 on every server, deployed.json on every server): the
`lab` fixture deploys the baseline at the start of every session, and a test that needs the baseline
within a session calls lab.reset() (a full fleet.bgp.site, minutes on a busy machine, so not here).
test_route_plan runs just before (conftest.py, LEAVE_THE_BASELINE) and leaves 100.10.0.200/32 withdrawn
on srv1 and srv2: the good commit (the e2e inventory plus the new prefix) brings it back, and shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from e2e_lab import ANYCAST, SERVICE, SERVICE_ANNOUNCERS, BirdSampler, Lab

CONF = "/etc/fleetbgp/fleetbgp.conf"
RECORD = "/var/lib/fleetbgp/deployed.json"
NEW_ANYCAST = "100.10.0.150/32"  # what the good commit adds on every server
GATE_TIMEOUT = 20  # seconds; the broken canary waits this long before it is restored
ROLLOUT_TIMEOUT = 900
# A rollout runs the agent role per batch: a minute or two on a busy 2-core machine.
pytestmark = pytest.mark.timeout(900)


class Desired:
    """The desired-state git repository: inventory/ = a copy of the e2e inventory."""

    def __init__(self, path: Path, source: Path) -> None:
        self.path = path
        shutil.copytree(source, path / "inventory")
        self.git("init", "-q", "-b", "main")
        self.commit("baseline: the e2e inventory")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), "-c", "user.name=e2e", "-c", "user.email=e2e@invalid",
                               *args], capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    def edit_yaml(self, rel: str, change: Callable[[dict], None]) -> None:
        f = self.path / "inventory" / rel
        data = yaml.safe_load(f.read_text()) if f.exists() else {}
        change(data)
        f.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


class Host:
    """What must not change on a server that the rollout did not touch."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.conf_sha256 = lab.sha256(name, CONF)[CONF]
        self.pid = lab.agent_status(name)["pid"]
        self.record = lab.exec(name, "sh", "-c", f"cat {RECORD} 2>/dev/null || echo missing").stdout

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Host({vars(self)})"


def snapshot(lab: Lab) -> dict[str, Host]:
    return {s: Host(lab, s) for s in lab.servers}


def all_established(sampler: BirdSampler, names: list[str]) -> list[tuple[float, dict[str, str]]]:
    """Samples in which one of NAMES was not Established."""
    return [(t, sessions) for t, sessions, _ in sampler.samples
            if any(sessions.get(n) != "Established" for n in names)]


@pytest.fixture(scope="module")
def desired(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desired]:
    yield Desired(tmp_path_factory.mktemp("desired"), lab.inventory)


def rollout(lab: Lab, desired: Desired, ref: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **lab.env, "ANSIBLE_PLAYBOOK": str(lab.repo / ".venv/bin/ansible-playbook")}
    extra = {"fleet_bgp_rollout_batches": [1, "100%"], "fleet_bgp_rollout_gate_timeout": GATE_TIMEOUT}
    cmd = [str(lab.repo / "scripts/fleetbgp-rollout"), "--repo", str(desired.path), "--ref", ref,
           "--workdir", str(workdir), "--", "-e", json.dumps(extra)]
    return subprocess.run(cmd, cwd=lab.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=ROLLOUT_TIMEOUT, check=False)


def test_invalid_commit_changes_nothing_anywhere(lab: Lab, desired: Desired, tmp_path: Path) -> None:
    # srv3 alone gets a route that is no IPv4 prefix: its config fails `fleetbgp validate`.
    desired.edit_yaml("host_vars/srv3.yml", lambda d: d.update(
        fleet_bgp_routes=[{"prefix": "100.10.0.300/32"}]))
    desired.commit("srv3: a broken prefix")
    desired.git("tag", "broken-srv3")
    before = snapshot(lab)
    with BirdSampler(lab, ANYCAST) as sampler:
        proc = rollout(lab, desired, "broken-srv3", tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "does not validate" in proc.stdout and "100.10.0.300" in proc.stdout, proc.stdout
    assert snapshot(lab) == before, "a host changed although one config did not validate"
    assert not sampler.gaps() and sampler.min_paths() == len(lab.servers), sampler.samples
    assert not all_established(sampler, lab.servers)
    desired.git("revert", "--no-edit", "HEAD")


def test_good_commit_rolls_out_everywhere_without_a_gap(lab: Lab, desired: Desired, tmp_path: Path) -> None:
    desired.edit_yaml("group_vars/bgp_servers/main.yml", lambda d: d["fleet_bgp_routes"].append(
        {"prefix": NEW_ANYCAST, "communities": ["65001:100"]}))
    sha = desired.commit(f"announce {NEW_ANYCAST} from every server")
    before = snapshot(lab)
    with BirdSampler(lab, ANYCAST) as sampler:
        proc = rollout(lab, desired, "main", tmp_path)
    assert proc.returncode == 0, proc.stdout
    for s in lab.servers:
        record = json.loads(lab.exec(s, "cat", RECORD).stdout)
        assert (record["sha"], record["ref"], record["mode"]) == (sha, "main", "push"), record
        assert record["config_sha256"] == lab.sha256(s, CONF)[CONF] == lab.agent_status(s)["config_sha256"]
        assert record["config_sha256"] != before[s].conf_sha256
        assert lab.agent_status(s)["pid"] == before[s].pid, f"{s}: the agent restarted (a reload was enough)"
        mode = lab.exec(s, "stat", "-c", "%U:%G %a", RECORD).stdout.split()
        assert mode == ["root:fleetbgp", "640"], mode
    assert lab.paths(NEW_ANYCAST) == {lab.addr(s) for s in lab.servers}
    # The inventory's primary/backup route is announced by srv1 and srv2 again (test_route_plan withdrew it).
    lab.wait_until(lambda: lab.path_hosts(SERVICE) == set(SERVICE_ANNOUNCERS), 60, f"{SERVICE} back at BIRD")
    lab.wait_converged()
    # BIRD kept every server's path for the anycast prefix and every session at every sample.
    assert sampler.samples and not sampler.gaps()
    assert sampler.min_paths() == len(lab.servers), sampler.samples
    assert not all_established(sampler, lab.servers)
    # fleet.bgp.status shows the revision and finds no drift.
    status = lab.playbook("fleet.bgp.status").stdout
    assert f"revision: all hosts at {sha[:12]} (main)" in status, status


def test_broken_canary_is_restored_and_nothing_else_touched(lab: Lab, desired: Desired, tmp_path: Path) -> None:
    # Valid config, wrong peer AS: the router (AS 65000) is refused by every server's agent.
    desired.edit_yaml("group_vars/bgp_servers/main.yml", lambda d: d["fleet_bgp_neighbors"][0].update(
        peer_as=65099))
    desired.commit("wrong peer-as")
    canary, *others = lab.servers
    before = snapshot(lab)
    with BirdSampler(lab, ANYCAST) as sampler:
        proc = rollout(lab, desired, "main", tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert f"ROLLOUT STOPPED at {canary}" in proc.stdout and "restored from backup" in proc.stdout, proc.stdout
    assert "health gate failed" in proc.stdout, proc.stdout
    # The others were never touched: same config, same agent process, same record.
    after = snapshot(lab)
    for s in others:
        assert after[s] == before[s], s
    # The canary runs its previous config again (same file, same record), and its session is back.
    assert after[canary].conf_sha256 == before[canary].conf_sha256
    assert after[canary].record == before[canary].record
    assert lab.agent_status(canary)["config_sha256"] == before[canary].conf_sha256
    deadline = time.monotonic() + 30
    while lab.sessions().get(canary) != "Established" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lab.sessions().get(canary) == "Established", lab.sessions()
    # The canary's session did go down (the change was really made), the others' never did, and BIRD
    # had a path for the anycast prefix at every sample.
    assert any(sessions.get(canary) != "Established" for _, sessions, _ in sampler.samples)
    assert not all_established(sampler, others)
    assert sampler.samples and not sampler.gaps(), sampler.gaps()
