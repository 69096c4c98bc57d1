"""Run ExaBGP's functional encoding tests (qa/encoding/*.ci + *.msg, ExaBGP 5.0) against fleetbgp.

ExaBGP's runner (qa/bin/functional, `encoding`) starts, for each test, its peer (qa/sbin/bgp with
the .msg) and `exabgp` with the configuration(s) the .ci names, with the environment

    exabgp_tcp_port=PORT exabgp_tcp_bind='' exabgp_tcp_connections=N exabgp_api_cli=false
    exabgp_debug_rotate=true exabgp_debug_configuration=true exabgp_version=5.0.0-0+test

(the speaker dials PORT on the neighbor and does not listen). Its peer checks the messages one by
one, in order within numbered groups. Here the same is done with `fleetbgp run`, the peer is
capture.Capture, and the comparison is by route and attribute (decode.compare), order-insensitive:
what the wire says, not how the speaker packed it.

    python tests/parity/exabgp_encoding.py [NAME ...]   # the outcome of each test, as a table
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script
    sys.path.insert(0, str(HERE))

from capture import Capture, addpath_families, asn4, capabilities  # noqa: E402
from decode import (  # noqa: E402
    DecodeError,
    EndOfRib,
    compare,
    decode_update,
    family_name,
)
from encoding_rules import ENDLESS  # noqa: E402

VENDOR = HERE / "vendor" / "exabgp"
ENCODING = VENDOR / "qa" / "encoding"
ETC = VENDOR / "etc" / "exabgp"
ROOT = HERE.parent.parent
FLEETBGP = Path(sys.executable).with_name("fleetbgp")
if not FLEETBGP.exists():
    FLEETBGP = ROOT / ".venv" / "bin" / "fleetbgp"

# How long to wait: for the expected number of UPDATEs, then for silence after them.
TIMEOUT = float(os.environ.get("PARITY_TIMEOUT", "12"))
QUIET = float(os.environ.get("PARITY_QUIET", "0.8"))
JOBS = int(os.environ.get("PARITY_JOBS", "8"))

CAPABILITY_NAMES = {
    1: "multiprotocol", 2: "route-refresh", 5: "extended-next-hop", 6: "extended-message",
    64: "graceful-restart", 65: "asn4", 69: "add-path", 70: "enhanced-route-refresh",
    71: "long-lived-graceful-restart", 73: "hostname", 75: "software-version", 128: "route-refresh-cisco",
}


# -- the .ci and .msg files --------------------------------------------------------------------


@dataclass
class Step:
    """One numbered group of a .msg file (A1, A2, B1, ...): what qa/sbin/bgp expects or does."""
    connection: str
    sequence: int
    raw: list[bytes] = field(default_factory=list)  # whole messages, header included
    notification: str | None = None  # the peer sends a NOTIFICATION with this text
    signal: str | None = None  # the peer signals the speaker


@dataclass
class EncodingTest:
    name: str
    confs: list[str]
    options: dict[str, str]
    steps: list[Step]

    def messages(self, kind: int) -> list[bytes]:
        """Expected message bodies of one type (1 OPEN, 2 UPDATE, 3 NOTIFICATION)."""
        return [m[19:] for s in self.steps for m in s.raw if len(m) >= 19 and m[18] == kind]

    @property
    def tcp_connections(self) -> int:
        return int(self.options.get("tcp_connections", "1"))


def _whole(hexed: str) -> bytes:
    data = bytes.fromhex(hexed)
    if not data.startswith(b"\xff" * 16):  # qa/sbin/bgp also accepts a message without marker
        data = b"\xff" * 16 + data
    return data


def load(name: str) -> EncodingTest:
    """Parse NAME.ci and NAME.msg the way qa/bin/functional and qa/sbin/bgp do."""
    confs = (ENCODING / f"{name}.ci").read_text().splitlines()[0].split()
    options: dict[str, str] = {}
    groups: dict[tuple[str, int], Step] = {}
    for line in (ENCODING / f"{name}.msg").read_text().splitlines():
        line = line.strip()
        if not line or "#" in line:  # qa/sbin/bgp drops every line with a '#'
            continue
        if line.startswith("option:"):
            _, key, value = line.split(":", 2)
            options[key] = value
            continue
        if "notification:" not in line:
            line = line.replace(" ", "")
        prefix, encoding, content = line.split(":", 2)
        connection, number = (prefix[0], prefix[1:]) if prefix[0].isalpha() else ("A", prefix)
        step = groups.setdefault((connection.upper(), int(number)),
                                 Step(connection.upper(), int(number)))
        if encoding == "raw":
            step.raw.append(_whole(content.replace(":", "")))
        elif encoding == "notification":
            step.notification = content
        elif encoding == "signal":
            step.signal = content
        else:
            raise ValueError(f"{name}.msg: unknown rule {line!r}")
    steps = [groups[k] for k in sorted(groups)]
    return EncodingTest(name, confs, options, steps)


def all_names() -> list[str]:
    return sorted(p.stem for p in ENCODING.glob("*.ci"))


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    outcome: str  # identical, differs, refused, failed
    detail: str = ""  # refused/failed: the reason
    differences: list[str] = field(default_factory=list)  # sorted
    notes: list[str] = field(default_factory=list)  # not pinned: EOR, timing, logs
    seconds: float = 0.0


def _validate(conf: Path) -> str | None:
    """None if `fleetbgp validate` accepts the file, else its first error line (path removed)."""
    done = subprocess.run([str(FLEETBGP), "validate", str(conf)], capture_output=True, text=True,
                          timeout=60, cwd=conf.parent)
    if done.returncode == 0:
        return None
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        line = line.strip()
        if line:
            return line.replace(str(conf) + ":", "").replace(str(conf), conf.name).strip()
    return f"exit code {done.returncode}"


def agent_env(port: int, connections: int, trace: Path | None = None) -> dict[str, str]:
    """The environment qa/bin/functional gives exabgp, and no inherited speaker settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().startswith(("exabgp.", "exabgp_", "fleetbgp_"))}
    env.update({
        "exabgp_version": "5.0.0-0+test",
        "exabgp_tcp_connections": str(connections),
        "exabgp_api_cli": "false",
        "exabgp_debug_rotate": "true",
        "exabgp_debug_configuration": "true",
        "exabgp_tcp_bind": "",
        "exabgp_tcp_port": str(port),
        "INTERPRETER": sys.executable,
        # API programs say `#!/usr/bin/env python3`: the venv's, as ExaBGP's runner would have
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    if trace is not None:  # qa's exabgp_api.py notes where an API program waits (diagnostics)
        env["EXABGP_API_TRACE"] = str(trace)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the agent we started, by PID; SIGKILL it and its own process group if needed."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=5)
    # API programs the agent left behind: they are in the session we created for it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _decode_all(bodies: Iterable[bytes], addpath: frozenset[str], four: bool, what: str,
                problems: list[str]) -> list:
    routes: list = []
    for body in bodies:
        try:
            routes.extend(decode_update(body, addpath=addpath, asn4=four))
        except DecodeError as exc:
            problems.append(f"{what} UPDATE {body.hex()}: cannot decode: {exc}")
    return routes


def _notification(body: bytes) -> str:
    if len(body) < 2:
        return body.hex()
    data = body[2:]
    if body[0] == 6 and body[1] in (2, 4) and data and data[0] == len(data) - 1:  # RFC 9003
        data = data[1:]
    text = data.decode("utf-8", "replace") if data and data[0] < 128 and data.isascii() else data.hex()
    return f"{body[0]}/{body[1]}" + (f" {text!r}" if data else "")


def _open_lines(expected: list[bytes], got: list[bytes]) -> list[str]:
    """OPEN differences, when the .msg checks the OPEN (option:open:inspect-open-message)."""
    if not expected:
        return []
    if not got:
        return ["OPEN: expected, none received"]
    want, have = expected[0], got[0]
    lines = []
    for label, a, b in (("version", want[0], have[0]),
                        ("my AS", int.from_bytes(want[1:3], "big"), int.from_bytes(have[1:3], "big")),
                        ("hold time", int.from_bytes(want[3:5], "big"), int.from_bytes(have[3:5], "big")),
                        ("router id", want[5:9].hex(), have[5:9].hex())):
        if a != b:
            lines.append(f"OPEN: {label} expected {a}, got {b}")

    def caps(body: bytes) -> Counter[str]:
        return Counter(f"{CAPABILITY_NAMES.get(c, c)} {v.hex() or '(empty)'}"
                       for c, v in capabilities(body))

    a_caps, b_caps = caps(want), caps(have)
    lines += [f"OPEN: capability expected, not offered: {c}" for c in sorted((a_caps - b_caps).elements())]
    lines += [f"OPEN: capability offered, not expected: {c}" for c in sorted((b_caps - a_caps).elements())]
    return lines


def run_one(name: str, *, cwd: Path | None = None) -> Result:
    """Validate, then run the agent against the capturing peer and compare.

    `cwd`: where the agent runs. ExaBGP finds a relative `run ./run/x` next to the configuration
    file whatever its working directory; the default (the configuration's directory) gives the
    same answer either way, so that only test_relative_run_path checks that rule."""
    started = time.monotonic()
    test = load(name)
    confs = [ETC / c for c in test.confs]
    for conf in confs:
        refused = _validate(conf)
        if refused is not None:
            return Result(name, "refused", f"{conf.name}: {refused}",
                          seconds=time.monotonic() - started)
    result = Result(name, "identical")
    try:
        _run_agent(test, confs, result, cwd)
    finally:
        result.seconds = time.monotonic() - started
    return result


def _run_agent(test: EncodingTest, confs: list[Path], result: Result, cwd: Path | None) -> None:
    opts = test.options
    first_notification = next((s.notification for s in test.steps if s.notification), None)
    tmp = Path(tempfile.mkdtemp(prefix=f"parity-{test.name}-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        # Several configurations (api-reload): ExaBGP with debug.rotate runs one process on the
        # first and moves to the next one on each reload (SIGUSR1). fleetbgp re-reads its one
        # file: run it on a copy next to the API programs, and copy the next one over on reload.
        conf = confs[0]
        workdir = cwd or conf.parent
        if len(confs) > 1:
            conf = tmp / "rotating.conf"
            shutil.copyfile(confs[0], conf)
            (tmp / "run").symlink_to(ETC / "run")
            workdir = cwd or tmp
        with Capture(asn=int(opts["asn"]) if "asn" in opts else None,
                     host="::1" if opts.get("bind") == "ipv6" else "127.0.0.1",
                     send_default_route=opts.get("update") == "send-default-route",
                     send_unknown_capability=opts.get("open") == "send-unknown-capability",
                     send_unknown_message=opts.get("open") == "send-unknown-message",
                     notification_after_open=first_notification) as capture:
            log = (tmp / "agent.log").open("wb")
            process = subprocess.Popen(
                [str(FLEETBGP), "run", "--control-socket", "off", "--metrics", "off",
                 "--log-level", "info", "--log-destination", "stderr", str(conf)],
                env=agent_env(capture.port, test.tcp_connections, tmp / "api-trace.log"), cwd=workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()

            # the session first (a test may expect no UPDATE at all), then every step up to a
            # signal, the signal, then the rest
            deadline = time.monotonic() + TIMEOUT
            while not capture.opens and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            seen: list[bytes] = []
            rotation = 1
            for step in test.steps:
                seen += [m[19:] for m in step.raw if m[18] == 2]
                if step.signal:
                    capture.wait_updates(count=len(seen), quiet=0.3, timeout=TIMEOUT,
                                         until=_covers(capture, seen))
                    if rotation < len(confs):
                        shutil.copyfile(confs[rotation], conf)
                        rotation += 1
                    number = getattr(signal, step.signal.upper(), None)
                    if isinstance(number, signal.Signals) and process.poll() is None:
                        process.send_signal(number)
            endless = test.name in ENDLESS
            got = capture.wait_updates(count=len(seen), quiet=0.0 if endless else QUIET, timeout=TIMEOUT,
                                       until=_covers(capture, seen))
            if endless:
                got = got[:len(seen)]
            exited = process.poll()
            # what came before we stop the agent (which then sends its own Cease)
            sessions = list(capture.sessions)
            notifications = list(capture.notifications)
            update_sessions = list(capture.session_of_update)
            _stop(process)
        if exited is not None and not got:
            result.outcome = "failed"
            result.detail = f"agent exited with code {exited}: {_last_line(tmp / 'agent.log')}"
            return
        if not sessions:
            result.outcome = "failed"
            result.detail = "the agent never connected"
            return

        # decode: expected with the first session's negotiation, each captured UPDATE with its own
        def negotiated(index: int) -> tuple[frozenset[str], bool]:
            s = sessions[index]
            return (frozenset(family_name(a, b) for a, b in addpath_families(s.speaker_open, s.our_open)),
                    asn4(s.speaker_open, s.our_open))

        problems: list[str] = []
        addpath, four = negotiated(0)
        expected = _decode_all(test.messages(2), addpath, four, "expected", problems)
        received: list = []
        # a .msg which ends with the peer's NOTIFICATION (api-notification) is over then: qa's
        # peer exits, so what the speaker sends on its next session is not part of the test
        last_session = 0 if test.steps and test.steps[-1].notification else len(sessions)
        for index, body in zip(update_sessions, got, strict=False):
            if index > last_session:
                continue
            ap, f4 = negotiated(index)
            received.extend(_decode_all([body], ap, f4, "received", problems))
        lines = compare(expected, received) + problems

        want_n = Counter(_notification(b) for b in test.messages(3))
        have_n = Counter(_notification(b) for b in notifications)
        lines += [f"NOTIFICATION {n}: expected, not received" for n in sorted((want_n - have_n).elements())]
        lines += [f"NOTIFICATION {n}: received, not expected" for n in sorted((have_n - want_n).elements())]
        lines += _open_lines(test.messages(1), [s.speaker_open for s in sessions if s.speaker_open])

        want_eor = Counter(r.family for r in expected if isinstance(r, EndOfRib))
        have_eor = Counter(r.family for r in received if isinstance(r, EndOfRib))
        if want_eor != have_eor:
            result.notes.append(f"End-of-RIB expected {dict(want_eor)}, got {dict(have_eor)}")
        result.notes.append(f"{len(sessions)} session(s), {len(got)} UPDATE(s) received, "
                            f"{len(test.messages(2))} expected")
        if exited is not None:
            result.notes.append(f"agent exited with code {exited}: {_last_line(tmp / 'agent.log')}")
        result.differences = sorted(lines)
        result.outcome = "differs" if lines else "identical"
    finally:
        if process is not None and process.poll() is None:
            _stop(process)
        if os.environ.get("PARITY_KEEP"):
            result.notes.append(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _covers(capture: Capture, expected: list[bytes]) -> Callable[[list[bytes]], bool]:
    """A `wait_updates(until=...)` predicate: every expected route (kind, family, NLRI; not its
    attributes) arrived, however the speaker packed them into UPDATEs."""
    def keys(bodies: Iterable[bytes], addpath: frozenset[str], four: bool) -> Counter[tuple[str, str, str]]:
        out: Counter[tuple[str, str, str]] = Counter()
        for body in bodies:
            try:
                routes = decode_update(body, addpath=addpath, asn4=four)
            except DecodeError:
                continue
            out.update((type(r).__name__, r.family, getattr(r, "nlri", "")) for r in routes)
        return out

    def until(updates: list[bytes]) -> bool:
        sessions = capture.sessions
        if not sessions or not sessions[0].speaker_open:
            return False
        first = sessions[0]
        addpath = frozenset(family_name(a, b) for a, b in addpath_families(first.speaker_open, first.our_open))
        four = asn4(first.speaker_open, first.our_open)
        return not (keys(expected, addpath, four) - keys(updates, addpath, four))
    return until


def _last_line(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def run_all(names: list[str] | None = None, jobs: int = JOBS) -> dict[str, Result]:
    names = names or all_names()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_safe_run, names))
    return {r.name: r for r in results}


def _safe_run(name: str) -> Result:
    try:
        return run_one(name)
    except Exception as exc:  # a harness bug must not take the other tests down
        return Result(name, "failed", f"harness error: {type(exc).__name__}: {exc}")


def render_expectations(results: dict[str, Result], reasons: dict[str, tuple[str, str]],
                        unstable: dict[str, str]) -> str:
    """encoding_expectations.py for these results; the "differs" reasons already written are kept
    while the outcome stays the same (they are prose), the rest is what the run said."""
    out = [EXPECTATIONS_HEADER, "EXPECTED: dict[str, tuple[str, str]] = {"]
    for name in sorted(results):
        r = results[name]
        old = reasons.get(name)
        if r.outcome == "differs":
            text = old[1] if old and old[0] == "differs" else (r.differences[0] if r.differences else "")
        else:
            text = r.detail
        out.append(f"    {name!r}: ({r.outcome!r}, {text!r}),")
    out += ["}", "", "# the difference lines of every \"differs\" test, sorted (decode.compare and NOTIFICATION/OPEN)",
            "DIFFERENCES: dict[str, tuple[str, ...]] = {"]
    for name in sorted(results):
        r = results[name]
        if r.outcome != "differs":
            continue
        out.append(f"    {name!r}: (")
        out += [f"        {line!r}," for line in r.differences]
        out.append("    ),")
    out += ["}", "", UNSTABLE_HEADER + "UNSTABLE: dict[str, str] = {"]
    out += [f"    {name!r}: {why!r}," for name, why in sorted(unstable.items())]
    out += ["}", ""]
    return "\n".join(out)


UNSTABLE_HEADER = """# Tests whose outcome depends on timing (how the agent's reads and sends interleave with an API
# program's writes); only "a session, and identical or differs" is checked for them. Say why.
"""


EXPECTATIONS_HEADER = '''"""The pinned outcome of each ExaBGP 5.0 encoding test (qa/encoding/NAME.ci) run against fleetbgp.

outcome: identical (every route and attribute as ExaBGP sends them), differs (DIFFERENCES lists
what, line by line), refused (`fleetbgp validate` refuses the configuration: the text is its first
error), failed (no session, or the agent died: the text says why).

test_exabgp_encoding.py fails when a run does not give the pinned outcome (or difference lines).
After a deliberate change, regenerate with
    .venv/bin/python tests/parity/exabgp_encoding.py --write
and review the diff (the "differs" reasons are prose, kept while the outcome stays "differs").
"""

'''


def main(argv: list[str]) -> int:
    """Print the outcome table (and the difference lines with -v); --write: rewrite the pins."""
    verbose = "-v" in argv
    names = [a for a in argv if not a.startswith("-")]
    started = time.monotonic()
    results = run_all(names or None)
    order = {"identical": 0, "differs": 1, "refused": 2, "failed": 3}
    for r in sorted(results.values(), key=lambda r: (order.get(r.outcome, 9), r.name)):
        first = r.differences[0] if r.differences else r.detail
        print(f"{r.name:32} {r.outcome:9} {r.seconds:5.1f}s  {first}")
        if verbose:
            for line in r.differences[1:]:
                print(f"{'':50}{line}")
            for note in r.notes:
                print(f"{'':50}note: {note}")
    print(f"{len(results)} tests in {time.monotonic() - started:.1f}s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.outcome for r in results.values()).items())))
    if "--write" in argv:
        try:
            from encoding_expectations import EXPECTED, UNSTABLE
        except ImportError:
            EXPECTED, UNSTABLE = {}, {}
        merged = dict(results)
        if names:  # only some were run: keep the others' pins as they are
            from encoding_expectations import DIFFERENCES
            for name, (outcome, text) in EXPECTED.items():
                if name not in merged:
                    merged[name] = Result(name, outcome, "" if outcome == "differs" else text,
                                          list(DIFFERENCES.get(name, ())))
        (HERE / "encoding_expectations.py").write_text(render_expectations(merged, EXPECTED, UNSTABLE))
        print(f"wrote {HERE / 'encoding_expectations.py'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
