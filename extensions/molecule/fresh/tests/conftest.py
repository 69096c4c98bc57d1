"""Fixtures of the Molecule scenario `fresh` (testinfra on the native podman backend, as `agent`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
# host: a fixture (pytest registers it here); recap, run_playbook: imported by the tests from here
from podman_testinfra import host, instances, podman_host, recap, run_playbook  # noqa: F401

SCENARIO_DIR = Path(__file__).resolve().parent.parent
SERVER = instances(SCENARIO_DIR, "bgp_servers")[0]
SITE = SCENARIO_DIR / "site.yml"


@pytest.fixture(scope="session")
def server() -> testinfra.host.Host:
    return podman_host(SERVER)
