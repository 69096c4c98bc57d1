"""Fixtures of the Molecule scenario `monitoring` (testinfra on the native podman backend).

`host` (Molecule's --hosts=all parametrization) is re-targeted to `podman://NAME` (~0.1 s a command
instead of ~4 s through testinfra's ansible backend). Prometheus's HTTP API is queried from the
controller at the mon-prometheus container's address on the scenario network (rootful podman: the
host reaches its bridge), exactly as a dashboard or an operator's curl would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from podman_testinfra import host, instances, podman_host, wait_until  # noqa: F401 (host: a fixture)

SCENARIO_DIR = Path(__file__).resolve().parent.parent
SERVERS = instances(SCENARIO_DIR, "bgp_servers")
ROUTER = instances(SCENARIO_DIR, "routers")[0]
PROMETHEUS = instances(SCENARIO_DIR, "monitoring")[0]


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


def birdc(router: testinfra.host.Host, command: str) -> str:
    result = router.run(f"birdc -r {command}" if command.startswith("show") else f"birdc {command}")
    assert result.rc == 0, f"birdc {command}: {result.stdout}{result.stderr}"
    return result.stdout


def protocol(server: str) -> str:
    """BIRD's protocol for a server (templates/bird.conf.j2)."""
    return server.replace("-", "_")
