"""ExaBGP 5.0's own encoding tests (qa/encoding, vendored in vendor/exabgp) against fleetbgp.

Each case runs `fleetbgp validate`, then `fleetbgp run` on the test's configuration against a
capturing peer (capture.py), and compares what arrived with the .msg file route by route and
attribute by attribute (decode.py). The outcome must be the one pinned in encoding_expectations.py.

The runs are slow-ish (an agent, a BGP session and its API programs each): they all happen once,
in parallel, in a session fixture (only the selected ones under `-k`), and each case reads its
result. exabgp_encoding.py explains the runner and regenerates the pins (--write).
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from encoding_expectations import DIFFERENCES, EXPECTED, UNSTABLE
from encoding_rules import FORBIDDEN
from exabgp_encoding import ENCODING, ETC, FLEETBGP, Result, all_names, run_all, run_one

NAMES = all_names()


@pytest.fixture(scope="session")
def encoding_results(request: pytest.FixtureRequest) -> dict[str, Result]:
    selected = sorted({item.callspec.params["name"] for item in request.session.items
                       if item.originalname == "test_exabgp_encoding" and hasattr(item, "callspec")})
    return run_all(selected or NAMES)


def test_every_encoding_test_is_pinned() -> None:
    assert NAMES, f"no .ci file in {ENCODING}"
    assert sorted(EXPECTED) == NAMES, (
        "encoding_expectations.EXPECTED must name every qa/encoding test: "
        f"missing {sorted(set(NAMES) - set(EXPECTED))}, unknown {sorted(set(EXPECTED) - set(NAMES))}")
    for name, (outcome, _) in EXPECTED.items():
        assert outcome in ("identical", "differs", "refused", "failed"), name
        assert (outcome == "differs") == (name in DIFFERENCES), f"{name}: DIFFERENCES vs outcome"


def test_fleetbgp_is_installed() -> None:
    assert FLEETBGP.exists(), f"{FLEETBGP}: the agent's CLI (make setup-venv)"


# Our software-version capability carries the release ("fleetbgp/0.2.0", hex with its length byte):
# a release must not change a pinned difference.
_OUR_SOFTWARE_VERSION = re.compile(r"software-version [0-9a-f]{2}" + b"fleetbgp/".hex() + "[0-9a-f]*")


def _any_release(line: str) -> str:
    return _OUR_SOFTWARE_VERSION.sub("software-version (fleetbgp/RELEASE)", line)


@pytest.mark.parametrize("name", NAMES)
def test_exabgp_encoding(name: str, encoding_results: dict[str, Result]) -> None:
    result = encoding_results[name]
    outcome, text = EXPECTED.get(name, ("(not pinned)", ""))
    report = [f"{name}: pinned {outcome!r}, got {result.outcome!r} ({result.seconds:.1f} s)"]
    if result.detail:
        report.append(f"  detail: {result.detail}")
    report += [f"  difference: {line}" for line in result.differences]
    report += [f"  note: {note}" for note in result.notes]
    message = "\n".join(report)

    if name in FORBIDDEN:
        assert not any(FORBIDDEN[name] in line for line in result.differences), message
    if name in UNSTABLE:  # timing decides between identical and differs: only a session is pinned
        assert result.outcome in ("identical", "differs"), f"{message}\n  unstable: {UNSTABLE[name]}"
        return
    assert result.outcome == outcome, message
    if outcome in ("refused", "failed"):
        assert result.detail == text, f"{message}\n  pinned text: {text}"
    if outcome == "differs":
        pinned = [_any_release(line) for line in DIFFERENCES[name]]
        now = [_any_release(line) for line in result.differences]
        if now != pinned:
            diff = "\n".join(difflib.unified_diff(pinned, now, "pinned", "now", lineterm="", n=0))
            pytest.fail(f"{message}\n  the differences changed:\n{diff}")


# ExaBGP looks for a relative `run ./run/x` in /etc/exabgp, then next to the configuration file,
# then on PATH, whatever its working directory (configuration/process/parser.py `run`); fleetbgp
# next to the configuration file. The cases above run the agent in the configuration's directory,
# where every reading agrees; this one runs it elsewhere.
def test_relative_run_path_like_exabgp() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_one("api-announce", cwd=Path(tmp))
    assert result.outcome == EXPECTED["api-announce"][0], result


def test_exabgp_tcp_bind_empty_means_no_listener() -> None:
    """qa/bin/functional gives exabgp `exabgp_tcp_bind=''`: do not listen. Checked here because
    the cases would pass anyway if the agent listened on a port nobody uses."""
    conf = ETC / "conf-new-v4.conf"
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith(("exabgp", "fleetbgp_"))}
    env.update({"exabgp_tcp_bind": "", "exabgp_tcp_port": "1"})  # nothing to dial there
    process = subprocess.Popen(
        [str(FLEETBGP), "run", "--control-socket", "off", "--metrics", "off", str(conf)],
        env=env, cwd=conf.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            process.wait(timeout=1.5)
        except subprocess.TimeoutExpired:
            pass
        listening = _listening_ports(process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out = process.communicate(timeout=5)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            process.kill()
            out = process.communicate()[0].decode(errors="replace")
    assert listening == [], f"the agent listens on {listening}\n{out}"


def _listening_ports(pid: int) -> list[str]:
    """The TCP sockets in LISTEN state the process owns (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(f"{table.rsplit('/', 1)[1]} {fields[1]}")
    return found
