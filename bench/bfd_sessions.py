#!/usr/bin/env python3
"""BFD bench: what N BFD sessions cost the agent at rest, and whether they hold during an API burst.

The issue-17 questions, answered with numbers (nothing here passes or fails on a number):
1. Cost: the agent with N neighbors (default 100), every BGP session Established, every BFD
   session Up at 300 ms x 3: its CPU (utime+stime from /proc/PID/stat) over a window at rest
   (default 30 s), in % of one core; the same agent and config without BFD; and BIRD 2's CPU for
   the same N sessions (its `protocol bfd`) with and without BFD, as the reference point (GoBGP
   and ExaBGP have no BFD).
2. Under load: the same agent, BFD Up, then a 1,000,000-line API burst (the API bench's program
   and lines, fed to the first neighbor) until BIRD holds every route: the burst's time with and
   without BFD, and the BFD transitions to Down on both sides during it (the agent's control
   socket and its metric fleetbgp_bfd_transitions_total; BIRD's `show bfd sessions` polled during
   the burst and its log), and the BGP sessions that flapped.

The lab (fresh for every run): two network namespaces and one veth pair; on it N addresses a side
in 10.255.64.0/18 (BIRD: 10.255.64.1 upwards, the agent: 10.255.96.1 upwards), so that session i
is 10.255.64.i <-> 10.255.96.i, directly connected as single-hop BFD (RFC 5881) wants. BIRD has
one `protocol bgp pNNN` per session (`bfd on;` in the BFD variant) and one `protocol bfd` with
`interface "*" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }`. The agent has
one neighbor per session (`bfd { min-tx 300; min-rx 300; multiplier 3; }` in the BFD variant), and
the first neighbor has the API program, which waits for a gate file before it writes (so the
agent is measured at rest first, then the burst starts when the bench opens the gate).

Variants: `bfd` (both sides run BFD) and `nobfd` (the same configs without it). Repeats alternate
which goes first. bench/README.md ("BFD") says what every number means.

Usage (as root):  .venv/bin/python bench/bfd_sessions.py [--sessions 100] [--window 30]
                  [--routes 1000000 | --routes 0 (no burst)] [--variants bfd nobfd] [--repeat 1]
                  [--min-tx 300 --min-rx 300 --multiplier 3]
                  [--out bench/results/bfd_sessions-DATE.json | --no-out] [--markdown RESULT.json]
       make bench BENCH=bench/bfd_sessions.py [BENCH_ARGS="--repeat 3"]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import ipaddress
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import benchlib
from benchlib import (
    ATTRS,
    REPO,
    ROUTER_AS,
    SENDER_AS,
    BirdCtl,
    FleetbgpSender,
    Lab,
    NetlabError,
    bird_version,
    fmt,
    git_info,
    machine_info,
    prefixes,
    proc_cpu,
    proc_status,
    venv_python,
)
from netlab.bird import Bird, BirdPeer, Since
from netlab.capture import Capture, frames
from netlab.ns import install_signal_cleanup, run

NAME = "bfd_sessions"
FEED = REPO / "bench" / "api_feed.py"
ROUTER_BASE = ipaddress.IPv4Address("10.255.64.0")   # BIRD's end of session i: .1 + i
AGENT_BASE = ipaddress.IPv4Address("10.255.96.0")    # the agent's end
SESSION_PREFIX = 18                                  # 10.255.64.0/18 holds both halves
MAX_SESSIONS = 8000
METRICS = "127.0.0.1:9101"                           # in the agent's namespace
VARIANTS = ("bfd", "nobfd")


def _control_client() -> Any:
    """The agent's own control client (stdlib only), loaded from this checkout's file: importing
    the `fleetbgp` package would pick whatever tree the venv's editable install points at."""
    path = REPO / "agent" / "src" / "fleetbgp" / "control_client.py"
    spec = importlib.util.spec_from_file_location("fleetbgp_control_client", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


control_client = _control_client()


def session_addresses(i: int) -> tuple[str, str]:
    """(BIRD's address, the agent's address) of session i (0-based)."""
    return str(ROUTER_BASE + 1 + i), str(AGENT_BASE + 1 + i)


def proto_name(i: int) -> str:
    return f"p{i + 1:03d}"


# --------------------------------------------------------------------------------------------
# configs


def agent_config(args: argparse.Namespace, bfd: bool, feed_run: str | None) -> str:
    """N neighbors, the first one with the API program; the `bfd { ... }` block in the BFD
    variant only (everything else equal)."""
    parts = []
    if feed_run:
        parts.append(f"process feed {{\n  run {feed_run};\n  encoder text;\n}}\n")
    router_id = session_addresses(0)[1]
    for i in range(args.sessions):
        peer, local = session_addresses(i)
        lines = [
            f"neighbor {peer} {{",
            f"  router-id {router_id};",
            f"  local-address {local};",
            f"  local-as {SENDER_AS};",
            f"  peer-as {ROUTER_AS};",
            f"  hold-time {args.hold_time};",
            "  family {\n    ipv4 unicast;\n  }",
        ]
        if bfd:
            lines.append(f"  bfd {{\n    min-tx {args.min_tx};\n    min-rx {args.min_rx};\n"
                         f"    multiplier {args.multiplier};\n  }}")
        if feed_run and i == 0:
            lines.append("  api {\n    processes [ feed ];\n  }")
        lines.append("}\n")
        parts.append("\n".join(lines))
    return "\n".join(parts)


def bird_bfd_block(args: argparse.Namespace) -> str:
    # idle tx interval: BIRD's rate while the session is not Up (RFC 5880 6.8.3: >= 1 s)
    return ("protocol bfd bfd1 {\n"
            f'  interface "*" {{ min rx interval {args.min_rx} ms; min tx interval {args.min_tx} ms; '
            f"idle tx interval 1000 ms; multiplier {args.multiplier}; }};\n}}")


# --------------------------------------------------------------------------------------------
# reading both sides


_PROTO_RE = re.compile(r"^(p\d+)\s+BGP\s+\S+\s+(\S+)\s+(\d{4}-\d\d-\d\d \S+)\s+(\S+)")


def bird_protocols(ctl: BirdCtl) -> dict[str, dict[str, str]]:
    """{pNNN: {"state": "up", "since": "...", "info": "Established"}} from `show protocols`."""
    out = {}
    for line in BirdCtl.text(ctl.cmd("show protocols")).splitlines():
        m = _PROTO_RE.match(line)
        if m:
            out[m.group(1)] = {"state": m.group(2), "since": m.group(3), "info": m.group(4)}
    return out


def bird_bfd_sessions(ctl: BirdCtl) -> dict[str, dict[str, Any]]:
    """{peer address: {"state", "since", "interval_s", "timeout_s"}} from `show bfd sessions`
    (columns: IP address, Interface, State, Since, Interval, Timeout; Since may hold a space)."""
    out: dict[str, dict[str, Any]] = {}
    for line in BirdCtl.text(ctl.cmd("show bfd sessions")).splitlines():
        tok = line.split()
        if len(tok) < 6:
            continue
        try:
            ipaddress.ip_address(tok[0])
            interval, timeout = float(tok[-2]), float(tok[-1])
        except ValueError:
            continue
        out[tok[0]] = {"state": tok[2], "since": " ".join(tok[3:-2]),
                       "interval_s": interval, "timeout_s": timeout}
    return out


_IMPORTED_RE = re.compile(r"Routes:\s+(\d+) imported")


def bird_imported(ctl: BirdCtl, proto: str) -> int:
    return sum(int(x) for x in _IMPORTED_RE.findall(ctl.cmd(f"show protocols all {proto}")))


_BIRD_BFD_LOG_RE = re.compile(r"Session to (\S+) changed state from (\w+) to (\w+)")


def bird_bfd_log(text: str) -> list[tuple[str, str, str]]:
    """BIRD's own record of BFD state changes (`debug protocols { states, events }`)."""
    return _BIRD_BFD_LOG_RE.findall(text)


def agent_neighbors(sock: Path, timeout: float = 30) -> dict[str, dict[str, Any]]:
    with control_client.ControlClient(str(sock), timeout=timeout) as client:
        reply = client.call("neighbors")
    return {n["peer_address"]: n for n in reply["neighbors"]}


_METRIC_RE = re.compile(r"^(fleetbgp_bfd_\w+)\{([^}]*)\}\s+(\S+)$", re.M)
_LABEL_RE = re.compile(r'(\w+)="([^"]*)"')


def agent_bfd_metrics(lab_ns, timeout: float = 15) -> dict[str, Any]:
    """The fleetbgp_bfd_* series of one scrape (from inside the agent's namespace), summed over
    neighbors: {"transitions_to": {"Down": n, "Up": n, ...}, "sessions_up": n, "packets": {...}}."""
    cp = lab_ns.run(["curl", "-sS", "--max-time", str(timeout), f"http://{METRICS}/metrics"],
                    check=False, timeout=timeout + 5)
    if cp.returncode != 0:
        return {"error": (cp.stderr or cp.stdout).strip()[-300:]}
    to: dict[str, float] = {}
    packets: dict[str, float] = {}
    up = 0.0
    series = 0
    for name, labels, value in _METRIC_RE.findall(cp.stdout):
        lab = dict(_LABEL_RE.findall(labels))
        series += 1
        if name == "fleetbgp_bfd_transitions_total":
            to[lab.get("to", "?")] = to.get(lab.get("to", "?"), 0) + float(value)
        elif name == "fleetbgp_bfd_packets_total":
            d = lab.get("direction", "?")
            packets[d] = packets.get(d, 0) + float(value)
        elif name == "fleetbgp_bfd_session_up":
            up += float(value)
    return {"transitions_to": to, "packets": packets, "sessions_up": up, "series": series}


def agent_bfd_summary(neigh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over the neighbors' "bfd" views (None when the agent shows no BFD)."""
    views = [n.get("bfd") for n in neigh.values()]
    views = [v for v in views if v]
    if not views:
        return {"sessions": 0}

    def total(k: str) -> int:
        # packets: {"sent", "received", "dropped"} in the view (flat packets_sent etc. accepted too)
        if k.startswith("packets_") and "packets_sent" not in views[0]:
            return sum(int((v.get("packets") or {}).get(k[len("packets_"):]) or 0) for v in views)
        return sum(int(v.get(k) or 0) for v in views)

    def span(k: str) -> list[Any]:
        xs = [v.get(k) for v in views if v.get(k) is not None]
        return [min(xs), max(xs)] if xs else [None, None]

    states: dict[str, int] = {}
    for v in views:
        states[str(v.get("state"))] = states.get(str(v.get("state")), 0) + 1
    return {"sessions": len(views), "states": states, "transitions": total("transitions"),
            "packets_sent": total("packets_sent"), "packets_received": total("packets_received"),
            "packets_dropped": total("packets_dropped"),
            "tx_interval_ms": span("tx_interval_ms"), "detect_time_ms": span("detect_time_ms"),
            "per_session_transitions": {a: (n.get("bfd") or {}).get("transitions") for a, n in neigh.items()}}


def moved(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """BIRD sessions (BGP protocols or BFD sessions) whose Since changed: a state change. Compared
    as netlab's Since does, within a few ms: BIRD moves a Since by a millisecond with no state
    change (seen here on a BFD session that stayed Up, its log silent)."""
    return {k: [before.get(k, {}).get("since", "?"), v["since"]] for k, v in sorted(after.items())
            if Since(before.get(k, {}).get("since", "?")) != Since(v["since"])}


def delta_sessions(before: dict[str, int | None], after: dict[str, int | None]) -> dict[str, int]:
    """Sessions whose transition counter moved, and by how much."""
    out = {}
    for k, a in after.items():
        b = before.get(k)
        if a is not None and b is not None and a != b:
            out[k] = a - b
    return out


def packet_gaps(pcap: Path, t_from: float, t_to: float, detect_s: float) -> dict[str, Any]:
    """From a capture of `udp dst port 3784` on BIRD's end of the veth: per direction (the agent's
    packets to BIRD, BIRD's to the agent) the longest silence of any session between t_from and
    t_to (epoch seconds), and how many silences were longer than the detection time. The largest
    gap is the margin the detection time had: at 300 ms x 3 a session fails at 900 ms."""
    rows = frames(pcap, "udp.dstport == 3784", "frame.time_epoch", "ip.src")
    by_src: dict[str, list[float]] = {}
    for t, src in rows:
        ts = float(t)
        if t_from <= ts <= t_to:
            by_src.setdefault(src, []).append(ts)
    out: dict[str, Any] = {"window_s": round(t_to - t_from, 3), "packets": len(rows)}
    agent_net = ipaddress.ip_network(f"{AGENT_BASE}/19")
    for direction, mine in (("agent_to_bird", True), ("bird_to_agent", False)):
        gaps: list[tuple[float, str]] = []
        sessions = 0
        for src, ts in by_src.items():
            if (ipaddress.ip_address(src) in agent_net) != mine:
                continue
            sessions += 1
            ts.sort()
            # the window's edges count as packets: a session silent to the end is a gap too
            edges = [t_from, *ts, t_to]
            gaps += [(b - a, src) for a, b in itertools.pairwise(edges)]
        if not gaps:
            out[direction] = {"sessions": 0}
            continue
        gaps.sort()
        worst = gaps[-1]
        out[direction] = {
            "sessions": sessions,
            "max_gap_ms": round(worst[0] * 1000, 1), "max_gap_session": worst[1],
            "p99_gap_ms": round(gaps[int(0.99 * (len(gaps) - 1))][0] * 1000, 1),
            "gaps_over_detect_time": sum(1 for g, _ in gaps if g > detect_s),
        }
    return out


# --------------------------------------------------------------------------------------------
# one run


def wait_for(what: str, check, timeout: float, interval: float = 0.5, describe=None):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last is True or (last and not isinstance(last, str)):
            return last
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else ""
            raise NetlabError(f"bounded wait for {what} ran out after {timeout:.0f}s ({last}){extra}")
        time.sleep(interval)


def one_run(variant: str, args: argparse.Namespace, sender: FleetbgpSender, lines: Path | None) -> dict:
    bfd = variant == "bfd"
    rec: dict[str, Any] = {"variant": variant, "sessions": args.sessions, "routes": args.routes,
                           "ok": False, "error": None, "loadavg_before": list(os.getloadavg())}
    with Lab(prefix="fbf") as lab:
        router, agent_ns, link = lab.pair("r", "s", v6=False)
        batch_r, batch_s = [], []
        for i in range(args.sessions):
            r, s = session_addresses(i)
            batch_r.append(f"addr add {r}/{SESSION_PREFIX} dev {link.a_if}")
            batch_s.append(f"addr add {s}/{SESSION_PREFIX} dev {link.b_if}")
        run(["ip", "-n", router.name, "-batch", "-"], input="\n".join(batch_r) + "\n")
        run(["ip", "-n", agent_ns.name, "-batch", "-"], input="\n".join(batch_s) + "\n")

        bird = Bird(lab, router, router_id=session_addresses(0)[0])
        for i in range(args.sessions):
            r, s = session_addresses(i)
            bird.add_peer(BirdPeer(proto_name(i), neighbor=s, peer_as=SENDER_AS, local_as=ROUTER_AS,
                                   local_address=r, hold=args.hold_time, extra="bfd on;" if bfd else ""))
        # Since with milliseconds: a flap inside one second must still change it
        bird.extra.append("timeformat protocol iso long ms;")
        if bfd:
            bird.extra.append(bird_bfd_block(args))

        gate = lab.path("burst.gate")
        report = lab.path("feed.json")
        feed_run = (f"{venv_python()} {FEED} --wait-for {gate} {lines} {report}"
                    if lines is not None else None)
        conf = lab.path("agent.conf")
        conf.write_text(agent_config(args, bfd, feed_run))
        sock = lab.path("agent.sock")

        args.router_if = link.a_if  # where the burst's capture listens
        ctl = agent = None
        try:
            bird.start()
            ctl = BirdCtl(bird.sock)
            t0 = time.monotonic()
            agent = lab.spawn(agent_ns, sender.argv(conf), name="agent",
                              env={**sender.env(), "FLEETBGP_CONTROL_SOCKET": str(sock),
                                   "FLEETBGP_METRICS": METRICS})
            rec["agent_pid"], rec["bird_pid"] = agent.pid, bird.proc.pid

            def describe() -> str:
                return f"agent log:\n{agent.log_tail(20)}\nBIRD log:\n{bird.proc.log_tail(10)}"

            # -- setup: every BGP session Established (both sides), every BFD session Up -----
            def bgp_up():
                lab.check_alive()
                protos = bird_protocols(ctl)
                est = sum(1 for p in protos.values() if p["info"] == "Established")
                return True if est == args.sessions else f"BIRD: {est}/{args.sessions} Established"

            wait_for("BGP sessions", bgp_up, args.setup_timeout, describe=describe)
            rec["t_bgp_up_s"] = round(time.monotonic() - t0, 2)

            def agent_ready():
                lab.check_alive()
                if not sock.exists():
                    return "no control socket yet"
                neigh = agent_neighbors(sock)
                est = sum(1 for n in neigh.values() if n["state"] == "Established")
                if est != args.sessions:
                    return f"agent: {est}/{args.sessions} Established"
                if bfd:
                    up = sum(1 for n in neigh.values() if (n.get("bfd") or {}).get("state") == "Up")
                    if up != args.sessions:
                        return f"agent: BFD {up}/{args.sessions} Up"
                return True

            wait_for("the agent's sessions", agent_ready, args.setup_timeout, describe=describe)
            if bfd:
                def bird_bfd_up():
                    s = bird_bfd_sessions(ctl)
                    up = sum(1 for x in s.values() if x["state"] == "Up")
                    return True if up == args.sessions else f"BIRD: BFD {up}/{args.sessions} Up"

                wait_for("BIRD's BFD sessions", bird_bfd_up, args.setup_timeout, describe=describe)
            rec["t_ready_s"] = round(time.monotonic() - t0, 2)
            # after Up both sides go from the 1 s idle rate to 300 ms (a poll sequence): let it settle
            time.sleep(args.settle)

            # -- 1. at rest ------------------------------------------------------------------
            rec["idle"] = measure_idle(args, bfd, ctl, sock, agent.pid, bird.proc.pid)

            # -- 2. the burst ----------------------------------------------------------------
            if lines is not None:
                rec["burst"] = measure_burst(args, bfd, lab, agent_ns, ctl, sock, agent, bird, gate, report,
                                             sender)
            rec["rss_peak_mib"] = benchlib.mib(proc_status(agent.pid).get("VmHWM"))
            rec["bird_rss_peak_mib"] = benchlib.mib(proc_status(bird.proc.pid).get("VmHWM"))
            rec["ok"] = True
        except Exception as exc:  # record and go on with the next run
            rec["error"] = f"{type(exc).__name__}: {exc}"
            if agent is not None:
                rec["log_tail"] = agent.log_tail(30)
            if bird.proc is not None:
                rec["bird_log_tail"] = bird.proc.log_tail(15)
        finally:
            if ctl is not None:
                ctl.close()
            if agent is not None:
                rec["exit_code"] = agent.stop(timeout=10)
    rec["loadavg_after"] = list(os.getloadavg())
    return rec


def measure_idle(args, bfd: bool, ctl: BirdCtl, sock: Path, agent_pid: int, bird_pid: int) -> dict:
    """CPU of both processes over the window, nothing polled meanwhile (a poll costs CPU too)."""
    out: dict[str, Any] = {"window_s": args.window}
    n0 = agent_neighbors(sock)
    b0 = bird_bfd_sessions(ctl) if bfd else {}
    th0 = thread_cpu(agent_pid)
    a0, r0, t0 = proc_cpu(agent_pid), proc_cpu(bird_pid), time.monotonic()
    time.sleep(args.window)
    a1, r1, t1 = proc_cpu(agent_pid), proc_cpu(bird_pid), time.monotonic()
    th1 = thread_cpu(agent_pid)
    n1 = agent_neighbors(sock)
    b1 = bird_bfd_sessions(ctl) if bfd else {}
    wall = t1 - t0
    out["wall_s"] = round(wall, 3)
    if None in (a0, a1, r0, r1):
        raise NetlabError("a process went away during the idle window")
    out["agent_cpu_s"] = round(a1 - a0, 3)
    out["bird_cpu_s"] = round(r1 - r0, 3)
    out["agent_cpu_pct"] = round(100 * (a1 - a0) / wall, 3)
    out["bird_cpu_pct"] = round(100 * (r1 - r0) / wall, 3)
    out["agent_threads"] = thread_split(agent_pid, th0, th1, wall)
    if bfd:
        s0, s1 = agent_bfd_summary(n0), agent_bfd_summary(n1)
        # the counters bracket the CPU window (read just before and after it)
        out["agent_bfd"] = {k: s1[k] for k in ("sessions", "states", "tx_interval_ms", "detect_time_ms")}
        out["agent_bfd"]["packets_sent_per_s"] = round((s1["packets_sent"] - s0["packets_sent"]) / wall, 1)
        out["agent_bfd"]["packets_received_per_s"] = round(
            (s1["packets_received"] - s0["packets_received"]) / wall, 1)
        out["agent_bfd"]["packets_dropped"] = s1["packets_dropped"] - s0["packets_dropped"]
        out["agent_bfd"]["sessions_with_transitions"] = delta_sessions(
            s0["per_session_transitions"], s1["per_session_transitions"])
        out["bird_bfd"] = {
            "up": sum(1 for x in b1.values() if x["state"] == "Up"),
            "interval_s": _span([x["interval_s"] for x in b1.values()]),
            "timeout_s": _span([x["timeout_s"] for x in b1.values()]),
            "sessions_changed": moved(b0, b1),
        }
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    """user+system CPU seconds per thread of a process ({tid: s})."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / benchlib.CLK_TCK
    return out


def thread_split(pid: int, before: dict[int, float], after: dict[int, float], wall: float) -> dict:
    """% of one core of the main thread (the event loop: BGP, API, control) and of the busiest
    other thread. Python 3.11 gives threads no OS name, so the BFD thread is told by its CPU: the
    other threads (prometheus_client's HTTP server, executors) sleep while nothing scrapes."""
    d = {t: after[t] - before.get(t, 0.0) for t in after}
    main = d.pop(pid, 0.0)
    busiest = max(d.values(), default=0.0)
    return {"main_thread_pct": round(100 * main / wall, 3),
            "busiest_other_thread_pct": round(100 * busiest / wall, 3), "threads": len(after)}


def _span(xs: Sequence[float]) -> list[float | None]:
    return [min(xs), max(xs)] if xs else [None, None]


def measure_burst(args, bfd: bool, lab: Lab, agent_ns, ctl: BirdCtl, sock: Path, agent, bird: Bird,
                  gate: Path, report: Path, sender: FleetbgpSender) -> dict:
    """Open the gate, poll BIRD until it holds every route (and BIRD's BFD sessions every 0.5 s),
    settle, then compare both sides' BFD and BGP state with before."""
    out: dict[str, Any] = {"routes": args.routes}
    first = proto_name(0)
    n0 = agent_neighbors(sock)
    m0 = agent_bfd_metrics(agent_ns) if bfd else {}
    p0 = bird_protocols(ctl)
    b0 = bird_bfd_sessions(ctl) if bfd else {}
    bird_log0 = len(bird_bfd_log(bird.proc.log_text()))
    agent_log0 = len(agent.log_text())
    cap = None
    if bfd and args.capture:
        # BIRD's end sees both directions; only BFD control packets (not the 1M routes' TCP)
        cap = Capture(lab, bird.ns, args.router_if, name="bfd-capture", bpf="udp dst port 3784").start()
        time.sleep(1.0)  # a second of packets before the burst: the window starts from a steady state
    t_cap_from = time.time() - 1.0
    a0, r0 = proc_cpu(agent.pid), proc_cpu(bird.proc.pid)
    not_up_seen: dict[str, str] = {}   # BIRD session -> first non-Up state seen during the burst
    polls = 0
    bound = args.timeout or max(60.0, args.routes * 0.00012)
    tg = time.monotonic()
    gate.write_text("go\n")
    last_bfd_poll, last_count, last_progress = tg, 0, tg
    while True:
        imported = bird_imported(ctl, first)
        now = time.monotonic()
        if imported >= args.routes:
            break
        if imported != last_count:
            last_count, last_progress = imported, now
        if bfd and now - last_bfd_poll >= 0.5:
            polls += 1
            for a, s in bird_bfd_sessions(ctl).items():
                if s["state"] != "Up":
                    not_up_seen.setdefault(a, s["state"])
            last_bfd_poll = now
        if not agent.alive():
            raise NetlabError(f"the agent exited with {agent.returncode} during the burst")
        if now - tg > bound:
            raise NetlabError(f"burst: bounded wait ran out after {bound:.0f}s ({imported}/{args.routes})")
        if now - last_progress > args.stall:
            raise NetlabError(f"burst: no progress for {args.stall:.0f}s ({imported}/{args.routes})")
        time.sleep(args.poll_interval)
    t_all = time.monotonic() - tg
    a1, r1 = proc_cpu(agent.pid), proc_cpu(bird.proc.pid)
    out["t_burst_s"] = round(t_all, 3)
    out["agent_cpu_s"] = round(a1 - a0, 2) if a0 is not None and a1 is not None else None
    out["bird_cpu_s"] = round(r1 - r0, 2) if r0 is not None and r1 is not None else None
    try:
        rep = json.loads(report.read_text())
        out["t_feed_start_s"] = round(rep["t_start_mono"] - tg, 3)
        out["t_feed_done_s"] = round(rep["t_done_mono"] - tg, 3)
    except (FileNotFoundError, ValueError, KeyError):
        out["t_feed_done_s"] = None
    # longer than the detection time: a session that went down near the end has shown it by now
    time.sleep(args.settle)
    t_cap_to = time.time()
    if cap is not None:
        cap.stop()
        detect_s = args.multiplier * max(args.min_tx, args.min_rx) / 1000
        try:
            out["bfd_packet_gaps"] = packet_gaps(cap.file, t_cap_from, t_cap_to, detect_s)
        except NetlabError as exc:
            out["bfd_packet_gaps"] = {"error": str(exc)[-300:]}
    n1 = agent_neighbors(sock)
    p1 = bird_protocols(ctl)
    out["bgp_flaps_bird"] = moved(p0, p1)
    out["bgp_not_established_after"] = sorted(p for p, v in p1.items() if v["info"] != "Established")
    out["bgp_flaps_agent"] = sorted(a for a, n in n1.items()
                                    if n0.get(a, {}).get("established_since") != n.get("established_since"))
    out.update(sender.log_facts(agent.log_text()))
    if bfd:
        m1 = agent_bfd_metrics(agent_ns)
        b1 = bird_bfd_sessions(ctl)
        s0, s1 = agent_bfd_summary(n0), agent_bfd_summary(n1)
        to0, to1 = m0.get("transitions_to", {}), m1.get("transitions_to", {})
        out["agent_bfd"] = {
            "states_after": s1.get("states"),
            "transitions": s1["transitions"] - s0["transitions"],
            "sessions_with_transitions": delta_sessions(s0["per_session_transitions"],
                                                        s1["per_session_transitions"]),
            "metric_transitions_to": {k: to1.get(k, 0) - to0.get(k, 0) for k in sorted(set(to0) | set(to1))},
            "metric_down_transitions": (int(to1.get("Down", 0) - to0.get("Down", 0))
                                        if "error" not in m0 and "error" not in m1 else None),
            "metrics_error": m0.get("error") or m1.get("error"),
            "packets_dropped": s1["packets_dropped"] - s0["packets_dropped"],
            "packets_received": s1["packets_received"] - s0["packets_received"],
            "packets_sent": s1["packets_sent"] - s0["packets_sent"],
            "log_lines": [ln for ln in agent.log_text()[agent_log0:].splitlines() if "BFD" in ln][:20],
        }
        changes = bird_bfd_log(bird.proc.log_text())[bird_log0:]
        out["bird_bfd"] = {
            "polls": polls,
            "not_up_seen": not_up_seen,
            "up_after": sum(1 for x in b1.values() if x["state"] == "Up"),
            "sessions_changed": moved(b0, b1),
            "log_changes": [list(c) for c in changes][:20],
            "log_down_transitions": sum(1 for c in changes if c[2] == "Down"),
        }
        out["bfd_down_transitions"] = {
            "agent": out["agent_bfd"]["metric_down_transitions"]
            if out["agent_bfd"]["metric_down_transitions"] is not None
            else len(out["agent_bfd"]["sessions_with_transitions"]),
            "bird": max(len(out["bird_bfd"]["sessions_changed"]), out["bird_bfd"]["log_down_transitions"]),
        }
    return out


# --------------------------------------------------------------------------------------------
# summary and tables


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def summarise(runs: list[dict], variants: Sequence[str]) -> dict:
    out: dict[str, Any] = {}
    for v in variants:
        ok = [r for r in runs if r["variant"] == v and r["ok"]]
        row: dict[str, Any] = {"runs_ok": len(ok)}
        row["agent_cpu_pct"] = median(r["idle"]["agent_cpu_pct"] for r in ok)
        row["bird_cpu_pct"] = median(r["idle"]["bird_cpu_pct"] for r in ok)
        row["t_ready_s"] = median(r.get("t_ready_s") for r in ok)
        bursts = [r["burst"] for r in ok if r.get("burst")]
        row["t_burst_s"] = median(b["t_burst_s"] for b in bursts)
        row["burst_agent_cpu_s"] = median(b.get("agent_cpu_s") for b in bursts)
        row["bgp_flaps"] = sum(len(b["bgp_flaps_bird"]) + len(b["bgp_flaps_agent"]) for b in bursts)
        if v == "bfd":
            downs = [b.get("bfd_down_transitions") or {} for b in bursts]
            row["bfd_down_agent"] = sum(d.get("agent") or 0 for d in downs) if downs else None
            row["bfd_down_bird"] = sum(d.get("bird") or 0 for d in downs) if downs else None
            row["packets_sent_per_s"] = median(r["idle"]["agent_bfd"]["packets_sent_per_s"] for r in ok)
            row["packets_received_per_s"] = median(
                r["idle"]["agent_bfd"]["packets_received_per_s"] for r in ok)
            row["main_thread_pct"] = median(r["idle"]["agent_threads"]["main_thread_pct"] for r in ok)
            row["bfd_thread_pct"] = median(
                r["idle"]["agent_threads"]["busiest_other_thread_pct"] for r in ok)
            for d in ("agent_to_bird", "bird_to_agent"):
                gs = [((b.get("bfd_packet_gaps") or {}).get(d) or {}).get("max_gap_ms") for b in bursts]
                gs = [g for g in gs if g is not None]
                row[f"max_gap_ms_{d}"] = max(gs) if gs else None
        out[v] = row
    if "bfd" in out and "nobfd" in out:
        a, b = out["bfd"], out["nobfd"]

        def diff(k: str) -> float | None:
            return round(a[k] - b[k], 3) if a.get(k) is not None and b.get(k) is not None else None

        out["bfd_cost"] = {"agent_cpu_pct": diff("agent_cpu_pct"), "bird_cpu_pct": diff("bird_cpu_pct"),
                           "t_burst_s": diff("t_burst_s")}
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    s = result["summary"]
    lines = [
        *benchlib.markdown_header(result, NAME),
        f"Command: `{' '.join(result['command'])}`  ",
        f"{a['sessions']} sessions, BFD {a['min_tx']}/{a['min_rx']} ms x {a['multiplier']} on both sides, "
        f"idle window {a['window']} s, burst {a['routes']:,} API lines to the first neighbor.", "",
        "Medians per variant (CPU in % of one core, at rest with every session up):", "",
        "| variant | runs ok | ready (s) | agent CPU at rest (%) | BIRD CPU at rest (%) | burst (s) "
        "| agent CPU in burst (s) | BFD Down in burst: agent / BIRD | BGP flaps in burst |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name in a["variants"]:
        row = s.get(name)
        if not row:
            continue
        downs = (f"{fmt(row.get('bfd_down_agent'), 'd')} / {fmt(row.get('bfd_down_bird'), 'd')}"
                 if name == "bfd" else "-")
        lines.append(f"| {name} | {row['runs_ok']} | {fmt(row['t_ready_s'], '.1f')} | "
                     f"{fmt(row['agent_cpu_pct'])} | {fmt(row['bird_cpu_pct'])} | {fmt(row['t_burst_s'])} | "
                     f"{fmt(row['burst_agent_cpu_s'])} | {downs} | {row['bgp_flaps']} |")
    bfd_row = s.get("bfd") or {}
    if bfd_row.get("bfd_thread_pct") is not None:
        lines += ["", "At rest with BFD, by thread (medians): the BFD thread "
                      f"{fmt(bfd_row['bfd_thread_pct'])} %, "
                      f"the main thread (event loop) {fmt(bfd_row['main_thread_pct'])} % of one core; "
                      f"{fmt(bfd_row.get('packets_sent_per_s'), '.0f')} BFD packets a second sent, "
                      f"{fmt(bfd_row.get('packets_received_per_s'), '.0f')} received."]
    if bfd_row.get("max_gap_ms_agent_to_bird") is not None:
        lines += ["", "Longest silence of any BFD session during the bursts (any run; detection time "
                      f"{a['multiplier'] * max(a['min_tx'], a['min_rx'])} ms): agent -> BIRD "
                      f"{fmt(bfd_row['max_gap_ms_agent_to_bird'], '.0f')} ms, BIRD -> agent "
                      f"{fmt(bfd_row.get('max_gap_ms_bird_to_agent'), '.0f')} ms."]
    cost = s.get("bfd_cost")
    if cost:
        lines += ["", f"What BFD adds (bfd minus nobfd, medians): agent {fmt(cost['agent_cpu_pct'])} % of "
                      f"one core, BIRD {fmt(cost['bird_cpu_pct'])} %; burst time "
                      f"{fmt(cost['t_burst_s'])} s."]
    lines += ["", "Every run, in the order run (a fresh lab each):", "",
              "| variant | agent CPU (%) | BIRD CPU (%) | agent BFD pkts/s sent / received | "
              "agent tx / detect (ms) | BIRD interval / timeout (s) | burst (s) | feed done (s) | "
              "BFD Down agent / BIRD | BIRD non-Up seen | longest silence in burst, ms: agent->BIRD / "
              "BIRD->agent | load after | note |",
              "|---|---:|---:|---|---|---|---:|---:|---|---:|---|---:|---|"]
    for r in result["runs"]:
        idle, burst = r.get("idle") or {}, r.get("burst") or {}
        ab, bb = idle.get("agent_bfd") or {}, idle.get("bird_bfd") or {}
        pk = (f"{fmt(ab.get('packets_sent_per_s'), '.0f')} / {fmt(ab.get('packets_received_per_s'), '.0f')}"
              if ab else "-")
        iv = (f"{'-'.join(map(str, ab.get('tx_interval_ms') or []))} / "
              f"{'-'.join(map(str, ab.get('detect_time_ms') or []))}" if ab else "-")
        biv = (f"{'-'.join(map(str, bb.get('interval_s') or []))} / "
               f"{'-'.join(map(str, bb.get('timeout_s') or []))}" if bb else "-")
        d = burst.get("bfd_down_transitions")
        downs = f"{d.get('agent')} / {d.get('bird')}" if d else "-"
        seen = len((burst.get("bird_bfd") or {}).get("not_up_seen") or {}) if d else "-"
        g = burst.get("bfd_packet_gaps") or {}
        gaps = (f"{fmt((g.get('agent_to_bird') or {}).get('max_gap_ms'), '.0f')} / "
                f"{fmt((g.get('bird_to_agent') or {}).get('max_gap_ms'), '.0f')}" if g else "-")
        note = "ok" if r["ok"] else (r.get("error") or "failed").splitlines()[0][:100]
        lines.append(f"| {r['variant']} | {fmt(idle.get('agent_cpu_pct'))} | "
                     f"{fmt(idle.get('bird_cpu_pct'))} | {pk} | {iv} | {biv} | "
                     f"{fmt(burst.get('t_burst_s'))} | {fmt(burst.get('t_feed_done_s'))} | "
                     f"{downs} | {seen} | {gaps} | {fmt((r.get('loadavg_after') or [None])[0])} | {note} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the driver


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100, help="BGP+BFD sessions (default 100)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of CPU measurement at rest")
    ap.add_argument("--routes", type=int, default=1_000_000,
                    help="API lines of the burst (0: no burst, only the cost at rest)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant; medians in the summary")
    ap.add_argument("--min-tx", type=int, default=300, help="ms, both sides")
    ap.add_argument("--min-rx", type=int, default=300, help="ms, both sides")
    ap.add_argument("--multiplier", type=int, default=3, help="both sides")
    ap.add_argument("--hold-time", type=int, default=90, help="BGP hold time on both sides")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds after every session is up (poll sequences) and after the burst "
                         "(longer than the detection time)")
    ap.add_argument("--setup-timeout", type=float, default=180.0,
                    help="bound on every session coming up, seconds")
    ap.add_argument("--poll-interval", type=float, default=0.025,
                    help="seconds between BIRD polls in the burst")
    ap.add_argument("--timeout", type=float, default=None,
                    help="bound on the burst, seconds (default max(60, 0.00012 * routes))")
    ap.add_argument("--stall", type=float, default=60.0, help="fail when BIRD's count stops moving this long")
    ap.add_argument("--agent-src", type=Path, default=None, metavar="PATH",
                    help="run the agent from PATH (a checkout's agent/src) instead of this checkout's")
    ap.add_argument("--no-capture", dest="capture", action="store_false",
                    help="no tshark capture of the BFD packets during the burst (no packet gaps)")
    benchlib.add_output_args(ap, NAME)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.markdown:
        return benchlib.rewrite_markdown(args.markdown, markdown)
    if args.baseline or args.baseline_src:
        print("bfd_sessions: --baseline ignored (this bench measures the current tree only)")
    if os.geteuid() != 0:
        print(f"{NAME}.py needs root (network namespaces)", file=sys.stderr)
        return 2
    if not 1 <= args.sessions <= MAX_SESSIONS:
        print(f"--sessions takes 1..{MAX_SESSIONS}", file=sys.stderr)
        return 2
    if shutil.which("curl") is None:
        print("bfd_sessions needs curl (the agent's metrics are read from inside its namespace)",
              file=sys.stderr)
        return 2
    if args.capture and shutil.which("tshark") is None:
        print("no tshark: no capture of the BFD packets during the burst (no packet gaps)")
        args.capture = False
    install_signal_cleanup()
    sender = FleetbgpSender(src=args.agent_src.resolve() if args.agent_src else None)
    why = sender.available()
    if why:
        print(f"fleetbgp cannot run: {why}", file=sys.stderr)
        return 1
    started = dt.datetime.now().astimezone()
    out = None
    if not args.no_out:
        out = args.out or REPO / "bench" / "results" / f"{NAME}-{started:%Y%m%d-%H%M%S}.json"
    versions = {"fleetbgp": sender.version(), "bird": bird_version()}
    info = machine_info()
    print(f"machine: {info['nproc']} CPU ({info['cpu']}), load {info['loadavg_start']}; versions {versions}")

    scratch = Path(tempfile.mkdtemp(prefix="fbf-lines-"))
    runs: list[dict] = []
    try:
        lines = None
        if args.routes > 0:  # the API bench's lines, written once for every run
            lines = scratch / "routes.api"
            with open(lines, "w") as f:
                f.writelines(f"announce route {p} {ATTRS}\n" for p in prefixes(args.routes))
        for rep in range(args.repeat):
            order = args.variants if rep % 2 == 0 else list(reversed(args.variants))
            for variant in order:
                print(f"-- {variant}, {args.sessions} sessions (run {rep + 1}/{args.repeat}) ...", flush=True)
                rec = one_run(variant, args, sender, lines)
                rec["repeat"] = rep
                runs.append(rec)
                if not rec["ok"]:
                    print(f"   FAILED: {rec['error']}", flush=True)
                    if rec.get("log_tail"):
                        print("   " + rec["log_tail"].replace("\n", "\n   "))
                    continue
                idle, burst = rec["idle"], rec.get("burst") or {}
                msg = (f"   ready after {rec['t_ready_s']} s; at rest agent {idle['agent_cpu_pct']:.2f} %, "
                       f"BIRD {idle['bird_cpu_pct']:.2f} % of one core")
                if burst:
                    msg += f"; burst {burst['t_burst_s']:.2f} s"
                    if "bfd_down_transitions" in burst:
                        d = burst["bfd_down_transitions"]
                        msg += f", BFD Down transitions agent {d['agent']} BIRD {d['bird']}"
                    msg += f", BGP flaps {len(burst['bgp_flaps_bird']) + len(burst['bgp_flaps_agent'])}"
                    g = burst.get("bfd_packet_gaps") or {}
                    if "agent_to_bird" in g:
                        msg += (f"; longest BFD silence agent->BIRD "
                                f"{g['agent_to_bird'].get('max_gap_ms')} ms, "
                                f"BIRD->agent {g['bird_to_agent'].get('max_gap_ms')} ms")
                print(msg, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    result = {
        "bench": NAME,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k != "router_if"},
        "machine": {**info, "loadavg_end": list(os.getloadavg())},
        "versions": versions,
        "git": git_info(),
        "method": {
            "peer": "BIRD 2 in its own namespace: one protocol bgp per session (bfd on; in the bfd variant) "
                    "and protocol bfd with interface \"*\" at the same timers",
            "topology": f"one veth pair, session i = {ROUTER_BASE}+i <-> {AGENT_BASE}+i "
                        f"(/{SESSION_PREFIX}, directly connected)",
            "cpu_at_rest": "utime+stime of the process (all threads) from /proc/PID/stat over the window, "
                           "every BGP session Established and every BFD session Up, nothing polled "
                           "during the window; % of one core = CPU s / wall s x 100",
            "burst": "the API bench's program (api_feed.py, gated) writes the lines to the first "
                     "neighbor's process; t_burst_s: gate opened -> BIRD 'Routes: N imported' on p001",
            "bfd_down_transitions": "agent: delta of fleetbgp_bfd_transitions_total{to=\"Down\"} (else "
                                    "the sessions whose control-socket transitions moved); BIRD: the "
                                    "sessions whose Since changed in show bfd sessions, or its log's "
                                    "'changed state ... to Down' lines, whichever is more",
        },
        "runs": runs,
        "summary": summarise(runs, args.variants),
    }
    benchlib.write_result(result, markdown(result), out)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
