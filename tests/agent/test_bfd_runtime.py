"""BfdService on real UDP sockets on loopback: two services talking to each other, and a scripted
peer (this test, speaking BFD with bfd.packet) for what a well-behaved peer never does: fall
silent, send with a TTL of 64, set AdminDown. No timed asserts: each wait has a generous deadline
and the asserts are about states and counters.

Every service listens on its own loopback address (127.0.0.2, 127.0.0.3, ...) and on a port picked
free for the test, not 3784, so that tests running at the same time cannot collide."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from control_fakes import LoopThread

from fleetbgp.bfd.machine import Timers
from fleetbgp.bfd.packet import BfdState, ControlPacket, Diag, decode
from fleetbgp.bfd.runtime import IP_RECVTTL, BfdService, BfdStatus

FAST = Timers(min_tx_ms=50, min_rx_ms=50, multiplier=3)
DEADLINE = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(pred: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Events:
    """on_change calls, as the main loop receives them (a LoopThread plays the main loop)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, BfdStatus, bool]] = []

    def __call__(self, key: str, status: BfdStatus) -> None:
        with self.lock:
            self.items.append((key, status, threading.current_thread().name != "fleetbgp-bfd"))

    def states(self, key: str) -> list[BfdState]:
        with self.lock:
            return [s.state for k, s, _ in self.items if k == key]


@pytest.fixture
def main_loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@contextlib.contextmanager
def service(main_loop: LoopThread, address: str, port: int, events: Events) -> Iterator[BfdService]:
    svc = BfdService(events, main_loop.loop, listen=(address,), port=port)
    svc.start()
    try:
        assert svc.listening == [(address, port)], svc.listen_errors
        yield svc
    finally:
        svc.stop()


class ScriptedPeer:
    """A BFD peer written out by hand: a socket on (address, port), TTL 255 unless told."""

    def __init__(self, address: str, port: int, ours: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
        self.sock.bind((address, port))
        self.sock.settimeout(DEADLINE)
        self.ours = (ours, port)
        self.discr = 0x5EED

    def receive(self) -> tuple[ControlPacket, tuple[str, int]]:
        data, addr = self.sock.recvfrom(512)
        return decode(data), addr

    def send(self, state: BfdState, your_discr: int, *, ttl: int = 255, final: bool = False,
             diag: Diag = Diag.NONE) -> None:
        pkt = ControlPacket(state=state, diag=diag, final=final, detect_mult=3, my_discr=self.discr,
                            your_discr=your_discr, desired_min_tx_us=50_000, required_min_rx_us=50_000)
        if ttl != 255:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        self.sock.sendto(pkt.encode(), self.ours)
        if ttl != 255:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)

    def bring_up(self, svc: BfdService, key: str) -> int:
        """The three-way handshake (RFC 5880 6.2) from the peer's side; returns our discriminator."""
        pkt, source = self.receive()
        assert pkt.state is BfdState.DOWN and pkt.your_discr == 0
        assert 49152 <= source[1] <= 65535, "RFC 5881 4: the source port range"
        ours = pkt.my_discr
        self.send(BfdState.DOWN, ours)
        wait(lambda: (s := svc.status(key)) is not None and s.state is BfdState.INIT, "Init")
        self.send(BfdState.UP, ours)
        wait(lambda: (s := svc.status(key)) is not None and s.state is BfdState.UP, "Up")
        return ours

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted(main_loop: LoopThread) -> Iterator[tuple[BfdService, ScriptedPeer, Events]]:
    port = free_port()
    events = Events()
    with service(main_loop, "127.0.0.2", port, events) as svc:
        peer = ScriptedPeer("127.0.0.3", port, "127.0.0.2")
        svc.add("127.0.0.3", "127.0.0.3", "127.0.0.2", FAST, None)
        try:
            yield svc, peer, events
        finally:
            peer.close()


def test_a_silent_peer_takes_the_session_down_and_holds_bgp(scripted):
    svc, peer, events = scripted
    peer.bring_up(svc, "127.0.0.3")
    status = svc.status("127.0.0.3")
    assert status is not None and status.up and status.up_since is not None and not status.holding_bgp
    # the peer falls silent (a frozen host)
    wait(lambda: svc.status("127.0.0.3").state is BfdState.DOWN, "Down after the detection time")
    status = svc.status("127.0.0.3")
    assert status.local_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
    assert status.holding_bgp, "Up -> Down by detection: BGP is held"
    assert "detection time" in (status.last_down_reason or "")
    wait(lambda: BfdState.DOWN in events.states("127.0.0.3"), "the Down event on the main loop")
    assert events.states("127.0.0.3")[:2] == [BfdState.INIT, BfdState.UP]
    assert all(on_main for _, _, on_main in events.items), "events run on the caller's loop"
    assert status.transitions_to.get("Down") == 1 and status.transitions == 3


def test_the_peers_admin_down_does_not_hold_bgp(scripted):
    svc, peer, _events = scripted
    ours = peer.bring_up(svc, "127.0.0.3")
    peer.send(BfdState.ADMIN_DOWN, ours, diag=Diag.ADMINISTRATIVELY_DOWN)
    wait(lambda: svc.status("127.0.0.3").state is BfdState.DOWN, "Down")
    status = svc.status("127.0.0.3")
    assert status.remote_state is BfdState.ADMIN_DOWN and not status.holding_bgp  # RFC 5882 3.2


def test_packets_not_sent_with_ttl_255_are_dropped(scripted):
    svc, peer, _events = scripted
    pkt, _ = peer.receive()
    peer.send(BfdState.DOWN, pkt.my_discr, ttl=64)
    wait(lambda: svc.status("127.0.0.3").packets_dropped == 1, "the TTL 64 packet counted as dropped")
    status = svc.status("127.0.0.3")
    assert status.state is BfdState.DOWN and status.packets_received == 0  # it changed nothing


def test_a_packet_for_an_unknown_discriminator_is_counted_apart(scripted):
    svc, peer, _events = scripted
    peer.receive()
    peer.send(BfdState.DOWN, 12345)
    wait(lambda: svc.unmatched == 1, "the unmatched packet counted")
    assert svc.status("127.0.0.3").packets_dropped == 0


def test_we_send_with_ttl_255(scripted):
    """The scripted peer reads the TTL our packets arrive with (RFC 5881 5)."""
    _svc, peer, _events = scripted
    peer.sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    _data, anc, _flags, _addr = peer.sock.recvmsg(512, socket.CMSG_SPACE(4))
    ttl = [int.from_bytes(v[:4], "little") for level, kind, v in anc if kind == socket.IP_TTL]
    assert ttl == [255]


def test_two_services_come_up_change_timers_without_a_flap_and_remove_with_admin_down(main_loop):
    port = free_port()
    ea, eb = Events(), Events()
    with service(main_loop, "127.0.0.4", port, ea) as a, service(main_loop, "127.0.0.5", port, eb) as b:
        a.add("b", "127.0.0.5", "127.0.0.4", FAST, None)
        b.add("a", "127.0.0.4", "127.0.0.5", FAST, None)
        wait(lambda: a.status("b").up and b.status("a").up, "both Up")
        wait(lambda: a.status("b").tx_interval_ms == 50, "the configured interval once Up (poll/final)")
        before = a.status("b").transitions
        a.update("b", Timers(min_tx_ms=100, min_rx_ms=100, multiplier=4), None)
        wait(lambda: a.status("b").configured.min_tx_ms == 100 and a.status("b").tx_interval_ms == 100
             and b.status("a").remote_multiplier == 4, "the new timers negotiated")
        assert a.status("b").transitions == before and a.status("b").up, "a poll sequence, no flap"
        assert a.status("b").packets_received > 0 and a.status("b").packets_dropped == 0
        a.remove("b")
        assert a.status("b") is None
        wait(lambda: b.status("a").state is BfdState.DOWN, "b sees the AdminDown")
        assert b.status("a").remote_state is BfdState.ADMIN_DOWN and not b.status("a").holding_bgp


def test_a_port_in_use_is_reported_not_fatal(main_loop):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.6", port))
        svc = BfdService(Events(), main_loop.loop, listen=("127.0.0.6",), port=port)
        svc.start()
        try:
            assert svc.listening == []
            assert "Address already in use" in svc.listen_errors[0]
            assert "another BFD daemon" in svc.listen_errors[0]
        finally:
            svc.stop()


def test_authentication_matching_keys_come_up_a_wrong_key_goes_down(main_loop):
    from fleetbgp.bfd.auth import AuthConfig

    port = free_port()
    key = AuthConfig(kind="meticulous-keyed-sha1", key_id=3, secret=b"k" * 20)
    with service(main_loop, "127.0.0.7", port, Events()) as a, service(main_loop, "127.0.0.8", port, Events()) as b:
        a.add("b", "127.0.0.8", "127.0.0.7", FAST, key)
        b.add("a", "127.0.0.7", "127.0.0.8", FAST, key)
        # both Up, and a's detection time down from the 3 s of the slow start (else the wrong key
        # would need 3 s to show)
        wait(lambda: a.status("b").up and b.status("a").up and a.status("b").detect_time_ms == 150,
             "both Up with authentication, at 50 ms x 3")
        assert a.status("b").auth == "meticulous-keyed-sha1" and a.status("b").packets_dropped == 0
        b.update("a", FAST, AuthConfig(kind="meticulous-keyed-sha1", key_id=3, secret=b"wrong"))
        wait(lambda: a.status("b").state is BfdState.DOWN, "a drops b's packets: Down")
        status = a.status("b")
        assert status.packets_dropped > 0 and status.holding_bgp
        assert status.local_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
