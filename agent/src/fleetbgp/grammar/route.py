"""Route syntax shared by the config file (`route ...;`), the API (`announce route ...`), the control
socket and health checks: read (parse_route, parse_attributes, ...) and written (route_text).

    PREFIX next-hop self|ADDRESS [med N] [local-preference N] [origin igp|egp|incomplete]
           [as-path [ ASN ... ( ASN ... ) ]] [community [ ... ]] [large-community [ ... ]]
           [extended-community [ ... ]] [atomic-aggregate] [aggregator ( ASN:ADDRESS )]
           [path-information N|A.B.C.D]

`path-information` is no attribute: it names one of several paths to the prefix (ADD-PATH,
RFC 7911), so it goes into the route's key (wire.nlri.path_key), not into its Attributes.

Functions take a token sequence (see lexer.tokenize_line) and raise RouteError carrying the index of
the offending token, so each caller can point at it in its own terms (file:line:col, API reply).
Parsed attribute sets are cached by their tokens: 100,000 routes that share attributes parse them once.
"""

from __future__ import annotations

import difflib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetbgp.literals import decimal, leading_zero, shown
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.constants import HEADER_LEN, MAX_EXTENDED_MESSAGE
from fleetbgp.wire.fit import size_problem
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family, path_key, split_key

from .communities import (
    U16,
    U32,
    community_text,
    extended_community_text,
    large_community_text,
    parse_community,
    parse_extended_community,
    parse_large_community,
)
from .errors import RouteError
from .prefix import parse_path_id, prefix_to_nlri

_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6

_ORIGINS = {"igp": 0, "egp": 1, "incomplete": 2}

# ExaBGP route keywords that fleetbgp does not implement: named, so the message can say so.
_UNSUPPORTED = {
    "split": "'split' makes several routes: it belongs to a route of the config or the API, not here",
    "watchdog": "'watchdog' groups routes: it belongs to a route of the config or the API, not here",
    "withdraw": "the 'withdraw' flag starts a watchdog route withdrawn: it belongs to a route of the "
                "config or the API, not here",
    "name": "a route 'name' belongs to a route of the config or the API, not here",
    "label": "labelled routes ('label') are not supported",
    "rd": "VPN routes ('rd') are not supported",
    "route-distinguisher": "VPN routes ('route-distinguisher') are not supported",
    "originator-id": "'originator-id' is not supported (fleetbgp is not a route reflector)",
    "cluster-list": "'cluster-list' is not supported (fleetbgp is not a route reflector)",
    "attribute": "raw 'attribute [ ... ]' is not supported",
    "aigp": "'aigp' is not supported",
    "bgp-prefix-sid": "'bgp-prefix-sid' is not supported",
    "aggregate": "did you mean 'atomic-aggregate' or 'aggregator'?",
}


# Keywords that make a route another NLRI (a label, a VPN route): a withdraw that carries one
# must not withdraw the plain prefix instead. (path-information does too, and is understood.)
NLRI_KEYWORDS = ("label", "rd", "route-distinguisher")
PATH_KEYWORD = "path-information"


def withdraw_problem(tokens: Sequence[str], family: Family) -> str | None:
    """What stops a withdraw of the prefix before `tokens`, or None. ExaBGP ignores the values
    of a withdrawn route's attributes (`withdraw route P next-hop 0.0.0.0` withdraws P), so only
    a keyword that names another NLRI, or a word that is no attribute at all (a typo), counts."""
    try:
        withdraw_path_id(tokens, family)
    except RouteError as exc:
        return exc.message
    return None


def withdraw_path_id(tokens: Sequence[str], family: Family) -> int | None:
    """The path id of a withdrawn route's `path-information` (None without one); RouteError for
    what stops the withdraw (see withdraw_problem), its index into `tokens`."""
    for i, tok in enumerate(tokens):
        if tok in NLRI_KEYWORDS:
            raise RouteError(i, _UNSUPPORTED[tok])
    path_id = _path_id_only(tokens)  # a bad path id would withdraw another route: an error
    try:
        parse_route_attributes(tuple(tokens), family, require_next_hop=False)
    except RouteError as exc:
        if exc.message.startswith(_UNKNOWN_ATTRIBUTE):
            raise
    return path_id


def _path_id_only(tokens: Sequence[str]) -> int | None:
    for i, tok in enumerate(tokens):
        if tok == PATH_KEYWORD:
            fields: dict[str, Any] = {}
            _path_information(tokens, i + 1, IPV4_UNICAST, fields)
            return fields.get("path_id")
    return None


def _uint(text: str, limit: int) -> int | None:
    """A decimal integer 0..limit, or None."""
    return decimal(text, limit)


def parse_asn(text: str) -> int | None:
    """An AS number 1..4294967295, plain (65001) or asdot (1.10 = 65546, RFC 5396); None if invalid."""
    value: int | None
    if "." in text:
        hi, _sep, lo = text.partition(".")
        h, low = _uint(hi, U16), _uint(lo, U16)
        if h is None or low is None:
            return None
        value = (h << 16) | low
    else:
        value = _uint(text, U32)
    if not value:
        return None
    return value


# The most bytes one attribute's value can take, even in an extended (65535-byte) UPDATE: the
# message header, its two length fields and the attribute's own header take the rest. Lists are
# refused as soon as they pass it, before anything larger is built.
_MAX_VALUE_BYTES = MAX_EXTENDED_MESSAGE - HEADER_LEN - 4 - 4


def _too_many(what: str, index: int, size: int) -> RouteError:
    return RouteError(index, f"{what}: too many values: more than {_MAX_VALUE_BYTES // size} ({size} bytes "
                             f"each) cannot fit in one UPDATE message, even an extended one "
                             f"({MAX_EXTENDED_MESSAGE} bytes, RFC 8654)")


def _values(toks: Sequence[str], i: int, what: str) -> tuple[list[tuple[int, str]], int]:
    """A single value or a `[ ... ]` list starting at toks[i]: ([(index, value), ...], next index).
    Commas between list items are accepted."""
    n = len(toks)
    if i >= n:
        raise RouteError(i - 1, f"'{what}' needs a value")
    tok = toks[i]
    if tok != "[":
        if tok in ("]", "(", ")"):
            raise RouteError(i, f"'{what}' needs a value, found '{tok}'")
        return [(i, v) for v in tok.split(",") if v], i + 1
    out: list[tuple[int, str]] = []
    j = i + 1
    while j < n:
        tok = toks[j]
        if tok == "]":
            return out, j + 1
        if tok == "[":
            raise RouteError(j, f"'[' inside the '{what}' list")
        out.extend((j, v) for v in tok.split(",") if v)
        j += 1
    raise RouteError(i, f"the '{what}' list opened here is not closed with ']'")


def _v4_int(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


# -- attribute keyword handlers: (tokens, index of the first value, family, fields) -> next index --

Handler = Callable[[Sequence[str], int, Family, dict[str, Any]], int]


def _one(toks: Sequence[str], i: int, what: str) -> str:
    if i >= len(toks):
        raise RouteError(i - 1, f"'{what}' needs a value")
    if toks[i] in ("[", "]", "(", ")"):
        raise RouteError(i, f"'{what}' takes one value, not '{toks[i]}'")
    return toks[i]


def _next_hop(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    value = _one(toks, i, "next-hop")
    if value == "self":
        f["next_hop"] = "self"
        return i + 1
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        problem = leading_zero(value) or f"{shown(value)} is not an IP address (or 'self')"
        raise RouteError(i, f"next-hop {problem}") from None
    want = 4 if family.afi == 1 else 6
    # An IPv4 unicast route may have an IPv6 next hop (RFC 8950): whether the neighbors it goes
    # to negotiate that is checked where the route comes in (config build, API, control).
    if addr.version != want and not (addr.version == 6 and family == IPV4_UNICAST):
        raise RouteError(i, f"next-hop {value} is IPv{addr.version}, but the route is IPv{want}")
    if addr.is_unspecified or addr.is_multicast:
        raise RouteError(i, f"next-hop {value} cannot be used as a next hop")
    f["next_hop"] = str(addr)
    return i + 1


def _u32_field(name: str, key: str) -> Handler:
    def handler(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
        value = _one(toks, i, name)
        number = _uint(value, U32)
        if number is None:
            raise RouteError(i, f"{name} {value!r}: expected a number 0..4294967295")
        f[key] = number
        return i + 1
    return handler


def _origin(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    value = _one(toks, i, "origin")
    code = _ORIGINS.get(value.lower())
    if code is None:
        raise RouteError(i, f"origin {value!r}: expected igp, egp or incomplete")
    f["origin"] = code
    return i + 1


def _as_path(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    """One ASN, or groups one after the other as ExaBGP writes them: `[ ... ]` an AS_SEQUENCE,
    `( ... )` an AS_SET (`[ 65001 ] ( 65010 65011 )`). A set may also sit inside the brackets
    (`[ 65001 ( 65010 65011 ) ]`, fleetbgp's older form)."""
    n = len(toks)
    if i >= n:
        raise RouteError(i - 1, "'as-path' needs a value")
    if toks[i] not in ("[", "("):
        asn = parse_asn(toks[i])
        if asn is None:
            raise RouteError(i, f"as-path: {toks[i]!r} is not an AS number (1..4294967295)")
        f["as_path"] = ((2, (asn,)),)
        return i + 1
    segments: list[tuple[int, tuple[int, ...]]] = []
    counted = [0]
    j = i
    while j < n and toks[j] in ("[", "("):
        j = (_as_sequence if toks[j] == "[" else _as_set)(toks, j, segments, counted, i - 1)
    f["as_path"] = tuple(segments)
    return j


def _asns_in(tok: str, j: int, into: list[int], counted: list[int], keyword: int) -> None:
    for part in tok.split(","):
        if not part:
            continue
        asn = parse_asn(part)
        if asn is None:
            raise RouteError(j, f"as-path: {part!r} is not an AS number (1..4294967295)")
        into.append(asn)
        counted[0] += 1
        if counted[0] > _MAX_VALUE_BYTES // 4:
            raise _too_many("as-path", keyword, 4)


def _as_set(toks: Sequence[str], i: int, segments: list[tuple[int, tuple[int, ...]]],
            counted: list[int], keyword: int) -> int:
    """`( ASN ... )` at toks[i] -> an AS_SET segment; the index after ')'."""
    members: list[int] = []
    for j in range(i + 1, len(toks)):
        tok = toks[j]
        if tok == ")":
            if not members:
                raise RouteError(j, "as-path: empty AS_SET '( )'")
            segments.append((1, tuple(members)))
            return j + 1
        if tok == "]":
            break
        if tok in ("(", "["):
            raise RouteError(j, f"as-path: '{tok}' inside an AS_SET")
        _asns_in(tok, j, members, counted, keyword)
    raise RouteError(i, "as-path: '(' is not closed with ')'")


def _as_sequence(toks: Sequence[str], i: int, segments: list[tuple[int, tuple[int, ...]]],
                 counted: list[int], keyword: int) -> int:
    """`[ ASN ... ]` at toks[i], sets inside allowed -> segments; the index after ']'."""
    seq: list[int] = []
    j = i + 1
    n = len(toks)
    while j < n:
        tok = toks[j]
        if tok == "]":
            if seq:
                segments.append((2, tuple(seq)))
            return j + 1
        if tok == "(":
            if seq:
                segments.append((2, tuple(seq)))
                seq = []
            j = _as_set(toks, j, segments, counted, keyword)
            continue
        if tok in (")", "["):
            raise RouteError(j, f"as-path: '{tok}' without its opening bracket" if tok == ")" else
                             "as-path: '[' inside the list")
        _asns_in(tok, j, seq, counted, keyword)
        j += 1
    raise RouteError(i, "the 'as-path' list opened here is not closed with ']'")


def _list_field(name: str, key: str, parse: Callable[[str], Any], size: int) -> Handler:
    """A `[ ... ]` list of values of `size` bytes each: duplicates dropped (first one kept, in
    order), and no more than can fit in a message."""
    most = _MAX_VALUE_BYTES // size

    def handler(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
        items, nxt = _values(toks, i, name)
        out: dict[Any, None] = {}  # ordered and linear: a list's `in` made 20,000 values take seconds
        for index, text in items:
            try:
                value = parse(text)
            except ValueError as exc:
                raise RouteError(index, str(exc)) from None
            out[value] = None
            if len(out) > most:
                raise _too_many(name, i - 1, size)
        f[key] = tuple(out)
        return nxt
    return handler


def _atomic_aggregate(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    f["atomic_aggregate"] = True
    return i


def _aggregator(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    n = len(toks)
    if i >= n:
        raise RouteError(i - 1, "'aggregator' needs a value: ( ASN:IPv4-ADDRESS )")
    start = i
    closing = False
    if toks[i] == "(":
        closing = True
        i += 1
    if i >= n:
        raise RouteError(start, "'aggregator' needs a value: ( ASN:IPv4-ADDRESS )")
    text = toks[i]
    asn_text, sep, addr = text.partition(":")
    asn = parse_asn(asn_text)
    if not sep or asn is None or _v4_int(addr) is None:
        problem = leading_zero(addr) if sep else None
        raise RouteError(i, f"aggregator {problem}" if problem else
                         f"aggregator {shown(text)}: expected ASN:IPv4-ADDRESS, like 65001:192.0.2.1")
    i += 1
    if closing:
        if i >= n or toks[i] != ")":
            raise RouteError(start, "aggregator: '(' is not closed with ')'")
        i += 1
    f["aggregator"] = (asn, str(ipaddress.IPv4Address(addr)))
    return i


def _path_information(toks: Sequence[str], i: int, family: Family, f: dict[str, Any]) -> int:
    value = _one(toks, i, PATH_KEYWORD)
    try:
        f["path_id"] = parse_path_id(value)
    except ValueError as exc:
        raise RouteError(i, str(exc)) from None
    return i + 1


_HANDLERS: dict[str, Handler] = {
    "next-hop": _next_hop,
    "med": _u32_field("med", "med"),
    "local-preference": _u32_field("local-preference", "local_pref"),
    "origin": _origin,
    "as-path": _as_path,
    "community": _list_field("community", "communities", parse_community, 4),
    "large-community": _list_field("large-community", "large_communities", parse_large_community, 12),
    "extended-community": _list_field("extended-community", "ext_communities", parse_extended_community,
                                      8),
    "atomic-aggregate": _atomic_aggregate,
    "aggregator": _aggregator,
    PATH_KEYWORD: _path_information,
}
ATTRIBUTE_KEYWORDS = tuple(_HANDLERS)
_UNKNOWN_ATTRIBUTE = "unknown route attribute"


def _unknown(word: str, index: int) -> RouteError:
    hint = _UNSUPPORTED.get(word)
    if hint is not None:
        return RouteError(index, hint)
    shown = repr(word) if word[:1] not in ("'", '"') else "a quoted string"
    close = difflib.get_close_matches(word, ATTRIBUTE_KEYWORDS, n=1, cutoff=0.6)
    if close:
        return RouteError(index, f"{_UNKNOWN_ATTRIBUTE} {shown} (did you mean '{close[0]}'?)")
    return RouteError(index, f"{_UNKNOWN_ATTRIBUTE} {shown} (expected one of: "
                             f"{', '.join(ATTRIBUTE_KEYWORDS)})")


# (attributes, path id or None, index of the path-information keyword or -1)
_Parsed = tuple[Attributes, int | None, int]


def _parse(toks: tuple[str, ...], family: Family, require_next_hop: bool) -> _Parsed:
    """Attributes and path id from tokens (indexes in errors are relative to `toks`)."""
    fields: dict[str, Any] = {}
    seen: dict[str, int] = {}
    i = 0
    n = len(toks)
    while i < n:
        word = toks[i]
        handler = _HANDLERS.get(word)
        if handler is None:
            raise _unknown(word, i)
        if word in seen:
            raise RouteError(i, f"'{word}' is given twice in this route")
        seen[word] = i
        i = handler(toks, i + 1, family, fields)
    if require_next_hop and "next_hop" not in fields:
        raise RouteError(-1, "the route has no next-hop (add 'next-hop self' or 'next-hop ADDRESS')")
    path_id = fields.pop("path_id", None)
    attrs = Attributes.make(**fields)
    # Each list fits alone, together they may not; the limit of the neighbors the route goes to
    # (4096 bytes unless they take extended messages) is checked where it is announced.
    problem = size_problem(family, b"", attrs, MAX_EXTENDED_MESSAGE)
    if problem is not None:
        raise RouteError(_largest(seen, fields), problem)
    return attrs, path_id, seen.get(PATH_KEYWORD, -1)


def _largest(seen: dict[str, int], fields: dict[str, Any]) -> int:
    """The index of the keyword whose value takes the most room (where to point an error)."""
    sizes = {"as-path": 4 * sum(len(asns) for _seg_type, asns in fields.get("as_path", ())),
             "community": 4 * len(fields.get("communities", ())),
             "large-community": 12 * len(fields.get("large_communities", ())),
             "extended-community": 8 * len(fields.get("ext_communities", ()))}
    word = max((w for w in sizes if w in seen), key=sizes.__getitem__, default=None)
    return seen[word] if word is not None else 0


_CACHE: dict[tuple[Any, ...], _Parsed | RouteError] = {}
_CACHE_MAX = 4096
# Longer attribute texts are parsed each time: 4096 cached 1 MiB API lines would hold gigabytes.
_CACHE_TOKENS = 256


def parse_attributes(tokens: Sequence[str], family: Family, start: int = 0, *,
                     require_next_hop: bool = True) -> Attributes:
    """The attributes in tokens[start:]. RouteError indexes are into `tokens`; a missing next-hop
    points at tokens[start - 1] (the prefix, in a route). For places that take attributes but no
    route of their own (health check options): `path-information` is an error there."""
    attrs, _path_id, where = _parse_cached(tokens, family, start, require_next_hop)
    if where >= 0:
        raise RouteError(where + start, f"'{PATH_KEYWORD}' names a path of a route, it cannot be "
                                        "given here")
    return attrs


def parse_route_attributes(tokens: Sequence[str], family: Family, start: int = 0, *,
                           require_next_hop: bool = True) -> tuple[Attributes, int | None]:
    """(attributes, path id or None) of a route from tokens[start:]; errors as parse_attributes."""
    attrs, path_id, _where = _parse_cached(tokens, family, start, require_next_hop)
    return attrs, path_id


def _parse_cached(tokens: Sequence[str], family: Family, start: int,
                  require_next_hop: bool) -> _Parsed:
    toks = tuple(tokens[start:]) if start or not isinstance(tokens, tuple) else tokens
    key = (family, require_next_hop, toks)
    found = _CACHE.get(key)
    if found is None:
        try:
            found = _parse(toks, family, require_next_hop)
        except RouteError as exc:
            found = exc
        if len(toks) <= _CACHE_TOKENS:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = found
    if isinstance(found, RouteError):
        raise RouteError(max(found.index + start, 0), found.message)
    return found


def parse_prefix(tokens: Sequence[str], index: int = 0) -> tuple[Family, bytes]:
    """tokens[index] as a prefix: (family, NLRI wire bytes)."""
    if index >= len(tokens):
        raise RouteError(max(index - 1, 0), "a route needs a prefix, like 192.0.2.0/24")
    text = tokens[index]
    if text in ("[", "]", "(", ")") or text[:1] in ("'", '"'):
        raise RouteError(index, "a route needs a prefix, like 192.0.2.0/24")
    # Fast path for the usual IPv4 prefix; anything unusual (and every error) goes through
    # prefix_to_nlri, which has the full rules and the messages.
    addr, sep, length = text.partition("/")
    if not sep or (length.isascii() and length.isdigit() and len(length) <= 3):
        v6 = ":" in addr
        try:
            packed = _inet_pton(_AF_INET6 if v6 else _AF_INET, addr)
        except (OSError, ValueError):
            pass
        else:
            bits = 128 if v6 else 32
            plen = int(length) if sep else bits
            if plen <= bits and not int.from_bytes(packed, "big") & ((1 << (bits - plen)) - 1):
                return IPV6_UNICAST if v6 else IPV4_UNICAST, bytes((plen,)) + packed[:(plen + 7) // 8]
    try:
        return prefix_to_nlri(text)
    except ValueError as exc:
        raise RouteError(index, str(exc)) from None


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """ExaBGP's route keywords that are not path attributes: they say which routes to make
    (`split /N`), group them for the API (`watchdog NAME`, started withdrawn with `withdraw`), or
    label them (`name`, which ExaBGP does not send either)."""

    name: str | None = None
    split: int | None = None
    watchdog: str | None = None
    withdrawn: bool = False


NO_OPTIONS = RouteOptions()
_OPTION_WORDS = frozenset(("name", "split", "watchdog", "withdraw"))
# A split makes 2**(N - length) routes; more than this is a typo (/8 split /32 would be 16 million).
MAX_SPLIT_ROUTES = 65536
# ExaBGP's API verbs name a watchdog; they cannot be one.
_NOT_A_WATCHDOG = ("announce", "withdraw")


def take_options(tokens: Sequence[str], start: int) -> tuple[tuple[str, ...], RouteOptions, list[int] | None]:
    """tokens[start:] without the route options, the options, and where each kept token was in
    `tokens` (None when there is no option: the tokens are unchanged). Raises RouteError."""
    rest = tuple(tokens[start:]) if start or not isinstance(tokens, tuple) else tokens
    if _OPTION_WORDS.isdisjoint(rest):
        return rest, NO_OPTIONS, None
    kept: list[str] = []
    where: list[int] = []
    found: dict[str, Any] = {}
    seen: set[str] = set()
    i = 0
    while i < len(rest):
        word = rest[i]
        at = start + i
        if word not in _OPTION_WORDS:
            kept.append(word)
            where.append(at)
            i += 1
            continue
        if word in seen:
            raise RouteError(at, f"'{word}' is given twice in this route")
        seen.add(word)
        if word == "withdraw":
            found["withdrawn"] = True
            i += 1
            continue
        if i + 1 >= len(rest) or rest[i + 1] in ("[", "]", "(", ")", "{", "}"):
            raise RouteError(at, {"name": "'name' needs a value: name NAME",
                                  "split": "'split' needs a prefix length: split /24",
                                  "watchdog": "'watchdog' needs a name: watchdog NAME"}[word])
        value = rest[i + 1]
        if word == "split":
            length = decimal(value[1:], 128) if value.startswith("/") else None
            if length is None:
                raise RouteError(at + 1, f"split {value!r}: expected a prefix length like /24")
            found["split"] = length
        elif word == "watchdog":
            if value.lower() in _NOT_A_WATCHDOG:
                raise RouteError(at + 1, f"watchdog {value!r}: 'announce' and 'withdraw' cannot be "
                                         "watchdog names (the API would misread them)")
            found["watchdog"] = value
        else:
            found["name"] = value
        i += 2
    if found.get("withdrawn") and "watchdog" not in found:
        raise RouteError(start + rest.index("withdraw"),
                         "the 'withdraw' flag starts a watchdog route withdrawn: add 'watchdog NAME'")
    return tuple(kept), RouteOptions(**found), where


def split_route(family: Family, key: bytes, length: int) -> list[bytes]:
    """The route keys of the /length prefixes that make up `key`'s prefix (ExaBGP's `split
    /length`); a path id stays on each of them."""
    path_id, nlri = split_key(key)
    if path_id is not None:
        return [path_key(part, path_id) for part in split_route(family, nlri, length)]
    bits = 32 if family.afi == 1 else 128
    own = nlri[0]
    if not own <= length <= bits:
        raise ValueError(f"split /{length}: the length must be between the prefix's own /{own} and /{bits}")
    count = 1 << (length - own)
    if count > MAX_SPLIT_ROUTES:
        raise ValueError(f"split /{length} of a /{own} makes {count} routes, more than {MAX_SPLIT_ROUTES}")
    base = int.from_bytes(nlri[1:].ljust(bits // 8, b"\0"), "big")
    step = 1 << (bits - length)
    size = (length + 7) // 8
    head = bytes((length,))
    return [head + ((base + k * step) >> (bits - 8 * size)).to_bytes(size, "big") if size else head
            for k in range(count)]


def parse_route_options(tokens: Sequence[str], start: int = 0
                        ) -> tuple[Family, bytes, Attributes, RouteOptions]:
    """parse_route, with ExaBGP's route options (name, split, watchdog, withdraw) taken out first.
    RouteError indexes point into `tokens`."""
    kept, options, where = take_options(tokens, start)
    if where is None:
        return (*parse_route(tokens, start), NO_OPTIONS)
    try:
        family, nlri, attrs = parse_route(kept)
    except RouteError as exc:
        index = where[exc.index] if 0 <= exc.index < len(where) else (where[-1] if where else start)
        raise RouteError(index, exc.message) from None
    if options.split is not None:
        try:
            split_route(family, nlri, options.split)
        except ValueError as exc:
            raise RouteError(start + list(tokens[start:]).index("split") + 1, str(exc)) from None
    return family, nlri, attrs, options


def parse_route(tokens: Sequence[str], start: int = 0) -> tuple[Family, bytes, Attributes]:
    """`PREFIX ATTRIBUTES...` from tokens[start:] -> (family, route key, interned Attributes). The
    key is the NLRI wire bytes, with the path id in front when `path-information` is given
    (wire.nlri.path_key).

    Raises RouteError whose index points into `tokens`. A route needs a next-hop.
    """
    family, nlri = parse_prefix(tokens, start)
    attrs, path_id, where = _parse_cached(tokens, family, start + 1, True)
    if path_id:
        check_path_family(family, where + start + 1)
        nlri = path_key(nlri, path_id)
    return family, nlri, attrs


def check_path_family(family: Family, index: int) -> None:
    """Path ids are for unicast routes (as in ExaBGP): RouteError at `index` otherwise."""
    if family not in (IPV4_UNICAST, IPV6_UNICAST):
        raise RouteError(index, f"'{PATH_KEYWORD}' is for unicast routes only")


# -- Attributes -> text ----------------------------------------------------------------------------

ORIGIN_NAMES = ("igp", "egp", "incomplete")
# ExaBGP 5.0.15's text for AS_PATH segment types (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, SET).
_EXABGP_SEGMENTS = {1: ("[", "]"), 2: ("(", ")"), 3: ("{(", ")}"), 4: ("{[", "]}")}


def origin_text(origin: int) -> str:
    return ORIGIN_NAMES[origin] if origin < 3 else str(origin)


def as_path_text(path: Sequence[tuple[int, Sequence[int]]], exabgp: bool = False) -> str:
    """The agent's form, which parse_route reads back: `[ 65001 65002 ( 65010 65011 ) ]` (an
    AS_SET in parentheses inside the sequence). `exabgp`: ExaBGP's, each segment in its own
    brackets, what API programs read."""
    parts: list[str] = []
    if exabgp:
        for seg_type, asns in path:
            head, tail = _EXABGP_SEGMENTS.get(seg_type, ("(", ")"))
            parts.append(f"{head} {' '.join(map(str, asns))} {tail}")
        return " ".join(parts)
    for seg_type, asns in path:
        if seg_type == 1:  # AS_SET
            parts.append("( " + " ".join(map(str, asns)) + " )")
        else:
            parts.extend(map(str, asns))
    return "[ " + " ".join(parts) + " ]"


def route_text(prefix: str, attrs: Attributes) -> str:
    """The route in the agent's syntax, what `announce route ...` and the config take back (the
    control socket shows it)."""
    words = [prefix]
    if attrs.next_hop is not None:
        words += ["next-hop", attrs.next_hop]
    if attrs.origin:
        words += ["origin", origin_text(attrs.origin)]
    if attrs.as_path:
        words += ["as-path", as_path_text(attrs.as_path)]
    if attrs.med is not None:
        words += ["med", str(attrs.med)]
    if attrs.local_pref is not None:
        words += ["local-preference", str(attrs.local_pref)]
    if attrs.communities:
        words += ["community", _bracketed(map(community_text, attrs.communities))]
    if attrs.large_communities:
        words += ["large-community", _bracketed(map(large_community_text, attrs.large_communities))]
    if attrs.ext_communities:
        words += ["extended-community", _bracketed(map(extended_community_text, attrs.ext_communities))]
    if attrs.atomic_aggregate:
        words.append("atomic-aggregate")
    if attrs.aggregator is not None:
        words += ["aggregator", f"( {attrs.aggregator[0]}:{attrs.aggregator[1]} )"]
    return " ".join(words)


def _bracketed(items: Iterable[str]) -> str:
    return "[ " + " ".join(items) + " ]"


def _exabgp_list(name: str, items: list[str]) -> str:
    if len(items) == 1:
        return f" {name} {items[0]}"
    return f" {name} [ {' '.join(items)} ]"


def exabgp_attributes_text(attrs: Attributes, ext_text: Callable[[int], str] | None = None) -> str:
    """ExaBGP 5.0.15's text of the attributes after `next-hop X` (leading space included), as API
    programs read it. `ext_text`: how to write each extended community (FlowSpec routes name their
    actions); ExaBGP's plain form otherwise."""
    out = [f" origin {origin_text(attrs.origin)}"]
    if attrs.as_path:
        out.append(" as-path " + as_path_text(attrs.as_path, exabgp=True))
    if attrs.med is not None:
        out.append(f" med {attrs.med}")
    if attrs.local_pref is not None:
        out.append(f" local-preference {attrs.local_pref}")
    if attrs.atomic_aggregate:
        out.append(" atomic-aggregate")
    if attrs.aggregator is not None:
        out.append(f" aggregator ( {attrs.aggregator[0]}:{attrs.aggregator[1]} )")
    if attrs.communities:
        out.append(_exabgp_list("community", [community_text(c, exabgp=True)
                                              for c in sorted(attrs.communities)]))
    if attrs.ext_communities:
        text = ext_text or _exabgp_extended
        out.append(_exabgp_list("extended-community", [text(c) for c in sorted(attrs.ext_communities)]))
    if attrs.large_communities:
        out.append(_exabgp_list("large-community",
                                [large_community_text(c) for c in sorted(attrs.large_communities)]))
    for flags, code, value in attrs.other:
        out.append(f" attribute [ 0x{code:02X} 0x{flags:02X} 0x{value.hex().upper()} ]")
    return "".join(out)


def _exabgp_extended(value: int) -> str:
    return extended_community_text(value, exabgp=True)
