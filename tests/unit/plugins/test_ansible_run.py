"""The modules through Ansible itself (AnsiballZ, connection local): a playbook against the agent's
real control server where only module_defaults of the action group fleet.bgp.agent (meta/runtime.yml)
gives the socket, and the collection built with `ansible-galaxy collection build` and installed from
its tarball - which also checks that the module_utils symlink to the agent's client survives the build
and the install - with the tags of its playbooks (`--list-tags`) as README.md documents them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from control_fakes import sample_speaker, served

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  # The socket comes only from module_defaults of the action group (meta/runtime.yml): no task names it.
  module_defaults:
    group/fleet.bgp.agent:
      socket: "{{ lookup('env', 'FLEETBGP_TEST_SOCKET') }}"
      timeout: 12
  tasks:
    - name: State, waiting for the sessions that are up
      fleet.bgp.agent_info:
        neighbors: [192.0.2.1, "2001:db8::1"]
        wait_for: established
      register: info

    - name: Announce, check mode first
      fleet.bgp.route:
        prefix: 100.10.42.0/24
        med: 100
      check_mode: true
      diff: true
      register: check

    - name: Announce
      fleet.bgp.route:
        prefix: 100.10.42.0/24
        med: 100
      register: first

    - name: Announce again
      fleet.bgp.route:
        prefix: 100.10.42.0/24
        med: 100
      register: second

    - name: No FlowSpec rule of that name (the sample agent has no FlowSpec session)
      fleet.bgp.flowspec:
        name: block-net
        state: absent
      register: flow

    - name: The rules
      fleet.bgp.flowspec_info:
      register: flows

    - name: Drain
      fleet.bgp.maintenance:
        state: drained
      register: drain

    - name: Read back (a task option next to module_defaults)
      fleet.bgp.agent_info:
        include_routes: true
        timeout: 5
      register: after

    - name: What the tasks did
      ansible.builtin.assert:
        that:
          - info.established == 2 and info.configured == 2
          - info.status.version == '0.1.0'
          - check is changed and first is changed and second is not changed
          - first.route.neighbors | length == 3
          - flow is not changed and flows.rules == [] and flows.rule is none
          - drain is changed and after.status.maintenance
          - after.routes | selectattr('prefix', 'equalto', '100.10.42.0/24') | list | length == 3
"""


def ansible(args, collections, socket_path, cwd):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), FLEETBGP_TEST_SOCKET=socket_path,
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCAL_TEMP=str(cwd / "tmp"),
               ANSIBLE_REMOTE_TEMP=str(cwd / "rtmp"))
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=240, check=False)


@pytest.mark.timeout(240)
def test_playbook_runs_all_modules(tmp_path, collections_path):
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    speaker = sample_speaker()
    with served(speaker) as (_s, path, _lt):
        out = ansible([str(BIN / "ansible-playbook"), "-i", "localhost,", str(book)], collections_path, path,
                      tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "failed=0" in out.stdout
    assert speaker.maintenance is True


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The collection built with ansible-galaxy and installed from its tarball: a collections path."""
    tmp = tmp_path_factory.mktemp("galaxy")
    build = tmp / "build"
    out = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(build),
                          str(REPO)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    tarball = next(build.glob("fleet-bgp-*.tar.gz"))
    path = tmp / "installed"
    out = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p",
                          str(path), str(tarball)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return path


@pytest.mark.checkout  # builds from galaxy.yml; `ansible-test units` runs this file on the installed tarball
@pytest.mark.timeout(240)
def test_collection_installed_from_the_built_tarball_works(tmp_path, installed):
    link = installed / "ansible_collections" / "fleet" / "bgp" / "plugins" / "module_utils" / "fleetbgp_control.py"
    assert link.is_file(), "the module_utils client (a link into agent/) is missing from the installed collection"
    with served(sample_speaker()) as (_s, path, _lt):
        out = ansible([str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                       "-m", "fleet.bgp.agent_info", "-a", f"socket={path}"], installed, path, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"configured": 3' in out.stdout


# The tags of each playbook, as README.md "Tags" documents them: fleet_bgp (everything the collection
# does), fleet_bgp_ROLE for each role, the agent's and monitoring's finer ones, `always` for the
# checks that must run whatever the selection (option resolution, the agent's preflight).
SITE_ROLE_TAGS = {f"fleet_bgp_{r}" for r in ("monitoring", "sysctl", "service_addresses", "firewall", "agent",
                                             "logging", "backup")}
PLAYBOOK_TAGS = {
    "site": {"always", "fleet_bgp", "fleet_bgp_plan", *SITE_ROLE_TAGS, "fleet_bgp_nrpe", "fleet_bgp_prometheus",
             "fleet_bgp_alertmanager", "fleet_bgp_grafana", "fleet_bgp_preflight", "fleet_bgp_user", "fleet_bgp_dirs",
             "fleet_bgp_install", "fleet_bgp_config", "fleet_bgp_service"},
    "backup": {"fleet_bgp", "fleet_bgp_backup"},
    "restore": {"always", "fleet_bgp", "fleet_bgp_backup"},
    "rollout": {"fleet_bgp", "fleet_bgp_rollout"},
    "rollout_pull": {"fleet_bgp", "fleet_bgp_rollout"},
    "drain": {"always", "fleet_bgp", "fleet_bgp_agent"},
    "restart": {"fleet_bgp", "fleet_bgp_agent"},
    "undrain": {"always"},
    "status": set(),
    "mitigate": {"always"},
}


@pytest.mark.checkout  # builds from galaxy.yml and reads README.md
@pytest.mark.timeout(240)
def test_every_role_has_its_documented_tags_in_the_installed_playbooks(tmp_path, installed):
    playbooks = sorted(p.stem for p in (REPO / "playbooks").glob("*.yml"))
    assert playbooks == sorted(PLAYBOOK_TAGS)
    out = ansible([str(BIN / "ansible-playbook"), "-i", "localhost,", "--list-tags",
                   *(f"fleet.bgp.{p}" for p in playbooks)], installed, "", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    found = {}
    for block in re.split(r"^playbook: ", out.stdout, flags=re.M)[1:]:
        name = Path(block.splitlines()[0].strip()).stem
        found[name] = {t for tags in re.findall(r"TASK TAGS: \[(.*)\]", block) for t in tags.split(", ") if t}
    assert found == PLAYBOOK_TAGS
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
    everywhere = set().union(*found.values())
    assert {f"fleet_bgp_{r}" for r in roles} <= everywhere, "a role without its fleet_bgp_ROLE tag"
    readme = (REPO / "README.md").read_text()
    tags_section = readme.split("\n### Tags\n", 1)[1].split("\n#", 1)[0]
    for tag in sorted(everywhere - {"always"}):
        assert f"`{tag}`" in tags_section, f"README.md, Tags: {tag} is not documented"
