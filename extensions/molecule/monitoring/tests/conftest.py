"""Fixtures of the Molecule scenario `monitoring` (testinfra on the native podman backend).

`host` (Molecule's --hosts=all parametrization) is re-targeted to `podman://NAME` (~0.1 s a command
instead of ~4 s through testinfra's ansible backend). Prometheus's and Alertmanager's HTTP APIs are
queried from the controller at the mon-prometheus container's address on the scenario network
(rootful podman: the host reaches its bridge), exactly as a dashboard or an operator's curl would.
What Alertmanager delivered is read from the webhook recorder's file on mon-router (prepare.yml).
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
from podman_testinfra import (  # noqa: F401 (host: a fixture)
    host,
    instances,
    podman_host,
    recap,
    run_playbook,
    wait_until,
)

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


# group_vars/all.yml molecule_webhook_record: one line per POST, {"path": ..., "body": Alertmanager's JSON}
WEBHOOK_RECORD = "/var/lib/webhook-recorder/posts.jsonl"


def webhook_posts(router: testinfra.host.Host) -> list[dict[str, Any]]:
    """Every notification the webhook recorder received, oldest first."""
    record = router.file(WEBHOOK_RECORD)
    return [json.loads(line)["body"] for line in record.content_string.splitlines()] if record.exists else []


class JsonApi:
    def __init__(self, base: str) -> None:
        self.base = base

    def raw(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read().decode())


class PrometheusApi(JsonApi):
    """Prometheus's API v1: the answer's `data`, after checking its `status`."""

    def get(self, path: str, **params: str) -> Any:
        body = self.raw(path, **params)
        assert body.get("status") == "success", f"{self.base}{path}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["result"]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]


@pytest.fixture(scope="session")
def prom_api() -> PrometheusApi:
    return PrometheusApi(f"http://{container_ip(PROMETHEUS)}:9090")


@pytest.fixture(scope="session")
def am_api() -> JsonApi:
    """Alertmanager's API v2 (plain JSON, no status/data envelope)."""
    return JsonApi(f"http://{container_ip(PROMETHEUS)}:9093")


def birdc(router: testinfra.host.Host, command: str) -> str:
    result = router.run(f"birdc -r {command}" if command.startswith("show") else f"birdc {command}")
    assert result.rc == 0, f"birdc {command}: {result.stdout}{result.stderr}"
    return result.stdout


def protocol(server: str) -> str:
    """BIRD's protocol for a server (templates/bird.conf.j2)."""
    return server.replace("-", "_")
