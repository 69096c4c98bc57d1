"""`fleet.bgp.site --check --diff` on a host that never had the agent and lacks the packages.

The README's first step on a real fleet. It must run through every role, report what a real run
would change (packages included), and change nothing on the host.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import SERVER, SITE, recap, run_playbook


@pytest.fixture(scope="module")
def check_run() -> subprocess.CompletedProcess:
    return run_playbook(SITE, "--check", "--diff", timeout=600)


def test_check_mode_runs_through(check_run):
    out = check_run.stdout + check_run.stderr
    assert check_run.returncode == 0, out[-4000:]
    assert "failed=0" in recap(check_run.stdout, SERVER)


@pytest.mark.parametrize(
    "task",
    [
        "fleet.bgp.sysctl : Apply the settings and write them to /etc/sysctl.d/99-fleetbgp.conf",
        "fleet.bgp.service_addresses : Service addresses on lo",
        "fleet.bgp.firewall : Check mode - a real run installs nftables",
        "fleet.bgp.firewall : Report the change (check mode applies nothing)",
        "fleet.bgp.agent : Check mode - a real run installs python3.11-venv",
        "fleet.bgp.agent : Check mode - a real run installs fleetbgp",
        "fleet.bgp.agent : Render the config",
        "fleet.bgp.agent : Check mode - a real run enables and starts fleetbgp with the new unit",
        "fleet.bgp.logging : Check mode - a real run installs",
        "fleet.bgp.logging : Write /etc/systemd/journald.conf.d/50-fleetbgp-forward.conf",
        "fleet.bgp.backup : Check mode - a real run enables and starts the backup timer",
    ],
)
def test_every_role_reports_its_change(check_run, task):
    """Each role's change shows in the preview as a changed task (not skipped, not failed)."""
    blocks = check_run.stdout.split("\nTASK [")
    found = [b for b in blocks if b.startswith(task)]
    assert found, f"no task '{task}' in the check run"
    assert any("\nchanged: [" in b for b in found), found[0][:2000]


def test_logging_names_both_packages(check_run):
    task = "fleet.bgp.logging : Check mode - a real run installs"
    line = next(b for b in check_run.stdout.split("\nTASK [") if b.startswith(task))
    assert "rsyslog" in line and "logrotate" in line, line


def test_no_warning_about_missing_groups(check_run):
    """Neither the optional `monitoring` group nor the restart play's group (no restart here) warns."""
    out = check_run.stdout + check_run.stderr
    assert "Could not match supplied host pattern" not in out


@pytest.mark.parametrize(
    "path",
    [
        "/etc/fleetbgp",
        "/opt/fleetbgp",
        "/etc/systemd/system/fleetbgp.service",
        "/etc/systemd/system/fleetbgp-backup.timer",
        "/etc/systemd/system/fleetbgp-addresses.service",
        "/etc/sysctl.d/99-fleetbgp.conf",
        "/etc/systemd/journald.conf.d/50-fleetbgp-forward.conf",
        "/etc/fleetbgp-firewall",
        "/usr/local/sbin/fleetbgp-backup",
    ],
)
def test_check_mode_changed_nothing(check_run, server, path):
    assert not server.file(path).exists


def test_check_mode_installed_nothing(check_run, server):
    for pkg in ("rsyslog", "logrotate", "nftables", "python3.11-venv"):
        assert not server.package(pkg).is_installed, pkg
    assert server.run("getent passwd fleetbgp").rc == 2
    assert server.run("ip -o addr show dev lo").stdout.count("100.10.0.100") == 0
