"""`fleetbgp run`: flags and environment become one AgentSettings handed to fleetbgp.daemon.run."""

from __future__ import annotations

import sys
import types

import pytest

import fleetbgp
from fleetbgp.cli import main
from fleetbgp.settings import AgentSettings


@pytest.fixture
def daemon_calls(monkeypatch):
    calls = []
    fake = types.ModuleType("fleetbgp.daemon")

    def run(config_path, settings):
        calls.append((config_path, settings))
        return 0

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fleetbgp.daemon", fake)
    monkeypatch.setattr(fleetbgp, "daemon", fake, raising=False)
    for name in [n for n in list(__import__("os").environ) if n.startswith(("FLEETBGP_", "exabgp"))]:
        monkeypatch.delenv(name)
    return calls


def test_run_hands_settings_to_the_daemon(daemon_calls):
    assert main(["run", "/etc/fleetbgp/fleetbgp.conf"]) == 0
    [(path, settings)] = daemon_calls
    assert path == "/etc/fleetbgp/fleetbgp.conf"
    assert settings == AgentSettings()


def test_run_flags_and_environment(daemon_calls, monkeypatch):
    monkeypatch.setenv("exabgp.api.ack", "false")
    monkeypatch.setenv("FLEETBGP_METRICS", "0.0.0.0:9200")
    assert main(["run", "f.conf", "--log-level", "debug", "--control-socket", "/tmp/t/c.sock",
                 "--maintenance-mode", "metric", "--metrics", "off"]) == 0
    settings = daemon_calls[-1][1]
    assert settings.log_level == "debug"
    assert settings.api_ack is False
    assert settings.metrics_port is None, "the flag beats the environment"
    assert settings.control_socket == "/tmp/t/c.sock"
    assert settings.maintenance_mode == "metric"


def test_bad_setting_is_a_usage_error_naming_it(daemon_calls, monkeypatch, capsys):
    monkeypatch.setenv("FLEETBGP_METRICS", "nowhere:port")
    assert main(["run", "f.conf"]) == 2
    assert "FLEETBGP_METRICS" in capsys.readouterr().err
    assert daemon_calls == []


def test_bad_flag_value_is_a_usage_error(daemon_calls, capsys):
    assert main(["run", "f.conf", "--log-destination", "file"]) == 2
    assert main(["run", "f.conf", "--maintenance-metric", "-5"]) == 2
    assert daemon_calls == []


def test_run_help_lists_the_settings(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--control-socket", "--metrics", "--log-destination", "--syslog-facility", "--log-format",
                 "--log-packets", "--api-ack", "--maintenance-mode", "--maintenance-metric", "--listen"):
        assert flag in out
