"""Differential test: the same config (and the same API lines) through ExaBGP 5.0.15 and fleetbgp.

For each case of differential_cases.py both speakers are started with the same config text and the
same environment (`exabgp.tcp.port=PORT exabgp.tcp.bind=`: dial PORT, do not listen), each against
its own capturing peer (capture.Capture). The UPDATEs are decoded (decode.decode_update, which does
not use the agent's codec) and compared route by route and attribute by attribute; End-of-RIB
markers by family and count; the OPENs field by field and capability by capability.

Every difference must be listed: in INTENDED (fleetbgp differs on purpose, with the reason) or in
KNOWN_BUGS (ours to fix). A difference listed nowhere fails test_differential; an INTENDED entry
that no longer happens fails too (stale). Each KNOWN_BUGS entry is a strict xfail
(test_known_bug): it passes, so fails, as soon as the bug is fixed: then delete the entry.

    pytest tests/parity -q -k differential
    python tests/parity/test_exabgp_differential.py [CASE ...]   # every difference, unfiltered

All cases run in parallel (one ExaBGP and one fleetbgp each, ~2 s per start), once per session.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script
    sys.path.insert(0, str(HERE))

from capture import Capture, asn4, capabilities  # noqa: E402
from decode import Announce, DecodeError, EndOfRib, Withdraw, decode_update  # noqa: E402
from differential_cases import CASES, SENTINEL, Case, asn  # noqa: E402

VENV_BIN = Path(sys.executable).parent
EXABGP = shutil.which("exabgp", path=str(VENV_BIN)) or shutil.which("exabgp")
FLEETBGP = shutil.which("fleetbgp", path=str(VENV_BIN)) or shutil.which("fleetbgp")
API_PROGRAM = HERE / "api_program.py"
SPEAKERS = ("exabgp", "fleetbgp")
TIMEOUT = 25.0  # per run, to the last UPDATE
QUIET = 0.4  # no UPDATE for this long after the last expected one: done

ANY = "*"
ROUTE = "(route)"  # the route (or withdrawal) is sent by one speaker only
CONFIG = "(config)"  # one speaker refuses the whole config
EOR = "(eor)"  # End-of-RIB for the family (nlri = the family) sent a different number of times
OPEN = "(open)"  # nlri of the OPEN's differences; the attribute is the field or the capability

# (case or ANY, nlri or ANY or OPEN, attribute or ANY or ROUTE/CONFIG/EOR, reason).
# Attributes are decode.py's names; OPEN fields are version, my-as, hold-time, router-id and the
# capabilities by name (CAPABILITY_NAMES).
_RFC5668 = ("4-octet-AS route target/origin: fleetbgp sends RFC 5668's type 0x02 (configuration.md); "
            "ExaBGP 5.0.15 sends type 0x01, the IPv4-address-specific type, with the AS number in "
            "the address field (its static/parser.py _HEADER: target4/origin4 = 0x0102/0x0103), so "
            "routers read 4200000000:7 as 250.86.234.0:7")
INTENDED: tuple[tuple[str, str, str, str], ...] = (
    ("static-ebgp", "10.1.19.0/24", "COMMUNITIES",
     "configuration.md: duplicate community values are dropped (ExaBGP sends 65000:1 twice)"),
    ("static-ebgp", "10.1.29.0/24", ROUTE,
     "the same prefix twice in the config: ExaBGP announces both lines in turn, fleetbgp only the "
     "later one (configuration.md: the later line wins); the peer ends with the same route"),
    ("ipv6-session", "2001:db8:12::/48", "MP_NEXT_HOP",
     "a link-local next hop is sent in both fields of a 32-byte next hop (wire/messages.py: "
     "'global field :: would be rejected by some peers'); ExaBGP sends the 16-byte address alone"),
    ("api-routes", "100.10.11.0/24", ROUTE,
     "configuration.md: fleetbgp also takes an AS_SET inside the brackets, `[ 65001 ( 65010 65011 ) ]` "
     "(its older form); ExaBGP refuses it ('could not parse as-path'), so only fleetbgp sends the route"),
    ("api-routes", "100.50.3.0/24", ROUTE,
     "api.md: an API route with `watchdog NAME` joins the group, so `withdraw watchdog NAME` takes it "
     "away; ExaBGP 5.0.15 puts only config routes in watchdog groups (configuration.inject_change "
     "uses add_to_rib, not add_to_rib_watchdog) and ignores the keyword on the API"),
    ("api-routes", "100.40.0.0/24", ROUTE,
     "a withdrawal of a route never announced is not sent (nothing in the adj-rib-out); ExaBGP "
     "sends it. Harmless (RFC 4271 lets a peer ignore it), but not in api.md's differences"),
    (ANY, OPEN, "ROUTE_REFRESH",
     "configuration.md: route-refresh is on by default; ExaBGP 5 offers it only when configured "
     "(not in configuration.md's 'Different defaults')"),
    (ANY, OPEN, "EXTENDED_MESSAGE",
     "configuration.md: extended-message is off by default; ExaBGP 5.0.15 offers it unless "
     "disabled (not in configuration.md's 'Different defaults')"),
    ("capabilities", OPEN, "GRACEFUL_RESTART",
     "RFC 8538: fleetbgp sets the Notification (N) bit of the graceful-restart capability (c0 78: "
     "R and N over the 120 s), so that a planned restart can keep graceful restart with a Cease "
     "and a real stop can end it with Hard Reset (running.md); ExaBGP 5.0.15 knows only R (80 78)"),
    ("capabilities", OPEN, "ENHANCED_ROUTE_REFRESH",
     "enhanced route refresh (RFC 7313) is not implemented; ExaBGP offers it with route-refresh"),
    ("extended-communities", "10.3.4.0/24", "EXTENDED_COMMUNITIES", _RFC5668 + " (target:4200000000:7)"),
    ("extended-communities", "10.3.5.0/24", "EXTENDED_COMMUNITIES", _RFC5668 + " (origin:4200000000:7)"),
    ("extended-communities", "10.3.6.0/24", "EXTENDED_COMMUNITIES", _RFC5668 + " (target:65000L:7)"),
    ("extended-communities", "10.3.7.0/24", "EXTENDED_COMMUNITIES", _RFC5668 + " (target4:65000:7)"),
    ("extended-communities", "10.3.8.0/24", "EXTENDED_COMMUNITIES", _RFC5668 + " (origin4:70000:7)"),
)

# (case, nlri or ANY, attribute or ANY/ROUTE/CONFIG/EOR, description): our bugs. Strict xfails.
KNOWN_BUGS: tuple[tuple[str, str, str, str], ...] = (
    # Fixed, and guarded by the cases since: (1) as-path prepended to a configured one on eBGP,
    # (2) communities (and large / extended communities) not sorted as ExaBGP does, (3) extended
    # communities with an IPv4 local part refused, (4) `withdraw route P next-hop X ...` refused,
    # (5) ExaBGP's AS_SET groups `[ 65001 ] ( 65010 65011 )` refused, (6) `no_export` refused, (7) the
    # graceful-restart capability without its Restart State and Forwarding State bits (issue 16).
)


# Route forms ExaBGP accepts (in the right context) that fleetbgp refuses on purpose
# (configuration.md: "Route keywords of ExaBGP that fleetbgp does not implement are errors that say
# so"). They cannot share a case's config (the whole file would be refused), so test_refused_on_purpose
# only checks that fleetbgp refuses each with a FILE:LINE:COL message. (form, static route, reason)
REFUSED_ON_PURPOSE: tuple[tuple[str, str, str], ...] = (
    ("originator-id", "route 10.9.0.0/24 next-hop self originator-id 10.0.0.9;",
     "route reflection attributes are not implemented"),
    ("cluster-list", "route 10.9.0.0/24 next-hop self cluster-list [ 10.0.0.9 ];",
     "route reflection attributes are not implemented"),
    ("withdraw", "route 10.9.0.0/24 next-hop self withdraw;",
     "the flag starts a watchdog route withdrawn: without 'watchdog NAME' nothing could announce it"),
    # ExaBGP wants an MPLS / VPN family, or the aigp capability for these (path-information, which
    # wants add-path, is implemented: the encoding suite's conf-path-information is identical):
    ("label", "route 10.9.0.0/24 next-hop self label 100;", "MPLS is out of scope"),
    ("rd", "route 10.9.0.0/24 next-hop self rd 65000:1 label 100;", "VPN is out of scope"),
    ("attribute", "route 10.9.0.0/24 next-hop self attribute [ 0x20 0xc0 0x0000000100000002 ];",
     "generic attributes are out of scope"),
    ("aigp", "route 10.9.0.0/24 next-hop self aigp 10;", "not implemented"),
)

# Forms fleetbgp accepts (documented) that ExaBGP 5.0.15 refuses, so no case can hold them (ExaBGP
# would refuse the file). Checked once with `exabgp validate -n -r`; test_fleetbgp_only checks that
# fleetbgp still accepts them. (form, static route, ExaBGP 5.0.15's answer)
FLEETBGP_ONLY: tuple[tuple[str, str, str], ...] = (
    ("community graceful-shutdown", "route 10.9.0.0/24 next-hop self community [ graceful-shutdown ];",
     "invalid community name graceful-shutdown"),
    ("as-path one ASN", "route 10.9.0.0/24 next-hop self as-path 65005;",
     "'ASN' object is not iterable (an ExaBGP bug: its parser returns ASPath(ASN))"),
    ("redirect 4-octet AS", "route 10.9.0.0/24 next-hop self extended-community [ redirect:4200000000:7 ];",
     "invalid extended community, value is too large 4200000000"),
    ("extended-community rt:", "route 10.9.0.0/24 next-hop self extended-community [ rt:65000:1 ];",
     "invalid extended community type rt"),
    ("extended-community soo:", "route 10.9.0.0/24 next-hop self extended-community [ soo:65000:1 ];",
     "invalid extended community type soo"),
    ("flow redirect IPv4:N (0x8108)", "",
     "redirect 192.0.2.1:7: this format has been deprecated as it does not make sense and it is not "
     "supported by other vendors"),
)
FLOW_REDIRECT_IP_RT = """\
    family {
        ipv4 flow;
    }
    flow {
        route red-ip-rt {
            match { destination 192.0.2.4/32; }
            then { redirect 192.0.2.1:7; }
        }
    }
"""


class Diff(NamedTuple):
    case: str
    nlri: str  # prefix, flow NLRI hex, family (EOR) or ANY (CONFIG)
    attribute: str  # decode.py name, ROUTE, CONFIG or EOR
    exabgp: str
    fleetbgp: str

    def __str__(self) -> str:
        return f"{self.case}: {self.nlri}: {self.attribute}: exabgp {self.exabgp} | fleetbgp {self.fleetbgp}"


@dataclass
class Outcome:
    speaker: str
    routes: list[Announce | Withdraw | EndOfRib] = field(default_factory=list)
    refused: str = ""  # the speaker exited before the session: its output
    error: str = ""  # the run went wrong (timeout, decode error): the reason and the log tail
    log: str = ""
    seconds: float = 0.0
    speaker_open: bytes = b""  # the speaker's OPEN body


# -- running a speaker -------------------------------------------------------------------------------


def _env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in list(env):
        if key.lower().startswith(("exabgp.", "exabgp_", "fleetbgp_")):
            del env[key]
    env.update({
        "exabgp.tcp.port": str(port),
        "exabgp.tcp.bind": "",
        "exabgp.daemon.user": getpass.getuser(),
        "exabgp.daemon.drop": "false",
        "exabgp.daemon.daemonize": "false",
        "exabgp.log.destination": "stderr",
        "exabgp.api.cli": "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _argv(speaker: str, conf: Path) -> list[str]:
    if speaker == "exabgp":
        assert EXABGP
        return [EXABGP, "server", str(conf)]
    assert FLEETBGP
    return [FLEETBGP, "run", "--control-socket", "off", "--metrics", "off", str(conf)]


def _decoded(updates: list[bytes], four_octet: bool) -> list[Announce | Withdraw | EndOfRib]:
    out: list[Announce | Withdraw | EndOfRib] = []
    for body in updates:
        out.extend(decode_update(body, asn4=four_octet))
    return out


def _done(case: Case, routes: list[Announce | Withdraw | EndOfRib]) -> bool:
    if case.api:
        return any(isinstance(r, Announce) and r.nlri == SENTINEL for r in routes)
    eors = {r.family for r in routes if isinstance(r, EndOfRib)}
    return set(case.families) <= eors


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of the speaker we started (it and its API program), then
    SIGKILL if it is still there after 5 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:  # the leader exited: its API program may not have
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_speaker(case: Case, speaker: str) -> Outcome:
    outcome = Outcome(speaker)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"parity-{case.name}-{speaker}-") as tmp:
        work = Path(tmp)
        lines = work / "api-lines.json"
        phases = [list(p) for p in case.api]
        if phases:
            phases[-1].append(f"announce route {SENTINEL} next-hop 127.0.0.1")
        lines.write_text(json.dumps(phases))
        conf = work / "speaker.conf"
        conf.write_text(case.config().replace("@PROGRAM@", f"{sys.executable} {API_PROGRAM} {lines}"))
        log = work / "speaker.log"
        with Capture(asn=asn(case.peer_as), router_id="10.0.0.2", host=case.neighbor) as cap, open(log, "wb") as logf:
            proc = subprocess.Popen(_argv(speaker, conf), cwd=work, env=_env(cap.port),
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                deadline = start + TIMEOUT
                last_count, last_change = -1, time.monotonic()
                four_octet = True
                while True:
                    now = time.monotonic()
                    updates = list(cap.updates)
                    if len(updates) != last_count:
                        last_count, last_change = len(updates), now
                    sessions = [x for x in cap.sessions if x.our_open]
                    if sessions and not outcome.speaker_open:
                        outcome.speaker_open = sessions[0].speaker_open
                        four_octet = asn4(sessions[0].speaker_open, sessions[0].our_open)
                    try:
                        routes = _decoded(updates, four_octet)
                    except DecodeError as exc:
                        outcome.error = f"undecodable UPDATE: {exc}"
                        break
                    if _done(case, routes) and now - last_change >= QUIET:
                        outcome.routes = routes
                        break
                    if proc.poll() is not None:
                        if not cap.opens:
                            outcome.refused = f"exited with {proc.returncode} before the session"
                        else:
                            outcome.error = f"exited with {proc.returncode}"
                        outcome.routes = routes
                        break
                    if now > deadline:
                        outcome.error = f"timeout after {TIMEOUT} s ({len(updates)} UPDATEs)"
                        outcome.routes = routes
                        break
                    time.sleep(0.05)
            finally:
                _stop(proc)
        outcome.log = log.read_text(errors="replace")
    outcome.seconds = time.monotonic() - start
    if outcome.refused:
        outcome.refused += ":\n" + _tail(outcome.log)
    if outcome.error:
        outcome.error += ":\n" + _tail(outcome.log)
    return outcome


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- comparing -----------------------------------------------------------------------------------------


def _routes(outcome: Outcome) -> dict[tuple[str, str, str], list[Announce | Withdraw]]:
    out: dict[tuple[str, str, str], list[Announce | Withdraw]] = {}
    for r in outcome.routes:
        if isinstance(r, Announce | Withdraw):
            out.setdefault((type(r).__name__, r.family, r.nlri), []).append(r)
    return out


def _describe(routes: list[Announce | Withdraw]) -> str:
    if not routes:
        return "(none)"
    parts = []
    for r in routes:
        if isinstance(r, Announce):
            parts.append("announce " + ", ".join(f"{n} {v}" for n, v in r.attributes))
        else:
            parts.append("withdraw")
    return " / ".join(parts)


def differences(case: Case, exa: Outcome, ours: Outcome) -> list[Diff]:
    if exa.refused or ours.refused:
        if exa.refused and ours.refused:
            return []
        return [Diff(case.name, ANY, CONFIG, "refused" if exa.refused else "accepted",
                     "refused" if ours.refused else "accepted")]
    diffs: list[Diff] = []
    a, b = _routes(exa), _routes(ours)
    for key in sorted(set(a) | set(b)):
        kind, family, nlri = key
        ra, rb = a.get(key, []), b.get(key, [])
        if len(ra) != len(rb):
            diffs.append(Diff(case.name, nlri, ROUTE, f"{kind} x{len(ra)}: {_describe(ra)}",
                              f"{kind} x{len(rb)}: {_describe(rb)}"))
            continue
        for x, y in zip(ra, rb, strict=True):
            if not (isinstance(x, Announce) and isinstance(y, Announce)):
                continue
            da, db = dict(x.attributes), dict(y.attributes)
            for name in sorted(set(da) | set(db)):
                if da.get(name) != db.get(name):
                    diffs.append(Diff(case.name, nlri, name, da.get(name, "(absent)"),
                                      db.get(name, "(absent)")))
    diffs += _open_differences(case, exa.speaker_open, ours.speaker_open)
    ea = Counter(r.family for r in exa.routes if isinstance(r, EndOfRib))
    eb = Counter(r.family for r in ours.routes if isinstance(r, EndOfRib))
    for family in sorted(set(ea) | set(eb)):
        if ea[family] != eb[family]:
            diffs.append(Diff(case.name, family, EOR, f"sent {ea[family]}x", f"sent {eb[family]}x"))
    return diffs


CAPABILITY_NAMES = {
    1: "MULTIPROTOCOL", 2: "ROUTE_REFRESH", 5: "EXTENDED_NEXT_HOP", 6: "EXTENDED_MESSAGE",
    64: "GRACEFUL_RESTART", 65: "ASN4", 69: "ADD_PATH", 70: "ENHANCED_ROUTE_REFRESH", 71: "LLGR",
    73: "HOSTNAME", 75: "SOFTWARE_VERSION", 128: "ROUTE_REFRESH_CISCO",
}


def _open_fields(body: bytes) -> dict[str, str]:
    if len(body) < 10:
        return {}
    out = {"version": str(body[0]), "my-as": str(int.from_bytes(body[1:3], "big")),
           "hold-time": str(int.from_bytes(body[3:5], "big")), "router-id": ".".join(map(str, body[5:9]))}
    caps: dict[str, list[str]] = {}
    for code, value in capabilities(body):
        caps.setdefault(CAPABILITY_NAMES.get(code, f"CAPABILITY_{code}"), []).append(value.hex() or "(empty)")
    out.update({name: " ".join(sorted(values)) for name, values in caps.items()})
    return out


def _open_differences(case: Case, exa: bytes, ours: bytes) -> list[Diff]:
    """The speakers' OPENs, field by field; capabilities by kind (their order does not matter)."""
    a, b = _open_fields(exa), _open_fields(ours)
    return [Diff(case.name, OPEN, name, a.get(name, "(absent)"), b.get(name, "(absent)"))
            for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


def _matches(diff: Diff, entry: tuple[str, str, str, str]) -> bool:
    case, nlri, attribute, _ = entry
    return case in (ANY, diff.case) and nlri in (ANY, diff.nlri) and attribute in (ANY, diff.attribute)


# -- the runs, once per session ----------------------------------------------------------------------


_RESULTS: dict[str, tuple[Outcome, Outcome]] = {}


def run_all(cases: tuple[Case, ...] = CASES) -> dict[str, tuple[Outcome, Outcome]]:
    todo = [c for c in cases if c.name not in _RESULTS]
    if todo:
        jobs = [(c, s) for c in todo for s in SPEAKERS]
        with ThreadPoolExecutor(max_workers=min(len(jobs), 8)) as pool:
            done = list(pool.map(lambda job: run_speaker(*job), jobs))
        for i, c in enumerate(todo):
            _RESULTS[c.name] = (done[2 * i], done[2 * i + 1])
    return {c.name: _RESULTS[c.name] for c in cases}


needs_speakers = pytest.mark.skipif(not (EXABGP and FLEETBGP), reason="exabgp or fleetbgp not installed")
CASE_BY_NAME = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[Outcome, Outcome]]:
    return run_all()


def _case_diffs(results: dict[str, tuple[Outcome, Outcome]], name: str) -> list[Diff]:
    exa, ours = results[name]
    for o in (exa, ours):
        if o.error:
            pytest.fail(f"{name}: {o.speaker}: {o.error}")
    if exa.refused:
        pytest.fail(f"{name}: ExaBGP refuses the case's config (fix the case):\n{exa.refused}")
    return differences(CASE_BY_NAME[name], exa, ours)


@needs_speakers
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_differential(name: str, results: dict[str, tuple[Outcome, Outcome]]) -> None:
    diffs = _case_diffs(results, name)
    unexplained = [d for d in diffs if not any(_matches(d, e) for e in INTENDED + KNOWN_BUGS)]
    stale = [e for e in INTENDED if e[0] == name and not any(_matches(d, e) for d in diffs)]
    ours = results[name][1]
    message = []
    if unexplained:
        message.append("differences from ExaBGP not listed in INTENDED or KNOWN_BUGS:")
        message += [f"  {d}" for d in unexplained]
        if ours.refused:
            message.append(f"fleetbgp:\n{ours.refused}")
    if stale:
        message.append("INTENDED entries that no longer happen (remove them):")
        message += [f"  {e}" for e in stale]
    assert not message, "\n".join(message)
    sent = [r for r in results[name][0].routes if isinstance(r, Announce)]
    assert sent, f"{name}: ExaBGP sent no route: the case tests nothing"


@needs_speakers
@pytest.mark.timeout(120)
def test_intended_for_any_case_still_happens(results: dict[str, tuple[Outcome, Outcome]]) -> None:
    """An INTENDED entry for every case (ANY) must still match somewhere, or it is stale."""
    diffs = [d for name in results for d in _case_diffs(results, name)]
    stale = [e for e in INTENDED if e[0] == ANY and not any(_matches(d, e) for d in diffs)]
    assert not stale, f"INTENDED entries that no longer happen (remove them): {stale}"


def _bug_id(entry: tuple[str, str, str, str]) -> str:
    return f"{entry[0]}:{entry[1]}:{entry[2]}"


@needs_speakers
@pytest.mark.timeout(120)
@pytest.mark.parametrize("bug", [pytest.param(b, id=_bug_id(b), marks=pytest.mark.xfail(strict=True, reason=b[3]))
                                 for b in KNOWN_BUGS])
def test_known_bug(bug: tuple[str, str, str, str], results: dict[str, tuple[Outcome, Outcome]]) -> None:
    """Fails while the bug is there (xfail); passes, so fails strictly, once it is fixed."""
    diffs = _case_diffs(results, bug[0])
    hits = [d for d in diffs if _matches(d, bug)]
    assert not hits, "\n".join(str(d) for d in hits)


def test_tables_name_cases() -> None:
    names = {c.name for c in CASES}
    assert len(names) == len(CASES), "case names must be unique"
    for entry in INTENDED + KNOWN_BUGS:
        assert entry[0] in names | {ANY}, f"{entry}: no such case"
        assert entry[3], f"{entry}: give the reason"


def _parse(route: str, body: str = "") -> None:
    from fleetbgp.config import parse_text

    families = ("ipv4 unicast", "ipv6 unicast")
    if not body:
        body = f"    static {{\n        {route}\n    }}\n"
    else:
        families = ()
    case = Case(name="form", local_as=65001, peer_as=65000, families=families, body=body)
    text = case.config()
    if not families:  # the body brings its own family block
        text = text.replace("    family {\n    }\n", "")
    parse_text(text, "form.conf")


@pytest.mark.parametrize("form", [f[0] for f in REFUSED_ON_PURPOSE])
def test_refused_on_purpose(form: str) -> None:
    """Route keywords of ExaBGP that fleetbgp refuses on purpose: refused with a message naming
    the place, never silently ignored."""
    from fleetbgp.config import ConfigError

    route = next(r for f, r, _ in REFUSED_ON_PURPOSE if f == form)
    with pytest.raises(ConfigError) as info:
        _parse(route)
    assert any(d.line > 0 and d.col > 0 for d in info.value.diagnostics), str(info.value)


@pytest.mark.parametrize("form", [f[0] for f in FLEETBGP_ONLY])
def test_fleetbgp_only(form: str) -> None:
    route = next(r for f, r, _ in FLEETBGP_ONLY if f == form)
    _parse(route, "" if route else FLOW_REDIRECT_IP_RT)


def test_ipv6_next_hop_self_needs_an_ipv6_session() -> None:
    """ExaBGP refuses `route 2001:db8:9::/48 next-hop self;` on a session whose local-address is
    IPv4 ('use of next-hop self: the route (ipv6) does not have the same family as the BGP tcp
    session'): there is no address to use. fleetbgp refuses it in validate too (before, it was
    accepted and the route dropped at run time with an ERROR log)."""
    from fleetbgp.config import ConfigError

    with pytest.raises(ConfigError, match="there is no address of ours"):
        _parse("route 2001:db8:9::/48 next-hop self;")


def main(argv: list[str]) -> int:
    cases = tuple(CASE_BY_NAME[n] for n in argv) if argv else CASES
    for name, (exa, ours) in run_all(cases).items():
        print(f"== {name}: exabgp {exa.seconds:.1f} s, fleetbgp {ours.seconds:.1f} s")
        for o in (exa, ours):
            if o.error or o.refused:
                print(f"  {o.speaker}: {o.error or o.refused}")
        for d in differences(CASE_BY_NAME[name], exa, ours):
            tag = ("intended" if any(_matches(d, e) for e in INTENDED)
                   else "known bug" if any(_matches(d, e) for e in KNOWN_BUGS) else "NEW")
            print(f"  [{tag}] {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
