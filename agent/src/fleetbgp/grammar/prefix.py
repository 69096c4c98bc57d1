"""Prefixes and path ids in text: '10.0.0.0/24', '2001:db8::/32', 'path-information 0.0.0.1'.

The readers here turn text into the codec's values (the NLRI wire bytes of wire/nlri.py, a path id
integer), with messages that name the problem. Their inverses (nlri_to_prefix, path_id_text) stay
in wire/nlri.py: they read only wire bytes and numbers, and the codec's formatters use them.
"""

from __future__ import annotations

import ipaddress

from fleetbgp.literals import address_error, decimal, leading_zero, shown
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

U32 = 0xFFFFFFFF


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


def parse_path_id(text: str) -> int:
    """`path-information` value: an integer 0..4294967295 or the dotted form (0.0.0.1), as
    ExaBGP reads it. Raises ValueError naming the problem."""
    if "." in text:
        try:
            return _v4_to_int(text)
        except ValueError:
            pass
    else:
        value = decimal(text, U32)
        if value is not None:
            return value
    raise ValueError(f"path-information {shown(text)}: expected a number 0..4294967295 or "
                     "a dotted path id like 0.0.0.1")
