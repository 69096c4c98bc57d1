"""The fleet.bgp execution environment (execution-environment.yml, built by scripts/build-ee.sh) used the
way AWX uses it: ansible-runner with process isolation starts the EE image with podman and runs
ansible-playbook inside it, on a private data directory laid out like AWX's (project/ with the playbooks
and the vault-encrypted secrets in vault/, inventory/, env/). It runs fleet.bgp.status and a --check rollout (fleet.bgp.rollout) against the e2e lab
and proves the rollout changed nothing on any server.

How the EE reaches the lab's containers: the e2e inventory connects with `podman exec`, which needs the
host's podman and its storage, not available inside a container. The EE container runs with --pid=host,
--privileged and as root, and the hosts are reached with the community.docker.nsenter connection (nsenter
into the namespaces of the lab container's PID 1; ansible_nsenter_pid from `podman inspect`). That plugin
comes from the ansible package of the test's venv, mounted read-only into the EE for this run: the image
ships only what fleet.bgp needs; real fleets are reached over SSH (docs/operations/awx.md).
The EE's own network is `none`: everything it does on the hosts goes through nsenter.

Run: make ee (build + this test), or scripts/run-pytest.sh --root tests/ee -rP once the image exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_lab import Lab

IMAGE = os.environ.get("FLEETBGP_EE_IMAGE", "localhost/fleetbgp-ee:latest")
EE_PYTHON_BIN = "/opt/ee/bin"  # the venv of the EE (execution-environment.yml)
RUN_TIMEOUT = 900
CONF = "/etc/fleetbgp/fleetbgp.conf"
SECRETS = "/etc/fleetbgp/secrets.env"
UNIT = "/etc/systemd/system/fleetbgp.service"
RECORD = "/var/lib/fleetbgp/deployed.json"
# What the EE's project holds: AWX job templates run a playbook FILE of the project, so the
# collection's playbooks are imported by one-line wrappers (docs/operations/awx.md).
WRAPPERS = {"status.yml": "fleet.bgp.status", "rollout.yml": "fleet.bgp.rollout"}

pytestmark = [pytest.mark.ee, pytest.mark.timeout(int(os.environ.get("FLEETBGP_E2E_TIMEOUT", "1800")))]


def _host_state(lab: Lab, name: str) -> dict[str, Any]:
    """What a --check run must leave as it is on a server: deployed files, the agent's process, the
    rollout record, the backups."""
    record = lab.exec(name, "sh", "-c", f"cat {RECORD} 2>/dev/null || echo missing").stdout
    backups = lab.exec(name, "sh", "-c", "ls -l /var/backups/fleetbgp 2>/dev/null || echo none").stdout
    return {"sha256": lab.sha256(name, CONF, SECRETS, UNIT), "pid": lab.agent_status(name)["pid"],
            "record": record, "backups": backups}


def _community_docker() -> Path:
    spec = importlib.util.find_spec("ansible_collections.community.docker")
    assert spec and spec.submodule_search_locations, "community.docker is not in the venv (the ansible package)"
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _image_present() -> bool:
    return subprocess.run(["podman", "image", "exists", IMAGE], check=False, timeout=60).returncode == 0


def _private_data_dir(lab: Lab, root: Path) -> Path:
    """An ansible-runner private data directory: project/ (wrappers, ansible.cfg), inventory/ (a git
    checkout of the e2e inventory plus the nsenter connection), env/ (container settings)."""
    pdd = root / "runner"
    project = pdd / "project"
    project.mkdir(parents=True)
    # Each wrapper first loads the vault-encrypted secrets from project/vault/ (include_vars: host variables
    # that last for the whole run), then imports the collection's playbook.
    for name, playbook in WRAPPERS.items():
        (project / name).write_text(
            "---\n- name: Load the vault-encrypted secrets\n  hosts: all\n  gather_facts: false\n  tasks:\n"
            "    - name: Load them\n      ansible.builtin.include_vars:\n        dir: vault\n"
            f"- name: {playbook}\n  ansible.builtin.import_playbook: {playbook}\n")
    (project / "ansible.cfg").write_text(
        "[defaults]\nvault_password_file = /runner/vault-password\nretry_files_enabled = False\n"
        "display_skipped_hosts = False\nforks = 10\n")
    shutil.copy(lab.repo / "lab/fleet/vault-password", pdd / "vault-password")  # lab-only password
    (pdd / "vault-password").chmod(0o600)

    # The inventory as a desired-state checkout: fleet.bgp.rollout reads its commit with git, in the EE.
    inventory = pdd / "inventory"
    shutil.copytree(lab.inventory, inventory)
    # The vault-encrypted files (MD5 passwords, the backup key) in the project, not in the inventory, as
    # docs/operations/awx.md says for AWX (an inventory synced from a project cannot hold whole-file
    # vaults): the wrappers load them with include_vars at run time, decrypted with the vault password.
    # (Playbook-adjacent group_vars/ are NOT read for a collection playbook imported by a wrapper.)
    (project / "vault").mkdir()
    for vault in sorted(inventory.glob("group_vars/*/vault.yml")):
        shutil.move(vault, project / "vault" / f"{vault.parent.name}.yml")
    connection: dict[str, Any] = {}
    for name in [lab.router, lab.client, *lab.servers]:
        pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", lab.container(name)],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        connection[name] = {"ansible_connection": "community.docker.nsenter", "ansible_nsenter_pid": int(pid)}
    (inventory / "ee-connection.yml").write_text(
        "---\n# The EE reaches the lab's containers with nsenter (tests/ee/test_ee.py says why).\n"
        + yaml.safe_dump({"all": {"hosts": connection}}, sort_keys=False))
    git = ["git", "-C", str(inventory), "-c", "user.name=ee", "-c", "user.email=ee@invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, timeout=60)
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-q", "-m", "the e2e inventory"], check=True, timeout=60)

    env = pdd / "env"
    env.mkdir()
    (env / "settings").write_text(yaml.safe_dump({
        "process_isolation": True,
        "process_isolation_executable": "podman",
        "container_image": IMAGE,
        "container_options": ["--pid=host", "--privileged", "--user=0", "--network=none"],
        "container_volume_mounts": [
            f"{_community_docker()}:/usr/share/ansible/collections/ansible_collections/community/docker:ro"],
    }))
    (env / "envvars").write_text(yaml.safe_dump({"ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}))
    return pdd


def _runner(lab: Lab, pdd: Path, ident: str, playbook: str, *cmdline: str) -> tuple[int, str]:
    """ansible-runner run PDD -p PLAYBOOK in the EE; (exit status, playbook output). The output is also
    kept in .ee/runs/IDENT.txt for a look afterwards."""
    cmd = [str(lab.repo / ".venv/bin/ansible-runner"), "run", str(pdd), "-p", playbook, "--ident", ident]
    if cmdline:
        cmd += ["--cmdline", " ".join(cmdline)]
    env = {**os.environ, "CONTAINERS_CONF": str(lab.repo / "lab/images/containers.conf")}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    keep = lab.repo / ".ee" / "runs"
    keep.mkdir(parents=True, exist_ok=True)
    (keep / f"{ident}.txt").write_text(proc.stdout)
    return proc.returncode, proc.stdout


def _events(pdd: Path, ident: str) -> list[dict[str, Any]]:
    folder = pdd / "artifacts" / ident / "job_events"
    return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]


def _recap(out: str) -> dict[str, str]:
    """PLAY RECAP lines by host."""
    recap: dict[str, str] = {}
    seen = False
    for line in out.splitlines():
        seen = seen or line.startswith("PLAY RECAP")
        if seen and ":" in line and "ok=" in line:
            host, _, rest = line.partition(":")
            recap[host.strip()] = " ".join(rest.split())
    return recap


def test_status_and_check_rollout_through_the_ee(lab: Lab, tmp_path: Path) -> None:
    if not _image_present():
        pytest.fail(f"{IMAGE} is not built: run scripts/build-ee.sh (make ee builds it, then runs this test)")
    pdd = _private_data_dir(lab, tmp_path)
    before = {s: _host_state(lab, s) for s in lab.servers}

    rc, out = _runner(lab, pdd, "status", "status.yml")
    assert rc == 0, out
    table = [line for line in out.splitlines() if any(line.strip(' "').startswith(s) for s in lab.servers)]
    for s in lab.servers:
        assert any(s in line for line in table), f"no row for {s} in fleet.bgp.status's table:\n{out}"
    assert "DOWN" not in out, out
    print("fleet.bgp.status in the EE:\n" + "\n".join(table))

    rc, out = _runner(lab, pdd, "rollout-check", "rollout.yml", "--check", "--diff")
    assert rc == 0, out
    recap = _recap(out)
    assert set(lab.servers) <= set(recap), out
    assert all("failed=0" in r and "unreachable=0" in r for r in recap.values()), recap
    # The configs were validated by the EE's own fleetbgp (the venv that runs ansible-playbook), and the
    # revision was read with the EE's git from the inventory's checkout.
    validated = [e["event_data"]["res"]["cmd"][0] for e in _events(pdd, "rollout-check")
                 if e.get("event") == "runner_on_ok"
                 and e["event_data"].get("task") == "Validate the config with the controller's fleetbgp"]
    assert validated and all(c == f"{EE_PYTHON_BIN}/fleetbgp" for c in validated), validated
    head = subprocess.run(["git", "-C", str(pdd / "inventory"), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()
    assert f"Render and validate this host's config ({head[:12]})" in out, out
    print("fleet.bgp.rollout --check in the EE, PLAY RECAP:\n"
          + "\n".join(f"  {h}: {r}" for h, r in sorted(recap.items())))

    after = {s: _host_state(lab, s) for s in lab.servers}
    assert after == before, "the --check rollout changed a server"
    lab.wait_converged(timeout=30)
