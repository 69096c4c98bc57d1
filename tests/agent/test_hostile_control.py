"""Hostile clients of the control socket (issue 13): arguments out of range, deeply nested JSON,
half-sent lines and floods of refused connections. Real server on a unix socket in a tmp dir."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time

import pytest
from control_fakes import Raw, conn_fixture, served, speaker_fixture  # noqa: F401 (fixtures)
from test_control_server import err, ok

from fleetbgp.control import commands
from fleetbgp.control import server as control_server


@contextlib.contextmanager
def raw_client(speaker, monkeypatch, **limits):
    """Set the control server's limits (LINE_TIMEOUT=...), serve `speaker`, yield (server, raw client)."""
    for name, value in limits.items():
        monkeypatch.setattr(control_server, name, value)
    with served(speaker) as (server, path, _lt):
        c = Raw(path)
        yield server, c
        c.close()


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- arguments are checked before the first byte of the reply ---------------------------------------

def test_huge_routes_limit_is_a_bad_request_and_the_connection_carries_on(conn):
    conn.send(b'{"v":1,"id":9,"cmd":"routes","args":{"limit":9223372036854775808}}\n')
    e = err(conn.reply(), "bad_request")
    assert "limit" in e["message"]
    assert ok(conn.ask("routes", {"limit": commands.MAX_ROUTE_LIMIT}))["count"] == 6
    assert ok(conn.ask("status", id=10))["pid"] == 4242


@pytest.mark.parametrize(("cmd", "args", "needle"), [
    ("routes", {"limit": commands.MAX_ROUTE_LIMIT + 1}, "limit"),
    ("routes", {"limit": 2 ** 64}, "limit"),
    ("routes", {"limit": True}, "limit"),
    ("routes", {"limit": 1.5}, "limit"),
    ("routes", {"received": 1}, "received"),
    ("routes", {"match": ["exact"]}, "match"),
    ("withdraw", {"all": "no", "owner": "job"}, "all"),
    ("withdraw", {"all": 1, "owner": "job"}, "all"),
    ("maintenance", {"state": 1}, "state"),
])
def test_bad_arguments_are_bad_requests_naming_the_argument(conn, speaker, cmd, args, needle):
    before = {a: dict(p.rib_out.routes) for a, p in speaker.peers.items()}
    e = err(conn.ask(cmd, args), "bad_request")
    assert needle in e["message"]
    assert {a: dict(p.rib_out.routes) for a, p in speaker.peers.items()} == before, "nothing changed"
    assert ok(conn.ask("status"))["pid"] == 4242


def test_withdraw_all_false_is_not_withdraw_all(conn, speaker):
    ok(conn.ask("announce", {"route": "100.10.3.1/32 next-hop self", "owner": "job"}))
    err(conn.ask("withdraw", {"all": False, "owner": "job"}), "bad_request")  # no routes given
    assert ok(conn.ask("routes", {"prefix": "100.10.3.1/32"}))["count"] == 3


@pytest.mark.parametrize("line", [
    b'{"v":1,"id":NaN,"cmd":"status"}\n',
    b'{"v":1,"id":Infinity,"cmd":"status"}\n',
    b'{"v":1,"id":true,"cmd":"status"}\n',
])
def test_ids_that_cannot_be_echoed_as_json_are_refused(conn, line):
    conn.send(line)
    raw = conn.file.readline()
    reply = json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} in the reply: {raw!r}"))
    err(reply, "bad_request")
    assert reply["id"] is None
    assert "id" in reply["error"]["message"]


def test_version_true_is_not_version_1(conn):
    conn.send(b'{"v":true,"id":2,"cmd":"health"}\n')
    err(conn.reply(), "unsupported_version")


# -- nesting --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"[" * 200_000 + b"\n",
    b'{"v":1,"id":1,"cmd":"status","args":{"x":' + b"[" * 200_000 + b"\n",
    b'{"v":1,"id":1,"cmd":"maintenance","args":{"state":' + b"[" * 900 + b"]" * 900 + b"}}\n",
    b'{"v":1,"id":1,"cmd":"status","args":{"x":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}}\n",
])
def test_deeply_nested_json_is_a_bad_request(conn, line):
    conn.send(line)
    e = err(conn.reply(), "bad_request")
    assert "nested" in e["message"]
    assert len(e["message"]) < 500
    assert ok(conn.ask("status"))["pid"] == 4242


def test_ordinary_nesting_is_fine(conn):
    e = err(conn.ask("maintenance", {"state": [[["on"]]]}), "bad_request")
    assert "state" in e["message"]


# -- slow and silent clients ---------------------------------------------------------------------------

def test_half_a_line_is_dropped_after_the_short_deadline(speaker, monkeypatch):
    with raw_client(speaker, monkeypatch, LINE_TIMEOUT=0.2) as (server, c):
        c.send(b'{"v":1,"id":1,"cmd":')
        start = time.monotonic()
        rest = c.file.read()  # until the server closes the connection
        assert time.monotonic() - start < 5, "dropped after LINE_TIMEOUT, not after IDLE_TIMEOUT"
        assert not rest or json.loads(rest)["ok"] is False
        assert wait_until(lambda: not server._clients), "the slot is free again"


def test_a_pause_between_complete_requests_is_not_a_half_line(speaker, monkeypatch):
    with raw_client(speaker, monkeypatch, LINE_TIMEOUT=0.2) as (_s, c):
        assert ok(c.ask("status"))["pid"] == 4242
        time.sleep(0.4)
        assert ok(c.ask("status"))["pid"] == 4242


def test_an_over_long_line_that_never_ends_is_dropped_too(speaker, monkeypatch):
    with raw_client(speaker, monkeypatch, LINE_TIMEOUT=0.3, MAX_LINE=1000) as (server, c):
        c.send(b"x" * 5000)  # too long, no newline, then silence
        assert wait_until(lambda: server._clients)
        assert wait_until(lambda: not server._clients), "the slot is free again"


def test_a_client_that_never_reads_its_replies_is_dropped(speaker, monkeypatch):
    with raw_client(speaker, monkeypatch, IDLE_TIMEOUT=0.3) as (server, c):
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(b'{"v":1,"id":1,"cmd":"neighbors"}\n' * 3000)  # megabytes of replies, never read
        assert wait_until(lambda: server._clients)
        assert wait_until(lambda: not server._clients, 8.0), "the slot is free again"


def refuse(path: str, times: int = 1) -> None:
    """Connect `times` times while the only slot is held: each gets a `busy` reply, then closes."""
    for _ in range(times):
        c = Raw(path)
        err(c.reply(), "busy")
        c.close()


def test_refused_connections_are_logged_rate_limited(speaker, caplog):
    with served(speaker, control_max_clients=1) as (_s, path, _lt):
        holder = Raw(path)
        assert ok(holder.ask("status"))["pid"] == 4242
        with caplog.at_level(logging.WARNING, logger="fleetbgp.control"):
            refuse(path, 40)
        refusals = [r for r in caplog.records if r.name == "fleetbgp.control" and "refus" in r.getMessage()]
        assert 1 <= len(refusals) <= 2, [r.getMessage() for r in refusals]
        holder.close()


def test_refusal_log_summarises_the_refusals_it_did_not_log(speaker, caplog, monkeypatch):
    monkeypatch.setattr(control_server, "REFUSED_LOG_INTERVAL", 0.3)
    with served(speaker, control_max_clients=1) as (_s, path, _lt):
        holder = Raw(path)
        assert ok(holder.ask("status"))["pid"] == 4242
        with caplog.at_level(logging.WARNING, logger="fleetbgp.control"):
            refuse(path, 5)
            time.sleep(0.4)
            refuse(path)
        refusals = [r.getMessage() for r in caplog.records if "refus" in r.getMessage()]
        assert len(refusals) == 2, refusals
        assert "4 more" in refusals[1], refusals
        holder.close()
