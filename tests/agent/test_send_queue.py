"""`send_queue_empty` (control `neighbors`): what a rolling restart waits for after a drain, so that
the router has the withdraws before the agent stops. Nothing pending in the core, the send task idle,
the transport's buffer empty, and every byte in the socket acknowledged by the peer's TCP."""

from __future__ import annotations

import socket
import time
import types

from fleetbgp.config import parse_text
from fleetbgp.session import BGPProtocol, Peer

CONF = """
neighbor 127.0.0.1 { router-id 192.0.2.1; local-address 127.0.0.1; local-as 65001; peer-as 65002; passive;
  family { ipv4 unicast; } }
"""


class Session:
    """The established connection as send_queue_empty reads it."""

    def __init__(self, buffered: int = 0, unacked: int = 0) -> None:
        self.buffered = buffered
        self.unacked = unacked

    def write_buffer_size(self) -> int:
        return self.buffered

    def unacked_bytes(self) -> int:
        return self.unacked


def idle_peer() -> Peer:
    peer = Peer(parse_text(CONF, "q.conf").neighbors[0])
    peer._idle.set()  # the send task waits for work
    return peer


def test_without_a_session_nothing_can_wait() -> None:
    peer = Peer(parse_text(CONF, "q.conf").neighbors[0])
    assert peer.established is None
    assert peer.send_queue_empty


def test_each_place_a_withdraw_can_wait_in() -> None:
    peer = idle_peer()
    peer.established = Session()  # type: ignore[assignment]
    assert not peer.core.pending
    assert peer.send_queue_empty
    peer.schedule_send()  # the send task has work
    assert not peer.send_queue_empty
    peer._idle.set()
    peer.established = Session(buffered=19)  # type: ignore[assignment]
    assert not peer.send_queue_empty, "in the transport's buffer"
    peer.established = Session(unacked=23)  # type: ignore[assignment]
    assert not peer.send_queue_empty, "in the socket, not acknowledged by the peer"


def test_unacked_bytes_reads_the_kernels_send_queue() -> None:
    """A real TCP connection on loopback whose reader does not read: once its receive buffer is full,
    what we wrote stays unacknowledged in our socket; read out, the queue empties."""
    listener = socket.create_server(("127.0.0.1", 0))
    sender = socket.create_connection(listener.getsockname())
    receiver, _ = listener.accept()
    try:
        shell = types.SimpleNamespace(transport=types.SimpleNamespace(get_extra_info=lambda _name: sender))
        assert BGPProtocol.unacked_bytes(shell) == 0  # type: ignore[arg-type]
        sender.setblocking(False)
        chunk, sent = b"x" * 65536, 0
        while True:
            try:
                sent += sender.send(chunk)
            except BlockingIOError:
                break
        assert BGPProtocol.unacked_bytes(shell) > 0  # type: ignore[arg-type]
        while sent > 0:
            sent -= len(receiver.recv(min(sent, 1 << 20)))
        # Every byte read, so every byte was acknowledged; the ACKs may still be on their way to us.
        for _ in range(500):
            if BGPProtocol.unacked_bytes(shell) == 0:  # type: ignore[arg-type]
                break
            time.sleep(0.01)
        assert BGPProtocol.unacked_bytes(shell) == 0  # type: ignore[arg-type]
    finally:
        for s in (sender, receiver, listener):
            s.close()


def test_no_socket_counts_as_nothing_unacknowledged() -> None:
    shell = types.SimpleNamespace(transport=None)
    assert BGPProtocol.unacked_bytes(shell) == 0  # type: ignore[arg-type]
