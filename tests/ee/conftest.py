"""Fixtures of the execution-environment test (tests/ee): `lab`, the e2e lab fleet with its baseline
deployed, exactly as tests/e2e/conftest.py provides it (the same harness, tests/e2e/e2e_lab.py, and the
same lock, /run/lock/fleetbgp-e2e.lock, held for the whole session: the lab is shared with tests/e2e).

Run with `make ee` (builds the image first: scripts/build-ee.sh), or
`scripts/run-pytest.sh --root tests/ee` once the image is built. Not part of `make test`.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_lab import Lab

E2E_LOCK = "/run/lock/fleetbgp-e2e.lock"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the EE test needs root (rootful podman, the e2e lab)")
    with open(E2E_LOCK, "a") as lock:
        if os.environ.get("FLEETBGP_E2E_LOCK_HELD") != "1":
            fcntl.flock(lock, fcntl.LOCK_EX)
        the_lab = Lab()
        the_lab.up()
        the_lab.ensure_baseline()
        yield the_lab


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ee: runs playbooks through the execution environment image on the e2e lab")
