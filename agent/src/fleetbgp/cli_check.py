"""`fleetbgp check`: a Nagios/Icinga/NRPE plugin over the agent's control socket.

    fleetbgp check [--sessions-warning N|all] [--sessions-critical N|all]
                   [--routes-warning N] [--routes-critical N]
                   [--health ignore|warning|critical] [--maintenance ok|warning|critical]
                   [--reload-failed ok|warning|critical] [--neighbor ADDRESS ...]
                   [--socket PATH] [--timeout SECONDS]

One line on stdout, in the Nagios plugin format, and the Nagios exit code:

    FLEETBGP OK - 2/2 sessions up, 3 routes announced, 1/1 health checks up | sessions_up=2;2:;1:;0;2 ...

    0 OK   1 WARNING   2 CRITICAL   3 UNKNOWN (agent unreachable, bad answer, bad option)

Thresholds are minimums (Nagios range `N:`): fewer established sessions than --sessions-critical is
CRITICAL (default 1: none up), fewer than --sessions-warning is WARNING (default all: any down).
Routes announced = routes the established peers hold from the agent (drained-by-withdrawal peers
hold none). A health check DOWN, FALLING or ended gives --health (default warning); maintenance on
gives --maintenance (default warning); a refused last reload gives --reload-failed (default warning).

Standard library only, no asyncio, no BGP code: it starts fast under NRPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from fleetbgp.control_client import DEFAULT_SOCKET, ControlClient, ControlError

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
LEVELS = {"ok": OK, "ignore": OK, "warning": WARNING, "critical": CRITICAL}
BAD_HEALTH = ("DOWN", "FALLING", "EXIT", "END")
DEFAULT_TIMEOUT = 10.0


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting 2 (2 is CRITICAL for Nagios; usage is UNKNOWN)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _threshold(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _count(text: str) -> int:
    value = _threshold(text)
    if isinstance(value, str):
        raise argparse.ArgumentTypeError("expected a number")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fleetbgp check", description=__doc__.split("\n\n", maxsplit=1)[0],
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. "
                       "Example (NRPE): fleetbgp check --sessions-warning all --sessions-critical 1 "
                       "--routes-critical 1")
    p.add_argument("--sessions-warning", type=_threshold, default="all", metavar="N|all",
                   help="WARNING when fewer sessions are Established (default: all configured)")
    p.add_argument("--sessions-critical", type=_threshold, default=1, metavar="N|all",
                   help="CRITICAL when fewer sessions are Established (default: 1, i.e. none up)")
    p.add_argument("--routes-warning", type=_count, default=None, metavar="N",
                   help="WARNING when the peers hold fewer routes from the agent (default: no check)")
    p.add_argument("--routes-critical", type=_count, default=None, metavar="N",
                   help="CRITICAL when the peers hold fewer routes from the agent (default: no check)")
    p.add_argument("--health", choices=("ignore", "warning", "critical"), default="warning",
                   help="state when a health check is DOWN, FALLING or ended (default: warning)")
    p.add_argument("--maintenance", choices=("ok", "warning", "critical"), default="warning",
                   help="state while maintenance (drain) is on (default: warning)")
    p.add_argument("--reload-failed", choices=("ok", "warning", "critical"), default="warning",
                   help="state when the last config reload was refused (default: warning)")
    p.add_argument("--bfd", choices=("ignore", "warning", "critical"), default="warning",
                   help="state when an Established session's BFD is not Up: no fast failover "
                        "(default: warning)")
    p.add_argument("--neighbor", action="append", metavar="ADDRESS",
                   help="count only this neighbor (repeatable; default: every neighbor)")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help=f"the agent's control socket (default: $FLEETBGP_CONTROL_SOCKET or {DEFAULT_SOCKET})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"give up waiting for the agent after this long (default: {DEFAULT_TIMEOUT:g})")
    return p


@dataclass
class Result:
    status: int = OK
    problems: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    perfdata: list[str] = field(default_factory=list)

    def raise_to(self, status: int, problem: str) -> None:
        if status == OK:
            return
        self.status = max(self.status, status)
        self.problems.append(problem)

    def line(self) -> str:
        text = ", ".join(self.problems + self.summary)
        return f"FLEETBGP {STATUS[self.status]} - {text} | {' '.join(self.perfdata)}"


def _minimum(value: int | str, configured: int) -> int:
    return configured if value == "all" else int(value)


def evaluate(args: argparse.Namespace, status: dict[str, Any], neighbors: list[dict[str, Any]],
             checks: list[dict[str, Any]]) -> Result:
    """The plugin's verdict from the control socket's answers (status, neighbors, health)."""
    r = Result()
    configured = len(neighbors)
    up = [n for n in neighbors if n.get("state") == "Established"]
    down = [str(n.get("address", "?")) for n in neighbors if n.get("state") != "Established"]
    warn_s = _minimum(args.sessions_warning, configured)
    crit_s = _minimum(args.sessions_critical, configured)
    if configured == 0:
        r.raise_to(UNKNOWN, "no neighbor configured" + (" matches --neighbor" if args.neighbor else ""))
    elif len(up) < crit_s:
        r.raise_to(CRITICAL, f"{len(up)}/{configured} sessions up (critical below {crit_s}; down: "
                             f"{' '.join(down)})")
    elif len(up) < warn_s:
        r.raise_to(WARNING, f"{len(up)}/{configured} sessions up (warning below {warn_s}; down: "
                            f"{' '.join(down)})")
    else:
        r.summary.append(f"{len(up)}/{configured} sessions up")
    r.perfdata.append(f"sessions_up={len(up)};{warn_s}:;{crit_s}:;0;{configured}")

    routes = sum(int(v or 0) for n in up for v in ((n.get("prefixes") or {}).get("sent") or {}).values())
    if args.routes_critical is not None and routes < args.routes_critical:
        r.raise_to(CRITICAL, f"{routes} routes announced (critical below {args.routes_critical})")
    elif args.routes_warning is not None and routes < args.routes_warning:
        r.raise_to(WARNING, f"{routes} routes announced (warning below {args.routes_warning})")
    else:
        r.summary.append(f"{routes} routes announced")
    w = "" if args.routes_warning is None else f"{args.routes_warning}:"
    c = "" if args.routes_critical is None else f"{args.routes_critical}:"
    r.perfdata.append(f"routes_announced={routes};{w};{c};0;")

    healthy = [c for c in checks if str(c.get("state", "")).upper() == "UP"]
    bad = [f"{c.get('name', '?')} {str(c.get('state', '')).upper()}" for c in checks
           if str(c.get("state", "")).upper() in BAD_HEALTH]
    if bad:
        r.raise_to(LEVELS[args.health], f"health check {', '.join(bad)}")
        if args.health == "ignore":
            r.summary.append(f"health check {', '.join(bad)} (ignored)")
    if checks:
        r.summary.append(f"{len(healthy)}/{len(checks)} health checks up")
    r.perfdata.append(f"health_up={len(healthy)};;;0;{len(checks)}")

    _bfd(args, r, neighbors)

    if status.get("maintenance"):
        r.raise_to(LEVELS[args.maintenance], "maintenance on (routes drained)")
        if args.maintenance == "ok":
            r.summary.append("maintenance on")
    last = status.get("last_reload") or {}
    if isinstance(last, dict) and last.get("result") == "failure":
        r.raise_to(LEVELS[args.reload_failed], "last config reload refused (previous config runs)")
    return r


def _bfd(args: argparse.Namespace, r: Result, neighbors: list[dict[str, Any]]) -> None:
    """Neighbors with `bfd` (docs/agent/bfd.md): an Established session whose BFD is not Up has no
    fast failover (the router would keep our routes for the hold time). A session BFD holds down
    is not Established: the sessions check counts it. Nothing is said without BFD."""
    with_bfd = [n for n in neighbors if isinstance(n.get("bfd"), dict)]
    if not with_bfd:
        return
    up = [n for n in with_bfd if n["bfd"].get("state") == "Up"]
    unprotected = [str(n.get("address", "?")) for n in with_bfd
                   if n.get("state") == "Established" and n["bfd"].get("state") != "Up"]
    if unprotected:
        problem = f"BFD not up for established {' '.join(unprotected)} (no fast failover)"
        r.raise_to(LEVELS[args.bfd], problem)
        if args.bfd == "ignore":
            r.summary.append(problem + " (ignored)")
    r.summary.append(f"{len(up)}/{len(with_bfd)} BFD sessions up")
    r.perfdata.append(f"bfd_up={len(up)};;;0;{len(with_bfd)}")


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = parser().parse_args(list(argv))
    except UsageError as exc:
        print(f"FLEETBGP UNKNOWN - usage: {exc}", file=out)
        return UNKNOWN
    except SystemExit as exc:  # --help
        return OK if exc.code in (0, None) else UNKNOWN
    path = args.socket or os.environ.get("FLEETBGP_CONTROL_SOCKET") or DEFAULT_SOCKET
    try:
        with ControlClient(path, timeout=args.timeout) as client:
            status = client.call("status")
            req = {"neighbor": args.neighbor} if args.neighbor else {}
            neighbors = client.call("neighbors", **req)["neighbors"]
            checks = client.call("health")["checks"]
    except ControlError as exc:
        print(f"FLEETBGP UNKNOWN - {exc.message}", file=out)
        return UNKNOWN
    except (KeyError, TypeError) as exc:
        print(f"FLEETBGP UNKNOWN - unexpected answer from the agent at {path}: {exc!r}", file=out)
        return UNKNOWN
    result = evaluate(args, status if isinstance(status, dict) else {}, list(neighbors), list(checks))
    print(result.line(), file=out)
    return result.status
