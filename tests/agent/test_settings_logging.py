"""Logging set up from AgentSettings (fleetbgp.logsetup): stderr text/JSON, syslog with facility and
program name, the fallback when syslog is missing, packet logging off, and no secret ever logged.
JSON lines carry `time`, `host` and `event` in every mode: stderr (what the journal keeps), syslog,
and the logging role's file, where rsyslog keeps the agent's object alone on its line; a real BGP
session's lines name their events (the names themselves: test_log_events.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from control_fakes import short_tmpdir
from test_api_process import settings, wait_for

from fleetbgp import logsetup
from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.logutil import log_event
from fleetbgp.settings import AgentSettings

# rsyslog's template for the logging role's JSON file (roles/logging/templates/rsyslog.conf.j2): the
# message property with its leading whitespace removed, nothing else.
RSYSLOG_MSG_RE = re.compile(r"^\s*(.*)$", re.S)


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    packets = logging.getLogger("fleetbgp.packets").level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("fleetbgp.packets").setLevel(packets)
    logsetup.set_secrets([])
    logsetup.secret_filter.set_env_secrets({})


def text_logging(**kw) -> io.StringIO:
    stream = io.StringIO()
    logsetup.setup_logging(replace(AgentSettings(), **kw), stream=stream, environ={})
    return stream


def test_text_to_stderr_by_default():
    stream = text_logging()
    logging.getLogger("fleetbgp.peer").info("peer %s: session established", "192.0.2.1")
    logging.getLogger("fleetbgp").debug("not shown at info")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" INFO fleetbgp.peer: peer 192.0.2.1: session established")
    assert lines[0][:4].isdigit(), "lines start with a timestamp (the interop log checks rely on it)"


def test_level_from_settings():
    stream = text_logging(log_level="debug")
    logging.getLogger("fleetbgp").debug("shown")
    assert "shown" in stream.getvalue()
    stream = text_logging(log_level="error")
    logging.getLogger("fleetbgp").warning("hidden")
    assert stream.getvalue() == ""


def test_json_lines():
    stream = text_logging(log_format="json")
    logging.getLogger("fleetbgp.peer").warning("peer %s: session down: %s", "192.0.2.1", "hold timer expired")
    try:
        raise ValueError("bad thing")
    except ValueError:
        logging.getLogger("fleetbgp").exception("it broke")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "warning"
    assert first["logger"] == "fleetbgp.peer"
    assert first["message"] == "peer 192.0.2.1: session down: hold timer expired"
    assert first["peer"] == "192.0.2.1"
    assert first["pid"] == os.getpid()
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "ValueError: bad thing" in second["exception"]


def test_packet_logging_is_off_unless_asked():
    stream = text_logging(log_level="debug")
    logging.getLogger("fleetbgp.packets").debug("UPDATE 0xffff...")
    assert "UPDATE" not in stream.getvalue()
    stream = text_logging(log_level="info", log_packets=True)
    logging.getLogger("fleetbgp.packets").debug("UPDATE 0xffff...")
    assert "UPDATE" in stream.getvalue()


# -- secrets --------------------------------------------------------------------------------------

def test_config_secrets_are_redacted_everywhere():
    stream = text_logging()
    logsetup.set_secrets(["s3cret-Pw"])
    log = logging.getLogger("fleetbgp.x")
    log.info("password is s3cret-Pw")
    log.info("args too: %s and %r", "s3cret-Pw", {"k": "s3cret-Pw"})
    try:
        raise RuntimeError("failed with key s3cret-Pw")
    except RuntimeError:
        log.exception("error")
    log.info("stack", stack_info=True, extra={})
    out = stream.getvalue()
    assert "s3cret-Pw" not in out
    assert out.count("***") >= 4


def test_secrets_in_json_output_are_redacted_too():
    stream = text_logging(log_format="json")
    logsetup.set_secrets(["s3cret-Pw"])
    try:
        raise RuntimeError("s3cret-Pw")
    except RuntimeError:
        logging.getLogger("fleetbgp").exception("oops %s", "s3cret-Pw")
    assert "s3cret-Pw" not in stream.getvalue()


@pytest.mark.parametrize("line", [
    "neighbor 192.0.2.1 { md5-password hunter2; }",
    'md5-password "hunter2 with spaces";',
    "md5-password 'hunter2';",
    "md5_password=hunter2",
    '{"md5-password": "hunter2"}',
    "MD5-PASSWORD hunter2",
])
def test_anything_after_md5_password_is_redacted_even_if_unknown(line):
    stream = text_logging()
    logging.getLogger("fleetbgp").error("config line: %s", line)
    out = stream.getvalue()
    assert "hunter2" not in out
    assert "***" in out


def test_env_reference_stays_readable():
    stream = text_logging()
    logging.getLogger("fleetbgp").error("md5-password env['BGP_MD5_PASSWORD']; is unset")
    assert "env['BGP_MD5_PASSWORD']" in stream.getvalue()


def test_environment_secrets_are_known_from_the_start():
    stream = io.StringIO()
    logsetup.setup_logging(AgentSettings(), stream=stream,
                           environ={"BGP_MD5_PASSWORD": "from-the-env", "HOME": "/root"})
    logging.getLogger("fleetbgp").info("value from-the-env leaked? home /root")
    out = stream.getvalue()
    assert "from-the-env" not in out
    assert "/root" in out, "only variables named like secrets are treated as secrets"


def test_short_secrets_are_not_replaced_in_free_text():
    stream = text_logging()
    logsetup.set_secrets(["abc"])
    logging.getLogger("fleetbgp").info("abcdef md5-password abc")
    out = stream.getvalue()
    assert "abcdef" in out and "md5-password ***" in out


def test_config_secrets_helper(tmp_path):
    from fleetbgp.config import load

    conf = tmp_path / "f.conf"
    conf.write_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; "
                    "md5-password 'plain-one'; }\n"
                    "neighbor 192.0.2.3 { local-as 65001; peer-as 65000; router-id 192.0.2.2; "
                    "md5-password 'cGxhaW4tdHdv'; md5-base64 true; }\n")
    assert sorted(logsetup.config_secrets(load(str(conf)))) == ["cGxhaW4tdHdv", "plain-one", "plain-two"]


def test_broken_format_string_is_still_redacted():
    stream = text_logging()
    logsetup.set_secrets(["s3cret-Pw"])
    logging.getLogger("fleetbgp").info("two %s %s", "s3cret-Pw")
    out = stream.getvalue()
    assert "s3cret-Pw" not in out and "two" in out


# -- syslog ---------------------------------------------------------------------------------------

@pytest.fixture
def syslog_socket():
    path = str(short_tmpdir() / "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_syslog_facility_and_program_name(syslog_socket):
    path, sock = syslog_socket
    handlers = logsetup.setup_logging(
        AgentSettings(log_destination="syslog", syslog_address=path, syslog_facility="local3"), environ={})
    assert len(handlers) == 1
    logging.getLogger("fleetbgp.peer").warning("peer 192.0.2.1: session down")
    data = sock.recv(4096).decode()
    # <PRI> = facility * 8 + severity: local3 = 19, warning = 4
    assert data.startswith(f"<{19 * 8 + 4}>fleetbgp[{os.getpid()}]: ")
    assert data.rstrip("\x00").endswith("WARNING fleetbgp.peer: peer 192.0.2.1: session down")


def test_syslog_and_stderr_both(syslog_socket):
    path, sock = syslog_socket
    stream = io.StringIO()
    handlers = logsetup.setup_logging(AgentSettings(log_destination="both", syslog_address=path,
                                                    log_format="json"), stream=stream, environ={})
    assert len(handlers) == 2
    logsetup.set_secrets(["s3cret-Pw"])
    logging.getLogger("fleetbgp").info("hello s3cret-Pw")
    data = sock.recv(4096).decode()
    assert data.startswith(f"<{3 * 8 + 6}>fleetbgp[")  # daemon.info
    body = json.loads(data.split(": ", 1)[1].rstrip("\x00"))
    assert body["message"] == "hello ***"
    assert json.loads(stream.getvalue())["message"] == "hello ***"


def test_missing_syslog_falls_back_to_stderr_and_says_so():
    stream = io.StringIO()
    handlers = logsetup.setup_logging(
        AgentSettings(log_destination="syslog", syslog_address=str(short_tmpdir() / "nope")),
        stream=stream, environ={})
    assert len(handlers) == 1 and isinstance(handlers[0], logging.StreamHandler)
    assert "cannot log to syslog" in stream.getvalue()


@pytest.mark.parametrize("text,want", [
    ("/dev/log", "/dev/log"), ("loghost", ("loghost", 514)), ("192.0.2.50:5514", ("192.0.2.50", 5514)),
    ("[2001:db8::5]:5514", ("2001:db8::5", 5514)), ("2001:db8::5", ("2001:db8::5", 514)),
])
def test_syslog_address_forms(text, want):
    assert logsetup.syslog_address(text) == want


def test_bad_syslog_address():
    with pytest.raises(ValueError):
        logsetup.syslog_address("host:port")


def test_ignored_exabgp_variables_are_logged_at_debug():
    stream = io.StringIO()
    s = AgentSettings.from_env_and_args({"exabgp.daemon.user": "x", "exabgp.log.level": "DEBUG"}, None)
    logsetup.setup_logging(s, stream=stream, environ={})
    assert "exabgp.daemon.user" in stream.getvalue()


# -- JSON: time, host and event everywhere ----------------------------------------------------------

def json_logging(**kw: Any) -> io.StringIO:
    stream = io.StringIO()
    logsetup.setup_logging(replace(AgentSettings(log_format="json"), **kw), stream=stream, environ={})
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_common(obj: dict[str, Any]) -> None:
    assert obj["host"] == socket.gethostname()
    assert obj["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), obj["time"]


# -- each destination -------------------------------------------------------------------------------

def test_stderr_json_has_host_and_event_and_a_default_event() -> None:
    stream = json_logging()
    logging.getLogger("fleetbgp.peer").warning("peer %s: session down: %s", "192.0.2.1", "hold timer expired",
                                               extra=log_event("session_down"))
    logging.getLogger("fleetbgp").info("a line that names no event")
    down, plain = lines(stream)
    assert_common(down)
    assert (down["event"], down["peer"], down["level"]) == ("session_down", "192.0.2.1", "warning")
    assert_common(plain)
    assert plain["event"] == "message" == logsetup.DEFAULT_EVENT
    assert "peer" not in plain


def test_text_format_is_unchanged_by_events() -> None:
    stream = io.StringIO()
    logsetup.setup_logging(AgentSettings(), stream=stream, environ={})
    logging.getLogger("fleetbgp").info("reloaded", extra=log_event("config_reloaded"))
    assert stream.getvalue().rstrip().endswith(" INFO fleetbgp: reloaded")


def syslog_message(datagram: bytes) -> str:
    """The MSG part of what SysLogHandler sent: after `<PRI>fleetbgp[PID]: `."""
    text = datagram.decode().rstrip("\x00")
    head, sep, msg = text.partition(": ")
    assert sep and re.fullmatch(r"<\d+>fleetbgp\[\d+\]", head), text
    return msg


def test_syslog_json_has_time_host_and_event(syslog_socket) -> None:
    path, sock = syslog_socket
    logsetup.setup_logging(AgentSettings(log_destination="syslog", syslog_address=path, log_format="json"),
                           environ={})
    logging.getLogger("fleetbgp.health").info("healthcheck web: UP -> DOWN", extra=log_event("healthcheck_state"))
    obj = json.loads(syslog_message(sock.recv(65536)))
    assert_common(obj)
    assert obj["event"] == "healthcheck_state"


def test_file_mode_lines_alone_still_say_when_where_and_what(syslog_socket) -> None:
    """The role's file: rsyslog writes the message without the header that had the time and the host
    (both when the agent logs to syslog and when the journal forwards its stderr)."""
    path, sock = syslog_socket
    stream = json_logging(log_destination="both", syslog_address=path)
    logging.getLogger("fleetbgp").error("reload refused", extra=log_event("config_reload_failed"))
    from_syslog = RSYSLOG_MSG_RE.fullmatch(syslog_message(sock.recv(65536)))
    from_journal = RSYSLOG_MSG_RE.fullmatch(" " + stream.getvalue().rstrip("\n"))
    assert from_syslog is not None and from_journal is not None
    for line in (from_syslog.group(1), from_journal.group(1)):
        assert "\n" not in line
        obj = json.loads(line)
        assert_common(obj)
        assert (obj["event"], obj["level"], obj["message"]) == ("config_reload_failed", "error", "reload refused")


def test_a_host_name_can_be_given() -> None:
    record = logging.LogRecord("fleetbgp", logging.INFO, __file__, 1, "hi", None, None)
    assert json.loads(logsetup.JsonFormatter(host="edge-7").format(record))["host"] == "edge-7"


# -- a real session's events ------------------------------------------------------------------------

def test_a_session_logs_established_and_down_with_its_peer(tmp_path: Path) -> None:
    stream = json_logging(log_level="info")

    def conf(peer: str, local: str, extra: str) -> str:
        return (f"neighbor {peer} {{ router-id {local}; local-address {local}; local-as 65001; peer-as 65001;\n"
                f"  family {{ ipv4 unicast; }} {extra}\n  static {{ route 10.9.0.0/24 next-hop self; }} }}\n")

    async def go() -> None:
        a = Speaker(parse_text(conf("127.0.0.5", "127.0.0.4", "passive;"), str(tmp_path / "a.conf")),
                    settings(listen=(("127.0.0.4", 0),)))
        await a.start()
        port = a.listeners[0].getsockname()[1]
        b = Speaker(parse_text(conf("127.0.0.4", "127.0.0.5", f"connect {port};"), str(tmp_path / "b.conf")),
                    settings(listen=()))
        await b.start()
        try:
            await wait_for(lambda: a.peers["127.0.0.5"].established and b.peers["127.0.0.4"].established,
                           what="session up")
        finally:
            await b.stop()
        await wait_for(lambda: not a.peers["127.0.0.5"].established, what="A sees the session go down")
        await a.stop()

    asyncio.run(go())
    seen = lines(stream)
    for obj in seen:
        assert_common(obj)
    events = [(o["event"], o.get("peer")) for o in seen]
    assert ("agent_started", None) in events
    assert ("session_established", "127.0.0.5") in events
    assert ("session_established", "127.0.0.4") in events
    assert ("session_down", "127.0.0.5") in events, events
    assert ("updates_sent", "127.0.0.4") in events
    down = next(o for o in seen if o["event"] == "session_down")
    assert down["level"] == "warning" and "Administrative Shutdown" in down["message"]


