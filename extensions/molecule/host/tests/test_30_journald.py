"""fleet.bgp.logging switched to the journald backend (runs last: it leaves the bgp_server without the
rsyslog file). The role refuses remote servers without rsyslog, then removes its rsyslog rule,
logrotate policy and journald drop-in; the agent's messages stay in the journal only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import SERVER, wait_until

PLAYBOOK = Path(__file__).resolve().parent.parent / "logging-only.yml"
FILES = ["/etc/rsyslog.d/30-fleetbgp.conf", "/etc/logrotate.d/fleetbgp",
         "/etc/systemd/journald.conf.d/50-fleetbgp-forward.conf"]
LOG = "/var/log/fleetbgp/fleetbgp.log"


def play(extra: dict) -> subprocess.CompletedProcess:
    """ansible-playbook logging-only.yml with Molecule's inventory and ansible.cfg (the verifier's
    environment) and these extra vars."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE is not set: run the tests through molecule verify"
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(PLAYBOOK), "-e", json.dumps(extra)],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="yaml"),
        capture_output=True, text=True, timeout=300, check=False,
    )


def recap(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(SERVER + " ") and "ok=" in line)


def test_remotes_need_rsyslog():
    proc = play({"fleet_bgp_logging_backend": "journald"})  # the inventory's TCP remote stays
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr  # ansible-core 2.19 prints the failed task's error on stderr
    assert "forwarding is done by rsyslog" in output, output[-2000:]


def test_journald_backend(server):
    proc = play({"fleet_bgp_logging_backend": "journald", "fleet_bgp_logging_remotes": []})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "failed=0" in recap(proc.stdout)
    for path in FILES:
        assert not server.file(path).exists, f"{path} is still there"
    assert server.service("fleetbgp").is_running
    size = server.file(LOG).size if server.file(LOG).exists else 0
    server.check_output("/opt/fleetbgp/venv/bin/fleetbgp reload")

    def in_journal():
        out = server.run("journalctl -u fleetbgp.service -o cat --no-pager -n 20").stdout
        return [line for line in out.splitlines() if "configuration reloaded from" in line]

    assert wait_until(in_journal, 20), "the reload is not in the journal"
    assert (server.file(LOG).size if server.file(LOG).exists else 0) == size, "rsyslog still writes the file"

    again = play({"fleet_bgp_logging_backend": "journald", "fleet_bgp_logging_remotes": []})
    assert again.returncode == 0 and "changed=0" in recap(again.stdout), recap(again.stdout)
