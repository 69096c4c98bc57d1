"""AgentSettings: defaults, ExaBGP's environment names, FLEETBGP_* and `fleetbgp run` flags, in
that order of precedence; every bad value is an error naming where it came from."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from fleetbgp.settings import AgentSettings, SettingsError, add_run_arguments


def build(env=None, argv=None) -> AgentSettings:
    args = None
    if argv is not None:
        p = argparse.ArgumentParser()
        p.add_argument("file")
        add_run_arguments(p)
        args = p.parse_args(["x.conf", *argv])
    return AgentSettings.from_env_and_args(env or {}, args)


def test_defaults():
    s = build()
    assert s == AgentSettings()
    assert s.control_socket == "/run/fleetbgp/control.sock"
    assert s.control_mode == 0o660
    assert s.control_group == "fleetbgp"
    assert (s.metrics_address, s.metrics_port, s.metrics_enabled) == ("127.0.0.1", 9101, True)
    assert (s.log_destination, s.log_level, s.log_format, s.syslog_facility) == ("stderr", "info", "text", "daemon")
    assert s.log_packets is False
    assert s.api_ack is True
    assert (s.maintenance_mode, s.maintenance_metric) == ("withdraw", 1000)
    assert s.listen is None
    assert s.sources == {} and s.ignored_env == ()


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AgentSettings().log_level = "debug"  # type: ignore[misc]


def test_the_seed_guides_exabgp_environment():
    s = build({"exabgp.log.destination": "syslog", "exabgp.log.level": "INFO", "exabgp.log.rib": "true",
               "exabgp.log.packets": "false", "exabgp.api.ack": "false", "exabgp.tcp.bind": "''",
               "exabgp.daemon.daemonize": "true", "exabgp.cache.attributes": "true", "PATH": "/bin"})
    assert s.log_destination == "syslog"
    assert s.log_level == "info"
    assert s.log_packets is False
    assert s.api_ack is False
    # ExaBGP: an empty bind disables the listener ("no ip to disable"); the guide's comment
    # "Empty = listen on all interfaces" is wrong, and configs move between the two
    assert s.listen == ()
    assert s.ignored_env == ("exabgp.cache.attributes", "exabgp.daemon.daemonize", "exabgp.log.rib")
    assert s.sources["api_ack"] == "environment exabgp.api.ack"


def test_exabgp_underscore_spelling():
    s = build({"exabgp_log_destination": "syslog", "exabgp_log_level": "DEBUG", "exabgp_api_ack": "0",
               "exabgp_log_packets": "true"})
    assert (s.log_destination, s.log_level, s.api_ack, s.log_packets) == ("syslog", "debug", False, True)


@pytest.mark.parametrize("exa,ours", [("DEBUG", "debug"), ("INFO", "info"), ("NOTICE", "info"),
                                      ("WARNING", "warning"), ("ERR", "error"), ("CRIT", "error"),
                                      ("'INFO'", "info")])
def test_exabgp_log_levels(exa, ours):
    assert build({"exabgp.log.level": exa}).log_level == ours


def test_exabgp_log_destinations():
    assert build({"exabgp.log.destination": "stdout"}).log_destination == "stderr"
    s = build({"exabgp.log.destination": "host:192.0.2.50"})
    assert (s.log_destination, s.syslog_address) == ("syslog", "192.0.2.50")
    with pytest.raises(SettingsError, match="log files"):
        build({"exabgp.log.destination": "/var/log/exabgp.log"})


def test_exabgp_tcp_bind_and_port():
    s = build({"exabgp.tcp.bind": "192.0.2.2 2001:db8::2", "exabgp.tcp.port": "1179"})
    assert s.listen == (("192.0.2.2", 1179), ("2001:db8::2", 1179))
    assert s.connect_port == 1179, "ExaBGP dials exabgp.tcp.port when a neighbor has no connect"
    s = build({"exabgp.tcp.bind": "", "exabgp.tcp.port": "1179"})
    assert (s.listen, s.connect_port) == ((), 1179)
    s = build({"exabgp.tcp.port": "1179"})
    assert s.listen == (("0.0.0.0", 1179), ("::", 1179)), "bind not set: the agent's default, on that port"
    s = build({"exabgp.tcp.bind": "192.0.2.2"})
    assert (s.listen, s.connect_port) == ((("192.0.2.2", 179),), 179)
    with pytest.raises(SettingsError):
        build({"exabgp.tcp.bind": "not-an-ip"})


def test_fleetbgp_env_beats_exabgp_and_flags_beat_env():
    env = {"exabgp.log.level": "DEBUG", "FLEETBGP_LOG_LEVEL": "warning", "exabgp.api.ack": "false",
           "FLEETBGP_API_ACK": "true"}
    s = build(env)
    assert (s.log_level, s.api_ack) == ("warning", True)
    assert s.sources["log_level"] == "environment FLEETBGP_LOG_LEVEL"
    s = build(env, ["--log-level", "error", "--no-api-ack"])
    assert (s.log_level, s.api_ack) == ("error", False)
    assert s.sources["log_level"] == "flag --log-level"
    assert build(env, []).log_level == "warning", "an absent flag does not override the environment"


def test_every_fleetbgp_variable():
    s = build({
        "FLEETBGP_CONTROL_SOCKET": "/tmp/x/c.sock", "FLEETBGP_CONTROL_MODE": "0600",
        "FLEETBGP_CONTROL_GROUP": "ops", "FLEETBGP_CONTROL_MAX_CLIENTS": "4",
        "FLEETBGP_METRICS": "0.0.0.0:9200", "FLEETBGP_LOG_DESTINATION": "both",
        "FLEETBGP_LOG_LEVEL": "debug", "FLEETBGP_LOG_FORMAT": "json", "FLEETBGP_SYSLOG_FACILITY": "local3",
        "FLEETBGP_SYSLOG_ADDRESS": "/run/syslog.sock", "FLEETBGP_LOG_PACKETS": "yes",
        "FLEETBGP_API_ACK": "no", "FLEETBGP_MAINTENANCE_MODE": "metric",
        "FLEETBGP_MAINTENANCE_METRIC": "4000", "FLEETBGP_LISTEN": "192.0.2.2:1179, [2001:db8::2]:1179",
    })
    assert s.control_socket == "/tmp/x/c.sock" and s.control_mode == 0o600 and s.control_group == "ops"
    assert s.control_max_clients == 4
    assert (s.metrics_address, s.metrics_port) == ("0.0.0.0", 9200)
    assert (s.log_destination, s.log_level, s.log_format) == ("both", "debug", "json")
    assert (s.syslog_facility, s.syslog_address, s.log_packets, s.api_ack) == (
        "local3", "/run/syslog.sock", True, False)
    assert (s.maintenance_mode, s.maintenance_metric) == ("metric", 4000)
    assert s.listen == (("192.0.2.2", 1179), ("2001:db8::2", 1179))
    assert s.syslog_enabled and s.stderr_enabled


def test_every_run_flag():
    s = build({}, ["--control-socket", "/tmp/c.sock", "--control-mode", "660", "--control-group", "off",
                   "--metrics", "off", "--log-destination", "syslog", "--log-format", "json",
                   "--syslog-facility", "local7", "--syslog-address", "loghost:5514", "--log-packets",
                   "--api-ack", "--maintenance-mode", "metric", "--maintenance-metric", "500",
                   "--listen", "192.0.2.2", "--listen", "[::1]:1179", "--log-level", "DEBUG"])
    assert s.control_socket == "/tmp/c.sock" and s.control_mode == 0o660 and s.control_group is None
    assert s.metrics_port is None and not s.metrics_enabled
    assert (s.log_destination, s.log_format, s.syslog_facility, s.syslog_address) == (
        "syslog", "json", "local7", "loghost:5514")
    assert s.stderr_enabled is False
    assert s.log_packets is True and s.api_ack is True
    assert (s.maintenance_mode, s.maintenance_metric) == ("metric", 500)
    assert s.listen == (("192.0.2.2", 179), ("::1", 1179))
    assert s.log_level == "debug"


@pytest.mark.parametrize("value,address,port", [
    ("9200", "127.0.0.1", 9200), (":9200", "127.0.0.1", 9200), ("0.0.0.0:9101", "0.0.0.0", 9101),
    ("[::]:9102", "::", 9102), ("::1", "::1", 9101), ("192.0.2.5", "192.0.2.5", 9101),
])
def test_metrics_address_forms(value, address, port):
    s = build({"FLEETBGP_METRICS": value})
    assert (s.metrics_address, s.metrics_port) == (address, port)


@pytest.mark.parametrize("env,needle", [
    ({"FLEETBGP_METRICS": "127.0.0.1:99999"}, "FLEETBGP_METRICS"),
    ({"FLEETBGP_METRICS": "localhost:9101"}, "not an IP address"),
    ({"FLEETBGP_CONTROL_SOCKET": "relative.sock"}, "absolute"),
    ({"FLEETBGP_CONTROL_SOCKET": "/" + "x" * 120}, "107"),
    ({"FLEETBGP_CONTROL_MODE": "rw-rw----"}, "octal"),
    ({"FLEETBGP_CONTROL_MODE": "0060"}, "owner"),
    ({"FLEETBGP_LOG_DESTINATION": "file"}, "stderr, syslog, both"),
    ({"FLEETBGP_LOG_LEVEL": "chatty"}, "log level"),
    ({"FLEETBGP_SYSLOG_FACILITY": "local9"}, "FLEETBGP_SYSLOG_FACILITY"),
    ({"FLEETBGP_API_ACK": "maybe"}, "boolean"),
    ({"FLEETBGP_MAINTENANCE_MODE": "pray"}, "withdraw, metric"),
    ({"FLEETBGP_MAINTENANCE_METRIC": "-1"}, "out of range"),
    ({"FLEETBGP_LISTEN": ":179"}, "give an address"),
    ({"FLEETBGP_CONTROL_MAX_CLIENTS": "0"}, "out of range"),
    ({"exabgp.api.ack": "perhaps"}, "exabgp.api.ack"),
])
def test_bad_values_name_their_source(env, needle):
    with pytest.raises(SettingsError, match=needle):
        build(env)


def test_bad_flag_names_the_flag():
    with pytest.raises(SettingsError, match="--maintenance-metric"):
        build({}, ["--maintenance-metric", "lots"])


def test_control_socket_off_and_group_empty():
    s = build({"FLEETBGP_CONTROL_SOCKET": "off", "FLEETBGP_CONTROL_GROUP": ""})
    assert s.control_socket is None and s.control_group is None


def test_as_dict_is_json_friendly():
    import json
    d = build({"FLEETBGP_LISTEN": "[::1]:1179"}).as_dict()
    json.dumps(d)
    assert d["control_mode"] == "0660"
    assert d["metrics"] == "127.0.0.1:9101"
    assert d["listen"] == ["[::1]:1179"]


def test_any_object_works_as_args():
    s = AgentSettings.from_env_and_args({}, argparse.Namespace(log_level="warning", unrelated=1))
    assert s.log_level == "warning"
