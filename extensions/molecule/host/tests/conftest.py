"""Fixtures of the Molecule scenario `host` (testinfra).

As in the scenario `agent`: testinfra's ansible backend costs ~4 s per command, so every fixture talks
to the instances through testinfra's native podman backend (`podman exec`, ~0.1 s). `host` (the one
Molecule parametrizes over its inventory) is re-targeted to `podman://NAME`; `server` and `router`
name the two instances, read from Molecule's molecule.yml so a copy of the scenario tests its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
# host: a fixture (pytest registers it here); recap, run_playbook: imported by the tests from here
from podman_testinfra import host, instances, podman_host, recap, run_playbook, wait_until  # noqa: F401

SCENARIO_DIR = Path(__file__).resolve().parent.parent
SERVER = instances(SCENARIO_DIR, "bgp_servers")[0]
ROUTER = instances(SCENARIO_DIR, "routers")[0]


@pytest.fixture(scope="session")
def server() -> testinfra.host.Host:
    return podman_host(SERVER)


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)
