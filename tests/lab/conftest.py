"""Fixtures shared by the lab traffic tools' tests: labweb servers on loopback, IPv6 availability."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence

import pytest

from traffic.labweb import BackgroundServer

StartWeb = Callable[..., BackgroundServer]


@pytest.fixture
def start_web() -> Iterator[StartWeb]:
    """Start labweb in a thread: ``start_web("srv1", ["127.0.0.1:0"], read_timeout=...)``.

    Every server started is stopped at the end of the test.
    """
    started: list[BackgroundServer] = []

    def start(name: str, listens: Sequence[str] = ("127.0.0.1:0",), **kwargs: object) -> BackgroundServer:
        server = BackgroundServer(listens, name, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def ipv6() -> None:
    """Skip (visibly) where the kernel has no IPv6 loopback (e.g. a container with IPv6 disabled)."""
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this host")
