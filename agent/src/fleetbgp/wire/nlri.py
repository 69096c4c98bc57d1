"""NLRI: families, prefix <-> wire bytes, and splitting an NLRI field into items.

An NLRI item is kept as its wire encoding (`bytes`): for unicast that is the prefix-length byte
followed by the significant address bytes. That is compact (a /24 is 4 bytes of payload), hashable,
and needs no work to send. Other families (FlowSpec) register their own splitter and formatter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import NamedTuple

from fleetbgp.literals import address_error, decimal, leading_zero, shown

from .constants import AFI, SAFI, ErrCode, UpdateSub
from .errors import BGPError


class Family(NamedTuple):
    afi: int
    safi: int

    def __str__(self) -> str:
        return family_name(self)


IPV4_UNICAST = Family(1, 1)
IPV6_UNICAST = Family(2, 1)
IPV4_FLOWSPEC = Family(1, 133)
IPV6_FLOWSPEC = Family(2, 133)

_AFI_NAMES = {AFI.IPV4: "ipv4", AFI.IPV6: "ipv6"}
_SAFI_NAMES = {SAFI.UNICAST: "unicast", SAFI.MULTICAST: "multicast", SAFI.FLOWSPEC: "flow",
               SAFI.FLOWSPEC_VPN: "flow-vpn"}
_SAFI_BY_NAME = {v: k for k, v in _SAFI_NAMES.items()} | {"flowspec": SAFI.FLOWSPEC}
_AFI_BY_NAME = {v: k for k, v in _AFI_NAMES.items()}


def family_name(family: tuple[int, int]) -> str:
    """ExaBGP's spelling: 'ipv4 unicast', 'ipv6 flow'."""
    afi, safi = family
    return f"{_AFI_NAMES.get(afi, str(afi))} {_SAFI_NAMES.get(safi, str(safi))}"


def family_from_name(afi: str, safi: str) -> Family | None:
    a = _AFI_BY_NAME.get(afi.lower())
    s = _SAFI_BY_NAME.get(safi.lower())
    if a is None or s is None:
        return None
    return Family(int(a), int(s))


def _v4_to_int(text: str) -> int:
    parts = text.split(".")
    value = 0
    for part in parts:
        octet = decimal(part, 255) if len(parts) == 4 else None
        if octet is None or (part[0] == "0" and len(part) > 1):
            raise ValueError(address_error(text, "an IPv4 address"))
        value = (value << 8) | octet
    return value


def prefix_to_nlri(text: str) -> tuple[Family, bytes]:
    """'10.0.0.0/24' -> (ipv4 unicast, b'\\x18\\n\\x00\\x00'). Raises ValueError naming the problem.

    A bare address is a host route (/32 or /128). Host bits set beyond the prefix length are an
    error, since announcing 10.0.0.1/24 is almost always a typo for 10.0.0.0/24 or 10.0.0.1/32.
    """
    addr, sep, length = text.partition("/")
    problem = leading_zero(text)
    if problem is not None:
        raise ValueError(problem)
    if ":" not in addr:
        ip = _v4_to_int(addr)
        bits = 32
        family = IPV4_UNICAST
        size = 4
    else:
        if "%" in addr:  # ipaddress takes fe80::1%eth0 and forgets the zone: a route has none
            raise ValueError(f"{shown(text)}: a route prefix has no zone (%...): leave it out")
        try:
            ip = int(ipaddress.IPv6Address(addr))
        except ValueError:
            raise ValueError(address_error(addr, "an IPv6 address")) from None
        bits = 128
        family = IPV6_UNICAST
        size = 16
    if sep:
        found = decimal(length, bits)
        if found is None:
            raise ValueError(f"{shown(text)}: prefix length must be 0..{bits}")
        plen = found
    else:
        plen = bits
    host_mask = (1 << (bits - plen)) - 1
    if ip & host_mask:
        net = ip & ~host_mask
        network = ipaddress.IPv6Address(net) if bits == 128 else ipaddress.IPv4Address(net)
        raise ValueError(f"{text!r} has host bits set (did you mean {network}/{plen}?)")
    nbytes = (plen + 7) // 8
    return family, bytes((plen,)) + ip.to_bytes(size, "big")[:nbytes]


def nlri_to_prefix(family: tuple[int, int], item: bytes) -> str:
    """Inverse of prefix_to_nlri for unicast families; other families use their formatter."""
    fmt = _FORMATTERS.get(family[1])
    if fmt is not None:
        return fmt(family, item)
    plen = item[0]
    size = 4 if family[0] == AFI.IPV4 else 16
    raw = item[1:].ljust(size, b"\x00")
    if size == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}/{plen}"
    return f"{ipaddress.IPv6Address(raw)}/{plen}"


def split_unicast(family: tuple[int, int], data: bytes | memoryview,
                  notes: list[str] | None = None) -> list[bytes]:
    """Split a unicast NLRI field into items. A malformed field cannot be skipped safely
    (RFC 7606 section 5.3), so it raises BGPError and the session is reset."""
    maxlen = 32 if family[0] == AFI.IPV4 else 128
    out: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        plen = data[pos]
        if plen > maxlen:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{family_name(family)} prefix length {plen} > {maxlen}")
        nxt = pos + 1 + (plen + 7) // 8
        if nxt > end:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{family_name(family)} prefix runs past the end of the NLRI field")
        item = bytes(data[pos:nxt])
        if plen % 8 and item[-1] & (0xFF >> (plen % 8)):
            # Trailing bits set past the prefix length: normalise so the same route has one key.
            item = item[:-1] + bytes((item[-1] & (0xFF << (8 - plen % 8)) & 0xFF,))
        out.append(item)
        pos = nxt
    return out


# (family, NLRI field, notes) -> items. A splitter that drops malformed items (treat-as-withdraw)
# says so in `notes`, one note for the field: the UPDATE's notes are logged once per UPDATE.
Splitter = Callable[[tuple[int, int], bytes | memoryview, "list[str] | None"], list[bytes]]
Formatter = Callable[[tuple[int, int], bytes], str]

_SPLITTERS: dict[int, Splitter] = {SAFI.UNICAST: split_unicast}
_FORMATTERS: dict[int, Formatter] = {}


def register_safi(safi: int, splitter: Splitter, formatter: Formatter) -> None:
    """Hook for families whose NLRI is not a plain prefix (FlowSpec)."""
    _SPLITTERS[safi] = splitter
    _FORMATTERS[safi] = formatter


def split_nlri(family: tuple[int, int], data: bytes | memoryview,
               notes: list[str] | None = None) -> list[bytes]:
    splitter = _SPLITTERS.get(family[1])
    if splitter is None:
        raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR,
                       reason=f"family {family_name(family)} is not supported")
    return splitter(family, data, notes)


def supported_family(family: tuple[int, int]) -> bool:
    return family[0] in _AFI_NAMES and family[1] in _SPLITTERS


# FlowSpec registers its splitter and formatter for SAFI 133 (it imports this module, so last).
from . import flowspec as _flowspec  # noqa: E402,F401
