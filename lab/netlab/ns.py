"""Network namespaces and veth links, with guaranteed teardown.

A ``Lab`` owns everything it creates: namespaces named ``<prefix>-<id>-<tag>``
(default prefix ``fbt``), veth pairs named ``fbt-<id>-<n><a|b>``, and the
processes started inside them (``Lab.spawn``). ``Lab.close()`` stops the
processes by PID, kills by PID whatever is still inside its namespaces, and
deletes the namespaces (the veths go with them). Labs still open at interpreter
exit (e.g. after KeyboardInterrupt) are closed by an atexit hook; a state file
per lab under ``/run/netlab`` lets ``cleanup_stale()`` remove leftovers of runs
that were killed outright.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NetlabError
from .util import short_id, which_or_fail

STATE_DIR = Path(os.environ.get("NETLAB_STATE_DIR", "/run/netlab"))

_open_labs: list[Lab] = []
_open_lock = threading.Lock()


def run(argv: Sequence[str], check: bool = True, timeout: float = 30, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion, text mode; raise NetlabError with its output if it fails."""
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input,
                            env=env)
    except subprocess.TimeoutExpired as exc:
        raise NetlabError(f"command timed out after {timeout}s: {' '.join(argv)}\n"
                          f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
    if check and cp.returncode != 0:
        raise NetlabError(f"command failed (exit {cp.returncode}): {' '.join(argv)}\n"
                          f"stdout: {cp.stdout.strip()}\nstderr: {cp.stderr.strip()}")
    return cp


def ns_argv(ns: Namespace | str | None, argv: Sequence[str]) -> list[str]:
    """argv prefixed with ``ip netns exec NS`` (ip execs the command: the PID is the command's)."""
    if ns is None:
        return list(argv)
    name = ns.name if isinstance(ns, Namespace) else ns
    return ["ip", "netns", "exec", name, *argv]


def ns_run(ns: Namespace | str | None, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
    return run(ns_argv(ns, argv), **kw)


@dataclass
class Namespace:
    name: str
    lab: Lab = field(repr=False)

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        """Run a command inside this namespace to completion."""
        return ns_run(self, argv, **kw)

    def sh(self, script: str, **kw) -> subprocess.CompletedProcess:
        return ns_run(self, ["sh", "-c", script], **kw)

    def spawn(self, argv: Sequence[str], name: str, **kw):
        """Start a long-running process in this namespace (see Lab.spawn)."""
        return self.lab.spawn(self, argv, name=name, **kw)

    def pids(self) -> list[int]:
        cp = run(["ip", "netns", "pids", self.name], check=False)
        return [int(x) for x in cp.stdout.split() if x.isdigit()]

    def __str__(self) -> str:
        return self.name


@dataclass
class Link:
    """A veth pair between namespaces ``a`` and ``b`` with addresses on both ends.

    ``a4``/``b4``: IPv4 (``/prefix4``); ``a6``/``b6``: global IPv6 (``/prefix6``);
    ``a_ll``/``b_ll``: link-local IPv6 (no scope: use ``a_if``/``b_if``).
    """

    index: int
    a: Namespace
    b: Namespace
    a_if: str
    b_if: str
    a4: str
    b4: str
    a6: str
    b6: str
    a_ll: str
    b_ll: str
    prefix4: int = 30
    prefix6: int = 64

    def peer_of(self, ns: Namespace) -> Namespace:
        return self.b if ns is self.a else self.a


class Lab:
    """Owner of namespaces, links, processes and a work directory for one test (or bench run)."""

    def __init__(self, prefix: str = "fbt", workdir: os.PathLike | str | None = None):
        which_or_fail("ip")
        self.id = short_id(6)
        self.name = f"{prefix}-{self.id}"
        self._prefix = prefix
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.namespaces: list[Namespace] = []
        self.links: list[Link] = []
        self.procs: list = []
        self._finalizers: list = []  # on_close(): run after the namespaces are gone
        self.closed = False
        self.keep_workdir = bool(os.environ.get("NETLAB_KEEP"))
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self._state_file = STATE_DIR / f"{self.name}.json"
        self._write_state()
        with _open_lock:
            _open_labs.append(self)

    # -- bookkeeping -------------------------------------------------------------------------
    def _write_state(self) -> None:
        data = {"pid": os.getpid(), "namespaces": [n.name for n in self.namespaces],
                "workdir": str(self.workdir)}
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self._state_file)

    def path(self, name: str) -> Path:
        """A path inside the lab's work directory (configs, sockets, logs, captures)."""
        return self.workdir / name

    # -- topology ----------------------------------------------------------------------------
    def namespace(self, tag: str) -> Namespace:
        """Create a namespace ``<lab>-<tag>`` with lo up and IPv6 DAD off."""
        name = f"{self.name}-{tag}"
        ns = Namespace(name, self)
        # register before creating, so a failure half-way is still cleaned up
        self.namespaces.append(ns)
        self._write_state()
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        ns.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        return ns

    def link(self, a: Namespace, b: Namespace, v4: bool = True, v6: bool = True) -> Link:
        """A veth pair ``a`` <-> ``b``. Link n gets 10.255.n.1/30 (a) and .2 (b),
        fd00:fb:0:n::1/64 and ::2, and link-local fe80::1 and fe80::2."""
        n = len(self.links) + 1
        if n > 250:
            raise NetlabError("too many links in one lab")
        a_if, b_if = f"{self._prefix}-{self.id}-{n}a", f"{self._prefix}-{self.id}-{n}b"
        if len(a_if) > 15:
            raise NetlabError(f"interface name too long: {a_if}")
        link = Link(n, a, b, a_if, b_if,
                    a4=f"10.255.{n}.1", b4=f"10.255.{n}.2",
                    a6=f"fd00:fb:0:{n:x}::1", b6=f"fd00:fb:0:{n:x}::2",
                    a_ll="fe80::1", b_ll="fe80::2")
        run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth",
             "peer", "name", b_if, "netns", b.name])
        self.links.append(link)
        ends = ((a, a_if, link.a4, link.a6, link.a_ll), (b, b_if, link.b4, link.b6, link.b_ll))
        for ns, ifn, v4a, v6a, ll in ends:
            ns.run(["sysctl", "-qw", f"net.ipv6.conf.{ifn}.accept_dad=0"])
            run(["ip", "-n", ns.name, "link", "set", ifn, "addrgenmode", "none"])
            if v6:
                run(["ip", "-n", ns.name, "-6", "addr", "add", f"{ll}/64", "dev", ifn, "nodad"])
                run(["ip", "-n", ns.name, "-6", "addr", "add", f"{v6a}/{link.prefix6}", "dev", ifn, "nodad"])
            if v4:
                run(["ip", "-n", ns.name, "addr", "add", f"{v4a}/{link.prefix4}", "dev", ifn])
            run(["ip", "-n", ns.name, "link", "set", ifn, "up"])
        return link

    def pair(self, tag_a: str = "r", tag_b: str = "s", **kw):
        """Two fresh namespaces and one link between them: (ns_a, ns_b, link)."""
        a, b = self.namespace(tag_a), self.namespace(tag_b)
        return a, b, self.link(a, b, **kw)

    def on_close(self, fn) -> None:
        """Call ``fn()`` when the lab closes, after its processes and namespaces are gone (files
        a driver had to keep outside the work dir, e.g. FRR's directory owned by ``frr``)."""
        self._finalizers.append(fn)

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, ns: Namespace | None, argv: Sequence[str], name: str, env: dict[str, str] | None = None,
              cwd: os.PathLike | str | None = None, log: os.PathLike | str | None = None):
        """Start ``argv`` inside ``ns`` (None: the current namespace), stdout+stderr to ``log``
        (default ``<workdir>/<name>.log``); return a registered Proc."""
        from .proc import Proc

        if self.closed:
            raise NetlabError("lab is closed")
        log = Path(log) if log else self.path(f"{name}.log")
        p = Proc(ns_argv(ns, argv), name=name, log=log, env=env, cwd=cwd or self.workdir)
        self.procs.append(p)
        p.start()
        return p

    def check_alive(self) -> None:
        """Raise if a process of this lab died on its own (started, not stopped on purpose), with
        its log: a wait for a peer then fails at once and names the real culprit."""
        for p in self.procs:
            if p.expected and not p.alive():
                raise NetlabError(f"{p.name} (pid {p.popen.pid}) exited unexpectedly with "
                                  f"{p.returncode}\n{p.log_tail()}")

    # -- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop(timeout=3)
            except Exception as exc:  # keep tearing down
                errors.append(f"stop {p.name}: {exc}")
        for ns in reversed(self.namespaces):
            try:
                _destroy_namespace(ns.name)
            except Exception as exc:
                errors.append(f"delete {ns.name}: {exc}")
        for fn in self._finalizers:
            try:
                fn()
            except Exception as exc:
                errors.append(f"finalizer {fn!r}: {exc}")
        try:
            self._state_file.unlink()
        except FileNotFoundError:
            pass
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with _open_lock:
            if self in _open_labs:
                _open_labs.remove(self)
        if errors:
            raise NetlabError("lab teardown incomplete: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _destroy_namespace(name: str) -> None:
    """Kill (by PID) whatever still runs in the namespace, then delete it."""
    if not Path("/run/netns", name).exists():
        return
    cp = run(["ip", "netns", "pids", name], check=False)
    for pid in (int(x) for x in cp.stdout.split() if x.isdigit()):
        for sig in (signal.SIGKILL, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    run(["ip", "netns", "del", name], check=False)


def _close_all_at_exit() -> None:
    with _open_lock:
        labs = list(_open_labs)
    for lab in labs:
        try:
            lab.close()
        except Exception:
            pass


atexit.register(_close_all_at_exit)


def install_signal_cleanup() -> None:
    """Make SIGTERM/SIGHUP close open labs (turned into SystemExit so atexit runs).
    Only replaces default handlers; call from the main thread (a test session, a bench)."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, handler)


def cleanup_stale() -> list[str]:
    """Remove namespaces of labs whose creating process is gone; return their names."""
    removed: list[str] = []
    if not STATE_DIR.is_dir():
        return removed
    for f in STATE_DIR.glob("*.json"):
        try:
            data = json.loads(f.read_text())
            pid = int(data["pid"])
        except Exception:
            continue
        try:
            os.kill(pid, 0)
            continue  # still alive: not ours to touch
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        for name in data.get("namespaces", []):
            _destroy_namespace(name)
            removed.append(name)
        f.unlink(missing_ok=True)
    return removed
