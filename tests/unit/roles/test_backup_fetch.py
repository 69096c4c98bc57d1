"""fleet.bgp.backup's controller copy (fleet_bgp_backup_fetch, roles/backup/tasks/fetch.yml) through
ansible-playbook itself, with connection local standing in for the host: the archive holds secrets.env,
so the copies must be the controller user's only - files 0600, every folder the role makes or uses for
them 0700 - whatever the umask and whatever an older version left. The whole take -> fetch -> restore
path on real hosts is tests/e2e/test_backup_restore.py (test_controller_copy_restores_...)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: A backup as tasks_from=take leaves it (the archive, and its .sha256 beside it)
      ansible.builtin.set_fact:
        fleet_bgp_backup_taken: {id: "20261207T031502.417Z", path: "{{ archive }}", fetched: ""}

    - name: Copy it to the controller
      ansible.builtin.include_role:
        name: fleet.bgp.backup
        tasks_from: fetch

    - name: Where it went
      ansible.builtin.debug:
        msg: "fetched={{ fleet_bgp_backup_taken.fetched }}"
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_controller_copy_is_owner_only(tmp_path: Path) -> None:
    collections = tmp_path / "collections"
    (collections / "ansible_collections" / "fleet").mkdir(parents=True)
    (collections / "ansible_collections" / "fleet" / "bgp").symlink_to(REPO, target_is_directory=True)
    # srv1: nothing exists yet (a missing parent too); srv2: what an older version left, 0755 / 0644
    new_dir = tmp_path / "new" / "fleetbgp-backups"
    old_dir = tmp_path / "old"
    (old_dir / "srv2").mkdir(parents=True)
    (old_dir / "srv2" / "older.tar.gz").write_text("older")
    for d in (old_dir, old_dir / "srv2"):
        d.chmod(0o755)
    archives = {}
    for host in ("srv1", "srv2"):
        archive = tmp_path / "host" / host / "20261207T031502.417Z.tar.gz"
        archive.parent.mkdir(parents=True)
        archive.write_text(f"FLEETBGP_MD5_192_0_2_1=secret-of-{host}\n")
        Path(f"{archive}.sha256").write_text(f"0000  {archive.name}\n")
        archive.chmod(0o600)  # root-only on the host
        archives[host] = archive
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        f"    srv1: {{archive: '{archives['srv1']}', fleet_bgp_backup_fetch_dir: '{new_dir}'}}\n"
        f"    srv2: {{archive: '{archives['srv2']}', fleet_bgp_backup_fetch_dir: '{old_dir}'}}\n"
        f"  vars: {{ansible_connection: local, ansible_python_interpreter: '{sys.executable}'}}\n"
    )
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "rtmp"))
    old_umask = os.umask(0o022)  # a common controller umask: what fetch alone would write 0644 under
    try:
        out = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "play.yml"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=240, check=False)
    finally:
        os.umask(old_umask)
    assert out.returncode == 0, out.stdout + out.stderr

    for host, top in (("srv1", new_dir), ("srv2", old_dir)):
        copy = top / host / archives[host].name
        assert f"fetched={copy}" in out.stdout, out.stdout
        assert copy.read_text() == archives[host].read_text()
        for f in (copy, Path(f"{copy}.sha256")):
            assert mode(f) == 0o600, f"{f}: {oct(mode(f))}"
        for d in (top, top / host):
            assert mode(d) == 0o700, f"{d}: {oct(mode(d))}"
    assert mode(new_dir.parent) == 0o700, "a parent the role created is owner-only too"
