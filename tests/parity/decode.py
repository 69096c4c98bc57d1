"""A small BGP UPDATE decoder for the parity tests, independent of the agent's own codec.

It splits an UPDATE body into routes (`Announce`, `Withdraw`, `EndOfRib`) so that what ExaBGP's
functional tests expect and what the agent sent can be compared route by route and attribute by
attribute (`compare`). It models what the comparison needs and no more: path attributes as TLVs,
MP_REACH/MP_UNREACH, ipv4/ipv6 unicast and multicast NLRI (with the ADD-PATH path identifier when
asked), labelled and VPN prefixes, and every other NLRI (flowspec, evpn, mvpn, vpls, mup, ...) as
a hex string. Attributes it does not model render as hex.

Do not import fleetbgp here: the point is to judge the agent's encoder with something else.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "AFI_NAMES",
    "SAFI_NAMES",
    "Announce",
    "DecodeError",
    "EndOfRib",
    "Withdraw",
    "compare",
    "decode_update",
    "family_name",
]

AFI_NAMES: dict[int, str] = {1: "ipv4", 2: "ipv6", 25: "l2vpn", 16388: "bgp-ls"}
SAFI_NAMES: dict[int, str] = {
    1: "unicast", 2: "multicast", 4: "nlri-mpls", 5: "mcast-vpn", 65: "vpls", 70: "evpn",
    71: "bgp-ls", 72: "bgp-ls-vpn", 73: "sr-te", 85: "mup", 128: "mpls-vpn", 132: "rtc",
    133: "flow", 134: "flow-vpn",
}

ATTRIBUTE_NAMES: dict[int, str] = {
    1: "ORIGIN", 2: "AS_PATH", 3: "NEXT_HOP", 4: "MED", 5: "LOCAL_PREF", 6: "ATOMIC_AGGREGATE",
    7: "AGGREGATOR", 8: "COMMUNITIES", 9: "ORIGINATOR_ID", 10: "CLUSTER_LIST", 14: "MP_REACH_NLRI",
    15: "MP_UNREACH_NLRI", 16: "EXTENDED_COMMUNITIES", 17: "AS4_PATH", 18: "AS4_AGGREGATOR",
    22: "PMSI_TUNNEL", 23: "TUNNEL_ENCAPSULATION", 25: "IPV6_EXTENDED_COMMUNITIES", 26: "AIGP",
    29: "BGP_LS", 32: "LARGE_COMMUNITIES", 35: "OTC", 40: "PREFIX_SID",
}

# The flags RFC 4271 and friends give each attribute (the extended-length bit aside): anything
# else shows in the rendered value, so that a wrong flag is a difference.
_STANDARD_FLAGS: dict[int, int] = {
    1: 0x40, 2: 0x40, 3: 0x40, 4: 0x80, 5: 0x40, 6: 0x40, 7: 0xC0, 8: 0xC0, 9: 0x80, 10: 0x80,
    14: 0x80, 15: 0x80, 16: 0xC0, 17: 0xC0, 18: 0xC0, 22: 0xC0, 23: 0xC0, 25: 0xC0, 26: 0x80,
    29: 0x80, 32: 0xC0, 35: 0xC0, 40: 0xC0,
}

_ORIGINS = {0: "igp", 1: "egp", 2: "incomplete"}
_WELL_KNOWN_COMMUNITIES = {
    0xFFFFFF01: "no-export", 0xFFFFFF02: "no-advertise", 0xFFFFFF03: "no-export-subconfed",
    0xFFFFFF04: "nopeer", 0xFFFF029A: "blackhole",
}


class DecodeError(ValueError):
    """The bytes are not a well-formed UPDATE (as far as this decoder can tell)."""


@dataclass(frozen=True)
class Announce:
    family: str
    nlri: str
    attributes: tuple[tuple[str, str], ...]  # (name, rendered value), sorted by name


@dataclass(frozen=True)
class Withdraw:
    family: str
    nlri: str


@dataclass(frozen=True)
class EndOfRib:
    family: str


Route = Announce | Withdraw | EndOfRib


def family_name(afi: int, safi: int) -> str:
    return f"{AFI_NAMES.get(afi, f'afi-{afi}')} {SAFI_NAMES.get(safi, f'safi-{safi}')}"


# -- NLRI --------------------------------------------------------------------------------------


def _prefix(data: bytes, offset: int, afi: int) -> tuple[str, int]:
    """A (length in bits, prefix bytes) prefix at data[offset:] -> ("10.0.0.0/24", new offset)."""
    if offset >= len(data):
        raise DecodeError("truncated prefix")
    bits = data[offset]
    size = 4 if afi == 1 else 16
    if bits > size * 8:
        raise DecodeError(f"prefix length {bits} too long")
    nbytes = (bits + 7) // 8
    raw = data[offset + 1:offset + 1 + nbytes]
    if len(raw) != nbytes:
        raise DecodeError("truncated prefix")
    address = ipaddress.ip_address(raw.ljust(size, b"\0"))
    return f"{address}/{bits}", offset + 1 + nbytes


def _labels(raw: bytes) -> tuple[list[int], int]:
    """MPLS labels (3 bytes each, up to the bottom-of-stack bit) -> (labels, bytes used)."""
    labels: list[int] = []
    offset = 0
    while offset + 3 <= len(raw):
        value = int.from_bytes(raw[offset:offset + 3], "big")
        offset += 3
        labels.append(value >> 4)
        if value & 1 or value in (0x800000, 0):  # bottom of stack, or a withdrawal's label
            break
    return labels, offset


def _rd(raw: bytes) -> str:
    kind = int.from_bytes(raw[:2], "big")
    if kind == 0:
        return f"{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:8], 'big')}"
    if kind == 1:
        return f"{ipaddress.IPv4Address(raw[2:6])}:{int.from_bytes(raw[6:8], 'big')}"
    if kind == 2:
        return f"{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:8], 'big')}"
    return raw.hex()


def _labelled(data: bytes, offset: int, afi: int, rd: bool) -> tuple[str, int]:
    """RFC 8277 / RFC 4364 NLRI: bit length, labels, [RD], prefix."""
    bits = data[offset]
    nbytes = (bits + 7) // 8
    raw = data[offset + 1:offset + 1 + nbytes]
    if len(raw) != nbytes:
        raise DecodeError("truncated labelled prefix")
    labels, used = _labels(raw)
    text = "label " + ",".join(str(label) for label in labels)
    if rd:
        if used + 8 > len(raw):
            raise DecodeError("truncated route distinguisher")
        text += f" rd {_rd(raw[used:used + 8])}"
        used += 8
    plen = bits - used * 8
    size = 4 if afi == 1 else 16
    if plen < 0 or plen > size * 8:
        raise DecodeError("bad labelled prefix length")
    address = ipaddress.ip_address(raw[used:].ljust(size, b"\0")[:size])
    return f"{address}/{plen} {text}", offset + 1 + nbytes


def _opaque(data: bytes, offset: int, safi: int) -> tuple[str, int]:
    """One NLRI of a SAFI this decoder does not model, as hex; its length by the SAFI's rules."""
    if safi in (133, 134):  # flowspec: 1 or 2 length bytes (RFC 8955)
        first = data[offset]
        if first >= 0xF0:
            length, head = ((first & 0x0F) << 8) | data[offset + 1], 2
        else:
            length, head = first, 1
    elif safi in (70, 5):  # evpn, mvpn: type (1), length (1)
        length, head = data[offset + 1], 2
    elif safi == 85:  # mup: architecture (1), route type (2), length (1)
        length, head = data[offset + 3], 4
    elif safi in (71, 72):  # bgp-ls: type (2), length (2)
        length, head = int.from_bytes(data[offset + 2:offset + 4], "big"), 4
    elif safi == 65:  # vpls: length (2)
        length, head = int.from_bytes(data[offset:offset + 2], "big"), 2
    elif safi == 132:  # rtc: length in bits
        length, head = (data[offset] + 7) // 8, 1
    else:  # unknown: the rest, as one
        return data[offset:].hex(), len(data)
    end = offset + head + length
    if end > len(data):
        raise DecodeError(f"truncated {SAFI_NAMES.get(safi, safi)} NLRI")
    return data[offset:end].hex(), end


def _nlris(data: bytes, afi: int, safi: int, addpath: bool) -> list[str]:
    out: list[str] = []
    offset = 0
    while offset < len(data):
        path = ""
        if addpath:
            if offset + 4 > len(data):
                raise DecodeError("truncated path identifier")
            path = f" path-information {ipaddress.IPv4Address(data[offset:offset + 4])}"
            offset += 4
        if afi in (1, 2) and safi in (1, 2):
            text, offset = _prefix(data, offset, afi)
        elif afi in (1, 2) and safi in (4, 128):
            text, offset = _labelled(data, offset, afi, rd=safi == 128)
        else:
            text, offset = _opaque(data, offset, safi)
        out.append(text + path)
    return out


# -- attributes --------------------------------------------------------------------------------


def _as_path(value: bytes, asn4: bool) -> str:
    width = 4 if asn4 else 2
    parts: list[str] = []
    offset = 0
    while offset < len(value):
        if offset + 2 > len(value):
            raise DecodeError("truncated AS_PATH segment")
        kind, count = value[offset], value[offset + 1]
        offset += 2
        numbers = [int.from_bytes(value[offset + i * width:offset + (i + 1) * width], "big")
                   for i in range(count)]
        offset += count * width
        text = " ".join(str(n) for n in numbers)
        if kind == 1:
            parts.append(f"( {text} )")
        elif kind == 2:
            parts.append(f"[ {text} ]")
        else:
            parts.append(f"segment-{kind}[ {text} ]")
    if offset != len(value):
        raise DecodeError("AS_PATH length mismatch")
    return " ".join(parts) if parts else "(empty)"


def _communities(value: bytes) -> str:
    out = []
    for i in range(0, len(value) - 3, 4):
        number = int.from_bytes(value[i:i + 4], "big")
        out.append(_WELL_KNOWN_COMMUNITIES.get(number, f"{number >> 16}:{number & 0xFFFF}"))
    return " ".join(out)


def _extended(value: bytes) -> str:
    out = []
    for i in range(0, len(value) - 7, 8):
        chunk = value[i:i + 8]
        kind, sub = chunk[0] & 0x3F, chunk[1]
        if sub == 0x02 and kind in (0, 1, 2):  # route target
            out.append("target:" + _rd(bytes([0, kind]) + chunk[2:]))
        elif sub == 0x03 and kind in (0, 1, 2):  # route origin
            out.append("origin:" + _rd(bytes([0, kind]) + chunk[2:]))
        else:
            out.append(chunk.hex())
    return " ".join(out)


def _large(value: bytes) -> str:
    out = []
    for i in range(0, len(value) - 11, 12):
        a, b, c = struct.unpack("!III", value[i:i + 12])
        out.append(f"{a}:{b}:{c}")
    return " ".join(out)


def _next_hop(raw: bytes) -> str:
    """MP_REACH next hop: an address, global + link-local, or RD + address (RD shown if not 0)."""
    def one(chunk: bytes) -> str:
        if len(chunk) in (4, 16):
            return str(ipaddress.ip_address(chunk))
        if len(chunk) in (12, 24):
            rd = chunk[:8]
            address = str(ipaddress.ip_address(chunk[8:]))
            return address if rd == bytes(8) else f"rd {_rd(rd)} {address}"
        return chunk.hex() if chunk else "(none)"

    if len(raw) in (32, 48):
        half = len(raw) // 2
        return f"{one(raw[:half])} {one(raw[half:])}"
    return one(raw)


def _render(code: int, value: bytes, asn4: bool) -> str:
    try:
        if code == 1 and len(value) == 1:
            return _ORIGINS.get(value[0], str(value[0]))
        if code in (2, 17):
            return _as_path(value, asn4 or code == 17)
        if code in (3, 9) and len(value) == 4:
            return str(ipaddress.IPv4Address(value))
        if code in (4, 5) and len(value) == 4:
            return str(int.from_bytes(value, "big"))
        if code == 6 and not value:
            return "(set)"
        if code in (7, 18) and len(value) in (6, 8):
            width = 4 if (asn4 or code == 18) and len(value) == 8 else 2
            return f"{int.from_bytes(value[:width], 'big')} {ipaddress.IPv4Address(value[width:])}"
        if code == 8 and len(value) % 4 == 0:
            return _communities(value)
        if code == 10 and len(value) % 4 == 0:
            return " ".join(str(ipaddress.IPv4Address(value[i:i + 4])) for i in range(0, len(value), 4))
        if code == 16 and len(value) % 8 == 0:
            return _extended(value)
        if code == 32 and len(value) % 12 == 0:
            return _large(value)
    except DecodeError:
        pass
    return value.hex() if value else "(empty)"


def _attributes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Path attributes as (flags, code, value); flags without the extended-length bit."""
    out: list[tuple[int, int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise DecodeError("truncated attribute header")
        flags, code = data[offset], data[offset + 1]
        if flags & 0x10:
            if offset + 4 > len(data):
                raise DecodeError("truncated attribute header")
            length = int.from_bytes(data[offset + 2:offset + 4], "big")
            offset += 4
        else:
            length = data[offset + 2]
            offset += 3
        value = data[offset:offset + length]
        if len(value) != length:
            raise DecodeError(f"attribute {code}: truncated value")
        offset += length
        out.append((flags & ~0x10 & 0xFF, code, value))
    return out


def decode_update(body: bytes, *, addpath: frozenset[str] = frozenset(),
                  asn4: bool = True) -> list[Route]:
    """Split an UPDATE body (without the 19-byte header) into routes.

    `addpath`: the families (as `family_name` spells them) whose NLRI carry a path identifier.
    `asn4`: whether the session negotiated 4-octet AS numbers (AS_PATH and AGGREGATOR width).
    """
    if len(body) < 4:
        raise DecodeError("UPDATE shorter than 4 bytes")
    wlen = int.from_bytes(body[0:2], "big")
    withdrawn = body[2:2 + wlen]
    if len(withdrawn) != wlen or 2 + wlen + 2 > len(body):
        raise DecodeError("withdrawn routes length beyond the message")
    alen = int.from_bytes(body[2 + wlen:4 + wlen], "big")
    attributes = body[4 + wlen:4 + wlen + alen]
    if len(attributes) != alen:
        raise DecodeError("path attribute length beyond the message")
    nlri = body[4 + wlen + alen:]

    if not withdrawn and not attributes and not nlri:
        return [EndOfRib("ipv4 unicast")]

    routes: list[Route] = []
    v4 = "ipv4 unicast"
    routes.extend(Withdraw(v4, n) for n in _nlris(withdrawn, 1, 1, v4 in addpath))

    parsed = _attributes(attributes)
    common: list[tuple[str, str]] = []
    reach: tuple[str, str, list[str]] | None = None
    for flags, code, value in parsed:
        name = ATTRIBUTE_NAMES.get(code, f"ATTR_{code}")
        if code == 14:
            if len(value) < 5:
                raise DecodeError("MP_REACH_NLRI too short")
            afi, safi, nhlen = int.from_bytes(value[0:2], "big"), value[2], value[3]
            family = family_name(afi, safi)
            next_hop = value[4:4 + nhlen]
            reserved = 4 + nhlen
            if reserved >= len(value) + 1:
                raise DecodeError("MP_REACH_NLRI truncated")
            extra = "" if flags == _STANDARD_FLAGS[14] else f" [flags 0x{flags:02x}]"
            reach = (family, _next_hop(next_hop) + extra,
                     _nlris(value[reserved + 1:], afi, safi, family in addpath))
            continue
        if code == 15:
            if len(value) < 3:
                raise DecodeError("MP_UNREACH_NLRI too short")
            afi, safi = int.from_bytes(value[0:2], "big"), value[2]
            family = family_name(afi, safi)
            if len(value) == 3:
                routes.append(EndOfRib(family))
            else:
                routes.extend(Withdraw(family, n)
                              for n in _nlris(value[3:], afi, safi, family in addpath))
            continue
        text = _render(code, value, asn4)
        if flags != _STANDARD_FLAGS.get(code, -1):
            text += f" [flags 0x{flags:02x}]"
        common.append((name, text))

    if reach is not None:
        family, next_hop, prefixes = reach
        attrs = tuple(sorted([*common, ("MP_NEXT_HOP", next_hop)]))
        routes.extend(Announce(family, n, attrs) for n in prefixes)
    if nlri:
        attrs = tuple(sorted(common))
        routes.extend(Announce(v4, n, attrs) for n in _nlris(nlri, 1, 1, v4 in addpath))
    return routes


# -- comparison --------------------------------------------------------------------------------


def _key(route: Announce | Withdraw) -> tuple[str, str, str]:
    return (type(route).__name__, route.family, route.nlri)


def _where(route: Announce | Withdraw) -> str:
    return f"{route.nlri} {route.family}"


def _attribute_lines(expected: Announce, got: Announce) -> list[str]:
    want, have = dict(expected.attributes), dict(got.attributes)
    lines = []
    for name in sorted(set(want) | set(have)):
        a, b = want.get(name), have.get(name)
        if a == b:
            continue
        lines.append(f"{_where(expected)}: {name} expected {a if a is not None else '(absent)'}, "
                     f"got {b if b is not None else '(absent)'}")
    return lines


def compare(expected: list[Route], got: list[Route]) -> list[str]:
    """Differences between two lists of routes, as a multiset (order does not matter), one
    readable line each. End-of-RIB markers are not compared (they are not routes)."""
    want = Counter(r for r in expected if not isinstance(r, EndOfRib))
    have = Counter(r for r in got if not isinstance(r, EndOfRib))
    common = want & have
    want -= common
    have -= common

    # what is left: pair by (kind, family, NLRI), in first-seen order, then compare attributes
    left_want: dict[tuple[str, str, str], list[Announce | Withdraw]] = {}
    left_have: dict[tuple[str, str, str], list[Announce | Withdraw]] = {}
    for source, target in ((expected, left_want), (got, left_have)):
        pool = want if target is left_want else have
        budget = Counter(pool)
        for route in source:
            if isinstance(route, EndOfRib) or budget[route] <= 0:
                continue
            budget[route] -= 1
            target.setdefault(_key(route), []).append(route)

    lines: list[str] = []
    for key in sorted(set(left_want) | set(left_have)):
        a_list, b_list = left_want.get(key, []), left_have.get(key, [])
        for a, b in zip(a_list, b_list, strict=False):
            if isinstance(a, Announce) and isinstance(b, Announce):
                lines.extend(_attribute_lines(a, b))
        kind = "announce" if key[0] == "Announce" else "withdraw"
        for a in a_list[len(b_list):]:
            lines.append(f"{_where(a)}: {kind} expected, not received")
        for b in b_list[len(a_list):]:
            extra = ""
            if isinstance(b, Announce):
                extra = " (" + ", ".join(f"{n} {v}" for n, v in b.attributes) + ")"
            lines.append(f"{_where(b)}: {kind} received, not expected{extra}")
    return lines
