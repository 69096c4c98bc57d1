"""BFD in the agent: the Speaker makes the BFD sessions the config asks for, follows reloads
without touching BGP, holds a peer's BGP down while its BFD is down; the hold in Peer; BFD in the
control socket's neighbor view, in `fleetbgp show neighbors` and in the metrics.

The Speakers here run a real BfdService on a loopback address and a free port; their peers dial
port 9 of loopback addresses, where nothing listens: no session comes up, nothing leaves the host."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

from fleetbgp.bfd.machine import Timers
from fleetbgp.bfd.packet import BfdState, Diag
from fleetbgp.bfd.status import BfdStatus
from fleetbgp.cli_control import render_neighbors, render_status
from fleetbgp.config import parse_text
from fleetbgp.control.views import peer_info
from fleetbgp.daemon import Speaker, file_sha256
from fleetbgp.fsm import State
from fleetbgp.metrics import PeerSnapshot, Snapshot, bfd_metrics
from fleetbgp.settings import AgentSettings

PEER = "127.100.1.1"
CONF = """
neighbor 127.100.1.1 {{ router-id 192.0.2.2; local-address 127.100.1.2; connect 9; local-as 65001; peer-as 65000;
  family {{ ipv4 unicast; }}
  static {{ route 100.10.0.100/32 next-hop self; }}
  {bfd} }}
neighbor 127.100.1.5 {{ router-id 192.0.2.6; local-address 127.100.1.6; connect 9; local-as 65001; peer-as 65000; }}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings() -> AgentSettings:
    return AgentSettings(control_socket=None, metrics_port=None, listen=(("127.0.0.1", 0),),
                         bfd_listen=("127.100.1.2",), bfd_port=free_port())


def write(tmp_path: Path, bfd: str) -> Path:
    path = tmp_path / "fleetbgp.conf"
    path.write_text(CONF.format(bfd=bfd))
    return path


def make_speaker(tmp_path: Path, bfd: str) -> Speaker:
    path = write(tmp_path, bfd)
    return Speaker(parse_text(path.read_text(), str(path)), settings(), config_sha256=file_sha256(str(path)))


def status(state: BfdState = BfdState.UP, *, holding: bool = False, reason: str | None = None) -> BfdStatus:
    return BfdStatus(state=state, remote_state=BfdState.UP if state is BfdState.UP else BfdState.DOWN,
                     local_diag=Diag.NONE if not holding else Diag.CONTROL_DETECTION_TIME_EXPIRED,
                     remote_diag=Diag.NONE, local_discr=7, remote_discr=9, tx_interval_ms=300,
                     detect_time_ms=900, remote_min_tx_ms=300, remote_min_rx_ms=300, remote_multiplier=3,
                     configured=Timers(), auth=None, up_since=1795406561.0 if state is BfdState.UP else None,
                     transitions=3, packets_sent=10, packets_received=9, packets_dropped=1,
                     last_down_reason=reason, holding_bgp=holding,
                     transitions_to={"Init": 1, "Up": 1, "Down": 1})


async def until(pred: Callable[[], object], what: str) -> None:
    """Wait (10 s at most) for the BFD thread to carry out what add/update/remove handed it."""
    for _ in range(1000):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_no_bfd_in_the_config_no_bfd_service(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, "")
        await sp.start(dial=False)
        try:
            assert sp.bfd is None and sp.peers[PEER].bfd is None and sp.status()["bfd"] is None
        finally:
            await sp.stop()
    asyncio.run(go())


def test_sessions_follow_the_config_and_reloads_never_restart_bgp(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, "bfd;")
        await sp.start(dial=False)
        try:
            assert sp.bfd is not None and sp.bfd.keys() == [PEER]
            summary = sp.status()["bfd"]
            assert summary["sessions"] == 1 and summary["errors"] == []
            assert summary["listening"] == [f"127.100.1.2:{sp.settings.bfd_port}"]
            assert "1 session(s), 0 up, 0 holding BGP down; listening on 127.100.1.2:" in render_status(sp.status())
            peer = sp.peers[PEER]
            await until(lambda: peer.bfd is not None and peer.bfd.packets_sent > 0, "the session started")
            st = peer.bfd
            assert st is not None and st.state is BfdState.DOWN and st.configured == Timers(300, 300, 3)
            assert sp.peers["127.100.1.5"].bfd is None

            write(tmp_path, "bfd { min-tx 100; min-rx 200; multiplier 5; }")
            result = await sp.reload()
            assert result.ok and "restarted" not in result.summary
            assert sp.peers[PEER] is peer, "the BGP peer is the same: not restarted"
            await until(lambda: peer.bfd is not None and peer.bfd.configured == Timers(100, 200, 5),
                        "the new timers")

            write(tmp_path, "")
            result = await sp.reload()
            assert result.ok and sp.peers[PEER] is peer
            assert peer.bfd is None and sp.bfd.keys() == []
        finally:
            await sp.stop()
        assert sp.bfd is None
    asyncio.run(go())


def test_bfd_down_holds_bgp_and_up_releases_it(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, "bfd;")
        await sp.start(dial=False)
        try:
            peer = sp.peers[PEER]
            sp._bfd_changed(PEER, status(BfdState.DOWN, holding=True, reason="control detection time expired"))
            assert peer.bfd_hold == "control detection time expired"
            assert peer.last_error == "held down: BFD down (control detection time expired)"
            # held: an incoming connection is refused (closed at once), nothing is dialed
            a, b = socket.socketpair()
            peer.running = True
            peer.accept(a)
            assert a.fileno() == -1 and not peer.protocols
            b.close()
            peer.running = False
            # a reload that restarts BGP keeps the hold for the new peer
            assert peer.rib_out.count(next(iter(peer.neighbor.families))) == 1, "routes kept"
            sp._bfd_changed(PEER, status(BfdState.UP))
            assert peer.bfd_hold is None and peer.last_error == ""
            # Down without hold (the peer's AdminDown, never Up): BGP is left alone
            sp._bfd_changed(PEER, status(BfdState.DOWN))
            assert peer.bfd_hold is None
        finally:
            await sp.stop()
    asyncio.run(go())


def test_removing_bfd_lifts_a_hold(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, "bfd;")
        await sp.start(dial=False)
        try:
            peer = sp.peers[PEER]
            sp._bfd_changed(PEER, status(BfdState.DOWN, holding=True, reason="neighbor signaled session down"))
            assert peer.bfd_hold is not None
            write(tmp_path, "")
            assert (await sp.reload()).ok
            assert peer.bfd_hold is None
        finally:
            await sp.stop()
    asyncio.run(go())


def test_neighbor_view_and_show_neighbors(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, "bfd;")
        await sp.start(dial=False)
        try:
            peer = sp.peers[PEER]
            peer.bfd_lookup = lambda key: status(BfdState.DOWN, holding=True,
                                                 reason="control detection time expired")
            info = peer_info(peer, 0.0)
            assert info["bfd"]["state"] == "Down" and info["bfd"]["holding_bgp"] is True
            assert info["bfd"]["local_diag"] == "control detection time expired"
            assert info["bfd"]["packets"] == {"sent": 10, "received": 9, "dropped": 1}
            assert peer_info(sp.peers["127.100.1.5"], 0.0)["bfd"] is None
            text = render_neighbors({"neighbors": [info]})
            assert (f"BFD {PEER}: Down, tx 300 ms, detect 900 ms (remote Down, x3); last down: control "
                    "detection time expired; BGP held down until BFD is up") in text
        finally:
            await sp.stop()
    asyncio.run(go())


def test_bfd_metrics() -> None:
    snap = Snapshot(peers=[
        PeerSnapshot(peer=PEER, local_as=1, peer_as=2, state=str(State.IDLE), established_since=None,
                     stats={}, notifications={}, rib_out={}, rib_in={}, bfd=status()),
        PeerSnapshot(peer="192.0.2.9", local_as=1, peer_as=2, state=str(State.IDLE), established_since=None,
                     stats={}, notifications={}, rib_out={}, rib_in={}),
    ])
    samples = {(m.name, s.name, tuple(sorted(s.labels.items()))): s.value
               for m in bfd_metrics(snap) for s in m.samples}
    n = (("neighbor", PEER),)
    assert samples[("fleetbgp_bfd_session_state", "fleetbgp_bfd_session_state", n)] == 3
    assert samples[("fleetbgp_bfd_session_up", "fleetbgp_bfd_session_up", n)] == 1
    assert samples[("fleetbgp_bfd_transitions", "fleetbgp_bfd_transitions_total",
                    (("neighbor", PEER), ("to", "Down")))] == 1
    assert samples[("fleetbgp_bfd_packets", "fleetbgp_bfd_packets_total",
                    (("direction", "dropped"), ("neighbor", PEER)))] == 1
    assert samples[("fleetbgp_bfd_detect_time_seconds", "fleetbgp_bfd_detect_time_seconds", n)] == 0.9
    assert samples[("fleetbgp_bfd_holding_bgp", "fleetbgp_bfd_holding_bgp", n)] == 0
    assert not any(dict(labels).get("neighbor") == "192.0.2.9" for _, _, labels in samples)


def test_the_reload_plan_names_bfd_changes_and_keeps_the_session(tmp_path: Path) -> None:
    from fleetbgp.cli_plan import render_plan
    from fleetbgp.reload_plan import NeighborAction, RunningPeer, reconcile

    old = parse_text(CONF.format(bfd=""), "a.conf")
    running = {n.peer_address: RunningPeer(n, n.static_routes, n.static_routes, {}) for n in old.neighbors}
    for bfd, change in (("bfd;", "added"), ("bfd disable;", "")):
        plan = reconcile(old, parse_text(CONF.format(bfd=bfd), "b.conf"), running)
        step = next(s for s in plan.neighbors if s.address == PEER)
        assert step.action is NeighborAction.KEEP and step.bfd == change
    plan = reconcile(old, parse_text(CONF.format(bfd="bfd;"), "b.conf"), running)
    assert plan.summary() == f"neighbor {PEER}: BFD added (the BGP session is kept)"
    text = render_plan({"plan": plan.as_dict()})
    assert f"neighbor {PEER}: BFD added (the BGP session is kept)" in text and "1 neighbor(s) unchanged" in text
    with_bfd = parse_text(CONF.format(bfd="bfd;"), "b.conf")
    running = {n.peer_address: RunningPeer(n, n.static_routes, n.static_routes, {}) for n in with_bfd.neighbors}
    changed = reconcile(with_bfd, parse_text(CONF.format(bfd="bfd { min-tx 50; }"), "c.conf"), running)
    assert next(s for s in changed.neighbors if s.address == PEER).bfd == "changed"
    removed = reconcile(with_bfd, old, running)
    assert next(s for s in removed.neighbors if s.address == PEER).bfd == "removed"
