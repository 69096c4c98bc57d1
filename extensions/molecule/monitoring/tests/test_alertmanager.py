"""fleet.bgp.monitoring's Alertmanager: Debian's package, alertmanager.yml from the inventory (checked by
amtool), the receivers' secrets in files of their own, Prometheus sending to it; a receiver amtool
refuses fails the role and leaves the live config and the running Alertmanager as they were.
The notification path end to end (a session shut at the router -> a webhook POST `firing`, then
`resolved`) is in test_monitoring.py's session test: both share the one `birdc disable`."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import yaml

from conftest import PROMETHEUS, recap, run_playbook

PLAYBOOK = Path(__file__).resolve().parent.parent / "alertmanager-only.yml"
CONFIG = "/etc/prometheus/alertmanager.yml"
SECRETS = "/etc/prometheus/alertmanager-secrets"
# group_vars/monitoring.yml's stand-in secrets, and the file each must be in
SECRET_FILES = {
    f"{SECRETS}/oncall-pagerduty-0-routing_key": "molecule-pagerduty-routing-key",
    f"{SECRETS}/oncall-slack-0-api_url": "http://127.0.0.1:9/slack-molecule-webhook",
    f"{SECRETS}/team-mail-email-0-auth_password": "molecule-smtp-password",
}


def config_state(am_api) -> dict[str, float]:
    """alertmanager_config_hash and _last_reload_successful from Alertmanager's own /metrics."""
    with urllib.request.urlopen(f"{am_api.base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {m[0]: float(m[1]) for m in re.findall(
        r"^alertmanager_(config_hash|config_last_reload_successful) (\S+)$", text, re.M)}


def test_alertmanager_runs_the_roles_config(prometheus, am_api):
    assert prometheus.package("prometheus-alertmanager").is_installed
    svc = prometheus.service("prometheus-alertmanager")
    assert svc.is_running and svc.is_enabled
    prometheus.run_expect([0], f"amtool check-config {CONFIG}")
    args = prometheus.file("/etc/default/prometheus-alertmanager").content_string
    assert 'ARGS="--web.listen-address=:9093 --cluster.listen-address="' in args
    cfg = prometheus.file(CONFIG)
    assert (cfg.user, cfg.group, cfg.mode) == ("root", "prometheus", 0o640)
    # the running Alertmanager loaded the role's file, not the package's sample
    loaded = yaml.safe_load(am_api.raw("/api/v2/status")["config"]["original"])
    assert loaded["route"]["receiver"] == "team-mail"
    assert {r["name"] for r in loaded["receivers"]} == {"oncall", "team-mail", "ops-opsgenie"}
    assert config_state(am_api)["config_last_reload_successful"] == 1


def test_routes_and_receivers_come_from_the_inventory(prometheus):
    cfg = yaml.safe_load(prometheus.file(CONFIG).content_string)
    assert cfg["global"]["resolve_timeout"] == "1m"
    assert cfg["route"]["receiver"] == "team-mail"
    assert cfg["route"]["routes"] == [{"matchers": ['severity="critical"'], "receiver": "oncall"}]
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert set(receivers) == {"oncall", "team-mail", "ops-opsgenie"}
    (webhook,) = receivers["oncall"]["webhook_configs"]
    assert webhook["send_resolved"] is True  # the role's default
    (slack,) = receivers["oncall"]["slack_configs"]
    assert slack["channel"] == "#bgp-alerts" and slack["send_resolved"] is True
    (email,) = receivers["team-mail"]["email_configs"]
    # an Alertmanager template marked !unsafe in the inventory reaches the file as written
    assert email["headers"]["Subject"] == '{{ template "fleetbgp.title" . }}'
    assert receivers["ops-opsgenie"]["opsgenie_configs"][0]["api_url"] == "http://127.0.0.1:9/"  # raw
    templates = prometheus.file("/etc/prometheus/alertmanager_templates/fleetbgp.tmpl").content_string
    assert 'define "slack.default.title"' in templates


def test_secrets_are_in_files_of_their_own(prometheus):
    text = prometheus.file(CONFIG).content_string
    cfg = yaml.safe_load(text)
    receivers = {r["name"]: r for r in cfg["receivers"]}
    pagerduty = receivers["oncall"]["pagerduty_configs"][0]
    slack = receivers["oncall"]["slack_configs"][0]
    email = receivers["team-mail"]["email_configs"][0]
    assert "routing_key" not in pagerduty and "api_url" not in slack and "auth_password" not in email
    named = {pagerduty["routing_key_file"], slack["api_url_file"], email["auth_password_file"]}
    assert named == set(SECRET_FILES)
    for path, value in SECRET_FILES.items():
        secret = prometheus.file(path)
        assert secret.content_string == value, path
        assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640), path
        assert value not in text, f"{value} is in {CONFIG}"
    assert sorted(prometheus.file(SECRETS).listdir()) == sorted(Path(p).name for p in SECRET_FILES)


def test_prometheus_sends_alerts_to_the_local_alertmanager(prom_api):
    active = prom_api.get("/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in active] == ["http://127.0.0.1:9093/api/v2/alerts"]


def test_a_receiver_amtool_refuses_leaves_the_live_config(prometheus, am_api):
    before = prometheus.file(CONFIG).content_string
    state = config_state(am_api)
    broken = [{"name": "oncall", "webhook": [{"url": "{{ molecule_router_ip }}:9095/alerts"}]},  # no scheme
              {"name": "team-mail"}]
    proc = run_playbook(PLAYBOOK, "-e", json.dumps({"fleet_bgp_monitoring_alertmanager_receivers": broken}))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "failed=1" in recap(proc.stdout, PROMETHEUS), output[-3000:]
    assert "first path segment in URL cannot contain colon" in output, output[-3000:]  # amtool's words
    assert prometheus.file(CONFIG).content_string == before
    assert prometheus.service("prometheus-alertmanager").is_running
    assert config_state(am_api) == state  # same config hash, last reload still good
    for path in SECRET_FILES:  # still named by the live config: not removed
        assert prometheus.file(path).exists, path
