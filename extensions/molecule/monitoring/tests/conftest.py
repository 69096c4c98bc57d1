"""Fixtures of the Molecule scenario `monitoring` (testinfra on the native podman backend).

`host` (Molecule's --hosts=all parametrization) is re-targeted to `podman://NAME` (~0.1 s a command
instead of ~4 s through testinfra's ansible backend). Prometheus's HTTP API is queried from the
controller at the mon-prometheus container's address on the scenario network (rootful podman: the
host reaches its bridge), exactly as a dashboard or an operator's curl would.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml


def _instances(group: str) -> list[str]:
    """Names of the scenario's instances in group, from molecule.yml (MOLECULE_FILE)."""
    path = os.environ.get("MOLECULE_FILE") or str(Path(__file__).resolve().parents[1] / "molecule.yml")
    platforms = yaml.safe_load(Path(path).read_text())["platforms"]
    return [p["name"] for p in platforms if group in p.get("groups", [])]


SERVERS = _instances("bgp_servers")
ROUTER = _instances("routers")[0]
PROMETHEUS = _instances("monitoring")[0]


def podman_host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="module")
def host(_testinfra_host: testinfra.host.Host) -> testinfra.host.Host:
    backend = _testinfra_host.backend
    name = getattr(backend, "host", None) or getattr(backend, "name", None)
    return podman_host(str(name))


@pytest.fixture(scope="session")
def router() -> testinfra.host.Host:
    return podman_host(ROUTER)


@pytest.fixture(scope="session")
def prometheus() -> testinfra.host.Host:
    return podman_host(PROMETHEUS)


def container_ip(name: str) -> str:
    out = subprocess.run(["podman", "container", "inspect", name], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


class PrometheusApi:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read().decode())
        assert body.get("status") == "success", f"{url}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["result"]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]


@pytest.fixture(scope="session")
def prom_api() -> PrometheusApi:
    return PrometheusApi(f"http://{container_ip(PROMETHEUS)}:9090")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def birdc(router: testinfra.host.Host, command: str) -> str:
    result = router.run(f"birdc -r {command}" if command.startswith("show") else f"birdc {command}")
    assert result.rc == 0, f"birdc {command}: {result.stdout}{result.stderr}"
    return result.stdout


def protocol(server: str) -> str:
    """BIRD's protocol for a server (templates/bird.conf.j2)."""
    return server.replace("-", "_")
