"""Fixtures for the interop tests: the agent against real BGP speakers in network namespaces.

Topology of every test (``topo``): two fresh namespaces joined by one veth pair

    router  (ns "r", side a)  10.255.1.1/30  fd00:fb:0:1::1/64  fe80::1   <- BIRD / GoBGP / ExaBGP
    server  (ns "s", side b)  10.255.1.2/30  fd00:fb:0:1::2/64  fe80::2   <- the speaker under test

The speaker under test is ``fleetbgp run CONF`` (``FleetbgpAgent``), launched as a real process.
``INTEROP_SPEAKER=exabgp`` runs the same tests with ExaBGP 5.0.15 in its place (same config language):
that is how the harness itself is proven against BIRD and GoBGP independently of the agent.

Fixtures:
  lab            a netlab.Lab for this test; everything in it is torn down afterwards; on failure
                 the tail of every process log is attached to the report ("netlab logs" section)
  topo           Topo(r, s, link, lab) as drawn above
  speaker_kind   "fleetbgp" (default) or "exabgp"
  make_speaker   make_speaker(ns, neighbors) -> FleetbgpAgent | ExaBgp (not started)
  bird           Bird in topo.r (router id 10.255.1.1), not started: add peers, then .start()
  gobgp          GoBgp in topo.r (AS ROUTER_AS, listening on the router's addresses), not started
  capture        capture() -> netlab.Capture on the router's veth, started
  clean_log_check  assert_clean_log(speaker): the check below, for module-scoped setups

After each test, every speaker made by ``make_speaker`` must have a log free of Python tracebacks
and "--- Logging error ---" blocks: a crash or a broken log call fails the test (at teardown)
even when the peer saw nothing wrong.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

import pytest
from interop_env import ROUTER_AS

from netlab import (
    Bird,
    Capture,
    ExaBgp,
    FleetbgpAgent,
    GoBgp,
    Lab,
    Link,
    Namespace,
    Neighbor,
    cleanup_stale,
    install_signal_cleanup,
)
from netlab.errors import NetlabError
from netlab.util import venv_tool


@dataclass
class Topo:
    lab: Lab
    r: Namespace       # router side (link.a)
    s: Namespace       # speaker side (link.b)
    link: Link


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    lab = getattr(item, "_netlab_lab", None)
    if lab is not None and report.failed and not lab.closed:
        parts = []
        for p in lab.procs:
            parts.append(f"{p!r}\n{p.log_tail(50)}")
        report.sections.append(("netlab logs", "\n\n".join(parts) or "(no processes)"))
        report.sections.append(("netlab work dir", str(lab.workdir)))
    return report


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path):
    lab = Lab(workdir=tmp_path / "lab")
    request.node._netlab_lab = lab
    yield lab
    lab.close()


@pytest.fixture
def topo(lab: Lab) -> Topo:
    r, s, link = lab.pair("r", "s")
    return Topo(lab, r, s, link)


@pytest.fixture(scope="session")
def speaker_kind() -> str:
    kind = os.environ.get("INTEROP_SPEAKER", "fleetbgp")
    if kind not in ("fleetbgp", "exabgp"):
        raise pytest.UsageError(f"INTEROP_SPEAKER must be fleetbgp or exabgp, not {kind!r}")
    return kind


@pytest.fixture
def make_speaker(lab: Lab, speaker_kind: str):
    """make_speaker(ns, neighbors, name=...) -> the speaker under test, configured, not started.

    Both kinds have: start(), stop(), kill(), reload(neighbors), established(peer),
    rib_in_counts(peer), log_tail(), proc, and ``prepends_as_path`` (eBGP expectation)."""

    made = []

    def make(ns: Namespace, neighbors: list[Neighbor], name: str | None = None):
        if speaker_kind == "fleetbgp":
            speaker = FleetbgpAgent(lab, ns, neighbors, name=name or "fleetbgp")
        else:
            listen = " ".join(sorted({n.local_address for n in neighbors if "%" not in n.local_address}))
            speaker = ExaBgp(lab, ns, neighbors, receiver=True, name=name or "exabgp-speaker",
                             listen=listen or None)
        made.append(speaker)
        return speaker

    yield make
    # Whatever a test checked, the speaker must not have crashed or hit an internal error on the way.
    for speaker in made:
        assert_clean_log(speaker)


def assert_clean_log(speaker) -> None:
    """Fail the test if the speaker's log has a Python traceback, a "--- Logging error ---" block or
    a message whose arguments did not fit its format string (also used by module-scoped setups)."""
    text = speaker.log_text()
    found = sorted((m for m in _INTERNAL_ERRORS if m in text), key=text.index)
    if found:
        pytest.fail(f"{speaker.name} logged an internal error ({found[0]!r}); first one:\n"
                    f"{_first_block(text, found[0])}\nfull log: {speaker.proc.log}", pytrace=False)
    unformatted = _UNFORMATTED.findall(text)
    if unformatted:
        pytest.fail(f"{speaker.name} logged {len(unformatted)} message(s) whose arguments did not fit the "
                    f"format string (shown raw by its log filter), e.g.:\n{unformatted[0]}\n"
                    f"full log: {speaker.proc.log}", pytrace=False)


@pytest.fixture(scope="session")
def clean_log_check():
    """assert_clean_log, for fixtures that make their own speakers (module-scoped setups)."""
    return assert_clean_log


# Markers of a Python-level failure inside the speaker: an uncaught exception, or a log call whose
# arguments do not match its format string (the logging module prints and carries on).
_INTERNAL_ERRORS = ("Traceback (most recent call last)", "--- Logging error ---")
# fleetbgp's log filter turns a record it cannot format into "'<msg>' % (<args>)" instead of raising
_UNFORMATTED = re.compile(r"^\S+ \S+ [A-Z]+ [\w.]+: (?:'[^\n]*'|\"[^\n]*\") % [(\[{].*$", re.M)


def _first_block(text: str, marker: str) -> str:
    """The lines of the first error block (up to the next timestamped log line), shortened."""
    lines = text[text.index(marker):].splitlines()
    block = [lines[0]]
    for line in lines[1:]:
        if re.match(r"^(\d{4}-\d\d-\d\d[ T]|=== |--- Logging error ---)", line):
            break
        block.append(line)
    if len(block) > 40:  # keep the unindented lines (exception, Message, Arguments) and the last frames
        keep = set(range(len(block) - 8, len(block))) | {i for i, ln in enumerate(block) if not ln.startswith(" ")}
        block = [ln if i in keep else "  ..." for i, ln in enumerate(block)]
        block = [ln for i, ln in enumerate(block) if ln != "  ..." or block[i - 1] != "  ..."]
    return "\n".join(block)


@pytest.fixture
def bird(topo: Topo) -> Bird:
    return Bird(topo.lab, topo.r, router_id=topo.link.a4)


@pytest.fixture
def gobgp(topo: Topo) -> GoBgp:
    return GoBgp(topo.lab, topo.r, asn=ROUTER_AS, router_id=topo.link.a4,
                 listen=[topo.link.a4, topo.link.a6])


@pytest.fixture
def capture(topo: Topo):
    def start(name: str = "capture") -> Capture:
        return Capture(topo.lab, topo.r, topo.link.a_if, name=name).start()
    return start


@pytest.fixture(scope="session", autouse=True)
def _interop_session() -> None:
    """Once per session (only reached as root: the tests skip before otherwise): remove namespaces
    of runs that were killed outright, tear down on SIGTERM/SIGHUP like on KeyboardInterrupt, and
    fail loudly -- never skip -- when a tool is missing (`make test` installs them)."""
    cleanup_stale()
    install_signal_cleanup()
    missing = [t for t in ("bird", "birdc", "gobgpd", "gobgp", "tshark", "nstat", "ss", "ip", "nft", "vtysh")
               if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    if not os.path.exists("/usr/lib/frr/bfdd"):
        missing.append("bfdd (apt: frr)")
    try:
        venv_tool("exabgp")
    except NetlabError:
        missing.append("exabgp (venv: exabgp==5.0.15)")
    if missing:
        pytest.fail(f"interop tools missing: {', '.join(missing)} (make setup installs them)", pytrace=False)
