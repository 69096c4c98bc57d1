"""loadclient, the lab's open-loop load client: real runs against labweb, failures, stops, output.

The client runs as a real subprocess (``sys.executable lab/traffic/loadclient.py ...``) against
labweb servers in threads, a port nothing listens on (refused) and a socket that never accepts
(timeouts); all on loopback with ephemeral ports. ``summarize()`` and the parsers are tested on
their own with hand-made records.
"""

from __future__ import annotations

import itertools
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from traffic.labweb import BackgroundServer
from traffic.loadclient import (
    Record,
    failure_stretches,
    format_summary,
    judge_response,
    parse_target,
    records_from_json,
    summarize,
)

StartWeb = Callable[..., BackgroundServer]  # the start_web fixture (conftest.py)

LOADCLIENT = Path(__file__).resolve().parents[2] / "lab" / "traffic" / "loadclient.py"

SUMMARY_KEYS = {
    "schema",
    "requests",
    "ok",
    "failed",
    "started",
    "ended",
    "duration",
    "rate",
    "finished",
    "errors",
    "addresses",
    "first_failure",
    "last_failure",
    "stretches",
    "latency",
    "scheduler_lag",
    "run",
}
ADDRESS_KEYS = {"requests", "ok", "failed", "errors", "hosts", "first_failure", "last_failure", "stretches"}
RECORD_KEYS = {"t", "addr", "host", "ok", "latency", "error", "lag"}


# ---------------------------------------------------------------------------------------------
# Helpers: targets that fail in known ways, running the client
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused (and nobody can take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A port whose connections complete (in the kernel's backlog) but are never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        yield sock.getsockname()[1]


def web_addr(server: BackgroundServer) -> str:
    host, port = server.addresses[0]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_client(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOADCLIENT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def run_json(*args: str) -> dict[str, Any]:
    result = run_client("--json", *args)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)  # stdout is exactly one JSON document
    return doc


StartClient = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def start_client() -> Iterator[StartClient]:
    """The client in the background, returned once it announced its start on stderr.

    Whatever a test does, no client outlives it.
    """
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(LOADCLIENT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            if not sel.select(10):
                raise AssertionError("loadclient did not start within 10 s")
        line = proc.stderr.readline()
        assert line.startswith("loadclient: "), line
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# ---------------------------------------------------------------------------------------------
# Runs against labweb
# ---------------------------------------------------------------------------------------------


def test_one_server(start_web: StartWeb) -> None:
    addr = web_addr(start_web("srv1"))
    before = time.time()
    doc = run_json("--rate", "40", "--duration", "0.5", addr)
    after = time.time()
    summary, records = doc["summary"], doc["records"]
    assert (summary["requests"], summary["ok"], summary["failed"]) == (20, 20, 0)
    assert summary["addresses"][addr]["hosts"] == {"srv1": {"count": 20, "share": 1.0}}
    assert summary["errors"] == {}
    assert summary["stretches"] == {"gap": 1.0, "count": 0, "longest": None}
    assert summary["first_failure"] is None
    assert summary["duration"] == pytest.approx(0.5, abs=0.05)
    assert summary["rate"] == pytest.approx(40, rel=0.05)
    assert summary["run"]["stopped_by"] == "duration"
    # The records: wall-clock starts on the schedule (1/rate apart), in start order.
    starts = [r["t"] for r in records]
    assert starts == sorted(starts)
    assert before < starts[0] and starts[-1] + records[-1]["latency"] < after
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) > 0.015 and max(gaps) < 0.05
    assert all(r["ok"] and r["host"] == "srv1" and r["error"] is None for r in records)


def test_two_servers_rate_and_shares(start_web: StartWeb) -> None:
    a, b = web_addr(start_web("srv1")), web_addr(start_web("srv2"))
    doc = run_json("--rate", "40", "--duration", "0.5", a, b)
    summary = doc["summary"]
    assert summary["requests"] == 40  # rate × duration per address
    assert summary["ok"] == 40
    assert list(summary["addresses"]) == [a, b]  # the command line's order
    assert summary["addresses"][a]["hosts"] == {"srv1": {"count": 20, "share": 1.0}}
    assert summary["addresses"][b]["hosts"] == {"srv2": {"count": 20, "share": 1.0}}
    assert summary["rate"] == pytest.approx(80, rel=0.05)


def test_refused(start_web: StartWeb, refusing_port: int) -> None:
    good = web_addr(start_web("srv1"))
    bad = f"127.0.0.1:{refusing_port}"
    doc = run_json("--rate", "40", "--duration", "0.5", good, bad)
    summary, records = doc["summary"], doc["records"]
    assert summary["errors"] == {"refused": 20}
    assert summary["addresses"][good]["failed"] == 0
    assert summary["addresses"][bad] | {"stretches": None} == {
        "requests": 20,
        "ok": 0,
        "failed": 20,
        "errors": {"refused": 20},
        "hosts": {},
        "first_failure": summary["first_failure"],
        "last_failure": summary["last_failure"],
        "stretches": None,
    }
    # 20 failures 25 ms apart: one stretch of about the whole half second.
    stretches = summary["stretches"]
    assert stretches["count"] == 1
    assert stretches["longest"]["failures"] == 20
    assert stretches["longest"]["seconds"] == pytest.approx(0.475, abs=0.05)
    failed = [r for r in records if not r["ok"]]
    assert all(r["addr"] == bad and r["host"] is None and r["error"] == "refused" for r in failed)
    assert stretches["longest"]["start"] == failed[0]["t"]
    # Shorter gap than the schedule's interval: every failure is a stretch of its own.
    regrouped = summarize(records_from_json(doc), stretch_gap=0.01)
    assert regrouped["stretches"]["count"] == 20


def test_timeouts_do_not_slow_the_schedule(blackhole_port: int) -> None:
    """Open loop: with every request hanging, they are still started on schedule, all in flight."""
    t0 = time.monotonic()
    doc = run_json("--rate", "20", "--duration", "1", "--timeout", "0.4", f"127.0.0.1:{blackhole_port}")
    elapsed = time.monotonic() - t0
    summary, records = doc["summary"], doc["records"]
    assert summary["requests"] == 20
    assert summary["errors"] == {"timeout": 20}
    assert all(0.35 < r["latency"] < 0.8 for r in records)
    starts = [r["t"] for r in records]
    assert starts[-1] - starts[0] == pytest.approx(0.95, abs=0.05)  # not 20 × 0.4 s
    assert summary["scheduler_lag"]["max"] < 0.2
    assert elapsed < 4  # duration + timeout + interpreter start, with room for a busy CI
    assert summary["stretches"]["longest"]["seconds"] == pytest.approx(0.95 + 0.4, abs=0.1)


@pytest.mark.usefixtures("ipv6")
def test_ipv6(start_web: StartWeb) -> None:
    server = start_web("srv6", ["[::1]:0"])
    port = server.addresses[0][1]
    # The plain form with --port, and the bracketed form with a port of its own.
    doc = run_json("--rate", "20", "--duration", "0.5", "--port", str(port), "::1", f"[::1]:{port}")
    summary = doc["summary"]
    assert list(summary["addresses"]) == ["::1", f"[::1]:{port}"]
    assert (summary["requests"], summary["ok"]) == (20, 20)
    assert summary["addresses"]["::1"]["hosts"] == {"srv6": {"count": 10, "share": 1.0}}
    assert {r["addr"] for r in doc["records"]} == {"::1", f"[::1]:{port}"}


def test_json_output_shape(start_web: StartWeb, refusing_port: int) -> None:
    good = web_addr(start_web("srv1"))
    result = run_client(
        "--json",
        "--rate",
        "10",
        "--duration",
        "0.5",
        "--stretch-gap",
        "0.3",
        good,
        f"127.0.0.1:{refusing_port}",
    )
    assert result.returncode == 0  # failed requests are no failure of the program
    doc = json.loads(result.stdout)
    assert set(doc) == {"summary", "records"}
    summary = doc["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["schema"] == 1
    for info in summary["addresses"].values():
        assert set(info) == ADDRESS_KEYS
    assert set(summary["latency"]) == {"p50", "p90", "p99", "max", "mean"}
    assert set(summary["scheduler_lag"]) == {"p99", "max", "mean"}
    assert set(summary["stretches"]) == {"gap", "count", "longest"}
    assert summary["stretches"]["gap"] == 0.3
    assert set(summary["stretches"]["longest"]) == {"start", "end", "seconds", "failures"}
    assert summary["run"] == {
        "addresses": [good, f"127.0.0.1:{refusing_port}"],
        "port": 80,
        "path": "/",
        "rate": 10.0,
        "duration": 0.5,
        "timeout": 1.0,
        "stopped_by": "duration",
    }
    assert len(doc["records"]) == 10
    assert all(set(r) == RECORD_KEYS for r in doc["records"])
    # The harness's view: records round-trip, and summarize() recomputes the same numbers.
    records = records_from_json(result.stdout)
    assert [r.to_dict() for r in records] == doc["records"]
    again = summarize(records, 0.3, started=summary["started"], ended=summary["ended"])
    assert again == {k: v for k, v in summary.items() if k != "run"}
    assert "loadclient: " in result.stderr  # diagnostics on stderr only


def test_human_output(start_web: StartWeb, refusing_port: int) -> None:
    good = web_addr(start_web("srv1"))
    result = run_client("--rate", "10", "--duration", "0.5", good, f"127.0.0.1:{refusing_port}")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"load: 10 requests in 0.5 s (20.0/s) to {good}, 127.0.0.1:{refusing_port}: ")
    assert lines[0].endswith("5 ok, 5 failed (refused 5)")
    assert lines[1] == f"  {good}: 5 requests, 5 ok: srv1 100.0% (5)"
    assert lines[2] == f"  127.0.0.1:{refusing_port}: 5 requests, 0 ok, 5 failed (refused 5)"
    assert lines[3].startswith("  failures: 5 in 1 stretch; longest 0.4")
    assert lines[4].startswith("  latency: p50 ")


def test_sustains_300_per_second(start_web: StartWeb) -> None:
    """The client keeps its schedule at 300 requests/s (its lag, not the servers, is asserted)."""
    addrs = [web_addr(start_web(f"srv{i}")) for i in (1, 2, 3)]
    doc = run_json("--rate", "100", "--duration", "1", *addrs)
    summary = doc["summary"]
    assert summary["requests"] == 300
    assert summary["ok"] == 300
    # Generous for a busy 2-core CI machine; on an idle one the max lag is a few milliseconds.
    assert summary["scheduler_lag"]["max"] < 0.25
    assert summary["rate"] == pytest.approx(300, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Stopping early
# ---------------------------------------------------------------------------------------------


def test_until_eof_stops_gracefully(start_web: StartWeb, start_client: StartClient) -> None:
    addr = web_addr(start_web("srv1"))
    proc = start_client("--json", "--until-eof", "--duration", "60", "--rate", "20", addr)
    time.sleep(0.5)
    assert proc.poll() is None  # still running: it is the EOF that stops it
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=10)  # closes stdin
    assert time.monotonic() - t0 < 2
    assert proc.returncode == 0, err
    summary = json.loads(out)["summary"]
    assert summary["run"]["stopped_by"] == "eof"
    assert 5 <= summary["requests"] <= 20  # about 0.5 s × 20/s
    assert summary["failed"] == 0
    assert summary["duration"] < 2


def test_sigterm_stops_gracefully_and_prints_the_summary(
    start_web: StartWeb, start_client: StartClient, blackhole_port: int
) -> None:
    """In-flight requests get their timeout (they end as timeouts, not aborted), then the summary."""
    good = web_addr(start_web("srv1"))
    hang = f"127.0.0.1:{blackhole_port}"
    proc = start_client("--duration", "60", "--rate", "20", "--timeout", "0.5", good, hang)
    time.sleep(0.6)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert 0.3 < took < 2  # waited for the in-flight timeouts, not for the 60 s
    lines = out.splitlines()
    assert lines[0].startswith("load: ")
    assert " failed (timeout " in lines[0]
    assert "aborted" not in out
    assert f"  {good}: " in out and ": srv1 100.0% " in out
    assert lines[-1].startswith("  stopped early (SIGTERM) after 0.")
    assert "loadclient: stopped (SIGTERM)" in err


def test_second_signal_aborts_in_flight_requests(start_client: StartClient, blackhole_port: int) -> None:
    proc = start_client(
        "--json", "--duration", "60", "--rate", "20", "--timeout", "30", f"127.0.0.1:{blackhole_port}"
    )
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2  # not the 30 s timeout
    summary = json.loads(out)["summary"]
    assert summary["requests"] > 0
    assert summary["errors"] == {"other: aborted": summary["requests"]}


def test_zero_duration_runs_until_signalled(start_web: StartWeb, start_client: StartClient) -> None:
    addr = web_addr(start_web("srv1"))
    proc = start_client("--json", "--duration", "0", "--rate", "50", addr)
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    summary = json.loads(out)["summary"]
    assert summary["run"]["stopped_by"] == "SIGINT"
    assert summary["requests"] >= 10 and summary["ok"] == summary["requests"]


# ---------------------------------------------------------------------------------------------
# Usage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["localhost"],
        ["1.2.3.4", "1.2.3.4"],
        ["--rate", "0", "1.2.3.4"],
        ["--rate", "nan", "1.2.3.4"],
        ["--duration", "-1", "1.2.3.4"],
        ["--timeout", "0", "1.2.3.4"],
        ["--port", "0", "1.2.3.4"],
        ["--path", "x", "1.2.3.4"],
        ["1.2.3.4:99999"],
        ["[::1"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    result = run_client(*args, timeout=10)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""


def test_parse_target() -> None:
    t = parse_target("100.10.0.100", 80)
    assert (t.label, t.sockaddr, t.family) == ("100.10.0.100", ("100.10.0.100", 80), socket.AF_INET)
    assert t.request == b"GET / HTTP/1.1\r\nHost: 100.10.0.100\r\nConnection: close\r\n\r\n"
    t = parse_target("[2001:db8::1]", 8080, "/health")
    assert t.label == "2001:db8::1"
    assert t.sockaddr[:2] == ("2001:db8::1", 8080)
    assert t.request.startswith(b"GET /health HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n")
    assert parse_target("2001:DB8:0::1", 80).label == "2001:db8::1"
    assert parse_target("[2001:db8::1]:81", 80).label == "[2001:db8::1]:81"
    assert parse_target("127.0.0.1:81", 80).sockaddr == ("127.0.0.1", 81)
    for bad in ["", "host.example", "1.2.3", "[1.2.3.4", "[::1]x", "1.2.3.4:", "1.2.3.4:0"]:
        with pytest.raises(ValueError):
            parse_target(bad, 80)


@pytest.mark.parametrize(
    ("response", "eof", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsrv1\n", True, ("srv1", None)),
        (b"HTTP/1.0 200 OK\r\n\r\nsrv2\r\nmore\n", True, ("srv2", None)),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy\n", True, (None, "bad-status 503")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True, (None, "empty")),
        (b"HTTP/1.1 200 OK\r\n\r\n  \n", True, (None, "empty")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nsrv1\n", True, (None, "other: truncated")),
        (b"HTTP/1.1 200 OK\r\nContent", True, (None, "other: truncated")),
        (b"", True, (None, "other: no response")),
        (b"SSH-2.0-OpenSSH\r\n\r\n", True, (None, "other: bad response")),
    ],
)
def test_judge_response(response: bytes, eof: bool, expected: tuple[str | None, str | None]) -> None:
    assert judge_response(response, eof) == expected


# ---------------------------------------------------------------------------------------------
# summarize(): hand-made records
# ---------------------------------------------------------------------------------------------


def ok(t: float, host: str = "srv1", addr: str = "a", latency: float = 0.001) -> Record:
    return Record(t=t, addr=addr, host=host, ok=True, latency=latency, error=None)


def fail(t: float, addr: str = "a", latency: float = 0.001, error: str = "refused") -> Record:
    return Record(t=t, addr=addr, host=None, ok=False, latency=latency, error=error)


def test_summarize_without_failures() -> None:
    records = [ok(100 + i / 10, host=f"srv{i % 3 + 1}") for i in range(30)] + [ok(100.05, host="srv1")]
    s = summarize(records)
    assert (s["requests"], s["ok"], s["failed"]) == (31, 31, 0)
    assert s["stretches"] == {"gap": 1.0, "count": 0, "longest": None}
    assert s["first_failure"] is None and s["last_failure"] is None
    assert s["addresses"]["a"]["hosts"] == {
        "srv1": {"count": 11, "share": round(11 / 31, 6)},
        "srv2": {"count": 10, "share": round(10 / 31, 6)},
        "srv3": {"count": 10, "share": round(10 / 31, 6)},
    }
    assert s["started"] == 100 and s["ended"] == pytest.approx(102.901)  # from the records alone
    assert "failures: none" in format_summary(s)


def test_summarize_empty() -> None:
    s = summarize([], addresses=["a"])
    assert (s["requests"], s["duration"], s["rate"]) == (0, None, None)
    assert s["addresses"]["a"]["requests"] == 0
    assert s["latency"]["max"] is None
    format_summary(s)  # must not raise


def test_stretches_group_by_gap() -> None:
    # Starts 0.5 apart join (gap 1.0); exactly the gap joins too; 1.5 apart splits.
    records = [fail(10.0), fail(10.5), fail(11.5), fail(13.0), ok(11.0)]
    stretches = failure_stretches(records, gap=1.0)
    assert [(s.start, s.failures) for s in stretches] == [(10.0, 3), (13.0, 1)]
    assert stretches[0].end == pytest.approx(11.501)
    assert [s.failures for s in failure_stretches(records, gap=2.0)] == [4]
    assert [s.failures for s in failure_stretches(records, gap=0.1)] == [1, 1, 1, 1]


def test_stretches_across_addresses_in_start_order() -> None:
    # Failures of two addresses interleave into one stretch; input order does not matter.
    records = [fail(12.0, addr="b"), fail(10.0, addr="a"), fail(11.0, addr="b"), ok(10.5, addr="a")]
    s = summarize(records)
    assert s["stretches"]["count"] == 1
    assert s["stretches"]["longest"]["failures"] == 3
    assert s["addresses"]["b"]["stretches"]["count"] == 1
    assert s["addresses"]["a"]["stretches"]["longest"]["failures"] == 1
    assert (s["first_failure"], s["last_failure"]) == (10.0, 12.0)


def test_longest_stretch_is_longest_in_time_not_in_count() -> None:
    many_short = [fail(10 + i * 0.01) for i in range(20)]  # 0.2 s, 20 failures
    few_long = [fail(20.0, error="timeout", latency=1.0), fail(20.9, error="timeout", latency=1.0)]  # 1.9 s
    s = summarize(many_short + few_long, stretch_gap=1.0)
    assert s["stretches"]["count"] == 2
    assert s["stretches"]["longest"] == {"start": 20.0, "end": 21.9, "seconds": 1.9, "failures": 2}
    assert s["errors"] == {"refused": 20, "timeout": 2}
    text = format_summary(s)
    assert "failures: 22 in 2 stretches; longest 1.90 s (2 failed)" in text


def test_stretch_ends_at_the_latest_end() -> None:
    # A timeout that started first ends after a refusal that started later.
    records = [fail(10.0, error="timeout", latency=1.0), fail(10.2, latency=0.001)]
    (stretch,) = failure_stretches(records, gap=1.0)
    assert (stretch.start, stretch.end, stretch.failures) == (10.0, 11.0, 2)


def test_summarize_uses_the_given_window() -> None:
    s = summarize([ok(100.0), ok(100.5)], started=100.0, ended=101.0)
    assert (s["duration"], s["rate"]) == (1.0, 2.0)
    assert s["scheduler_lag"]["max"] == 0.0


def test_records_from_json_forms() -> None:
    rec = Record(t=1.5, addr="a", host="srv1", ok=True, latency=0.25, error=None, lag=0.001)
    doc: dict[str, Any] = {"summary": {}, "records": [rec.to_dict()]}
    assert records_from_json(json.dumps(doc)) == [rec]
    assert records_from_json(json.dumps(doc).encode()) == [rec]
    assert records_from_json(doc) == [rec]
    assert records_from_json(doc["records"]) == [rec]
    legacy = {k: v for k, v in rec.to_dict().items() if k != "lag"}
    assert records_from_json([legacy])[0].lag == 0.0
