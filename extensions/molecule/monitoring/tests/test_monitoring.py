"""fleet.bgp.monitoring end to end: a real Prometheus (Debian's package, configured by the role)
scrapes the three agents; a BGP session shut at the router makes FleetbgpSessionDown fire through
Prometheus's HTTP API and Alertmanager deliver it to the webhook receiver, and re-enabling it resolves
the alert (a `resolved` notification follows). NRPE file and Grafana files too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import (
    PROMETHEUS,
    SERVERS,
    birdc,
    container_ip,
    podman_host,
    protocol,
    wait_until,
    webhook_posts,
)

# Every alert the collection ships must be loaded, and nothing else under our prefix.
RULES_FILE = Path(__file__).resolve().parents[4] / "roles/monitoring/files/prometheus/fleetbgp.rules.yml"
ALERTS = {r["alert"] for g in yaml.safe_load(RULES_FILE.read_text())["groups"]
          for r in g["rules"] if "alert" in r}
DATACENTER = {"mon-server-1": "dc1", "mon-server-2": "dc1", "mon-server-3": "dc2"}  # host_vars/
DOWN_SERVER = "mon-server-2"


def test_prometheus_runs_from_the_distribution_package(prometheus):
    assert prometheus.package("prometheus").is_installed
    svc = prometheus.service("prometheus")
    assert svc.is_running and svc.is_enabled
    prometheus.run_expect([0], "promtool check config /etc/prometheus/prometheus.yml")
    prometheus.run_expect([0], "promtool check rules /etc/prometheus/rules.d/fleetbgp.rules.yml")


def test_agents_listen_on_their_scenario_address(host):
    """fleet.bgp.monitoring set fleet_bgp_metrics_listen to the server's own address (not loopback)
    and fleet_bgp_metrics_scrapers to mon-prometheus's address, for fleet.bgp.agent's unit."""
    if host.backend.name not in SERVERS:
        pytest.skip("bgp_servers only")
    ip = container_ip(host.backend.name)
    unit = host.file("/etc/systemd/system/fleetbgp.service").content_string
    assert f"Environment=FLEETBGP_METRICS={ip}:9101" in unit
    assert f"IPAddressAllow={container_ip(PROMETHEUS)}" in unit
    assert host.socket(f"tcp://{ip}:9101").is_listening


def test_every_bgp_server_is_a_target_with_its_labels(prom_api):
    def targets():
        active = prom_api.get("/api/v1/targets", state="active")["activeTargets"]
        got = {t["labels"]["instance"]: t for t in active if t["labels"].get("job") == "fleetbgp"}
        return got if len(got) == len(SERVERS) and all(t["health"] == "up" for t in got.values()) else None

    got = wait_until(targets, timeout=60)
    assert got, prom_api.get("/api/v1/targets", state="active")
    for server in SERVERS:
        labels = got[server]["labels"]
        assert labels["datacenter"] == DATACENTER[server]
        assert labels["fleet_group"] == "anycast"
        assert got[server]["scrapeUrl"] == f"http://{container_ip(server)}:9101/metrics"


def test_the_alert_rules_are_loaded_with_the_test_durations(prom_api):
    rules = {r["name"]: r for g in prom_api.get("/api/v1/rules")["groups"]
             for r in g["rules"] if r["type"] == "alerting"}
    assert len(ALERTS) >= 15 and set(rules) == ALERTS, set(rules) ^ ALERTS
    assert rules["FleetbgpSessionDown"]["duration"] == 5  # fleet_bgp_monitoring_alert_for
    assert rules["FleetbgpAgentDown"]["duration"] == 60   # the file's own
    assert all(r["health"] == "ok" for r in rules.values()), rules


def test_metrics_agree_with_bird(prom_api):
    """All sessions up, two routes each (static + health check), one config digest for the group."""
    def ready():
        up = prom_api.query('sum(fleetbgp_session_up{job="fleetbgp"})')
        routes = prom_api.query('sum(fleetbgp_routes_advertised{job="fleetbgp"})')
        return (up and routes and float(up[0]["value"][1]) == len(SERVERS)
                and float(routes[0]["value"][1]) == 2 * len(SERVERS))
    assert wait_until(ready, timeout=60), prom_api.query('fleetbgp_session_up')
    digests = prom_api.query('count by (sha256) (fleetbgp_config_routes_digest_info{fleet_group="anycast"})')
    assert len(digests) == 1 and digests[0]["value"][1] == str(len(SERVERS))


def delivered(router, skip: int, status: str) -> int | None:
    """How many notifications the recorder holds up to and including the first one, after the `skip`
    first, for DOWN_SERVER's FleetbgpSessionDown group with this status ("firing" or "resolved")."""
    group = {"alertname": "FleetbgpSessionDown", "instance": DOWN_SERVER}  # group_by of group_vars/monitoring
    posts = webhook_posts(router)
    return next((i + 1 for i in range(skip, len(posts))
                 if posts[i]["groupLabels"] == group and posts[i]["status"] == status), None)


def test_session_down_alert_fires_and_resolves(router, prom_api):
    proto = protocol(DOWN_SERVER)
    peer = container_ip(router.backend.name)
    assert not prom_api.alerts("FleetbgpSessionDown"), "a session is already down before the test"
    seen = len(webhook_posts(router))  # notifications before the test
    birdc(router, f"disable {proto}")
    try:
        def firing():
            return [a for a in prom_api.alerts("FleetbgpSessionDown") if a["state"] == "firing"]
        alerts = wait_until(firing, timeout=60)
        assert alerts, f"not firing: {prom_api.alerts('FleetbgpSessionDown')}"
        (alert,) = alerts
        assert alert["labels"]["instance"] == DOWN_SERVER
        assert alert["labels"]["peer"] == peer
        assert alert["labels"]["datacenter"] == DATACENTER[DOWN_SERVER]
        assert alert["labels"]["severity"] == "critical"
        text = alert["annotations"]
        assert text["summary"] == f"BGP session {DOWN_SERVER} -> peer {peer} is down"
        assert DOWN_SERVER in text["description"] and peer in text["description"]
        # the NOTIFICATION BIRD sent (Cease / administrative shutdown, 6/2) shows in the metrics
        notes = prom_api.query(
            f'fleetbgp_notifications_total{{instance="{DOWN_SERVER}", direction="received"}}')
        assert {(n["metric"]["code"], n["metric"]["subcode"]) for n in notes} >= {("6", "2")}, notes
        # ... and Alertmanager paged: severity critical routes to `oncall`, whose webhook is the recorder
        fired = wait_until(lambda: delivered(router, seen, "firing"), timeout=60)
        assert fired, f"no firing notification: {webhook_posts(router)[seen:]}"
        post = webhook_posts(router)[fired - 1]
        assert post["receiver"] == "oncall"
        (sent,) = post["alerts"]
        assert sent["status"] == "firing"
        assert sent["labels"]["peer"] == peer and sent["labels"]["severity"] == "critical"
        assert sent["annotations"]["summary"] == text["summary"]
    finally:
        birdc(router, f"enable {proto}")
    assert wait_until(lambda: not prom_api.alerts("FleetbgpSessionDown"), timeout=60), \
        prom_api.alerts("FleetbgpSessionDown")
    resolved = wait_until(lambda: delivered(router, fired, "resolved"), timeout=60)
    assert resolved, f"no resolved notification: {webhook_posts(router)[fired:]}"
    post = webhook_posts(router)[resolved - 1]
    assert post["receiver"] == "oncall"
    (sent,) = post["alerts"]
    assert sent["status"] == "resolved" and sent["labels"]["peer"] == peer


def test_nrpe_command_file_runs_fleetbgp_check():
    server = podman_host(SERVERS[0])  # fleet_bgp_monitoring_nrpe: true in host_vars/mon-server-1.yml
    cfg = server.file("/etc/nagios/nrpe.d/fleetbgp.cfg")
    assert cfg.exists and cfg.user == "root" and cfg.mode == 0o644
    m = re.search(r"^command\[check_fleetbgp\]=(.+)$", cfg.content_string, re.M)
    assert m, cfg.content_string
    result = wait_until(lambda: (r := server.run(m.group(1))).rc == 0 and r, timeout=30)
    assert result, server.run(m.group(1)).stdout
    want = "FLEETBGP OK - 1/1 sessions up, 2 routes announced, 1/1 health checks up |"
    assert result.stdout.startswith(want), result.stdout
    for other in SERVERS[1:]:
        assert not podman_host(other).file("/etc/nagios/nrpe.d/fleetbgp.cfg").exists  # off by default


def test_grafana_dashboard_is_provisioned_as_files(prometheus):
    provider = prometheus.file("/etc/grafana/provisioning/dashboards/fleetbgp.yaml")
    assert provider.exists and "path: /var/lib/grafana/dashboards/fleetbgp" in provider.content_string
    path = "/var/lib/grafana/dashboards/fleetbgp/fleetbgp-dashboard.json"
    dash = json.loads(prometheus.file(path).content_string)
    assert dash["uid"] == "fleetbgp-overview"
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert any("fleetbgp_session_up" in e for e in exprs)
    assert any("fleetbgp_notifications_total" in e for e in exprs)
