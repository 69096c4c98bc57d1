"""BFD authentication (RFC 5880 4.2-4.4, 6.7): simple password, keyed and meticulous keyed MD5 and
SHA1. One Authenticator per session: it signs what the session sends (keeping bfd.XmitAuthSeq) and
verifies what it receives (keeping bfd.RcvAuthSeq and bfd.AuthSeqKnown).

The keyed digests are not HMACs: the packet is hashed with the key, zero-padded to the digest's
length, in the digest field (6.7.3, 6.7.4), and the result is written there.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .packet import AUTH_KINDS, HEADER_LEN, KEYED_HEAD_LEN, AuthType, ControlPacket

_SIMPLE_HEAD = struct.Struct("!BBB")
_KEYED_HEAD = struct.Struct("!BBBxI")
_HASHES: dict[AuthType, Callable[[bytes], hashlib._Hash]] = {
    AuthType.KEYED_MD5: hashlib.md5, AuthType.METICULOUS_KEYED_MD5: hashlib.md5,
    AuthType.KEYED_SHA1: hashlib.sha1, AuthType.METICULOUS_KEYED_SHA1: hashlib.sha1}
_SEQ_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """One session's authentication: `kind` is simple | keyed-md5 | meticulous-keyed-md5 |
    keyed-sha1 | meticulous-keyed-sha1; the secret is 1-16 octets (1-20 for SHA1)."""

    kind: str
    key_id: int
    secret: bytes = field(repr=False)  # never in a log line or a traceback

    def __post_init__(self) -> None:
        if self.kind not in AUTH_KINDS:
            raise ValueError(f"BFD authentication {self.kind!r} is not one of {', '.join(AUTH_KINDS)}")
        if not 0 <= self.key_id <= 255:
            raise ValueError(f"BFD auth key id {self.key_id} is outside 0-255")
        longest = 20 if "sha1" in self.kind else 16
        if not 1 <= len(self.secret) <= longest:
            raise ValueError(f"BFD {self.kind} secret of {len(self.secret)} octets: it must have 1-{longest}")

    @property
    def auth_type(self) -> AuthType:
        return AUTH_KINDS[self.kind]


class Authenticator:
    """Signs and verifies one session's packets (RFC 5880 6.7)."""

    def __init__(self, config: AuthConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.auth_type = config.auth_type
        self.kind = config.kind
        digest_len = self.auth_type.digest_len
        self.section_len = 3 + len(config.secret) if digest_len == 0 else KEYED_HEAD_LEN + digest_len
        self._hash = _HASHES.get(self.auth_type)
        # The key as it stands in the digest field while hashing: zero-padded (6.7.3, 6.7.4).
        self._padded_key = config.secret.ljust(digest_len, b"\0")
        # 6.8.1: bfd.XmitAuthSeq MUST start at a random 32-bit value.
        self.xmit_seq = (rng or random.SystemRandom()).getrandbits(32)
        self.rcv_seq = 0
        self.seq_known = False
        self._last_valid: float | None = None
        # 6.8.1: bfd.AuthSeqKnown goes back to 0 when no valid packet came for twice the Detection
        # Time; the machine keeps this at 2 x its detection time.
        self.forget_after = math.inf

    # -- sending -----------------------------------------------------------------------------------

    def sign(self, header: bytes) -> bytes:
        """The whole packet: `header` (24 octets, A bit set, Length counting our section) and the
        authentication section. Every keyed packet takes the next sequence number: required for the
        meticulous kinds, allowed for the others (6.7.3) and what makes a replay useless."""
        config = self.config
        if self._hash is None:
            return header + _SIMPLE_HEAD.pack(self.auth_type, self.section_len, config.key_id) + config.secret
        self.xmit_seq = (self.xmit_seq + 1) % _SEQ_MOD
        packet = header + _KEYED_HEAD.pack(self.auth_type, self.section_len, config.key_id, self.xmit_seq) \
            + self._padded_key
        return packet[:HEADER_LEN + KEYED_HEAD_LEN] + self._hash(packet).digest()

    # -- receiving ---------------------------------------------------------------------------------

    def reset_sequence(self) -> None:
        """Forget bfd.RcvAuthSeq: the next correctly signed packet is taken with any sequence number."""
        self.seq_known = False

    def verify(self, pkt: ControlPacket, now: float) -> str | None:
        """None when `pkt` passes 6.7's checks (and then its sequence number is remembered), else the
        reason for dropping it. Never says more about the secret than "wrong"."""
        section = pkt.auth
        if section is None:
            return f"packet not authenticated (A bit clear) but {self.kind} is configured"
        if section.auth_type is not self.auth_type:
            return f"authentication {section.auth_type.kind} received, {self.kind} configured"
        if section.key_id != self.config.key_id:
            return f"Auth Key ID {section.key_id} received, {self.config.key_id} configured"
        if self._hash is None:
            if not hmac.compare_digest(section.data, self.config.secret):
                return "wrong password (simple authentication)"
            self._last_valid = now
            return None
        if self.seq_known and self._last_valid is not None and now - self._last_valid >= self.forget_after:
            self.seq_known = False
        seq = section.sequence
        if self.seq_known:
            ahead = (seq - self.rcv_seq) % _SEQ_MOD
            window = 3 * pkt.detect_mult
            lowest = 1 if self.auth_type.meticulous else 0  # meticulous: never the same number twice
            if ahead < lowest or ahead > _SEQ_MOD // 2:
                return f"sequence number {seq} replayed (last accepted {self.rcv_seq})"
            if ahead > window:
                return (f"sequence number {seq} too far ahead of {self.rcv_seq} "
                        f"(window {window}: 3 x Detect Mult)")
        start = HEADER_LEN + KEYED_HEAD_LEN
        assert self._hash is not None
        data = pkt.raw[:start] + self._padded_key + pkt.raw[start + len(self._padded_key):pkt.length]
        if not hmac.compare_digest(self._hash(data).digest(), section.data):
            return f"wrong {self.kind} digest (a different key?)"
        self.rcv_seq = seq
        self.seq_known = True
        self._last_valid = now
        return None
