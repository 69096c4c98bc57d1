"""The BFD Control packet codec (RFC 5880 4.1-4.4) and the session-independent reception checks of
RFC 5880 6.8.6. Expected bytes are written out by hand from the RFC's layout."""

from __future__ import annotations

import struct

import pytest

from fleetbgp.bfd.packet import (
    AUTH_KINDS,
    AuthType,
    BfdPacketError,
    BfdState,
    ControlPacket,
    Diag,
    decode,
    encode_control,
)

# What BIRD 2 sends first (bfd.c: idle tx 1 s while not Up, min rx 10 ms, multiplier 5), laid out
# as RFC 5880 4.1 draws it: Vers 1 | Diag 0, Sta Down (01) and no flags, Detect Mult 5, Length 24,
# My Discriminator, Your Discriminator 0 (nothing heard yet), Desired Min TX 1,000,000 us,
# Required Min RX 10,000 us, Required Min Echo RX 0.
BIRD_DOWN = bytes.fromhex("20" "40" "05" "18" "2a2b2c2d" "00000000" "000f4240" "00002710" "00000000")


def header(vers_diag: int = 0x20, flags: int = 0x40, mult: int = 3, length: int = 24, my: int = 1,
           your: int = 0, tx: int = 1_000_000, rx: int = 1_000_000, echo: int = 0) -> bytes:
    return struct.pack("!BBBBIIIII", vers_diag, flags, mult, length, my, your, tx, rx, echo)


def test_decodes_birds_first_packet() -> None:
    pkt = decode(BIRD_DOWN)
    assert (pkt.version, pkt.diag, pkt.state) == (1, Diag.NONE, BfdState.DOWN)
    assert not (pkt.poll or pkt.final or pkt.cpi or pkt.auth_present or pkt.demand or pkt.multipoint)
    assert (pkt.detect_mult, pkt.length, pkt.my_discr, pkt.your_discr) == (5, 24, 0x2A2B2C2D, 0)
    assert (pkt.desired_min_tx_us, pkt.required_min_rx_us, pkt.required_min_echo_rx_us) == \
        (1_000_000, 10_000, 0)
    assert pkt.auth is None and pkt.raw == BIRD_DOWN


def test_encodes_the_same_bytes_as_bird() -> None:
    pkt = ControlPacket(state=BfdState.DOWN, detect_mult=5, my_discr=0x2A2B2C2D,
                        desired_min_tx_us=1_000_000, required_min_rx_us=10_000)
    assert pkt.encode() == BIRD_DOWN


def test_every_field_and_flag_in_its_place() -> None:
    # Up (11), P, C and D set: 0b11_1_0_1_0_1_0 = 0xEA; Diag 7 under version 1: 0x27.
    data = encode_control(state=BfdState.UP, diag=Diag.ADMINISTRATIVELY_DOWN, poll=True, cpi=True,
                          demand=True, detect_mult=255, my_discr=0xFFFFFFFF, your_discr=0x01020304,
                          desired_min_tx_us=300_000, required_min_rx_us=50_000,
                          required_min_echo_rx_us=7)
    assert data == bytes.fromhex("27" "ea" "ff" "18" "ffffffff" "01020304" "000493e0" "0000c350" "00000007")
    final = encode_control(state=BfdState.INIT, diag=Diag.NONE, final=True, detect_mult=3, my_discr=1,
                           your_discr=2, desired_min_tx_us=1, required_min_rx_us=0)
    assert final[:2] == bytes((0x20, 0b10_0_1_0_0_0_0))


@pytest.mark.parametrize("state", list(BfdState))
@pytest.mark.parametrize("diag", list(Diag))
def test_round_trip(state: BfdState, diag: Diag) -> None:
    pkt = ControlPacket(diag=diag, state=state, poll=state is BfdState.UP, final=state is BfdState.INIT,
                        cpi=True, detect_mult=4, my_discr=0xDEADBEEF,
                        your_discr=0 if state <= BfdState.DOWN else 77, desired_min_tx_us=300_000,
                        required_min_rx_us=200_000, required_min_echo_rx_us=0)
    data = pkt.encode()
    back = decode(data)
    assert back == ControlPacket(**{**{f: getattr(pkt, f) for f in pkt.__dataclass_fields__}, "raw": data})


def test_bytes_after_length_are_ignored() -> None:
    pkt = decode(BIRD_DOWN + b"\x00\x01")
    assert pkt.length == 24 and pkt.my_discr == 0x2A2B2C2D


def test_reserved_diag_is_kept_not_refused() -> None:
    pkt = decode(header(vers_diag=0x20 | 30))
    assert int(pkt.diag) == 30 and pkt.diag is Diag(30)
    assert pkt.diag.describe() == "reserved diagnostic 30"


def test_names_for_logs() -> None:
    assert [str(s) for s in BfdState] == ["AdminDown", "Down", "Init", "Up"]
    assert Diag.CONTROL_DETECTION_TIME_EXPIRED.describe() == "control detection time expired"
    assert Diag.NEIGHBOR_SIGNALED_SESSION_DOWN.describe() == "neighbor signaled session down"
    assert Diag.NONE.describe() == "no diagnostic"
    assert sorted(AUTH_KINDS) == ["keyed-md5", "keyed-sha1", "meticulous-keyed-md5",
                                  "meticulous-keyed-sha1", "simple"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "datagram of 0 bytes is shorter than a BFD Control packet (24)"),
    (BIRD_DOWN[:23], "datagram of 23 bytes is shorter than a BFD Control packet (24)"),
    (header(vers_diag=0x00), "version 0, only version 1 is supported"),
    (header(vers_diag=0x40), "version 2, only version 1 is supported"),
    (header(length=23), "Length 23 is less than the minimum (24)"),
    (header(flags=0x44, length=25) + b"\x01\x04", "Length 25 is less than the minimum (26 with the A bit set)"),
    (header(length=25), "Length 25 is more than the datagram's 24 bytes"),
    (header(mult=0), "Detect Mult is zero"),
    (header(flags=0x41), "Multipoint (M) bit is set"),
    (header(flags=0x70), "Poll and Final bits both set"),
    (header(my=0), "My Discriminator is zero"),
    (header(flags=0x80), "Your Discriminator is zero in state Init (allowed only in Down or AdminDown)"),
    (header(flags=0xC0), "Your Discriminator is zero in state Up (allowed only in Down or AdminDown)"),
])
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(BfdPacketError) as err:
        decode(data)
    assert err.value.reason == reason and str(err.value) == reason


def test_your_discriminator_zero_allowed_in_down_and_admin_down() -> None:
    assert decode(header(flags=0x00)).state is BfdState.ADMIN_DOWN
    assert decode(header(flags=0x40)).state is BfdState.DOWN


def with_auth(section: bytes, length: int | None = None) -> bytes:
    return header(flags=0x44, length=24 + len(section) if length is None else length) + section


def test_simple_password_section() -> None:
    # 4.2: Auth Type 1, Auth Len 3 + password, Auth Key ID, Password.
    pkt = decode(with_auth(b"\x01\x09\x05secret"))
    assert pkt.auth_present and pkt.length == 33
    assert pkt.auth is not None
    assert (pkt.auth.auth_type, pkt.auth.auth_len, pkt.auth.key_id, pkt.auth.sequence, pkt.auth.data) == \
        (AuthType.SIMPLE, 9, 5, 0, b"secret")


@pytest.mark.parametrize(("auth_type", "digest_len"), [(2, 16), (3, 16), (4, 20), (5, 20)])
def test_keyed_sections(auth_type: int, digest_len: int) -> None:
    # 4.3/4.4: Type, Len (24 for MD5, 28 for SHA1), Key ID, Reserved, Sequence Number, digest.
    digest = bytes(range(digest_len))
    section = bytes((auth_type, 8 + digest_len, 9, 0)) + (0xFFFFFFFE).to_bytes(4, "big") + digest
    pkt = decode(with_auth(section))
    assert pkt.auth is not None
    assert (int(pkt.auth.auth_type), pkt.auth.key_id, pkt.auth.sequence, pkt.auth.data) == \
        (auth_type, 9, 0xFFFFFFFE, digest)


@pytest.mark.parametrize(("data", "reason"), [
    (with_auth(b"\x00\x04\x01x"), "unknown Auth Type 0"),
    (with_auth(b"\x06\x04\x01x"), "unknown Auth Type 6"),
    (with_auth(b"\x01\x03\x01"), "Auth Len 3 of a simple password is outside 4-19"),
    (with_auth(b"\x01\x14\x01" + b"x" * 17), "Auth Len 20 of a simple password is outside 4-19"),
    (with_auth(b"\x01\x09\x01secre", length=32), "Auth Len 9 runs past the packet's Length 32"),
    (with_auth(b"\x02\x1c\x01\x00" + bytes(24)), "Auth Len 28 of keyed-md5 is not 24"),
    (with_auth(b"\x05\x18\x01\x00" + bytes(20)), "Auth Len 24 of meticulous-keyed-sha1 is not 28"),
    (with_auth(b"\x04\x1c\x01\x00" + bytes(23)), "Auth Len 28 runs past the packet's Length 51"),
    (with_auth(b"\x01\x04"), "Auth Len 4 runs past the packet's Length 26"),
])
def test_malformed_auth_section(data: bytes, reason: str) -> None:
    with pytest.raises(BfdPacketError) as err:
        decode(data)
    assert err.value.reason == reason


def test_poll_and_final_never_encoded_together() -> None:
    with pytest.raises(ValueError, match="both Poll and Final"):
        ControlPacket(poll=True, final=True, my_discr=1).encode()
