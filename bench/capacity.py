#!/usr/bin/env python3
"""Capacity bench: what sessions, routes and API programs cost the agent in memory and CPU.

The numbers behind docs/operations/capacity.md (nothing here passes or fails on a number). For
each N in --sessions (default 1, 200 and 1,000 configured neighbors), a fresh lab per run, the
agent against BIRD 2 (one `protocol bgp pNNN` per session, the topology of bfd_sessions.py:
session i is 10.255.64.i <-> 10.255.96.i on one veth pair):

- `down`: N neighbors configured, no peer listening (BIRD is not started): the agent's memory
  and its CPU at rest while it retries connecting (every connect refused at once).
- `idle`: N sessions Established, no routes either way: memory per session, CPU at rest
  (keepalives: hold time --hold-time, one KEEPALIVE per session every hold/3 s each way).
- `out`: every neighbor has the same --routes-per-session static routes, sent to BIRD: memory per
  (route x session) of the Adj-RIB-Out, CPU from spawn to BIRD holding every route.
- `in`: BIRD sends --routes-per-session routes to every session (a static protocol enabled once
  every session is up), the agent keeps them (`adj-rib-in true;`): memory of the Adj-RIB-In,
  CPU per 1,000 prefixes and per UPDATE received.

And once, `programs` (--programs): one session and three typical API programs in `process`
blocks (`fleetbgp healthcheck`, `exabgp healthcheck`, a minimal Python announcer): the memory of
each child next to the agent's, for the unit's MemoryMax (the programs run in its cgroup).

Memory is the process's VmRSS, VmHWM (its peak) and Pss (/proc/PID/smaps_rollup) after the run
settled; CPU is utime+stime from /proc/PID/stat, never wall time.

Usage (as root):  .venv/bin/python bench/capacity.py [--sessions 1 200 1000]
                  [--variants down idle out in] [--routes-per-session 1000] [--window 30]
                  [--repeat 1] [--no-programs] [--out bench/results/capacity-DATE.json | --no-out]
                  [--markdown RESULT.json]
       make bench BENCH=bench/capacity.py [BENCH_ARGS="--repeat 2"]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
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
    descendants,
    fmt,
    git_info,
    machine_info,
    median,
    prefixes,
    proc_cmdline,
    proc_cpu,
    proc_status,
    venv_python,
)
from bfd_sessions import agent_neighbors, bird_protocols, wait_for
from netlab.bird import Bird, BirdPeer
from netlab.ns import install_signal_cleanup, run

NAME = "capacity"
VARIANTS = ("down", "idle", "out", "in")
MAX_SESSIONS = 8000
FEED = REPO / "bench" / "api_feed.py"
SERVICE_IP = "100.10.0.100/32"
ROUTER_BASE = ipaddress.IPv4Address("10.255.64.0")  # BIRD's session addresses, 10.255.64.0/18
AGENT_BASE = ipaddress.IPv4Address("10.255.128.0")  # the agent's, 10.255.128.0/18


def proto_name(i: int) -> str:
    return f"p{i + 1:04d}"


def bird_address(i: int) -> str:
    """BIRD's end of session i, on its `lo`: 10.255.64.1 upwards."""
    return str(ROUTER_BASE + 1 + i)


def agent_address(i: int) -> str:
    """The agent's end of session i, on its `lo`: 10.255.128.1 upwards."""
    return str(AGENT_BASE + 1 + i)


def wire(lab: Lab, n: int) -> tuple[Any, Any, Any]:
    """The two namespaces and the veth pair; the n session addresses of each side on its `lo`,
    and one route a side to the other's: BIRD's sessions are `multihop`. Not n addresses a side
    on the link: that needs 2 x n ARP entries, and the kernel's ARP table is shared by every
    namespace on the host (gc_thresh3, 1024 by default): at 1,000 sessions it overflowed
    ("neighbor table overflow"), packets were dropped and sessions flapped on hold timers."""
    router, agent_ns, link = lab.pair("r", "s", v6=False)
    for ns, addr, other, via in ((router, bird_address, AGENT_BASE, link.b4),
                                 (agent_ns, agent_address, ROUTER_BASE, link.a4)):
        run(["ip", "-n", ns.name, "-batch", "-"],
            input="".join(f"addr add {addr(i)}/32 dev lo\n" for i in range(n)))
        run(["ip", "-n", ns.name, "route", "add", f"{other}/18", "via", via])
    return router, agent_ns, link


# --------------------------------------------------------------------------------------------
# readings


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss / Pss / Anonymous in bytes from /proc/PID/smaps_rollup ({} when gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    return parse_smaps_rollup(text)


_SMAPS_RE = re.compile(r"^(Rss|Pss|Anonymous):\s+(\d+) kB$", re.M)


def parse_smaps_rollup(text: str) -> dict[str, int]:
    return {k: int(v) * 1024 for k, v in _SMAPS_RE.findall(text)}


_SOCKSTAT_RE = re.compile(r"^TCP: inuse (\d+) orphan \d+ tw \d+ alloc (\d+) mem (\d+)$", re.M)


def parse_sockstat(text: str) -> dict[str, int]:
    """The TCP sockets in use from /proc/net/sockstat ({} when the line is missing). `inuse` is
    per network namespace (the agent's sessions); its `mem` is the whole host's, so not kept."""
    m = _SOCKSTAT_RE.search(text)
    return {"tcp_inuse": int(m.group(1))} if m else {}


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def threads(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def memory(pid: int, ns) -> dict[str, Any]:
    """One process's memory now, its FDs and threads, and the TCP sockets of its namespace."""
    st, sm = proc_status(pid), smaps_rollup(pid)
    cp = ns.run(["cat", "/proc/net/sockstat"], check=False)
    return {"rss_mib": benchlib.mib(st.get("VmRSS")), "hwm_mib": benchlib.mib(st.get("VmHWM")),
            "pss_mib": benchlib.mib(sm.get("Pss")), "anon_mib": benchlib.mib(sm.get("Anonymous")),
            "fds": open_fds(pid), "threads": threads(pid), **parse_sockstat(cp.stdout or "")}


def keepalive_totals(neigh: dict[str, dict[str, Any]]) -> tuple[int, int]:
    ins = sum(n["stats"].get("keepalives_in", 0) for n in neigh.values())
    outs = sum(n["stats"].get("keepalives_out", 0) for n in neigh.values())
    return ins, outs


def per_unit(delta: float | None, units: float) -> float | None:
    return round(delta / units, 1) if delta is not None and units else None


# --------------------------------------------------------------------------------------------
# configs


def agent_config(n: int, hold_time: int, routes: Sequence[str] = (), adj_rib_in: bool = False,
                 processes: Sequence[tuple[str, str]] = (), passive: bool = False) -> str:
    parts = [f"process {name} {{\n  run {cmd};\n  encoder text;\n}}\n" for name, cmd in processes]
    static = ""
    if routes:
        static = "  static {\n" + "".join(f"    route {p} {ATTRS};\n" for p in routes) + "  }\n"
    for i in range(n):
        block = [f"neighbor {bird_address(i)} {{", f"  router-id {agent_address(0)};",
                 f"  local-address {agent_address(i)};",
                 f"  local-as {SENDER_AS};", f"  peer-as {ROUTER_AS};", f"  hold-time {hold_time};",
                 "  family {\n    ipv4 unicast;\n  }"]
        if passive:
            block.append("  passive true;")
        if adj_rib_in:
            block.append("  adj-rib-in true;")
        if processes and i == 0:
            block.append(f"  api {{\n    processes [ {' '.join(name for name, _ in processes)} ];\n  }}")
        parts.append("\n".join(block) + "\n" + static + "}\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# one run


def one_run(variant: str, n: int, args: argparse.Namespace, sender: FleetbgpSender) -> dict:
    k = args.routes_per_session if variant in ("out", "in") else 0
    rec: dict[str, Any] = {"variant": variant, "sessions": n, "routes_per_session": k, "ok": False,
                           "error": None, "loadavg_before": list(os.getloadavg())}
    routes = prefixes(k) if k else []
    with Lab(prefix="fcp") as lab:
        router, agent_ns, _ = wire(lab, n)
        bird = Bird(lab, router, router_id=bird_address(0))
        export = 'where proto = "feed"' if variant == "in" else "none"
        for i in range(n):
            # disabled: the bench brings the sessions up in batches (see bring_up)
            bird.add_peer(BirdPeer(proto_name(i), neighbor=agent_address(i), peer_as=SENDER_AS,
                                   local_as=ROUTER_AS, local_address=bird_address(i), hold=args.hold_time,
                                   export=export, multihop=2, extra="disabled;"))
        bird.extra.append("timeformat protocol iso long ms;")  # what bird_protocols() parses
        if variant == "in":
            bird.add_static("feed", "ipv4", [f"{p} blackhole" for p in routes])
            # enabled by the bench once every session is up: the CPU of receiving is measured apart
            bird.statics[-1] = bird.statics[-1].replace("  ipv4;", "  ipv4;\n  disabled;", 1)

        conf = lab.path("agent.conf")
        # The agent is passive and BIRD connects (except in `down`, where the agent's retries are
        # what is measured). Both active, 1,000 sessions on 2 busy cores spent minutes in
        # connection collisions (RFC 4271 6.8); BIRD passive, its listen backlog of 8 dropped
        # most of the agent's 1,000 SYNs and the agent's retry back-off took minutes again.
        conf.write_text(agent_config(n, args.hold_time, routes if variant == "out" else (),
                                     adj_rib_in=variant == "in", passive=variant != "down"))
        sock = lab.path("agent.sock")
        ctl = agent = None
        try:
            if variant != "down":
                bird.start()
                ctl = BirdCtl(bird.sock)
                rec["bird_pid"] = bird.proc.pid
            # a control socket of its own: the default /run/fleetbgp/control.sock may be another
            # agent's on this host (the agent refuses to start then)
            agent = lab.spawn(agent_ns, sender.argv(conf), name="agent",
                              env={**sender.env(), "FLEETBGP_CONTROL_SOCKET": str(sock)})
            t0 = time.monotonic()
            rec["agent_pid"] = agent.pid

            def describe() -> str:
                tail = f"agent log:\n{agent.log_tail(20)}"
                return tail + (f"\nBIRD log:\n{bird.proc.log_tail(10)}" if bird.proc else "")

            def agent_state() -> dict[str, dict[str, Any]]:
                lab.check_alive()
                return agent_neighbors(sock) if sock.exists() else {}

            if variant == "down":
                wait_for("the agent's control socket", lambda: sock.exists() or "no socket yet",
                         args.setup_timeout, describe=describe)
            else:
                wait_for("the agent's control socket", lambda: sock.exists() or "no socket yet",
                         args.setup_timeout, describe=describe)
                bring_up(ctl, n, args, describe)
                rec["t_up_s"] = round(time.monotonic() - t0, 2)
                rec["cpu_at_up_s"] = proc_cpu(agent.pid)
            if variant == "out":
                rec["out"] = wait_routes_out(ctl, n, k, agent.pid, t0, args, describe)
            if variant == "in":
                rec["in"] = receive(ctl, sock, n, k, agent.pid, agent_state, args, describe)
            time.sleep(args.settle)
            if variant in ("down", "idle"):
                rec["rest"] = at_rest(agent.pid, sock if variant == "idle" else None, n, args.window)
            rec["memory"] = memory(agent.pid, agent_ns)
            rec["cpu_total_s"] = proc_cpu(agent.pid)
            if bird.proc is not None:
                rec["bird_rss_mib"] = benchlib.mib(proc_status(bird.proc.pid).get("VmRSS"))
            rec["ok"] = True
        except Exception as exc:  # record and go on with the next run
            rec["error"] = f"{type(exc).__name__}: {exc}"
            if agent is not None:
                rec["log_tail"] = agent.log_tail(30)
        finally:
            if ctl is not None:
                ctl.close()
            if agent is not None:
                rec["exit_code"] = agent.stop(timeout=20)
    rec["loadavg_after"] = list(os.getloadavg())
    return rec


def bring_up(ctl: BirdCtl, n: int, args, describe) -> None:
    """Enable BIRD's sessions --batch at a time, each batch Established before the next. All at
    once, 1,000 connects on 2 busy cores overflowed the listen backlog (the agent's 64, BIRD's
    8), the retries crossed the queued connects and the sessions took minutes of connection
    collisions to come up (docs/operations/capacity.md, "Many sessions at once")."""
    for start in range(0, n, args.batch):
        names = [proto_name(i) for i in range(start, min(n, start + args.batch))]
        for name in names:
            ctl.cmd(f"enable {name}")

        def batch_up(want: int = start + len(names)):
            protos = bird_protocols(ctl)
            est = sum(1 for p in protos.values() if p["info"] == "Established")
            return True if est >= want else f"BIRD: {est}/{want} Established"

        wait_for(f"sessions {names[0]}..{names[-1]} Established", batch_up, args.setup_timeout,
                 interval=0.25, describe=describe)


_IMPORTED_ALL_RE = re.compile(r"Routes:\s+(\d+) imported")


def bird_imported_total(ctl: BirdCtl) -> int:
    return sum(int(x) for x in _IMPORTED_ALL_RE.findall(ctl.cmd("show protocols all")))


def wait_routes_out(ctl: BirdCtl, n: int, k: int, pid: int, t0: float, args, describe) -> dict:
    """Until BIRD holds k routes from every session; the last protocol is polled alone (cheap),
    the full count once it is there."""
    last = proto_name(n - 1)
    wait_for(f"{k} routes from {last}", lambda: benchlib.proto_status(ctl, last)[1] >= k or "not yet",
             args.route_timeout, interval=0.25, describe=describe)
    wait_for(f"{n * k} routes in BIRD", lambda: bird_imported_total(ctl) == n * k or "not yet",
             args.route_timeout, interval=0.5, describe=describe)
    cpu = proc_cpu(pid)
    return {"t_all_s": round(time.monotonic() - t0, 2), "agent_cpu_s": cpu,
            "route_sessions": n * k}


def receive(ctl: BirdCtl, sock: Path, n: int, k: int, pid: int, agent_state: Callable, args,
            describe) -> dict:
    """Enable BIRD's feed, then wait until the agent holds k prefixes from every session: the
    agent's CPU and UPDATEs received in between (its own counters)."""
    before = agent_state()
    upd0 = sum(x["updates"]["received"] for x in before.values())
    time.sleep(args.settle)
    c0, t0 = proc_cpu(pid), time.monotonic()
    ctl.cmd("enable feed")
    last_peer = bird_address(n - 1)

    def last_full():
        neigh = agent_neighbors_one(sock, last_peer)
        got = sum((neigh.get("prefixes") or {}).get("received", {}).values()) if neigh else 0
        return True if got >= k else f"{last_peer}: {got}/{k} received"

    wait_for("the last session's routes", last_full, args.route_timeout, interval=0.25, describe=describe)

    def all_full():
        neigh = agent_state()
        got = sum(sum(x["prefixes"]["received"].values()) for x in neigh.values())
        return True if got == n * k else f"{got}/{n * k} received"

    wait_for("every session's routes", all_full, args.route_timeout, interval=1.0, describe=describe)
    c1, t1 = proc_cpu(pid), time.monotonic()
    after = agent_state()
    updates = sum(x["updates"]["received"] for x in after.values()) - upd0
    cpu = round(c1 - c0, 3) if None not in (c0, c1) else None
    return {"agent_cpu_s": cpu, "wall_s": round(t1 - t0, 2), "prefixes": n * k, "updates": updates,
            "cpu_ms_per_1000_prefixes": round(1000 * cpu / (n * k) * 1000, 2) if cpu is not None else None,
            "cpu_ms_per_1000_updates": round(1000 * cpu / updates * 1000, 2) if cpu and updates else None}


def agent_neighbors_one(sock: Path, peer: str) -> dict[str, Any] | None:
    from bfd_sessions import control_client
    with control_client.ControlClient(str(sock), timeout=30) as client:
        reply = client.call("neighbors", neighbor=peer)
    found = reply.get("neighbors") or []
    return found[0] if found else None


def at_rest(pid: int, sock: Path | None, n: int, window: float) -> dict:
    """CPU over the window, nothing polled in between; the keepalive counters bracket it."""
    ka0 = keepalive_totals(agent_neighbors(sock)) if sock else None
    c0, t0 = proc_cpu(pid), time.monotonic()
    time.sleep(window)
    c1, t1 = proc_cpu(pid), time.monotonic()
    ka1 = keepalive_totals(agent_neighbors(sock)) if sock else None
    if None in (c0, c1):
        raise NetlabError("the agent went away during the window")
    wall = t1 - t0
    out: dict[str, Any] = {"window_s": round(wall, 2), "cpu_s": round(c1 - c0, 3),
                           "cpu_pct": round(100 * (c1 - c0) / wall, 3)}
    if ka0 and ka1:
        out["keepalives_in_per_s"] = round((ka1[0] - ka0[0]) / wall, 1)
        out["keepalives_out_per_s"] = round((ka1[1] - ka0[1]) / wall, 1)
    return out


# --------------------------------------------------------------------------------------------
# API programs


def program_commands(lab: Lab) -> list[tuple[str, str, str]]:
    """(process name, run line, what its command line contains) of each typical program."""
    py = venv_python()
    exabgp = Path(py).with_name("exabgp")
    one = lab.path("one.api")
    one.write_text(f"announce route {SERVICE_IP} next-hop self med 100\n")
    hc = f"--cmd true --ip {SERVICE_IP} --no-syslog --interval 5"
    progs = [("fleetbgp_healthcheck", f"{py} -m fleetbgp healthcheck {hc}", "fleetbgp healthcheck")]
    if exabgp.exists():
        progs.append(("exabgp_healthcheck", f"{exabgp} healthcheck {hc}", "exabgp healthcheck"))
    progs.append(("python_announcer", f"{py} {FEED} {one} {lab.path('one.json')}", FEED.name))
    return progs


def programs_run(args: argparse.Namespace, sender: FleetbgpSender) -> dict:
    rec: dict[str, Any] = {"ok": False, "error": None, "loadavg_before": list(os.getloadavg())}
    with Lab(prefix="fcq") as lab:
        router, agent_ns, _ = wire(lab, 1)
        bird = Bird(lab, router, router_id=bird_address(0))
        bird.add_peer(BirdPeer(proto_name(0), neighbor=agent_address(0), peer_as=SENDER_AS,
                               local_as=ROUTER_AS, local_address=bird_address(0), hold=args.hold_time,
                               multihop=2))
        progs = program_commands(lab)
        conf = lab.path("agent.conf")
        conf.write_text(agent_config(1, args.hold_time, processes=[(p, c) for p, c, _ in progs]))
        agent = None
        try:
            bird.start()
            # the agent's own environment, API acks on (the default): what the programs expect
            agent = lab.spawn(agent_ns, sender.argv(conf), name="agent",
                              env={**benchlib.agent_env(sender.src),
                                   "FLEETBGP_CONTROL_SOCKET": str(lab.path("agent.sock"))})
            # the healthchecks announce after `rise` (3) checks at --interval 5: about 15 s
            def announced():
                lab.check_alive()
                return bird.imported_count(proto_name(0)) >= 1 or "not yet"

            wait_for("the service IP in BIRD", announced, args.setup_timeout,
                     describe=lambda: agent.log_tail(20))
            time.sleep(args.settle)
            children = {}
            for pid in descendants(agent.pid):
                cmd = proc_cmdline(pid)
                name = next((p for p, _, marker in progs if marker in cmd), None)
                if name is None:  # a check's own short-lived child (`true`)
                    continue
                st, sm = proc_status(pid), smaps_rollup(pid)
                children[str(pid)] = {"name": name, "cmdline": cmd[:200],
                                      "rss_mib": benchlib.mib(st.get("VmRSS")),
                                      "hwm_mib": benchlib.mib(st.get("VmHWM")),
                                      "pss_mib": benchlib.mib(sm.get("Pss")),
                                      "cpu_s": proc_cpu(pid)}
            rec["programs"] = children
            rec["agent"] = memory(agent.pid, agent_ns)
            rec["ok"] = True
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
            if agent is not None:
                rec["log_tail"] = agent.log_tail(30)
        finally:
            if agent is not None:
                rec["exit_code"] = agent.stop(timeout=20)
    return rec


# --------------------------------------------------------------------------------------------
# summary and tables


def _spread(xs: list[float]) -> list[float] | None:
    return [min(xs), max(xs)] if xs else None


def summarise(runs: list[dict], sessions: Sequence[int], variants: Sequence[str]) -> dict[str, Any]:
    """Medians (and [min, max]) per (variant, N), then the derived per-unit costs."""
    rows = []
    for v in variants:
        for n in sessions:
            ok = [r for r in runs if r["variant"] == v and r["sessions"] == n and r["ok"]]
            if not ok:
                continue
            row: dict[str, Any] = {"variant": v, "sessions": n, "runs_ok": len(ok),
                                   "routes_per_session": ok[0]["routes_per_session"]}
            for key in ("rss_mib", "hwm_mib", "pss_mib", "fds", "threads", "tcp_inuse"):
                xs = [r["memory"].get(key) for r in ok if r["memory"].get(key) is not None]
                row[key] = median(xs)
                row[f"{key}_spread"] = _spread(xs)
            xs = [r["cpu_at_up_s"] for r in ok if r.get("cpu_at_up_s") is not None]
            row["cpu_at_up_s"] = median(xs)
            for key in ("cpu_pct", "keepalives_in_per_s", "keepalives_out_per_s"):
                xs = [r["rest"][key] for r in ok if (r.get("rest") or {}).get(key) is not None]
                row[key] = median(xs)
                row[f"{key}_spread"] = _spread(xs)
            for part, key in (("out", "agent_cpu_s"), ("out", "t_all_s"), ("in", "agent_cpu_s"),
                              ("in", "cpu_ms_per_1000_prefixes"), ("in", "cpu_ms_per_1000_updates"),
                              ("in", "updates")):
                xs = [r[part][key] for r in ok if (r.get(part) or {}).get(key) is not None]
                if xs:
                    row[f"{part}_{key}"] = median(xs)
                    row[f"{part}_{key}_spread"] = _spread(xs)
            rows.append(row)
    return {"rows": rows, "derived": derive(rows)}


def derive(rows: list[dict]) -> dict[str, Any]:
    """Bytes per session (idle over down at 1 session), per route-session out and in (over idle
    at the same N): the sizing rule's terms."""
    by = {(r["variant"], r["sessions"]): r for r in rows}
    out: dict[str, Any] = {}
    base = by.get(("down", 1)) or by.get(("idle", 1))
    if base:
        out["base_rss_mib"] = base["rss_mib"]
    for (v, n), r in sorted(by.items()):
        if v == "idle" and n > 1 and ("idle", 1) in by:
            one = by[("idle", 1)]
            out[f"session_kib_at_{n}"] = round((r["rss_mib"] - one["rss_mib"]) * 1024 / (n - 1), 1)
        if v == "down" and n > 1 and ("down", 1) in by:
            one = by[("down", 1)]
            out[f"configured_kib_at_{n}"] = round((r["rss_mib"] - one["rss_mib"]) * 1024 / (n - 1), 1)
        if v in ("out", "in") and ("idle", n) in by and r["routes_per_session"]:
            idle = by[("idle", n)]
            units = n * r["routes_per_session"]
            out[f"{v}_bytes_per_route_session_at_{n}"] = round(
                (r["rss_mib"] - idle["rss_mib"]) * benchlib.MIB / units)
        # the routes' share of the CPU: `out` (config parse + send) less `idle`'s start-up to all up
        idle_up = (by.get(("idle", n)) or {}).get("cpu_at_up_s")
        if v == "out" and r.get("out_agent_cpu_s") is not None and idle_up is not None:
            out[f"out_cpu_ms_per_1000_route_sessions_at_{n}"] = round(
                (r["out_agent_cpu_s"] - idle_up) * 1e6 / (n * r["routes_per_session"]), 2)
    return out


def _cell(row: dict, key: str, spec: str = ".1f") -> str:
    v, s = row.get(key), row.get(f"{key}_spread")
    if v is None:
        return "-"
    if s and row["runs_ok"] > 1 and s[0] != s[1]:
        return f"{fmt(v, spec)} ({fmt(s[0], spec)}-{fmt(s[1], spec)})"
    return fmt(v, spec)


def markdown(result: dict) -> str:
    a, s = result["args"], result["summary"]
    lines = [
        *benchlib.markdown_header(result, NAME),
        f"Command: `{' '.join(result['command'])}`  ",
        f"Hold time {a['hold_time']} s on both sides (a KEEPALIVE every {a['hold_time'] // 3} s per session "
        f"each way); {a['routes_per_session']:,} routes per session in `out` and `in`; CPU at rest over "
        f"{a['window']:.0f} s.", "",
        "Medians per (variant, sessions), (min-max) over the runs when they differ:", "",
        "| variant | sessions | routes/session | runs ok | RSS (MiB) | peak RSS (MiB) | PSS (MiB) | "
        "open FDs | threads | CPU at rest (% of one core) | keepalives received/s | CPU to send all (s) | "
        "CPU to receive all (s) | ms CPU per 1,000 prefixes in | UPDATEs in |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in s["rows"]:
        # the agent counts the KEEPALIVEs it receives only (stats: keepalives_in)
        ka = fmt(r.get("keepalives_in_per_s"), ".1f")
        lines.append(
            f"| {r['variant']} | {r['sessions']:,} | {r['routes_per_session']:,} | {r['runs_ok']} | "
            f"{_cell(r, 'rss_mib')} | {_cell(r, 'hwm_mib')} | {_cell(r, 'pss_mib')} | "
            f"{_cell(r, 'fds', '.0f')} | {_cell(r, 'threads', '.0f')} | {_cell(r, 'cpu_pct', '.2f')} | "
            f"{ka} | "
            f"{_cell(r, 'out_agent_cpu_s', '.2f')} | {_cell(r, 'in_agent_cpu_s', '.2f')} | "
            f"{_cell(r, 'in_cpu_ms_per_1000_prefixes', '.1f')} | {_cell(r, 'in_updates', '.0f')} |")
    d = s.get("derived") or {}
    if d:
        lines += ["", "Derived (from the medians above):", ""]
        lines += [f"- `{k}`: {v}" for k, v in d.items()]
    prog = result.get("programs")
    if prog:
        lines += ["", "API programs (one session; each child of the agent after the healthchecks "
                      "announced):", "",
                  "| process | RSS (MiB) | PSS (MiB) | peak RSS (MiB) |", "|---|---:|---:|---:|"]
        if prog.get("ok"):
            ag = prog["agent"]
            lines.append(f"| the agent itself | {fmt(ag['rss_mib'])} | {fmt(ag['pss_mib'])} | "
                         f"{fmt(ag['hwm_mib'])} |")
            for c in prog["programs"].values():
                lines.append(f"| {c['name'] or c['cmdline'][:60]} | {fmt(c['rss_mib'])} | "
                             f"{fmt(c['pss_mib'])} | "
                             f"{fmt(c['hwm_mib'])} |")
        else:
            lines.append(f"| failed: {(prog.get('error') or '?').splitlines()[0][:120]} | - | - | - |")
    lines += ["", "Every run, in the order run (a fresh lab each):", "",
              "| variant | sessions | RSS (MiB) | PSS (MiB) | CPU at rest (%) | up after (s) | load after "
              "| note |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["runs"]:
        m, rest = r.get("memory") or {}, r.get("rest") or {}
        note = "ok" if r["ok"] else (r.get("error") or "failed").splitlines()[0][:100]
        lines.append(f"| {r['variant']} | {r['sessions']:,} | {fmt(m.get('rss_mib'))} | "
                     f"{fmt(m.get('pss_mib'))} | "
                     f"{fmt(rest.get('cpu_pct'))} | {fmt(r.get('t_up_s'))} | "
                     f"{fmt((r.get('loadavg_after') or [None])[0])} | {note} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the driver


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 200, 1000], help="configured neighbors")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--routes-per-session", type=int, default=1000, help="routes per session in out and in")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of CPU measurement at rest")
    ap.add_argument("--repeat", type=int, default=1, help="runs per (variant, N); medians in the summary")
    ap.add_argument("--hold-time", type=int, default=90, help="BGP hold time on both sides")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before a memory reading")
    ap.add_argument("--batch", type=int, default=50, help="sessions brought up at a time")
    ap.add_argument("--setup-timeout", type=float, default=300.0, help="bound on every session coming up")
    ap.add_argument("--route-timeout", type=float, default=600.0, help="bound on every route arriving")
    ap.add_argument("--no-programs", dest="programs", action="store_false", help="skip the API programs run")
    benchlib.add_output_args(ap, NAME)
    return ap


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, or None."""
    bad = [n for n in args.sessions if not 1 <= n <= MAX_SESSIONS]
    if bad:
        return f"--sessions takes 1..{MAX_SESSIONS}, not {bad}"
    if not 1 <= args.routes_per_session <= 1_000_000:
        return f"--routes-per-session takes 1..1000000, not {args.routes_per_session}"
    if args.hold_time < 3:
        return f"--hold-time must be 3 or more, not {args.hold_time}"
    if args.batch < 1:
        return f"--batch must be 1 or more, not {args.batch}"
    if args.repeat < 1 or args.window <= 0:
        return "--repeat must be 1 or more and --window above 0"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.markdown:
        return benchlib.rewrite_markdown(args.markdown, markdown)
    problem = check_args(args)
    if problem:
        print(f"{NAME}.py: {problem}", file=sys.stderr)
        return 2
    if args.baseline or args.baseline_src:
        print(f"{NAME}: --baseline ignored (this bench measures the current tree only)")
    if os.geteuid() != 0:
        print(f"{NAME}.py needs root (network namespaces)", file=sys.stderr)
        return 2
    install_signal_cleanup()
    sender = FleetbgpSender()
    why = sender.available()
    if why:
        print(f"fleetbgp cannot run: {why}", file=sys.stderr)
        return 1
    started = dt.datetime.now().astimezone()
    out = None
    if not args.no_out:
        out = args.out or REPO / "bench" / "results" / f"{NAME}-{started:%Y%m%d-%H%M%S}.json"
    versions = {"fleetbgp": sender.version(), "bird": bird_version()}
    if shutil.which("exabgp") or Path(venv_python()).with_name("exabgp").exists():
        versions["exabgp"] = benchlib.ExabgpSender().version()
    info = machine_info()
    print(f"machine: {info['nproc']} CPU ({info['cpu']}), load {info['loadavg_start']}; versions {versions}")

    runs: list[dict] = []
    for rep in range(args.repeat):
        for n in args.sessions:
            order = args.variants if rep % 2 == 0 else list(reversed(args.variants))
            for variant in order:
                print(f"-- {variant}, {n} sessions (run {rep + 1}/{args.repeat}) ...", flush=True)
                rec = one_run(variant, n, args, sender)
                rec["repeat"] = rep
                runs.append(rec)
                if not rec["ok"]:
                    print(f"   FAILED: {rec['error']}", flush=True)
                    continue
                m = rec["memory"]
                msg = f"   RSS {m['rss_mib']} MiB, PSS {m['pss_mib']} MiB, {m['fds']} FDs"
                if rec.get("rest"):
                    msg += f"; at rest {rec['rest']['cpu_pct']:.2f} % of one core"
                for part in ("out", "in"):
                    if rec.get(part):
                        msg += f"; {part}: agent CPU {rec[part]['agent_cpu_s']} s"
                print(msg, flush=True)
    programs = None
    if args.programs:
        print("-- API programs ...", flush=True)
        programs = programs_run(args, sender)
        print("   " + ("ok" if programs["ok"] else f"FAILED: {programs['error']}"), flush=True)

    result = {
        "bench": NAME,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {**info, "loadavg_end": list(os.getloadavg())},
        "versions": versions,
        "git": git_info(),
        "method": {
            "peer": "BIRD 2 in its own namespace, one protocol bgp per session (not started in `down`)",
            "memory": "VmRSS from /proc/PID/status and Pss from /proc/PID/smaps_rollup after --settle; "
                      "TCP socket memory: the TCP mem pages of /proc/net/sockstat in the agent's namespace",
            "cpu_at_rest": "utime+stime of the agent from /proc/PID/stat over --window, nothing polled",
            "out": "agent CPU from spawn (config parse included) to BIRD holding every route",
            "in": "agent CPU from `enable feed` in BIRD to the agent's control socket showing every "
                  "prefix received (polling included: one neighbor every 0.25 s, then all every 1 s)",
        },
        "runs": runs,
        "programs": programs,
        "summary": summarise(runs, args.sessions, args.variants),
    }
    benchlib.write_result(result, markdown(result), out)
    return 0 if all(r["ok"] for r in runs) and (programs is None or programs["ok"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
