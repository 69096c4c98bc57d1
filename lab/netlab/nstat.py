"""Kernel SNMP/netstat counters of a namespace (``nstat``), e.g. TcpExtTCPMD5Failure."""

from __future__ import annotations

import re

from .ns import Namespace
from .util import which_or_fail


def nstat_counter(ns: Namespace | None, name: str) -> int:
    """Absolute value of counter ``name`` in ``ns`` (``nstat -asz``: absolute, no history update,
    zeros included). Counters are per network namespace."""
    argv = [which_or_fail("nstat"), "-a", "-s", "-z", name]
    cp = ns.run(argv) if ns is not None else __import__("netlab.ns", fromlist=["run"]).run(argv)
    m = re.search(rf"^{re.escape(name)}\s+(\d+)", cp.stdout, re.M)
    return int(m.group(1)) if m else 0


def tcp_established(ns: Namespace, port: int = 179) -> list[tuple[str, str]]:
    """Established TCP connections in ``ns`` with ``port`` at either end: [(local, peer)] as
    ``addr:port`` strings (``ss -Htn state established``)."""
    cp = ns.run(["ss", "-Htn", "state", "established", f"( sport = :{port} or dport = :{port} )"])
    out = []
    for line in cp.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.append((parts[-2], parts[-1]))
    return out
