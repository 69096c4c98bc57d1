"""Communities in ExaBGP's text syntax: standard (RFC 1997), extended (RFC 4360, 5668, 7674, 8955)
and large (RFC 8092). Each is read by one function and written by one, for every place that takes
or shows them (config, API programs, control socket, health checks, FlowSpec `then`).

Two written forms exist and both are interfaces: the agent's own (config syntax, the control
socket's `route` and community fields), which reads back to the same value, and ExaBGP 5.0.15's
(what API programs read), which names fewer communities and drops the `L` of a 4-octet AS.
"""

from __future__ import annotations

import ipaddress
import math
import struct

from fleetbgp.literals import HEX_DIGITS as _HEX
from fleetbgp.literals import decimal, leading_zero
from fleetbgp.wire.flowspec import (
    REDIRECT_AS2,
    REDIRECT_AS4,
    REDIRECT_IPV4,
    REDIRECT_NEXT_HOP,
    REDIRECT_NEXT_HOP_COPY,
    TRAFFIC_ACTION,
    TRAFFIC_MARKING,
    TRAFFIC_RATE,
    TRAFFIC_RATE_PACKETS,
)

U16 = 0xFFFF
U32 = 0xFFFFFFFF

# value -> name, in the agent's own text (RFC 8326, 7999, 1997, 3765). The order is the one error
# messages list them in.
COMMUNITY_NAMES = {
    0xFFFF0000: "graceful-shutdown",
    0xFFFF029A: "blackhole",
    0xFFFFFF01: "no-export",
    0xFFFFFF02: "no-advertise",
    0xFFFFFF03: "no-export-subconfed",
    0xFFFFFF04: "nopeer",
}
# ExaBGP 5.0.15's names (its Community class): no-peer, and none for graceful-shutdown (65535:0).
_EXABGP_NAMES = {v: n for v, n in COMMUNITY_NAMES.items() if v != 0xFFFF0000} | {0xFFFFFF04: "no-peer"}
# name -> value, for input: both spellings of NOPEER.
WELL_KNOWN_COMMUNITIES = {n: v for v, n in COMMUNITY_NAMES.items()} | {"no-peer": 0xFFFFFF04}

# Extended community sub-types (RFC 4360 section 5, RFC 5575/8955 section 7 for redirect).
_EXT_SUBTYPE = {"target": 0x02, "rt": 0x02, "target4": 0x02, "origin": 0x03, "soo": 0x03,
                "origin4": 0x03, "redirect": 0x08}
# High-order type octet: (2-octet AS specific, IPv4 address specific, 4-octet AS specific).
_EXT_TYPE_TRANSITIVE = (0x00, 0x01, 0x02)   # RFC 4360 3.1, 3.2; RFC 5668 2
_EXT_TYPE_REDIRECT = (0x80, 0x81, 0x82)     # RFC 8955 7.4 (AS-2), RFC 7674 (IPv4, AS-4)
_EXT_NAMES = {0x02: "target", 0x03: "origin"}


def _v4_int(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


# -- text -> value ---------------------------------------------------------------------------------


def parse_community(text: str) -> int:
    """'65000:100', a well-known name (no-export, ...), or a 32-bit integer -> 32-bit value."""
    named = WELL_KNOWN_COMMUNITIES.get(text.lower().replace("_", "-"))  # ExaBGP: no_export too
    if named is not None:
        return named
    if ":" in text:
        hi, _sep, lo = text.partition(":")
        h, low = decimal(hi, U16), decimal(lo, U16)
        if h is None or low is None:
            raise ValueError(f"community {text!r}: expected ASN:VALUE, both 0..65535")
        return (h << 16) | low
    if text[:2].lower() == "0x":
        digits = text[2:]
        if 0 < len(digits) <= 8 and _HEX.issuperset(digits):
            return int(digits, 16)
        raise ValueError(f"community {text!r}: not a 32-bit hex value")
    value = decimal(text, U32)
    if value is None:
        names = ", ".join(k for k in WELL_KNOWN_COMMUNITIES if k != "no-peer")
        raise ValueError(f"community {text!r}: expected ASN:VALUE, a 32-bit number or one of {names}")
    return value


def parse_large_community(text: str) -> tuple[int, int, int]:
    """'65000:1:2' -> (65000, 1, 2), each 0..4294967295 (RFC 8092)."""
    parts = text.split(":")
    if len(parts) == 3:
        a, b, c = (decimal(p, U32) for p in parts)
        if a is not None and b is not None and c is not None:
            return (a, b, c)
    raise ValueError(f"large-community {text!r}: expected GLOBAL:LOCAL1:LOCAL2, each 0..4294967295")


def parse_extended_community(text: str) -> int:
    """An extended community as its 64-bit value.

    TYPE:ADMIN:LOCAL with TYPE target (rt), origin (soo) or redirect; ADMIN:LOCAL alone means target.
    ADMIN picks the encoding: a 2-octet AS (LOCAL 32 bits, RFC 4360 3.1), an IPv4 address (LOCAL 16
    bits, RFC 4360 3.2) or a 4-octet AS (> 65535 or written with an L suffix, LOCAL 16 bits,
    RFC 5668). target4/origin4 force the 4-octet form. With a 2-octet AS, LOCAL may be written as
    an IPv4 address (its 32 bits, as ExaBGP reads it). 0x followed by 16 hex digits is taken raw.
    """
    if text[:2].lower() == "0x":
        digits = text[2:]
        if len(digits) == 16 and _HEX.issuperset(digits):
            return int(digits, 16)
        raise ValueError(f"extended-community {text!r}: raw form is 0x and 16 hex digits")
    parts = text.split(":")
    if len(parts) == 2:
        kind = "target"
    elif len(parts) == 3:
        kind = parts.pop(0).lower()
    else:
        raise ValueError(f"extended-community {text!r}: expected TYPE:ADMIN:LOCAL "
                         "(target:65000:100, origin:192.0.2.1:5) or 0x and 16 hex digits")
    subtype = _EXT_SUBTYPE.get(kind)
    if subtype is None:
        raise ValueError(f"extended-community {text!r}: type {kind!r} unknown "
                         "(known: target, rt, origin, soo, target4, origin4, redirect)")
    types = _EXT_TYPE_REDIRECT if kind == "redirect" else _EXT_TYPE_TRANSITIVE
    admin, local = parts
    if "." in admin:
        ip = _v4_int(admin)
        low = decimal(local, U16)
        if ip is None or low is None or kind.endswith("4"):
            problem = leading_zero(admin)
            if problem is not None:
                raise ValueError(f"extended-community {problem}")
            raise ValueError(f"extended-community {text!r}: IPv4:LOCAL needs an IPv4 address and "
                             "LOCAL 0..65535")
        return (types[1] << 56) | (subtype << 48) | (ip << 16) | low
    four = kind.endswith("4")
    if admin[-1:] in ("L", "l"):
        admin = admin[:-1]
        four = True
    asn = decimal(admin, U32)
    if asn is None:
        raise ValueError(f"extended-community {text!r}: {admin!r} is neither an AS number nor an "
                         "IPv4 address")
    if asn > U16:
        four = True
    if four:
        low = decimal(local, U16)
        if low is None:
            raise ValueError(f"extended-community {text!r}: with a 4-octet AS the local part must be "
                             "0..65535")
        return (types[2] << 56) | (subtype << 48) | (asn << 16) | low
    # ExaBGP takes an IPv4 address as the 32-bit local part (origin:9000:9.9.9.9, 72:0.0.0.1)
    low = decimal(local, U32) if "." not in local else _v4_int(local)
    if low is None:
        problem = leading_zero(local) if "." in local else None
        raise ValueError(f"extended-community {problem}" if problem else
                         f"extended-community {text!r}: local part must be 0..4294967295 or an IPv4 address")
    return (types[0] << 56) | (subtype << 48) | (asn << 32) | low


# -- value -> text ---------------------------------------------------------------------------------


def community_text(value: int, exabgp: bool = False) -> str:
    """A well-known name or ASN:VALUE; `exabgp`: with ExaBGP's names (what API programs read)."""
    name = (_EXABGP_NAMES if exabgp else COMMUNITY_NAMES).get(value)
    return name if name is not None else f"{value >> 16}:{value & 0xFFFF}"


def large_community_text(value: tuple[int, int, int]) -> str:
    return f"{value[0]}:{value[1]}:{value[2]}"


def _ipv4(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def extended_community_text(value: int, exabgp: bool = False) -> str:
    """target:65000:1, origin:192.0.2.1:5, redirect:65000:100, target:4200000000L:7; anything
    else 0x and 16 hex digits. `exabgp`: without the L of a 4-octet AS, as ExaBGP prints it (so
    target:65000L:1 shows as target:65000:1, which reads back as the 2-octet form)."""
    high = value >> 56
    sub = value >> 48 & 0xFF
    kind = _EXT_NAMES.get(sub) if high in _EXT_TYPE_TRANSITIVE else None
    if high in _EXT_TYPE_REDIRECT and sub == 0x08:
        kind = "redirect"
    if kind is not None:
        if high & 0x0F == 0x00:
            return f"{kind}:{value >> 32 & 0xFFFF}:{value & 0xFFFFFFFF}"
        if high & 0x0F == 0x01:
            return f"{kind}:{_ipv4(value >> 16 & 0xFFFFFFFF)}:{value & 0xFFFF}"
        return f"{kind}:{value >> 16 & 0xFFFFFFFF}{'' if exabgp else 'L'}:{value & 0xFFFF}"
    return f"0x{value:016x}"


def flow_action_string(value: int) -> str | None:
    """The "string" ExaBGP 5.0.15 puts next to a FlowSpec extended community in its JSON
    (its classes' __repr__), or None if value is not one of the FlowSpec actions."""
    raw = value.to_bytes(8, "big")
    kind = value >> 48
    if kind in (TRAFFIC_RATE, TRAFFIC_RATE_PACKETS):
        rate = struct.unpack("!f", raw[4:8])[0]
        if not math.isfinite(rate):
            return None
        suffix = ":packets" if kind == TRAFFIC_RATE_PACKETS else ""
        return f"rate-limit:{int(max(rate, 0.0))}{suffix}"
    if kind == TRAFFIC_ACTION:
        names = [n for n, bit in (("sample", 0x02), ("terminal", 0x01)) if raw[7] & bit]
        return "action " + "-".join(names)
    if kind == REDIRECT_AS2:
        asn, nn = struct.unpack("!HI", raw[2:])
        return f"redirect:{asn}:{nn}"
    if kind == REDIRECT_AS4:
        return "0x" + raw.hex().upper()  # ExaBGP's TrafficRedirectASN4 has no __repr__
    if kind == REDIRECT_IPV4:
        return ""  # ExaBGP 5.0.15 registers no class for it: its JSON string is empty
    if kind == TRAFFIC_MARKING:
        return f"mark {raw[7] & 0x3F}"
    if kind == REDIRECT_NEXT_HOP:
        return "copy-to-nexthop" if raw[7] & REDIRECT_NEXT_HOP_COPY else "redirect-to-nexthop"
    return None


def flow_extended_community_text(value: int, json: bool = False) -> str:
    """ExaBGP's rendering of an extended community on a FlowSpec route: its action names
    (rate-limit:0, redirect:65001:999, mark 10, ...), hex for the FlowSpec types it has no name for.
    `json`: as its JSON encoder, which gives an IPv4-address redirect (0x8108) an empty string (the
    number is in "value")."""
    if json and value >> 48 == REDIRECT_IPV4:
        return ""
    known = flow_action_string(value)
    if known:
        return known
    if value >> 56 in _EXT_TYPE_REDIRECT:
        return f"0x{value:016X}"
    return extended_community_text(value, exabgp=True)
