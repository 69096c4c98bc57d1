"""fleet.bgp.logging switched to the journald backend (runs after the logging tests: it leaves the
bgp_server without the rsyslog file). The role refuses remote servers without rsyslog, then removes its
rsyslog rule, logrotate policy and journald drop-in; the agent's messages stay in the journal only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import SERVER, recap, run_playbook, wait_until

PLAYBOOK = Path(__file__).resolve().parent.parent / "logging-only.yml"
FILES = ["/etc/rsyslog.d/30-fleetbgp.conf", "/etc/logrotate.d/fleetbgp",
         "/etc/systemd/journald.conf.d/50-fleetbgp-forward.conf"]
LOG = "/var/log/fleetbgp/fleetbgp.log"


def play(extra: dict) -> subprocess.CompletedProcess:
    """ansible-playbook logging-only.yml with these extra vars."""
    return run_playbook(PLAYBOOK, "-e", json.dumps(extra), timeout=300)


def test_remotes_need_rsyslog():
    proc = play({"fleet_bgp_logging_backend": "journald"})  # the inventory's TCP remote stays
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr  # ansible-core 2.19 prints the failed task's error on stderr
    assert "forwarding is done by rsyslog" in output, output[-2000:]


def test_journald_backend(server):
    proc = play({"fleet_bgp_logging_backend": "journald", "fleet_bgp_logging_remotes": []})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "failed=0" in recap(proc.stdout, SERVER)
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
    assert again.returncode == 0 and "changed=0" in recap(again.stdout, SERVER), recap(again.stdout, SERVER)
