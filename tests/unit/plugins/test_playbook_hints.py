"""The commands the playbooks print for the operator to paste ("Undo: ansible-playbook ...") work when
pasted: they carry the inventory sources of the run (ansible_inventory_sources: absolute paths, comma
lists as given), quoted for the shell. The drain's hint is rendered by ansible-playbook itself from
playbooks/drain.yml, then run as printed (with --list-hosts) from another directory."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# The inventory part of every printed command (drain.yml, roles/agent/tasks/restart_host.yml).
INVENTORY_ARGS = "{{ ansible_inventory_sources | map('quote') | map('regex_replace', '^', '-i ') | join(' ') }}"


def run(args: list[str], cwd: Path, collections: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCAL_TEMP=str(cwd / "tmp"))
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=240, check=False)


def test_drain_undo_hint_is_a_command_that_works_when_pasted(tmp_path, collections_path):
    drain = yaml.safe_load((REPO / "playbooks/drain.yml").read_text())
    (msg,) = [t["ansible.builtin.debug"]["msg"] for play in drain for t in play.get("tasks", [])
              if t.get("name") == "Drained"]
    play = [{"hosts": "bgp_servers", "gather_facts": False,
             "vars": {"fleet_bgp_drain__mine": {"status": {"maintenance_mode": "withdraw"}}},
             "tasks": [{"name": "Drained", "ansible.builtin.debug": {"msg": msg}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    inventory = tmp_path / "my inventory" / "hosts.yml"  # a space: the hint must quote it
    inventory.parent.mkdir()
    inventory.write_text("bgp_servers:\n  hosts:\n    srv1: {ansible_connection: local}\n")

    # relative paths on the command line: the hint has them absolute, to work from any directory
    out = run([str(BIN / "ansible-playbook"), "-i", "my inventory/hosts.yml", "-i", "srv9,", "play.yml",
               "--limit", "srv1"], tmp_path, collections_path)
    assert out.returncode == 0, out.stdout + out.stderr
    printed = json.loads(re.search(r'"msg": ("(?:[^"\\]|\\.)*")', out.stdout).group(1))
    assert printed.startswith("srv1 drained (withdraw): every route withdrawn."), printed
    undo = printed.split("Undo: ", 1)[1]
    argv = shlex.split(undo)
    assert argv == ["ansible-playbook", "fleet.bgp.undrain", "-i", str(inventory), "-i", "srv9,",
                    "--limit", "srv1"], undo

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pasted = run([str(BIN / argv[0]), *argv[1:], "--list-hosts"], elsewhere, collections_path)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert re.search(r"hosts \(1\):\s+srv1\b", pasted.stdout), pasted.stdout


def test_every_printed_undrain_command_carries_the_inventory():
    for path in ("playbooks/drain.yml", "roles/agent/tasks/restart_host.yml"):
        text = " ".join((REPO / path).read_text().split())
        hints = re.findall(r"ansible-playbook fleet\.bgp\.undrain (.{0,200})", text)
        assert hints, f"{path}: no printed undrain command"
        for hint in hints:
            assert hint.startswith(INVENTORY_ARGS), f"{path}: {hint}"
