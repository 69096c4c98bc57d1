"""BFD authentication (RFC 5880 4.2-4.4, 6.7): what is signed, what is accepted, the sequence
number windows of keyed and meticulous keyed MD5/SHA1. Expected digests are computed here by hand
from 6.7.3/6.7.4: the hash of the packet with the zero-padded key in the digest field."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest

from fleetbgp.bfd.auth import AuthConfig, Authenticator
from fleetbgp.bfd.packet import BfdState, ControlPacket, decode

KEYED = ["keyed-md5", "meticulous-keyed-md5", "keyed-sha1", "meticulous-keyed-sha1"]
TYPE = {"simple": 1, "keyed-md5": 2, "meticulous-keyed-md5": 3, "keyed-sha1": 4, "meticulous-keyed-sha1": 5}
PKT = ControlPacket(state=BfdState.UP, detect_mult=3, my_discr=0x11111111, your_discr=0x22222222,
                    desired_min_tx_us=300_000, required_min_rx_us=300_000)


def pair(kind: str, secret: bytes = b"s3cret", key_id: int = 7) -> tuple[Authenticator, Authenticator]:
    config = AuthConfig(kind, key_id, secret)
    return Authenticator(config, random.Random(1)), Authenticator(config, random.Random(2))


def sent(sender: Authenticator, seq: int | None = None, mult: int = 3) -> ControlPacket:
    if seq is not None:
        sender.xmit_seq = (seq - 1) % 2**32
    return decode(ControlPacket(state=BfdState.UP, detect_mult=mult, my_discr=1, your_discr=2).encode(sender))


def test_simple_password_on_the_wire() -> None:
    sender, receiver = pair("simple", b"hunter2", key_id=9)
    data = PKT.encode(sender)
    # A bit set (Up 0xC0 | A 0x04), Length 24 + 3 + 7; section: Type 1, Len 10, Key ID 9, password.
    assert data == bytes.fromhex("20c40322" "11111111" "22222222" "000493e0" "000493e0" "00000000") \
        + b"\x01\x0a\x09hunter2"
    assert receiver.verify(decode(data), 0.0) is None


@pytest.mark.parametrize("kind", KEYED)
def test_keyed_digest_on_the_wire(kind: str) -> None:
    sender, receiver = pair(kind, b"k" * 5, key_id=200)
    data = PKT.encode(sender)
    seq = sender.xmit_seq
    digest_len = 16 if "md5" in kind else 20
    length = 24 + 8 + digest_len
    head = struct.pack("!BBBBIIIII", 0x20, 0xC4, 3, length, 0x11111111, 0x22222222, 300_000, 300_000, 0)
    section = struct.pack("!BBBBI", TYPE[kind], 8 + digest_len, 200, 0, seq)
    hashed = head + section + b"kkkkk" + bytes(digest_len - 5)
    expected = head + section + (hashlib.md5 if "md5" in kind else hashlib.sha1)(hashed).digest()
    assert data == expected
    assert receiver.verify(decode(data), 0.0) is None
    assert (receiver.seq_known, receiver.rcv_seq) == (True, seq)


@pytest.mark.parametrize("kind", KEYED)
def test_every_packet_takes_the_next_sequence_number(kind: str) -> None:
    sender, _ = pair(kind)
    sender.xmit_seq = 2**32 - 2
    seqs = []
    for _ in range(4):
        pkt = decode(PKT.encode(sender))
        assert pkt.auth is not None
        seqs.append(pkt.auth.sequence)
    assert seqs == [2**32 - 1, 0, 1, 2]  # circular 32-bit space (6.7.3)


def test_first_sequence_number_is_random() -> None:
    config = AuthConfig("keyed-sha1", 1, b"x")
    assert Authenticator(config, random.Random(1)).xmit_seq != Authenticator(config, random.Random(2)).xmit_seq


@pytest.mark.parametrize("kind", ["simple", *KEYED])
def test_wrong_key(kind: str) -> None:
    sender, _ = pair(kind, b"right")
    receiver = Authenticator(AuthConfig(kind, 7, b"wrong"))
    reason = receiver.verify(sent(sender), 0.0)
    assert reason == ("wrong password (simple authentication)" if kind == "simple"
                      else f"wrong {kind} digest (a different key?)")
    assert not receiver.seq_known


def test_a_key_that_is_a_prefix_of_the_right_one_fails() -> None:
    sender, _ = pair("simple", b"secret")
    assert Authenticator(AuthConfig("simple", 7, b"secre")).verify(sent(sender), 0.0) == \
        "wrong password (simple authentication)"


@pytest.mark.parametrize("kind", ["simple", *KEYED])
def test_wrong_key_id(kind: str) -> None:
    sender, _ = pair(kind, key_id=1)
    receiver = Authenticator(AuthConfig(kind, 2, b"s3cret"))
    assert receiver.verify(sent(sender), 0.0) == "Auth Key ID 1 received, 2 configured"


def test_wrong_type_and_missing_authentication() -> None:
    md5, _ = pair("keyed-md5")
    _, sha1 = pair("keyed-sha1")
    assert sha1.verify(sent(md5), 0.0) == "authentication keyed-md5 received, keyed-sha1 configured"
    plain = decode(ControlPacket(my_discr=1).encode())
    assert sha1.verify(plain, 0.0) == "packet not authenticated (A bit clear) but keyed-sha1 is configured"


def test_a_tampered_packet_fails() -> None:
    sender, receiver = pair("keyed-sha1")
    data = bytearray(PKT.encode(sender))
    data[2] = 9  # Detect Mult
    assert receiver.verify(decode(bytes(data)), 0.0) == "wrong keyed-sha1 digest (a different key?)"


@pytest.mark.parametrize("kind", ["keyed-md5", "keyed-sha1"])
def test_keyed_window_includes_the_last_number(kind: str) -> None:
    # 6.7.3: keyed: bfd.RcvAuthSeq to bfd.RcvAuthSeq + 3 x Detect Mult, inclusive.
    sender, receiver = pair(kind)
    assert receiver.verify(sent(sender, 1000), 0.0) is None
    assert receiver.verify(sent(sender, 1000), 0.1) is None  # the same number again: allowed
    assert receiver.verify(sent(sender, 1009), 0.2) is None  # + 3 x 3
    assert receiver.verify(sent(sender, 1019), 0.3) == \
        "sequence number 1019 too far ahead of 1009 (window 9: 3 x Detect Mult)"
    assert receiver.verify(sent(sender, 1008), 0.4) == "sequence number 1008 replayed (last accepted 1009)"
    assert receiver.rcv_seq == 1009


@pytest.mark.parametrize("kind", ["meticulous-keyed-md5", "meticulous-keyed-sha1"])
def test_meticulous_window_excludes_the_last_number(kind: str) -> None:
    # 6.7.3: meticulous: bfd.RcvAuthSeq + 1 to bfd.RcvAuthSeq + 3 x Detect Mult, inclusive.
    sender, receiver = pair(kind)
    assert receiver.verify(sent(sender, 50, mult=2), 0.0) is None
    replay = sent(sender, 50, mult=2)
    assert receiver.verify(replay, 0.1) == "sequence number 50 replayed (last accepted 50)"
    assert receiver.verify(sent(sender, 57, mult=2), 0.2) == \
        "sequence number 57 too far ahead of 50 (window 6: 3 x Detect Mult)"
    assert receiver.verify(sent(sender, 56, mult=2), 0.3) is None
    assert receiver.verify(sent(sender, 57, mult=2), 0.4) is None  # one at a time: always in the window


def test_window_wraps_around() -> None:
    sender, receiver = pair("meticulous-keyed-sha1")
    assert receiver.verify(sent(sender, 2**32 - 2), 0.0) is None
    assert receiver.verify(sent(sender, 3), 0.1) is None  # 2^32-2 + 5, within 9
    assert receiver.verify(sent(sender, 2**32 - 1), 0.2) == \
        f"sequence number {2**32 - 1} replayed (last accepted 3)"


def test_a_replay_with_a_failing_digest_does_not_move_the_window() -> None:
    sender, receiver = pair("keyed-sha1")
    forger = Authenticator(AuthConfig("keyed-sha1", 7, b"guess"))
    assert receiver.verify(sent(sender, 10), 0.0) is None
    assert receiver.verify(sent(forger, 15), 0.1) is not None
    assert receiver.rcv_seq == 10


def test_any_number_is_taken_until_one_is_known() -> None:
    sender, receiver = pair("meticulous-keyed-md5")
    assert not receiver.seq_known
    assert receiver.verify(sent(sender, 123456), 0.0) is None
    assert receiver.verify(sent(sender, 5), 0.1) is not None
    receiver.reset_sequence()
    assert receiver.verify(sent(sender, 5), 0.2) is None


def test_sequence_forgotten_after_twice_the_detection_time_without_a_valid_packet() -> None:
    # 6.8.1: bfd.AuthSeqKnown MUST be set to zero after no packets have been received for at
    # least twice the Detection Time (the peer restarted, its sequence numbers start elsewhere).
    sender, receiver = pair("meticulous-keyed-sha1")
    receiver.forget_after = 1.8  # 2 x 3 x 300 ms
    assert receiver.verify(sent(sender, 1000), 10.0) is None
    assert receiver.verify(sent(sender, 7), 11.7) is not None  # a failure does not count as heard
    assert receiver.verify(sent(sender, 7), 11.9) is None
    assert receiver.rcv_seq == 7


@pytest.mark.parametrize(("args", "message"), [
    (("md5", 1, b"x"), "BFD authentication 'md5' is not one of simple, keyed-md5, meticulous-keyed-md5, "
                       "keyed-sha1, meticulous-keyed-sha1"),
    (("keyed-sha1", 256, b"x"), "BFD auth key id 256 is outside 0-255"),
    (("keyed-sha1", -1, b"x"), "BFD auth key id -1 is outside 0-255"),
    (("simple", 1, b""), "BFD simple secret of 0 octets: it must have 1-16"),
    (("keyed-md5", 1, b"x" * 17), "BFD keyed-md5 secret of 17 octets: it must have 1-16"),
    (("meticulous-keyed-sha1", 1, b"x" * 21), "BFD meticulous-keyed-sha1 secret of 21 octets: it must have 1-20"),
])
def test_config_checks(args: tuple[str, int, bytes], message: str) -> None:
    with pytest.raises(ValueError) as err:
        AuthConfig(*args)
    assert str(err.value) == message


def test_longest_secrets_work_and_never_show() -> None:
    for kind, size in (("simple", 16), ("keyed-md5", 16), ("keyed-sha1", 20)):
        config = AuthConfig(kind, 0, b"z" * size)
        sender, receiver = Authenticator(config), Authenticator(config)
        assert receiver.verify(sent(sender), 0.0) is None
        assert "zzz" not in repr(config)
