#!/usr/bin/env python3
"""loadclient: open-loop HTTP load against service addresses, with a record of every request.

Runs in the lab's client container (standard library only) and from the repository (``import
traffic.loadclient``). It measures what a service address looks like from a client: which server
answers, and when and for how long requests fail (failover, drain, BFD, zero-loss tests).

Usage::

    python3 loadclient.py [--rate N] [--duration T] [--port P] [--path PATH] [--timeout S]
                          [--stretch-gap S] [--until-eof] [--json] [--quiet] ADDR [ADDR ...]

    python3 loadclient.py --rate 100 --duration 10 100.10.0.100 100.10.0.200
    python3 loadclient.py --json --until-eof --duration 0 2001:db8::100 < fifo > result.json

ADDR is an IPv4 or IPv6 address (``2001:db8::1`` or ``[2001:db8::1]``), optionally with its own
port (``127.0.0.1:8080``, ``[::1]:8080``) overriding ``--port``; host names are not accepted.

Open loop: request i to an address starts at t0 + i/rate whatever happened to earlier requests,
so a slow or dead server never slows the schedule down (only the timeout bounds how many are in
flight). ``--rate`` (default 50, a float) is per address; ``--duration`` (default 10 s; 0 = until
stopped) gives ceil(rate × duration) requests per address. Each request is a new TCP connection:
connect, ``GET PATH HTTP/1.1`` with ``Host`` and ``Connection: close``, read the response to EOF
(or to its Content-Length). It succeeds when the status is 200 and the body is not empty; the
body's first line is the answering host's name. ``--timeout`` (default 1 s) bounds the whole
request, connect included.

Stopping: after the last request of the duration has finished, or gracefully (no new requests;
in-flight ones get the rest of their timeout) on SIGTERM, SIGINT or, with ``--until-eof``, when
stdin reaches EOF (the caller holds a pipe open and closes it to stop; with stdin at /dev/null it
stops at once). A second signal aborts the in-flight requests. The summary is printed in every case.

Output on stdout: a short human summary, or with ``--json`` exactly one JSON document
``{"summary": {...}, "records": [...]}`` (diagnostics always go to stderr; ``--quiet`` silences
them). Exit status: 0 when it ran, whatever the requests did (judging is the caller's job); 2 on
bad usage.

Records (``Record``; one per request, in start order)::

    t        wall clock (time.time()) when the request started, epoch seconds
    addr     the ADDR it went to (as normalized: ``::1``, ``127.0.0.1:8080``, ``[::1]:8080``)
    host     the answering host's name (first body line) when ok, else null
    ok       connected, status 200, body not empty
    latency  seconds from start to the end of the response or the error (monotonic clock)
    error    null, or: refused | timeout | reset | unreachable | bad-status NNN | empty |
             other: DETAIL (e.g. ``other: EMFILE``, ``other: truncated``, ``other: aborted``)
    lag      seconds the request started after its scheduled time (the client's own slowness)

Summary keys (``summarize()``; times are epoch seconds, durations seconds, null when undefined)::

    schema         1 (bumped when a key changes meaning)
    requests, ok, failed
    started        when the schedule started (from the records alone: the first start)
    ended          when it ended: the end of --duration, or when it was stopped (from the records
                   alone: the last end)
    duration       ended - started
    rate           requests / duration (all addresses)
    finished       when the last request finished
    errors         {kind: count}, most frequent first
    addresses      {addr: {requests, ok, failed, errors, hosts: {name: {count, share}},
                           first_failure, last_failure, stretches}}
                   share: the fraction of that address's successful requests the host answered
    first_failure, last_failure   start times of the first and last failed request
    stretches      {gap, count, longest: {start, end, seconds, failures} | null}
                   failures (all addresses, by start time) whose starts are at most ``gap``
                   (--stretch-gap, default 1 s) apart form one stretch, spanning from its first
                   failure's start to its last failure's end (start + latency); ``longest`` is the
                   longest of them in seconds
    latency        {p50, p90, p99, max, mean} of the successful requests
    scheduler_lag  {max, p99, mean} of ``lag``: when max approaches 1/rate or more, the client,
                   not the servers, was the bottleneck
    run            (added by the program, not by summarize()) {addresses, port, path, rate,
                   duration, timeout, stopped_by: duration | eof | SIGTERM | SIGINT}

From Python (the e2e harness)::

    from traffic.loadclient import records_from_json, summarize
    records = records_from_json(output)            # the JSON text, or the parsed document
    summary = summarize(records, stretch_gap=0.5)  # recompute, e.g. with another gap
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

SCHEMA = 1
MAX_RESPONSE = 1024 * 1024  # bytes; the lab's answers are a few dozen
RECV_SIZE = 65536
START_DELAY = 0.01  # seconds between setting up the schedulers and the first request
LAG_WARNING = 0.05  # seconds of scheduler lag that the human summary warns about

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})(?: |\r?$)")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


# --------------------------------------------------------------------------------------------
# Records and the summary (pure; used by the e2e harness too)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One request; see the module docstring for the fields."""

    t: float
    addr: str
    host: str | None
    ok: bool
    latency: float
    error: str | None
    lag: float = 0.0

    @property
    def end(self) -> float:
        return self.t + self.latency

    def to_dict(self) -> dict[str, Any]:
        # Microseconds are plenty and keep the JSON of thousands of records readable.
        return {
            "t": round(self.t, 6),
            "addr": self.addr,
            "host": self.host,
            "ok": self.ok,
            "latency": round(self.latency, 6),
            "error": self.error,
            "lag": round(self.lag, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            t=float(data["t"]),
            addr=str(data["addr"]),
            host=None if data.get("host") is None else str(data["host"]),
            ok=bool(data["ok"]),
            latency=float(data["latency"]),
            error=None if data.get("error") is None else str(data["error"]),
            lag=float(data.get("lag", 0.0)),
        )


@dataclass(slots=True)
class Stretch:
    """Failures close together in time: from the first one's start to the last one's end."""

    start: float
    end: float
    failures: int = 1
    last_start: float = field(default=0.0, repr=False)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _r(self.start),
            "end": _r(self.end),
            "seconds": _r(self.seconds),
            "failures": self.failures,
        }


def records_from_json(data: str | bytes | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Record]:
    """Records from loadclient's ``--json`` output: its text, the parsed document, or its list."""
    doc: Any = json.loads(data) if isinstance(data, str | bytes) else data
    if isinstance(doc, Mapping):
        doc = doc["records"]
    return [Record.from_dict(item) for item in doc]


def failure_stretches(records: Iterable[Record], gap: float) -> list[Stretch]:
    """Group the failed records into stretches whose consecutive starts are at most ``gap`` apart."""
    stretches: list[Stretch] = []
    current: Stretch | None = None
    for rec in sorted((r for r in records if not r.ok), key=lambda r: r.t):
        if current is not None and rec.t - current.last_start <= gap:
            current.failures += 1
            current.last_start = rec.t
            # max(): a timeout that started earlier can end after a refusal that started later.
            current.end = max(current.end, rec.end)
        else:
            current = Stretch(start=rec.t, end=rec.end, last_start=rec.t)
            stretches.append(current)
    return stretches


def _stretch_summary(records: Sequence[Record], gap: float) -> dict[str, Any]:
    stretches = failure_stretches(records, gap)
    # max() keeps the first of equals: the earliest of equally long stretches.
    longest = max(stretches, key=lambda s: (s.seconds, s.failures), default=None)
    return {"gap": gap, "count": len(stretches), "longest": longest.to_dict() if longest else None}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _error_counts(records: Iterable[Record]) -> dict[str, int]:
    counts = Counter(r.error or "other: unknown" for r in records if not r.ok)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _address_summary(records: Sequence[Record], gap: float) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    hosts = Counter(r.host for r in ok if r.host is not None)
    return {
        "requests": len(records),
        "ok": len(ok),
        "failed": len(failed),
        "errors": _error_counts(failed),
        "hosts": {
            name: {"count": count, "share": round(count / len(ok), 6)}
            for name, count in sorted(hosts.items())
        },
        "first_failure": _r(min((r.t for r in failed), default=None)),
        "last_failure": _r(max((r.t for r in failed), default=None)),
        "stretches": _stretch_summary(failed, gap),
    }


def _distribution(values: Iterable[float], keys: Sequence[tuple[str, float]]) -> dict[str, float | None]:
    ordered = sorted(values)
    result: dict[str, float | None] = {name: _r(_percentile(ordered, q)) for name, q in keys}
    result["max"] = _r(ordered[-1]) if ordered else None
    result["mean"] = _r(sum(ordered) / len(ordered)) if ordered else None
    return result


def summarize(
    records: Iterable[Record],
    stretch_gap: float = 1.0,
    *,
    addresses: Sequence[str] | None = None,
    started: float | None = None,
    ended: float | None = None,
) -> dict[str, Any]:
    """The summary of a run (see the module docstring for the keys); a pure function.

    ``addresses`` fixes the order of ``summary["addresses"]`` and lists addresses without
    records too (default: in order of first request). ``started``/``ended`` are the schedule's
    window; without them the records' first start and last end are used.
    """
    recs = sorted(records, key=lambda r: r.t)
    order = list(addresses) if addresses is not None else list(dict.fromkeys(r.addr for r in recs))
    order += [a for a in dict.fromkeys(r.addr for r in recs) if a not in order]
    by_addr: dict[str, list[Record]] = {a: [] for a in order}
    for rec in recs:
        by_addr[rec.addr].append(rec)
    failed = [r for r in recs if not r.ok]
    finished = max((r.end for r in recs), default=None)
    if started is None:
        started = recs[0].t if recs else None
    if ended is None:
        ended = finished
    duration = ended - started if started is not None and ended is not None else None
    return {
        "schema": SCHEMA,
        "requests": len(recs),
        "ok": len(recs) - len(failed),
        "failed": len(failed),
        "started": _r(started),
        "ended": _r(ended),
        "duration": _r(duration),
        "rate": _r(len(recs) / duration) if duration else None,
        "finished": _r(finished),
        "errors": _error_counts(failed),
        "addresses": {a: _address_summary(by_addr[a], stretch_gap) for a in order},
        "first_failure": _r(failed[0].t if failed else None),
        "last_failure": _r(failed[-1].t if failed else None),
        "stretches": _stretch_summary(failed, stretch_gap),
        "latency": _distribution(
            (r.latency for r in recs if r.ok), [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
        ),
        "scheduler_lag": _distribution((r.lag for r in recs), [("p99", 0.99)]),
    }


# --------------------------------------------------------------------------------------------
# The human summary
# --------------------------------------------------------------------------------------------


def _clock(t: float) -> str:
    """Epoch seconds -> local HH:MM:SS.mmm (the lab's logs use the same clock)."""
    ms = round(t * 1000)
    return time.strftime("%H:%M:%S", time.localtime(ms // 1000)) + f".{ms % 1000:03d}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _errors_text(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in errors.items())


def format_summary(summary: Mapping[str, Any]) -> str:
    """The short human-readable summary (a few lines) of a summary dict."""
    duration = summary["duration"] or 0.0
    rate = summary["rate"] or 0.0
    head = (
        f"load: {summary['requests']} requests in {duration:.1f} s ({rate:.1f}/s) "
        f"to {', '.join(summary['addresses'])}: {summary['ok']} ok, {summary['failed']} failed"
    )
    if summary["errors"]:
        head += f" ({_errors_text(summary['errors'])})"
    lines = [head]
    for addr, info in summary["addresses"].items():
        line = f"  {addr}: {info['requests']} requests, {info['ok']} ok"
        if info["failed"]:
            line += f", {info['failed']} failed ({_errors_text(info['errors'])})"
        hosts = ", ".join(
            f"{name} {h['share'] * 100:.1f}% ({h['count']})" for name, h in info["hosts"].items()
        )
        lines.append(line + (f": {hosts}" if hosts else ""))
    lines.append("  failures: " + _stretches_text(summary["stretches"], summary["failed"]))
    latency, lag = summary["latency"], summary["scheduler_lag"]
    lines.append(
        f"  latency: p50 {_ms(latency['p50'])}, p99 {_ms(latency['p99'])}, max {_ms(latency['max'])}; "
        f"scheduler lag: p99 {_ms(lag['p99'])}, max {_ms(lag['max'])}"
    )
    if lag["max"] is not None and lag["max"] > LAG_WARNING:
        lines.append(
            f"  WARNING: requests started up to {_ms(lag['max'])} late: the client itself may have "
            "been the bottleneck"
        )
    stopped_by = summary.get("run", {}).get("stopped_by")
    if stopped_by not in (None, "duration"):
        lines.append(f"  stopped early ({stopped_by}) after {duration:.1f} s")
    return "\n".join(lines)


def _stretches_text(stretches: Mapping[str, Any], failed: int) -> str:
    if not failed:
        return "none"
    count = stretches["count"]
    longest = stretches["longest"]
    return (
        f"{failed} in {count} stretch{'es' if count != 1 else ''}; longest {longest['seconds']:.2f} s "
        f"({longest['failures']} failed) from {_clock(longest['start'])} to {_clock(longest['end'])}"
    )


# --------------------------------------------------------------------------------------------
# Targets and one request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: ``label`` is the ``addr`` of its records."""

    label: str
    family: socket.AddressFamily
    sockaddr: tuple[Any, ...]
    request: bytes


def parse_target(spec: str, default_port: int, path: str = "/") -> Target:
    """ADDR (``1.2.3.4``, ``2001:db8::1``, ``[2001:db8::1]``, optionally ``:PORT``) -> Target.

    Raises ValueError for anything that is not an IP address literal (with an optional port).
    """
    text = spec.strip()
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{spec!r}: expected [IPV6] or [IPV6]:PORT")
        port = _port(rest[1:], spec) if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, spec)
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{spec!r} is not an IP address") from None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    bracketed = f"[{ip}]" if ip.version == 6 else str(ip)
    label = str(ip) if port is None else f"{bracketed}:{port}"
    real_port = default_port if port is None else port
    # The sockaddr is resolved once (numeric only), so no request ever waits for getaddrinfo.
    sockaddr = socket.getaddrinfo(str(ip), real_port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)[
        0
    ][4]
    host_header = bracketed if real_port == 80 else f"{bracketed}:{real_port}"
    request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
    return Target(label=label, family=family, sockaddr=tuple(sockaddr), request=request)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"{spec!r}: bad port {text!r}")
    return int(text)


def classify_error(exc: BaseException) -> str:
    """An exception from connect/send/recv -> the record's short error kind."""
    if isinstance(exc, TimeoutError):  # before OSError: TimeoutError is one
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return "unreachable"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"other: {errno.errorcode.get(exc.errno, str(exc.errno))}"
    return f"other: {type(exc).__name__}"


def judge_response(data: bytes, eof: bool) -> tuple[str | None, str | None]:
    """The raw response -> (host, error): exactly one of them is None."""
    if not data:
        return None, "other: no response"
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")  # tolerate bare-LF servers
    if not sep:
        return None, "other: truncated" if eof else "other: response too large"
    match = _STATUS_LINE.match(head)
    if match is None:
        return None, "other: bad response"
    status = int(match.group(1))
    if status != 200:
        return None, f"bad-status {status}"
    length = _CONTENT_LENGTH.search(head)
    if length is not None and len(body) < int(length.group(1)):
        return None, "other: truncated"
    first_line = body.split(b"\n", 1)[0].strip()
    if not first_line:
        return None, "empty"
    return first_line.decode("utf-8", "replace"), None


def _complete(data: bytes) -> bool:
    """Whether the response has all of its Content-Length (no need to wait for the EOF)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = _CONTENT_LENGTH.search(head)
    return length is not None and len(body) >= int(length.group(1))


async def fetch(target: Target, timeout: float) -> tuple[str | None, str | None]:
    """One request on a new connection -> (host, error); never raises except CancelledError."""
    loop = asyncio.get_running_loop()
    sock: socket.socket | None = None
    data = b""
    eof = False
    try:
        async with asyncio.timeout(timeout):
            # The raw socket API, not streams: it is the cheapest way through asyncio and keeps
            # the client far from being the bottleneck.
            sock = socket.socket(target.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, target.sockaddr)
            await loop.sock_sendall(sock, target.request)
            while len(data) < MAX_RESPONSE:
                chunk = await loop.sock_recv(sock, RECV_SIZE)
                if not chunk:
                    eof = True
                    break
                data += chunk
                if _complete(data):
                    break
    except Exception as exc:  # classified, never raised: every request gets a record
        return None, classify_error(exc)
    finally:
        if sock is not None:
            sock.close()
    return judge_response(data, eof)


# --------------------------------------------------------------------------------------------
# The open-loop scheduler
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    records: list[Record]
    started: float  # wall clock of the schedule's t0
    ended: float  # wall clock of the schedule's end (the duration's end, or the stop)
    stopped_by: str


class LoadRun:
    """Issues the requests of one run; ``stop()`` (any thread via the loop) ends it gracefully."""

    def __init__(self, targets: Sequence[Target], rate: float, duration: float, timeout: float) -> None:
        self.targets = list(targets)
        self.rate = rate
        self.duration = duration
        self.timeout = timeout
        # ceil(): request i starts at i/rate, and every start before the duration's end counts.
        self.count: int | None = math.ceil(rate * duration - 1e-9) if duration > 0 else None
        self.records: list[Record] = []
        self.stopped_by: str | None = None
        self._stop_requests = 0
        self._stop_wall: float | None = None
        self._schedulers: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()

    def stop(self, reason: str) -> None:
        """Graceful stop: no new requests. A second call aborts the in-flight ones."""
        self._stop_requests += 1
        if self._stop_requests > 1:
            for task in list(self._inflight):
                task.cancel()
            return
        if self.stopped_by is None:  # not when the duration is over and in-flight ones finish
            self.stopped_by = reason
            self._stop_wall = time.time()
        for task in self._schedulers:
            task.cancel()

    async def run(self) -> RunResult:
        t0 = time.monotonic() + START_DELAY
        wall0 = time.time() + START_DELAY
        self._schedulers = [asyncio.create_task(self._schedule(target, t0)) for target in self.targets]
        await asyncio.gather(*self._schedulers, return_exceptions=True)
        if self.stopped_by is None:
            self.stopped_by = "duration"
            ended = max(wall0 + self.duration, time.time())
        else:
            # A stop can come before the first scheduled start (stdin at /dev/null).
            ended = max(wall0, self._stop_wall or time.time())
        while self._inflight:  # each is bounded by its own timeout
            await asyncio.wait(set(self._inflight))
        self.records.sort(key=lambda r: r.t)
        return RunResult(self.records, started=wall0, ended=ended, stopped_by=self.stopped_by)

    async def _schedule(self, target: Target, t0: float) -> None:
        i = 0
        while self.stopped_by is None and (self.count is None or i < self.count):
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif i % 16 == 0:
                # Behind schedule: catch up, but let finished requests be read in between.
                await asyncio.sleep(0)
            task = asyncio.create_task(self._request(target, t0 + i / self.rate))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            i += 1

    async def _request(self, target: Target, due: float) -> None:
        start = time.monotonic()
        t = time.time()
        try:
            host, error = await fetch(target, self.timeout)
        except asyncio.CancelledError:  # a second signal: record it, end quietly
            host, error = None, "other: aborted"
        latency = time.monotonic() - start
        # Rounded here as in the JSON, so that summarize() on the JSON's records gives the same summary.
        self.records.append(
            Record(
                t=round(t, 6),
                addr=target.label,
                host=host,
                ok=error is None,
                latency=round(latency, 6),
                error=error,
                lag=round(max(0.0, start - due), 6),
            )
        )


# --------------------------------------------------------------------------------------------
# The program
# --------------------------------------------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[Target]]:
    parser = argparse.ArgumentParser(
        prog="loadclient.py",
        description="Open-loop HTTP load: RATE new connections per second to each ADDR; "
        "reports who answered and when requests failed.",
    )
    parser.add_argument("addrs", nargs="+", metavar="ADDR", help="IPv4/IPv6 address, optionally with :PORT")
    parser.add_argument("--rate", type=_positive, default=50.0, help="requests per second per address (50)")
    parser.add_argument(
        "--duration", type=_non_negative, default=10.0, help="seconds, 0 = until stopped (10)"
    )
    parser.add_argument("--port", type=int, default=80, help="TCP port (80)")
    parser.add_argument("--path", default="/", help="request path (/)")
    parser.add_argument("--timeout", type=_positive, default=1.0, help="seconds per request, all of it (1.0)")
    parser.add_argument(
        "--stretch-gap",
        type=_non_negative,
        default=1.0,
        help="max seconds between failures of a stretch (1.0)",
    )
    parser.add_argument("--until-eof", action="store_true", help="also stop when stdin reaches EOF")
    parser.add_argument("--json", action="store_true", help="print one JSON document: summary and records")
    parser.add_argument("-q", "--quiet", action="store_true", help="no diagnostics on stderr")
    args = parser.parse_args(argv)
    if not 0 < args.port <= 65535:
        parser.error(f"--port: bad port {args.port}")
    if not args.path.startswith("/") or any(c.isspace() for c in args.path):
        parser.error(f"--path must start with / and contain no white space: {args.path!r}")
    try:
        targets = [parse_target(a, args.port, args.path) for a in args.addrs]
    except ValueError as exc:
        parser.error(str(exc))
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        parser.error(f"an address is given twice: {' '.join(labels)}")
    return args, targets


def _raise_fd_limit() -> None:
    # rate × timeout sockets can be open at once; the usual soft limit (1024) is too low for
    # e.g. 500/s with a 3 s timeout, and the hard limit is there for the asking.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )
    except (ImportError, OSError, ValueError):
        pass


def _watch_stdin(loop: asyncio.AbstractEventLoop, load: LoadRun) -> None:
    """A daemon thread: stop the run when stdin reaches EOF (works for pipes, files, ttys)."""

    def reader() -> None:
        with contextlib.suppress(OSError):  # no stdin at all counts as EOF
            while os.read(0, 65536):
                pass
        with contextlib.suppress(RuntimeError):  # the loop is already gone: nothing to stop
            loop.call_soon_threadsafe(load.stop, "eof")

    threading.Thread(target=reader, name="stdin-eof", daemon=True).start()


async def run(args: argparse.Namespace, targets: Sequence[Target], diag: IO[str] | None) -> RunResult:
    load = LoadRun(targets, args.rate, args.duration, args.timeout)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, load.stop, sig.name)
    if args.until_eof:
        _watch_stdin(loop, load)
    if diag is not None:
        until = f"{args.duration:g} s" if args.duration else "stopped"
        print(
            f"loadclient: {args.rate:g}/s to each of {', '.join(t.label for t in targets)} "
            f"(port {args.port}, path {args.path}, timeout {args.timeout:g} s) until {until}"
            + (" or stdin EOF" if args.until_eof else ""),
            file=diag,
            flush=True,
        )
    result = await load.run()
    if diag is not None and result.stopped_by != "duration":
        print(f"loadclient: stopped ({result.stopped_by})", file=diag, flush=True)
    return result


def write_json(summary: Mapping[str, Any], records: Sequence[Record], out: IO[str]) -> None:
    """One JSON document; one record per line so that it stays greppable."""
    out.write('{"summary": ' + json.dumps(summary, indent=2) + ',\n"records": [')
    out.write(",".join("\n" + json.dumps(r.to_dict()) for r in records))
    out.write("\n]}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args, targets = parse_args(argv)
    diag = None if args.quiet else sys.stderr
    _raise_fd_limit()
    result = asyncio.run(run(args, targets, diag))
    summary = summarize(
        result.records,
        args.stretch_gap,
        addresses=[t.label for t in targets],
        started=result.started,
        ended=result.ended,
    )
    summary["run"] = {
        "addresses": [t.label for t in targets],
        "port": args.port,
        "path": args.path,
        "rate": args.rate,
        "duration": args.duration,
        "timeout": args.timeout,
        "stopped_by": result.stopped_by,
    }
    try:
        if args.json:
            write_json(summary, result.records, sys.stdout)
        else:
            print(format_summary(summary))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away; nothing left to tell anyone
        with contextlib.suppress(OSError):
            sys.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
