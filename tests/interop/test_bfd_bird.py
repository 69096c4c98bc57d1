"""BFD (RFC 5880/5881, single hop) between the agent and BIRD 2 (``protocol bfd`` + ``bfd on`` in
its BGP protocols) and FRR's bfdd, IPv4 and IPv6. (Agent against agent, and BFD under a blocked
event loop: test_bfd_agents.py.)

One setup for the whole module (BFD sessions take a second or two to come Up and BGP a few more;
every test starts by waiting until everything is back as it should be, so each also runs alone):

    ns r: BIRD   link 1  plain4 (IPv4) and plain6 (IPv6): no authentication, 300/300 ms x 3
                 link 2  sha4 (IPv4): keyed SHA1, same key on both sides
                         badkey6 (IPv6): keyed SHA1, the agent has another key: BFD never Up
                 link 3  meti4 (IPv4): meticulous keyed MD5, same key
    ns s: the agent (`fleetbgp run`), one neighbor per session, each with `bfd { ... }`
    ns f: FRR's bfdd alone, and a BIRD for BGP only (bgpd would reach bfdd only through zebra)
                 link 4  frr4 (IPv4): 300/300 ms x 3; frr6 (IPv6): FRR's multiplier is 5

What is proven, in this order (the timer change last: it leaves plain4 on other timers):
- the sessions come Up on both sides with the negotiated intervals (BIRD's Interval/Timeout, FRR's
  remote timers and discriminators, the agent's control socket and `fleetbgp show neighbors`);
- authentication: keyed SHA1 and meticulous keyed MD5 come Up; a wrong key stays Down on both
  sides while BGP works (a BFD session that never came Up does not hold BGP down, as documented);
- the agent frozen (SIGSTOP): BIRD takes BGP down and FRR sees the session Down within detection
  time + DETECT_MARGIN; SIGCONT brings everything back;
- BIRD's and FRR's BFD packets dropped before the agent (nft, in the agent's namespace): the agent
  takes its BGP sessions down within the same bound and holds them down (BIRD keeps trying to
  connect) until BFD is Up again; BGP comes back only after BFD;
- FRR setting its side AdminDown: the agent's BFD goes Down, BGP stays up and is not held;
- a timer change by reload runs one Poll/Final sequence (tshark on the wire: P with the new
  values, BIRD's F, then no P; TTL 255 and source ports 49152-65535 as RFC 5881 wants), BIRD shows
  the new intervals, and neither BGP nor BFD flaps.

Detection and recovery times are printed (run with -s) and attached to the test report as user
properties.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import pytest
from interop_env import AGENT_AS, ROUTER_AS, assert_never
from prometheus_client.parser import text_string_to_metric_families

from fleetbgp import control_client
from netlab import (
    Bird,
    BirdBfdIface,
    BirdPeer,
    Capture,
    FleetbgpAgent,
    FrrBfdd,
    FrrBfdPeer,
    Lab,
    Neighbor,
    Route,
    bird_bfd_protocol,
    render_config,
    wait_until,
)
from netlab.bfd import bird_log_events
from netlab.fleetbgp import AGENT_SRC

pytestmark = pytest.mark.interop

# 300 ms x 3 on every side: detection time 0.9 s. The margin is for a loaded 2-core CI machine
# (a late poll, a slow birdc): far below BGP's hold time (9 s here), so a pass proves BFD did it.
MIN_TX, MIN_RX, MULT = 300, 300, 3
DETECT = MULT * max(MIN_TX, MIN_RX) / 1000
DETECT_MARGIN = 1.5
BOUND = DETECT + DETECT_MARGIN
HOLD_DOWN_CHECK = 2.5   # seconds the agent must keep BGP down while BFD is down
# BFD Up and BGP Established again (BIRD waits 1-2 s after an error). Measured: ~1 s plain, ~3.7 s
# authenticated. The authenticated sessions took ~6.5 s until the agent forgot the peer's sequence number when its
# detection time expired (as BIRD does) instead of 2 x detection time later (RFC 5880 6.8.1's
# wording): BIRD starts its session again with a new random sequence number.
RECOVER_WITHIN = 30.0
METRICS_PORT = 9101  # in the agent's own namespace
KEY = "fleet-bfd-key-1"
WRONG_KEY = "not-the-key"
NEW_TX, NEW_RX = 500, 600  # the timer change
# BIRD's log line for a packet that fails authentication (bfd/packets.c), for the agent's address
AUTH_FAIL = r"[Aa]uthentication failed for {}"


@dataclass
class Session:
    name: str                 # the BGP protocol's name in BIRD (ns r, or the BGP-only BIRD in ns f)
    router: str               # whose BFD: "bird" | "frr"
    peer: str                 # the router's address (the agent's neighbor)
    local: str                # the agent's address
    auth: str | None = None
    key: str | None = None    # the agent's key
    comes_up: bool = True     # False: the wrong key
    router_mult: int = MULT   # the router's multiplier: the agent's detection time is this x 300 ms

    @property
    def agent_detect(self) -> float:
        """The agent's detection time in seconds: the router's multiplier x max(300, 300) ms."""
        return self.router_mult * max(MIN_TX, MIN_RX) / 1000

    @property
    def v6(self) -> bool:
        return ":" in self.peer



def bfd_block(s: Session, min_tx: int = MIN_TX, min_rx: int = MIN_RX) -> str:
    lines = [f"min-tx {min_tx};", f"min-rx {min_rx};", f"multiplier {MULT};"]
    if s.auth:
        lines += [f"auth {s.auth};", "auth-key-id 1;", f'auth-password "{s.key}";']
    return "bfd {\n" + "\n".join("  " + x for x in lines) + "\n}"


class Bed:
    """The module's setup: BIRD, FRR bfdd and the agent, and how to look at each."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        r, s, f = lab.namespace("r"), lab.namespace("s"), lab.namespace("f")
        self.r, self.s, self.f = r, s, f
        l1, l2, l3, l4 = lab.link(r, s), lab.link(r, s), lab.link(r, s), lab.link(f, s)
        self.links = (l1, l2, l3, l4)
        self.sessions = [
            Session("plain4", "bird", l1.a4, l1.b4),
            Session("plain6", "bird", l1.a6, l1.b6),
            Session("sha4", "bird", l2.a4, l2.b4, "keyed-sha1", KEY),
            Session("badkey6", "bird", l2.a6, l2.b6, "keyed-sha1", WRONG_KEY, comes_up=False),
            Session("meti4", "bird", l3.a4, l3.b4, "meticulous-keyed-md5", KEY),
            Session("frr4", "frr", l4.a4, l4.b4),
            # FRR's multiplier 5 here: each side must detect with the *other's* multiplier
            Session("frr6", "frr", l4.a6, l4.b6, router_mult=5),
        ]
        self.by_name = {x.name: x for x in self.sessions}

        self.bird = Bird(lab, r, router_id=l1.a4)
        self.bird.extra.append(bird_bfd_protocol([
            BirdBfdIface(l2.a_if, MIN_RX, MIN_TX, MULT, auth="keyed-sha1", password=KEY),
            BirdBfdIface(l3.a_if, MIN_RX, MIN_TX, MULT, auth="meticulous-keyed-md5", password=KEY),
            BirdBfdIface("*", MIN_RX, MIN_TX, MULT),
        ]))
        # FRR's side: bfdd for BFD, and for BGP a BIRD without `protocol bfd` (bgpd would reach bfdd
        # only through zebra): BGP there is not tied to BFD, as with a router that has BFD but no
        # `neighbor X bfd` -- the agent's side still is.
        self.bfdd = FrrBfdd(lab, f)
        self.bird_f = Bird(lab, f, router_id=l4.a4, name="bird_f")
        for x in self.sessions:
            router = self.bird if x.router == "bird" else self.bird_f
            router.add_peer(BirdPeer(x.name, neighbor=x.local, peer_as=AGENT_AS, local_as=ROUTER_AS,
                                     local_address=x.peer, ipv4=not x.v6, ipv6=x.v6, bfd=x.router == "bird"))
            if x.router == "frr":
                self.bfdd.add_peer(FrrBfdPeer(x.local, x.peer, MIN_RX, MIN_TX, x.router_mult))

        self.agent = FleetbgpAgent(lab, s, config_text=self.agent_config(),
                                   env={"FLEETBGP_METRICS": f"127.0.0.1:{METRICS_PORT}"})

    def bird_sessions(self) -> list[Session]:
        return [x for x in self.sessions if x.router == "bird"]

    def frr_sessions(self) -> list[Session]:
        return [x for x in self.sessions if x.router == "frr"]

    def up_sessions(self) -> list[Session]:
        return [x for x in self.sessions if x.comes_up]

    def agent_config(self, timers: dict[str, tuple[int, int]] | None = None) -> str:
        """The agent's config; ``timers`` {session name: (min-tx, min-rx)} overrides 300/300."""
        timers = timers or {}
        neighbors = []
        for x in self.sessions:
            routes = [Route("2001:db8:100::/48" if x.v6 else "100.10.0.100/32")] if x.name.startswith("plain") else []
            neighbors.append(Neighbor(
                x.peer, x.local, AGENT_AS, ROUTER_AS, router_id=self.links[0].b4,
                families=("ipv6 unicast",) if x.v6 else ("ipv4 unicast",), routes=routes,
                description=x.name, extra=bfd_block(x, *timers.get(x.name, (MIN_TX, MIN_RX)))))
        return render_config(neighbors)

    def start(self) -> None:
        self.bird.start()
        self.bird_f.start()
        self.bfdd.start()
        self.agent.start()
        wait_until(self._agent_ready, 20, "the agent's control socket", describe=self.agent.log_tail)
        self.wait_ready()

    # -- the agent's view (control socket) --------------------------------------------------------
    def _agent_ready(self) -> bool:
        self.agent.ensure_alive()
        try:
            self.neighbors()
        except control_client.ControlError:
            return False
        return True

    def neighbors(self, timeout: float = 5) -> dict[str, dict]:
        """{neighbor address: the control socket's neighbor view} (a fresh connection per call: a
        frozen agent must not leave a half-read reply behind)."""
        with control_client.ControlClient(str(self.agent.control_socket), timeout=timeout) as c:
            return {n["address"]: n for n in c.call("neighbors")["neighbors"]}

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        """The agent's fleetbgp_bfd_* samples: {(sample name, frozenset of its labels): value}
        (scraped inside the agent's namespace, where the endpoint listens)."""
        code = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
        text = self.s.run([sys.executable, "-c", code, f"http://127.0.0.1:{METRICS_PORT}/metrics"]).stdout
        return {(m.name, frozenset(m.labels.items())): m.value for f in text_string_to_metric_families(text)
                if f.name.startswith("fleetbgp_bfd_") for m in f.samples}

    def agent_bfd(self, s: Session, view: dict[str, dict] | None = None) -> dict:
        n = (view or self.neighbors())[s.peer]
        assert n.get("bfd") is not None, f"the agent shows no BFD for {s.name}: {n}"
        return n["bfd"]

    # -- everything as it should be ----------------------------------------------------------------
    def problems(self) -> list[str]:
        """What is not (yet) as it should be at rest: [] when every session that comes Up is Up on
        both sides and every BGP session is Established on both sides."""
        out = []
        bird = self.bird.bfd_sessions()
        frr = self.bfdd.peers()
        view = self.neighbors()
        for x in self.sessions:
            theirs = (bird.get(x.local).state if x.local in bird else "absent") if x.router == "bird" \
                else str(frr.get(x.local, {}).get("status", "absent"))
            ours = (view.get(x.peer) or {}).get("bfd") or {}
            if x.comes_up:
                if theirs.lower() != "up":
                    out.append(f"{x.name}: BFD at {x.router} is {theirs}")
                if ours.get("state") != "Up":
                    out.append(f"{x.name}: BFD at the agent is {ours.get('state')}")
            if not self.bgp_router(x).established(x.name):
                out.append(f"{x.name}: BGP at BIRD is {self.bgp_router(x).state(x.name)}")
            if (view.get(x.peer) or {}).get("state") != "Established":
                out.append(f"{x.name}: BGP at the agent is {(view.get(x.peer) or {}).get('state')}")
        return out

    def bgp_router(self, x: Session) -> Bird:
        return self.bird if x.router == "bird" else self.bird_f

    def wait_ready(self, timeout: float = 30) -> dict[str, float]:
        """Wait until there are no problems(); return {session: seconds until it first had none,
        "all": seconds until none had any}."""
        started = time.monotonic()
        ready_at: dict[str, float] = {}

        def ready() -> bool:
            problems = self.problems()
            now = round(time.monotonic() - started, 3)
            for x in self.sessions:
                if not any(p.startswith(f"{x.name}:") for p in problems):
                    ready_at.setdefault(x.name, now)
            return not problems

        wait_until(ready, timeout, "every BFD session Up and every BGP session Established",
                   interval=0.1, describe=self.describe)
        ready_at["all"] = round(time.monotonic() - started, 3)
        return ready_at

    def describe(self) -> str:
        try:
            problems = self.problems()
        except Exception as exc:  # diagnostics only
            problems = [repr(exc)]
        return "\n".join(["not ready: " + "; ".join(problems),
                          self.bird.birdc("show", "bfd", "sessions"),
                          self.bird.birdc("show", "protocols"),
                          self.agent.log_tail(40)])


@pytest.fixture(scope="module")
def bed(tmp_path_factory, speaker_kind, clean_log_check):
    if speaker_kind != "fleetbgp":
        pytest.skip("BFD is fleetbgp's own: ExaBGP has none")
    lab = Lab(workdir=tmp_path_factory.mktemp("bfd") / "lab")
    try:
        b = Bed(lab)
        b.start()
        yield b
        clean_log_check(b.agent)
    finally:
        lab.close()


@pytest.fixture(autouse=True)
def _logs_on_failure(request, bed):
    """The conftest's report hook attaches every process log of the lab to a failed test."""
    request.node._netlab_lab = bed.lab
    bed.wait_ready()


def report(record_property, **values) -> None:
    for k, v in values.items():
        record_property(k, v)
    print(" ".join(f"{k}={v}" for k, v in values.items()))


# -- up, with the negotiated intervals ------------------------------------------------------------

def test_sessions_come_up_with_the_negotiated_intervals(bed: Bed):
    bird = bed.bird.bfd_sessions()
    frr = bed.bfdd.peers()
    view = bed.neighbors()
    for x in bed.up_sessions():
        if x.router == "bird":
            # BIRD's transmit interval = max(its min tx, our min-rx); its detection time = our
            # multiplier x max(its min rx, our min-tx)
            got = bird[x.local]
            assert (got.state, got.interval, got.timeout) == ("Up", MIN_RX / 1000, DETECT), f"{x.name}: {got}"
        else:
            got = frr[x.local]
            assert (got["status"], got["remote-receive-interval"], got["remote-transmit-interval"],
                    got["remote-detect-multiplier"]) == ("up", MIN_RX, MIN_TX, MULT), f"{x.name}: {got}"
        ours = bed.agent_bfd(x, view)
        want = {"state": "Up", "remote_state": "Up", "tx_interval_ms": MIN_TX,
                "detect_time_ms": round(x.agent_detect * 1000), "remote_min_tx_ms": MIN_TX, "remote_min_rx_ms": MIN_RX,
                "remote_multiplier": x.router_mult}
        assert {k: ours.get(k) for k in want} == want, f"{x.name}: the agent shows {ours}"
        assert ours["local_discriminator"] and ours["remote_discriminator"], f"{x.name}: discriminators {ours}"
        assert ours.get("auth") == x.auth, f"{x.name}: auth {ours.get('auth')!r}, configured {x.auth!r}"
        if x.router == "frr":  # FRR shows discriminators: both sides agree on them
            assert (got["id"], got["remote-id"]) == (ours["remote_discriminator"], ours["local_discriminator"]), \
                (got, ours)

    # the metrics (state 3 = Up, 1 = Down)
    metrics = bed.metrics()
    for x in bed.sessions:
        def sample(name: str, peer: str = x.peer, **labels: str) -> float | None:
            return metrics.get((name, frozenset({"neighbor": peer, **labels}.items())))
        got = (sample("fleetbgp_bfd_session_state"), sample("fleetbgp_bfd_session_up"),
               sample("fleetbgp_bfd_detect_time_seconds"))
        want = (3.0, 1.0, x.agent_detect) if x.comes_up else (1.0, 0.0, got[2])
        assert got == want, f"{x.name}: state/up/detect metrics {got}, expected {want}"
        assert (sample("fleetbgp_bfd_packets_total", direction="sent") or 0) > 0, x.name
        counted = sample("fleetbgp_bfd_packets_total", direction="received" if x.comes_up else "dropped")
        assert (counted or 0) > 0, f"{x.name}: no packets counted as {'received' if x.comes_up else 'dropped'}"

    # the operator's view: a BFD line with the state for each neighbor
    cp = subprocess.run([sys.executable, "-m", "fleetbgp", "show", "neighbors", "--socket",
                         str(bed.agent.control_socket)], capture_output=True, text=True, timeout=60,
                        env={**os.environ, "PYTHONPATH": str(AGENT_SRC)}, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    for x in bed.sessions:
        state = "Up" if x.comes_up else "Down"
        line = re.search(rf"^BFD {re.escape(x.peer)}: {state}\b.*$", cp.stdout, re.M)
        assert line, f"`fleetbgp show neighbors` has no line 'BFD {x.peer}: {state}':\n{cp.stdout}"
        if x.comes_up:
            assert f"tx {MIN_TX} ms, detect {round(x.agent_detect * 1000)} ms" in line.group(0), line.group(0)


# -- authentication --------------------------------------------------------------------------------

def test_authentication_same_key_up_wrong_key_stays_down_and_bgp_still_works(bed: Bed, record_property):
    bad = bed.by_name["badkey6"]
    for x in (bed.by_name["sha4"], bed.by_name["meti4"]):  # Up (bed.wait_ready), authenticated
        assert bed.agent_bfd(x)["auth"] == x.auth
    before = bed.agent_bfd(bad)
    bird_auth_errors = len(bird_log_events(bed.bird.proc.log_text(), AUTH_FAIL.format(re.escape(bad.local))))
    since = bed.bird.since(bad.name)
    end = time.monotonic() + 2.0  # BIRD sends every second while Down: one to three packets
    while time.monotonic() < end:
        ours, theirs = bed.agent_bfd(bad), bed.bird.bfd_sessions()[bad.local]
        assert ours["state"] in ("Down", "AdminDown") and ours.get("up_since") is None, f"agent: {ours}"
        assert theirs.state == "Down", f"BIRD: {theirs}"
        time.sleep(0.25)
    after = bed.agent_bfd(bad)
    assert after["packets"]["dropped"] > before["packets"]["dropped"], \
        f"the agent did not count BIRD's packets with the wrong key as dropped: {before} -> {after}"
    assert after["transitions"] == before["transitions"] and after["up_since"] is None, after
    bird_errors = bird_log_events(bed.bird.proc.log_text(), AUTH_FAIL.format(re.escape(bad.local)))
    assert len(bird_errors) > bird_auth_errors, "BIRD logged no authentication failure for the agent's packets"
    # documented: a BFD session that never came Up does not hold BGP down
    assert bed.bird.established(bad.name) and bed.bird.since(bad.name) == since
    assert bed.neighbors()[bad.peer]["state"] == "Established"
    report(record_property, wrong_key_dropped=after["packets"]["dropped"] - before["packets"]["dropped"])


# -- the agent frozen -----------------------------------------------------------------------------

def test_agent_frozen_router_takes_bgp_down_within_detection_time(bed: Bed, record_property):
    bird_up = [x for x in bed.up_sessions() if x.router == "bird"]
    frr_up = bed.frr_sessions()
    bad_since = bed.bird.since("badkey6")
    seen: dict[str, float] = {}  # session -> seconds after the freeze when the router showed it down
    started = time.time()
    t0 = time.monotonic()
    bed.agent.proc.pause()  # SIGSTOP: every thread of the agent, its BFD thread included
    try:
        while time.monotonic() - t0 < BOUND + 1.0 and len(seen) < len(bird_up) + len(frr_up):
            now = time.monotonic() - t0
            for x in bird_up:
                if x.name not in seen and not bed.bird.established(x.name):
                    seen[x.name] = now
            if any(x.name not in seen for x in frr_up):
                peers = bed.bfdd.peers()
                for x in frr_up:
                    if x.name not in seen and peers[x.local]["status"] == "down":
                        seen[x.name] = time.monotonic() - t0
            time.sleep(0.02)
        frr_view = bed.bfdd.peers()
    finally:
        frozen_for = time.monotonic() - t0
        bed.agent.proc.resume()
    log = bed.bird.proc.log_text()
    measured = {}
    for x in bird_up:
        bfd_down = bird_log_events(log, rf"Session to {re.escape(x.local)} changed state from Up to Down", after=started - 0.002)
        bgp_down = bird_log_events(log, rf"^{x.name}: BFD session down", after=started - 0.002)
        assert bfd_down and bgp_down, f"{x.name}: BIRD logged no BFD session down after the freeze\n{bed.describe()}"
        measured[x.name] = round(bfd_down[0][0] - started, 3)
    for x in frr_up:
        assert "detection" in frr_view[x.local]["diagnostic"], f"{x.name}: FRR's diagnostic {frr_view[x.local]}"
    report(record_property, frozen_for=round(frozen_for, 3),
           **{f"bird_log_detect_{k}": v for k, v in measured.items()},
           **{f"polled_down_{k}": round(v, 3) for k, v in seen.items()})
    late = [(k, v) for k, v in [*measured.items(), *seen.items()] if v > BOUND]
    # and not before: the last packet left at most one interval before the freeze
    early = [(k, v) for k, v in [*measured.items(), *seen.items()] if v < DETECT - MIN_TX / 1000 - 0.02]
    missing = [x.name for x in [*bird_up, *frr_up] if x.name not in seen]
    assert not missing and not late, (f"not down within {BOUND:.1f} s of the freeze: missing {missing}, "
                                      f"late {late} (BIRD log: {measured}, polled: {seen})")
    assert not early, f"down sooner than the detection time allows: {early}"
    # the wrong-key session never had BFD Up: its BGP does not depend on BFD and stays up at BIRD
    assert bed.bird.established("badkey6") and bed.bird.since("badkey6") == bad_since
    recovered = bed.wait_ready(RECOVER_WITHIN)
    report(record_property, **{f"recovered_after_resume_{k}": v for k, v in recovered.items()})


# -- the router's BFD stops reaching the agent ------------------------------------------------------

NFT_DROP = """table inet fbt_bfd {
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 3784 drop
  }
}
"""


def test_router_bfd_lost_agent_takes_bgp_down_and_holds_it_until_bfd_up(bed: Bed, record_property):
    ups = bed.up_sessions()
    bad = bed.by_name["badkey6"]
    connects_before = len(bird_log_events(bed.bird.proc.log_text(), r"Connecting to"))
    bfd_down: dict[str, float] = {}
    bgp_down: dict[str, float] = {}
    t0 = time.monotonic()
    bed.s.run(["nft", "-f", "-"], input=NFT_DROP)  # in the agent's namespace: every BFD packet to it
    try:
        longest = max(x.agent_detect for x in ups) + DETECT_MARGIN
        while time.monotonic() - t0 < longest + 1.0 and (len(bfd_down) < len(ups) or len(bgp_down) < len(ups)):
            view = bed.neighbors()
            now = time.monotonic() - t0
            for x in ups:
                if x.name not in bfd_down and (view[x.peer].get("bfd") or {}).get("state") != "Up":
                    bfd_down[x.name] = now
                if x.name not in bgp_down and view[x.peer]["state"] != "Established":
                    bgp_down[x.name] = now
            time.sleep(0.02)
        report(record_property, **{f"agent_bfd_down_{k}": round(v, 3) for k, v in bfd_down.items()},
               **{f"agent_bgp_down_{k}": round(v, 3) for k, v in bgp_down.items()})
        bound = {x.name: x.agent_detect + DETECT_MARGIN for x in ups}
        late = [(k, v) for k, v in [*bfd_down.items(), *bgp_down.items()] if v > bound[k]]
        # not before the router's multiplier x interval either (less the last packet's age): the
        # agent detects with the router's multiplier (5 for frr6), not its own
        early = [(k, v) for k, v in bfd_down.items() if v < bed.by_name[k].agent_detect - MIN_RX / 1000 - 0.02]
        assert not early, f"BFD Down sooner than the detection time allows: {early}"
        missing = [x.name for x in ups if x.name not in bfd_down] + [x.name for x in ups if x.name not in bgp_down]
        assert not missing and not late, (f"the agent did not take BFD/BGP down within its detection time + "
                                          f"{DETECT_MARGIN} s ({bound}): "
                                          f"missing {missing}, late {late}\n{bed.agent.log_tail(40)}")
        view = bed.neighbors()
        for x in ups:
            assert "bfd" in str(view[x.peer].get("last_error") or "").lower(), \
                f"{x.name}: the agent's last_error does not name BFD: {view[x.peer].get('last_error')!r}"
            assert view[x.peer]["bfd"]["last_down_reason"], view[x.peer]["bfd"]
            assert view[x.peer]["bfd"]["holding_bgp"] is True, view[x.peer]["bfd"]

        # held down while BFD is down: neither side Established, though BIRD keeps trying
        hold_end = time.monotonic() + HOLD_DOWN_CHECK
        while time.monotonic() < hold_end:
            view = bed.neighbors()
            up_again = [x.name for x in ups
                        if view[x.peer]["state"] == "Established" or bed.bgp_router(x).established(x.name)]
            assert not up_again, f"BGP Established while BFD is down: {up_again}\n{bed.agent.log_tail(30)}"
            assert view[bad.peer]["state"] == "Established", "the never-Up (wrong key) session lost BGP"
            time.sleep(0.2)
        connects = len(bird_log_events(bed.bird.proc.log_text(), r"Connecting to")) - connects_before
        report(record_property, bird_connect_attempts_while_held=connects)
        assert connects > 0, "BIRD never tried to connect while BFD was down: the hold was not put to the test"
    finally:
        bed.s.run(["nft", "delete", "table", "inet", "fbt_bfd"], check=False)
    recovered = bed.wait_ready(RECOVER_WITHIN)
    report(record_property, **{f"recovered_after_unblock_{k}": v for k, v in recovered.items()})
    # BGP came back after BFD, not before
    view = bed.neighbors()
    for x in ups:
        bfd = view[x.peer]["bfd"]
        assert view[x.peer]["established_since"] >= bfd["up_since"] - 0.05, \
            f"{x.name}: BGP Established at {view[x.peer]['established_since']}, BFD Up only at {bfd['up_since']}"


# -- the router sets its side AdminDown ------------------------------------------------------------

def test_router_admin_down_does_not_take_bgp_down(bed: Bed, record_property):
    """RFC 5882 3.2: AdminDown from the peer says "BFD is being turned off here", not "the path is
    dead": the agent's BFD goes Down but BGP stays up and nothing is held."""
    x = bed.by_name["frr4"]
    since = bed.neighbors()[x.peer]["established_since"]
    router_since = bed.bird_f.since(x.name)
    bed.bfdd.configure(f"peer {x.local} local-address {x.peer}", "shutdown")
    try:
        def admin_down_seen() -> bool:
            return bed.agent_bfd(x)["remote_state"] == "AdminDown"

        wait_until(admin_down_seen, 5, f"the agent to see {x.name}'s AdminDown",
                   describe=lambda: f"{bed.agent_bfd(x)}\n{bed.agent.log_tail(20)}")
        ours = bed.agent_bfd(x)
        assert ours["state"] == "Down" and ours["holding_bgp"] is False, ours

        def bgp_touched() -> bool:
            n = bed.neighbors()[x.peer]
            return n["state"] != "Established" or n["established_since"] != since or n["bfd"]["holding_bgp"]

        assert_never(bgp_touched, 1.5, f"BGP with {x.name} going down (or held) on the router's AdminDown",
                     describe=lambda: bed.agent.log_tail(20))
        assert bed.bird_f.since(x.name) == router_since
    finally:
        bed.bfdd.configure(f"peer {x.local} local-address {x.peer}", "no shutdown")
    back = bed.wait_ready(RECOVER_WITHIN)
    assert bed.neighbors()[x.peer]["established_since"] == since, "BGP flapped when BFD came back"
    report(record_property, admin_down_back_up_after=back[x.name])


# -- timer change: Poll/Final --------------------------------------------------------------------

class Pkt(NamedTuple):
    time: float
    src: str
    poll: bool
    final: bool
    tx: int      # Desired Min TX Interval, microseconds
    rx: int      # Required Min RX Interval, microseconds
    ttl: int
    sport: int
    state: int


def wire_packets(cap: Capture) -> list[Pkt]:
    """The IPv4 BFD Control packets of a capture, as tshark 4.0 dissects them."""
    rows = cap.frames("bfd && ip", "frame.time_epoch", "ip.src", "bfd.flags.p", "bfd.flags.f",
                      "bfd.desired_min_tx_interval", "bfd.required_min_rx_interval", "ip.ttl", "udp.srcport",
                      "bfd.sta")
    flag = ("1", "True")
    return [Pkt(float(t), src, p in flag, f in flag, int(tx), int(rx), int(ttl), int(sport), int(sta, 0))
            for t, src, p, f, tx, rx, ttl, sport, sta in rows]


def test_timer_change_by_reload_runs_poll_final_without_a_flap(bed: Bed, record_property):
    x = bed.by_name["plain4"]
    link = bed.links[0]
    others = [y for y in bed.bird_sessions() if y is not x]
    bgp_since = {y.name: bed.bgp_router(y).since(y.name) for y in bed.sessions}
    bfd_since = {a: s.since for a, s in bed.bird.bfd_sessions().items()}
    before = {y.name: bed.agent_bfd(y) for y in bed.sessions}
    agent_since = {y.name: bed.neighbors()[y.peer]["established_since"] for y in bed.sessions}

    cap = Capture(bed.lab, bed.r, link.a_if, name="bfd-poll", bpf="udp port 3784").start()
    reloaded_at = time.time()
    bed.agent.reload(config_text=bed.agent_config({x.name: (NEW_TX, NEW_RX)}))
    # BIRD: its transmit interval = max(300, our new min-rx); its detection time = 3 x max(300, our min-tx)
    want_interval, want_timeout = NEW_RX / 1000, MULT * NEW_TX / 1000
    def bird_has_new_intervals() -> bool:
        got = bed.bird.bfd_sessions()[x.local]
        return (got.interval, got.timeout) == (want_interval, want_timeout)

    wait_until(bird_has_new_intervals, 10, f"BIRD to show Interval {want_interval} and Timeout {want_timeout} for {x.name}",
               describe=bed.describe)
    changed_after = time.time() - reloaded_at
    # ours: tx max(500, BIRD's 300), detection BIRD's 3 x max(600, BIRD's 300); the larger transmit
    # interval only once BIRD's Final is in (6.8.3): a moment after BIRD shows its side
    want_ours = (max(NEW_TX, MIN_RX), MULT * max(NEW_RX, MIN_TX))

    def agent_has_new_intervals() -> bool:
        ours = bed.agent_bfd(x)
        return (ours["tx_interval_ms"], ours["detect_time_ms"]) == want_ours

    wait_until(agent_has_new_intervals, 5, f"the agent to show tx/detect {want_ours} ms for {x.name}",
               describe=lambda: str(bed.agent_bfd(x)))
    time.sleep(1.0)  # a few packets at the new interval on the wire
    cap.stop()

    # on the wire: our packets carry P (with the new values) until BIRD's F, then P is clear
    pkts = wire_packets(cap)
    ours_all = [p for p in pkts if p.src == link.b4]
    polls = [p for p in ours_all if p.poll]
    assert polls, f"no packet with P from the agent after the reload; captured: {pkts[:20]}"
    new_values = (NEW_TX * 1000, NEW_RX * 1000)
    assert (polls[-1].tx, polls[-1].rx) == new_values, f"the last Poll carries {polls[-1]}"
    finals = [p for p in pkts if p.src == link.a4 and p.final and p.time >= polls[-1].time]
    assert finals, f"BIRD never answered our Poll with F: {pkts[:20]}"
    final = finals[0]
    after_final = [p for p in ours_all if p.time > final.time]
    assert after_final and not any(p.poll for p in after_final), \
        f"P still set after BIRD's Final: {[p for p in after_final if p.poll][:3]}"
    assert all((p.tx, p.rx) == new_values for p in after_final), after_final
    # one Poll Sequence for one change (a second would be legal but says the change was split)
    sequences = 1 + sum(1 for a, b in itertools.pairwise(ours_all) if a.poll and not b.poll and b.time < polls[-1].time)
    # RFC 5881: TTL 255 and a source port in 49152-65535 on every packet of ours
    assert {p.ttl for p in ours_all} == {255}
    assert all(49152 <= p.sport <= 65535 for p in ours_all)
    assert all(p.state == 3 for p in pkts), "a packet not Up during the change: a BFD flap"
    # the interval at which we send once the change is done (jitter 75-100% of 500 ms)
    gaps = [b.time - a.time for a, b in itertools.pairwise(after_final)]
    report(record_property, poll_to_final_ms=round((final.time - polls[0].time) * 1000, 1),
           poll_sequences=sequences, reload_to_bird_shows_new_intervals=round(changed_after, 3),
           tx_gap_after_ms=[round(g * 1000) for g in gaps])
    assert sequences == 1, f"{sequences} Poll Sequences for one reload"
    assert gaps and all(0.75 * NEW_TX / 1000 - 0.05 <= g <= NEW_TX / 1000 + 0.3 for g in gaps), gaps

    # no flap anywhere: BGP and BFD at BIRD, BFD transitions and BGP at the agent
    assert {y.name: bed.bgp_router(y).since(y.name) for y in bed.sessions} == bgp_since
    assert {a: s.since for a, s in bed.bird.bfd_sessions().items()} == bfd_since
    view = bed.neighbors()
    assert {y.name: view[y.peer]["established_since"] for y in bed.sessions} == agent_since
    for y in bed.sessions:
        assert bed.agent_bfd(y, view)["transitions"] == before[y.name]["transitions"], y.name
    for y in others:  # untouched: still the old intervals
        s = bed.bird.bfd_sessions()[y.local]
        if y.comes_up:
            assert (s.interval, s.timeout) == (MIN_RX / 1000, DETECT), (y.name, s)
