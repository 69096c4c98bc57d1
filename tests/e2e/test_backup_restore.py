"""Issue 6, proof 4 and 5: fleet.bgp.backup / fleet.bgp.restore on the e2e lab fleet.

4. Back up srv1, delete its config and its unit, restore: every file of the backup is back with the
   same sha256, owner and mode, the unit is enabled again and BIRD sees the session Established.
5. A corrupted and a truncated archive are refused at step 'verify'; the host is unchanged (sha256 of
   its files, the agent's pid, the BGP session's start time at BIRD).
Also the off-host copy: a backup of srv2 copied to the controller (fleet_bgp_backup_fetch) restores srv2
after its config, unit and every archive on it are gone (`-e fleet_bgp_restore_src=CONTROLLER_COPY`); the copy is 0600 in
0700 folders.
The e2e inventory encrypts secrets.env in the archives with a key from its vault: the tests also
check that the archive does not hold the MD5 password in clear and that no output shows the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_lab import AGENT, SERVICE, Lab

HOST = "srv1"
TOOL = "/usr/local/sbin/fleetbgp-backup"
BACKUP_DIR = "/var/backups/fleetbgp"
CONF = "/etc/fleetbgp/fleetbgp.conf"
SECRETS = "/etc/fleetbgp/secrets.env"
UNIT = "/etc/systemd/system/fleetbgp.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/fleetbgp.service"


def vault_key(lab: Lab) -> str:
    """The lab's backup key, decrypted from the e2e inventory's vault (to check it never shows)."""
    vault = lab.inventory / "group_vars/bgp_servers/vault.yml"
    out = subprocess.run([str(lab.repo / ".venv/bin/ansible-vault"), "view", str(vault)],
                         env={**lab.env, "PATH": lab.env["PATH"]}, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    m = re.search(r'vault_e2e_backup_key:\s*"([^"]+)"', out)
    assert m, f"no vault_e2e_backup_key in {vault}"
    return m.group(1)


def host_state(lab: Lab, files: list[str]) -> dict[str, object]:
    """What must not change when a restore is refused: the files, the agent's process, its BGP
    session (established at the same moment, never flapped) and the archives."""
    neighbors = json.loads(lab.exec(HOST, AGENT, "show", "neighbors", "--json").stdout)["neighbors"]
    return {"sha256": lab.sha256(HOST, *files), "pid": lab.agent_status(HOST)["pid"],
            "sessions": [(n["state"], n["established_since"], n["flaps"]) for n in neighbors],
            "archives": sorted(lab.exec(HOST, "ls", BACKUP_DIR).stdout.split())}


@pytest.fixture(scope="module")
def backup(lab: Lab) -> Iterator[dict[str, object]]:
    """One backup of srv1 taken with the fleet.bgp.backup playbook: {id, path, files, output}."""
    lab.wait_converged()
    out = lab.playbook("fleet.bgp.backup", "--limit", HOST).stdout
    m = re.search(rf"{HOST}: backup (\S+) in (\S+) \((\d+) files, secrets encrypted", out)
    assert m, f"the backup playbook did not say where the backup went:\n{out}"
    backup_id, path = m.group(1), m.group(2)
    assert path == f"{BACKUP_DIR}/{backup_id}.tar.gz"
    verified = json.loads(lab.exec(HOST, TOOL, "--json", "verify", backup_id).stdout)["result"]
    yield {"id": backup_id, "path": path, "files": verified["files"], "output": out}


def test_backup_content(lab: Lab, backup: dict[str, object]) -> None:
    files = backup["files"]
    assert isinstance(files, list)
    for must in (CONF, SECRETS, UNIT):
        assert must in files, f"{must} is not in the backup ({files})"
    # Archive and checksum file root-only; the timer is installed and scheduled.
    modes = lab.exec(HOST, "stat", "-c", "%a %U", BACKUP_DIR, str(backup["path"]),
                     f"{backup['path']}.sha256").stdout.split("\n")
    assert modes[:3] == ["700 root", "600 root", "600 root"], modes
    assert lab.exec(HOST, "systemctl", "is-enabled", "fleetbgp-backup.timer").stdout.strip() == "enabled"
    # secrets.env is stored encrypted: no MD5 password in clear anywhere in the archive.
    secret_values = [line.split("=", 1)[1].strip().strip('"') for line in
                     lab.exec(HOST, "cat", SECRETS).stdout.splitlines() if "=" in line]
    assert secret_values, "the lab's secrets.env holds no password"
    raw = base64.b64decode(lab.exec(HOST, "sh", "-c", f"tar -xzOf {backup['path']} | base64 -w0").stdout)
    assert len(raw) > 100
    for value in secret_values:
        assert value.encode() not in raw
    members = lab.exec(HOST, "tar", "-tzf", str(backup["path"])).stdout.split()
    assert f"files{SECRETS}.enc" in members and f"files{SECRETS}" not in members
    # The key never shows in what Ansible printed.
    assert vault_key(lab) not in str(backup["output"])
    # The tool on the host is the role's (no stale copy), with its #! line.
    tool = b"#!/usr/bin/python3\n" + (lab.repo / "roles/backup/files/fleetbgp_backup.py").read_bytes()
    assert lab.sha256(HOST, TOOL)[TOOL] == hashlib.sha256(tool).hexdigest()


def test_damaged_archives_are_refused(lab: Lab, backup: dict[str, object]) -> None:
    """Corrupted (one byte flipped, checksum file of the original) and truncated (half of it, its
    checksum file recomputed so that only reading the archive can tell): both refused at 'verify'."""
    lab.wait_converged()
    files = list(backup["files"])  # type: ignore[call-overload]
    path = str(backup["path"])
    damaged = {
        # ids that sort before any real one, so that `latest` never picks them
        # the middle byte replaced by its complement (never by a constant, which may be what is there)
        "00000000T000000Z-corrupted": (
            f"cp {path} {{a}} && mid=$(( $(stat -c %s {{a}}) / 2 )) && "
            f"b=$(dd if={{a}} bs=1 skip=$mid count=1 status=none | od -An -tu1) && "
            f"printf \"\\\\$(printf %03o $((255 - b)))\" | dd of={{a}} bs=1 seek=$mid conv=notrunc status=none && "
            f"sed 's/ .*/  {{n}}/' {path}.sha256 > {{a}}.sha256"),
        "00000000T000000Z-truncated": (
            f"head -c $(( $(stat -c %s {path}) / 2 )) {path} > {{a}} && "
            f"(cd {BACKUP_DIR} && sha256sum {{n}} > {{a}}.sha256)"),
    }
    try:
        for damaged_id, recipe in damaged.items():
            archive = f"{BACKUP_DIR}/{damaged_id}.tar.gz"
            lab.exec(HOST, "sh", "-ec", recipe.format(a=archive, n=f"{damaged_id}.tar.gz"))
            before = host_state(lab, files)
            result = lab.playbook("fleet.bgp.restore", "--limit", HOST, extra_vars={"fleet_bgp_restore_id": damaged_id},
                                  check=False)
            assert result.returncode != 0, f"a {damaged_id} archive was restored:\n{result.stdout}"
            assert f"restore of {damaged_id} on {HOST} refused at step 'verify'" in result.stdout, result.stdout
            assert "Nothing on the host was changed" in result.stdout
            expect = "corrupted or truncated" if "corrupted" in damaged_id else "damaged or truncated"
            assert expect in result.stdout, result.stdout
            assert host_state(lab, files) == before, f"the host changed after refusing {damaged_id}"
        assert lab.sessions()[HOST] == "Established"
    finally:
        lab.exec(HOST, "sh", "-c", f"rm -f {BACKUP_DIR}/00000000T000000Z-*", check=False)


def test_delete_config_and_unit_then_restore(lab: Lab, backup: dict[str, object]) -> None:
    files = list(backup["files"])  # type: ignore[call-overload]
    meta = [CONF, SECRETS, UNIT]
    before = lab.sha256(HOST, *files)
    before_meta = lab.exec(HOST, "stat", "-c", "%n %a %U %G", *meta).stdout
    assert lab.exec(HOST, "readlink", WANTS).stdout.strip() == UNIT
    # Disaster: the config, the unit and its enablement gone, and a service address with them.
    lab.exec(HOST, "rm", "-f", CONF, UNIT, WANTS)
    lab.exec(HOST, "systemctl", "daemon-reload")
    lab.exec(HOST, "ip", "address", "del", SERVICE, "dev", "lo")
    assert lab.sha256(HOST, CONF, UNIT) == {CONF: "missing", UNIT: "missing"}
    try:
        out = lab.playbook("fleet.bgp.restore", "--limit", HOST, extra_vars={"fleet_bgp_restore_id": backup["id"]}).stdout
        assert f"{HOST}: restored backup {backup['id']} (restart), 2/2 sessions Established" in out, out
        # The restore replayed the service addresses' record: the address the config announces is back.
        assert SERVICE in lab.exec(HOST, "ip", "-o", "address", "show", "dev", "lo").stdout
        assert lab.sha256(HOST, *files) == before
        assert lab.exec(HOST, "stat", "-c", "%n %a %U %G", *meta).stdout == before_meta
        assert lab.exec(HOST, "systemctl", "is-enabled", "fleetbgp.service").stdout.strip() == "enabled"
        status = lab.agent_status(HOST)
        assert status["established"] == 2  # the IPv4 and the IPv6 session
        lab.wait_converged()  # BIRD: srv1 Established and its paths back
        # The pre-restore snapshot of the broken state was kept, and `latest` is still the backup.
        ids = lab.exec(HOST, TOOL, "list").stdout.split()
        assert any(i.endswith("-pre-restore") for i in ids)
        latest = json.loads(lab.exec(HOST, TOOL, "--json", "verify", "latest").stdout)["result"]["id"]
        assert latest == backup["id"]
        assert vault_key(lab) not in out
    except BaseException:
        lab.reset()  # leave a working lab for the other tests
        raise


def test_restore_that_breaks_bgp_is_put_back(lab: Lab) -> None:
    """A backup whose config validates but cannot establish (wrong peer-as): the restore fails at
    step 'check', puts the previous files back, and the session is Established again."""
    lab.wait_converged()
    files = [CONF, SECRETS, UNIT]
    before = lab.sha256(HOST, *files)
    # A backup of a broken config, taken without the agent ever loading it.
    lab.exec(HOST, "sh", "-ec", f"cp -p {CONF} /root/conf.good && sed -i 's/peer-as 65000;/peer-as 65099;/' {CONF} "
             f"&& grep -q 'peer-as 65099;' {CONF} && {TOOL} create >/dev/null; cp -p /root/conf.good {CONF}")
    bad_id = lab.exec(HOST, TOOL, "list").stdout.split()[-1]
    assert lab.sha256(HOST, *files) == before
    try:
        result = lab.playbook("fleet.bgp.restore", "--limit", HOST, check=False,
                              extra_vars={"fleet_bgp_restore_id": bad_id, "fleet_bgp_restore_timeout": 8})
        assert result.returncode != 0, result.stdout
        assert f"restore of {bad_id} on {HOST} failed at step 'check'" in result.stdout, result.stdout
        assert "Put back the files as they were before the restore" in result.stdout, result.stdout
        assert lab.sha256(HOST, *files) == before
        status = lab.agent_status(HOST)
        assert status["config_sha256"] == before[CONF]
        # The agent runs the good config again. BIRD refused the session with the wrong AS and now
        # holds it back for its "error wait time" (60 s at first): skip that wait on the router side.
        if lab.sessions()[HOST] != "Established":
            lab.birdc("restart", HOST)
        lab.wait_converged()
    except BaseException:
        lab.reset()
        raise
    finally:
        lab.exec(HOST, "sh", "-c", f"rm -f /root/conf.good {BACKUP_DIR}/{bad_id}.tar.gz*", check=False)


def test_controller_copy_restores_a_host_that_lost_its_archives(lab: Lab, tmp_path: Path) -> None:
    host = "srv2"
    lab.wait_converged()
    fetch_dir = tmp_path / "fleetbgp-backups"
    out = lab.playbook("fleet.bgp.backup", "--limit", host,
                       extra_vars={"fleet_bgp_backup_fetch": True, "fleet_bgp_backup_fetch_dir": str(fetch_dir)}).stdout
    m = re.search(rf"{host}: backup (\S+) in (\S+) \(.*, controller copy (\S+?)[,\"\s]", out)
    assert m, f"the backup playbook did not name the controller copy:\n{out}"
    backup_id, path, copy = m.group(1), m.group(2), Path(m.group(3))
    assert copy == fetch_dir / host / f"{backup_id}.tar.gz", copy
    # The copy is the host's archive, byte for byte, with its checksum file beside it.
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert lab.sha256(host, path)[path] == digest
    assert (copy.parent / f"{copy.name}.sha256").read_text().split()[0] == digest
    # The archive holds secrets.env (encrypted here; in clear wherever no key is set): on the controller
    # it is the controller user's only, as it is root's only on the host (issue 18).
    for f in (copy, copy.parent / f"{copy.name}.sha256"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f}: {oct(f.stat().st_mode)}"
    for d in (fetch_dir, copy.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, f"{d}: {oct(d.stat().st_mode)}"
    files = list(json.loads(lab.exec(host, TOOL, "--json", "verify", backup_id).stdout)["result"]["files"])
    before = lab.sha256(host, *files)

    # Disaster on the host: the config, the unit and every archive gone; only the controller has a copy.
    lab.exec(host, "sh", "-c", f"rm -rf {CONF} {UNIT} {WANTS} {BACKUP_DIR}/* && systemctl daemon-reload")
    assert lab.exec(host, TOOL, "list").stdout.split() == []
    try:
        out = lab.playbook("fleet.bgp.restore", "--limit", host, extra_vars={"fleet_bgp_restore_src": str(copy)}).stdout
        assert f"{host}: restored backup {backup_id} (restart), 2/2 sessions Established" in out, out
        assert lab.sha256(host, *files) == before
        assert lab.exec(host, "systemctl", "is-enabled", "fleetbgp.service").stdout.strip() == "enabled"
        assert backup_id in lab.exec(host, TOOL, "list").stdout.split(), "the uploaded archive stays on the host"
        lab.wait_converged()
        assert vault_key(lab) not in out
    except BaseException:
        lab.reset()
        raise
