"""Path attributes: an immutable, interned set, and its wire codec (RFC 4271, 6793, 7606).

Routes share their attribute set: 100,000 routes with the same MED and communities point at one
`Attributes` object, and its encoding is computed once per session context.
"""

from __future__ import annotations

import ipaddress
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .constants import AS_TRANS, AttrCode, AttrFlag, ErrCode, SegType, UpdateSub
from .errors import BGPError

OPTIONAL = AttrFlag.OPTIONAL
TRANSITIVE = AttrFlag.TRANSITIVE
PARTIAL = AttrFlag.PARTIAL
EXTLEN = AttrFlag.EXTENDED_LENGTH

ASPath = tuple[tuple[int, tuple[int, ...]], ...]
# Every field of an `Attributes`, in `_FIELDS` order: the intern key, equality and pickling.
_Key = tuple[int, ASPath, str | None, int | None, int | None, bool, tuple[int, str] | None,
             tuple[int, ...], tuple[int, ...], tuple[tuple[int, int, int], ...],
             tuple[tuple[int, int, bytes], ...]]

_INTERN: weakref.WeakValueDictionary[_Key, Attributes] = weakref.WeakValueDictionary()


class Attributes:
    """One set of path attributes. Build with `Attributes.make(...)`; never mutate.

    next_hop is an address string, 'self' (resolved per session when sent), or None.
    communities are 32-bit ints, ext_communities 64-bit ints, large communities (a, b, c) triples,
    other holds unknown/unmodelled attributes as (flags, code, value) to pass on or show.
    """

    __slots__ = ("origin", "as_path", "next_hop", "med", "local_pref", "atomic_aggregate",
                 "aggregator", "communities", "ext_communities", "large_communities", "other",
                 "_key", "_hash", "__weakref__")

    origin: int
    as_path: ASPath
    next_hop: str | None
    med: int | None
    local_pref: int | None
    atomic_aggregate: bool
    aggregator: tuple[int, str] | None
    communities: tuple[int, ...]
    ext_communities: tuple[int, ...]
    large_communities: tuple[tuple[int, int, int], ...]
    other: tuple[tuple[int, int, bytes], ...]
    _key: _Key
    _hash: int

    @classmethod
    def make(cls, *, origin: int = 0, as_path: ASPath = (), next_hop: str | None = None,
             med: int | None = None, local_pref: int | None = None, atomic_aggregate: bool = False,
             aggregator: tuple[int, str] | None = None, communities: tuple[int, ...] = (),
             ext_communities: tuple[int, ...] = (),
             large_communities: tuple[tuple[int, int, int], ...] = (),
             other: tuple[tuple[int, int, bytes], ...] = ()) -> Attributes:
        key: _Key = (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator,
                     communities, ext_communities, large_communities, other)
        found = _INTERN.get(key)
        if found is not None:
            return found
        self = object.__new__(cls)
        (self.origin, self.as_path, self.next_hop, self.med, self.local_pref,
         self.atomic_aggregate, self.aggregator, self.communities, self.ext_communities,
         self.large_communities, self.other) = key
        self._key = key
        self._hash = hash(key)
        _INTERN[key] = self
        return self

    def replace(self, **changes: Any) -> Attributes:
        # Any: one value type per field, which a dict cannot say (make() checks by keyword).
        fields: dict[str, Any] = dict(zip(_FIELDS, self._key, strict=True))
        fields.update(changes)
        return Attributes.make(**fields)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Attributes) and self._key == other._key)

    def __reduce__(self) -> tuple[Callable[[_Key], Attributes], tuple[_Key]]:
        return (_rebuild, (self._key,))

    def __repr__(self) -> str:
        shown = {k: v for k, v in zip(_FIELDS, self._key, strict=True) if v not in (None, (), False)}
        return f"Attributes({shown})"

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(_FIELDS, self._key, strict=True))


_FIELDS = ("origin", "as_path", "next_hop", "med", "local_pref", "atomic_aggregate", "aggregator",
           "communities", "ext_communities", "large_communities", "other")


def _rebuild(key: _Key) -> Attributes:
    fields: dict[str, Any] = dict(zip(_FIELDS, key, strict=True))
    return Attributes.make(**fields)


EMPTY = Attributes.make()


# ---------------------------------------------------------------------------------------------
# Encoding


@dataclass(frozen=True, slots=True)
class EncodeContext:
    """What a session knows that changes how attributes go on the wire."""

    local_as: int
    peer_as: int
    asn4: bool = True
    next_hop_self_v4: str | None = None
    next_hop_self_v6: str | None = None
    link_local_v6: str | None = None
    max_size: int = 4096
    # Families whose routes may carry a next hop of the other address family (RFC 8950, both
    # sides offered it): IPv4 unicast routes with an IPv6 next hop go in MP_REACH_NLRI then.
    extended_next_hop: frozenset[tuple[int, int]] = frozenset()
    # Families for which ADD-PATH send was negotiated: their NLRI carry a path id.
    addpath: frozenset[tuple[int, int]] = frozenset()

    @property
    def ibgp(self) -> bool:
        return self.local_as == self.peer_as


class RouteTooLarge(ValueError):
    """Path attributes, or attributes with an NLRI, that cannot go into one UPDATE message.
    `size` is the number of bytes they would need (a lower bound when one attribute alone is too
    long for its length field)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


MAX_ATTRIBUTE_LENGTH = 0xFFFF  # the extended length field (RFC 4271 4.3)


def _attr(flags: int, code: int, value: bytes) -> bytes:
    if len(value) > 255:
        if len(value) > MAX_ATTRIBUTE_LENGTH:
            raise RouteTooLarge(f"{_attr_name(code)} would be {len(value)} bytes, more than the "
                                f"{MAX_ATTRIBUTE_LENGTH} an attribute can hold", len(value) + 4)
        return struct.pack("!BBH", flags | EXTLEN, code, len(value)) + value
    return struct.pack("!BBB", flags & ~EXTLEN, code, len(value)) + value


def _attr_name(code: int) -> str:
    try:
        return AttrCode(code).name
    except ValueError:
        return f"attribute {code}"


def _encode_path(path: ASPath, four: bool) -> bytes:
    out = bytearray()
    fmt = "!I" if four else "!H"
    for seg_type, asns in path:
        for start in range(0, len(asns), 255):
            chunk = asns[start:start + 255]
            out += bytes((seg_type, len(chunk)))
            for asn in chunk:
                out += struct.pack(fmt, asn if four or asn <= 0xFFFF else AS_TRANS)
    return bytes(out)


def outgoing_as_path(attrs: Attributes, ctx: EncodeContext) -> ASPath:
    """A route's AS path as it goes out. A configured path is sent as written, to every peer, as
    ExaBGP does: the operator wrote the whole path (`as-path [ 65001 65001 65001 ]` to prepend),
    and adding our AS in front would lengthen it behind their back. With no path, an eBGP peer
    gets our AS alone (RFC 4271 5.1.2) and an iBGP peer an empty path."""
    path = attrs.as_path
    if path or ctx.ibgp:
        return path
    return ((SegType.AS_SEQUENCE, (ctx.local_as,)),)


def resolve_next_hop(attrs: Attributes, ctx: EncodeContext, v6: bool) -> str:
    nh = attrs.next_hop
    if nh is None or nh == "self":
        resolved = ctx.next_hop_self_v6 if v6 else ctx.next_hop_self_v4
        if resolved is None:
            family = "IPv6" if v6 else "IPv4"
            hint = ""
            if not v6 and ctx.next_hop_self_v6 is not None:
                hint = (" (our IPv6 address would do with the extended next hop, RFC 8950, which this "
                        "peer did not negotiate for ipv4 unicast)")
            raise ValueError(f"next-hop self: this session has no local {family} address to use{hint}")
        return resolved
    return nh


def encode_attributes(attrs: Attributes, ctx: EncodeContext, *, ipv4_next_hop: bool) -> bytes:
    """All attributes but MP_REACH/MP_UNREACH (those carry NLRI and are built per UPDATE), in
    ascending type-code order (RFC 4271 5: SHOULD)."""
    parts: list[tuple[int, bytes]] = []

    def add(flags: int, code: int, value: bytes) -> None:
        parts.append((code, _attr(flags, code, value)))

    add(TRANSITIVE, AttrCode.ORIGIN, bytes((attrs.origin,)))
    path = outgoing_as_path(attrs, ctx)
    add(TRANSITIVE, AttrCode.AS_PATH, _encode_path(path, ctx.asn4))
    if ipv4_next_hop:
        nh = resolve_next_hop(attrs, ctx, v6=False)
        add(TRANSITIVE, AttrCode.NEXT_HOP, ipaddress.IPv4Address(nh).packed)
    if attrs.med is not None:
        add(OPTIONAL, AttrCode.MED, struct.pack("!I", attrs.med))
    if ctx.ibgp:
        lp = 100 if attrs.local_pref is None else attrs.local_pref
        add(TRANSITIVE, AttrCode.LOCAL_PREF, struct.pack("!I", lp))
    if attrs.atomic_aggregate:
        add(TRANSITIVE, AttrCode.ATOMIC_AGGREGATE, b"")
    need_as4_aggregator = False
    if attrs.aggregator is not None:
        asn, addr = attrs.aggregator
        ip = ipaddress.IPv4Address(addr).packed
        if ctx.asn4:
            add(OPTIONAL | TRANSITIVE, AttrCode.AGGREGATOR, struct.pack("!I", asn) + ip)
        else:
            need_as4_aggregator = asn > 0xFFFF
            add(OPTIONAL | TRANSITIVE, AttrCode.AGGREGATOR,
                struct.pack("!H", AS_TRANS if need_as4_aggregator else asn) + ip)
    # Community lists go out in ascending order, as ExaBGP sends them (its lists sort on add):
    # the same config gives the same bytes, whatever order the values were written in.
    if attrs.communities:
        add(OPTIONAL | TRANSITIVE, AttrCode.COMMUNITIES,
            struct.pack(f"!{len(attrs.communities)}I", *sorted(attrs.communities)))
    if attrs.ext_communities:
        add(OPTIONAL | TRANSITIVE, AttrCode.EXTENDED_COMMUNITIES,
            struct.pack(f"!{len(attrs.ext_communities)}Q", *sorted(attrs.ext_communities)))
    if not ctx.asn4:
        if any(asn > 0xFFFF for _seg_type, asns in path for asn in asns):
            as4 = tuple(seg for seg in path if seg[0] in (SegType.AS_SET, SegType.AS_SEQUENCE))
            add(OPTIONAL | TRANSITIVE, AttrCode.AS4_PATH, _encode_path(as4, True))
        if need_as4_aggregator and attrs.aggregator is not None:
            asn, addr = attrs.aggregator
            add(OPTIONAL | TRANSITIVE, AttrCode.AS4_AGGREGATOR,
                struct.pack("!I", asn) + ipaddress.IPv4Address(addr).packed)
    if attrs.large_communities:
        flat = [v for triple in sorted(attrs.large_communities) for v in triple]
        add(OPTIONAL | TRANSITIVE, AttrCode.LARGE_COMMUNITIES, struct.pack(f"!{len(flat)}I", *flat))
    for flags, code, value in attrs.other:
        if not flags & OPTIONAL or not flags & TRANSITIVE:
            continue  # non-transitive attributes stop here (RFC 4271 5)
        # We pass on a transitive attribute we did not originate: mark it partial (RFC 4271 9.1.2.2).
        add(flags | PARTIAL, code, value)
    if attrs.other:
        parts.sort(key=lambda part: part[0])  # stable: the modelled ones are already in order
    return b"".join(raw for _code, raw in parts)


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass(slots=True)
class DecodeContext:
    asn4: bool = True
    # Families the peer may send with a next hop of the other address family (RFC 8950: both
    # sides offered the extended next hop capability for them).
    extended_next_hop: frozenset[tuple[int, int]] = frozenset()
    # Internal peer (same AS). The agent runs no confederation, so an external peer is never a
    # member of ours: its AS_CONFED_* segments are an error (RFC 5065 5).
    ibgp: bool = False
    # Families for which ADD-PATH receive was negotiated: their NLRI carry a path id.
    addpath: frozenset[tuple[int, int]] = frozenset()


@dataclass(slots=True)
class DecodedAttributes:
    """The result of reading a path-attribute field, RFC 7606 verdicts included."""

    fields: dict[str, Any] = field(default_factory=dict)
    mp_reach: bytes | None = None
    mp_unreach: bytes | None = None
    seen: set[int] = field(default_factory=set)
    treat_as_withdraw: bool = False
    notes: list[str] = field(default_factory=list)
    # The NOTIFICATION for the first treat-as-withdraw error, used when RFC 7606 5.2 escalates it
    # to a session reset (an UPDATE with attributes but no reachable NLRI).
    error: BGPError | None = None

    def withdraw_for(self, note: str, subcode: int, data: bytes = b"") -> None:
        """Record an error handled by treat-as-withdraw (RFC 7606 2)."""
        self.treat_as_withdraw = True
        self.notes.append(note)
        if self.error is None:
            self.error = BGPError(ErrCode.UPDATE_MESSAGE, subcode, data, note)


# (optional, transitive) bits each known attribute must carry; a mismatch is a flags error.
# Keyed by plain int: the codes read off the wire are ints, most of them not an AttrCode.
_EXPECTED_FLAGS: dict[int, int] = {
    AttrCode.ORIGIN: TRANSITIVE, AttrCode.AS_PATH: TRANSITIVE, AttrCode.NEXT_HOP: TRANSITIVE,
    AttrCode.MED: OPTIONAL, AttrCode.LOCAL_PREF: TRANSITIVE, AttrCode.ATOMIC_AGGREGATE: TRANSITIVE,
    AttrCode.AGGREGATOR: OPTIONAL | TRANSITIVE, AttrCode.COMMUNITIES: OPTIONAL | TRANSITIVE,
    AttrCode.MP_REACH_NLRI: OPTIONAL, AttrCode.MP_UNREACH_NLRI: OPTIONAL,
    AttrCode.EXTENDED_COMMUNITIES: OPTIONAL | TRANSITIVE, AttrCode.AS4_PATH: OPTIONAL | TRANSITIVE,
    AttrCode.AS4_AGGREGATOR: OPTIONAL | TRANSITIVE, AttrCode.LARGE_COMMUNITIES: OPTIONAL | TRANSITIVE,
}
# RFC 7606 section 7: which malformed attributes are discarded rather than withdrawing the routes.
_DISCARD_ON_ERROR = {AttrCode.ATOMIC_AGGREGATE, AttrCode.AGGREGATOR, AttrCode.AS4_PATH,
                     AttrCode.AS4_AGGREGATOR}
_CONFED_SEGMENTS = (SegType.AS_CONFED_SEQUENCE, SegType.AS_CONFED_SET)
# Route reflection (RFC 4456): optional non-transitive, kept unmodelled in `other`. RFC 7606 7.9
# and 7.10: discarded from eBGP peers, checked (the length: IPv4 address(es)) from iBGP ones.
_REFLECTION_ATTRIBUTES = (AttrCode.ORIGINATOR_ID, AttrCode.CLUSTER_LIST)


class _Malformed(Exception):
    def __init__(self, reason: str, subcode: int = UpdateSub.ATTRIBUTE_LENGTH_ERROR) -> None:
        super().__init__(reason)
        self.subcode = subcode


def _decode_path(value: bytes, four: bool) -> ASPath:
    size = 4 if four else 2
    fmt = "!%dI" if four else "!%dH"
    segs = []
    pos = 0
    while pos < len(value):
        if pos + 2 > len(value):
            raise _Malformed("AS_PATH segment header truncated")
        seg_type, count = value[pos], value[pos + 1]
        if seg_type not in (1, 2, 3, 4):
            raise _Malformed(f"AS_PATH segment type {seg_type} unknown", UpdateSub.MALFORMED_AS_PATH)
        if count == 0:
            raise _Malformed("AS_PATH segment of length 0", UpdateSub.MALFORMED_AS_PATH)
        end = pos + 2 + count * size
        if end > len(value):
            raise _Malformed("AS_PATH segment overruns the attribute", UpdateSub.MALFORMED_AS_PATH)
        segs.append((seg_type, struct.unpack(fmt % count, value[pos + 2:end])))
        pos = end
    return tuple(segs)


def _path_count(path: ASPath) -> int:
    return sum(len(asns) if t == SegType.AS_SEQUENCE else 1 if t == SegType.AS_SET else 0
               for t, asns in path)


def merge_as4_path(as_path: ASPath, as4_path: ASPath) -> ASPath:
    """Rebuild the true path from a 2-octet speaker's AS_PATH and AS4_PATH (RFC 6793 4.2.3)."""
    extra = _path_count(as_path) - _path_count(as4_path)
    if extra < 0:
        return as_path
    head: list[tuple[int, tuple[int, ...]]] = []
    for seg_type, asns in as_path:
        if extra <= 0:
            break
        if seg_type == SegType.AS_SEQUENCE:
            take = asns[:extra]
            head.append((seg_type, take))
            extra -= len(take)
        elif seg_type == SegType.AS_SET:
            head.append((seg_type, asns))
            extra -= 1
        else:
            head.append((seg_type, asns))
    if head and as4_path and head[-1][0] == as4_path[0][0] == SegType.AS_SEQUENCE:
        joined = head[-1][1] + as4_path[0][1]
        if len(joined) <= 255:
            return (*head[:-1], (SegType.AS_SEQUENCE, joined), *as4_path[1:])
    return (*head, *as4_path)


def _decode_one(code: int, value: bytes, ctx: DecodeContext, out: DecodedAttributes) -> None:
    f = out.fields
    n = len(value)
    if code == AttrCode.ORIGIN:
        if n != 1:
            raise _Malformed(f"ORIGIN length {n}, expected 1")
        if value[0] > 2:
            raise _Malformed(f"ORIGIN value {value[0]} is not IGP/EGP/INCOMPLETE",
                             UpdateSub.INVALID_ORIGIN_ATTRIBUTE)
        f["origin"] = value[0]
    elif code == AttrCode.AS_PATH:
        path = _decode_path(value, ctx.asn4)
        if any(0 in asns for _seg_type, asns in path):  # RFC 7607 2
            raise _Malformed("AS_PATH contains AS 0", UpdateSub.MALFORMED_AS_PATH)
        if not ctx.ibgp and any(t in _CONFED_SEGMENTS for t, _asns in path):
            # RFC 5065 5: we are in no confederation, so an external peer is never in ours.
            raise _Malformed("AS_PATH with confederation segments from an eBGP peer",
                             UpdateSub.MALFORMED_AS_PATH)
        f["as_path"] = path
    elif code == AttrCode.NEXT_HOP:
        if n != 4:
            raise _Malformed(f"NEXT_HOP length {n}, expected 4")
        f["next_hop"] = str(ipaddress.IPv4Address(value))
    elif code == AttrCode.MED:
        if n != 4:
            raise _Malformed(f"MULTI_EXIT_DISC length {n}, expected 4")
        f["med"] = struct.unpack("!I", value)[0]
    elif code == AttrCode.LOCAL_PREF:  # only from iBGP peers: decode_attributes drops eBGP ones
        if n != 4:
            raise _Malformed(f"LOCAL_PREF length {n}, expected 4")
        f["local_pref"] = struct.unpack("!I", value)[0]
    elif code == AttrCode.ATOMIC_AGGREGATE:
        if n != 0:
            raise _Malformed(f"ATOMIC_AGGREGATE length {n}, expected 0")
        f["atomic_aggregate"] = True
    elif code == AttrCode.AGGREGATOR:
        size = 8 if ctx.asn4 else 6
        if n != size:
            raise _Malformed(f"AGGREGATOR length {n}, expected {size}")
        asn = struct.unpack("!I" if ctx.asn4 else "!H", value[:-4])[0]
        if asn == 0:  # RFC 7607 2
            raise _Malformed("AGGREGATOR with AS 0")
        f["aggregator"] = (asn, str(ipaddress.IPv4Address(value[-4:])))
    elif code == AttrCode.COMMUNITIES:
        if n % 4 or n == 0:  # RFC 7606 7.8
            raise _Malformed(f"COMMUNITIES length {n} is not a non-zero multiple of 4")
        f["communities"] = struct.unpack(f"!{n // 4}I", value)
    elif code == AttrCode.EXTENDED_COMMUNITIES:
        if n % 8 or n == 0:  # RFC 7606 7.14
            raise _Malformed(f"EXTENDED_COMMUNITIES length {n} is not a non-zero multiple of 8")
        f["ext_communities"] = struct.unpack(f"!{n // 8}Q", value)
    elif code == AttrCode.LARGE_COMMUNITIES:
        if n % 12 or n == 0:
            raise _Malformed(f"LARGE_COMMUNITIES length {n} is not a non-zero multiple of 12")
        flat = struct.unpack(f"!{n // 4}I", value)
        f["large_communities"] = tuple(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))
    elif code == AttrCode.AS4_PATH:
        if ctx.asn4:
            out.notes.append("AS4_PATH from a 4-octet speaker discarded")
            return
        as4_path = _decode_path(value, True)
        if any(t not in (SegType.AS_SET, SegType.AS_SEQUENCE) for t, _asns in as4_path):
            raise _Malformed("AS4_PATH with confederation segments")  # RFC 6793 6
        if any(0 in asns for _seg_type, asns in as4_path):  # RFC 7607 2
            raise _Malformed("AS4_PATH contains AS 0")
        f["as4_path"] = as4_path
    elif code == AttrCode.AS4_AGGREGATOR:
        if ctx.asn4:
            out.notes.append("AS4_AGGREGATOR from a 4-octet speaker discarded")
            return
        if n != 8:
            raise _Malformed(f"AS4_AGGREGATOR length {n}, expected 8")
        asn = struct.unpack("!I", value[:4])[0]
        if asn == 0:  # RFC 7607 2
            raise _Malformed("AS4_AGGREGATOR with AS 0")
        f["as4_aggregator"] = (asn, str(ipaddress.IPv4Address(value[4:])))


def _reflection_attribute_ok(flags: int, code: int, value: bytes, whole: bytes, ctx: DecodeContext,
                             out: DecodedAttributes) -> bool:
    """RFC 7606 7.9 (ORIGINATOR_ID), 7.10 (CLUSTER_LIST): whether to keep the attribute."""
    name = AttrCode(code).name
    if not ctx.ibgp:
        out.notes.append(f"{name} from an eBGP peer discarded")
        return False
    n = len(value)
    if flags & (OPTIONAL | TRANSITIVE) != OPTIONAL:  # RFC 7606 3(c)
        out.withdraw_for(f"attribute {name} has wrong flags {flags:#04x}: routes treated as withdrawn",
                         UpdateSub.ATTRIBUTE_FLAGS_ERROR, whole)
        return False
    if code == AttrCode.ORIGINATOR_ID and n != 4:
        out.withdraw_for(f"ORIGINATOR_ID length {n}, expected 4: routes treated as withdrawn",
                         UpdateSub.ATTRIBUTE_LENGTH_ERROR, whole)
        return False
    if code == AttrCode.CLUSTER_LIST and (n == 0 or n % 4):
        out.withdraw_for(f"CLUSTER_LIST length {n} is not a non-zero multiple of 4: routes treated "
                         "as withdrawn", UpdateSub.ATTRIBUTE_LENGTH_ERROR, whole)
        return False
    return True


def decode_attributes(data: bytes | memoryview, ctx: DecodeContext) -> DecodedAttributes:
    """Read a path-attribute field. Errors that RFC 7606 lets us survive are recorded in the
    result (treat_as_withdraw, notes); the rest raise BGPError."""
    out = DecodedAttributes()
    other: list[tuple[int, int, bytes]] = []
    duplicates: dict[int, int] = {}
    pos = 0
    end = len(data)
    while pos < end:
        # RFC 7606 4: the two ways an attribute can conflict with the Total Attribute Length are
        # treat-as-withdraw; the Total Attribute Length still locates the NLRI field.
        if pos + 3 > end:
            out.withdraw_for("attribute header truncated at the end of the field",
                             UpdateSub.MALFORMED_ATTRIBUTE_LIST, bytes(data[pos:end]))
            break
        flags, code = data[pos], data[pos + 1]
        if flags & EXTLEN:
            if pos + 4 > end:
                out.withdraw_for("attribute header truncated at the end of the field",
                                 UpdateSub.MALFORMED_ATTRIBUTE_LIST, bytes(data[pos:end]))
                break
            length = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        else:
            length = data[pos + 2]
            start = pos + 3
        stop = start + length
        if stop > end:
            if code in (AttrCode.MP_REACH_NLRI, AttrCode.MP_UNREACH_NLRI):
                raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.ATTRIBUTE_LENGTH_ERROR,
                               bytes(data[pos:end]), f"attribute {code} overruns the attribute field")
            out.withdraw_for(f"attribute {code} length {length} overruns the attribute field",
                             UpdateSub.ATTRIBUTE_LENGTH_ERROR, bytes(data[pos:end]))
            break
        value = bytes(data[start:stop])
        whole = bytes(data[pos:stop])  # the attribute as received: NOTIFICATION data (RFC 4271 6.3)
        pos = stop
        if code in out.seen:
            if code in (AttrCode.MP_REACH_NLRI, AttrCode.MP_UNREACH_NLRI):
                raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.MALFORMED_ATTRIBUTE_LIST,
                               reason=f"attribute {code} appears twice")
            # Counted, not noted one by one: a peer can send thousands (RFC 7606 3(g)).
            duplicates[code] = duplicates.get(code, 0) + 1
            continue
        out.seen.add(code)
        if code in _REFLECTION_ATTRIBUTES:
            if _reflection_attribute_ok(flags, code, value, whole, ctx, out):
                other.append((flags & ~EXTLEN, code, value))
            continue
        expected = _EXPECTED_FLAGS.get(code)
        if expected is None:
            if not flags & OPTIONAL:
                raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                               whole, f"unrecognized well-known attribute {code}")
            other.append((flags & ~EXTLEN, code, value))
            continue
        if code == AttrCode.LOCAL_PREF and not ctx.ibgp:
            # RFC 7606 7.5: from an external peer it is discarded, whatever its length or flags.
            out.notes.append("LOCAL_PREF from an eBGP peer discarded")
            continue
        if flags & (OPTIONAL | TRANSITIVE) != expected:
            if code in (AttrCode.MP_REACH_NLRI, AttrCode.MP_UNREACH_NLRI):
                # RFC 7606 5.3: the NLRI cannot be trusted, so the session is reset (3.j).
                raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.ATTRIBUTE_FLAGS_ERROR, whole,
                               f"attribute {code} has flags {flags:#04x}")
            if code in _DISCARD_ON_ERROR:
                out.notes.append(f"attribute {AttrCode(code).name} with wrong flags discarded")
            else:
                out.withdraw_for(f"attribute {AttrCode(code).name} has wrong flags {flags:#04x}",
                                 UpdateSub.ATTRIBUTE_FLAGS_ERROR, whole)
            continue
        if code == AttrCode.MP_REACH_NLRI:
            out.mp_reach = value
            continue
        if code == AttrCode.MP_UNREACH_NLRI:
            out.mp_unreach = value
            continue
        try:
            _decode_one(code, value, ctx, out)
        except _Malformed as exc:
            if code in _DISCARD_ON_ERROR:
                out.notes.append(f"{exc}: attribute discarded")
            else:
                out.withdraw_for(f"{exc}: routes treated as withdrawn", exc.subcode,
                                 b"" if exc.subcode == UpdateSub.MALFORMED_AS_PATH else whole)
    for code, count in duplicates.items():
        out.notes.append(f"duplicate attribute {code} discarded"
                         + (f" ({count} copies)" if count > 1 else ""))
    if other:
        out.fields["other"] = tuple(other)
    as4_path = out.fields.pop("as4_path", None)
    as4_aggr = out.fields.pop("as4_aggregator", None)
    aggr = out.fields.get("aggregator")
    if aggr is not None and aggr[0] != AS_TRANS:
        as4_path = None  # RFC 6793 4.2.3: a real 2-octet aggregator means AS4 attributes are stale
    elif aggr is not None and as4_aggr is not None:
        out.fields["aggregator"] = as4_aggr
    if as4_path is not None and "as_path" in out.fields:
        out.fields["as_path"] = merge_as4_path(out.fields["as_path"], as4_path)
    return out
