"""A real run of fleet.bgp.site on a host whose package index cannot be reached.

It must stop at the first package to install (the firewall role's nftables) with apt-get's own
reason: the mirror's address and what failed, and the variable that turns the install off. (The apt
module said "Failed to update apt cache after 5 retries: " after 30 s.)
"""

from __future__ import annotations

import re

from conftest import SERVER, SITE, recap, run_playbook


def test_unreachable_mirror_fails_naming_it():
    run = run_playbook(SITE, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-4000:]
    assert "failed=1" in recap(run.stdout, SERVER)
    fatal = out[out.index("fatal: [" + SERVER) :]
    msg = " ".join(fatal.split())  # the YAML callback folds long lines
    assert "fleet.bgp.firewall needs the package(s) nftables" in msg, msg[:2000]
    assert "`apt-get update` failed (exit 100)" in msg, msg[:2000]
    assert "http://127.0.0.1:9/debian" in msg, msg[:2000]
    assert re.search(r"Connection refused|Could not connect", msg), msg[:2000]
    assert "fleet_bgp_firewall_manage_packages=false" in msg, msg[:2000]
    assert "Failed to update apt cache" not in out
