"""JSON log lines carry `host` and `event` (and `time`) in every mode: stderr (what the journal
keeps), syslog, and the logging role's file, where rsyslog keeps the agent's object alone on its
line. A real BGP session's lines name their events; every event name in the code is documented in
docs/agent/operations.md, and the table lists no name the code does not use."""

from __future__ import annotations

import ast
import asyncio
import functools
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
from test_settings_logging import restore_logging  # noqa: F401 - the fixture, autouse here too

from fleetbgp import logsetup
from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.logutil import log_event
from fleetbgp.settings import AgentSettings

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent" / "src" / "fleetbgp"
OPERATIONS = ROOT / "docs" / "agent" / "operations.md"
# rsyslog's template for the role's JSON file (roles/logging/templates/rsyslog.conf.j2): the
# message property with its leading whitespace removed, nothing else.
RSYSLOG_MSG_RE = re.compile(r"^\s*(.*)$", re.S)


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


@pytest.fixture
def syslog_socket():
    path = str(short_tmpdir() / "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


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


# -- the names and the docs -------------------------------------------------------------------------

@functools.cache
def names_in_code() -> dict[str, list[str]]:
    """Every event name given to log_event(...) in the agent (both sides of a conditional), with
    where."""
    found: dict[str, list[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "log_event":
                assert len(node.args) == 1, f"{path}:{node.lineno}: log_event takes one name"
                consts = [c.value for c in ast.walk(node.args[0])
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                assert consts, f"{path}:{node.lineno}: the event name must be written out, not computed"
                for name in consts:
                    found.setdefault(name, []).append(f"{path.relative_to(AGENT)}:{node.lineno}")
    return found


def names_in_docs() -> set[str]:
    text = OPERATIONS.read_text()
    table = text.split("| `event` | level | logged when |", 1)[1].split("\n\n", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:] if row.startswith("|")]
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}


def test_the_code_names_events() -> None:
    found = names_in_code()
    assert {"session_established", "session_down", "healthcheck_state", "config_reloaded",
            "api_process_exit"} <= set(found)
    bad = [n for n in found if not re.fullmatch(r"[a-z]+(_[a-z]+)*", n)]
    assert not bad, f"event names are lower_snake_case: {bad}"


def test_every_event_name_is_documented_and_only_those() -> None:
    code, docs = set(names_in_code()), names_in_docs()
    assert code - docs == set(), f"log events missing from {OPERATIONS.name}'s table: {sorted(code - docs)}"
    assert docs - code - {logsetup.DEFAULT_EVENT} == set(), \
        f"{OPERATIONS.name} lists events no code logs: {sorted(docs - code - {logsetup.DEFAULT_EVENT})}"
