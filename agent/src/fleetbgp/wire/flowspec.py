"""FlowSpec (RFC 8955 for IPv4, RFC 8956 for IPv6): match rules, their NLRI, and the actions.

A FlowSpec "route" is a match rule (the NLRI: destination/source prefix, protocol, ports, ...) and
the actions to apply to the traffic it matches, carried as extended communities (traffic-rate,
traffic-action, redirect, traffic-marking) and, for redirect-to-IP, the MP_REACH next hop.

This module is the codec: components, their encoding and decoding, the action communities. The
ExaBGP text syntax (reading `match`/`then`, writing the rule back) is fleetbgp.grammar.flowspec.

Wire items are kept as bytes like unicast ones (`FlowRule.nlri()`, length prefix included); the
splitter registered for SAFI 133 checks each NLRI fully when an UPDATE is read.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import nlri as _nlri
from .constants import ErrCode, UpdateSub
from .errors import BGPError

if TYPE_CHECKING:
    from .attributes import Attributes

log = logging.getLogger(__name__)

SAFI_FLOWSPEC = 133
AFI_IPV4 = 1
AFI_IPV6 = 2
MAX_NLRI_LENGTH = 4095  # RFC 8955 4.1: 0xfnnn, 12 bits
_EXTENDED_FROM = 240  # RFC 8955 4.1: lengths from 240 up take two octets


class FlowSpecError(ValueError):
    """A rule that cannot be built or read. str(): '<component>: <reason>'."""

    def __init__(self, component: str, reason: str) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Component types (IANA "Flow Spec Component Types")

DESTINATION = 1
SOURCE = 2
PROTOCOL = 3  # IPv4 IP protocol, IPv6 upper-layer protocol (next header)
PORT = 4
DESTINATION_PORT = 5
SOURCE_PORT = 6
ICMP_TYPE = 7
ICMP_CODE = 8
TCP_FLAGS = 9
PACKET_LENGTH = 10
DSCP = 11
FRAGMENT = 12
FLOW_LABEL = 13  # IPv6 only (RFC 8956 3.7)

# Numeric operator octet (RFC 8955 4.2.1.1): | e | a | len | 0 | lt | gt | eq |
# Bitmask operator octet (RFC 8955 4.2.1.2): | e | a | len | 0 | 0 | not | m |
EOL = 0x80
AND = 0x40
LEN_MASK = 0x30
LT = 0x04
GT = 0x02
EQ = 0x01
NOT = 0x02
MATCH = 0x01
_NUMERIC_BITS = AND | LT | GT | EQ  # 0x08 is reserved: ignored on decode
_BITMASK_BITS = AND | NOT | MATCH  # 0x0c is reserved: ignored on decode

_FRAGMENT_DEFINED = {AFI_IPV4: 0x0F, AFI_IPV6: 0x0E}  # RFC 8956 3.6: no DF bit in IPv6


@dataclass(frozen=True, slots=True)
class Kind:
    """What the codec knows of a component type; `name` is ExaBGP's, for error messages."""

    type: int
    name: str
    afis: tuple[int, ...]
    bitmask: bool = False
    prefix: bool = False
    limit: int = 0  # largest value a rule may carry


_KINDS_V4 = {k.type: k for k in (
    Kind(DESTINATION, "destination", (AFI_IPV4,), prefix=True),
    Kind(SOURCE, "source", (AFI_IPV4,), prefix=True),
    Kind(PROTOCOL, "protocol", (AFI_IPV4,), limit=0xFF),
    Kind(PORT, "port", (AFI_IPV4,), limit=0xFFFF),
    Kind(DESTINATION_PORT, "destination-port", (AFI_IPV4,), limit=0xFFFF),
    Kind(SOURCE_PORT, "source-port", (AFI_IPV4,), limit=0xFFFF),
    Kind(ICMP_TYPE, "icmp-type", (AFI_IPV4,), limit=0xFF),
    Kind(ICMP_CODE, "icmp-code", (AFI_IPV4,), limit=0xFF),
    Kind(TCP_FLAGS, "tcp-flags", (AFI_IPV4,), bitmask=True, limit=0xFFFF),
    Kind(PACKET_LENGTH, "packet-length", (AFI_IPV4,), limit=0xFFFF),
    Kind(DSCP, "dscp", (AFI_IPV4,), limit=0x3F),
    Kind(FRAGMENT, "fragment", (AFI_IPV4,), bitmask=True, limit=0x0F),
)}
_KINDS_V6 = {k.type: k for k in (
    Kind(DESTINATION, "destination", (AFI_IPV6,), prefix=True),
    Kind(SOURCE, "source", (AFI_IPV6,), prefix=True),
    Kind(PROTOCOL, "next-header", (AFI_IPV6,), limit=0xFF),
    *(Kind(k.type, k.name, (AFI_IPV6,), k.bitmask, k.prefix, k.limit)
      for k in _KINDS_V4.values() if PORT <= k.type <= PACKET_LENGTH),
    # RFC 8956 3.5: type 11 matches the 6-bit DSCP of the Traffic Class; ExaBGP calls it
    # traffic-class for IPv6.
    Kind(DSCP, "traffic-class", (AFI_IPV6,), limit=0x3F),
    Kind(FRAGMENT, "fragment", (AFI_IPV6,), bitmask=True, limit=0x0E),
    Kind(FLOW_LABEL, "flow-label", (AFI_IPV6,), limit=0xFFFFF),
)}
KINDS: dict[int, dict[int, Kind]] = {AFI_IPV4: _KINDS_V4, AFI_IPV6: _KINDS_V6}


def family_text(afi: int) -> str:
    return {AFI_IPV4: "ipv4 flow", AFI_IPV6: "ipv6 flow"}.get(afi, f"afi {afi} flow")


# ---------------------------------------------------------------------------------------------
# Components


@dataclass(frozen=True, slots=True)
class PrefixComponent:
    """Type 1 or 2. address: the full 4/16 octets, zero outside bits offset..length."""

    type: int
    length: int
    address: bytes
    offset: int = 0

    def encode(self, afi: int) -> bytes:
        if afi == AFI_IPV4:
            return bytes((self.type, self.length)) + self.address[:(self.length + 7) // 8]
        bits = self.length - self.offset
        size = (bits + 7) // 8
        pattern = b""
        if bits > 0:
            value = int.from_bytes(self.address, "big") >> (128 - self.length) & ((1 << bits) - 1)
            pattern = (value << (size * 8 - bits)).to_bytes(size, "big")
        return bytes((self.type, self.length, self.offset)) + pattern


@dataclass(frozen=True, slots=True)
class Operation:
    """One {operator, value} pair. op: the AND and comparison bits (no end-of-list, no length)."""

    op: int
    value: int


@dataclass(frozen=True, slots=True)
class OperatorComponent:
    """Types 3-13: a list of operations, ORed unless an operation has the AND bit."""

    type: int
    ops: tuple[Operation, ...]

    def encode(self, afi: int) -> bytes:
        out = bytearray((self.type,))
        last = len(self.ops) - 1
        for i, operation in enumerate(self.ops):
            value = operation.value
            if value <= 0xFF:
                size, code = 1, 0x00
            elif value <= 0xFFFF:
                size, code = 2, 0x10
            elif value <= 0xFFFFFFFF:
                size, code = 4, 0x20
            else:
                size, code = 8, 0x30
            op = operation.op | code | (EOL if i == last else 0)
            if i == 0:
                op &= ~AND  # RFC 8955 4.2.1.1: the first AND bit is always unset
            out.append(op)
            out += value.to_bytes(size, "big")
        return bytes(out)


Component = PrefixComponent | OperatorComponent


# ---------------------------------------------------------------------------------------------
# FlowRule


@dataclass(frozen=True, slots=True)
class FlowRule:
    """One FlowSpec NLRI; components sorted by type (RFC 8955 4.2)."""

    afi: int
    components: tuple[Component, ...]

    @property
    def family(self) -> _nlri.Family:
        return _nlri.Family(self.afi, SAFI_FLOWSPEC)

    def body(self) -> bytes:
        """The components, without the NLRI length."""
        return b"".join(c.encode(self.afi) for c in self.components)

    def nlri(self) -> bytes:
        """Wire NLRI including its 1- or 2-octet length (RFC 8955 4.1)."""
        body = self.body()
        n = len(body)
        if n < _EXTENDED_FROM:
            return bytes((n,)) + body
        if n <= MAX_NLRI_LENGTH:
            return struct.pack("!H", 0xF000 | n) + body
        raise FlowSpecError("match", f"the rule encodes to {n} bytes, more than the "
                            f"{MAX_NLRI_LENGTH} a FlowSpec NLRI can carry (RFC 8955 4.1)")


# ---------------------------------------------------------------------------------------------
# Wire -> FlowRule

# RFC 8955 4.2 says an NLRI "not encoded as specified ... is considered malformed", and section 10
# defers error handling to RFC 7606. The NLRI length locates every NLRI in the field, so one whose
# components are malformed (unknown or out-of-order or repeated type, truncated operator list,
# value too large, bad prefix) can be removed alone: that NLRI is treat-as-withdraw (RFC 7606 2,
# the split drops it; it was never accepted, so nothing stays installed) and the session stays up.
# A length that overruns the NLRI field means the next NLRI cannot be found: that is a session
# reset (RFC 7606 5.3), raised as BGPError by split_nlri.


def _read_length(data: bytes | memoryview, pos: int, end: int, fam: str) -> tuple[int, int]:
    first = data[pos]
    if first & 0xF0 == 0xF0:
        if pos + 2 > end:
            raise FlowSpecError("length", f"{fam} NLRI length truncated")
        return ((first & 0x0F) << 8) | data[pos + 1], pos + 2
    return first, pos + 1


def decode_nlri(afi: int, data: bytes | memoryview) -> FlowRule:
    """One NLRI (length prefix included) -> FlowRule. Raises FlowSpecError on malformed input."""
    if afi not in KINDS:
        raise FlowSpecError("family", f"AFI {afi} has no FlowSpec")
    data = bytes(data)
    end = len(data)
    fam = family_text(afi)
    if end == 0:
        raise FlowSpecError("length", f"empty {fam} NLRI")
    length, pos = _read_length(data, 0, end, fam)
    if pos + length != end:
        raise FlowSpecError("length", f"{fam} NLRI length {length} does not match the "
                            f"{end - pos} bytes that follow")
    return _decode_body(afi, data, pos, end)


def _decode_body(afi: int, data: bytes, pos: int, end: int) -> FlowRule:
    kinds = KINDS[afi]
    comps: list[Component] = []
    last = 0
    while pos < end:
        ctype = data[pos]
        kind = kinds.get(ctype)
        if kind is None:
            raise FlowSpecError(f"type {ctype}", f"unknown component type for {family_text(afi)}")
        if ctype == last:
            raise FlowSpecError(kind.name, "present twice (RFC 8955 4.2: each type at most once)")
        if ctype < last:
            raise FlowSpecError(kind.name, f"type {ctype} after type {last}: components must be in "
                                "increasing type order (RFC 8955 4.2)")
        last = ctype
        pos += 1
        if kind.prefix:
            comp, pos = _decode_prefix(afi, kind, data, pos, end)
            comps.append(comp)
            continue
        ops: list[Operation] = []
        mask = _BITMASK_BITS if kind.bitmask else _NUMERIC_BITS
        while True:
            if pos >= end:
                raise FlowSpecError(kind.name, "operator list ends without the end-of-list bit")
            byte = data[pos]
            size = 1 << ((byte & LEN_MASK) >> 4)
            if pos + 1 + size > end:
                raise FlowSpecError(kind.name, f"a {size}-byte value runs past the end of the NLRI")
            value = int.from_bytes(data[pos + 1:pos + 1 + size], "big")
            op = byte & mask
            if not ops:
                op &= ~AND  # RFC 8955 4.2.1.1: treated as unset in the first operator
            if kind.type == FRAGMENT:
                value &= _FRAGMENT_DEFINED[afi]  # reserved bits: ignored (RFC 8955/8956)
            elif value > kind.limit:
                raise FlowSpecError(kind.name, f"value {value} is out of range 0-{kind.limit}")
            ops.append(Operation(op, value))
            pos += 1 + size
            if byte & EOL:
                break
        comps.append(OperatorComponent(ctype, tuple(ops)))
    if not comps:
        raise FlowSpecError("match", "NLRI carries no component (it would match every packet)")
    return FlowRule(afi, tuple(comps))


def _decode_prefix(afi: int, kind: Kind, data: bytes, pos: int,
                   end: int) -> tuple[PrefixComponent, int]:
    if afi == AFI_IPV4:
        if pos >= end:
            raise FlowSpecError(kind.name, "prefix length missing")
        length = data[pos]
        if length > 32:
            raise FlowSpecError(kind.name, f"prefix length {length} > 32")
        size = (length + 7) // 8
        if pos + 1 + size > end:
            raise FlowSpecError(kind.name, "prefix runs past the end of the NLRI")
        value = int.from_bytes(data[pos + 1:pos + 1 + size].ljust(4, b"\x00"), "big")
        value &= ~((1 << (32 - length)) - 1) & 0xFFFFFFFF
        return PrefixComponent(kind.type, length, value.to_bytes(4, "big")), pos + 1 + size
    if pos + 2 > end:
        raise FlowSpecError(kind.name, "prefix length and offset missing")
    length, offset = data[pos], data[pos + 1]
    if (length, offset) != (0, 0) and not offset < length <= 128:
        raise FlowSpecError(kind.name, f"prefix length {length} with offset {offset} is outside "
                            "offset < length <= 128 (RFC 8956 3.1)")
    bits = length - offset
    size = (bits + 7) // 8
    if pos + 2 + size > end:
        raise FlowSpecError(kind.name, "prefix pattern runs past the end of the NLRI")
    value = 0
    if bits > 0:
        pattern = int.from_bytes(data[pos + 2:pos + 2 + size], "big") >> (size * 8 - bits)
        value = pattern << (128 - length)
    return PrefixComponent(kind.type, length, value.to_bytes(16, "big"), offset), pos + 2 + size


def split_nlri(family: tuple[int, int], data: bytes | memoryview,
               notes: list[str] | None = None) -> list[bytes]:
    """Split an MP_(UN)REACH NLRI field into FlowSpec NLRI items (length prefix included).

    An item whose components are malformed is dropped (treat-as-withdraw, see above) and counted
    in one note for the field (in `notes`, the UPDATE's, logged once per UPDATE; logged here when
    there is none): a field of 2,000 malformed items once meant 2,000 log lines. One whose length
    overruns the field raises BGPError (session reset, RFC 7606 5.3)."""
    afi = family[0]
    fam = _nlri.family_name(family)
    out: list[bytes] = []
    malformed = 0
    first: str | None = None
    pos = 0
    end = len(data)
    while pos < end:
        try:
            length, start = _read_length(data, pos, end, fam)
        except FlowSpecError as exc:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=str(exc)) from None
        stop = start + length
        if stop > end:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{fam} NLRI length {length} runs past the end of the NLRI field")
        item = bytes(data[pos:stop])
        body_at = start - pos
        pos = stop
        try:
            rule = _decode_body(afi, item, body_at, len(item))
        except FlowSpecError as exc:
            malformed += 1
            if first is None:
                first = f"{_short_hex(item)} ({exc})"
            continue
        # Normalised form (reserved bits cleared, minimal value widths) so one rule has one key.
        out.append(rule.nlri())
    if malformed:
        note = (f"{malformed} malformed {fam} NLRI treated as withdrawn (RFC 7606), the first: {first}"
                if malformed > 1 else f"{fam} NLRI {first} is malformed: treated as withdrawn (RFC 7606)")
        if notes is None:
            log.warning("%s", note)
        else:
            notes.append(note)
    return out


def _short_hex(item: bytes, limit: int = 64) -> str:
    text = item.hex()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(item)} bytes)"


def _format_unknown(family: tuple[int, int], item: bytes) -> str:
    """Until fleetbgp.grammar.flowspec registers the ExaBGP text form: the bytes."""
    return f"flow 0x{item.hex()}"


_nlri.register_safi(SAFI_FLOWSPEC, split_nlri, _format_unknown)


# ---------------------------------------------------------------------------------------------
# Actions (RFC 8955 7: extended communities)

TRAFFIC_RATE = 0x8006  # 2-octet AS, IEEE float bytes/s; 0 = discard
TRAFFIC_ACTION = 0x8007  # last octet: S (0x02) sample, T (0x01) terminal
REDIRECT_AS2 = 0x8008  # 2-octet AS : 4-octet value (route target of the VRF)
REDIRECT_IPV4 = 0x8108  # IPv4 address : 2-octet value
REDIRECT_AS4 = 0x8208  # 4-octet AS : 2-octet value
TRAFFIC_MARKING = 0x8009  # last octet: DSCP
TRAFFIC_RATE_PACKETS = 0x800C  # RFC 8955 7 (IANA, from draft-ietf-idr-flowspec-packet-rate)
REDIRECT_NEXT_HOP = 0x0800  # draft-simpson-idr-flowspec-redirect: redirect to the MP next hop
REDIRECT_NEXT_HOP_COPY = 0x01  # its last octet: copy, not redirect


def action_community(kind: int, payload: bytes) -> bytes:
    return struct.pack("!H", kind) + payload


def rate_community(kind: int, rate: float) -> bytes:
    return action_community(kind, struct.pack("!Hf", 0, rate))


@dataclass(frozen=True, slots=True)
class FlowActions:
    """What to do with matching traffic.

    extended_communities: 8 octets each, sorted (the attribute is a set).
    redirect_ip: the next hop to put in MP_REACH_NLRI for redirect-to-IP (ExaBGP 'redirect IP'
    and 'copy IP'; with the 0x0800 community), None when there is none.
    communities / large_communities: extra plain communities, as on routes."""

    extended_communities: tuple[bytes, ...] = ()
    redirect_ip: str | None = None
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()

    def ext_community_values(self) -> tuple[int, ...]:
        """The extended communities as 64-bit ints (Attributes.ext_communities)."""
        return tuple(int.from_bytes(c, "big") for c in self.extended_communities)

    def attributes(self, **fields: Any) -> Attributes:
        """An Attributes set carrying these actions (fields: origin, as_path, med, ...)."""
        from .attributes import Attributes  # attributes imports nlri, which imports this module

        return Attributes.make(ext_communities=self.ext_community_values(),
                               communities=self.communities,
                               large_communities=self.large_communities,
                               next_hop=self.redirect_ip, **fields)


__all__ = [
    "AFI_IPV4", "AFI_IPV6", "KINDS", "SAFI_FLOWSPEC", "Component", "FlowActions", "FlowRule",
    "FlowSpecError", "Kind", "Operation", "OperatorComponent", "PrefixComponent", "decode_nlri",
    "split_nlri",
]
