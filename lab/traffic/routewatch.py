#!/usr/bin/env python3
"""routewatch: what the lab router does with some prefixes, as it changes, with the time of each change.

Runs in the lab's router container (copied there by lab/fleet/lab.yml as /usr/local/lib/lab/routewatch.py)
while a test changes something on the servers:

    python3 routewatch.py [--interval 0.05] [--duration T] [--until-eof] PREFIX [PREFIX ...]

Every INTERVAL seconds it asks BIRD (over its control socket, one connection for the whole run) for the
paths it holds for each PREFIX, and the kernel (`ip -json route show`) for the next hops the router
forwards to. Each time what it sees for a prefix changes, and once at the start, it prints one JSON line:

    {"t": 1765036800.123, "prefix": "100.10.0.100/32",
     "bird": [{"protocol": "srv1", "via": "10.89.7.11", "med": 100, "best": true}, ...],
     "fib": ["10.89.7.11", "10.89.7.12"]}

`t` is the wall clock (time.time()) of the poll that saw the change: the container shares the host's
clock, so a test compares it with the load client's records and its own actions. A change is seen at
most INTERVAL seconds (plus the poll's own time) after it happened.

It stops after --duration seconds, on SIGTERM/SIGINT, or with --until-eof when its stdin reaches EOF
(the caller closes the pipe). Standard library only: the router container has nothing else.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

BIRD_SOCKET = "/run/bird/bird.ctl"
_REPLY_END = re.compile(r"^\d{4} ")  # a coded line with a space after the code ends a reply
_PATH = re.compile(r"\bunicast \[(\S+)[^\]]*\](\s+\*)?")
_VIA = re.compile(r"^\s+via\s+(\S+)")
_MED = re.compile(r"^\s+BGP\.med:\s+(\d+)")


class Bird:
    """A connection to BIRD's control socket (the protocol birdc speaks: coded reply lines)."""

    def __init__(self, path: str = BIRD_SOCKET) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8", errors="replace")
        self._reply()  # the greeting: 0001 BIRD x.y ready.

    def _reply(self) -> list[str]:
        lines: list[str] = []
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("BIRD closed its control socket")
            line = line.rstrip("\n")
            # "NNNN-text" and "NNNN text" carry a code; " text" continues the previous code's text.
            lines.append(line[5:] if line[:4].isdigit() else line[1:])
            if _REPLY_END.match(line):
                return lines

    def command(self, text: str) -> list[str]:
        self.sock.sendall(text.encode() + b"\n")
        return self._reply()


def parse_paths(lines: list[str]) -> list[dict[str, Any]]:
    """The paths of `show route PREFIX all`: protocol, next hop, MED and whether it is BIRD's best."""
    paths: list[dict[str, Any]] = []
    for line in lines:
        if m := _PATH.search(line):
            paths.append({"protocol": m.group(1), "via": None, "med": None, "best": bool(m.group(2))})
        elif paths and (m := _VIA.match(line)):
            paths[-1]["via"] = m.group(1)
        elif paths and (m := _MED.match(line)):
            paths[-1]["med"] = int(m.group(1))
    return sorted(paths, key=lambda p: (p["protocol"], p["via"] or ""))


def fib_nexthops(prefix: str) -> list[str]:
    """Next hops of the kernel's route for PREFIX in the router's main table (empty: no route)."""
    family = "-6" if ipaddress.ip_network(prefix, strict=False).version == 6 else "-4"
    out = subprocess.run(["ip", family, "-json", "route", "show", "exact", prefix], capture_output=True,
                         text=True, timeout=5, check=False).stdout
    hops: list[str] = []
    for route in json.loads(out or "[]"):
        if route.get("gateway"):
            hops.append(route["gateway"])
        hops.extend(h["gateway"] for h in route.get("nexthops", []) if h.get("gateway"))
    return sorted(hops)


def watch(prefixes: list[str], interval: float, stop: threading.Event) -> None:
    bird = Bird()
    last: dict[str, tuple[str, str]] = {}
    while not stop.is_set():
        started = time.monotonic()
        for prefix in prefixes:
            paths = parse_paths(bird.command(f"show route {prefix} all"))
            fib = fib_nexthops(prefix)
            seen = (json.dumps(paths), json.dumps(fib))
            if last.get(prefix) != seen:
                last[prefix] = seen
                print(json.dumps({"t": round(time.time(), 4), "prefix": prefix, "bird": paths, "fib": fib}),
                      flush=True)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefixes", nargs="+", metavar="PREFIX")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between polls (default 0.05)")
    ap.add_argument("--duration", type=float, default=600.0, help="stop after so many seconds (default 600)")
    ap.add_argument("--until-eof", action="store_true", help="also stop when stdin reaches EOF")
    args = ap.parse_args(argv)
    for p in args.prefixes:
        try:
            ipaddress.ip_network(p, strict=True)
        except ValueError as exc:
            ap.error(f"not a prefix: {p!r} ({exc})")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.until_eof:
        def stop_at_eof() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=stop_at_eof, daemon=True).start()
    timer = threading.Timer(args.duration, stop.set)
    timer.daemon = True  # an early stop must not wait for it
    timer.start()
    try:
        watch(args.prefixes, args.interval, stop)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
