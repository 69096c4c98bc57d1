"""fleet.bgp.monitoring's Alertmanager config as the role derives it (roles/monitoring/vars/main.yml,
the first task of tasks/alertmanager.yml), through ansible-playbook itself on localhost: secrets leave
alertmanager.yml for files named by the *_file options, typed entries get their defaults, `raw` passes
through, and bad receivers fail with a message naming each problem and where it is. Nothing is written
but a JSON dump in tmp_path. amtool, the package and the running Alertmanager: the Molecule scenario
`monitoring` (extensions/molecule/monitoring/tests/test_alertmanager.py). Also the alert rules the role
writes: its variables change only the rules they name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "monitoring"
BIN = Path(sys.executable).parent
SECRETS = "/etc/prometheus/alertmanager-secrets"

PLAYBOOK = f"""
- hosts: localhost
  gather_facts: false
  vars_files:
    - {ROLE}/defaults/main.yml
    - {ROLE}/vars/main.yml
  tasks:
    - name: The role's own check
      ansible.builtin.include_tasks: check.yml
    - name: What the role would write
      ansible.builtin.copy:
        content: "{{{{ {{'config': fleet_bgp_monitoring__am_config, 'secrets': fleet_bgp_monitoring__am_built.secrets,
                      'alertmanagers': fleet_bgp_monitoring__alertmanagers}} | to_json }}}}"
        dest: "{{{{ out }}}}"
        mode: "0600"
"""


def derive(tmp_path: Path, **extra: object) -> tuple[subprocess.CompletedProcess, dict]:
    tasks = yaml.safe_load((ROLE / "tasks" / "alertmanager.yml").read_text())
    (tmp_path / "check.yml").write_text(yaml.safe_dump([tasks[0]]))  # "The Alertmanager receivers are well-formed"
    out = tmp_path / "derived.json"
    proc = run_play(tmp_path, PLAYBOOK, out, extra)
    return proc, (json.loads(out.read_text()) if out.exists() else {})


def run_play(tmp_path: Path, playbook: str, out: Path, extra: dict[str, object]) -> subprocess.CompletedProcess:
    """ansible-playbook on localhost with `playbook` (which writes `out`), nothing else touched."""
    (tmp_path / "play.yml").write_text(playbook)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "rtmp"))
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-c", "local", "play.yml", "-e", json.dumps({"out": str(out), **extra})],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_defaults_send_nowhere_and_prometheus_keeps_its_list(tmp_path: Path) -> None:
    proc, got = derive(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert got["config"]["receivers"] == [{"name": "fleetbgp-default"}]
    assert got["config"]["route"]["receiver"] == "fleetbgp-default"
    assert got["config"]["global"] == {"resolve_timeout": "5m"}
    assert got["secrets"] == []
    assert got["alertmanagers"] == []  # fleet_bgp_monitoring_alertmanager is false by default


def test_secrets_move_to_files_and_typed_entries_get_defaults(tmp_path: Path) -> None:
    receivers = [
        {"name": "on call", "pagerduty": [{"routing_key": "pd-key", "severity": "critical"}, {"service_key": "old"}],
         "slack": [{"api_url": "https://hooks.example/T0/B0/x", "channel": "#pages"}],
         "webhook": [{"url": "http://hook.example/a", "send_resolved": False}]},
        {"name": "mail", "email": [{"to": "ops@example.net", "auth_password": "smtp-pw"}],
         "raw": {"opsgenie_configs": [{"api_key_file": "/etc/og.key"}]}},
    ]
    proc, got = derive(tmp_path, fleet_bgp_monitoring_alertmanager=True,
                       fleet_bgp_monitoring_alertmanager_receivers=receivers,
                       fleet_bgp_monitoring_alertmanager_route={"receiver": "mail"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    oncall, mail = got["config"]["receivers"]
    assert oncall["pagerduty_configs"] == [
        {"severity": "critical", "routing_key_file": f"{SECRETS}/on_call-pagerduty-0-routing_key"},
        {"service_key_file": f"{SECRETS}/on_call-pagerduty-1-service_key"},
    ]
    assert oncall["slack_configs"] == [{"send_resolved": True, "channel": "#pages",
                                        "api_url_file": f"{SECRETS}/on_call-slack-0-api_url"}]
    assert oncall["webhook_configs"] == [{"send_resolved": False, "url": "http://hook.example/a"}]  # own value wins
    assert mail["email_configs"] == [{"to": "ops@example.net",
                                      "auth_password_file": f"{SECRETS}/mail-email-0-auth_password"}]
    assert mail["opsgenie_configs"] == [{"api_key_file": "/etc/og.key"}]
    assert {s["path"]: s["value"] for s in got["secrets"]} == {
        f"{SECRETS}/on_call-pagerduty-0-routing_key": "pd-key",
        f"{SECRETS}/on_call-pagerduty-1-service_key": "old",
        f"{SECRETS}/on_call-slack-0-api_url": "https://hooks.example/T0/B0/x",
        f"{SECRETS}/mail-email-0-auth_password": "smtp-pw",
    }
    written = json.dumps(got["config"])
    for value in ("pd-key", '"old"', "smtp-pw", "hooks.example"):
        assert value not in written, value
    assert got["alertmanagers"] == ["127.0.0.1:9093"]  # the local one, from --web.listen-address


def test_bad_receivers_are_named_with_what_is_wrong(tmp_path: Path) -> None:
    receivers = [{"name": "a", "webhok": [{"url": "http://x/"}]}, {"name": "a", "webhook": {"url": "http://x/"}},
                 {"email": [{"to": "x@example.net"}]}, {"name": "b", "raw": ["slack_configs"]}]
    proc, got = derive(tmp_path, fleet_bgp_monitoring_alertmanager_receivers=receivers,
                       fleet_bgp_monitoring_alertmanager_route={"receiver": "nobody"})
    assert proc.returncode != 0 and not got
    output = (proc.stdout + proc.stderr).replace('\\"', '"')  # JSON-escaped or not, by callback and version
    for message in (
        'fleet_bgp_monitoring_alertmanager_receivers[0]: the name "a" is used twice',
        'fleet_bgp_monitoring_alertmanager_receivers[0] (a): unknown key "webhok"',
        "fleet_bgp_monitoring_alertmanager_receivers[1] (a): webhook must be a list of dicts",
        "fleet_bgp_monitoring_alertmanager_receivers[2] has no name",
        "fleet_bgp_monitoring_alertmanager_receivers[3] (b): raw must be a dict",
        'fleet_bgp_monitoring_alertmanager_route.receiver is "nobody", not one of the receivers (a, a, , b)',
    ):
        assert message in output, f"{message!r} not in {output[-3000:]}"


RULES_PLAYBOOK = f"""
- hosts: localhost
  gather_facts: false
  vars_files:
    - {ROLE}/defaults/main.yml
    - {ROLE}/vars/main.yml
  tasks:
    - name: The rules the role would write
      ansible.builtin.copy:
        content: "{{{{ fleet_bgp_monitoring__rules | to_json }}}}"
        dest: "{{{{ out }}}}"
        mode: "0600"
"""


def derive_rules(tmp_path: Path, **extra: object) -> dict[str, dict]:
    """The alert rules as the role writes them, by alert name (the rules file found as the role finds it)."""
    files = tmp_path / "files" / "prometheus"
    files.mkdir(parents=True)
    (files / "fleetbgp.rules.yml").write_text((ROLE / "files/prometheus/fleetbgp.rules.yml").read_text())
    out = tmp_path / "rules.json"
    proc = run_play(tmp_path, RULES_PLAYBOOK, out, extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {r["alert"]: r for g in json.loads(out.read_text())["groups"] for r in g["rules"] if "alert" in r}


def test_forgotten_maintenance_hours_and_alert_for_reach_the_rules(tmp_path: Path) -> None:
    shipped = {r["alert"]: r for g in yaml.safe_load((ROLE / "files/prometheus/fleetbgp.rules.yml").read_text())["groups"]
               for r in g["rules"] if "alert" in r}
    got = derive_rules(tmp_path, fleet_bgp_monitoring_maintenance_forgotten_hours=12,
                       fleet_bgp_monitoring_alert_for={"FleetbgpSessionDown": "5m"})
    assert "> 12 * 3600" in got["FleetbgpMaintenanceForgotten"]["expr"]
    assert "> 4 * 3600" in shipped["FleetbgpMaintenanceForgotten"]["expr"]
    assert got["FleetbgpSessionDown"]["for"] == "5m"
    changed = {name for name in shipped if got[name] != shipped[name]}
    assert changed == {"FleetbgpMaintenanceForgotten", "FleetbgpSessionDown"}, changed
