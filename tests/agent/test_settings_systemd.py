"""systemd's notify protocol (fleetbgp.systemd): READY/RELOADING/STOPPING/STATUS datagrams on
$NOTIFY_SOCKET, the watchdog task when WATCHDOG_USEC is set, and no-ops outside systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from control_fakes import short_tmpdir

from fleetbgp import systemd
from fleetbgp.systemd import Notifier


@pytest.fixture
def notify_socket():
    path = str(short_tmpdir() / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def recv(sock) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_outside_systemd_everything_is_a_noop():
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False and n.status("x") is False and n.watchdog() is False
    assert n.watchdog_interval is None


def test_ready_status_reloading_stopping(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.ready("2/2 sessions established") is True
    assert recv(sock) == ["READY=1", "STATUS=2/2 sessions established"]
    n.reloading()
    lines = recv(sock)
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
    n.status("multi\nline   text")
    assert recv(sock) == ["STATUS=multi line text"]
    n.stopping()
    assert recv(sock) == ["STOPPING=1"]


def test_abstract_namespace_socket():
    name = f"fleetbgp-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert recv(sock) == ["READY=1"]
    finally:
        sock.close()


def test_unreachable_notify_socket_warns_once_and_never_raises(caplog):
    n = Notifier({"NOTIFY_SOCKET": str(short_tmpdir() / "gone")})
    assert n.ready() is False
    assert n.ready() is False
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1


@pytest.mark.parametrize("env,interval", [
    ({"WATCHDOG_USEC": "30000000"}, 30.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(env, interval):
    assert Notifier(env).watchdog_interval == interval


def test_watchdog_task_pings_at_half_the_interval(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})

    async def go():
        task = n.start_watchdog()
        assert task is not None
        assert n.start_watchdog() is task, "started once"
        await asyncio.sleep(0.35)
        await n.stop_watchdog()
        assert task.done()

    asyncio.run(go())
    pings = []
    sock.settimeout(0.2)
    try:
        while True:
            pings.append(sock.recv(100).decode())
    except TimeoutError:
        pass
    assert pings.count("WATCHDOG=1") >= 3  # t = 0, 0.1, 0.2, 0.3


def test_watchdog_skips_pings_while_unhealthy(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})

    async def go():
        n.start_watchdog(healthy=lambda: False)
        await asyncio.sleep(0.2)
        await n.stop_watchdog()

    asyncio.run(go())
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(100)


def test_no_watchdog_task_without_watchdog_usec(notify_socket):
    path, _sock = notify_socket

    async def go():
        return Notifier({"NOTIFY_SOCKET": path}).start_watchdog()

    assert asyncio.run(go()) is None


def test_sd_notify_helper(notify_socket, monkeypatch):
    path, sock = notify_socket
    monkeypatch.setattr(systemd, "_default", Notifier({"NOTIFY_SOCKET": path}))
    assert systemd.sd_notify("READY=1\nSTATUS=ok")
    assert recv(sock) == ["READY=1", "STATUS=ok"]
