"""Issue 6, the backup schedule: role fleet.bgp.backup, applied by fleet.bgp.site and by the
fleet.bgp.backup playbook, on the e2e lab fleet (srv3).

- After the baseline deploy (fleet.bgp.site) the nightly timer is enabled, and its service, started as
  the timer starts it, takes a `scheduled` backup under the unit's hardening.
- `--check` with `fleet_bgp_backup_schedule: cron` reports changes and changes nothing: no cron file,
  the timer still enabled, no new archive.
- `cron` replaces the timer with /etc/cron.d/fleetbgp-backup; its command, run the way cron runs it
  (`/bin/sh -c`), takes a `scheduled` backup.
- Back to `timer` (the default): the cron file is gone and the timer enabled again.
"""

from __future__ import annotations

import json
import re
from typing import Any

from e2e_lab import Lab

HOST = "srv3"
TOOL = "/usr/local/sbin/fleetbgp-backup"
BACKUP_DIR = "/var/backups/fleetbgp"
CRON_FILE = "/etc/cron.d/fleetbgp-backup"
TIMER = "fleetbgp-backup.timer"
TIMER_UNITS = ("/etc/systemd/system/fleetbgp-backup.timer", "/etc/systemd/system/fleetbgp-backup.service")
CRON = {"fleet_bgp_backup_schedule": "cron"}


def schedule(lab: Lab) -> dict[str, Any]:
    """The host's backup schedule and archives, as the tests compare them."""
    def out(*argv: str) -> str:
        return lab.exec(HOST, *argv, check=False).stdout.strip()

    cron = lab.exec(HOST, "cat", CRON_FILE, check=False)
    return {"timer_enabled": out("systemctl", "is-enabled", TIMER),
            "timer_active": out("systemctl", "is-active", TIMER),
            "timer_units": [p for p in TIMER_UNITS if lab.exec(HOST, "test", "-e", p, check=False).returncode == 0],
            "cron": cron.stdout if cron.returncode == 0 else None,
            "archives": archives(lab)}


def archives(lab: Lab) -> list[str]:
    return sorted(a["id"] for a in json.loads(lab.exec(HOST, TOOL, "--json", "list").stdout)["result"])


def kind_of(lab: Lab, backup_id: str) -> str:
    return json.loads(lab.exec(HOST, TOOL, "--json", "verify", backup_id).stdout)["result"]["kind"]


def one_new_archive(lab: Lab, before: list[str]) -> str:
    new = sorted(set(archives(lab)) - set(before))
    assert len(new) == 1, f"expected one new archive on {HOST}, got {new}"
    return new[0]


def recap_changed(out: str) -> int:
    m = re.search(rf"^{HOST}\s*:.*\bchanged=(\d+)", out, re.MULTILINE)
    assert m, f"no PLAY RECAP line for {HOST}:\n{out}"
    return int(m.group(1))


def test_timer_cron_check_mode_and_back(lab: Lab) -> None:
    lab.wait_converged()
    base = schedule(lab)
    assert base["timer_enabled"] == "enabled" and base["timer_active"] == "active", base
    assert base["cron"] is None and len(base["timer_units"]) == 2, base

    # The timer's service, started as the timer starts it, takes a scheduled backup.
    lab.exec(HOST, "systemctl", "start", "fleetbgp-backup.service", timeout=120)
    assert kind_of(lab, one_new_archive(lab, base["archives"])) == "scheduled"

    try:
        # Check mode: says it would change the schedule, changes nothing (and takes no backup).
        before = schedule(lab)
        out = lab.playbook("fleet.bgp.backup", "--limit", HOST, "--check", extra_vars=CRON).stdout
        assert recap_changed(out) > 0, out
        assert schedule(lab) == before

        # cron instead of the timer.
        lab.playbook("fleet.bgp.backup", "--limit", HOST, extra_vars=CRON)
        cron = schedule(lab)
        assert cron["timer_enabled"] != "enabled" and cron["timer_active"] != "active", cron
        assert cron["timer_units"] == [], cron
        jobs = [line for line in str(cron["cron"]).splitlines() if line.strip() and not line.startswith("#")]
        assert len(jobs) == 1, cron["cron"]
        minute, hour, dom, month, dow, user, command = jobs[0].split(None, 6)
        assert (minute, hour, dom, month, dow, user) == ("15", "3", "*", "*", "*", "root"), jobs[0]
        assert command == f"{TOOL} create --kind scheduled >/dev/null", jobs[0]
        lab.exec(HOST, "/bin/sh", "-c", command, timeout=120)
        assert kind_of(lab, one_new_archive(lab, cron["archives"])) == "scheduled"
    finally:
        # Back to the default (the baseline's timer).
        lab.playbook("fleet.bgp.backup", "--limit", HOST)
    back = schedule(lab)
    assert back["cron"] is None, back
    assert back["timer_enabled"] == "enabled" and back["timer_active"] == "active", back
    assert len(back["timer_units"]) == 2, back
