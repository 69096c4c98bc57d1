"""The BFD Control packet (RFC 5880 4.1, authentication sections 4.2-4.4) and the reception checks of
RFC 5880 6.8.6 that need no session.

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
   |                       My Discriminator                        |
   |                      Your Discriminator                       |
   |                    Desired Min TX Interval                    |
   |                   Required Min RX Interval                    |
   |                 Required Min Echo RX Interval                 |
   |   Auth Type   |   Auth Len    |    Auth Key ID   | ...        |  (only with the A bit)

Pure: no socket, no clock. A few hundred packets a second go through here, so the header is one
precompiled struct and a decoded packet is one object (two with an authentication section).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # auth.py imports this module; the type alone does not need it at run time
    from .auth import Authenticator

VERSION = 1
HEADER_LEN = 24
MIN_AUTH_LEN = 26  # the header and an authentication section's Type and Len (6.8.6)

_HEADER = struct.Struct("!BBBBIIIII")
# Auth Type, Auth Len, Auth Key ID, Reserved, Sequence Number (4.3, 4.4)
_KEYED_HEAD = struct.Struct("!BBBxI")
KEYED_HEAD_LEN = _KEYED_HEAD.size      # 8: the digest starts here within the section

# Flag bits of the second octet (after the two State bits).
POLL, FINAL, CPI, AUTH, DEMAND, MULTIPOINT = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


class BfdState(enum.IntEnum):
    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    def __str__(self) -> str:
        return _STATE_NAMES[self]


_STATE_NAMES = {BfdState.ADMIN_DOWN: "AdminDown", BfdState.DOWN: "Down", BfdState.INIT: "Init",
                BfdState.UP: "Up"}


class Diag(enum.IntEnum):
    """The Diagnostic field: why the sender's session last changed state (RFC 5880 4.1)."""

    NONE = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8

    @classmethod
    def _missing_(cls, value: object) -> Diag | None:
        # 9-31 are reserved for future use: a peer may send them and that is no reason to drop its
        # packet, so they get members of their own (RESERVED_9 ...), made once.
        if isinstance(value, int) and 9 <= value <= 31:
            member = int.__new__(cls, value)
            member._name_ = f"RESERVED_{value}"
            member._value_ = value
            found = cls._value2member_map_.setdefault(value, member)
            assert isinstance(found, Diag)
            return found
        return None

    def describe(self) -> str:
        """The diagnostic in words, for logs: "control detection time expired"."""
        if self > Diag.REVERSE_CONCATENATED_PATH_DOWN:
            return f"reserved diagnostic {int(self)}"
        return "no diagnostic" if self is Diag.NONE else self.name.lower().replace("_", " ")

    def __str__(self) -> str:
        return self.describe()


class AuthType(enum.IntEnum):
    """Auth Type of the authentication section (RFC 5880 4.1); `kind` is the config's name."""

    SIMPLE = 1
    KEYED_MD5 = 2
    METICULOUS_KEYED_MD5 = 3
    KEYED_SHA1 = 4
    METICULOUS_KEYED_SHA1 = 5

    @property
    def kind(self) -> str:
        return self.name.lower().replace("_", "-")

    @property
    def meticulous(self) -> bool:
        return self in (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1)

    @property
    def digest_len(self) -> int:
        """Length of the Auth Key/Digest field: 16 (MD5), 20 (SHA1), 0 for a simple password."""
        return _DIGEST_LEN[self]


_DIGEST_LEN = {AuthType.SIMPLE: 0, AuthType.KEYED_MD5: 16, AuthType.METICULOUS_KEYED_MD5: 16,
               AuthType.KEYED_SHA1: 20, AuthType.METICULOUS_KEYED_SHA1: 20}
AUTH_KINDS = {t.kind: t for t in AuthType}

# Lookups by field value: faster than calling the enum for every packet.
_STATES = tuple(BfdState)
_DIAGS = tuple(Diag(v) for v in range(32))
_AUTH_TYPES: dict[int, AuthType] = {int(t): t for t in AuthType}


class BfdPacketError(ValueError):
    """A received packet that RFC 5880 6.8.6 says to discard; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuthSection:
    """The authentication section as received (4.2-4.4). `data` is the password (simple) or the
    digest (keyed MD5/SHA1); `sequence` is 0 for a simple password, which has none."""

    auth_type: AuthType
    auth_len: int
    key_id: int
    sequence: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """One Control packet. Decoded: every field as received and `raw` the datagram; built for
    sending: `length`, `auth_present` and `auth` are worked out by encode()."""

    version: int = VERSION
    diag: Diag = Diag.NONE
    state: BfdState = BfdState.DOWN
    poll: bool = False
    final: bool = False
    cpi: bool = False
    auth_present: bool = False
    demand: bool = False
    multipoint: bool = False
    detect_mult: int = 3
    length: int = HEADER_LEN
    my_discr: int = 0
    your_discr: int = 0
    desired_min_tx_us: int = 1_000_000
    required_min_rx_us: int = 1_000_000
    required_min_echo_rx_us: int = 0
    auth: AuthSection | None = None
    raw: bytes = b""

    def encode(self, auth: Authenticator | None = None) -> bytes:
        """The packet on the wire, signed by `auth` when given (which then sets A and the Length).
        The Multipoint bit is never sent (4.1: it MUST be zero)."""
        return encode_control(state=self.state, diag=self.diag, poll=self.poll, final=self.final,
                              cpi=self.cpi, demand=self.demand, detect_mult=self.detect_mult,
                              my_discr=self.my_discr, your_discr=self.your_discr,
                              desired_min_tx_us=self.desired_min_tx_us,
                              required_min_rx_us=self.required_min_rx_us,
                              required_min_echo_rx_us=self.required_min_echo_rx_us, auth=auth)


def encode_control(*, state: BfdState, diag: Diag, detect_mult: int, my_discr: int, your_discr: int,
                   desired_min_tx_us: int, required_min_rx_us: int, required_min_echo_rx_us: int = 0,
                   poll: bool = False, final: bool = False, cpi: bool = False, demand: bool = False,
                   auth: Authenticator | None = None) -> bytes:
    """Encode without building a ControlPacket first (the machine's path, once per packet sent)."""
    if poll and final:
        raise ValueError("a BFD packet never carries both Poll and Final (RFC 5880 6.5)")
    flags = state << 6 | (POLL if poll else 0) | (FINAL if final else 0) | (CPI if cpi else 0) \
        | (DEMAND if demand else 0)
    if auth is None:
        return _HEADER.pack(VERSION << 5 | diag, flags, detect_mult, HEADER_LEN, my_discr, your_discr,
                            desired_min_tx_us, required_min_rx_us, required_min_echo_rx_us)
    header = _HEADER.pack(VERSION << 5 | diag, flags | AUTH, detect_mult, HEADER_LEN + auth.section_len,
                          my_discr, your_discr, desired_min_tx_us, required_min_rx_us,
                          required_min_echo_rx_us)
    return auth.sign(header)


def decode(data: bytes) -> ControlPacket:
    """Decode a received datagram, with the checks of RFC 5880 6.8.6 that need no session (in the
    RFC's order). Raises BfdPacketError. Bytes after Length are ignored, as the RFC allows."""
    size = len(data)
    if size < HEADER_LEN:
        raise BfdPacketError(f"datagram of {size} bytes is shorter than a BFD Control packet ({HEADER_LEN})")
    vers_diag, flags, mult, length, my_discr, your_discr, tx, rx, echo = _HEADER.unpack_from(data)
    version = vers_diag >> 5
    if version != VERSION:
        raise BfdPacketError(f"version {version}, only version {VERSION} is supported")
    has_auth = flags & AUTH
    if length < (MIN_AUTH_LEN if has_auth else HEADER_LEN):
        raise BfdPacketError(f"Length {length} is less than the minimum "
                             f"({f'{MIN_AUTH_LEN} with the A bit set' if has_auth else HEADER_LEN})")
    if length > size:
        raise BfdPacketError(f"Length {length} is more than the datagram's {size} bytes")
    if mult == 0:
        raise BfdPacketError("Detect Mult is zero")
    if flags & MULTIPOINT:
        raise BfdPacketError("Multipoint (M) bit is set")
    if flags & POLL and flags & FINAL:  # 6.5 forbids sending both; BIRD drops such packets too
        raise BfdPacketError("Poll and Final bits both set")
    if my_discr == 0:
        raise BfdPacketError("My Discriminator is zero")
    state = _STATES[flags >> 6]
    if your_discr == 0 and state >= BfdState.INIT:
        raise BfdPacketError(f"Your Discriminator is zero in state {state} "
                             "(allowed only in Down or AdminDown)")
    auth = _decode_auth(data, length) if has_auth else None
    return ControlPacket(VERSION, _DIAGS[vers_diag & 0x1F], state, bool(flags & POLL), bool(flags & FINAL),
                         bool(flags & CPI), bool(has_auth), bool(flags & DEMAND), False, mult, length,
                         my_discr, your_discr, tx, rx, echo, auth, data)


def _decode_auth(data: bytes, length: int) -> AuthSection:
    type_value, auth_len = data[HEADER_LEN], data[HEADER_LEN + 1]
    auth_type = _AUTH_TYPES.get(type_value)
    if auth_type is None:
        raise BfdPacketError(f"unknown Auth Type {type_value}")
    if auth_type is AuthType.SIMPLE:
        if not 4 <= auth_len <= 19:  # 3 + a password of 1 to 16 octets (4.2)
            raise BfdPacketError(f"Auth Len {auth_len} of a simple password is outside 4-19")
    elif auth_len != KEYED_HEAD_LEN + auth_type.digest_len:
        raise BfdPacketError(f"Auth Len {auth_len} of {auth_type.kind} is not "
                             f"{KEYED_HEAD_LEN + auth_type.digest_len}")
    if HEADER_LEN + auth_len > length:
        raise BfdPacketError(f"Auth Len {auth_len} runs past the packet's Length {length}")
    key_id = data[HEADER_LEN + 2]
    if auth_type is AuthType.SIMPLE:
        password = bytes(data[HEADER_LEN + 3:HEADER_LEN + auth_len])
        return AuthSection(auth_type, auth_len, key_id, 0, password)
    _auth_type, _auth_len, _key_id, sequence = _KEYED_HEAD.unpack_from(data, HEADER_LEN)
    start = HEADER_LEN + KEYED_HEAD_LEN
    return AuthSection(auth_type, auth_len, key_id, sequence, bytes(data[start:start + auth_type.digest_len]))
