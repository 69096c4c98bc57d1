"""The playbooks' options (issue 18): fleet_bgp_* names, the old names of 0.1.0 accepted from -e with a
deprecation warning naming the new one, and an inventory variable of an old name no longer read.

One real run: fleet.bgp.mitigate (its options cover every case: old names, new names, both, the
inventory) by ansible-playbook against the agent's real control server and FlowSpec rule manager on
the fake speaker; the other playbooks are checked from their YAML (the same options.yml does the work)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from control_fakes import FakePeer, FakeSpeaker, served

from fleetbgp.control_client import ControlClient
from fleetbgp.flows import FlowManager
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))
# The options of 0.1.0 and their names since 0.2.0 (README.md "Playbook options" lists them too).
RENAMED = {
    "drain.yml": {"force": "fleet_bgp_drain_force", "drain_mode": "fleet_bgp_drain_mode",
                  "drain_wait": "fleet_bgp_drain_wait", "drain_timeout": "fleet_bgp_drain_timeout"},
    "undrain.yml": {"undrain_timeout": "fleet_bgp_undrain_timeout"},
    "restore.yml": {"backup": "fleet_bgp_restore_id", "src": "fleet_bgp_restore_src",
                    "restore_serial": "fleet_bgp_restore_serial"},
    "mitigate.yml": {old: f"fleet_bgp_mitigate_{'action' if old == 'mitigation' else old}" for old in (
        "mitigation", "force", "source", "destination", "protocol", "dport", "rate", "target", "expires",
        "neighbors", "rule", "all")},
}


def test_every_old_name_is_hidden_from_the_inventory_and_read_only_through_options():
    for path in PLAYBOOKS:
        if path.name not in RENAMED:
            continue
        plays = yaml.safe_load(path.read_text())
        [play] = [p for p in plays if "fleet_bgp__options" in p.get("vars", {})]
        options = {o["old"]: o["new"] for o in play["vars"]["fleet_bgp__options"]}
        assert options == RENAMED[path.name], path.name
        for old in options:
            assert old in play["vars"] and play["vars"][old] is None, f"{path.name}: {old} is not nulled in vars"
        assert play["tasks"][0] == {"name": "Options", "ansible.builtin.import_tasks": "tasks/options.yml"}
        # outside the option list, an old name is read only by restore's serial (templated before any task)
        rest = [{k: v for k, v in p.items() if k != "vars"} for p in plays] + [
            v for p in plays for k, v in p.get("vars", {}).items() if k not in options and k != "fleet_bgp__options"]
        names = jinja_names(rest)
        for old in options:
            allowed = 2 if old == "restore_serial" else 0
            assert names.count(old) <= allowed, f"{path.name}: {old} is still read directly"


CONDITIONS = ("when", "that", "until", "failed_when", "changed_when")


def jinja_names(node, key=None) -> list[str]:
    """Every name a template or condition in node reads (string literals and attributes left out)."""
    if isinstance(node, dict):
        return [n for k, v in node.items() for n in jinja_names(v, k)]
    if isinstance(node, list):
        return [n for v in node for n in jinja_names(v, key)]
    if not isinstance(node, str):
        return []
    parts = [node] if key in CONDITIONS else re.findall(r"\{[{%](.*?)[%}]\}", node, re.S)
    code = re.sub(r"'[^']*'|\"[^\"]*\"", "", " ".join(parts))
    return re.findall(r"(?<![\w.])[A-Za-z_]\w*", code)


def flow_agent():
    peer = FakePeer("192.0.2.1", families=(IPV4_UNICAST, IPV4_FLOWSPEC))
    peer.established = object()
    speaker = FakeSpeaker([peer])
    speaker.config = SimpleNamespace(neighbors=())
    speaker.flows = FlowManager(speaker)
    return speaker


def mitigate(tmp_path, collections, socket, *extra, host_vars=None):
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"bgp_servers": {"hosts": {"srv1": {
        "ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": sys.executable,
        "fleet_bgp_control_socket": socket, **(host_vars or {})}}}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_DEPRECATION_WARNINGS="1", COLUMNS="400")
    args = [a for pair in extra for a in ("-e", pair)]
    out = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "fleet.bgp.mitigate", *args],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240, check=False)
    return out.returncode, " ".join((out.stdout + out.stderr).split())


def ansible_core_version() -> tuple[int, int]:
    from ansible.release import __version__
    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


@pytest.mark.timeout(240)
def test_mitigate_old_names_warn_new_names_win_inventory_does_not_leak(tmp_path, collections_path):
    speaker = flow_agent()
    with served(speaker) as (_server, path, loop):
        try:
            # old names from -e; `rule` and `target` in the inventory (they used to become options)
            rc, out = mitigate(tmp_path, collections_path, path, "mitigation=block", "source=198.51.100.0/24",
                               host_vars={"rule": "from-the-inventory", "target": "65001:1"})
            assert rc == 0, out
            for old, new in (("mitigation", "action"), ("source", "source")):
                assert f"fleet.bgp playbook option -e {old} is now -e fleet_bgp_mitigate_{new}" in out, out
            assert "(the old name goes in fleet.bgp 0.3.0)" in out
            if ansible_core_version() >= (2, 19):  # older cores print the task's list, not a DEPRECATION WARNING
                assert "removed from collection 'fleet.bgp' version 0.3.0" in out
            assert re.search(r"the inventory sets rule \(srv1\): this playbook no longer reads it", out), out
            assert "the inventory sets target (srv1)" in out
            with ControlClient(path, timeout=10) as client:
                assert [r["name"] for r in client.call("flows")] == ["block-198.51.100.0_24"]

            # new names: no deprecation; both names given: the new one wins and the warning says so
            rc, out = mitigate(tmp_path, collections_path, path, "fleet_bgp_mitigate_action=clear",
                               "fleet_bgp_mitigate_all=true", "mitigation=list")
            assert rc == 0, out
            assert ("fleet.bgp playbook option -e mitigation is now -e fleet_bgp_mitigate_action; both were given:"
                    " fleet_bgp_mitigate_action wins, mitigation is ignored") in out, out
            assert "-e all is now" not in out and "no FlowSpec rules" in out
            with ControlClient(path, timeout=10) as client:
                assert client.call("flows") == []
        finally:
            loop.call(speaker.flows.stop)
