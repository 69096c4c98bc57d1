"""The text commands API programs write on their stdout, one per line (ExaBGP's syntax).

    [SELECTOR] announce route PREFIX next-hop self|ADDR [med N] [local-preference N] [origin ...]
               [as-path [ ... ]] [community [ ... ]] [large-community [ ... ]] [extended-community [ ... ]]
    [SELECTOR] withdraw route PREFIX [ATTRIBUTES, ignored]
    [SELECTOR] announce|withdraw attributes ATTRIBUTES nlri PREFIX PREFIX ...
    [SELECTOR] announce eor [AFI SAFI]            [SELECTOR] announce route-refresh [AFI SAFI]
    [SELECTOR] flush adj-rib out                  [SELECTOR] teardown CEASE-SUBCODE
    [SELECTOR] announce flow route [NAME] { match { COMPONENT VALUE; ... } then { ACTION [VALUE]; ... } }
    [SELECTOR] announce flow route COMPONENT VALUE ... ACTION [VALUE] ...   (ExaBGP's one-line form)
    [SELECTOR] withdraw flow route { match { ... } }   (or the one-line form)
    show neighbor [summary|extensive|configuration|json] [ADDR]
    show adj-rib in|out [extensive] [json] [ADDR]
    reload   shutdown   version   help   enable-ack   disable-ack   silence-ack   # comment

SELECTOR is `neighbor ADDR [local-ip A] [local-as N] [peer-as N] [router-id I]`, repeated (`neighbor A
neighbor B`), comma separated (`neighbor A, neighbor B` or `neighbor A, B`), or `neighbor *`.

`parse_command(line)` turns a line into a Command, one frozen class per kind (Announce, Withdraw,
Teardown, ...), or raises CommandError with a message meant for the operator. It never touches the
speaker: the manager carries Commands out.

The usual line, `announce route PREFIX ATTRIBUTES` with no selector, takes a fast path: the prefix
is converted directly and the attribute text after it is looked up in a cache (programs repeat the
same attributes for thousands of prefixes), so a million lines parse in a couple of seconds.
"""

from __future__ import annotations

import difflib
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fleetbgp.config.lexer import tokenize_line
from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.flowspec import MATCH_NAMES, THEN_NAMES, build_rule, family_of, split_flow_tokens
from fleetbgp.grammar.route import (
    NO_OPTIONS,
    check_path_family,
    parse_prefix,
    parse_route_attributes,
    parse_route_options,
    split_route,
    withdraw_path_id,
)
from fleetbgp.literals import address_error, decimal, ip_address, leading_zero, shown
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.flowspec import FlowSpecError
from fleetbgp.wire.nlri import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    Family,
    family_from_name,
    family_name,
    path_key,
)


class CommandError(ValueError):
    """A line that is not a valid command. `message` is shown to the operator as is."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class NeighborFilter:
    """One `neighbor ADDR [local-ip A] [local-as N] [peer-as N] [router-id I]` group. address '*' = any."""

    address: str
    local_ip: str | None = None
    local_as: int | None = None
    peer_as: int | None = None
    router_id: str | None = None
    family: Family | None = None

    def describe(self) -> str:
        out = f"neighbor {self.address}"
        for word, value in (("local-ip", self.local_ip), ("local-as", self.local_as),
                            ("peer-as", self.peer_as), ("router-id", self.router_id)):
            if value is not None:
                out += f" {word} {value}"
        if self.family is not None:
            out += f" family-allowed {family_name(self.family).replace(' ', '-')}"
        return out


Selector = tuple[NeighborFilter, ...]
# An announced route: (family, NLRI key, attributes); the key carries an ADD-PATH path id, if any.
Route = tuple[Family, bytes, Attributes]
# A withdrawn one needs no attributes: (family, NLRI key).
RouteKey = tuple[Family, bytes]

# One frozen class per command kind; the manager tells them apart with one `match`. The route
# commands are built once per line on the hot path: frozen dataclasses pay for every field in
# __init__ (object.__setattr__), so they carry only what the line says, and the rare options
# (watchdog groups) get a class of their own instead of fields every announce would fill.


@dataclass(frozen=True, slots=True)
class Announce:
    """`announce route|attributes|flow ...`: routes to announce (replacing what the program sent)."""

    routes: tuple[Route, ...]
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class AnnounceInWatchdog:
    """`announce route ... watchdog GROUP [withdraw]`: the routes join GROUP and are announced,
    or kept back until `announce watchdog GROUP` when the line ends with `withdraw`."""

    routes: tuple[Route, ...]
    group: str
    kept_back: bool = False
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class Withdraw:
    """`withdraw route|attributes|flow ...` (attribute values on the line are ignored, as in ExaBGP)."""

    routes: tuple[RouteKey, ...]
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class MoveWatchdog:
    """`announce watchdog GROUP` (announce its kept-back routes) / `withdraw watchdog GROUP`."""

    group: str
    announce: bool
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class SendEndOfRib:
    """`announce eor [AFI SAFI]`: None = every negotiated family."""

    family: Family | None = None
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class RequestRouteRefresh:
    """`announce route-refresh [AFI SAFI]`: None = every negotiated family."""

    family: Family | None = None
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class FlushAdjRibOut:
    """`flush adj-rib out`: send the whole adj-rib-out again."""

    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class ClearAdjRib:
    """`clear adj-rib out` (withdraw every route sent) / `clear adj-rib in` (forget what was received)."""

    direction: Literal["in", "out"]
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class Teardown:
    """`neighbor ADDR teardown SUBCODE`: close the session with a Cease of this subcode."""

    code: int
    selector: Selector = ()


@dataclass(frozen=True, slots=True)
class ShowNeighbor:
    """`show neighbor [summary|extensive|configuration|json] [ADDR]`."""

    options: frozenset[str] = frozenset()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ShowAdjRib:
    """`show adj-rib in|out [extensive] [json] [ADDR]`: `options` holds the direction too."""

    options: frozenset[str] = frozenset()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Reload:
    """`reload`: the configuration file, as SIGHUP."""


@dataclass(frozen=True, slots=True)
class Restart:
    """`restart`: ExaBGP's; refused (reload keeps the sessions whose settings did not change)."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """`shutdown`: stop the agent, as SIGTERM."""


@dataclass(frozen=True, slots=True)
class Version:
    """`version`."""


@dataclass(frozen=True, slots=True)
class Help:
    """`help`."""


@dataclass(frozen=True, slots=True)
class EnableAck:
    """`enable-ack`: answer every command (done/error) from now on, this one included."""


@dataclass(frozen=True, slots=True)
class DisableAck:
    """`disable-ack`: answered `done`, then no more answers."""


@dataclass(frozen=True, slots=True)
class SilenceAck:
    """`silence-ack`: no more answers, not even to this line."""


@dataclass(frozen=True, slots=True)
class Comment:
    """`# text`: nothing to do (answered like any command)."""


# The commands that act on neighbors: they take a selector.
Scoped = (Announce | AnnounceInWatchdog | Withdraw | MoveWatchdog | SendEndOfRib | RequestRouteRefresh
          | FlushAdjRibOut | ClearAdjRib | Teardown)
# The others are the agent's or the program's own.
Unscoped = (ShowNeighbor | ShowAdjRib | Reload | Restart | Shutdown | Version | Help | EnableAck
            | DisableAck | SilenceAck | Comment)
Command = Scoped | Unscoped


_FILTER_WORDS = {"local-ip", "local-as", "peer-as", "router-id", "family-allowed"}

# What ExaBGP accepts that we recognise but do not do, with the reason given back to the program.
_UNSUPPORTED = {
    "vpls": "VPLS routes are not supported",
    "operational": "operational messages are not supported",
    "attribute": None,  # alias, handled
}

# The verbs that may start a command (after the selector): for "did you mean".
_VERBS = ("announce", "withdraw", "flush", "show", "teardown", "reload", "restart", "shutdown",
          "version", "help", "enable-ack", "disable-ack", "silence-ack", "neighbor", "clear")


# -- the fast path ---------------------------------------------------------------------------------

_Tail = tuple[Family, str]
_Parsed = tuple[Attributes, int | None]  # attributes, path id
_ATTR_CACHE: dict[_Tail, _Parsed | RouteError] = {}
_CACHE_MAX = 4096
# Longer attribute texts are parsed each time: 4096 cached 1 MiB lines would hold gigabytes.
_CACHE_TEXT = 4096
_ANNOUNCE_ROUTE = "announce route "
_WITHDRAW_ROUTE = "withdraw route "


def _announce_tail(family: Family, tail: str) -> _Parsed:
    """The attributes (and path id) written after the prefix, parsed once per distinct text."""
    key = (family, tail)
    found = _ATTR_CACHE.get(key)
    if found is None:
        try:
            found = parse_route_attributes(tuple(tokenize_line(tail)), family)
        except RouteError as exc:
            found = exc
        if len(tail) <= _CACHE_TEXT:
            if len(_ATTR_CACHE) >= _CACHE_MAX:
                _ATTR_CACHE.clear()
            _ATTR_CACHE[key] = found
    if isinstance(found, RouteError):
        raise CommandError(_route_message(found, "announce"))
    return found


def _withdraw_tail(family: Family, tail: str) -> int | None:
    """Attribute values after a withdrawn prefix are ignored, as ExaBGP ignores them: a drain
    script that writes `withdraw route P next-hop 0.0.0.0` must withdraw P. A path-information
    says which path of the prefix goes: its path id, or None."""
    if tail and not tail.isspace():
        return _withdraw_attributes(tuple(tokenize_line(tail)), family)
    return None


def _withdraw_attributes(tokens: Sequence[str], family: Family) -> int | None:
    try:
        path_id = withdraw_path_id(tokens, family)
        if path_id:
            check_path_family(family, 0)
    except RouteError as exc:
        raise CommandError(exc.message) from None
    return path_id


def _route_message(err: RouteError, verb: str) -> str:
    if err.index < 0 and verb == "announce":
        return "the route has no next-hop (add 'next-hop self' or 'next-hop ADDRESS')"
    return err.message


def _prefix(text: str) -> tuple[Family, bytes]:
    """A prefix -> (family, NLRI bytes); the common IPv4 form without any detour."""
    addr, sep, length = text.partition("/")
    if ":" not in addr:
        try:
            packed = _inet_pton(_AF_INET, addr)
        except (OSError, ValueError):
            pass
        else:
            plen = decimal(length, 32) if sep else 32
            if plen is not None and not int.from_bytes(packed, "big") & _HOST4[plen]:
                return IPV4_UNICAST, _PLEN_BYTE[plen] + packed[:_NBYTES[plen]]
    try:
        return parse_prefix((text,), 0)
    except RouteError as exc:
        raise CommandError(exc.message) from None


_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_U32 = 0xFFFFFFFF
_HOST4 = [(1 << (32 - n)) - 1 for n in range(33)]
_NBYTES = [(n + 7) // 8 for n in range(129)]
_PLEN_BYTE = [bytes((n,)) for n in range(129)]


def _has_options(tail: str) -> bool:
    """Route options (split, watchdog, withdraw, name) take the general path."""
    return "split" in tail or "watchdog" in tail or "withdraw" in tail or "name" in tail


def parse_command(line: str) -> Command:
    """One line of a program's output (without its newline) -> Command. Raises CommandError."""
    if line.startswith(_ANNOUNCE_ROUTE):
        prefix, _sep, tail = line[15:].partition(" ")
        if prefix and not _has_options(tail):
            family, nlri = _prefix(prefix)
            attrs, path_id = _announce_tail(family, tail)
            if path_id:
                nlri = path_key(nlri, path_id)
            return Announce(((family, nlri, attrs),))
    elif line.startswith(_WITHDRAW_ROUTE):
        prefix, _sep, tail = line[15:].partition(" ")
        if prefix and "split" not in tail:
            family, nlri = _prefix(prefix)
            path_id = _withdraw_tail(family, tail)
            if path_id:
                nlri = path_key(nlri, path_id)
            return Withdraw(((family, nlri),))
    return _parse_general(line)


# -- everything else -------------------------------------------------------------------------------

# Verbs that act on neighbors get the selector; the others refuse one.
_ScopedHandler = Callable[[Sequence[str], Selector], Scoped]
_UnscopedHandler = Callable[[Sequence[str]], Unscoped]


def _parse_general(line: str) -> Command:
    text = line.strip()
    if not text:
        raise CommandError("empty command")
    if text.startswith("#"):
        return Comment()
    toks = tokenize_line(text)
    if not toks:
        raise CommandError("empty command")
    selector, i = _parse_selector(toks)
    if i >= len(toks):
        raise CommandError("a neighbor selector needs a command after it, like "
                           "'neighbor 192.0.2.1 announce route ...'")
    verb = toks[i]
    rest = toks[i + 1:]
    scoped = _SCOPED_VERBS.get(verb)
    if scoped is not None:
        return scoped(rest, selector)
    unscoped = _UNSCOPED_VERBS.get(verb)
    if unscoped is None:
        close = difflib.get_close_matches(verb, _VERBS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CommandError(f"unknown command '{verb}'{hint}")
    cmd = unscoped(rest)  # its own errors first, as they say more than the selector's
    if selector:
        raise CommandError(f"'{verb}' does not take a neighbor selector")
    return cmd


def _parse_selector(toks: Sequence[str]) -> tuple[Selector, int]:
    """`neighbor A [filters] [, neighbor B | , B | neighbor C]...` at the start of toks."""
    out: list[NeighborFilter] = []
    i = 0
    n = len(toks)
    expect_address = False
    while i < n:
        tok = toks[i]
        if tok == "neighbor" and i + 1 < n and toks[i + 1] not in _NEIGHBOR_VERBS:
            i += 1
            expect_address = True
            continue
        if not expect_address:
            break
        expect_address = False
        address = tok
        trailing_comma = address.endswith(",")
        address = address.rstrip(",")
        if not address:
            raise CommandError("'neighbor' needs an address")
        filters: dict[str, str] = {}
        i += 1
        while not trailing_comma and i + 1 < n and toks[i] in _FILTER_WORDS:
            filters[toks[i]] = toks[i + 1].rstrip(",")
            trailing_comma = toks[i + 1].endswith(",")
            i += 2
        out.append(_make_filter(address, filters))
        if trailing_comma or (i < n and toks[i] == ","):
            if not trailing_comma:
                i += 1
            expect_address = True
            if i < n and toks[i] == "neighbor":
                i += 1
    if expect_address:
        raise CommandError("'neighbor' needs an address")
    return tuple(out), i


# `neighbor` followed by one of these is ExaBGP's `show neighbor` family, not a selector.
_NEIGHBOR_VERBS = frozenset(("summary", "extensive", "configuration", "json"))


def _check_address(word: str, text: str, expected: str = "an IP address") -> None:
    """A selector's address (a scope, `%eth0`, allowed) must be one; CommandError otherwise."""
    try:
        found = ip_address(text.partition("%")[0])
    except ValueError:
        found = None
    if found is None or (expected == "an IPv4 address" and found.version != 4):
        raise CommandError(f"{word} {address_error(text, expected)}")


def _make_filter(address: str, filters: dict[str, str]) -> NeighborFilter:
    if address != "*":
        _check_address("neighbor", address)
    kwargs: dict[str, object] = {}
    for word, value in filters.items():
        if word in ("local-as", "peer-as"):
            asn = decimal(value, _U32)
            if asn is None:
                raise CommandError(f"{word} {shown(value)}: expected an AS number 0..{_U32}")
            kwargs[word.replace("-", "_")] = asn
        elif word == "local-ip":
            _check_address(word, value)
            kwargs["local_ip"] = value
        elif word == "router-id":
            _check_address(word, value, "an IPv4 address")
            kwargs["router_id"] = value
        elif word == "family-allowed":
            afi, _sep, safi = value.partition("-")
            fam = family_from_name(afi, safi or "unicast")
            if fam is None:
                raise CommandError(f"family-allowed {value!r}: expected ipv4-unicast or ipv6-unicast")
            kwargs["family"] = fam
    return NeighborFilter(address, **kwargs)  # type: ignore[arg-type]


def _family_args(rest: Sequence[str], what: str) -> Family | None:
    if not rest:
        return None
    if len(rest) != 2:
        raise CommandError(f"{what} takes an optional family: {what} [ipv4|ipv6 unicast]")
    fam = family_from_name(rest[0], rest[1])
    if fam is None or fam not in (IPV4_UNICAST, IPV6_UNICAST):
        raise CommandError(f"{what}: family '{rest[0]} {rest[1]}' is not supported "
                           "(ipv4 unicast, ipv6 unicast)")
    return fam


def _announce_or_withdraw(verb: str) -> _ScopedHandler:
    def handler(rest: Sequence[str], selector: Selector) -> Scoped:
        if not rest:
            raise CommandError(f"'{verb}' needs what: {verb} route|attributes|eor|route-refresh ...")
        what = rest[0]
        if what == "route":
            return _route(verb, rest, 1, selector)
        if what in ("ipv4", "ipv6") and len(rest) > 1 and rest[1] == "unicast":
            cmd = _route(verb, rest, 2, selector)
            want = IPV4_UNICAST if what == "ipv4" else IPV6_UNICAST
            if cmd.routes and cmd.routes[0][0] != want:
                raise CommandError(f"{verb} {what} unicast: the prefix is not an {what} prefix")
            return cmd
        if what in ("attributes", "attribute"):
            return _bulk(verb, rest, selector)
        if what == "flow":
            return _flow(verb, rest[1:], selector)
        if what == "watchdog":
            if len(rest) != 2:
                raise CommandError(f"{verb} watchdog NAME: one name, the 'watchdog NAME' of the routes")
            return MoveWatchdog(rest[1], verb == "announce", selector)
        if what == "eor" and verb == "announce":
            return SendEndOfRib(_family_args(rest[1:], "announce eor"), selector)
        if what == "route-refresh" and verb == "announce":
            return RequestRouteRefresh(_family_args(rest[1:], "announce route-refresh"), selector)
        reason = _UNSUPPORTED.get(what)
        if reason:
            raise CommandError(reason)
        if what in ("ipv4", "ipv6"):
            raise CommandError(f"{verb} {what}: only '{what} unicast' is supported")
        known: tuple[str, ...] = ("route", "attributes", "watchdog")
        if verb == "announce":
            known += ("eor", "route-refresh")
        close = difflib.get_close_matches(what, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (expected {', '.join(known)})"
        raise CommandError(f"unknown {verb} '{what}'{hint}")
    return handler


def _route(verb: str, rest: Sequence[str], start: int,
           selector: Selector) -> Announce | AnnounceInWatchdog | Withdraw:
    if start >= len(rest):
        raise CommandError(f"{verb} route needs a prefix, like 192.0.2.0/24")
    toks = tuple(rest[start:])
    try:
        family, nlri = parse_prefix(toks, 0)
        if verb == "announce":
            family, nlri, attrs, options = parse_route_options(toks)  # the key has the path id
        else:
            nlri = path_key(nlri, _withdraw_attributes(toks[1:], family))
            options = parse_route_options(take_split(toks))[3] if "split" in toks else NO_OPTIONS
    except RouteError as exc:
        raise CommandError(_route_message(exc, verb)) from None
    # split /N was checked by parse_route_options
    keys = (nlri,) if options.split is None else split_route(family, nlri, options.split)
    if verb != "announce":
        return Withdraw(tuple([(family, key) for key in keys]), selector)
    routes = tuple([(family, key, attrs) for key in keys])
    if options.watchdog is None:
        return Announce(routes, selector)
    return AnnounceInWatchdog(routes, options.watchdog, options.withdrawn, selector)


def take_split(toks: tuple[str, ...]) -> tuple[str, ...]:
    """A withdrawn route's prefix and its `split /N`: the rest is ignored, as on any withdraw."""
    at = toks.index("split")
    return (toks[0], "next-hop", "self", *toks[at:at + 2])


def _bulk(verb: str, rest: Sequence[str], selector: Selector) -> Announce | Withdraw:
    """`announce attributes ATTRS nlri P1 P2 ...` (ExaBGP's bulk form; every prefix one family)."""
    try:
        split = list(rest).index("nlri")
    except ValueError:
        raise CommandError(f"{verb} attributes needs 'nlri PREFIX ...' after the attributes") from None
    attr_toks = tuple(rest[1:split])
    prefixes = rest[split + 1:]
    if not prefixes:
        raise CommandError(f"{verb} attributes: 'nlri' needs at least one prefix")
    announced: list[Route] = []
    withdrawn: list[RouteKey] = []
    family: Family | None = None
    attrs: Attributes | None = None
    path_id: int | None = None
    for index, text in enumerate(prefixes):
        if text in ("[", "]"):
            continue
        try:
            fam, nlri = parse_prefix(prefixes, index)
        except RouteError as exc:
            raise CommandError(exc.message) from None
        if family is None:
            family = fam
            try:
                if verb == "announce":
                    attrs, path_id = parse_route_attributes(attr_toks, fam)
                    if path_id:
                        check_path_family(fam, 0)
                else:
                    path_id = _withdraw_attributes(attr_toks, fam)
            except RouteError as exc:
                raise CommandError(_route_message(exc, verb)) from None
        elif fam != family:
            raise CommandError(f"{verb} attributes: {text} is {family_name(fam)}, the first prefix is "
                               f"{family_name(family)}; send one command per family")
        key = path_key(nlri, path_id) if path_id else nlri
        if attrs is None:  # a withdrawal's attributes are not kept
            withdrawn.append((fam, key))
        else:
            announced.append((fam, key, attrs))
    if family is None:
        raise CommandError(f"{verb} attributes: 'nlri' needs at least one prefix")
    return Announce(tuple(announced), selector) if announced else Withdraw(tuple(withdrawn), selector)


# -- FlowSpec ---------------------------------------------------------------------------------------

# The tokens -> (match, then) step is the codec's (fleetbgp.wire.flowspec.split_flow_tokens, the
# same as the CLI's); here only what is the API line's own: the optional name, the outer braces,
# VPN rules refused, "did you mean" hints, and `[ ... ]` values as lists (what the CLI sends).
_FLOW_UNKNOWN = "not a flow match component or action"


def _flow_body(toks: Sequence[str]) -> list[str]:
    """`{ [next-hop A;] match { ... } then { ... } }` -> the words between the outer braces."""
    depth = 0
    for i, tok in enumerate(toks):
        if tok == "{":
            depth += 1
            if depth > 2:
                raise CommandError("flow: unexpected '{' inside 'match { }' or 'then { }'")
        elif tok == "}":
            depth -= 1
            if depth == 0:
                if i != len(toks) - 1:
                    extra = " ".join(toks[i + 1:])
                    raise CommandError(f"flow: unexpected words after the closing '}}': {extra}")
                return list(toks[1:i])
    raise CommandError("flow: the rule's '{' is not closed with '}'")


def _flow_unknown(exc: FlowSpecError, block: bool) -> str:
    """The codec's "not a component or action" error as the API words it, with a hint."""
    word = exc.component
    close = difflib.get_close_matches(word, sorted(MATCH_NAMES | THEN_NAMES), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    if not block:
        return f"flow: unknown match component or action '{word}'{hint}"
    kind = ("a match component" if "'match" in exc.reason else
            "an action" if "'then" in exc.reason else "a match component or action")
    return f"flow: {word}: not {kind}{hint}"


def _listed(value: object) -> object:
    """"[ a b ]" (and lists holding such) -> ["a", "b"]; anything else as it is."""
    items = value if isinstance(value, list) else [value]
    if not any(isinstance(v, str) and v.startswith("[") for v in items):
        return value
    out: list[str] = []
    for v in items:
        text = str(v)
        out.extend(w for w in (text[1:-1] if text.startswith("[") else text).replace(",", " ").split() if w)
    return out


def parse_flow_rule(toks: Sequence[str]) -> tuple[dict[str, object], dict[str, object]]:
    """The words after `flow route` -> (match, then) as ExaBGP names -> values."""
    toks = list(toks)
    if toks and toks[0] not in ("{",) and len(toks) > 1 and toks[1] == "{":
        toks = toks[1:]  # a name: `announce flow route NAME { ... }`
    if not toks:
        raise CommandError("flow route needs a rule: flow route { match { ... } then { ... } }")
    block = toks[0] == "{"
    body = _flow_body(toks) if block else toks
    if any(t in ("rd", "route-distinguisher") for t in body):
        raise CommandError("flow: FlowSpec VPN rules (rd) are not supported")
    try:
        match, then = split_flow_tokens(body)
    except FlowSpecError as exc:
        if exc.reason.startswith(_FLOW_UNKNOWN):
            raise CommandError(_flow_unknown(exc, block)) from None
        raise CommandError(f"flow: {exc}") from None
    if not match:
        raise CommandError("flow: the rule has no 'match { ... }'" if block else
                           "flow: the rule has no match component (source, destination, port, ...)")
    return ({k: _listed(v) for k, v in match.items()}, {k: _listed(v) for k, v in then.items()})


def _flow(verb: str, rest: Sequence[str], selector: Selector) -> Announce | Withdraw:
    if not rest or rest[0] != "route":
        raise CommandError(f"{verb} flow route {{ match {{ ... }} then {{ ... }} }}: 'route' is missing")
    match, then = parse_flow_rule(rest[1:])
    try:
        fam = family_of(match)
        if verb == "announce":
            _rule, _actions, nlri, attrs = build_rule(fam, match, then)
            return Announce(((fam, nlri, attrs),), selector)
        # a withdrawal's actions are ignored, as a withdrawn route's attributes are
        _rule, _actions, nlri, _attrs = build_rule(fam, match, {})
    except FlowSpecError as exc:
        raise CommandError(f"flow: {exc}") from None
    return Withdraw(((fam, nlri),), selector)


def _flush(rest: Sequence[str], selector: Selector) -> FlushAdjRibOut:
    if list(rest) != ["adj-rib", "out"]:
        raise CommandError("only 'flush adj-rib out' is supported")
    return FlushAdjRibOut(selector)


def _clear(rest: Sequence[str], selector: Selector) -> ClearAdjRib:
    """ExaBGP's `clear adj-rib out` (withdraw every route sent to the neighbors) and `clear
    adj-rib in` (forget what they sent)."""
    if len(rest) != 2 or rest[0] != "adj-rib" or rest[1] not in ("in", "out"):
        raise CommandError("clear adj-rib in|out")
    return ClearAdjRib("in" if rest[1] == "in" else "out", selector)


def _teardown(rest: Sequence[str], selector: Selector) -> Teardown:
    code = decimal(rest[0], 255) if len(rest) == 1 else None
    if code is None:
        got = f" (got {shown(' '.join(rest))})" if rest else ""
        raise CommandError(f"teardown takes a Cease subcode 0..255: neighbor ADDR teardown 2 "
                           f"(2 = administrative shutdown){got}")
    return Teardown(code, selector)


_SHOW_NEIGHBOR_OPTIONS = frozenset(("summary", "extensive", "configuration", "json", "text"))
_SHOW_RIB_OPTIONS = frozenset(("extensive", "json", "text", "inet"))


def _show(rest: Sequence[str]) -> ShowNeighbor | ShowAdjRib:
    if not rest:
        raise CommandError("show what? show neighbor [summary|extensive|json] | show adj-rib out [json]")
    what = rest[0]
    words = list(rest[1:])
    if what == "neighbor":
        options = {w for w in words if w in _SHOW_NEIGHBOR_OPTIONS}
        others = [w for w in words if w not in _SHOW_NEIGHBOR_OPTIONS]
        return ShowNeighbor(frozenset(options), _show_target(others))
    if what in ("adj-rib", "adj-rib-in", "adj-rib-out"):
        if what == "adj-rib":
            if not words or words[0] not in ("in", "out"):
                raise CommandError("show adj-rib in|out [extensive] [json]")
            direction = words.pop(0)
        else:
            direction = what[8:]
        options = {w for w in words if w in _SHOW_RIB_OPTIONS} | {direction}
        others = [w for w in words if w not in _SHOW_RIB_OPTIONS]
        return ShowAdjRib(frozenset(options), _show_target(others))
    close = difflib.get_close_matches(what, ("neighbor", "adj-rib"), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise CommandError(f"unknown 'show {what}'{hint}: show neighbor ... | show adj-rib in|out ...")


def _show_target(words: list[str]) -> str | None:
    if not words:
        return None
    if len(words) > 1:
        raise CommandError(f"unexpected words: {shown(' '.join(words))}")
    problem = leading_zero(words[0])
    if problem is not None:
        raise CommandError(f"neighbor {problem}")
    try:
        ip_address(words[0].partition("%")[0])
    except ValueError:
        raise CommandError(f"unexpected word {shown(words[0])} (a neighbor address?)") from None
    return words[0]


def _no_arguments(verb: str, kind: Callable[[], Unscoped]) -> _UnscopedHandler:
    def handler(rest: Sequence[str]) -> Unscoped:
        if rest:
            raise CommandError(f"'{verb}' takes no arguments")
        return kind()
    return handler


_SCOPED_VERBS: dict[str, _ScopedHandler] = {
    "announce": _announce_or_withdraw("announce"),
    "withdraw": _announce_or_withdraw("withdraw"),
    "flush": _flush,
    "clear": _clear,
    "teardown": _teardown,
}

_UNSCOPED_VERBS: dict[str, _UnscopedHandler] = {
    "show": _show,
    "reload": _no_arguments("reload", Reload),
    "restart": _no_arguments("restart", Restart),
    "shutdown": _no_arguments("shutdown", Shutdown),
    "version": _no_arguments("version", Version),
    "help": _no_arguments("help", Help),
    "enable-ack": _no_arguments("enable-ack", EnableAck),
    "disable-ack": _no_arguments("disable-ack", DisableAck),
    "silence-ack": _no_arguments("silence-ack", SilenceAck),
}

HELP = """\
available API commands (ExaBGP syntax):
  [neighbor ADDR [local-ip A] [local-as N] [peer-as N] [router-id I] [, neighbor ADDR ...]] COMMAND
  announce route PREFIX next-hop self|ADDR [med N] [local-preference N] [origin igp|egp|incomplete]
      [as-path [ ASN ... ]] [community [ ... ]] [large-community [ ... ]] [extended-community [ ... ]]
  withdraw route PREFIX
  announce attributes ATTRIBUTES nlri PREFIX PREFIX ...
  withdraw attributes [ATTRIBUTES] nlri PREFIX PREFIX ...
  announce flow route { match { destination 192.0.2.0/24; destination-port =80; } then { discard; } }
  announce flow route destination 192.0.2.0/24 destination-port =80 protocol =tcp rate-limit 9600
  withdraw flow route { match { destination 192.0.2.0/24; destination-port =80; } }
  announce eor [ipv4|ipv6 unicast]
  announce route-refresh [ipv4|ipv6 unicast]
  flush adj-rib out
  neighbor ADDR teardown CEASE-SUBCODE
  show neighbor [summary|extensive|configuration|json] [ADDR]
  show adj-rib in|out [extensive] [json] [ADDR]
  reload | shutdown | version | help | enable-ack | disable-ack | silence-ack"""
