"""NLRI: families, prefix <-> wire bytes, and splitting an NLRI field into items.

An NLRI item is kept as its wire encoding (`bytes`): for unicast that is the prefix-length byte
followed by the significant address bytes. That is compact (a /24 is 4 bytes of payload), hashable,
and needs no work to send. Other families (FlowSpec) register their own splitter and formatter.

ADD-PATH (RFC 7911): a unicast route with a path identifier is keyed PATH_MARK + path id (4 bytes)
+ NLRI. A unicast NLRI starts with its prefix length (0..128), so the 0xFF marker cannot be
mistaken for one, and a route without a path id keeps the plain NLRI as its key: the usual table
pays nothing. key[1:] is then exactly the ADD-PATH wire form. Path ids apply to unicast families
only (as in ExaBGP, which has none for FlowSpec).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import NamedTuple

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

# Keyed by plain int: family_name() is given the numbers as read off the wire.
_AFI_NAMES: dict[int, str] = {AFI.IPV4: "ipv4", AFI.IPV6: "ipv6"}
_SAFI_NAMES: dict[int, str] = {SAFI.UNICAST: "unicast", SAFI.MULTICAST: "multicast",
                               SAFI.FLOWSPEC: "flow", SAFI.FLOWSPEC_VPN: "flow-vpn"}
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


PATH_MARK = 0xFF
_PATH_MARK_BYTE = b"\xff"
_NO_PATH_ID = b"\x00\x00\x00\x00"


def path_key(nlri: bytes, path_id: int | None) -> bytes:
    """The table key of a route: the NLRI alone without a path id, marked and prefixed with it
    otherwise. Path id 0 is the same route as none (ExaBGP sends both as 0 and prints neither)."""
    if not path_id:
        return nlri
    return _PATH_MARK_BYTE + path_id.to_bytes(4, "big") + nlri


def split_key(key: bytes) -> tuple[int | None, bytes]:
    """(path id or None, NLRI) of a table key."""
    if key and key[0] == PATH_MARK:
        return int.from_bytes(key[1:5], "big"), key[5:]
    return None, key


def path_id_text(path_id: int) -> str:
    """ExaBGP's spelling of a path id: dotted like an IPv4 address (0.0.0.1)."""
    return f"{path_id >> 24 & 255}.{path_id >> 16 & 255}.{path_id >> 8 & 255}.{path_id & 255}"


def wire_items(keys: list[bytes], addpath: bool) -> list[bytes]:
    """Table keys as the NLRI go on the wire: with the 4-byte path id (0 for a route without one,
    as ExaBGP sends it) when ADD-PATH send was negotiated for the family, without otherwise."""
    if addpath:
        return [k[1:] if k[0] == PATH_MARK else _NO_PATH_ID + k for k in keys]
    return [k[5:] if k[0] == PATH_MARK else k for k in keys]


def nlri_to_prefix(family: tuple[int, int], item: bytes) -> str:
    """Inverse of grammar.prefix.prefix_to_nlri for unicast families; other families use their
    formatter. A key with a path id reads as ExaBGP writes such a route: '10.0.0.0/24
    path-information 0.0.0.1'."""
    fmt = _FORMATTERS.get(family[1])
    if fmt is not None:
        return fmt(family, item)
    if item[0] == PATH_MARK:
        path_id = int.from_bytes(item[1:5], "big")
        return f"{nlri_to_prefix(family, item[5:])} path-information {path_id_text(path_id)}"
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
    return _split_prefixes(family, data, 0, b"")


def split_unicast_addpath(family: tuple[int, int], data: bytes | memoryview,
                          notes: list[str] | None = None) -> list[bytes]:
    """Split an ADD-PATH unicast NLRI field (RFC 7911 3: a 4-byte path id before each prefix) into
    table keys, each marked with its path id (path id 0 included: the peer sent it)."""
    return _split_prefixes(family, data, 4, _PATH_MARK_BYTE)


def _split_prefixes(family: tuple[int, int], data: bytes | memoryview, id_len: int,
                    mark: bytes) -> list[bytes]:
    """Items of `id_len` path-id bytes and a prefix each, `mark` put in front of every one."""
    maxlen = 32 if family[0] == AFI.IPV4 else 128
    out: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + id_len >= end:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{family_name(family)} ADD-PATH path identifier runs past the end "
                                  "of the NLRI field")
        plen = data[pos + id_len]
        if plen > maxlen:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{family_name(family)} prefix length {plen} > {maxlen}")
        nxt = pos + id_len + 1 + (plen + 7) // 8
        if nxt > end:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.INVALID_NETWORK_FIELD,
                           reason=f"{family_name(family)} prefix runs past the end of the NLRI field")
        item = mark + bytes(data[pos:nxt])
        if plen % 8 and item[-1] & (0xFF >> (plen % 8)):
            # Trailing bits set past the prefix length: normalise so the same route has one key.
            item = item[:-1] + bytes((item[-1] & (0xFF << (8 - plen % 8)) & 0xFF,))
        out.append(item)
        pos = nxt
    return out


# Families that can carry path ids (ExaBGP's list, less the families the agent does not do).
ADDPATH_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)


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
               notes: list[str] | None = None, addpath: bool = False) -> list[bytes]:
    if addpath and family[1] == SAFI.UNICAST:
        return split_unicast_addpath(family, data, notes)
    splitter = _SPLITTERS.get(family[1])
    if splitter is None:
        raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR,
                       reason=f"family {family_name(family)} is not supported")
    return splitter(family, data, notes)


def supported_family(family: tuple[int, int]) -> bool:
    return family[0] in _AFI_NAMES and family[1] in _SPLITTERS


# FlowSpec registers its splitter and formatter for SAFI 133 (it imports this module, so last).
from . import flowspec as _flowspec  # noqa: E402,F401
