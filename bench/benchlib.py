"""What the load benches share: the lab and BIRD, the senders, one measured run, the report.

A bench is a `Workload` (how N routes reach the sender: static routes in its config file, or lines
from an API program) handed to `main()`. Everything else is common, so that two benches differ
only in that and their numbers compare: a fresh lab per run (two namespaces, a veth pair, BIRD 2
as the receiver), the same senders (fleetbgp, fleetbgp from another git revision with
`--baseline`, ExaBGP 5.0.15), the same clock (sender spawn to BIRD's per-protocol counter reading
N), the same /proc readings, the same summary and tables. bench/README.md says what each number
means.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

from netlab import Lab, NetlabError  # noqa: E402
from netlab.bird import Bird, BirdPeer, parse_bird_routes  # noqa: E402
from netlab.ns import Link, Namespace, install_signal_cleanup  # noqa: E402
from netlab.proc import Proc  # noqa: E402

MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUTER_AS, SENDER_AS = 65000, 65001
ATTRS = "next-hop self med 100 community [ 65001:100 ]"
EXPECT = {"med": 100, "communities": [(65001, 100)], "as_path": [SENDER_AS]}
TARGET = {"routes": 100_000, "t_all_s": 5.0, "rss_peak_mib": 120.0}  # issue 2; informational only
PROTO = "sender"
SCRATCH = REPO / "bench" / "results" / "tmp"


# --------------------------------------------------------------------------------------------
# the routes and the neighbor


def prefixes(n: int) -> list[str]:
    """N distinct /24s from 10.0.0.0 upwards, skipping 10.255.0.0/16 (the lab's link addresses).
    1,000,000 of them end in 25.x.x.0/24: never 127/8 nor anything the lab routes."""
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


def neighbor_head(peer: str, local: str, hold_time: int) -> str:
    """The opening of the one neighbor block every bench config has (closed by the workload)."""
    return (
        f"neighbor {peer} {{\n"
        f"  router-id {local};\n"
        f"  local-address {local};\n"
        f"  local-as {SENDER_AS};\n"
        f"  peer-as {ROUTER_AS};\n"
        f"  hold-time {hold_time};\n"
        "  family {\n    ipv4 unicast;\n  }\n"
    )


class Workload:
    """How the N routes reach a sender. `prepare()` writes what a run needs into the lab's work
    dir and returns the config file every sender is started with; `facts()` adds what the
    workload knows after the run (the API program's own report)."""

    name = "?"                       # the bench's name: result files, the report title
    default_routes: tuple[int, ...] = ()
    what = "?"                       # one line for the method section of the result

    def prepare(self, lab: Lab, routes: list[str], link: Link, hold_time: int) -> Path:
        raise NotImplementedError

    def program_marker(self) -> str | None:
        """A string in the command line of the helper process a sender runs for this workload
        (its RSS and CPU are reported apart from the sender's), None when there is none."""
        return None

    def facts(self, lab: Lab, t0: float) -> dict:
        return {}

    def senders(self) -> dict[str, type[Sender]]:
        """The senders this workload can feed, by name (--senders); every one by default."""
        return dict(SENDERS)


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


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


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
    """Peak RSS of a sender: its own VmHWM, plus the VmHWM of every descendant seen alive. The
    descendant whose command line holds `marker` is the workload's program (the API feed): it is
    remembered, so that its share can be reported apart."""

    def __init__(self, pid: int, marker: str | None = None, program_pid: int | None = None):
        self.pid = pid
        self.marker = marker
        self.main_hwm = 0
        self.child_hwm: dict[int, int] = {}
        self.program_pid = program_pid  # given: a program the sender does not start itself

    def sample(self, with_children: bool = True) -> None:
        self.main_hwm = max(self.main_hwm, proc_status(self.pid).get("VmHWM", 0))
        if with_children:
            pids = descendants(self.pid)
            if self.program_pid is not None and self.program_pid not in pids:
                pids.append(self.program_pid)
            for c in pids:
                hwm = proc_status(c).get("VmHWM", 0)
                self.child_hwm[c] = max(self.child_hwm.get(c, 0), hwm)
                if self.marker and self.program_pid is None and self.marker in proc_cmdline(c):
                    self.program_pid = c

    @property
    def tree_hwm(self) -> int:
        return self.main_hwm + sum(self.child_hwm.values())

    @property
    def program_hwm(self) -> int | None:
        return None if self.program_pid is None else self.child_hwm.get(self.program_pid)


# --------------------------------------------------------------------------------------------
# senders


def run_text(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60,
             cwd: Path | None = None) -> tuple[int, str]:
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return cp.returncode, (cp.stdout + cp.stderr).strip()


def venv_python() -> str:
    """The agent's interpreter: the project venv if it exists, else /tmp/probe-venv. Every
    fleetbgp sender (baseline included) and the API program run with it."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else "/tmp/probe-venv/bin/python"


def agent_env(src: Path) -> dict[str, str]:
    """`src` first on PYTHONPATH: it wins over the venv's editable install (a .pth entry or a
    finder appended to sys.meta_path both come after PYTHONPATH), so which tree runs is the
    sender's choice, not the venv's."""
    pp = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(src) + (os.pathsep + pp if pp else ""), "PYTHONUNBUFFERED": "1"}


class Sender:
    """One BGP implementation under test. ``argv(conf)`` is what is spawned (inside the sender
    namespace) at t0; ``env()`` its extra environment."""

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

    def start(self, lab: Lab, ns: Namespace, link: Link, conf: Path,
              hold_time: int) -> tuple[Proc, Proc | None]:
        """Spawn the sender at t0. The second process is a program of the workload that the sender
        does not start itself (GoBGP's gRPC feed), None when there is none."""
        return lab.spawn(ns, self.argv(conf), name="sender", env=self.env()), None

    def log_facts(self, text: str) -> dict:
        """Numbers the sender logs about itself (recorded with the run)."""
        return {}


class FleetbgpSender(Sender):
    """`python -m fleetbgp run CONF` from the agent sources at `src` (default: this checkout's
    agent/src); a baseline is the same with another tree and another name."""

    name = "fleetbgp"

    def __init__(self, src: Path | None = None, name: str | None = None, profile_out: Path | None = None):
        self.src = src or REPO / "agent" / "src"
        if name:
            self.name = name
        self.python = venv_python()
        self._env = agent_env(self.src)
        self.profile_out = profile_out  # set: run under cProfile, stats written there on exit

    def argv(self, conf: Path) -> list[str]:
        prof = ["-m", "cProfile", "-o", str(self.profile_out)] if self.profile_out else []
        return [self.python, *prof, "-m", "fleetbgp", "run", str(conf)]

    def describe(self) -> str:
        return f"PYTHONPATH={self.src} {super().describe()}"

    _SENT_RE = re.compile(r"sent (\d+) UPDATE message\(s\) in ([\d.]+) s")

    def log_facts(self, text: str) -> dict:
        """What the agent says about its own work: UPDATEs sent and the time the send loop took."""
        sent = [(int(a), float(b)) for a, b in self._SENT_RE.findall(text)]
        if not sent:
            return {}
        return {"updates_sent": sum(a for a, _ in sent), "send_loop_s": round(sum(b for _, b in sent), 3)}

    def start(self, lab: Lab, ns: Namespace, link: Link, conf: Path,
              hold_time: int) -> tuple[Proc, Proc | None]:
        # A control socket in the lab: the default /run/fleetbgp/control.sock may be another
        # agent's on this host, and the agent refuses to start then (a failed run, not a number).
        env = {**self.env(), "FLEETBGP_CONTROL_SOCKET": str(lab.path("sender.sock"))}
        return lab.spawn(ns, self.argv(conf), name="sender", env=env), None

    def env(self) -> dict[str, str]:
        # API acks off, as for ExaBGP: the bench's program never reads them, and an agent
        # queueing answers nobody reads would be measured doing work the other sender does not do.
        return {**self._env, "exabgp_api_ack": "false"}

    def available(self) -> str | None:
        if not Path(self.python).exists():
            return f"no interpreter at {self.python}"
        if not (self.src / "fleetbgp").is_dir():
            return f"no fleetbgp package under {self.src}"
        rc, out = run_text([self.python, "-c", "import fleetbgp; print(fleetbgp.__file__)"], env=self._env)
        if rc != 0 or not out.startswith(str(self.src)):
            return f"`import fleetbgp` with PYTHONPATH={self.src} gives {out[-300:]!r} (exit {rc})"
        rc, out = run_text([self.python, "-m", "fleetbgp", "--help"], env=self._env)
        if rc != 0:
            return f"`{self.python} -m fleetbgp --help` exits {rc}: {out[-400:]}"
        return None

    def version(self) -> str:
        rc, out = run_text([self.python, "-c", "import fleetbgp; print(fleetbgp.__version__)"], env=self._env)
        if rc != 0:
            return f"? ({out[-200:]})"
        rc, head = run_text(["git", "-C", str(self.src), "rev-parse", "--short", "HEAD"])
        return f"{out} (git {head})" if rc == 0 else out


class ExabgpSender(Sender):
    name = "exabgp"

    def __init__(self):
        self.exabgp = str(Path(venv_python()).parent / "exabgp")

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


SENDERS: dict[str, type[Sender]] = {"fleetbgp": FleetbgpSender, "exabgp": ExabgpSender}


# --------------------------------------------------------------------------------------------
# the baseline: fleetbgp from another git revision, in the same run


@dataclass
class Baseline:
    """The agent sources of another revision: `--baseline REF` checks REF out with `git worktree
    add --detach` under bench/results/tmp/ (removed and pruned afterwards); `--baseline-src PATH`
    uses a tree that is already there (left alone)."""

    label: str
    src: Path
    worktree: Path | None = None
    notes: dict = field(default_factory=dict)

    def sender(self) -> FleetbgpSender:
        return FleetbgpSender(src=self.src / "agent" / "src", name=f"fleetbgp@{self.label}")


def _short_head(tree: Path) -> tuple[str | None, bool]:
    rc, head = run_text(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"])
    rc2, st = run_text(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"])
    return (head if rc == 0 else None), bool(rc2 == 0 and st)


@contextlib.contextmanager
def baseline(ref: str | None, src: Path | None) -> Iterator[Baseline | None]:
    if src is not None:
        head, dirty = _short_head(src)
        yield Baseline(label=(head or src.name) + ("+dirty" if dirty else ""), src=src.resolve(),
                       notes={"src": str(src.resolve()), "head": head, "dirty": dirty})
        return
    if not ref:
        yield None
        return
    rc, sha = run_text(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    if rc != 0:
        raise SystemExit(f"--baseline {ref}: not a commit in {REPO}")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    tree = SCRATCH / f"baseline-{sha[:12]}-{os.getpid()}"
    rc, out = run_text(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha], timeout=300)
    if rc != 0:
        raise SystemExit(f"git worktree add {tree} {ref} failed: {out}")
    try:
        yield Baseline(label=ref, src=tree, worktree=tree, notes={"ref": ref, "commit": sha})
    finally:
        run_text(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], timeout=120)
        shutil.rmtree(tree, ignore_errors=True)
        run_text(["git", "-C", str(REPO), "worktree", "prune"])
        with contextlib.suppress(OSError):  # only when empty: another bench may be using it
            SCRATCH.rmdir()


# --------------------------------------------------------------------------------------------
# one run


def mib(b: int | None) -> float | None:
    return None if b is None else round(b / MIB, 1)


def default_wait_bound(n: int) -> float:
    """6 ms a route, at least 60 s, at most an hour (ExaBGP's API takes ~2.9 ms a route). A
    sender that stops making progress is caught sooner by --stall."""
    return min(3600.0, max(60.0, n * 0.006))


def one_run(sender: Sender, workload: Workload, n: int, routes: list[str], args) -> dict:
    rec: dict = {"sender": sender.name, "routes": n, "ok": False, "error": None}
    timeout = args.timeout if args.timeout else default_wait_bound(n)
    rec["wait_bound_s"] = timeout
    with Lab(prefix="fbb") as lab:
        router, server, link = lab.pair("r", "s", v6=False)
        conf = workload.prepare(lab, routes, link, args.hold_time)
        rec["config_bytes"] = conf.stat().st_size

        bird = Bird(lab, router, router_id=link.a4)
        bird.add_peer(BirdPeer(PROTO, neighbor=link.b4, peer_as=SENDER_AS, local_as=ROUTER_AS,
                               local_address=link.a4, hold=args.hold_time))
        bird.start()
        ctl = BirdCtl(bird.sock)
        proc = None
        rss = None
        try:
            samples = []   # (t, imported) about every 0.5 s, for the ramp
            t_est = t_first = t_all = None
            cpu_at_all = program_cpu_at_all = None
            state, imported = "?", 0
            last_sample = -1.0
            last_progress, last_count = 0.0, 0
            t0 = time.monotonic()
            proc, helper = sender.start(lab, server, link, conf, args.hold_time)
            rss = RssTracker(proc.pid, workload.program_marker(), helper.pid if helper else None)
            rec["pid"] = proc.pid
            while True:
                state, imported = proto_status(ctl, PROTO)
                now = time.monotonic() - t0
                if t_est is None and state == "Established":
                    t_est = now
                if t_first is None and imported > 0:
                    t_first = now
                if imported != last_count:
                    last_progress, last_count = now, imported
                if imported >= n:
                    t_all = now
                    cpu_at_all = proc_cpu(proc.pid)
                    rss.sample()
                    if rss.program_pid is not None:
                        program_cpu_at_all = proc_cpu(rss.program_pid)
                    samples.append((round(now, 3), imported))
                    break
                if now - last_sample >= 0.5:
                    rss.sample()
                    samples.append((round(now, 3), imported))
                    last_sample = now
                if not proc.alive():
                    raise NetlabError(f"{sender.name} exited with {proc.returncode} after {now:.1f}s "
                                      f"(BIRD: {state}, {imported} imported)")
                if helper is not None and not helper.alive():
                    raise NetlabError(f"{helper.name} of {sender.name} exited with {helper.returncode} "
                                      f"after {now:.1f}s (BIRD: {state}, {imported} imported):\n"
                                      f"{helper.log_tail(20)}")
                if now > timeout:
                    raise NetlabError(f"bounded wait ran out after {timeout:.0f}s "
                                      f"(BIRD: {state}, {imported}/{n} imported)")
                if imported and now - last_progress > args.stall:
                    raise NetlabError(f"no progress for {args.stall:.0f}s (BIRD: {state}, "
                                      f"{imported}/{n} imported)")
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
            if workload.program_marker():
                rec["program_pid"] = rss.program_pid
                rec["program_rss_peak_mib"] = mib(rss.program_hwm)
                rec["program_cpu_s"] = program_cpu_at_all
                if cpu_at_all is not None and program_cpu_at_all is not None:
                    # where the text is parsed differs (GoBGP: in the program), so compare sums too
                    rec["cpu_total_s"] = round(cpu_at_all + program_cpu_at_all, 2)
                rec.update(workload.facts(lab, t0))
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
# machine, versions


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
        "python_sender": run_text([venv_python(), "-c",
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


# --------------------------------------------------------------------------------------------
# summary and tables

SUMMARY_KEYS = ("t_all_s", "t_established_s", "rss_peak_mib", "cpu_s", "rss_tree_peak_mib",
                "program_rss_peak_mib", "program_cpu_s", "cpu_total_s", "t_feed_done_s")
RATIO_KEYS = ("t_all_s", "rss_peak_mib", "cpu_s", "rss_tree_peak_mib", "cpu_total_s")


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def summarise(runs: list[dict], ns: list[int], names: list[str]) -> list[dict]:
    """Medians per (N, sender), and the ratios of fleetbgp over every other sender that ran
    (`fleetbgp/exabgp`, `fleetbgp/fleetbgp@REF`): below 1 means fleetbgp is faster or smaller."""
    out = []
    for n in ns:
        row: dict = {"routes": n}
        for name in names:
            ok = [r for r in runs if r["routes"] == n and r["sender"] == name and r["ok"]]
            row[name] = {"runs_ok": len(ok)}
            for k in SUMMARY_KEYS:
                if any(k in r for r in ok):
                    row[name][k] = median(r.get(k) for r in ok)
        ratios = {}
        if "fleetbgp" in row:
            f = row["fleetbgp"]
            for other in names:
                if other == "fleetbgp":
                    continue
                o = row[other]
                ratios[f"fleetbgp/{other}"] = {
                    k: (round(f[k] / o[k], 3) if f.get(k) and o.get(k) else None) for k in RATIO_KEYS}
        row["ratios"] = ratios
        out.append(row)
    return out


def fmt(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def _ratios(row: dict) -> dict:
    if "ratios" in row:
        return row["ratios"]
    old = row.get("ratio_fleetbgp_over_exabgp")  # result files written before the ratios dict
    return {"fleetbgp/exabgp": old} if old else {}


def table(runs: list[dict], summary: list[dict], with_program: bool) -> str:
    prog_head = (" program CPU (s) | program peak RSS (MiB) | program done writing (s) |"
                 if with_program else "")
    prog_rule = "---:|---:|---:|" if with_program else ""
    lines = ["Medians per (routes, sender); issue 2's target for fleetbgp at 100,000: "
             f"under {TARGET['t_all_s']:g} s and under {TARGET['rss_peak_mib']:g} MiB (informational).", "",
             "| routes | sender | runs ok | established (s) | all routes in BIRD (s) | sender CPU (s) "
             "| peak RSS (MiB) |" + prog_head,
             "|---:|---|---:|---:|---:|---:|---:|" + prog_rule]
    for row in summary:
        for name, m in row.items():
            if isinstance(m, dict) and "runs_ok" in m:
                prog = (f" {fmt(m.get('program_cpu_s'))} | {fmt(m.get('program_rss_peak_mib'), '.1f')} | "
                        f"{fmt(m.get('t_feed_done_s'))} |") if with_program else ""
                lines.append(f"| {row['routes']:,} | {name} | {m['runs_ok']} | "
                             f"{fmt(m.get('t_established_s'))} | "
                             f"{fmt(m.get('t_all_s'))} | {fmt(m.get('cpu_s'))} | "
                             f"{fmt(m.get('rss_peak_mib'), '.1f')} |" + prog)
    pairs = sorted({p for row in summary for p in _ratios(row)})
    if pairs:
        lines += ["", "Ratios of the medians (below 1: fleetbgp is faster / smaller):", "",
                  "| routes | ratio | time to all routes | peak RSS | CPU |" +
                  (" RSS with program | CPU with program |" if with_program else ""),
                  "|---:|---|---:|---:|---:|" + ("---:|---:|" if with_program else "")]
        for row in summary:
            for p in pairs:
                r = _ratios(row).get(p) or {}
                prog = (f" {fmt(r.get('rss_tree_peak_mib'), '.3f')} | {fmt(r.get('cpu_total_s'), '.3f')} |"
                        if with_program else "")
                lines.append(f"| {row['routes']:,} | {p} | {fmt(r.get('t_all_s'), '.3f')} | "
                             f"{fmt(r.get('rss_peak_mib'), '.3f')} | {fmt(r.get('cpu_s'), '.3f')} |" + prog)
    lines += ["", "Every run, in the order run (a fresh lab each):", "",
              "| sender | routes | established (s) | all routes in BIRD (s) | sender CPU (s) "
              "| peak RSS (MiB) |" + (" program peak RSS (MiB) |" if with_program else "") +
              " load (1 min) after | note |",
              "|---|---:|---:|---:|---:|---:|" + ("---:|" if with_program else "") + "---:|---|"]
    for r in runs:
        note = "ok" if r["ok"] else (r.get("skipped") or r.get("error") or "failed").splitlines()[0][:100]
        load = (r.get("loadavg_after") or [None])[0]
        prog = f" {fmt(r.get('program_rss_peak_mib'), '.1f')} |" if with_program else ""
        lines.append(f"| {r['sender']} | {r['routes']:,} | {fmt(r.get('t_established_s'))} | "
                     f"{fmt(r.get('t_all_s'))} | {fmt(r.get('cpu_s'))} | "
                     f"{fmt(r.get('rss_peak_mib'), '.1f')} |{prog} {fmt(load)} | {note} |")
    return "\n".join(lines)


def markdown_header(result: dict, name: str) -> list[str]:
    """The title, machine and versions lines every bench's .md starts with."""
    m, v, g = result["machine"], result["versions"], result["git"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg_start"]), ", ".join(f"{x:.2f}" for x in m["loadavg_end"])
    return [
        f"# {name} bench, {result['started']}", "",
        f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_gib']} GiB, kernel {m['kernel']}, "
        f"python {m['python_sender']}; load average at start {load[0]}, at end {load[1]}.  ",
        "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) +
        f"; git {g['head']} with {g['dirty_files']} uncommitted files.  ",
    ]


def markdown(result: dict) -> str:
    """The .md written next to the JSON (also: `BENCH.py --markdown FILE.json`)."""
    with_program = any("program_rss_peak_mib" in r for r in result["runs"])
    text = [
        *markdown_header(result, result.get("bench", "static_routes")),
        f"Command: `{' '.join(result['command'])}`", "",
        table(result["runs"], result["summary"], with_program), "",
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


# --------------------------------------------------------------------------------------------
# the driver


def _max_routes(items: Sequence[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.isdigit():
            raise SystemExit(f"--max-routes takes SENDER=N (0: no cap), not {item!r}")
        out[name] = int(n)
    return out


def parser(workload: Workload, doc: str, max_routes: Sequence[str] = ()) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, nargs="+", default=list(workload.default_routes), metavar="N")
    ap.add_argument("--senders", nargs="+", default=None, choices=list(workload.senders()),
                    help="default: all of them; one that cannot run here is then skipped, while a "
                         "sender named here that cannot run fails the bench")
    ap.add_argument("--baseline", metavar="REF",
                    help="also run fleetbgp from git revision REF (a temporary `git worktree add "
                         "--detach` under bench/results/tmp/, removed afterwards) as sender fleetbgp@REF")
    ap.add_argument("--baseline-src", type=Path, metavar="PATH",
                    help="as --baseline, with the checkout at PATH (PATH/agent/src) instead of a new "
                         "worktree")
    ap.add_argument("--max-routes", nargs="+", default=list(max_routes), metavar="SENDER=N",
                    help="skip SENDER for N above this (0: no cap); default: "
                         + (" ".join(max_routes) or "none"))
    ap.add_argument("--repeat", type=int, default=1, help="runs per (N, sender); medians in the summary")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"JSON result file (default bench/results/{workload.name}-DATE.json); a .md with "
                         "the tables is written next to it")
    ap.add_argument("--no-out", action="store_true", help="print only, write no files")
    ap.add_argument("--poll-interval", type=float, default=0.025, help="seconds between BIRD polls")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds after the last route before the RSS read")
    ap.add_argument("--timeout", type=float, default=None,
                    help="bound per run, seconds (default min(3600, max(60, 0.006*N)))")
    ap.add_argument("--stall", type=float, default=120.0,
                    help="fail a run when BIRD's count has not moved for this long once routes arrive")
    ap.add_argument("--hold-time", type=int, default=90, help="hold time on both sides")
    ap.add_argument("--markdown", type=Path, metavar="FILE.json",
                    help="only (re)write the .md of a recorded result file, run nothing")
    return ap


def main(workload: Workload, args: argparse.Namespace,
         after_runs: Callable[[argparse.Namespace, list[Sender]], dict | None] | None = None) -> int:
    """Run every (N, sender) of the bench once per --repeat, print the tables, write the result
    files. `after_runs` may add one extra section (the static bench's --profile): a dict whose
    "text" goes to a -profile.txt and the rest into the JSON's "profile"."""
    if args.markdown:
        md = args.markdown.with_suffix(".md")
        md.write_text(markdown(json.loads(args.markdown.read_text())))
        print(f"wrote {md}")
        return 0
    if args.baseline and args.baseline_src:
        print("--baseline and --baseline-src exclude each other", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(f"{workload.name}.py needs root (network namespaces)", file=sys.stderr)
        return 2
    install_signal_cleanup()
    caps = _max_routes(args.max_routes)
    started = dt.datetime.now().astimezone()
    out = None
    if not args.no_out:
        out = args.out or REPO / "bench" / "results" / f"{workload.name}-{started:%Y%m%d-%H%M%S}.json"

    with baseline(args.baseline, args.baseline_src) as base:
        asked = args.senders is not None
        senders = [workload.senders()[s]() for s in (args.senders or workload.senders())]
        if base is not None:  # next to fleetbgp, so that before and after sit side by side
            at = next((i + 1 for i, s in enumerate(senders) if s.name == "fleetbgp"), len(senders))
            senders.insert(at, base.sender())
        unavailable = {s.name: s.available() for s in senders}
        versions = {s.name: (s.version() if unavailable[s.name] is None else None) for s in senders}
        versions["bird"] = bird_version()
        info = machine_info()
        print(f"machine: {info['nproc']} CPU ({info['cpu']}), {info['mem_gib']} GiB, "
              f"kernel {info['kernel']}, "
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
                    if unavailable[s.name]:  # fails the bench when it was asked for by name
                        runs.append({"sender": s.name, "routes": n, "ok": False if asked else None,
                                     "skipped": unavailable[s.name]})
                        continue
                    cap = caps.get(s.name, 0)
                    if cap and n > cap:  # left out on purpose: not a failure
                        runs.append({"sender": s.name, "routes": n, "ok": None,
                                     "skipped": f"{n:,} routes is above --max-routes {s.name}={cap}"})
                        continue
                    print(f"-- {s.name}, {n:,} routes (run {rep + 1}/{args.repeat}) ...", flush=True)
                    rec = one_run(s, workload, n, routes, args)
                    rec["repeat"] = rep
                    rec["loadavg_after"] = list(os.getloadavg())
                    runs.append(rec)
                    if rec["ok"]:
                        prog = (f", program peak RSS {fmt(rec.get('program_rss_peak_mib'), '.1f')} MiB, "
                                f"done writing after {fmt(rec.get('t_feed_done_s'))} s"
                                if "program_rss_peak_mib" in rec else "")
                        print(f"   established {fmt(rec['t_established_s'])} s, all {n:,} in BIRD after "
                              f"{rec['t_all_s']:.2f} s, sender CPU {fmt(rec['cpu_s'])} s, "
                              f"peak RSS {rec['rss_peak_mib']:.1f} MiB{prog}", flush=True)
                    else:
                        print(f"   FAILED: {rec['error']}", flush=True)
                        if rec.get("log_tail"):
                            print("   " + rec["log_tail"].replace("\n", "\n   "))

        profile = after_runs(args, [s for s in senders if not unavailable[s.name]]) if after_runs else None

    summary = summarise(runs, args.routes, [s.name for s in senders])
    report = table(runs, summary, with_program=workload.program_marker() is not None)
    print()
    print(report)
    result = {
        "bench": workload.name,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": {**info, "loadavg_end": list(os.getloadavg())},
        "versions": versions,
        "git": git_info(),
        "baseline": None if base is None else {"sender": base.sender().name, **base.notes},
        "method": {
            "workload": workload.what,
            "senders": {s.name: s.describe() for s in senders},
            "receiver": f"BIRD {versions['bird']} in its own namespace, ipv4 {{ import all; export none; }}",
            "t_all_s": "sender spawn -> BIRD 'show protocols all PROTO' reads 'Routes: N imported' "
                       f"(persistent control-socket connection, polled every {args.poll_interval}s)",
            "rss_peak_mib": "VmHWM of the sender process from /proc/PID/status, read after a "
                            f"{args.settle}s settle while it is alive; rss_tree_peak_mib adds "
                            "descendants' VmHWM; program_rss_peak_mib is the API program's alone",
            "cpu_s": "sender user+system CPU when BIRD held all routes (program_cpu_s: the API program's)",
            "fresh_lab_per_run": True,
            "hold_time": args.hold_time,
            "max_routes": caps,
            "target_issue_2": TARGET,
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
    return 0 if all(r["ok"] is not False for r in runs) else 1


# --------------------------------------------------------------------------------------------
# what the benches with a driver of their own (bfd_sessions.py, capacity.py) share


def add_output_args(ap: argparse.ArgumentParser, name: str) -> None:
    """--out / --no-out / --markdown, and the --baseline that `make bench BASELINE=REF` passes to
    every bench (accepted and ignored by a bench that measures the current tree only)."""
    ap.add_argument("--out", type=Path, default=None,
                    help=f"JSON result file (default bench/results/{name}-DATE.json); a .md next to it")
    ap.add_argument("--no-out", action="store_true", help="print only, write no files")
    ap.add_argument("--markdown", type=Path, metavar="FILE.json",
                    help="only (re)write the .md of a recorded result file, run nothing")
    ap.add_argument("--baseline", metavar="REF", help=argparse.SUPPRESS)
    ap.add_argument("--baseline-src", type=Path, metavar="PATH", help=argparse.SUPPRESS)


def rewrite_markdown(result_json: Path, render: Callable[[dict], str]) -> int:
    """`--markdown FILE.json`: the .md next to a recorded result, from its JSON."""
    md = result_json.with_suffix(".md")
    md.write_text(render(json.loads(result_json.read_text())))
    print(f"wrote {md}")
    return 0


def write_result(result: dict, text: str, out: Path | None) -> None:
    """Print the table; with `out`, write the JSON there and the table next to it as .md."""
    print()
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
        print(f"wrote {out} and {out.with_suffix('.md')}")
