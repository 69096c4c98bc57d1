"""What every scenario's testinfra conftest.py shares (not a scenario: it has no molecule.yml).

A conftest puts this directory on sys.path and imports from here; pytest registers the `host`
fixture it imports. Instance names come from the scenario's molecule.yml (Molecule's MOLECULE_FILE),
so a copy of a scenario with other container names tests its own containers.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml


def platforms(scenario_dir: Path) -> list[dict[str, Any]]:
    path = os.environ.get("MOLECULE_FILE") or str(scenario_dir / "molecule.yml")
    return yaml.safe_load(Path(path).read_text()).get("platforms", [])


def instances(scenario_dir: Path, group: str) -> list[str]:
    """Names of the scenario's instances in an inventory group, in molecule.yml's order."""
    return [p["name"] for p in platforms(scenario_dir) if group in p.get("groups", [])]


def podman_host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="module")
def host(_testinfra_host: testinfra.host.Host) -> testinfra.host.Host:
    """Molecule's `--hosts=all` parametrization, re-targeted to the native podman backend: the
    ansible backend costs seconds per check (podman exec through Ansible), this one milliseconds."""
    backend = _testinfra_host.backend
    name = getattr(backend, "host", None) or getattr(backend, "name", None)
    return podman_host(str(name))


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll predicate until it returns something truthy; return it, or the last value at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run_playbook(playbook: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """ansible-playbook with Molecule's inventory and ansible.cfg (from the verifier's environment)."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE is not set: run the tests through molecule verify"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false",
               ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(playbook), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recap(out: str, name: str) -> str:
    """The PLAY RECAP line of one instance (`NAME : ok=5 changed=1 ...`) in ansible-playbook's output."""
    return next(line for line in out.splitlines() if line.startswith(name + " ") and "ok=" in line)
