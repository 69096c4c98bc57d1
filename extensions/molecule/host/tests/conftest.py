"""Fixtures of the Molecule scenario `host` (testinfra).

As in the scenario `agent`: testinfra's ansible backend costs ~4 s per command, so every fixture talks
to the instances through testinfra's native podman backend (`podman exec`, ~0.1 s). `host` (the one
Molecule parametrizes over its inventory) is re-targeted to `podman://NAME`; `server` and `router`
name the two instances, read from Molecule's molecule.yml so a copy of the scenario tests its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml


def _instance(group: str, default: str) -> str:
    path = os.environ.get("MOLECULE_FILE")
    if path and Path(path).is_file():
        for platform in yaml.safe_load(Path(path).read_text()).get("platforms", []):
            if group in platform.get("groups", []):
                return platform["name"]
    return default


SERVER = _instance("bgp_servers", "host-server-1")
ROUTER = _instance("routers", "host-router")


def podman_host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="module")
def host(_testinfra_host: testinfra.host.Host) -> testinfra.host.Host:
    """Molecule's `--hosts=all` parametrization, re-targeted to the native podman backend."""
    backend = _testinfra_host.backend
    name = getattr(backend, "host", None) or getattr(backend, "name", None)
    return podman_host(str(name))


@pytest.fixture(scope="session")
def server() -> testinfra.host.Host:
    return podman_host(SERVER)


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll predicate until it returns something truthy; return it, or the last value at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
