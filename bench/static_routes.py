#!/usr/bin/env python3
"""Static-route load bench: how long until BIRD 2 holds N routes from a sender's config file.

For each N (default 10,000 and 100,000), in the same run and on the same machine, each sender
gets a fresh lab: two network namespaces joined by a veth pair, BIRD 2 as the receiver in one
(``ipv4 { import all; export none; }``), the sender in the other, loading N static routes from
one ExaBGP-syntax config file (the same file for every sender):

    neighbor 10.255.1.1 {
      router-id 10.255.1.2; local-address 10.255.1.2; local-as 65001; peer-as 65000; ...
      family { ipv4 unicast; }
      static {
        route 10.0.0.0/24 next-hop self med 100 community [ 65001:100 ];
        ...                      (N distinct /24s, identical attributes)
      }
    }

Senders: ``fleetbgp`` (``python -m fleetbgp run CONF``) and ExaBGP 5.0.15 (``exabgp server CONF``).
GoBGP is not comparable here (it has no static routes in a config file); ``GobgpApiSender`` is
the named hook for a later API bench (gRPC AddPathStream).

Metrics, per run:
* ``t_all_s``: wall time from the moment the sender process is spawned until BIRD's per-protocol
  counter (``show protocols all PROTO``, line ``Routes: N imported``) reads N. Polled every
  ``--poll-interval`` (25 ms) over one persistent connection to BIRD's control socket (the same
  request ``birdc -s SOCK show protocols all PROTO`` sends, without forking birdc 40 times a second
  on a 2-core machine where the sender is CPU-bound). Not ``show route count``: it walks the
  whole table inside BIRD's only event loop and slows the ingest it measures.
  Also ``t_established_s`` (first poll that sees Established: for both senders ~= config parse
  + start-up) and ``t_first_route_s``.
* ``rss_peak_mib``: the sender's peak RSS, ``VmHWM`` from ``/proc/PID/status`` of the sender
  process, read while it is still alive, after all routes arrived and a settle period. It is
  per-process and exact (the kernel's own high-water mark), needs no wrapper, and is read before
  we stop the sender. ``ip netns exec`` execs the command, so the PID we spawn is the sender's.
  Descendants are found through /proc (ppid) at every sample; their VmHWM is added into
  ``rss_tree_peak_mib`` (neither sender forks for this config: both figures should be equal).
  getrusage(RUSAGE_CHILDREN) was not used: it is only known after the child is reaped, and it
  is the max over all children of the bench process, so would need a wrapper process per run.
* ``cpu_s``: the sender's user+system CPU at the moment BIRD held all routes.

Measurement, not a test: nothing here asserts a time. The exit code is 1 only when a run did not
complete (sender crashed, session never came up, wrong route count, bounded wait ran out).

Usage (as root):  .venv/bin/python bench/static_routes.py [--routes 10000 100000]
                  [--senders fleetbgp exabgp] [--repeat 1] [--profile]
                  [--out bench/results/static_routes-DATE.json | --no-out] [--markdown RESULT.json]
       make bench BENCH_ARGS="--repeat 3 --profile"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from netlab import Lab, NetlabError  # noqa: E402
from netlab.bird import Bird, BirdPeer, parse_bird_routes  # noqa: E402
from netlab.ns import install_signal_cleanup  # noqa: E402

MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUTER_AS, SENDER_AS = 65000, 65001
ATTRS = "next-hop self med 100 community [ 65001:100 ]"
EXPECT = {"med": 100, "communities": [(65001, 100)], "as_path": [SENDER_AS]}
TARGET = {"routes": 100_000, "t_all_s": 5.0, "rss_peak_mib": 120.0}  # issue 2; informational only
PROTO = "sender"


# --------------------------------------------------------------------------------------------
# the routes and the config


def prefixes(n: int) -> list[str]:
    """N distinct /24s from 10.0.0.0 upwards, skipping 10.255.0.0/16 (the lab's link addresses)."""
    out: list[str] = []
    base = 10 << 24
    i = 0
    while len(out) < n:
        a = base + (i << 8)
        i += 1
        o1, o2, o3 = a >> 24, (a >> 16) & 255, (a >> 8) & 255
        if o1 == 10 and o2 == 255:
            continue
        out.append(f"{o1}.{o2}.{o3}.0/24")
    return out


def render_config(routes: Sequence[str], peer: str, local: str, hold_time: int) -> str:
    head = (
        f"neighbor {peer} {{\n"
        f"  router-id {local};\n"
        f"  local-address {local};\n"
        f"  local-as {SENDER_AS};\n"
        f"  peer-as {ROUTER_AS};\n"
        f"  hold-time {hold_time};\n"
        "  family {\n    ipv4 unicast;\n  }\n"
        "  static {\n"
    )
    body = "".join(f"    route {p} {ATTRS};\n" for p in routes)
    return head + body + "  }\n}\n"


# --------------------------------------------------------------------------------------------
# local helpers (not in lab/netlab): a persistent BIRD control-socket client, /proc readers


class BirdCtl:
    """One connection to BIRD's control socket, speaking the protocol birdc speaks: a command
    line out; reply lines ``CCCC-text`` / ``CCCC text`` / `` text`` back, ending with a line whose
    code starts with 0 (done), 8 or 9 (error) followed by a space."""

    def __init__(self, path: Path, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.rfile = self.sock.makefile("rb")
        self._reply()  # 0001 BIRD x.y.z ready.

    def _reply(self) -> str:
        lines = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                raise NetlabError("BIRD closed its control socket")
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if len(line) >= 5 and line[:4].isdigit() and line[4] == " " and line[0] in "089":
                if line[0] in "89":
                    raise NetlabError(f"BIRD error: {line}")
                return "\n".join(lines)

    def cmd(self, command: str) -> str:
        self.sock.sendall(command.encode() + b"\n")
        return self._reply()

    @staticmethod
    def text(reply: str) -> str:
        """Reply without the 4-digit codes, as birdc prints it."""
        out = []
        for line in reply.splitlines():
            if len(line) >= 5 and line[:4].isdigit() and line[4] in " -":
                line = line[5:]
            elif line.startswith(" "):
                line = line[1:]
            out.append(line)
        return "\n".join(out)

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


_STATE_RE = re.compile(r"BGP state:\s+(\S+)")
_IMPORTED_RE = re.compile(r"Routes:\s+(\d+) imported")


def proto_status(ctl: BirdCtl, proto: str) -> tuple[str, int]:
    reply = ctl.cmd(f"show protocols all {proto}")
    m = _STATE_RE.search(reply)
    return (m.group(1) if m else "?"), sum(int(x) for x in _IMPORTED_RE.findall(reply))


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in bytes, from /proc/PID/status ({} when the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def proc_cpu(pid: int) -> float | None:
    """user+system CPU seconds of one process (not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class RssTracker:
    """Peak RSS of a sender: its own VmHWM, plus the VmHWM of every descendant seen alive."""

    def __init__(self, pid: int):
        self.pid = pid
        self.main_hwm = 0
        self.child_hwm: dict[int, int] = {}

    def sample(self, with_children: bool = True) -> None:
        self.main_hwm = max(self.main_hwm, proc_status(self.pid).get("VmHWM", 0))
        if with_children:
            for c in descendants(self.pid):
                hwm = proc_status(c).get("VmHWM", 0)
                self.child_hwm[c] = max(self.child_hwm.get(c, 0), hwm)

    @property
    def tree_hwm(self) -> int:
        return self.main_hwm + sum(self.child_hwm.values())


# --------------------------------------------------------------------------------------------
# senders


def run_text(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return cp.returncode, (cp.stdout + cp.stderr).strip()


class Sender:
    """One BGP implementation that loads the static-route config. ``argv(conf)`` is what is
    spawned (inside the sender namespace) at t0; ``env()`` its extra environment."""

    name = "?"

    def available(self) -> str | None:
        """None when it can run, else why not (the run is recorded as skipped)."""
        return None

    def version(self) -> str:
        return "?"

    def argv(self, conf: Path) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        return " ".join(self.argv(Path("CONF")))

    def log_facts(self, text: str) -> dict:
        """Numbers the sender logs about itself (recorded with the run)."""
        return {}


def _venv_python() -> tuple[str, dict[str, str]]:
    """The agent's interpreter: the project venv if it exists, else /tmp/probe-venv with agent/src
    on PYTHONPATH (set in both cases, so an uninstalled checkout works too)."""
    venv = REPO / ".venv" / "bin" / "python"
    py = str(venv) if venv.exists() else "/tmp/probe-venv/bin/python"
    pp = os.environ.get("PYTHONPATH")
    agent_src = str(REPO / "agent" / "src")
    return py, {"PYTHONPATH": agent_src + (os.pathsep + pp if pp else ""), "PYTHONUNBUFFERED": "1"}


class FleetbgpSender(Sender):
    name = "fleetbgp"

    def __init__(self, profile_out: Path | None = None):
        self.python, self._env = _venv_python()
        self.profile_out = profile_out  # set: run under cProfile, stats written there on exit

    def argv(self, conf: Path) -> list[str]:
        prof = ["-m", "cProfile", "-o", str(self.profile_out)] if self.profile_out else []
        return [self.python, *prof, "-m", "fleetbgp", "run", str(conf)]

    _SENT_RE = re.compile(r"sent (\d+) UPDATE message\(s\) in ([\d.]+) s")

    def log_facts(self, text: str) -> dict:
        """What the agent says about its own work: UPDATEs sent and the time the send loop took."""
        sent = [(int(a), float(b)) for a, b in self._SENT_RE.findall(text)]
        if not sent:
            return {}
        return {"updates_sent": sum(a for a, _ in sent), "send_loop_s": round(sum(b for _, b in sent), 3)}

    def env(self) -> dict[str, str]:
        return dict(self._env)

    def available(self) -> str | None:
        if not Path(self.python).exists():
            return f"no interpreter at {self.python}"
        rc, out = run_text([self.python, "-m", "fleetbgp", "--help"], env=self._env)
        if rc != 0:
            return f"`{self.python} -m fleetbgp --help` exits {rc}: {out[-400:]}"
        return None

    def version(self) -> str:
        rc, out = run_text([self.python, "-c", "import fleetbgp; print(fleetbgp.__version__)"], env=self._env)
        return out if rc == 0 else f"? ({out[-200:]})"

    def validate(self, conf: Path) -> tuple[int, str]:
        return run_text([self.python, "-m", "fleetbgp", "validate", str(conf)], env=self._env)


class ExabgpSender(Sender):
    name = "exabgp"

    def __init__(self):
        py, _ = _venv_python()
        self.exabgp = str(Path(py).parent / "exabgp")

    def argv(self, conf: Path) -> list[str]:
        return [self.exabgp, "server", str(conf)]

    def env(self) -> dict[str, str]:
        # as root it must not try to drop to 'nobody'; no CLI pipes (no mkfifo), no API acks;
        # log to stdout (our log file) at its default level (no per-route logging by default).
        return {
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_log_destination": "stdout",
            "exabgp_api_cli": "false",
            "exabgp_api_ack": "false",
        }

    def available(self) -> str | None:
        if not Path(self.exabgp).exists():
            return f"no exabgp at {self.exabgp}"
        return None

    def version(self) -> str:
        _, out = run_text([self.exabgp, "version"], env=self.env())
        m = re.search(r"ExaBGP\s*:\s*(\S+)", out)
        return m.group(1) if m else f"? ({out[-200:]})"


class GobgpApiSender(Sender):
    """HOOK for a later API bench: GoBGP 3.10 fed through gRPC AddPathStream.

    Not part of this bench and not selectable: GoBGP has no static routes in a config file, and
    ``gobgp global rib add`` (one CLI process per route) measures the CLI, not GoBGP. An API
    bench would start ``gobgpd`` here, wait for the session, then stream the N paths over gRPC
    (the reference: 100,000 in 18 s, 234 MiB), and measure from the first AddPathStream call.
    """

    name = "gobgp-api"

    def available(self) -> str | None:
        return "not implemented here: GoBGP is measured by an API bench (gRPC AddPathStream)"


SENDERS = {"fleetbgp": FleetbgpSender, "exabgp": ExabgpSender}
HOOKS = {"gobgp-api": GobgpApiSender}


# --------------------------------------------------------------------------------------------
# one run


def mib(b: int | None) -> float | None:
    return None if b is None else round(b / MIB, 1)


def one_run(sender: Sender, n: int, routes: list[str], args) -> dict:
    rec: dict = {"sender": sender.name, "routes": n, "ok": False, "error": None}
    timeout = args.timeout if args.timeout else min(600.0, max(60.0, n * 0.006))
    rec["wait_bound_s"] = timeout
    with Lab(prefix="fbb") as lab:
        router, server, link = lab.pair("r", "s", v6=False)
        conf = lab.path("sender.conf")
        conf.write_text(render_config(routes, peer=link.a4, local=link.b4, hold_time=args.hold_time))
        rec["config_bytes"] = conf.stat().st_size

        bird = Bird(lab, router, router_id=link.a4)
        bird.add_peer(BirdPeer(PROTO, neighbor=link.b4, peer_as=SENDER_AS, local_as=ROUTER_AS,
                               local_address=link.a4, hold=args.hold_time))
        bird.start()
        ctl = BirdCtl(bird.sock)
        proc = None
        try:
            samples = []   # (t, imported) about every 0.5 s, for the ramp
            t_est = t_first = t_all = None
            cpu_at_all = None
            state, imported = "?", 0
            last_sample = -1.0
            t0 = time.monotonic()
            proc = lab.spawn(server, sender.argv(conf), name=sender.name, env=sender.env())
            rss = RssTracker(proc.pid)
            rec["pid"] = proc.pid
            while True:
                now = time.monotonic() - t0
                state, imported = proto_status(ctl, PROTO)
                now = time.monotonic() - t0
                if t_est is None and state == "Established":
                    t_est = now
                if t_first is None and imported > 0:
                    t_first = now
                if imported >= n:
                    t_all = now
                    cpu_at_all = proc_cpu(proc.pid)
                    rss.sample()
                    samples.append((round(now, 3), imported))
                    break
                if now - last_sample >= 0.5:
                    rss.sample()
                    samples.append((round(now, 3), imported))
                    last_sample = now
                if not proc.alive():
                    raise NetlabError(f"{sender.name} exited with {proc.returncode} after {now:.1f}s "
                                      f"(BIRD: {state}, {imported} imported)")
                if now > timeout:
                    raise NetlabError(f"bounded wait ran out after {timeout:.0f}s "
                                      f"(BIRD: {state}, {imported}/{n} imported)")
                time.sleep(args.poll_interval)

            # settle: anything after the last route (End-of-RIB, garbage) still counts in the peak
            time.sleep(args.settle)
            rss.sample()
            if not proc.alive():
                raise NetlabError(f"{sender.name} exited with {proc.returncode} after delivering the routes")
            state, imported = proto_status(ctl, PROTO)
            st = proc_status(proc.pid)
            rec.update({
                "t_established_s": None if t_est is None else round(t_est, 3),
                "t_first_route_s": None if t_first is None else round(t_first, 3),
                "t_all_s": round(t_all, 3),
                "cpu_s": cpu_at_all,
                "rss_peak_mib": mib(rss.main_hwm),
                "rss_tree_peak_mib": mib(rss.tree_hwm),
                "child_pids_seen": len(rss.child_hwm),
                "rss_after_settle_mib": mib(st.get("VmRSS")),
                "imported_after_settle": imported,
                "samples": samples,
                "bird_cpu_s": proc_cpu(bird.proc.pid),
                "bird_rss_peak_mib": mib(proc_status(bird.proc.pid).get("VmHWM")),
            })
            rec["checks"] = check_routes(ctl, routes, link.b4)
            rec.update(sender.log_facts(proc.log_text()))
            rec["ok"] = imported == n and all(c["ok"] for c in rec["checks"])
            if not rec["ok"]:
                rec["error"] = f"after settle BIRD holds {imported} (want {n}); checks: {rec['checks']}"
        except Exception as exc:  # record and go on with the next run
            rec["error"] = f"{type(exc).__name__}: {exc}"
            if proc is not None:
                rec["log_tail"] = proc.log_tail(30)
            try:
                rec["bird_protocol"] = BirdCtl.text(ctl.cmd(f"show protocols all {PROTO}"))[-1500:]
            except Exception:
                pass
        finally:
            ctl.close()
            if proc is not None:
                rec["exit_code"] = proc.stop(timeout=10)
    return rec


def check_routes(ctl: BirdCtl, routes: list[str], next_hop: str) -> list[dict]:
    """The first and last prefix, as BIRD holds them: next hop, MED, community, AS path."""
    out = []
    for p in (routes[0], routes[-1]):
        found = parse_bird_routes(BirdCtl.text(ctl.cmd(f"show route {p} all")))
        r = found[0].common() if found else None
        ok = bool(r) and r["prefix"] == p and r["next_hop"] == next_hop and all(
            r[k] == v for k, v in EXPECT.items())
        out.append({"prefix": p, "ok": ok, "bird": None if r is None else
                    {k: r[k] for k in ("prefix", "next_hop", "med", "communities", "as_path")}})
    return out


# --------------------------------------------------------------------------------------------
# machine, versions, reporting


def parse_only(n: int, tmp: Path, tries: int = 3) -> list:
    """Seconds fleetbgp.config.load() takes for the N-route config, in a fresh agent interpreter each
    time (no network, no profiler): the parse share of the agent's start-up."""
    conf = tmp / "parse-only.conf"
    conf.write_text(render_config(prefixes(n), peer="10.255.1.1", local="10.255.1.2", hold_time=90))
    python, env = _venv_python()
    code = (f"import time, fleetbgp.config as c; t = time.perf_counter(); c.load({str(conf)!r}); "
            "print(time.perf_counter() - t)")
    out = []
    for _ in range(tries):
        rc, text = run_text([python, "-c", code], env=env, timeout=300)
        out.append(round(float(text.split()[-1]), 3) if rc == 0 else None)
    return out


def profile_run(n: int, args) -> dict:
    """One fleetbgp run under cProfile (python -m cProfile -o F -m fleetbgp run CONF), stopped with
    SIGTERM after BIRD holds everything (the agent exits cleanly, so cProfile writes its stats)."""
    import io
    import pstats
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="fbb-profile-"))
    try:
        sender = FleetbgpSender(profile_out=tmp / "fleetbgp.prof")
        print(f"-- fleetbgp under cProfile, {n:,} routes (not in the table) ...", flush=True)
        rec = one_run(sender, n, prefixes(n), args)
        parse = parse_only(n, tmp)
        out = {"config_load_s_no_profiler": parse, "routes": n, "ok": rec["ok"], "error": rec["error"],
               "t_all_s_under_profiler": rec.get("t_all_s"),
               "t_established_s_under_profiler": rec.get("t_established_s")}
        if not sender.profile_out.exists():
            out["error"] = (out["error"] or "") + " (no profile written)"
            out["text"] = json.dumps(out)
            return out
        buf = io.StringIO()
        buf.write(f"fleetbgp run, {n:,} static routes, under cProfile: all in BIRD after "
                  f"{rec.get('t_all_s')} s (established {rec.get('t_established_s')} s)\n"
                  f"fleetbgp.config.load() alone, no profiler, fresh interpreter, 3 tries: {parse} s\n\n")
        st = pstats.Stats(str(sender.profile_out), stream=buf)
        st.sort_stats("cumulative").print_stats(40)
        st.sort_stats("tottime").print_stats(25)
        out["text"] = buf.getvalue()
        top = []
        for (file, line, func), (_cc, nc, tt, ct, _) in st.stats.items():
            top.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc,
                        "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)})
        out["top_tottime"] = sorted(top, key=lambda x: -x["tottime_s"])[:15]
        out["top_cumtime"] = sorted(top, key=lambda x: -x["cumtime_s"])[:25]
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def machine_info() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(), "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem,
        "kernel": platform.release(), "python": platform.python_version(),
        "python_sender": run_text([_venv_python()[0], "-c",
                                   "import platform; print(platform.python_version())"])[1],
        "loadavg_start": list(os.getloadavg()),
    }


def bird_version() -> str:
    bird = shutil.which("bird") or "/usr/sbin/bird"
    _, out = run_text([bird, "--version"])
    m = re.search(r"BIRD version (\S+)", out)
    return m.group(1) if m else out[-200:]


def git_info() -> dict:
    rc, head = run_text(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    rc2, st = run_text(["git", "-C", str(REPO), "status", "--porcelain"])
    return {"head": head if rc == 0 else None,
            "dirty_files": len(st.splitlines()) if rc2 == 0 else None}


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def summarise(runs: list[dict], ns: list[int], names: list[str]) -> list[dict]:
    out = []
    for n in ns:
        row: dict = {"routes": n}
        for name in names:
            ok = [r for r in runs if r["routes"] == n and r["sender"] == name and r["ok"]]
            row[name] = {
                "runs_ok": len(ok),
                "t_all_s": median(r["t_all_s"] for r in ok),
                "t_established_s": median(r["t_established_s"] for r in ok),
                "rss_peak_mib": median(r["rss_peak_mib"] for r in ok),
                "cpu_s": median(r["cpu_s"] for r in ok),
            }
        if "fleetbgp" in row and "exabgp" in row:
            f, e = row["fleetbgp"], row["exabgp"]
            row["ratio_fleetbgp_over_exabgp"] = {
                k: (round(f[k] / e[k], 3) if f[k] and e[k] else None) for k in ("t_all_s", "rss_peak_mib")}
        out.append(row)
    return out


def fmt(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(runs: list[dict], summary: list[dict]) -> str:
    lines = ["Medians per (routes, sender); issue 2's target for fleetbgp at 100,000: "
             f"under {TARGET['t_all_s']:g} s and under {TARGET['rss_peak_mib']:g} MiB (informational).", "",
             "| routes | sender | runs ok | established (s) | all routes in BIRD (s) | sender CPU (s) "
             "| peak RSS (MiB) |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for row in summary:
        for name, m in row.items():
            if isinstance(m, dict) and "runs_ok" in m:
                lines.append(f"| {row['routes']:,} | {name} | {m['runs_ok']} | {fmt(m['t_established_s'])} | "
                             f"{fmt(m['t_all_s'])} | {fmt(m['cpu_s'])} | {fmt(m['rss_peak_mib'], '.1f')} |")
    lines += ["", "| routes | fleetbgp time / exabgp time | fleetbgp RSS / exabgp RSS |", "|---:|---:|---:|"]
    for row in summary:
        ratio = row.get("ratio_fleetbgp_over_exabgp") or {}
        lines.append(f"| {row['routes']:,} | {fmt(ratio.get('t_all_s'), '.3f')} | "
                     f"{fmt(ratio.get('rss_peak_mib'), '.3f')} |")
    lines += ["", "Every run, in the order run (a fresh lab each):", "",
              "| sender | routes | established (s) | all routes in BIRD (s) | sender CPU (s) "
              "| peak RSS (MiB) | load (1 min) after | note |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        note = "ok" if r["ok"] else (r.get("skipped") or r.get("error") or "failed").splitlines()[0][:100]
        load = (r.get("loadavg_after") or [None])[0]
        lines.append(f"| {r['sender']} | {r['routes']:,} | {fmt(r.get('t_established_s'))} | "
                     f"{fmt(r.get('t_all_s'))} | {fmt(r.get('cpu_s'))} | "
                     f"{fmt(r.get('rss_peak_mib'), '.1f')} | {fmt(load)} | {note} |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The .md written next to the JSON (also: `static_routes.py --markdown FILE.json`)."""
    m, v, g = result["machine"], result["versions"], result["git"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg_start"]), ", ".join(f"{x:.2f}" for x in m["loadavg_end"])
    text = [
        f"# static_routes bench, {result['started']}", "",
        f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_gib']} GiB, kernel {m['kernel']}, "
        f"python {m['python_sender']}; load average at start {load[0]}, at end {load[1]}.  ",
        "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) +
        f"; git {g['head']} with {g['dirty_files']} uncommitted files.  ",
        f"Command: `{' '.join(result['command'])}`", "",
        table(result["runs"], result["summary"]), "",
    ]
    prof = result.get("profile")
    if prof:
        text += [f"Profile (`--profile`, {prof['routes']:,} routes): under cProfile all routes in BIRD after "
                 f"{prof.get('t_all_s_under_profiler')} s; `fleetbgp.config.load()` alone, no profiler: "
                 f"{prof.get('config_load_s_no_profiler')} s. Top functions by own time "
                 "(`epoll.poll` is idle time: the TCP/OPEN exchange with BIRD and the settle before "
                 "SIGTERM):", "",
                 "| function | calls | own (s) | cumulative (s) |", "|---|---:|---:|---:|"]
        text += [f"| `{t['function']}` | {t['calls']} | {t['tottime_s']} | {t['cumtime_s']} |"
                 for t in prof.get("top_tottime", [])[:12]]
        text.append("")
    return "\n".join(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, nargs="+", default=[10_000, 100_000], metavar="N")
    ap.add_argument("--senders", nargs="+", default=list(SENDERS), choices=list(SENDERS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per (N, sender); medians in the summary")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON result file (default bench/results/static_routes-DATE.json); a .md with "
                         "the tables is written next to it")
    ap.add_argument("--no-out", action="store_true", help="print only, write no files")
    ap.add_argument("--poll-interval", type=float, default=0.025, help="seconds between BIRD polls")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds after the last route before the RSS read")
    ap.add_argument("--timeout", type=float, default=None,
                    help="bound per run, seconds (default min(600, max(60, 0.006*N)))")
    ap.add_argument("--hold-time", type=int, default=90, help="hold time on both sides")
    ap.add_argument("--profile", action="store_true",
                    help="after the measured runs, one extra fleetbgp run at the largest N under cProfile "
                         "(not in the results table); top functions go to a -profile.txt next to --out")
    ap.add_argument("--markdown", type=Path, metavar="FILE.json",
                    help="only (re)write the .md of a recorded result file, run nothing")
    args = ap.parse_args(argv)
    if args.markdown:
        md = args.markdown.with_suffix(".md")
        md.write_text(markdown(json.loads(args.markdown.read_text())))
        print(f"wrote {md}")
        return 0

    if os.geteuid() != 0:
        print("static_routes.py needs root (network namespaces)", file=sys.stderr)
        return 2
    install_signal_cleanup()
    started = dt.datetime.now().astimezone()
    out = None
    if not args.no_out:
        out = args.out or REPO / "bench" / "results" / f"static_routes-{started:%Y%m%d-%H%M%S}.json"

    senders = [SENDERS[s]() for s in args.senders]
    unavailable = {s.name: s.available() for s in senders}
    versions = {s.name: (s.version() if unavailable[s.name] is None else None) for s in senders}
    versions["bird"] = bird_version()
    info = machine_info()
    print(f"machine: {info['nproc']} CPU ({info['cpu']}), {info['mem_gib']} GiB, kernel {info['kernel']}, "
          f"python {info['python_sender']}, load {info['loadavg_start']}")
    print(f"versions: {versions}")
    for name, why in unavailable.items():
        if why:
            print(f"skipping {name}: {why}")

    runs: list[dict] = []
    for n in args.routes:
        routes = prefixes(n)
        for rep in range(args.repeat):
            order = senders if rep % 2 == 0 else list(reversed(senders))  # alternate who goes first
            for s in order:
                if unavailable[s.name]:
                    runs.append({"sender": s.name, "routes": n, "ok": False, "skipped": unavailable[s.name]})
                    continue
                print(f"-- {s.name}, {n:,} routes (run {rep + 1}/{args.repeat}) ...", flush=True)
                rec = one_run(s, n, routes, args)
                rec["repeat"] = rep
                rec["loadavg_after"] = list(os.getloadavg())
                runs.append(rec)
                if rec["ok"]:
                    print(f"   established {fmt(rec['t_established_s'])} s, all {n:,} in BIRD after "
                          f"{rec['t_all_s']:.2f} s, sender CPU {fmt(rec['cpu_s'])} s, "
                          f"peak RSS {rec['rss_peak_mib']:.1f} MiB", flush=True)
                else:
                    print(f"   FAILED: {rec['error']}", flush=True)
                    if rec.get("log_tail"):
                        print("   " + rec["log_tail"].replace("\n", "\n   "))

    profile = None
    if args.profile and "fleetbgp" in args.senders and not unavailable["fleetbgp"]:
        profile = profile_run(max(args.routes), args)

    summary = summarise(runs, args.routes, [s.name for s in senders])
    report = table(runs, summary)
    print()
    print(report)
    result = {
        "bench": "static_routes",
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": {**info, "loadavg_end": list(os.getloadavg())},
        "versions": versions,
        "git": git_info(),
        "method": {
            "config": f"one ExaBGP-syntax neighbor, static {{ route P/24 {ATTRS}; }} x N, distinct /24s "
                      "from 10.0.0.0 (skipping 10.255/16); the same file for every sender",
            "senders": {s.name: s.describe() for s in senders},
            "receiver": f"BIRD {versions['bird']} in its own namespace, ipv4 {{ import all; export none; }}",
            "t_all_s": "sender spawn -> BIRD 'show protocols all PROTO' reads 'Routes: N imported' "
                       f"(persistent control-socket connection, polled every {args.poll_interval}s)",
            "rss_peak_mib": "VmHWM of the sender process from /proc/PID/status, read after a "
                            f"{args.settle}s settle while it is alive; rss_tree_peak_mib adds "
                            "descendants' VmHWM",
            "cpu_s": "sender user+system CPU when BIRD held all routes",
            "fresh_lab_per_run": True,
            "hold_time": args.hold_time,
            "target_issue_2": TARGET,
            "gobgp": "not comparable for static config; hook GobgpApiSender for an API bench",
        },
        "runs": runs,
        "summary": summary,
    }
    if profile:
        result["profile"] = {k: v for k, v in profile.items() if k != "text"}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        md = out.with_suffix(".md")
        md.write_text(markdown(result))
        print(f"\nwrote {out} and {md}")
        if profile:
            pt = out.with_name(out.stem + "-profile.txt")
            pt.write_text(profile["text"])
            print(f"wrote {pt}")
    elif profile:
        print(profile["text"])
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
