"""The hosts run what docs/operations/keepalived.md says, as it says."""

from __future__ import annotations

import re

import yaml
from doc_files import doc_files

from conftest import GUIDE, SCENARIO_DIR, STATE_FILE, run_ok


def test_the_guides_files_are_on_the_servers(servers):
    files = doc_files(GUIDE.read_text())
    assert {f["path"] for f in files} == {
        "/etc/keepalived/keepalived.conf",
        "/usr/local/sbin/fleetbgp-vrrp-notify",
        "/etc/sysusers.d/fleetbgp-vrrp.conf",
        "/etc/tmpfiles.d/fleetbgp-vrrp.conf",
    }
    for name, h in servers.items():
        for f in files:
            on_host = h.file(f["path"])
            assert on_host.content_string == f["content"], f"{name}:{f['path']} differs from the guide"
            # enable_script_security: root's, writable by root only
            owner = (on_host.user, on_host.group, on_host.mode)
            assert owner == ("root", "root", int(f["mode"], 8)), f"{name}:{f['path']}: {owner}"


def test_the_guides_health_check_is_the_inventorys():
    block = re.search(r"```yaml\n(fleet_bgp_healthchecks:.*?)```", GUIDE.read_text(), re.S)
    assert block, f"{GUIDE}: no ```yaml block with fleet_bgp_healthchecks"
    guide = yaml.safe_load(block.group(1))["fleet_bgp_healthchecks"]
    inventory = yaml.safe_load((SCENARIO_DIR / "inventory/group_vars/bgp_servers.yml").read_text())
    assert inventory["fleet_bgp_healthchecks"] == guide


def test_scripts_run_as_keepalived_script_with_group_fleetbgp(servers):
    for name, h in servers.items():
        assert h.user("keepalived_script").exists, name
        # the state directory is the script user's; the agent (another user) only reads it
        d = h.file(STATE_FILE.rsplit("/", 1)[0])
        assert d.is_directory and d.user == "keepalived_script" and d.mode == 0o755, name
        # the control socket admits group fleetbgp: `script_user keepalived_script fleetbgp` relies on it
        sock = h.file("/run/fleetbgp/control.sock")
        assert sock.group == "fleetbgp" and sock.mode & 0o060 == 0o060, (name, sock.group, oct(sock.mode))
        # `fleetbgp check` as keepalived runs it: that user, that group, no other group; exit 0 (OK)
        out = run_ok(h, "setpriv --reuid keepalived_script --regid fleetbgp --clear-groups "
                        "/opt/fleetbgp/venv/bin/fleetbgp check --sessions-warning 1 --sessions-critical 1 "
                        "--health ignore --maintenance critical --reload-failed ok --bfd ignore --timeout 2")
        assert out.startswith("FLEETBGP OK"), f"{name}: {out}"
        # keepalived refused no script (enable_script_security)
        log = h.run("journalctl -u keepalived --no-pager -o cat").stdout
        assert "SECURITY VIOLATION" not in log and "not executable" not in log, f"{name}:\n{log}"
