"""Numbers and IP addresses in text someone else wrote: the config file, API program lines, control
requests, command-line options. Every grammar reads them through these helpers, so they all agree.

Numbers: `str.isdigit()` is True for '²' and other Unicode digits that `int()` refuses or reads
(int('٣') is 3), and `int()` of more than 4,300 digits raises (Python's conversion limit). So a
number here is ASCII digits only, at most MAX_DIGITS of them, then range-checked. The helpers
return None for anything else: each grammar raises its own error type with its own words.

Addresses: an IPv4 octet with a leading zero (010.0.0.1) is refused. inet_aton and many tools read
it as octal (8.0.0.1), others as decimal (10.0.0.1): which one was meant cannot be known. Python's
ipaddress refuses it too, but with a message that does not say why.
"""

from __future__ import annotations

import ipaddress

# Enough for any 64-bit value; far below int()'s 4,300-digit limit.
MAX_DIGITS = 20
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def decimal(text: str, high: int, low: int = 0) -> int | None:
    """`text` as a decimal integer low..high; None if it is not one (sign, space, '_', non-ASCII
    digit, too many digits, out of range)."""
    if 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        value = int(text)
        if low <= value <= high:
            return value
    return None


def hexadecimal(text: str, high: int) -> int | None:
    """Hex digits (no 0x) as an integer 0..high; None otherwise. Leading zeros are allowed, but
    not more digits than MAX_DIGITS."""
    if 0 < len(text) <= MAX_DIGITS and HEX_DIGITS.issuperset(text):
        value = int(text, 16)
        if value <= high:
            return value
    return None


def shown(value: object, limit: int = 40) -> str:
    """repr(value) for an error message, shortened: a 5,000-digit token must not make a 5,000-byte
    log line, but the reader must still recognise it."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except ValueError:  # an int past the string-conversion limit
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def leading_zero(text: str) -> str | None:
    """If `text` (an address, ADDRESS/LENGTH or ADDRESS%SCOPE) has an IPv4 part with a leading-zero
    octet: the message saying so, naming the token. None otherwise."""
    address = text.partition("/")[0].partition("%")[0]
    octets = address.rpartition(":")[2].split(".")
    if len(octets) != 4 or not all(o.isascii() and o.isdigit() for o in octets):
        return None
    bad = next((o for o in octets if len(o) > 1 and o[0] == "0"), None)
    if bad is None:
        return None
    return (f"{shown(text)} has an IPv4 octet with a leading zero ({bad!r}), which is ambiguous "
            "(octal or decimal?): write it without leading zeros")


def address_error(text: str, expected: str = "an IP address") -> str:
    """The message for an address that did not parse: the leading-zero one, or `'TEXT' is not
    EXPECTED`."""
    return leading_zero(text) or f"{shown(text)} is not {expected}"


def ip_address(text: str) -> IPAddress:
    """ipaddress.ip_address, raising ValueError with address_error's message."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(address_error(text)) from None
