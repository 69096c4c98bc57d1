"""Statements -> typed model, with every error found (not only the first) and its place.

The parser streams: a stack of blocks (top level, neighbor, family, static, ...) receives the
statements of the lexer. Neighbors and templates are first collected as `NeighborSpec`s (settings
with the place each was written); once the whole file is read, templates are merged into the
neighbors that inherit them, defaults applied and cross-references checked (templates, processes,
duplicate neighbors), then the model is built.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import difflib
import ipaddress
import os
import re
from typing import Any, ClassVar

from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.flowspec import build_rule, family_of, nlri_name
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.grammar.route import (
    RouteOptions,
    parse_asn,
    parse_attributes,
    parse_prefix,
    parse_route_options,
    split_route,
)
from fleetbgp.literals import address_error, decimal, ip_address, leading_zero, shown
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.constants import MAX_EXTENDED_MESSAGE, MAX_MESSAGE
from fleetbgp.wire.fit import exceeds, message_limit, size_problem
from fleetbgp.wire.flowspec import FlowSpecError
from fleetbgp.wire.nlri import (
    ADDPATH_FAMILIES,
    IPV4_FLOWSPEC,
    IPV4_UNICAST,
    IPV6_FLOWSPEC,
    IPV6_UNICAST,
    Family,
    family_name,
    nlri_to_prefix,
)

from .errors import ConfigError, Diagnostic, Location
from .lexer import Lexer, Statement, is_quoted, unquote
from .limits import MAX_METRIC, MAX_ROUTES, metric_overflow
from .model import (
    ANY_V4,
    ANY_V6,
    BFD_AUTH_TYPES,
    BFD_DEFAULT_INTERVAL_MS,
    BFD_DEFAULT_MULTIPLIER,
    BFD_MAX_INTERVAL_MS,
    DEFAULT_PORT,
    MESSAGE_FLAG_NAMES,
    Api,
    BfdSettings,
    Capabilities,
    CheckSpec,
    CommandCheckSpec,
    Config,
    DnsCheckSpec,
    FlowRoute,
    HealthCheck,
    HttpCheckSpec,
    MessageFlags,
    Neighbor,
    Process,
    Secret,
    StaticRoutes,
    TcpCheckSpec,
    WatchdogRoute,
)
from .targets import encode_name, split_url

SUPPORTED_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST, IPV4_FLOWSPEC, IPV6_FLOWSPEC)
DEFAULT_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)
MD5_MAX_KEY = 80  # TCP_MD5SIG_MAXKEYLEN
GR_MAX = 4095  # graceful restart time is 12 bits (RFC 4724 3)

_V6_NEXT_HOP_PLACES = 16
_TRUE = frozenset(("true", "enable", "enabled", "yes", "on"))
_FALSE = frozenset(("false", "disable", "disabled", "no", "off"))
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# Messages that never quote a word of the line (others on an md5-password line are redacted).
_SECRET_SAFE_PREFIXES = ("md5-password", "'md5-password'", "auth-password", "'auth-password'", "missing ';'",
                         "string opened")
_REDACTED = ("error on a line with an {0} (details not shown, to keep the password out of "
             "logs): put {0} on a line of its own")


Names = dict[str, str]


class _Skip(Exception):
    """A statement whose error was already reported."""


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _show(word: str) -> str:
    return "a quoted string" if is_quoted(word) else f"'{word}'"


class NeighborSpec:
    """A neighbor or template as written: each setting with where it was set."""

    __slots__ = ("name", "template", "loc", "fields", "failed", "families", "capabilities", "routes",
                 "route_locs", "apis", "inherits", "flows", "big_routes", "watchdogs", "nexthops",
                 "v6_next_hop_routes", "add_path")

    def __init__(self, name: str, template: bool, loc: Location) -> None:
        self.name = name
        self.template = template
        self.loc = loc
        self.fields: dict[str, tuple[Any, Location, str]] = {}
        self.failed: set[str] = set()  # settings given with a bad value (already reported)
        self.families: tuple[tuple[Family, ...], Location] | None = None
        # The `nexthop { ipv4 unicast ipv6; }` block: (NLRI family, its place) pairs, and the block's.
        self.nexthops: tuple[tuple[tuple[Family, Location], ...], Location] | None = None
        # The first IPv4 routes written with an IPv6 next hop (RFC 8950 needs the nexthop block),
        # to name the place of one still there in the end; a few, not all of 100,000.
        self.v6_next_hop_routes: list[tuple[bytes, Location]] = []
        # The `add-path { AFI SAFI; }` block: the families to offer ADD-PATH for (default: all).
        self.add_path: tuple[tuple[Family, ...], Location] | None = None
        self.capabilities: dict[str, tuple[Any, Location, str]] = {}
        self.routes: StaticRoutes = {}
        self.route_locs: dict[Family, Location] = {}
        self.apis: list[Api] = []
        self.inherits: list[tuple[str, Location]] = []
        self.flows: list[FlowRoute] = []
        # Routes larger than a 4096-byte UPDATE: they need extended messages (checked in build()).
        self.big_routes: list[tuple[Family, bytes, Attributes, Location]] = []
        # `watchdog NAME` routes: name -> (family, nlri, attributes, started withdrawn)
        self.watchdogs: dict[str, list[WatchdogRoute]] = {}


# ------------------------------------------------------------------------------------------------
# Blocks


class Block:
    """A `{ ... }` context. Subclasses fill STATEMENTS/BLOCKS with method names."""

    kind = ""
    STATEMENTS: ClassVar[Names] = {}
    BLOCKS: ClassVar[Names] = {}
    UNSUPPORTED: ClassVar[Names] = {}

    def __init__(self, parser: Parser, stmt: Statement | None, title: str) -> None:
        self.parser = parser
        self.title = title
        self.loc = parser.lex.location(stmt, 0) if stmt is not None else Location(parser.file, 0, 0)
        self.errors_before = len(parser.diags)

    def had_errors(self) -> bool:
        """Was anything inside this block reported? (Then "the block is empty" would be noise.)"""
        return len(self.parser.diags) > self.errors_before

    def statement(self, stmt: Statement) -> None:
        word = stmt.words[0]
        name = self.STATEMENTS.get(word)
        if name is not None:
            try:
                getattr(self, name)(stmt)
            except _Skip:
                pass
            return
        if word in self.BLOCKS:
            self.parser.error(stmt, 0, f"'{word}' is a block: write {word} {{ ... }}")
            return
        self.unknown(stmt)

    def open(self, stmt: Statement) -> Block:
        if not stmt.words:
            self.parser.error(stmt, 0, "'{' without a block name before it")
            return SkipBlock(self.parser, stmt, "?")
        word = stmt.words[0]
        name = self.BLOCKS.get(word)
        if name is not None:
            try:
                block: Block = getattr(self, name)(stmt)
                return block
            except _Skip:
                return SkipBlock(self.parser, stmt, word)
        if word in self.STATEMENTS:
            self.parser.error(stmt, 0, f"'{word}' is a statement, not a block: end it with ';'")
        else:
            self.unknown(stmt)
        return SkipBlock(self.parser, stmt, word)

    def close(self, stmt: Statement | None) -> None:
        pass

    def unknown(self, stmt: Statement) -> None:
        word = stmt.words[0]
        hint = self.UNSUPPORTED.get(word)
        if hint is not None:
            self.parser.error(stmt, 0, hint)
            return
        if word in ("[", "]", "(", ")"):
            self.parser.error(stmt, 0, f"unexpected '{word}' in the {self.kind} block")
            return
        known = [*self.STATEMENTS, *self.BLOCKS]
        where = f"in the {self.kind} block" if self.kind else "at the top level"
        extra = _did_you_mean(word, known) if not is_quoted(word) else ""
        if not extra and word in NeighborBlock.STATEMENTS and self.kind != "neighbor":
            extra = " (it belongs inside a neighbor block)"
        elif not extra and len(known) <= 12:
            extra = f" (expected one of: {', '.join(known)})"
        self.parser.error(stmt, 0, f"unknown keyword {_show(word)} {where}{extra}")


class SkipBlock(Block):
    """Swallows a block already reported as wrong, so its contents add no noise."""

    def statement(self, stmt: Statement) -> None:
        pass

    def open(self, stmt: Statement) -> Block:
        return SkipBlock(self.parser, stmt, self.title)


class TopBlock(Block):
    kind = ""
    STATEMENTS: ClassVar[Names] = {"listen": "s_listen"}
    BLOCKS: ClassVar[Names] = {"neighbor": "b_neighbor", "template": "b_template", "process": "b_process",
                               "healthcheck": "b_healthcheck"}
    UNSUPPORTED: ClassVar[Names] = {
        "group": "ExaBGP 3 'group' blocks are not supported: use template { neighbor NAME { ... } } "
                 "and 'inherit NAME;' in each neighbor",
        "peer": "unknown keyword 'peer' at the top level (did you mean 'neighbor'?)",
    }

    def s_listen(self, stmt: Statement) -> None:
        words = stmt.words
        if len(words) not in (2, 3):
            self.parser.error(stmt, 0, "listen takes an address and an optional port: listen 0.0.0.0 179;")
            return
        addr = self.parser.address(stmt, 1)
        port = self.parser.port(stmt, 2) if len(words) == 3 else DEFAULT_PORT
        self.parser.listen.append((addr, port, self.parser.lex.location(stmt, 0)))

    def b_neighbor(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) != 2:
            self.parser.error(stmt, 0, "neighbor takes one address: neighbor 192.0.2.1 { ... }")
            raise _Skip
        text = unquote(words[1])
        if "/" in text:
            self.parser.error(stmt, 1, f"neighbor {text}: address ranges are not supported, give one address")
            raise _Skip
        addr = self.parser.address(stmt, 1)
        spec = NeighborSpec(addr, False, self.parser.lex.location(stmt, 0))
        self.parser.neighbors.append(spec)
        return NeighborBlock(self.parser, stmt, spec)

    def b_template(self, stmt: Statement) -> Block:
        if len(stmt.words) != 1:
            self.parser.error(stmt, 1, "template takes no name: template { neighbor NAME { ... } }")
            raise _Skip
        return TemplateBlock(self.parser, stmt, "template")

    def b_process(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) != 2:
            self.parser.error(stmt, 0, "process takes one name: process NAME { run /path/to/program; }")
            raise _Skip
        return ProcessBlock(self.parser, stmt, unquote(words[1]))

    def b_healthcheck(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) != 2:
            self.parser.error(stmt, 0, "healthcheck takes one name: healthcheck NAME { ip ...; check ...; }")
            raise _Skip
        name = unquote(words[1])
        if not _HEALTH_NAME.match(name):
            self.parser.error(stmt, 1, f"healthcheck name {_show(words[1])}: use letters, digits, '_', '-' "
                                       "and '.'")
            raise _Skip
        return HealthCheckBlock(self.parser, stmt, name)


class TemplateBlock(Block):
    kind = "template"
    BLOCKS: ClassVar[Names] = {"neighbor": "b_neighbor"}

    def b_neighbor(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) != 2:
            self.parser.error(stmt, 0, "a template is named: template { neighbor NAME { ... } }")
            raise _Skip
        name = unquote(words[1])
        loc = self.parser.lex.location(stmt, 0)
        if name in self.parser.templates:
            first = self.parser.templates[name].loc
            self.parser.error(stmt, 1, f"template '{name}' is already defined at {first.short()}")
            raise _Skip
        spec = NeighborSpec(name, True, loc)
        self.parser.templates[name] = spec
        return NeighborBlock(self.parser, stmt, spec)


# Neighbor settings: keyword -> (field, value kind). The kinds are methods of NeighborBlock.
_NEIGHBOR_SETTINGS: dict[str, tuple[str, str]] = {
    "router-id": ("router_id", "v_router_id"),
    "local-address": ("local_address", "v_local_address"),
    "local-as": ("local_as", "v_asn"),
    "peer-as": ("peer_as", "v_asn"),
    "hold-time": ("hold_time", "v_hold_time"),
    "passive": ("passive", "v_bool"),
    "listen": ("listen_port", "v_port"),
    "connect": ("connect_port", "v_port"),
    "description": ("description", "v_text"),
    "md5-password": ("md5_password", "v_md5"),
    "md5-base64": ("md5_base64", "v_bool"),
    "md5-ip": ("md5_ip", "v_address"),
    "outgoing-ttl": ("outgoing_ttl", "v_ttl"),
    "incoming-ttl": ("incoming_ttl", "v_ttl"),
    "ttl-security": ("incoming_ttl", "v_ttl"),
    "group-updates": ("group_updates", "v_bool"),
    "adj-rib-in": ("adj_rib_in", "v_bool"),
    "adj-rib-out": ("adj_rib_out", "v_bool"),
    "manual-eor": ("manual_eor", "v_bool"),
    "auto-flush": ("auto_flush", "v_bool"),
    "rate-limit": ("rate_limit", "v_rate_limit"),
    "host-name": ("host_name", "v_text"),
    "domain-name": ("domain_name", "v_text"),
    "source-interface": ("source_interface", "v_text"),
}


class NeighborBlock(Block):
    kind = "neighbor"
    STATEMENTS: ClassVar[Names] = {**{k: "s_setting" for k in _NEIGHBOR_SETTINGS},
                                   "inherit": "s_inherit", "route": "s_route", "bfd": "s_bfd"}
    BLOCKS: ClassVar[Names] = {"family": "b_family", "capability": "b_capability", "static": "b_static",
                               "api": "b_api", "announce": "b_announce", "flow": "b_flow",
                               "nexthop": "b_nexthop", "add-path": "b_add_path", "bfd": "b_bfd"}
    UNSUPPORTED: ClassVar[Names] = {
        "l2vpn": "'l2vpn' is not supported",
        "operational": "'operational' messages are not supported",
        "peer-address": "the peer address is given in the block header: neighbor 192.0.2.1 { ... }",
        "multi-session": "'multi-session' is not supported",
        "neighbor": "a neighbor block cannot be nested in another",
    }

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        what = "template neighbor" if spec.template else "neighbor"
        super().__init__(parser, stmt, f"{what} {spec.name}")
        self.spec = spec

    def s_setting(self, stmt: Statement) -> None:
        word = stmt.words[0]
        key, kind = _NEIGHBOR_SETTINGS[word]
        if word == "md5-password":
            self.parser.secret_lines.update(dict.fromkeys((seg[0] for seg in stmt.segs), word))
        try:
            value = getattr(self, kind)(stmt)
        except _Skip:
            self.spec.failed.add(key)
            raise
        self.set(self.spec.fields, key, value, stmt, word)

    def set(self, table: dict[str, tuple[Any, Location, str]], key: str, value: Any, stmt: Statement,
            word: str) -> None:
        prev = table.get(key)
        if prev is not None:
            again = f"'{word}' is set twice" if prev[2] == word else f"'{word}' repeats '{prev[2]}'"
            self.parser.error(stmt, 0, f"{again} (first at {prev[1].short()})")
            return
        table[key] = (value, self.parser.lex.location(stmt, 0), word)

    # value kinds ----------------------------------------------------------------------------

    def v_router_id(self, stmt: Statement) -> str:
        self.parser.arity(stmt, 1, "router-id takes one IPv4 address")
        text = unquote(stmt.words[1])
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            self.parser.error(stmt, 1, f"router-id {address_error(text, 'an IPv4 address')}")
            raise _Skip from None
        if int(addr) == 0:
            self.parser.error(stmt, 1, "router-id 0.0.0.0 is not allowed (RFC 6286)")
            raise _Skip
        return str(addr)

    def v_local_address(self, stmt: Statement) -> str | None:
        self.parser.arity(stmt, 1, "local-address takes one IP address (or 'auto')")
        if stmt.words[1] == "auto":
            return None
        return self.parser.address(stmt, 1)

    def v_address(self, stmt: Statement) -> str:
        self.parser.arity(stmt, 1, f"{stmt.words[0]} takes one IP address")
        return self.parser.address(stmt, 1)

    def v_asn(self, stmt: Statement) -> int:
        word = stmt.words[0]
        self.parser.arity(stmt, 1, f"{word} takes one AS number")
        text = unquote(stmt.words[1])
        asn = parse_asn(text)
        if asn is None:
            if text == "auto":
                self.parser.error(stmt, 1, f"{word} auto is not supported: give the AS number")
            else:
                self.parser.error(stmt, 1, f"{word} {text!r} is not an AS number: expected 1..4294967295")
            raise _Skip
        return asn

    def v_hold_time(self, stmt: Statement) -> int:
        self.parser.arity(stmt, 1, "hold-time takes one value: 0 or 3..65535 seconds")
        value = self.parser.integer(stmt, 1, 0, 65535, "hold-time", "0 or 3..65535 seconds")
        if value in (1, 2):
            self.parser.error(stmt, 1, f"hold-time {value} is not allowed: 0 (no keepalives) or 3..65535 "
                                       "seconds (RFC 4271 4.2)")
            raise _Skip
        return value

    def v_bool(self, stmt: Statement) -> bool:
        return self.parser.boolean(stmt)

    def v_port(self, stmt: Statement) -> int:
        self.parser.arity(stmt, 1, f"{stmt.words[0]} takes one TCP port")
        return self.parser.port(stmt, 1)

    def v_ttl(self, stmt: Statement) -> int:
        word = stmt.words[0]
        self.parser.arity(stmt, 1, f"{word} takes one TTL: 1..255")
        return self.parser.integer(stmt, 1, 1, 255, word, "a TTL 1..255")

    def v_rate_limit(self, stmt: Statement) -> int | None:
        self.parser.arity(stmt, 1, "rate-limit takes one value: messages per second, or 'disable'")
        if stmt.words[1] in ("disable", "false"):
            return None
        return self.parser.integer(stmt, 1, 0, 0xFFFFFFFF, "rate-limit", "messages per second")

    def v_text(self, stmt: Statement) -> str:
        if len(stmt.words) < 2:
            self.parser.error(stmt, 0, f"{stmt.words[0]} needs a value")
            raise _Skip
        return " ".join(unquote(w) for w in stmt.words[1:])

    def v_md5(self, stmt: Statement) -> Secret:
        return self.secret(stmt, "md5-password")

    def secret(self, stmt: Statement, word: str) -> Secret:
        """A password: a quoted string, or env['VARIABLE'] (the unit's environment file)."""
        words = stmt.words
        usage = f"{word} takes one value: a quoted string, or env['VARIABLE']"
        if len(words) == 2 and words[1] not in ("[", "]", "(", ")", "env"):
            value = unquote(words[1])
            if not value:
                self.parser.error(stmt, 1, f"{word} is empty")
                raise _Skip
            return Secret(value)
        if len(words) == 5 and words[1] == "env" and words[2] == "[" and words[4] == "]":
            name = unquote(words[3])
            if not _ENV_NAME.match(name):
                self.parser.error(stmt, 3, f"{word} env[...]: not a valid environment variable name")
                raise _Skip
            found = os.environ.get(name)
            if found is None:
                self.parser.error(stmt, 1, f"{word}: environment variable {name} is not set")
                raise _Skip
            if not found:
                self.parser.error(stmt, 1, f"{word}: environment variable {name} is empty")
                raise _Skip
            return Secret(found)
        self.parser.error(stmt, 0, usage)
        raise _Skip

    # statements ---------------------------------------------------------------------------

    def s_inherit(self, stmt: Statement) -> None:
        if self.spec.template:
            self.parser.error(stmt, 0, "a template cannot inherit another template")
            return
        words = stmt.words
        names: list[tuple[str, int]] = []
        if len(words) >= 3 and words[1] == "[" and words[-1] == "]":
            names = [(unquote(w), i) for i, w in enumerate(words[2:-1], 2) if w != ","]
        elif len(words) == 2 and words[1] not in ("[", "]"):
            names = [(unquote(words[1]), 1)]
        if not names:
            self.parser.error(stmt, 0, "inherit takes a template name: inherit NAME; (or inherit [ A B ];)")
            return
        for name, i in names:
            self.spec.inherits.append((name, self.parser.lex.location(stmt, i)))

    def s_route(self, stmt: Statement) -> None:
        self.parser.add_route(self.spec, stmt, 1)

    def s_bfd(self, stmt: Statement) -> None:
        """`bfd;` (the defaults), `bfd enable;`, or `bfd disable;` (off, where a template turned it on)."""
        words = stmt.words
        if len(words) == 2 and words[1].lower() in _FALSE:
            value: BfdSettings | None = None
        elif len(words) == 1 or (len(words) == 2 and words[1].lower() in _TRUE):
            value = BfdSettings(source=self.parser.lex.location(stmt, 0))
        else:
            self.parser.error(stmt, 1, "bfd takes no value (bfd; for the defaults), 'disable', or a block: "
                                       "bfd { min-tx 300; min-rx 300; multiplier 3; }")
            self.spec.failed.add("bfd")
            return
        self.set(self.spec.fields, "bfd", value, stmt, "bfd")

    # blocks -------------------------------------------------------------------------------

    def b_family(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "family takes no value: family { ipv4 unicast; }")
        if self.spec.families is not None:
            self.parser.error(stmt, 0, f"'family' is given twice (first at {self.spec.families[1].short()})")
            raise _Skip
        return FamilyBlock(self.parser, stmt, self.spec)

    def b_nexthop(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "nexthop takes no value: nexthop { ipv4 unicast ipv6; }")
        if self.spec.nexthops is not None:
            self.parser.error(stmt, 0, f"'nexthop' is given twice (first at {self.spec.nexthops[1].short()})")
            raise _Skip
        return NextHopBlock(self.parser, stmt, self.spec)

    def b_add_path(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "add-path takes no value here: add-path { ipv4 unicast; } (the mode is "
                                   "capability { add-path send/receive; })")
        if self.spec.add_path is not None:
            self.parser.error(stmt, 0,
                              f"'add-path' is given twice (first at {self.spec.add_path[1].short()})")
            raise _Skip
        return AddPathBlock(self.parser, stmt, self.spec)

    def b_capability(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "capability takes no value: capability { route-refresh; }")
        return CapabilityBlock(self.parser, stmt, self)

    def b_static(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "static takes no value: static { route 192.0.2.0/24 next-hop self; }")
        return StaticBlock(self.parser, stmt, self.spec)

    def b_announce(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "announce takes no value: announce { ipv4 { unicast ...; } }")
        return AnnounceBlock(self.parser, stmt, self.spec)

    def b_flow(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "flow takes no value: flow { route NAME { match { ... } then { ... } } }")
        return FlowBlock(self.parser, stmt, self.spec)

    def b_bfd(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "bfd takes no value before its block: bfd { min-tx 300; }")
        return BfdBlock(self.parser, stmt, self)

    def b_api(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) > 2:
            self.parser.error(stmt, 2, "api takes an optional name: api [NAME] { processes [ ... ]; }")
            raise _Skip
        return ApiBlock(self.parser, stmt, self.spec, unquote(words[1]) if len(words) == 2 else None)


class BfdBlock(Block):
    """`bfd { min-tx MS; min-rx MS; multiplier N; passive; auth TYPE; auth-key-id N;
    auth-password SECRET; }`: our extension (ExaBGP has no BFD). Checked as a whole at the '}'."""

    kind = "bfd"
    STATEMENTS: ClassVar[Names] = {"min-tx": "s_interval", "min-rx": "s_interval",
                                   "multiplier": "s_multiplier", "passive": "s_passive", "auth": "s_auth",
                                   "auth-key-id": "s_key_id", "auth-password": "s_password"}
    UNSUPPORTED: ClassVar[Names] = {
        "echo": "BFD echo mode is not supported (asynchronous mode only)",
        "demand": "BFD demand mode is not supported (asynchronous mode only)",
        "interval": "'interval' is not a bfd keyword: min-tx (what we send) and min-rx (what we accept), "
                    "in milliseconds",
        "min-echo-rx": "BFD echo mode is not supported (asynchronous mode only)",
        "multihop": "multihop BFD (RFC 5883) is not supported: single hop only",
    }

    def __init__(self, parser: Parser, stmt: Statement, owner: NeighborBlock) -> None:
        super().__init__(parser, stmt, "bfd")
        self.owner = owner
        self.stmt = stmt
        self.values: dict[str, tuple[Any, Location, str]] = {}

    def put(self, key: str, value: Any, stmt: Statement) -> None:
        self.owner.set(self.values, key, value, stmt, stmt.words[0])

    def s_interval(self, stmt: Statement) -> None:
        word = stmt.words[0]
        what = "transmit" if word == "min-tx" else "receive"
        self.parser.arity(stmt, 1, f"{word} takes one value: the minimum {what} interval in milliseconds, "
                                   f"1..{BFD_MAX_INTERVAL_MS}")
        value = self.parser.integer(stmt, 1, 1, BFD_MAX_INTERVAL_MS, word,
                                    f"milliseconds 1..{BFD_MAX_INTERVAL_MS} (the default is "
                                    f"{BFD_DEFAULT_INTERVAL_MS})")
        self.put(word.replace("-", "_") + "_ms", value, stmt)

    def s_multiplier(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "multiplier takes one value: packets missed before the session is "
                                   "down, 1..255")
        self.put("multiplier", self.parser.integer(stmt, 1, 1, 255, "multiplier", "1..255 (the default is "
                                                   f"{BFD_DEFAULT_MULTIPLIER})"), stmt)

    def s_passive(self, stmt: Statement) -> None:
        self.put("passive", self.parser.boolean(stmt), stmt)

    def s_auth(self, stmt: Statement) -> None:
        kinds = ", ".join(BFD_AUTH_TYPES)
        self.parser.arity(stmt, 1, f"auth takes one type: {kinds}")
        kind = unquote(stmt.words[1]).lower()
        if kind in ("none", "off", "disable", "false"):
            self.put("auth", None, stmt)
            return
        if kind not in BFD_AUTH_TYPES:
            hint = _did_you_mean(kind, BFD_AUTH_TYPES)
            self.parser.error(stmt, 1, f"auth {shown(unquote(stmt.words[1]))} is not a BFD authentication "
                                       f"type{hint}: one of {kinds}")
            raise _Skip
        self.put("auth", kind, stmt)

    def s_key_id(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "auth-key-id takes one value: 0..255")
        self.put("auth_key_id", self.parser.integer(stmt, 1, 0, 255, "auth-key-id", "0..255"), stmt)

    def s_password(self, stmt: Statement) -> None:
        self.parser.secret_lines.update(dict.fromkeys((seg[0] for seg in stmt.segs), "auth-password"))
        self.put("auth_password", self.owner.secret(stmt, "auth-password"), stmt)

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, "the bfd block holds settings ('min-tx 300;'), not blocks")
        return SkipBlock(self.parser, stmt, "bfd")

    def close(self, stmt: Statement | None) -> None:
        v = {key: value for key, (value, _loc, _word) in self.values.items()}
        failed = self.had_errors()
        kind = v.get("auth")
        password: Secret | None = v.get("auth_password")
        if kind is not None and password is None and "auth_password" not in self.values and not failed:
            self.parser.errors_at(self.values["auth"][1], f"auth {kind} needs auth-password (a quoted "
                                                          "string or env['VARIABLE'])")
            failed = True
        if password is not None and kind is None and not failed:
            self.parser.errors_at(self.values["auth_password"][1], "auth-password without auth: say which "
                                  f"type, one of {', '.join(BFD_AUTH_TYPES)}")
            failed = True
        if password is not None and kind is not None:
            size = len(password.reveal().encode())
            if size > BFD_AUTH_TYPES[kind]:
                self.parser.errors_at(self.values["auth_password"][1],
                                      f"auth-password is {size} bytes: {kind} takes at most "
                                      f"{BFD_AUTH_TYPES[kind]} (RFC 5880 4.2-4.4)")
                failed = True
        if failed:
            self.owner.spec.failed.add("bfd")
            return
        settings = BfdSettings(source=self.loc, **v)
        self.owner.set(self.owner.spec.fields, "bfd", settings, self.stmt, "bfd")


class FamilyBlock(Block):
    kind = "family"
    NAMES = ("ipv4 unicast", "ipv6 unicast", "ipv4 flow", "ipv6 flow")

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "family")
        self.spec = spec
        self.families: list[Family] = []
        self.seen: dict[Family, Location] = {}

    def statement(self, stmt: Statement) -> None:
        words = stmt.words
        if len(words) == 1 and words[0] in ("all", "minimal"):
            self.parser.error(stmt, 0, f"family '{words[0]}' is not supported: list the families, "
                                       f"from: {', '.join(self.NAMES)}")
            return
        if len(words) != 2:
            self.parser.error(stmt, 0, f"a family is AFI SAFI, one of: {', '.join(self.NAMES)}")
            return
        afi, safi = words[0].lower(), words[1].lower()
        fam = None
        if afi in ("ipv4", "ipv6"):
            for f in SUPPORTED_FAMILIES:
                if family_name(f) == f"{afi} {'flow' if safi == 'flowspec' else safi}":
                    fam = f
        if fam is None:
            text = f"{words[0]} {words[1]}"
            if afi in ("ipv4", "ipv6", "l2vpn", "bgp-ls"):
                self.parser.error(stmt, 0 if afi not in ("ipv4", "ipv6") else 1,
                                  f"family {_show(text)} is not supported "
                                  f"(supported: {', '.join(self.NAMES)})")
            else:
                self.parser.error(stmt, 0, f"unknown family {_show(text)}{_did_you_mean(text, self.NAMES)}")
            return
        if fam in self.seen:
            self.parser.error(stmt, 0, f"family {family_name(fam)} is listed twice")
            return
        self.seen[fam] = self.parser.lex.location(stmt, 0)
        self.families.append(fam)

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, "the family block holds 'AFI SAFI;' statements, not blocks")
        return SkipBlock(self.parser, stmt, "family")

    def close(self, stmt: Statement | None) -> None:
        if not self.families:
            if not self.had_errors():
                self.parser.errors_at(self.loc, "the family block enables no family")
            return
        self.spec.families = (tuple(self.families), self.loc)


class NextHopBlock(Block):
    """ExaBGP's `nexthop { ipv4 unicast ipv6; }`: the families whose routes may have a next hop of
    the other address family, offered in the extended next hop capability (RFC 8950)."""

    kind = "nexthop"
    USAGE = "a nexthop entry is AFI SAFI NEXT-HOP-AFI: ipv4 unicast ipv6;"
    # What ExaBGP's grammar takes (configuration/neighbor/nexthop.py), to tell "not supported"
    # from "no such thing".
    EXABGP_SAFIS = ("unicast", "multicast", "nlri-mpls", "mpls-vpn")

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "nexthop")
        self.spec = spec
        self.entries: list[tuple[Family, Location]] = []

    def statement(self, stmt: Statement) -> None:
        words = [w.lower() for w in stmt.words]
        if len(words) != 3:
            self.parser.error(stmt, 0 if len(words) < 3 else 3, self.USAGE)
            return
        afi, safi, nh_afi = words
        if afi not in ("ipv4", "ipv6"):
            self.parser.error(stmt, 0, f"unknown address family {_show(stmt.words[0])}: {self.USAGE}")
            return
        if safi not in self.EXABGP_SAFIS:
            self.parser.error(stmt, 1, f"invalid afi/safi pair {afi}/{stmt.words[1]} (one of: "
                                       f"{', '.join(self.EXABGP_SAFIS)})")
            return
        other = "ipv6" if afi == "ipv4" else "ipv4"
        if nh_afi != other:
            self.parser.error(stmt, 2, f"invalid next hop family {_show(stmt.words[2])}: the next hop of "
                                       f"{afi} {safi} routes can only be {other}")
            return
        if afi == "ipv6":
            self.parser.error(stmt, 0, f"'{afi} {safi} {nh_afi}' is not supported: only IPv4 routes with an "
                                       "IPv6 next hop are (ipv4 unicast ipv6, RFC 8950); ExaBGP does not "
                                       "offer this one in its capability either: remove the line")
            return
        if safi != "unicast":
            self.parser.error(stmt, 1, f"family 'ipv4 {safi}' is not supported (the extended next hop is "
                                       "for ipv4 unicast)")
            return
        fam = IPV4_UNICAST
        for seen, loc in self.entries:
            if seen == fam:
                self.parser.error(stmt, 0, f"'ipv4 unicast ipv6' is listed twice (first at {loc.short()})")
                return
        self.entries.append((fam, self.parser.lex.location(stmt, 0)))

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, "the nexthop block holds 'AFI SAFI NEXT-HOP-AFI;' statements, not blocks")
        return SkipBlock(self.parser, stmt, "nexthop")

    def close(self, stmt: Statement | None) -> None:
        if self.had_errors():
            self.spec.failed.add("nexthops")
        elif not self.entries:
            self.parser.errors_at(self.loc, "the nexthop block lists nothing: nexthop { ipv4 unicast ipv6; }")
            self.spec.failed.add("nexthops")
        self.spec.nexthops = (tuple(self.entries), self.loc)


class AddPathBlock(FamilyBlock):
    """ExaBGP's `add-path { ipv4 unicast; }`: which families the ADD-PATH capability covers. As in
    ExaBGP, an empty block means every family, a family the neighbor does not enable is skipped, and
    FlowSpec families are accepted but get no path ids (RFC 7911 has none for them in ExaBGP)."""

    kind = "add-path"

    def close(self, stmt: Statement | None) -> None:
        self.spec.add_path = (tuple(self.families), self.loc)


# RFC 7911 4 Send/Receive field: 1 receive, 2 send, 3 both (ExaBGP's words).
ADD_PATH_MODES = {"disable": 0, "disabled": 0, "receive": 1, "send": 2, "send/receive": 3}

# The hostname capability shares the OPEN's 255 bytes of capabilities with the families and the rest.
MAX_FQDN_BYTES = 160


class CapabilityBlock(Block):
    kind = "capability"
    STATEMENTS: ClassVar[Names] = {"graceful-restart": "s_graceful_restart", "route-refresh": "s_flag",
                                   "asn4": "s_flag", "extended-message": "s_flag",
                                   "software-version": "s_flag", "nexthop": "s_flag",
                                   "add-path": "s_add_path"}
    UNSUPPORTED: ClassVar[Names] = {k: f"capability '{k}' is not supported" for k in (
        "multi-session", "operational", "aigp")}

    def __init__(self, parser: Parser, stmt: Statement, owner: NeighborBlock) -> None:
        super().__init__(parser, stmt, "capability")
        self.owner = owner

    def s_graceful_restart(self, stmt: Statement) -> None:
        words = stmt.words
        value: int | bool
        if len(words) == 1 or words[1].lower() in _TRUE:
            value = True  # restart time = hold-time
        elif words[1].lower() in _FALSE:
            value = False
        else:
            self.parser.arity(stmt, 1,
                              f"graceful-restart takes an optional restart time: 0..{GR_MAX} seconds")
            value = self.parser.integer(stmt, 1, 0, GR_MAX, "graceful-restart", f"0..{GR_MAX} seconds")
        if len(words) > 2:
            self.parser.error(stmt, 2,
                              f"graceful-restart takes an optional restart time: 0..{GR_MAX} seconds")
            return
        self.owner.set(self.owner.spec.capabilities, "graceful_restart", value, stmt, words[0])

    def s_add_path(self, stmt: Statement) -> None:
        """ExaBGP's `add-path send|receive|send/receive|disable;` (RFC 7911 Send/Receive values)."""
        words = stmt.words
        usage = "add-path takes one of: send, receive, send/receive, disable"
        if len(words) != 2:
            self.parser.error(stmt, min(len(words) - 1, 2), usage)
            return
        word = words[1].lower()
        mode = ADD_PATH_MODES.get(word)
        if mode is None:
            hint = (" (the option is send/receive)" if word == "receive/send"
                    else _did_you_mean(word, ADD_PATH_MODES))
            self.parser.error(stmt, 1, f"add-path {_show(words[1])} is not a mode{hint}: {usage}")
            return
        self.owner.set(self.owner.spec.capabilities, "add_path", mode, stmt, words[0])

    def s_flag(self, stmt: Statement) -> None:
        word = stmt.words[0]
        self.owner.set(self.owner.spec.capabilities, word.replace("-", "_"), self.parser.boolean(stmt), stmt,
                       word)


class StaticBlock(Block):
    kind = "static"
    STATEMENTS: ClassVar[Names] = {"route": "s_route"}
    BLOCKS: ClassVar[Names] = {"route": "b_route"}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "static")
        self.spec = spec

    def statement(self, stmt: Statement) -> None:
        if stmt.words[0] == "route":  # the hot path: skip the generic dispatch
            self.parser.add_route(self.spec, stmt, 1)
        else:
            super().statement(stmt)

    def b_route(self, stmt: Statement) -> Block:
        if len(stmt.words) < 2:
            self.parser.error(stmt, 0, "route needs a prefix: route 192.0.2.0/24 { next-hop self; }")
            raise _Skip
        return RouteBlock(self.parser, stmt, self.spec)


class RouteBlock(Block):
    """ExaBGP's block form: route 192.0.2.0/24 { next-hop self; med 100; }"""

    kind = "route"

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "route")
        self.spec = spec
        self.parts: list[tuple[Statement, int]] = [(stmt, 1)]

    def statement(self, stmt: Statement) -> None:
        self.parts.append((stmt, 0))

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, "a route block holds attribute statements (next-hop self; med 100;), "
                                   "not blocks")
        return SkipBlock(self.parser, stmt, "route")

    def close(self, stmt: Statement | None) -> None:
        tokens: list[str] = []
        starts: list[tuple[int, Statement, int]] = []
        for part, skip in self.parts:
            starts.append((len(tokens), part, skip))
            tokens.extend(part.words[skip:])
        try:
            family, nlri, attrs, options = parse_route_options(tokens)
        except RouteError as exc:
            for base, part, skip in reversed(starts):
                if exc.index >= base or base == 0:
                    self.parser.error(part, exc.index - base + skip, exc.message)
                    break
            return
        self.parser.store_routes(self.spec, family, nlri, attrs, options, self.loc)


class FlowBlock(Block):
    """ExaBGP's `flow { route NAME { match { ... } then { ... } } }` (FlowSpec, RFC 8955/8956)."""

    kind = "flow"
    BLOCKS: ClassVar[Names] = {"route": "b_route"}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "flow")
        self.spec = spec

    def b_route(self, stmt: Statement) -> Block:
        words = stmt.words
        if len(words) > 2:
            self.parser.error(stmt, 2, "a flow route has one name: route NAME { match { ... } then { ... } }")
            raise _Skip
        name = unquote(words[1]) if len(words) == 2 else None
        if name is not None and not _FLOW_NAME.match(name):
            self.parser.error(stmt, 1,
                              f"flow route name {name!r}: 1 to 64 characters from A-Z a-z 0-9 _ . : -")
            raise _Skip
        return FlowRouteBlock(self.parser, stmt, self.spec, name)


_FLOW_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")


class FlowRouteBlock(Block):
    """route NAME { [next-hop ADDR;] match { COMPONENT VALUE...; } then { ACTION [VALUE]; } }"""

    kind = "flow route"
    STATEMENTS: ClassVar[Names] = {"next-hop": "s_next_hop"}
    BLOCKS: ClassVar[Names] = {"match": "b_part", "then": "b_part"}
    UNSUPPORTED: ClassVar[Names] = {
        "rd": "FlowSpec VPN rules (rd / route-distinguisher) are not supported",
        "route-distinguisher": "FlowSpec VPN rules (rd / route-distinguisher) are not supported",
        "scope": "the flow 'scope' block (interface-set) is not supported"}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec, name: str | None) -> None:
        super().__init__(parser, stmt, f"flow route {name}" if name else "flow route")
        self.spec = spec
        self.name = name
        self.parts: dict[str, FlowPartBlock] = {}
        self.next_hop: tuple[str, Location] | None = None

    def s_next_hop(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "next-hop takes one IP address (the redirect-to-nexthop target)")
        self.next_hop = (self.parser.address(stmt, 1), self.parser.lex.location(stmt, 1))

    def b_part(self, stmt: Statement) -> Block:
        word = stmt.words[0]
        self.parser.arity(stmt, 0, f"{word} takes no value: {word} {{ ... }}")
        if word in self.parts:
            self.parser.error(stmt, 0, f"'{word}' is given twice in this flow route (first at "
                                       f"{self.parts[word].loc.short()})")
            raise _Skip
        block = FlowPartBlock(self.parser, stmt, word)
        self.parts[word] = block
        return block

    def close(self, stmt: Statement | None) -> None:
        if any(part.failed for part in self.parts.values()):
            return
        match_block = self.parts.get("match")
        if match_block is None:
            if not self.had_errors():
                self.parser.errors_at(self.loc, f"{self.title}: no 'match {{ ... }}' block (a rule "
                                                "without one would match all traffic)")
            return
        then_block = self.parts.get("then")
        then: dict[str, Any] = dict(then_block.values) if then_block is not None else {}
        if self.next_hop is not None:
            then.setdefault("next-hop", self.next_hop[0])
        try:
            fam = family_of(match_block.values)
            _rule, _actions, nlri, attrs = build_rule(fam, match_block.values, then)
        except FlowSpecError as exc:
            component = getattr(exc, "component", "")
            # A wrong name is pointed at; anything else at the value.
            on_key = exc.reason.startswith(("not a", "given twice"))
            loc = None
            for block in (match_block, then_block):
                if block is not None and loc is None:
                    loc = (block.key_locs if on_key else block.locs).get(component)
            if loc is None and component in ("next-hop",) and self.next_hop is not None:
                loc = self.next_hop[1]
            if loc is None:
                loc = (then_block.loc if then_block is not None and component not in match_block.values
                       and component != "match" else match_block.loc)
            self.parser.errors_at(loc, f"{self.title}: {exc}")
            return
        name = self.name or nlri_name(nlri)
        for other in self.spec.flows:
            if other.name == name:
                self.parser.errors_at(self.loc, f"flow route {name} is defined twice in {self.spec.name} "
                                                f"(first at {other.source.short()})")
                return
            if other.family == fam and other.nlri == nlri:
                self.parser.errors_at(self.loc, f"{self.title} matches exactly what flow route {other.name} "
                                                f"(at {other.source.short()}) matches: one rule per match")
                return
        self.spec.flows.append(FlowRoute(name=name, family=fam, nlri=nlri, attrs=attrs, source=self.loc))
        self.parser.store_route(self.spec, fam, nlri, attrs, self.loc)


class FlowPartBlock(Block):
    """`match { ... }` or `then { ... }`: each statement is NAME [VALUE ...]; kept as ExaBGP names to
    values (a string, a list of strings for several values or `[ ... ]`, True for a bare flag)."""

    def __init__(self, parser: Parser, stmt: Statement, word: str) -> None:
        super().__init__(parser, stmt, word)
        self.kind = word
        self.values: dict[str, Any] = {}
        self.locs: dict[str, Location] = {}
        self.key_locs: dict[str, Location] = {}
        self.failed = False

    def statement(self, stmt: Statement) -> None:
        words = stmt.words
        key = words[0]
        if is_quoted(key):
            self.parser.error(stmt, 0, f"{self.kind}: expected a name, not a quoted string")
            self.failed = True
            return
        values = [unquote(w) for w in words[1:] if w not in ("[", "]", ",")]
        if key in self.values:
            self.parser.error(stmt, 0, f"{self.kind}: '{key}' is given twice (first at "
                                       f"{self.key_locs[key].short()}); list several values on one line: "
                                       f"{key} [ A B ];")
            self.failed = True
            return
        if not values:
            value: Any = True
            if self.kind == "match":
                self.parser.error(stmt, 0, f"match: '{key}' needs a value")
                self.failed = True
                return
        elif len(values) == 1 and "[" not in words:
            value = values[0]
        elif self.kind == "then" and "[" not in words:
            value = " ".join(values)  # rate-limit 1000 packets;
        else:
            value = values
        self.values[key] = value
        self.locs[key] = self.parser.lex.location(stmt, 1 if len(words) > 1 else 0)
        self.key_locs[key] = self.parser.lex.location(stmt, 0)

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, f"the {self.kind} block holds statements (NAME VALUE;), not blocks")
        self.failed = True
        return SkipBlock(self.parser, stmt, self.kind)


class AnnounceBlock(Block):
    """ExaBGP 4/5: announce { ipv4 { unicast 192.0.2.0/24 next-hop self; } }"""

    kind = "announce"
    BLOCKS: ClassVar[Names] = {"ipv4": "b_afi", "ipv6": "b_afi"}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec) -> None:
        super().__init__(parser, stmt, "announce")
        self.spec = spec

    def b_afi(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, f"{stmt.words[0]} takes no value here")
        return AnnounceAfiBlock(self.parser, stmt, self.spec, 1 if stmt.words[0] == "ipv4" else 2)


class AnnounceAfiBlock(Block):
    kind = "announce"
    STATEMENTS: ClassVar[Names] = {"unicast": "s_unicast"}
    UNSUPPORTED: ClassVar[Names] = {k: f"announcing {k} routes from the config is not supported" for k in (
        "multicast", "flow", "flow-vpn", "nlri-mpls", "mpls-vpn", "labeled-unicast", "mup", "vpls")}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec, afi: int) -> None:
        super().__init__(parser, stmt, stmt.words[0])
        self.kind = f"announce {stmt.words[0]}"
        self.spec = spec
        self.afi = afi

    def s_unicast(self, stmt: Statement) -> None:
        self.parser.add_route(self.spec, stmt, 1, afi=self.afi)


class ApiBlock(Block):
    kind = "api"
    STATEMENTS: ClassVar[Names] = {
        "processes": "s_processes", "processes-match": "s_processes_match",
        "neighbor-changes": "s_flag", "negotiated": "s_flag", "fsm": "s_flag", "signal": "s_flag"}
    BLOCKS: ClassVar[Names] = {"receive": "b_messages", "send": "b_messages"}

    def __init__(self, parser: Parser, stmt: Statement, spec: NeighborSpec, name: str | None) -> None:
        super().__init__(parser, stmt, "api")
        self.spec = spec
        self.name = name
        self.processes: list[str] = []
        self.matches: list[str] = []
        self.flags: dict[str, bool] = {}
        self.messages: dict[str, MessageFlags] = {}

    def s_processes(self, stmt: Statement) -> None:
        for name, i in self.parser.name_list(stmt, "processes [ NAME ... ];"):
            self.processes.append(name)
            self.parser.process_refs.append((name, self.parser.lex.location(stmt, i)))

    def s_processes_match(self, stmt: Statement) -> None:
        for pattern, i in self.parser.name_list(stmt, "processes-match [ REGEX ... ];"):
            try:
                re.compile(pattern)
            except re.error as exc:
                self.parser.error(stmt, i, f"processes-match: bad regular expression: {exc}")
                continue
            self.matches.append(pattern)

    def s_flag(self, stmt: Statement) -> None:
        self.flags[stmt.words[0].replace("-", "_")] = self.parser.boolean(stmt)

    def b_messages(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, f"{stmt.words[0]} takes no value: {stmt.words[0]} {{ parsed; update; }}")
        return MessagesBlock(self.parser, stmt, self)

    def set_messages(self, kind: str, flags: MessageFlags, extra: dict[str, bool]) -> None:
        prev = self.messages.get(kind)
        self.messages[kind] = flags if prev is None else prev.union(flags)
        self.flags.update(extra)

    def close(self, stmt: Statement | None) -> None:
        if not self.processes and not self.matches and not self.had_errors():
            self.parser.errors_at(self.loc, "the api block names no process: add processes [ NAME ];")
        self.spec.apis.append(Api(
            name=self.name, processes=tuple(self.processes), processes_match=tuple(self.matches),
            neighbor_changes=self.flags.get("neighbor_changes", False),
            negotiated=self.flags.get("negotiated", False), fsm=self.flags.get("fsm", False),
            signal=self.flags.get("signal", False),
            receive=self.messages.get("receive", MessageFlags()),
            send=self.messages.get("send", MessageFlags()), source=self.loc))


class MessagesBlock(Block):
    """receive { parsed; update; ... } and send { packets; ... } (in an api or, ExaBGP 3 style, a process)."""

    kind = "receive"
    STATEMENTS: ClassVar[Names] = {
        **{k: "s_flag" for k in MESSAGE_FLAG_NAMES}, "updates": "s_flag",
        "neighbor-changes": "s_owner_flag"}

    def __init__(self, parser: Parser, stmt: Statement, owner: ApiBlock | ProcessBlock) -> None:
        super().__init__(parser, stmt, stmt.words[0])
        self.kind = stmt.words[0]
        self.owner = owner
        self.flags: dict[str, bool] = {}
        self.extra: dict[str, bool] = {}

    def s_flag(self, stmt: Statement) -> None:
        word = stmt.words[0]
        self.flags["update" if word == "updates" else word] = self.parser.boolean(stmt)

    def s_owner_flag(self, stmt: Statement) -> None:
        self.extra["neighbor_changes"] = self.parser.boolean(stmt)

    def close(self, stmt: Statement | None) -> None:
        self.owner.set_messages(self.kind, MessageFlags(**self.flags), self.extra)


def _program(run: tuple[str, ...], config_file: str) -> tuple[str, ...]:
    """A relative program path is read from the config file's directory, as ExaBGP reads it
    (`run ./run/check.py;` next to the config works whatever the agent's working directory).
    A bare name is looked up there first, then on PATH when the program starts."""
    program = run[0]
    if os.path.isabs(program):
        return run
    here = os.path.join(os.path.dirname(os.path.abspath(config_file)), program)
    if "/" in program or os.path.isfile(here):
        return (os.path.normpath(here), *run[1:])
    return run


class ProcessBlock(Block):
    kind = "process"
    STATEMENTS: ClassVar[Names] = {
        "run": "s_run", "encoder": "s_encoder", "working-directory": "s_workdir",
        "respawn": "s_bool", "neighbor-changes": "s_bool", "withdraw-on-exit": "s_withdraw"}
    BLOCKS: ClassVar[Names] = {"env": "b_env", "receive": "b_messages", "send": "b_messages"}
    UNSUPPORTED: ClassVar[Names] = {
        "parse-routes": "ExaBGP 3's 'parse-routes' is not supported: use receive { parsed; update; }",
        "receive-routes": "ExaBGP 3's 'receive-routes' is not supported: use receive { parsed; update; }",
        "peer-updates": "ExaBGP 3's 'peer-updates' is not supported: use receive { parsed; update; }",
        "send-packets": "ExaBGP 3's 'send-packets' is not supported: use send { packets; }",
        "receive-packets": "ExaBGP 3's 'receive-packets' is not supported: use receive { packets; }",
    }

    def __init__(self, parser: Parser, stmt: Statement, name: str) -> None:
        super().__init__(parser, stmt, f"process {name}")
        self.name = name
        self.fields: dict[str, tuple[Any, Location, str]] = {}
        self.env: dict[str, str] = {}
        self.messages: dict[str, MessageFlags] = {}
        self.extra: dict[str, bool] = {}

    def put(self, key: str, value: Any, stmt: Statement) -> None:
        prev = self.fields.get(key)
        if prev is not None:
            self.parser.error(stmt, 0, f"'{stmt.words[0]}' is set twice (first at {prev[1].short()})")
            return
        self.fields[key] = (value, self.parser.lex.location(stmt, 0), stmt.words[0])

    def s_run(self, stmt: Statement) -> None:
        if len(stmt.words) < 2:
            self.parser.error(stmt, 0, "run needs a command: run /path/to/program ARGS...;")
            return
        self.put("run", tuple(unquote(w) for w in stmt.words[1:]), stmt)

    def s_encoder(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "encoder takes one value: text or json")
        value = unquote(stmt.words[1]).lower()
        if value not in ("text", "json"):
            self.parser.error(stmt, 1, f"encoder {stmt.words[1]!r}: expected text or json")
            return
        self.put("encoder", value, stmt)

    def s_workdir(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "working-directory takes one path")
        self.put("working_directory", unquote(stmt.words[1]), stmt)

    def s_bool(self, stmt: Statement) -> None:
        self.put(stmt.words[0].replace("-", "_"), self.parser.boolean(stmt), stmt)

    def s_withdraw(self, stmt: Statement) -> None:
        if len(stmt.words) == 1:
            value: int | None = 0
        else:
            self.parser.arity(stmt, 1, "withdraw-on-exit takes an optional delay in seconds")
            word = stmt.words[1].lower()
            if word in _FALSE:
                value = None
            elif word in _TRUE:
                value = 0
            else:
                value = self.parser.integer(stmt, 1, 0, 86400, "withdraw-on-exit",
                                            "a delay of 0..86400 seconds")
        self.put("withdraw_on_exit", value, stmt)

    def b_env(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, "env takes no value: env { NAME = 'value'; }")
        return EnvBlock(self.parser, stmt, self)

    def b_messages(self, stmt: Statement) -> Block:
        self.parser.arity(stmt, 0, f"{stmt.words[0]} takes no value: {stmt.words[0]} {{ parsed; update; }}")
        return MessagesBlock(self.parser, stmt, self)

    def set_messages(self, kind: str, flags: MessageFlags, extra: dict[str, bool]) -> None:
        prev = self.messages.get(kind)
        self.messages[kind] = flags if prev is None else prev.union(flags)
        self.extra.update(extra)

    def close(self, stmt: Statement | None) -> None:
        f = {k: v[0] for k, v in self.fields.items()}
        if "run" not in f:
            self.parser.errors_at(self.loc, f"process {self.name} has no 'run' command")
            return
        if self.name in self.parser.processes:
            first = self.parser.processes[self.name].source
            self.parser.errors_at(self.loc, f"process '{self.name}' is already defined at {first.short()}")
            return
        self.parser.processes[self.name] = Process(
            name=self.name, run=_program(f["run"], self.parser.file), encoder=f.get("encoder", "text"),
            working_directory=f.get("working_directory"), env=self.env, respawn=f.get("respawn", True),
            withdraw_on_exit=f.get("withdraw_on_exit"),
            neighbor_changes=f.get("neighbor_changes", False) or self.extra.get("neighbor_changes", False),
            receive=self.messages.get("receive", MessageFlags()),
            send=self.messages.get("send", MessageFlags()), source=self.loc)


class EnvBlock(Block):
    kind = "env"

    def __init__(self, parser: Parser, stmt: Statement, owner: ProcessBlock) -> None:
        super().__init__(parser, stmt, "env")
        self.owner = owner

    def statement(self, stmt: Statement) -> None:
        words = stmt.words
        if len(words) == 1 and "=" in words[0]:
            name, _sep, value = words[0].partition("=")
            parts = [name, value]
        elif len(words) == 3 and words[1] == "=":
            parts = [words[0], unquote(words[2])]
        elif len(words) == 2 and words[1].startswith("=") and len(words[1]) > 1:
            parts = [words[0], words[1][1:]]
        elif len(words) == 2 and words[0].endswith("=") and len(words[0]) > 1:
            parts = [words[0][:-1], unquote(words[1])]
        elif len(words) == 2:
            parts = [words[0], unquote(words[1])]
        else:
            self.parser.error(stmt, 0, "an env entry is NAME = 'value';")
            return
        name = parts[0]
        if not _ENV_NAME.match(name):
            self.parser.error(stmt, 0, f"env: {_show(name)} is not a valid environment variable name")
            return
        if name in self.owner.env:
            self.parser.error(stmt, 0, f"env: {name} is set twice")
            return
        self.owner.env[name] = parts[1]

    def open(self, stmt: Statement) -> Block:
        self.parser.error(stmt, 0, "the env block holds NAME = 'value'; statements, not blocks")
        return SkipBlock(self.parser, stmt, "env")


# ------------------------------------------------------------------------------------------------
# healthcheck NAME { ... }

_HEALTH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?\Z")  # not \d: it matches every script's digits
_DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")
# Route attributes a health check takes, as in a route; the *-as-path ones are per state.
_HEALTH_ATTRIBUTES: dict[str, str] = {
    "community": "communities", "disabled-community": "disabled_communities",
    "large-community": "large_communities", "extended-community": "ext_communities",
    "as-path": "as_path", "up-as-path": "up_as_path", "down-as-path": "down_as_path",
    "disabled-as-path": "disabled_as_path", "local-preference": "local_pref"}
# keyword -> (field, lowest, highest) for the whole-number settings
_HEALTH_NUMBERS: dict[str, tuple[str, int, int]] = {
    "rise": ("rise", 1, 1000), "fall": ("fall", 1, 1000),
    "up-metric": ("up_metric", 0, 0xFFFFFFFF), "down-metric": ("down_metric", 0, 0xFFFFFFFF),
    "disabled-metric": ("disabled_metric", 0, 0xFFFFFFFF), "increase": ("increase", 0, 0xFFFFFFFF)}
_HEALTH_SECONDS: dict[str, tuple[str, float, float]] = {
    "interval": ("interval", 0.1, 86400), "fast-interval": ("fast_interval", 0.1, 86400),
    "timeout": ("timeout", 0.1, 3600)}
_HEALTH_HOOKS = {"execute": "execute", "up-execute": "up_execute", "down-execute": "down_execute",
                 "disabled-execute": "disabled_execute"}
_CHECK_USAGE = ("check takes one of: tcp HOST:PORT | http URL [status N] [insecure] | "
                "dns NAME [type A] [server ADDRESS] [port N] | command \"CMD\"")


class HealthCheckBlock(Block):
    kind = "healthcheck"
    STATEMENTS: ClassVar[Names] = {
        "ip": "s_ip", "next-hop": "s_next_hop", "neighbors": "s_neighbors", "check": "s_check",
        "withdraw-on-down": "s_withdraw_on_down", "disable-file": "s_disable_file",
        **{k: "s_number" for k in _HEALTH_NUMBERS}, **{k: "s_seconds" for k in _HEALTH_SECONDS},
        **{k: "s_attribute" for k in _HEALTH_ATTRIBUTES}, **{k: "s_hook" for k in _HEALTH_HOOKS}}
    UNSUPPORTED: ClassVar[Names] = {
        "cmd": "'cmd' is not a healthcheck keyword: write check command \"CMD\";",
        "command": "'command' is not a healthcheck keyword: write check command \"CMD\";",
        "disable": "'disable' is not a healthcheck keyword: write disable-file PATH;",
        "neighbor": "'neighbor' is not a healthcheck keyword: write neighbors [ ADDRESS ... ];",
        "fast": "'fast' is not a healthcheck keyword: write fast-interval SECONDS;",
        "med": "a healthcheck sets the MED per state: up-metric, down-metric, disabled-metric",
        "path-id": "'path-id' (add-path) is not supported",
        "label": "'label' is not supported: fleetbgp does not manage interface addresses",
        "ip-ifname": "'ip-ifname' is not supported: fleetbgp does not manage interface addresses",
        "debounce": "'debounce' is not needed: routes change only when the state changes",
    }

    def __init__(self, parser: Parser, stmt: Statement, name: str) -> None:
        super().__init__(parser, stmt, f"healthcheck {name}")
        self.name = name
        self.fields: dict[str, tuple[Any, Location, str]] = {}
        self.ips: list[tuple[str, Location]] = []
        self.hooks: dict[str, list[str]] = {}
        self.failed: set[str] = set()

    def put(self, key: str, value: Any, stmt: Statement) -> None:
        prev = self.fields.get(key)
        if prev is not None:
            again = f"'{stmt.words[0]}' is set twice" if prev[2] == stmt.words[0] else \
                f"'{stmt.words[0]}' repeats '{prev[2]}'"
            self.parser.error(stmt, 0, f"{again} (first at {prev[1].short()})")
            return
        self.fields[key] = (value, self.parser.lex.location(stmt, 0), stmt.words[0])

    def s_ip(self, stmt: Statement) -> None:
        self.failed.add("ip")
        for text, i in self.parser.name_list(stmt, "ip PREFIX; (or ip [ PREFIX ... ];)"):
            try:
                family, _nlri = parse_prefix([text])
            except RouteError as exc:
                self.parser.error(stmt, i, exc.message)
                continue
            if family not in (IPV4_UNICAST, IPV6_UNICAST):
                self.parser.error(stmt, i, f"ip {text!r}: expected an IPv4 or IPv6 prefix")
                continue
            prefix = str(ipaddress.ip_network(text))
            loc = self.parser.lex.location(stmt, i)
            for seen, first in self.ips:
                if seen == prefix:
                    self.parser.error(stmt, i, f"ip {prefix} is listed twice (first at {first.short()})")
                    break
            else:
                self.ips.append((prefix, loc))
        self.failed.discard("ip")

    def s_next_hop(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "next-hop takes 'self' or one IP address")
        if stmt.words[1] == "self":
            self.put("next_hop", "self", stmt)
            return
        addr = self.parser.address(stmt, 1)
        parsed = ipaddress.ip_address(addr)
        if parsed.is_unspecified or parsed.is_multicast:
            self.parser.error(stmt, 1, f"next-hop {addr} cannot be used as a next hop")
            return
        self.put("next_hop", addr, stmt)

    def s_neighbors(self, stmt: Statement) -> None:
        out: list[str] = []
        for text, i in self.parser.name_list(stmt, "neighbors [ ADDRESS ... ];"):
            try:
                addr = str(ip_address(text))
            except ValueError as exc:
                self.parser.error(stmt, i, f"neighbors: {exc}")
                continue
            out.append(addr)
            self.parser.neighbor_refs.append((addr, self.parser.lex.location(stmt, i),
                                              f"healthcheck {self.name}"))
        if out:
            self.put("neighbors", tuple(dict.fromkeys(out)), stmt)

    def s_check(self, stmt: Statement) -> None:
        words = stmt.words
        if len(words) < 3:
            self.parser.error(stmt, 1 if len(words) > 1 else 0, _CHECK_USAGE)
            return
        kind = words[1].lower()
        spec: CheckSpec | None
        if kind == "tcp":
            spec = self.check_tcp(stmt)
        elif kind == "http":
            spec = self.check_http(stmt)
        elif kind == "dns":
            spec = self.check_dns(stmt)
        elif kind == "command":
            command = " ".join(unquote(w) for w in words[2:])
            if not command.strip():
                self.parser.error(stmt, 2, "check command: the command is empty")
                return
            spec = CommandCheckSpec(command=command)
        else:
            hint = _did_you_mean(kind, ("tcp", "http", "dns", "command"))
            self.parser.error(stmt, 1, f"unknown check {_show(words[1])}{hint}: {_CHECK_USAGE}")
            return
        if spec is not None:
            self.put("check", spec, stmt)

    def check_tcp(self, stmt: Statement) -> CheckSpec | None:
        words = stmt.words
        # The lexer splits `[::1]:80` into '[', '::1', ']', ':80': put it back together.
        if len(words) == 6 and words[2] == "[" and words[4] == "]" and words[5].startswith(":"):
            text = "".join(words[2:])
        elif len(words) == 3:
            text = unquote(words[2])
        else:
            self.parser.error(stmt, 3 if len(words) > 3 else 2,
                              "check tcp takes one HOST:PORT (IPv6: [ADDRESS]:PORT)")
            return None
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            sep = ""
        if not sep or not host:
            self.parser.error(stmt, 2, f"check tcp {shown(text)}: expected HOST:PORT (IPv6: [ADDRESS]:PORT)")
            return None
        number = decimal(port, 65535, 1)
        if number is None:
            self.parser.error(stmt, 2, f"check tcp {shown(text)}: the port must be 1..65535")
            return None
        # Not an address, so a host name, unless it has a zero-led octet: a resolver would read
        # that as octal.
        problem = leading_zero(host)
        if problem is not None:
            self.parser.error(stmt, 2, f"check tcp {problem}")
            return None
        with contextlib.suppress(ValueError):
            host = str(ipaddress.ip_address(host))
        return TcpCheckSpec(host=host, port=number)

    def check_http(self, stmt: Statement) -> CheckSpec | None:
        words = stmt.words
        url = unquote(words[2])
        try:
            split_url(url)
        except ValueError as exc:
            self.parser.error(stmt, 2, f"check http: {exc}")
            return None
        status: int | None = None
        insecure = False
        i = 3
        while i < len(words):
            word = words[i].lower()
            if word == "status" and i + 1 < len(words):
                status = self.parser.integer(stmt, i + 1, 100, 599, "status", "an HTTP status 100..599")
                i += 2
            elif word == "insecure":
                insecure = True
                i += 1
            else:
                self.parser.error(stmt, i, "check http URL takes: [status N] [insecure]")
                return None
        if insecure and not url.lower().startswith("https:"):
            self.parser.error(stmt, len(words) - 1, "check http: 'insecure' only applies to https:// URLs")
            return None
        return HttpCheckSpec(url=url, status=status, insecure=insecure)

    def check_dns(self, stmt: Statement) -> CheckSpec | None:
        words = stmt.words
        name = unquote(words[2])
        try:
            if any(c.isspace() for c in name):
                raise ValueError(name)
            encode_name(name)
        except ValueError:
            self.parser.error(stmt, 2, f"check dns: {name!r} is not a DNS name")
            return None
        qtype = "A"
        server: str | None = None
        port = 53
        i = 3
        while i < len(words):
            word = words[i].lower()
            if i + 1 >= len(words):
                self.parser.error(stmt, i, "check dns NAME takes: [type A] [server ADDRESS] [port N]")
                return None
            if word == "type":
                qtype = unquote(words[i + 1]).upper()
                if qtype not in _DNS_TYPES:
                    self.parser.error(stmt, i + 1, f"check dns: type {words[i + 1]!r}: expected one "
                                      f"of {', '.join(_DNS_TYPES)}")
                    return None
            elif word == "server":
                server = self.parser.address(stmt, i + 1)
            elif word == "port":
                port = self.parser.port(stmt, i + 1)
            else:
                self.parser.error(stmt, i, "check dns NAME takes: [type A] [server ADDRESS] [port N]")
                return None
            i += 2
        return DnsCheckSpec(name=name, qtype=qtype, server=server, port=port)

    def s_withdraw_on_down(self, stmt: Statement) -> None:
        self.put("withdraw_on_down", self.parser.boolean(stmt), stmt)

    def s_disable_file(self, stmt: Statement) -> None:
        self.parser.arity(stmt, 1, "disable-file takes one path")
        path = unquote(stmt.words[1])
        if not path.startswith("/"):
            self.parser.error(stmt, 1, f"disable-file {path!r}: give an absolute path")
            return
        self.put("disable_file", path, stmt)

    def s_number(self, stmt: Statement) -> None:
        word = stmt.words[0]
        key, lo, hi = _HEALTH_NUMBERS[word]
        self.parser.arity(stmt, 1, f"{word} takes one number {lo}..{hi}")
        self.put(key, self.parser.integer(stmt, 1, lo, hi, word, f"a number {lo}..{hi}"), stmt)

    def s_seconds(self, stmt: Statement) -> None:
        word = stmt.words[0]
        key, lo, hi = _HEALTH_SECONDS[word]
        self.parser.arity(stmt, 1, f"{word} takes a number of seconds")
        text = unquote(stmt.words[1])
        if not _SECONDS.match(text) or not lo <= float(text) <= hi:
            self.failed.add(key)
            self.parser.error(stmt, 1,
                              f"{word} {text!r}: expected seconds, {lo:g}..{hi:g} (decimals allowed)")
            return
        self.put(key, float(text), stmt)

    def s_attribute(self, stmt: Statement) -> None:
        word = stmt.words[0]
        key = _HEALTH_ATTRIBUTES[word]
        if len(stmt.words) < 2:
            self.parser.error(stmt, 0, f"'{word}' needs a value")
            return
        as_route = word
        if word.endswith("as-path"):
            as_route = "as-path"
        elif word == "disabled-community":
            as_route = "community"
        tokens = [as_route, *stmt.words[1:]]
        try:
            attrs = parse_attributes(tokens, IPV4_UNICAST, require_next_hop=False)
        except RouteError as exc:
            self.parser.error(stmt, exc.index, exc.message)
            return
        value = attrs.as_dict()[{"communities": "communities", "disabled_communities": "communities",
                                 "large_communities": "large_communities",
                                 "ext_communities": "ext_communities",
                                 "local_pref": "local_pref"}.get(key, "as_path")]
        self.put(key, value, stmt)

    def s_hook(self, stmt: Statement) -> None:
        word = stmt.words[0]
        if len(stmt.words) < 2:
            self.parser.error(stmt, 0, f"{word} needs a command: {word} \"CMD\";")
            return
        command = " ".join(unquote(w) for w in stmt.words[1:])
        self.hooks.setdefault(_HEALTH_HOOKS[word], []).append(command)

    def check_route_limits(self, f: dict[str, Any]) -> bool:
        """The limits `fleetbgp healthcheck` checks too: at most MAX_ROUTES ips, and a MED that still
        fits in 32 bits on the last ip (each further ip gets `increase` more)."""
        if len(self.ips) > MAX_ROUTES:
            prefix, loc = self.ips[MAX_ROUTES]
            self.parser.errors_at(loc, f"{prefix} is ip number {MAX_ROUTES + 1}: a healthcheck announces at "
                                  f"most {MAX_ROUTES} routes")
            return False
        value = {fd.name: f.get(fd.name, fd.default) for fd in dataclasses.fields(HealthCheck)
                 if fd.name in ("up_metric", "down_metric", "disabled_metric", "increase",
                                "withdraw_on_down")}
        overflow = metric_overflow(value["up_metric"], value["down_metric"], value["disabled_metric"],
                                   value["increase"], len(self.ips), value["withdraw_on_down"])
        if overflow is None:
            return True
        name, metric, last = overflow
        # Point at the increase if it was written, else at the metric (the default increase is 1).
        where = self.fields.get("increase") or self.fields.get(_HEALTH_NUMBERS[name][0])
        self.parser.errors_at(where[1] if where else self.loc,
                              f"{name} {metric} with increase {value['increase']} over {len(self.ips)} ips "
                              f"gives the last one a MED of {last}, more than {MAX_METRIC}")
        return False

    def close(self, stmt: Statement | None) -> None:
        f = {k: v[0] for k, v in self.fields.items()}
        ok = True
        if not self.ips:
            if "ip" not in self.failed and not self.had_errors():
                self.parser.errors_at(self.loc, f"healthcheck {self.name} has no 'ip' to announce")
            ok = False
        if "check" not in f:
            if not self.had_errors():
                self.parser.errors_at(self.loc, f"healthcheck {self.name} has no 'check'")
            ok = False
        next_hop = f.get("next_hop", "self")
        if next_hop != "self":
            version = ipaddress.ip_address(next_hop).version
            for prefix, loc in self.ips:
                if ipaddress.ip_network(prefix).version != version:
                    self.parser.errors_at(self.fields["next_hop"][1],
                                          f"next-hop {next_hop} is IPv{version}, but ip {prefix} (at "
                                          f"{loc.short()}) is not: use 'next-hop self' or one healthcheck "
                                          "per address family")
                    ok = False
                    break
        ok = self.check_route_limits(f) and ok
        if self.name in self.parser.healthchecks:
            first = self.parser.healthchecks[self.name].source
            self.parser.errors_at(self.loc,
                                  f"healthcheck '{self.name}' is already defined at {first.short()}")
            return
        if not ok:
            return
        self.parser.health_ip_locs[self.name] = list(self.ips)
        # Any: each keyword's value has the type of its HealthCheck field (checked when read).
        fields: dict[str, Any] = {k: v for k, v in f.items() if k not in ("check", "next_hop")}
        fields.update((k, tuple(v)) for k, v in self.hooks.items())
        self.parser.healthchecks[self.name] = HealthCheck(
            name=self.name, ips=tuple(p for p, _loc in self.ips), check=f["check"], next_hop=next_hop,
            **fields, source=self.loc)


# Keywords that open a block at the top level only: seeing one deeper means a '}' is missing.
_TOP_LEVEL_BLOCKS = frozenset(("neighbor", "process", "template", "healthcheck"))


# ------------------------------------------------------------------------------------------------
# The parser


class Parser:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lex = Lexer(text, file)
        self.diags = self.lex.diagnostics
        self.neighbors: list[NeighborSpec] = []
        self.templates: dict[str, NeighborSpec] = {}
        self.processes: dict[str, Process] = {}
        self.process_refs: list[tuple[str, Location]] = []
        self.listen: list[tuple[str, int, Location]] = []
        self.secret_lines: dict[int, str] = {}  # line -> the password keyword on it
        self.healthchecks: dict[str, HealthCheck] = {}
        self.health_ip_locs: dict[str, list[tuple[str, Location]]] = {}
        self.neighbor_refs: list[tuple[str, Location, str]] = []  # (address, where, who refers)

    # -- reporting -------------------------------------------------------------------------

    def error(self, stmt: Statement, index: int, message: str) -> None:
        self.diags.append(Diagnostic.at(self.lex.location(stmt, index), message))

    def errors_at(self, loc: Location, message: str) -> None:
        self.diags.append(Diagnostic.at(loc, message))

    # -- value helpers (report and raise _Skip on error) ------------------------------------

    def arity(self, stmt: Statement, n: int, usage: str) -> None:
        count = len(stmt.words)
        if count != n + 1:
            self.error(stmt, n + 1 if count > n + 1 else 0, usage)
            raise _Skip

    def integer(self, stmt: Statement, i: int, lo: int, hi: int, what: str, expected: str) -> int:
        text = unquote(stmt.words[i])
        value = decimal(text, hi, lo)
        if value is not None:
            return value
        self.error(stmt, i, f"{what} {shown(text)}: expected {expected}")
        raise _Skip

    def port(self, stmt: Statement, i: int) -> int:
        return self.integer(stmt, i, 1, 65535, stmt.words[0], "a TCP port 1..65535")

    def address(self, stmt: Statement, i: int) -> str:
        text = unquote(stmt.words[i])
        try:
            return str(ip_address(text))
        except ValueError as exc:
            self.error(stmt, i, str(exc))
            raise _Skip from None

    def boolean(self, stmt: Statement) -> bool:
        words = stmt.words
        if len(words) == 1:
            return True
        if len(words) == 2:
            value = words[1].lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
        self.error(stmt, 1, f"{words[0]} takes no value, or one of true/false (enable/disable)")
        raise _Skip

    def name_list(self, stmt: Statement, usage: str) -> list[tuple[str, int]]:
        words = stmt.words
        if len(words) >= 3 and words[1] == "[" and words[-1] == "]":
            out = []
            for i, w in enumerate(words[2:-1], 2):
                for part in unquote(w).split(","):
                    if part:
                        out.append((part, i))
            return out
        if len(words) == 2 and words[1] not in ("[", "]"):
            return [(unquote(words[1]), 1)]
        self.error(stmt, 0, f"expected {usage}")
        raise _Skip

    # -- routes -------------------------------------------------------------------------------

    def add_route(self, spec: NeighborSpec, stmt: Statement, start: int, afi: int = 0) -> None:
        try:
            family, nlri, attrs, options = parse_route_options(stmt.words, start)
        except RouteError as exc:
            self.error(stmt, exc.index, exc.message)
            return
        if afi and family.afi != afi:
            self.error(stmt, start, f"{stmt.words[start]} is not an IPv{4 if afi == 1 else 6} prefix")
            return
        if options.split is not None or options.watchdog is not None:
            self.store_routes(spec, family, nlri, attrs, options, self.lex.location(stmt, start))
            return
        table = spec.routes.get(family)
        if table is None:
            self.store_route(spec, family, nlri, attrs, self.lex.location(stmt, start))
        else:
            table[nlri] = attrs
            if exceeds(family, nlri, attrs, MAX_MESSAGE):
                spec.big_routes.append((family, nlri, attrs, self.lex.location(stmt, start)))
            if family == IPV4_UNICAST and ":" in (attrs.next_hop or "") and \
                    len(spec.v6_next_hop_routes) < _V6_NEXT_HOP_PLACES:
                spec.v6_next_hop_routes.append((nlri, self.lex.location(stmt, start)))

    def store_routes(self, spec: NeighborSpec, family: Family, nlri: bytes, attrs: Attributes,
                     options: RouteOptions, loc: Location) -> None:
        """A route with its options: split into its parts, kept in its watchdog group (and out of
        the announced routes when it starts withdrawn)."""
        nlris = [nlri] if options.split is None else split_route(family, nlri, options.split)
        if options.watchdog is not None:
            group = spec.watchdogs.setdefault(options.watchdog, [])
            group.extend((family, part, attrs, options.withdrawn) for part in nlris)
            if options.withdrawn:
                return
        for part in nlris:
            self.store_route(spec, family, part, attrs, loc)

    def store_route(self, spec: NeighborSpec, family: Family, nlri: bytes, attrs: Attributes,
                    loc: Location) -> None:
        table = spec.routes.get(family)
        if table is None:
            table = spec.routes[family] = {}
            spec.route_locs[family] = loc
        table[nlri] = attrs
        if exceeds(family, nlri, attrs, MAX_MESSAGE):
            spec.big_routes.append((family, nlri, attrs, loc))
        if family == IPV4_UNICAST and ":" in (attrs.next_hop or "") and \
                len(spec.v6_next_hop_routes) < _V6_NEXT_HOP_PLACES:
            spec.v6_next_hop_routes.append((nlri, loc))

    def check_next_hop_self(self, peer: str, routes: StaticRoutes, route_locs: dict[Family, Location],
                            where: str, extended: tuple[Family, ...]) -> bool:
        """`next-hop self` is our address on the session: an IPv6 route has none on an IPv4
        session (and the reverse). ExaBGP refuses it too; the agent could only drop the route.
        An IPv4 route on an IPv6 session may take our IPv6 address with the extended next hop
        (RFC 8950) for ipv4 unicast."""
        other = IPV6_UNICAST if ":" not in peer else IPV4_UNICAST
        table = routes.get(other)
        if not table or other in extended:
            return True
        for nlri, attrs in table.items():
            if attrs.next_hop == "self":
                session = "IPv6" if other == IPV4_UNICAST else "IPv4"
                hint = " (or enable the extended next hop: nexthop { ipv4 unicast ipv6; }, RFC 8950)" \
                    if other == IPV4_UNICAST else ""
                prefix = nlri_to_prefix(other, nlri)
                self.errors_at(route_locs[other], f"{where}: the {family_name(other)} route {prefix} has "
                                                  f"'next-hop self', but the session is {session}: there is "
                                                  "no address of ours of the route's family to use; write "
                                                  f"the next hop{hint}")
                return False
        return True

    def check_v6_next_hops(self, chain: list[NeighborSpec], routes: StaticRoutes,
                           route_locs: dict[Family, Location], where: str,
                           extended: tuple[Family, ...]) -> bool:
        """IPv4 routes with a written IPv6 next hop need the extended next hop (RFC 8950)."""
        table = routes.get(IPV4_UNICAST)
        if not table or IPV4_UNICAST in extended:
            return True
        places = ((attrs.next_hop, loc) for part in chain for nlri, loc in part.v6_next_hop_routes
                  if (attrs := table.get(nlri)) is not None and ":" in (attrs.next_hop or ""))
        found = next(places, None)
        if found is not None:
            nh, loc = found
        else:
            # Those routes were replaced by later ones: look for any left (its place unknown).
            hit = next((a.next_hop for a in set(table.values()) if ":" in (a.next_hop or "")), None)
            if hit is None:
                return True
            nh, loc = hit, route_locs[IPV4_UNICAST]
        self.errors_at(loc, f"{where}: next-hop {nh} is IPv6: an IPv4 route with an IPv6 next hop needs "
                            "the extended next hop (nexthop { ipv4 unicast ipv6; }, RFC 8950)")
        return False

    def extended_next_hop(self, caps: dict[str, tuple[Any, Location, str]],
                          nexthops: tuple[tuple[tuple[Family, Location], ...], Location] | None,
                          fams: tuple[Family, ...], where: str) -> tuple[tuple[Family, ...], bool]:
        """The families offered in the extended next hop capability, and whether all is well.
        As in ExaBGP, the nexthop block turns the capability on unless `capability { nexthop
        disable; }`; an entry needs both its route family and its next hop's family enabled
        (ExaBGP skips it silently otherwise: here it is an error, so nothing is lost unseen)."""
        flag = caps.get("nexthop")
        if flag is not None and not flag[0]:
            return (), True
        if nexthops is None:
            if flag is not None:
                self.errors_at(flag[1], f"{where}: 'capability {{ nexthop; }}' without a nexthop block "
                                        "offers nothing: add nexthop { ipv4 unicast ipv6; }")
                return (), False
            return (), True
        ok = True
        out: list[Family] = []
        for fam, loc in nexthops[0]:
            need = [f for f in (fam, IPV6_UNICAST) if f not in fams]
            if need:
                self.errors_at(loc, f"{where}: 'nexthop {{ ipv4 unicast ipv6; }}' needs 'family {{ "
                                    f"{'; '.join(family_name(f) for f in need)}; }}' (the neighbor "
                                    f"enables {', '.join(family_name(f) for f in fams)}; as in ExaBGP, the "
                                    "extended next hop is offered only with both families)")
                ok = False
                continue
            out.append(fam)
        return tuple(out), ok

    def check_route_sizes(self, chain: list[NeighborSpec], routes: StaticRoutes, where: str,
                          extended: bool) -> bool:
        """Routes larger than a 4096-byte UPDATE go only to a neighbor with extended messages."""
        limit = MAX_EXTENDED_MESSAGE if extended else MAX_MESSAGE
        ok = True
        reported: set[tuple[Family, bytes]] = set()
        for part in chain:
            for fam, nlri, attrs, loc in part.big_routes:
                if routes.get(fam, {}).get(nlri) is not attrs or (fam, nlri) in reported:
                    continue  # replaced by a later route, or said already
                problem = size_problem(fam, nlri, attrs, limit)
                if problem is not None:
                    self.errors_at(loc, f"{where}: {problem}")
                    reported.add((fam, nlri))
                    ok = False
        return ok

    # -- main loop ---------------------------------------------------------------------------

    def parse(self) -> Config:
        top = TopBlock(self, None, "top")
        stack: list[Block] = [top]
        for stmt in self.lex.statements():
            term = stmt.term
            if term == ";":
                stack[-1].statement(stmt)
            elif term == "{":
                if (len(stack) > 1 and stmt.words and stmt.words[0] in _TOP_LEVEL_BLOCKS
                        and not (stmt.words[0] == "neighbor" and isinstance(stack[-1], TemplateBlock))):
                    opened = stack[1]
                    self.error(stmt, 0, f"'{stmt.words[0]}' block inside the '{opened.title}' block opened "
                                        f"at {opened.loc.short()}: is a '}}' missing before this line?")
                    while len(stack) > 1:
                        stack.pop().close(None)
                stack.append(stack[-1].open(stmt))
            elif len(stack) == 1:
                self.error(stmt, 0, "unexpected '}': no block is open here")
            else:
                stack.pop().close(stmt)
        if len(stack) > 1:
            end = self.lex.end_of_file()
            for block in reversed(stack[1:]):
                self.errors_at(end, f"end of file inside the '{block.title}' block opened at "
                                    f"{block.loc.short()}: missing '}}'")
            while len(stack) > 1:
                stack.pop().close(None)
        return self.finish()

    # -- after the whole file --------------------------------------------------------------------

    def finish(self) -> Config:
        for name, loc in self.process_refs:
            if name not in self.processes:
                known = ", ".join(sorted(self.processes)) or "none is defined"
                hint = _did_you_mean(name, self.processes) or f" (processes: {known})"
                self.errors_at(loc, f"unknown process '{name}'{hint}")
        neighbors: list[Neighbor] = []
        seen: dict[str, Location] = {}
        for spec in self.neighbors:
            first = seen.get(spec.name)
            if first is not None:
                self.errors_at(spec.loc, f"duplicate neighbor {spec.name} (first defined at {first.short()})")
                continue
            seen[spec.name] = spec.loc
            neighbor = self.build(spec)
            if neighbor is not None:
                neighbors.append(neighbor)
        listen = self.build_listen(neighbors)
        for addr, loc, who in self.neighbor_refs:
            if addr not in seen:
                known = ", ".join(seen) or "none is defined"
                self.errors_at(loc, f"{who}: {addr} is not a configured neighbor (neighbors: {known})")
        self.check_health_families(neighbors)
        self.check_health_sizes(neighbors)
        if self.diags:
            raise ConfigError(self.sorted_diagnostics())
        return Config(neighbors=neighbors, processes=self.processes, listen=listen, path=self.file,
                      healthchecks=self.healthchecks)

    def check_health_families(self, neighbors: list[Neighbor]) -> None:
        """Each healthcheck IP must be of a family that one of its neighbors negotiates."""
        if not neighbors:
            return
        for name, hc in self.healthchecks.items():
            chosen = [n for n in neighbors if hc.neighbors is None or n.peer_address in hc.neighbors]
            if not chosen:
                continue
            for prefix, loc in self.health_ip_locs.get(name, []):
                fam = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
                if not any(fam in n.families for n in chosen):
                    which = "none of its neighbors enables" if hc.neighbors is not None else \
                        "no neighbor enables"
                    self.errors_at(loc, f"healthcheck {name}: ip {prefix} is {family_name(fam)}, which "
                                        f"{which} (family {{ {family_name(fam)}; }})")

    def check_health_sizes(self, neighbors: list[Neighbor]) -> None:
        """A healthcheck's route, in each of its states, must fit in one UPDATE to its neighbors."""
        for name, hc in self.healthchecks.items():
            chosen = [n for n in neighbors if hc.neighbors is None or n.peer_address in hc.neighbors]
            for prefix, loc in self.health_ip_locs.get(name, []):
                fam, nlri = prefix_to_nlri(prefix)
                limit = message_limit(chosen, fam)
                problems = (size_problem(fam, nlri, hc.route_attributes(state, hc.up_metric), limit)
                            for state in ("UP", "DOWN", "DISABLED"))
                problem = next((p for p in problems if p is not None), None)
                if problem is not None:
                    self.errors_at(loc, f"healthcheck {name}: ip {prefix}: {problem}")
                    break  # its other ips carry the same attributes

    def sorted_diagnostics(self) -> list[Diagnostic]:
        out = []
        for d in sorted(self.diags, key=lambda d: (d.line, d.col)):
            if d.line in self.secret_lines and not d.message.startswith(_SECRET_SAFE_PREFIXES):
                d = d._replace(message=_REDACTED.format(self.secret_lines[d.line]))
            out.append(d)
        return out

    def build_listen(self, neighbors: list[Neighbor]) -> list[tuple[str, int]]:
        if not self.listen:
            ports = sorted({DEFAULT_PORT} | {n.listen_port for n in neighbors if n.listen_port})
            return [(addr, port) for port in ports for addr in (ANY_V4, ANY_V6)]
        out: list[tuple[str, int]] = []
        for addr, port, loc in self.listen:
            if (addr, port) in out:
                self.errors_at(loc, f"listen {addr} {port} is given twice")
                continue
            out.append((addr, port))
        used_ports = {port for _name, port in out}
        for n in neighbors:
            if n.listen_port and n.listen_port not in used_ports:
                self.errors_at(n.source, f"neighbor {n.peer_address} has 'listen {n.listen_port}', but no "
                                         f"top-level listen statement uses port {n.listen_port}")
        return out

    def build(self, spec: NeighborSpec) -> Neighbor | None:
        chain: list[NeighborSpec] = []
        for name, loc in spec.inherits:
            template = self.templates.get(name)
            if template is None:
                known = ", ".join(sorted(self.templates)) or "none is defined"
                hint = _did_you_mean(name, self.templates) or f" (templates: {known})"
                self.errors_at(loc, f"unknown template '{name}'{hint}")
                continue
            chain.append(template)
        chain.append(spec)
        failed = set().union(*(part.failed for part in chain))
        fields: dict[str, tuple[Any, Location, str]] = {}
        caps: dict[str, tuple[Any, Location, str]] = {}
        families: tuple[tuple[Family, ...], Location] | None = None
        nexthops: tuple[tuple[tuple[Family, Location], ...], Location] | None = None
        add_path_block: tuple[tuple[Family, ...], Location] | None = None
        routes: StaticRoutes = {}
        route_locs: dict[Family, Location] = {}
        watchdogs: dict[str, list[WatchdogRoute]] = {}
        apis: list[Api] = []
        flows: dict[str, FlowRoute] = {}
        for part in chain:
            for fr in part.flows:
                flows[fr.name] = fr
            fields.update(part.fields)
            caps.update(part.capabilities)
            if part.families is not None:
                families = part.families
            for dog, group in part.watchdogs.items():
                watchdogs.setdefault(dog, []).extend(group)
            if part.nexthops is not None:
                nexthops = part.nexthops
            if part.add_path is not None:
                add_path_block = part.add_path
            for fam, table in part.routes.items():
                mine = routes.get(fam)
                if mine is None:
                    routes[fam] = table if part is spec else dict(table)
                    route_locs[fam] = part.route_locs[fam]
                else:
                    mine.update(table)
            apis.extend(part.apis)

        def get(key: str, default: Any = None) -> Any:
            found = fields.get(key)
            return default if found is None else found[0]

        ok = True
        peer = spec.name
        where = f"neighbor {peer}"
        for key, word in (("local_as", "local-as"), ("peer_as", "peer-as")):
            if key not in fields:
                if key not in failed:
                    self.errors_at(spec.loc, f"{where} has no '{word}'")
                ok = False
        peer_version = ipaddress.ip_address(peer).version
        local = get("local_address")
        if local is not None and ipaddress.ip_address(local).version != peer_version:
            self.errors_at(fields["local_address"][1], f"local-address {local} is IPv"
                                                       f"{ipaddress.ip_address(local).version} but the "
                                                       f"neighbor {peer} is IPv{peer_version}")
            ok = False
        router_id = get("router_id")
        if router_id is None:
            if local is not None and ipaddress.ip_address(local).version == 4:
                router_id = local
            elif failed & {"router_id", "local_address"}:
                ok = False
            else:
                self.errors_at(spec.loc, f"{where} has no 'router-id' (it defaults to local-address "
                                         "only when that is an IPv4 address)")
                ok = False
        md5 = get("md5_password")
        names = [(key, get(key)) for key in ("host_name", "domain_name") if get(key) is not None]
        if sum(len(value.encode()) for _key, value in names) > MAX_FQDN_BYTES:
            self.errors_at(fields[names[-1][0]][1],
                           f"host-name and domain-name together are longer than {MAX_FQDN_BYTES} "
                           "bytes: they go in the OPEN message, whose capabilities hold 255 bytes at most")
            ok = False
        md5_base64 = get("md5_base64", False)
        if md5 is not None:
            loc = fields["md5_password"][1]
            raw: bytes | None = md5.reveal().encode()
            if md5_base64:
                try:
                    raw = base64.b64decode(md5.reveal(), validate=True)
                except (binascii.Error, ValueError):
                    self.errors_at(loc, "md5-password is not valid base64 (md5-base64 is set)")
                    ok = False
                    raw = None
            if raw is not None and len(raw) > MD5_MAX_KEY:
                self.errors_at(loc, f"md5-password is longer than {MD5_MAX_KEY} bytes, the kernel's limit")
                ok = False
        fams = families[0] if families is not None else DEFAULT_FAMILIES
        for fam, loc in route_locs.items():
            if fam not in fams:
                self.errors_at(loc, f"{where}: this {family_name(fam)} route needs 'family {{ "
                                    f"{family_name(fam)}; }}' (the neighbor enables "
                                    f"{', '.join(family_name(f) for f in fams)})")
                ok = False
        next_hop_families, ext_ok = self.extended_next_hop(caps, nexthops, fams, where)
        ok = ext_ok and ok
        # A nexthop block already reported as wrong: its routes' errors would only repeat it.
        checked = (IPV4_UNICAST,) if not ext_ok or "nexthops" in failed else next_hop_families
        ok = self.check_next_hop_self(peer, routes, route_locs, where, checked) and ok
        ok = self.check_v6_next_hops(chain, routes, route_locs, where, checked) and ok
        extended = caps["extended_message"][0] if "extended_message" in caps else False
        ok = self.check_route_sizes(chain, routes, where, extended) and ok
        if not ok:
            return None
        hold_time = get("hold_time", 180)
        gr = caps["graceful_restart"][0] if "graceful_restart" in caps else None
        if gr is True:
            gr = min(hold_time, GR_MAX)
        elif gr is False:
            gr = None
        add_path = caps["add_path"][0] if "add_path" in caps else 0
        # As ExaBGP: the block's families (those the neighbor enables), or every family without
        # one; only those that can carry path ids.
        listed = add_path_block[0] if add_path_block is not None and add_path_block[0] else fams
        add_path_families = tuple(f for f in ADDPATH_FAMILIES if f in listed and f in fams) \
            if add_path else ()
        capabilities = Capabilities(
            graceful_restart=gr,
            route_refresh=caps["route_refresh"][0] if "route_refresh" in caps else True,
            asn4=caps["asn4"][0] if "asn4" in caps else True,
            extended_message=caps["extended_message"][0] if "extended_message" in caps else False,
            software_version=caps["software_version"][0] if "software_version" in caps else False,
            extended_next_hop=next_hop_families,
            add_path=add_path,
            add_path_families=add_path_families)
        return Neighbor(
            peer_address=peer, local_as=get("local_as"), peer_as=get("peer_as"), router_id=router_id,
            local_address=local, hold_time=hold_time, passive=get("passive", False),
            listen_port=get("listen_port"), connect_port=get("connect_port"),
            description=get("description", ""), md5_password=md5, md5_base64=md5_base64,
            md5_ip=get("md5_ip"), outgoing_ttl=get("outgoing_ttl"), incoming_ttl=get("incoming_ttl"),
            group_updates=get("group_updates", True), adj_rib_in=get("adj_rib_in", False),
            adj_rib_out=get("adj_rib_out", True), manual_eor=get("manual_eor", False),
            auto_flush=get("auto_flush", True), rate_limit=get("rate_limit"),
            host_name=get("host_name"), domain_name=get("domain_name"),
            source_interface=get("source_interface"), families=fams, capabilities=capabilities,
            static_routes=routes, flow_routes=tuple(flows.values()), api=tuple(apis), bfd=get("bfd"),
            watchdogs={dog: tuple(group) for dog, group in watchdogs.items()},
            inherit=tuple(name for name, _loc in spec.inherits), source=spec.loc)


def parse_text(text: str, filename: str = "<config>") -> Config:
    """Parse a config. Raises ConfigError listing every problem found."""
    return Parser(text, filename).parse()
