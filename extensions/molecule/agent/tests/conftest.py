"""Fixtures of the Molecule scenario `agent` (testinfra).

Speed: testinfra's ansible backend costs ~4 s per command (a whole `ansible` run); the instances are
local podman containers, so every fixture here talks to them through testinfra's native podman
backend (`podman exec`, ~0.1 s): `host` (the one Molecule parametrizes over its inventory) is
re-targeted to `podman://NAME`, and `server` / `router` name the two instances directly.

Modules of the collection (fleet.bgp.agent_info, fleet.bgp.maintenance) are run for real with an
ad-hoc `ansible` against Molecule's inventory (`run_module`), as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
# host: a fixture (pytest registers it here); recap, run_playbook: imported by the tests from here
from podman_testinfra import host, instances, podman_host, recap, run_playbook, wait_until  # noqa: F401

SCENARIO_DIR = Path(__file__).resolve().parent.parent


SERVER = instances(SCENARIO_DIR, "bgp_servers")[0]
ROUTER = instances(SCENARIO_DIR, "routers")[0]
BIRD_PROTOCOL = "bgp_server_1"  # inventory/group_vars/routers.yml
STATIC_PREFIX = "100.10.0.100/32"  # inventory/group_vars/all.yml
HEALTH_PREFIX = "100.10.0.101/32"
API_PREFIX = "100.10.0.102/32"
ALL_PREFIXES = (STATIC_PREFIX, HEALTH_PREFIX, API_PREFIX)


@pytest.fixture(scope="session")
def server() -> testinfra.host.Host:
    return podman_host(SERVER)


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)


@pytest.fixture(scope="session")
def md5_password() -> str:
    """The test secret: decrypt the inline vault value of inventory/group_vars/all.yml."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    text = (SCENARIO_DIR / "inventory" / "group_vars" / "all.yml").read_text()
    m = re.search(r"^vault_fleet_bgp_md5_password: !vault \|\n((?:[ ]+.*\n)+)", text, re.M)
    assert m, "vault_fleet_bgp_md5_password not found in inventory/group_vars/all.yml"
    ciphertext = "\n".join(line.strip() for line in m.group(1).splitlines()).encode()
    secret = (SCENARIO_DIR / "vault-password.txt").read_bytes().strip()
    vault = VaultLib([("default", VaultSecret(secret))])
    return vault.decrypt(ciphertext).decode()


def run_module(
    module: str, args: dict[str, Any] | None = None, *, target: str = SERVER, check: bool = False
) -> dict[str, Any]:
    """Run a module on an instance with an ad-hoc `ansible` and return its result.

    Uses Molecule's inventory and ansible.cfg (ANSIBLE_CONFIG, vault password) from the verifier's
    environment, and the json callback so the result is parsed, not scraped.
    """
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE is not set: run the tests through molecule verify"
    cmd = ["ansible", target, "-i", inventory, "-m", module]
    if args:
        cmd += ["-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    env = dict(
        os.environ,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1])
        result = out["plays"][0]["tasks"][0]["hosts"][target]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(
            f"{' '.join(cmd)} gave no parsable result (rc={proc.returncode}): {exc}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        ) from exc
    result["_rc"] = proc.returncode
    return result


def bird_routes(router: testinfra.host.Host) -> set[str]:
    """Prefixes BIRD holds from the bgp_server's session."""
    out = birdc(router, f"show route protocol {BIRD_PROTOCOL}")
    return set(re.findall(r"^(\d+\.\d+\.\d+\.\d+/\d+)\s", out, re.M))


def bird_diagnostics(router: testinfra.host.Host) -> str:
    """What to show when BIRD does not answer: its unit's state and last log lines."""
    return router.run(
        "systemctl status bird.service --no-pager -n 0;"
        " journalctl -u bird.service --no-pager -n 15 -o short-precise"
    ).stdout


def birdc(router: testinfra.host.Host, command: str) -> str:
    result = router.run(f"birdc -r {command}")
    assert result.rc == 0, f"birdc {command}: {result.stderr.strip()}\n{bird_diagnostics(router)}"
    return result.stdout


def bird_session(router: testinfra.host.Host) -> str:
    """The session's line of `birdc show protocols`, e.g. `bgp_server_1 BGP --- up 10:00:00 Established`."""
    out = birdc(router, f"show protocols {BIRD_PROTOCOL}")
    for line in out.splitlines():
        if line.startswith(BIRD_PROTOCOL + " "):
            return " ".join(line.split())
    return ""


def established(line: str) -> bool:
    fields = line.split()
    return len(fields) >= 6 and fields[3] == "up" and fields[-1] == "Established"
