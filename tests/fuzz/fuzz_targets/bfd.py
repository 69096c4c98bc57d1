"""BFD Control packets from the network (RFC 5880): the codec's checks, then authentication."""

from __future__ import annotations

import random

from fleetbgp.bfd.auth import AuthConfig, Authenticator
from fleetbgp.bfd.machine import BfdMachine, Timers, Transmit
from fleetbgp.bfd.packet import AUTH_KINDS, BfdPacketError, BfdState, ControlPacket, decode

from .base import require, target

# One configuration per kind (AUTH_KINDS' order), key id 1: byte 0 of an input picks none or one.
SECRET = b"fuzz-secret"
CONFIGS = tuple(AuthConfig(kind, 1, SECRET) for kind in AUTH_KINDS)
_FIELDS = ("diag", "state", "poll", "final", "cpi", "demand", "detect_mult", "my_discr", "your_discr",
           "desired_min_tx_us", "required_min_rx_us", "required_min_echo_rx_us")

BFD_WORDS = (
    b"\x20\x40\x03\x18", b"\x20\xc0\x03\x18", b"\x20\xc4\x03\x34", b"\x20\x44\x03\x30",
    b"\x00\x0f\x42\x40", b"\x00\x04\x93\xe0", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
    b"\x01\x0e\x01", b"\x02\x18\x01\x00", b"\x03\x18\x01\x00", b"\x04\x1c\x01\x00", b"\x05\x1c\x01\x00",
    b"fuzz-secret",
)


@target("bfd_packets", max_len=512, dictionary=BFD_WORDS, contract="""
    Byte 0 picks the authentication the session has (none, or one of the five kinds); the rest is
    a UDP datagram to port 3784. decode() returns a ControlPacket or raises BfdPacketError with a
    reason; a decoded packet re-encodes (without authentication) to its first 24 octets with the A
    bit and Length put right. verify() returns None or a reason, never raises, and accepts only
    what a sender with the same secret signed; with no authentication a packet carrying some is
    what the machine drops. A session (state Up when Your Discriminator is set) takes the packet
    without raising, and every packet it sends in answer decodes.""")
def bfd_packets(data: bytes) -> None:
    if not data:
        return
    selector, datagram = data[0], data[1:]
    try:
        pkt = decode(datagram)
    except BfdPacketError as exc:
        require(exc.reason and "\n" not in exc.reason, f"reason {exc.reason!r}")
        return
    require(24 <= pkt.length <= len(datagram) and pkt.raw == datagram, "Length and raw as received")
    require(not pkt.multipoint and pkt.detect_mult > 0 and pkt.my_discr != 0, "6.8.6 checks skipped")
    require(pkt.auth_present == (pkt.auth is not None), "A bit and the auth section disagree")
    plain = ControlPacket(**{f: getattr(pkt, f) for f in _FIELDS}).encode()
    expected = bytes((datagram[0], datagram[1] & ~0x04, datagram[2], 24)) + datagram[4:24]
    require(plain == expected, f"re-encoded {plain.hex()} is not {expected.hex()}")
    which = selector % (len(CONFIGS) + 1)
    config = CONFIGS[which - 1] if which else None
    _session(pkt, config)
    if config is None:
        return
    receiver = Authenticator(config)
    if selector & 0x80:  # a session that already accepted a sequence number: the window applies
        receiver.seq_known, receiver.rcv_seq = True, pkt.your_discr
    reason = receiver.verify(pkt, 0.0)
    if reason is None:
        require(pkt.auth is not None and pkt.auth.key_id == 1, "accepted without the configured key id")
        # What was accepted must be what a sender with the secret would have signed.
        sender = Authenticator(config)
        sender.xmit_seq = (pkt.auth.sequence - 1) % 2**32
        signed = decode(ControlPacket(**{f: getattr(pkt, f) for f in _FIELDS}).encode(sender))
        require(signed.raw == datagram[:pkt.length] or pkt.length != signed.length,
                "accepted a packet no holder of the secret signed")
    else:
        require(reason and SECRET.decode() not in reason, f"reason {reason!r}")


def _session(pkt: ControlPacket, config: AuthConfig | None) -> None:
    machine = BfdMachine(local_discr=pkt.your_discr or 1, timers=Timers(), auth=config, rng=random.Random(0))
    machine.start(0.0)
    if pkt.your_discr:  # bring it Up, so that every row of the state table is reachable
        machine.receive(ControlPacket(state=BfdState.DOWN, my_discr=pkt.my_discr), 0.5)
        machine.receive(ControlPacket(state=BfdState.UP, my_discr=pkt.my_discr, your_discr=pkt.your_discr), 0.6)
    for action in machine.receive(pkt, 1.0) + machine.timer_fired("tx", 2.0) + machine.timer_fired("detect", 9.0):
        if isinstance(action, Transmit):
            decode(action.data)
