"""FlowSpec rules in ExaBGP 5's text syntax (`configuration/flow/parser.py`): `match` and `then`
names and values read into the codec's FlowRule and FlowActions (fleetbgp.wire.flowspec), and
written back.

The same names and value strings are accepted from the configuration, the API and the control
socket, and the renderings (match_dict, match_text, flow_string, flow_json, then_dict, then_text)
are what ExaBGP prints for the same rule, so scripts written for ExaBGP keep working.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetbgp.literals import HEX_DIGITS, address_error, decimal, hexadecimal, leading_zero, shown
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.constants import MAX_EXTENDED_MESSAGE
from fleetbgp.wire.fit import Limit, size_problem, update_size
from fleetbgp.wire.flowspec import (
    AFI_IPV4,
    AFI_IPV6,
    AND,
    DESTINATION,
    DSCP,
    EQ,
    FLOW_LABEL,
    FRAGMENT,
    GT,
    KINDS,
    LT,
    MATCH,
    NOT,
    PACKET_LENGTH,
    PORT,
    PROTOCOL,
    REDIRECT_AS2,
    REDIRECT_AS4,
    REDIRECT_IPV4,
    REDIRECT_NEXT_HOP,
    REDIRECT_NEXT_HOP_COPY,
    SAFI_FLOWSPEC,
    SOURCE,
    TCP_FLAGS,
    TRAFFIC_ACTION,
    TRAFFIC_MARKING,
    TRAFFIC_RATE,
    TRAFFIC_RATE_PACKETS,
    Component,
    FlowActions,
    FlowRule,
    FlowSpecError,
    Kind,
    Operation,
    OperatorComponent,
    PrefixComponent,
    action_community,
    decode_nlri,
    family_text,
    rate_community,
    split_nlri,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV6_FLOWSPEC, Family, register_safi

from .communities import (
    large_community_text,
    parse_community,
    parse_extended_community,
    parse_large_community,
)

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF

_NUMERIC_TEXT = {EQ: "=", GT: ">", LT: "<", GT | EQ: ">=", LT | EQ: "<=", LT | GT: "!=",
                 LT | GT | EQ: "true", 0: "false"}
_BITMASK_TEXT = {0: "", NOT: "!", MATCH: "=", NOT | MATCH: "!="}

# ExaBGP's value names (exabgp/protocol/...), so the same strings mean the same thing.
PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "egp": 8, "udp": 17, "rsvp": 46, "gre": 47, "esp": 50,
             "ah": 51, "ospf": 89, "ipip": 94, "pim": 103, "sctp": 132}
_PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
_PROTOCOL_ALIASES = {"ipv6-icmp": 58, "icmpv6": 58, "icmp6": 58}  # accepted, shown as 58
ICMP_TYPES = {"echo-reply": 0, "unreachable": 3, "redirect": 5, "echo-request": 8,
              "router-advertisement": 9, "router-solicit": 10, "time-exceeded": 11,
              "parameter-problem": 12, "timestamp": 13, "timestamp-reply": 14, "photuris": 40,
              "experimental-mobility": 41, "extended-echo-request": 42, "extended-echo-reply": 43,
              "experimental-one": 253, "experimental-two": 254}
_ICMP_TYPE_NAMES = {v: k for k, v in ICMP_TYPES.items()}
ICMP_CODES = {"network-unreachable": 0, "host-unreachable": 1, "protocol-unreachable": 2,
              "port-unreachable": 3, "fragmentation-needed": 4, "source-route-failed": 5,
              "destination-network-unknown": 6, "destination-host-unknown": 7,
              "source-host-isolated": 8, "destination-network-prohibited": 9,
              "destination-host-prohibited": 10, "network-unreachable-for-tos": 11,
              "host-unreachable-for-tos": 12, "communication-prohibited-by-filtering": 13,
              "host-precedence-violation": 14, "precedence-cutoff-in-effect": 15,
              "redirect-for-network": 0, "redirect-for-host": 1, "redirect-for-tos-and-net": 2,
              "redirect-for-tos-and-host": 3, "ttl-eq-zero-during-transit": 0,
              "ttl-eq-zero-during-reassembly": 1, "required-option-missing": 1, "ip-header-bad": 2}
TCP_FLAGS_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "push": 0x08, "ack": 0x10, "urg": 0x20,
                  "ece": 0x40, "cwr": 0x80, "ns": 0x100}
_TCP_FLAG_ALIASES = {"urgent": 0x20, "psh": 0x08}
FRAGMENT_BITS = {"dont-fragment": 0x01, "is-fragment": 0x02, "first-fragment": 0x04,
                 "last-fragment": 0x08}
# Service names ExaBGP accepts for ports that operators actually write (ExaBGP knows the whole
# IANA list; numbers always work).
PORTS = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53,
         "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88,
         "pop3": 110, "sunrpc": 111, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138,
         "netbios-ssn": 139, "imap": 143, "snmp": 161, "snmptrap": 162, "bgp": 179, "ldap": 389,
         "https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514, "submission": 587,
         "ldaps": 636, "imaps": 993, "pop3s": 995, "openvpn": 1194, "mssql": 1433, "mysql": 3306,
         "rdp": 3389, "ms-wbt-server": 3389, "memcache": 11211, "memcached": 11211,
         "postgresql": 5432, "sip": 5060, "chargen": 19, "echo": 7, "discard": 9, "qotd": 17,
         "ssdp": 1900, "http-alt": 8080}


@dataclass(frozen=True, slots=True)
class _Syntax:
    """How a component type is written (the codec's Kind has its name and limits)."""

    json_name: str  # ExaBGP's JSON/text name
    names: Mapping[str, int] | None = None  # value names accepted on input
    shown: Mapping[int, str] | None = None  # value names used on output (ExaBGP's)


_PROTOCOL_SYNTAX = _Syntax("protocol", PROTOCOLS | _PROTOCOL_ALIASES, _PROTOCOL_NAMES)
_COMMON_SYNTAX = {
    PORT: _Syntax("port", PORTS), 5: _Syntax("destination-port", PORTS),
    6: _Syntax("source-port", PORTS), 7: _Syntax("icmp-type", ICMP_TYPES, _ICMP_TYPE_NAMES),
    8: _Syntax("icmp-code", ICMP_CODES), TCP_FLAGS: _Syntax("tcp-flags", TCP_FLAGS_BITS | _TCP_FLAG_ALIASES),
    PACKET_LENGTH: _Syntax("packet-length"), FRAGMENT: _Syntax("fragment", FRAGMENT_BITS),
}
_SYNTAX: dict[int, dict[int, _Syntax]] = {
    AFI_IPV4: {DESTINATION: _Syntax("destination-ipv4"), SOURCE: _Syntax("source-ipv4"),
               PROTOCOL: _PROTOCOL_SYNTAX, DSCP: _Syntax("dscp"), **_COMMON_SYNTAX},
    AFI_IPV6: {DESTINATION: _Syntax("destination-ipv6"), SOURCE: _Syntax("source-ipv6"),
               PROTOCOL: _Syntax("next-header", _PROTOCOL_SYNTAX.names, _PROTOCOL_SYNTAX.shown),
               DSCP: _Syntax("traffic-class"), FLOW_LABEL: _Syntax("flow-label"), **_COMMON_SYNTAX},
}
_FRAGMENT_DEFINED = {AFI_IPV4: 0x0F, AFI_IPV6: 0x0E}  # RFC 8956 3.6: no DF bit in IPv6


@dataclass(frozen=True, slots=True)
class _Kind:
    """A component type as the codec knows it (Kind) and as it is written (_Syntax)."""

    type: int
    name: str  # ExaBGP's configuration name
    json_name: str  # ExaBGP's JSON/text name
    afis: tuple[int, ...]
    bitmask: bool
    prefix: bool
    limit: int
    names: Mapping[str, int] | None
    shown: Mapping[int, str] | None


def _joined(kind: Kind, syntax: _Syntax) -> _Kind:
    return _Kind(kind.type, kind.name, syntax.json_name, kind.afis, kind.bitmask, kind.prefix,
                 kind.limit, syntax.names, syntax.shown)


_KINDS: dict[int, dict[int, _Kind]] = {
    afi: {t: _joined(k, _SYNTAX[afi][t]) for t, k in kinds.items()} for afi, kinds in KINDS.items()}


# input name -> type, per family. ExaBGP's aliases included.
_NAMES: dict[int, dict[str, int]] = {
    AFI_IPV4: {k.name: t for t, k in _KINDS[AFI_IPV4].items()} | {
        "destination-ipv4": DESTINATION, "source-ipv4": SOURCE},
    AFI_IPV6: {k.name: t for t, k in _KINDS[AFI_IPV6].items()} | {
        "destination-ipv6": DESTINATION, "source-ipv6": SOURCE, "dscp": DSCP},
}
_OTHER_FAMILY_HINT = {
    (AFI_IPV6, "protocol"): "IPv6 rules use 'next-header'",
    (AFI_IPV4, "next-header"): "IPv4 rules use 'protocol'",
    (AFI_IPV4, "traffic-class"): "IPv4 rules use 'dscp'",
    (AFI_IPV4, "flow-label"): "the flow label exists only in IPv6 (ipv6 flow)",
    (AFI_IPV4, "destination-ipv6"): "an IPv6 prefix needs an ipv6 flow rule",
    (AFI_IPV4, "source-ipv6"): "an IPv6 prefix needs an ipv6 flow rule",
    (AFI_IPV6, "destination-ipv4"): "an IPv4 prefix needs an ipv4 flow rule",
    (AFI_IPV6, "source-ipv4"): "an IPv4 prefix needs an ipv4 flow rule",
}


def _prefix_text(comp: PrefixComponent, afi: int, exabgp: bool = False) -> str:
    if afi == AFI_IPV4:
        return f"{ipaddress.IPv4Address(comp.address)}/{comp.length}"
    # ExaBGP prints with inet_ntop, which writes ::/96 addresses as ::a.b.c.d
    address = socket.inet_ntop(socket.AF_INET6, comp.address) if exabgp else \
        ipaddress.IPv6Address(comp.address)
    text = f"{address}/{comp.length}"
    if exabgp or comp.offset:
        text += f"/{comp.offset}"
    return text


def _bits_text(value: int, kind: _Kind, exabgp: bool) -> str:
    table = TCP_FLAGS_BITS if kind.type == TCP_FLAGS else FRAGMENT_BITS
    parts = [name for name, bit in table.items() if value & bit]
    rest = value & ~sum(table.values())
    if rest:
        if exabgp:  # BitResource.named_bits
            label = "tcp flag" if kind.type == TCP_FLAGS else "fragment"
            parts.append(f"unknown {label} type {value}")
        else:
            parts.append(f"{rest:#x}")
    if not parts and not exabgp:
        return "0"
    return "+".join(parts)


def _operation_text(operation: Operation, kind: _Kind, first: bool, exabgp: bool) -> str:
    op = operation.op & (~AND if first else 0xFF)
    prefix = "&" if op & AND else ""
    if kind.bitmask:
        return prefix + _BITMASK_TEXT[op & (NOT | MATCH)] + _bits_text(operation.value, kind, exabgp)
    cmp = op & (LT | GT | EQ)
    if cmp in (LT | GT | EQ, 0):
        word = _NUMERIC_TEXT[cmp]
        if exabgp:  # NumericString.short drops the value, but not after an AND bit
            return f"&{word}{operation.value}" if prefix else word
        # the value does not matter to the match; shown when not 0 so the rule reads back the same
        return prefix + word + (str(operation.value) if operation.value else "")
    shown = kind.shown.get(operation.value) if kind.shown else None
    return prefix + _NUMERIC_TEXT[cmp] + (shown if shown is not None else str(operation.value))


def _operator_values(comp: OperatorComponent, kind: _Kind, exabgp: bool) -> list[str]:
    """ORed terms, each with its ANDed operations joined: ['=80', '>1024&<2048']."""
    values: list[str] = []
    for i, operation in enumerate(comp.ops):
        text = _operation_text(operation, kind, i == 0, exabgp)
        if i and operation.op & AND:
            values[-1] += text
        else:
            values.append(text)
    return values


def _kind(rule: FlowRule, comp: Component) -> _Kind:
    return _KINDS[rule.afi][comp.type]


def match_dict(rule: FlowRule) -> dict[str, list[str]]:
    """ExaBGP configuration names -> list of ExaBGP value strings (ORed)."""
    out: dict[str, list[str]] = {}
    for comp in rule.components:
        kind = _kind(rule, comp)
        if isinstance(comp, PrefixComponent):
            out[kind.name] = [_prefix_text(comp, rule.afi)]
        else:
            out[kind.name] = _operator_values(comp, kind, exabgp=False)
    return out


def match_text(rule: FlowRule) -> str:
    """'match { destination 10.0.0.0/24; destination-port =80; }' (ExaBGP configuration)."""
    parts = []
    for name, values in match_dict(rule).items():
        value = values[0] if len(values) == 1 else "[ " + " ".join(values) + " ]"
        parts.append(f"{name} {value}; ")
    return "match { " + "".join(parts) + "}"


def _exabgp_items(rule: FlowRule) -> list[tuple[str, list[str], str]]:
    """(json name, values, string-form fragment) per component, as ExaBGP renders them."""
    items = []
    for comp in rule.components:
        kind = _kind(rule, comp)
        if isinstance(comp, PrefixComponent):
            value = _prefix_text(comp, rule.afi, exabgp=True)
            items.append((kind.json_name, [value], value))
            continue
        pieces = []
        for i, operation in enumerate(comp.ops):
            if i and not operation.op & AND:
                pieces.append(" ")
            pieces.append(_operation_text(operation, kind, i == 0, exabgp=True))
        line = "".join(pieces)
        if len(pieces) > 1:
            line = f"[ {line} ]"
        items.append((kind.json_name, _operator_values(comp, kind, exabgp=True), line))
    return items


def flow_string(rule: FlowRule, next_hop: str | None = None) -> str:
    """ExaBGP's one-line form: 'flow destination-ipv4 10.0.0.0/24 protocol =tcp'."""
    text = "flow" + "".join(f" {name} {line}" for name, _values, line in _exabgp_items(rule))
    if next_hop:
        text += f" next-hop {next_hop}"
    return text


def flow_json(rule: FlowRule, next_hop: str | None = None) -> dict[str, Any]:
    """The flow NLRI as ExaBGP 5's JSON encoder writes it (Flow.json)."""
    out: dict[str, Any] = {}
    for name, values, _line in _exabgp_items(rule):
        out[name] = values
    if next_hop:
        out["next-hop"] = next_hop
    out["string"] = flow_string(rule, next_hop)
    return out


# ---------------------------------------------------------------------------------------------
# Text -> FlowRule (ExaBGP value syntax)


def _norm_key(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def afi_for_match(match: Mapping[str, Any], default: int = AFI_IPV4) -> int:
    """The family a match implies: IPv6 if a prefix is IPv6 or an IPv6-only component is used,
    IPv4 if a prefix is IPv4, else default."""
    for key, value in match.items():
        name = _norm_key(key)
        if name in ("next-header", "flow-label", "traffic-class", "destination-ipv6",
                    "source-ipv6"):
            return AFI_IPV6
        if name in ("destination", "source", "destination-ipv4", "source-ipv4"):
            texts = value if isinstance(value, (list, tuple)) else [value]
            for text in texts:
                if isinstance(text, str) and text.strip():
                    return AFI_IPV6 if ":" in text else AFI_IPV4
    return default


def _parse_prefix(afi: int, kind: _Kind, text: str) -> PrefixComponent:
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1].strip()
    if " " in raw:
        raise FlowSpecError(kind.name, f"{shown(text)}: one prefix per rule (RFC 8955 4.2 allows each "
                            "component once)")
    parts = raw.split("/")
    is_v6 = ":" in parts[0]
    if afi == AFI_IPV4 and is_v6:
        raise FlowSpecError(kind.name, f"{shown(raw)} is an IPv6 prefix but the rule is ipv4 flow "
                            "(use family ipv6)")
    if afi == AFI_IPV6 and not is_v6:
        raise FlowSpecError(kind.name, f"{shown(raw)} is an IPv4 prefix but the rule is ipv6 flow")
    bits = 128 if is_v6 else 32
    if "%" in parts[0]:  # ipaddress takes fe80::1%eth0 and forgets the zone: a prefix has none
        raise FlowSpecError(kind.name, f"{shown(raw)}: a prefix has no zone (%...): leave it out")
    try:
        address = int(ipaddress.IPv6Address(parts[0]) if is_v6 else ipaddress.IPv4Address(parts[0]))
    except ValueError:
        raise FlowSpecError(kind.name, leading_zero(raw) or f"{shown(raw)}: {shown(parts[0])} is not "
                            f"an IPv{6 if is_v6 else 4} address") from None
    if len(parts) > (3 if is_v6 else 2):
        form = "ADDRESS/LENGTH or ADDRESS/LENGTH/OFFSET" if is_v6 else "ADDRESS/LENGTH"
        raise FlowSpecError(kind.name, f"{shown(raw)}: expected {form}")
    length = bits
    if len(parts) > 1:
        found = decimal(parts[1], bits)
        if found is None:
            raise FlowSpecError(kind.name, f"{shown(raw)}: prefix length must be 0..{bits}")
        length = found
    offset = 0
    if len(parts) > 2:
        found = decimal(parts[2], bits)
        if found is None:
            raise FlowSpecError(kind.name, f"{shown(raw)}: offset must be a number 0..{bits}")
        offset = found
        # RFC 8956 3.1: length 0 with offset 0 matches everything, else offset < length.
        if (length, offset) != (0, 0) and not offset < length:
            raise FlowSpecError(kind.name, f"{shown(raw)}: offset {offset} must be below the prefix "
                                f"length {length} (RFC 8956 3.1)")
    host = (1 << (bits - length)) - 1
    if address & host:
        net = address & ~host
        net_text = ipaddress.IPv6Address(net) if is_v6 else ipaddress.IPv4Address(net)
        raise FlowSpecError(kind.name, f"{shown(raw)} has host bits set (did you mean {net_text}/{length}?)")
    if offset:
        # The bits before the offset are not matched and not sent (RFC 8956 3.1): keep them zero
        # so the rule reads back as it is sent.
        address &= (1 << (bits - offset)) - 1
    return PrefixComponent(kind.type, length, address.to_bytes(bits // 8, "big"), offset)


def _parse_number(kind: _Kind, term: str, text: str) -> int:
    low = text.lower()
    value: int | None = None
    if kind.names is not None and low in kind.names:
        value = kind.names[low]
    elif low.startswith("0x") and len(low) > 2:
        value = hexadecimal(low[2:], kind.limit)
        if value is None and HEX_DIGITS.issuperset(low[2:]):
            raise FlowSpecError(kind.name, f"{shown(term)} is out of range 0-{kind.limit}")
    else:
        value = decimal(low, kind.limit)
        if value is None and low.isascii() and low.isdigit():
            raise FlowSpecError(kind.name, f"{shown(term)} is out of range 0-{kind.limit}")
    if value is None:
        hint = ""
        if kind.names:
            names = sorted(n for n in kind.names if n not in _PROTOCOL_ALIASES)
            hint = f" (a number or one of: {', '.join(names[:24])}{', ...' if len(names) > 24 else ''})"
        raise FlowSpecError(kind.name, f"{shown(term)}: {shown(text)} is not a valid value{hint}")
    return value


def _parse_bits(kind: _Kind, term: str, text: str, afi: int) -> int:
    value = 0
    for part in text.split("+"):
        if not part:
            raise FlowSpecError(kind.name, f"{shown(term)}: empty flag name")
        value |= _parse_number(kind, term, part)
    if kind.type == FRAGMENT and value & ~_FRAGMENT_DEFINED[afi]:
        raise FlowSpecError(kind.name, f"{shown(term)}: dont-fragment does not exist in IPv6 "
                            "(RFC 8956 3.6)")
    if value > kind.limit:
        raise FlowSpecError(kind.name, f"{shown(term)} is out of range 0-{kind.limit:#x}")
    return value


def _split_operator(kind: _Kind, term: str, text: str) -> tuple[int, str]:
    """('>=1024') -> (GT|EQ, '1024'), ExaBGP's _operator_numeric/_operator_binary."""
    if kind.bitmask:
        if text.startswith("!="):
            return NOT | MATCH, text[2:]
        if text.startswith("="):
            return MATCH, text[1:]
        if text.startswith("!"):
            return NOT, text[1:]
        return 0, text
    for word, op in (("true", LT | GT | EQ), ("false", 0)):
        if text.lower().startswith(word):
            return op, text[len(word):] or "0"
    for sym in (">=", "<=", "!=", "=", ">", "<"):
        if text.startswith(sym):
            return {">=": GT | EQ, "<=": LT | EQ, "!=": LT | GT, "=": EQ, ">": GT, "<": LT}[sym], \
                text[len(sym):]
    if text.startswith("!"):
        raise FlowSpecError(kind.name, f"{shown(term)}: '!' must be followed by '=' (not equal)")
    return EQ, text


def _parse_term(afi: int, kind: _Kind, term: str) -> list[Operation]:
    """'>1024&<2048' -> [Operation(GT, 1024), Operation(AND|LT, 2048)]."""
    if term.startswith("&") or term.endswith("&") or "&&" in term:
        raise FlowSpecError(kind.name, f"{shown(term)}: '&' must join two conditions")
    ops = []
    for i, piece in enumerate(term.split("&")):
        op, value_text = _split_operator(kind, term, piece)
        if not value_text:
            raise FlowSpecError(kind.name, f"{shown(term)}: a value is missing after the operator")
        value = (_parse_bits(kind, term, value_text, afi) if kind.bitmask
                 else _parse_number(kind, term, value_text))
        ops.append(Operation(op | (AND if i else 0), value))
    return ops


def _terms(kind: _Kind, value: Any) -> list[str]:
    """A value as ExaBGP writes it ('=80', '[ =80 =443 ]', ['=80', '=443'], 80) -> OR terms."""
    items = value if isinstance(value, (list, tuple)) else [value]
    terms: list[str] = []
    for item in items:
        if isinstance(item, bool):
            raise FlowSpecError(kind.name, f"{shown(item)} is not a valid value")
        if isinstance(item, int):
            if kind.prefix:
                raise FlowSpecError(kind.name, f"{shown(item)} is not a prefix")
            if not 0 <= item <= kind.limit:  # also spares str() an int past its digit limit
                raise FlowSpecError(kind.name, f"{shown(item)} is out of range 0-{kind.limit}")
            terms.append(str(item) if kind.bitmask else f"={item}")
            continue
        if not isinstance(item, str):
            raise FlowSpecError(kind.name, f"{shown(item)} is not a valid value (expected a string such "
                                "as '=80' or a number)")
        text = item.strip()
        if text.startswith("["):
            if not text.endswith("]"):
                raise FlowSpecError(kind.name, f"{shown(item)}: the list is not closed with ']'")
            text = text[1:-1]
        elif text.endswith("]"):
            raise FlowSpecError(kind.name, f"{shown(item)}: ']' without '['")
        terms.extend(t for t in text.replace(",", " ").split() if t)
    if not terms:
        raise FlowSpecError(kind.name, "needs a value")
    return terms


def parse_match(afi: int, match: Mapping[str, Any]) -> FlowRule:
    """ExaBGP match names and values -> FlowRule. Raises FlowSpecError naming the component."""
    if afi not in KINDS:
        raise FlowSpecError("family", f"AFI {afi} has no FlowSpec (ipv4 or ipv6 only)")
    if not isinstance(match, Mapping):
        raise FlowSpecError("match", "expected a mapping of component names to values")
    names = _NAMES[afi]
    found: dict[int, tuple[str, Component]] = {}
    for key, value in match.items():
        name = _norm_key(str(key))
        ctype = names.get(name)
        if ctype is None:
            hint = _OTHER_FAMILY_HINT.get((afi, name))
            if hint is None:
                known = ", ".join(k.name for k in _KINDS[afi].values())
                hint = f"known for {family_text(afi)}: {known}"
            raise FlowSpecError(name, f"not a match component of {family_text(afi)} ({hint})")
        kind = _KINDS[afi][ctype]
        if ctype in found:
            raise FlowSpecError(name, f"given twice (also as '{found[ctype][0]}'); RFC 8955 4.2 "
                                "allows each component once per rule")
        comp: Component
        if kind.prefix:
            texts = _terms(kind, value) if not isinstance(value, str) else [value]
            if len(texts) != 1:
                raise FlowSpecError(kind.name, "one prefix per rule (RFC 8955 4.2 allows each "
                                    "component once; use one rule per prefix)")
            comp = _parse_prefix(afi, kind, texts[0])
        else:
            ops: list[Operation] = []
            for term in _terms(kind, value):
                ops.extend(_parse_term(afi, kind, term))
            comp = OperatorComponent(ctype, tuple(ops))
        found[ctype] = (name, comp)
    if not found:
        raise FlowSpecError("match", "a rule needs at least one component: an empty match would "
                            "match every packet")
    rule = FlowRule(afi, tuple(found[t][1] for t in sorted(found)))
    rule.nlri()  # raises if it does not fit the 4095-byte limit
    return rule


def format_nlri(family: tuple[int, int], item: bytes) -> str:
    """An NLRI item for logs and `show`: ExaBGP's 'flow destination-ipv4 10.0.0.0/24 ...'."""
    try:
        return flow_string(decode_nlri(family[0], item))
    except FlowSpecError as exc:
        return f"flow (malformed: {exc}) 0x{item.hex()}"


# The codec registered a placeholder; nlri_to_prefix shows flow NLRI this way from now on.
register_safi(SAFI_FLOWSPEC, split_nlri, format_nlri)


# ---------------------------------------------------------------------------------------------
# Actions


def then_dict(actions: FlowActions) -> dict[str, Any]:
    """ExaBGP names -> values; parse_actions(then_dict(a)) gives the actions a back."""
    out = decode_actions(actions.extended_communities)
    if actions.redirect_ip is not None:
        if out.pop("redirect-to-nexthop", None):
            _add(out, "redirect", actions.redirect_ip)
        elif out.pop("copy-to-nexthop", None):
            out["copy"] = actions.redirect_ip
        else:
            out["next-hop"] = actions.redirect_ip
    if actions.communities:
        # numbers, not names: what `then` was given reads back the same
        out["community"] = [f"{c >> 16}:{c & 0xFFFF}" for c in actions.communities]
    if actions.large_communities:
        out["large-community"] = [large_community_text(c) for c in actions.large_communities]
    if not out:
        out["accept"] = True
    return out


def actions_text(actions: FlowActions) -> str:
    """'then { discard; }' (ExaBGP configuration)."""
    parts: list[str] = []
    for key, value in then_dict(actions).items():
        if value is True:
            parts.append(f"{key}; ")
        elif key == "rate-limit-packets":
            parts.append(f"rate-limit {_num(value)} packets; ")
        elif key == "redirect" and isinstance(value, list):
            parts.extend(f"redirect {item}; " for item in value)
        elif isinstance(value, list):
            parts.append(f"{key} [ {' '.join(str(v) for v in value)} ]; ")
        else:
            parts.append(f"{key} {_num(value)}; ")
    return "then { " + "".join(parts) + "}"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    if key in out:
        prev = out[key]
        out[key] = [*(prev if isinstance(prev, list) else [prev]), value]
    else:
        out[key] = value


def _rate_value(key: str, value: Any) -> tuple[float, str]:
    """rate-limit value -> (rate, 'bytes'|'packets'). Accepts 9600, 9600.5, '9600', '1000 packets'."""
    unit = "bytes"
    if isinstance(value, bool):
        raise FlowSpecError(key, f"{shown(value)} is not a rate")
    if isinstance(value, str):
        words = value.split()
        if len(words) == 2 and words[1].lower() in ("bytes", "packets"):
            unit = words[1].lower()
            words = words[:1]
        if len(words) != 1:
            raise FlowSpecError(key, f"{shown(value)}: expected a rate such as 9600 or '1000 packets'")
        try:
            # float() also takes '1_000' and non-ASCII digits: not numbers a router would print
            if not words[0].isascii() or "_" in words[0]:
                raise ValueError(words[0])
            rate = float(words[0])
        except ValueError:
            raise FlowSpecError(key, f"{shown(value)} is not a number") from None
    elif isinstance(value, (int, float)):
        try:
            rate = float(value)
        except OverflowError:  # an int too large for a float
            rate = math.inf
    else:
        raise FlowSpecError(key, f"{shown(value)} is not a rate")
    if not math.isfinite(rate) or rate < 0:
        raise FlowSpecError(key, f"{shown(value)}: the rate must be a finite number >= 0 "
                            "(RFC 8955 7.1; 0 discards)")
    if rate > 3.4e38:
        raise FlowSpecError(key, f"{shown(value)} does not fit an IEEE single-precision float")
    return rate, unit


def _ip(text: str, key: str | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """text as an IP address, or None. Given the action's `key`, an address with a leading-zero
    octet is that action's error rather than "not an address"."""
    bare = text.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        problem = leading_zero(bare) if key is not None else None
        if problem is not None:
            raise FlowSpecError(key or "", problem) from None
        return None


def _redirect(value: str) -> tuple[bytes | None, str | None]:
    """ExaBGP 'redirect' value -> (route-target community, or None; redirect IP, or None)."""
    text = value.strip()
    ip = _ip(text, "redirect")
    if ip is not None:
        return None, str(ip)
    if text.startswith("["):
        raise FlowSpecError("redirect", f"{shown(value)}: an IPv6 route target (RFC 5701) is not supported; "
                            "use ASN:NN, A.B.C.D:NN, or an IPv6 address to redirect to that next hop")
    admin, sep, local = text.rpartition(":")
    if not sep or not (local.isascii() and local.isdigit()):
        raise FlowSpecError("redirect", f"{shown(value)}: expected ASN:NN (VRF route target), "
                            "A.B.C.D:NN, or an IP address (redirect to that next hop)")
    nn = decimal(local, _U32)
    if nn is None:
        raise FlowSpecError("redirect", f"{shown(value)}: the value is 0-4294967295")
    if "." in admin:
        v4 = _ip(admin, "redirect")
        if not isinstance(v4, ipaddress.IPv4Address):
            raise FlowSpecError("redirect", f"{shown(value)}: {address_error(admin, 'an IPv4 address')}")
        if nn > _U16:
            raise FlowSpecError("redirect", f"{shown(value)}: with an IPv4 address the value is 0-65535")
        return action_community(REDIRECT_IPV4, v4.packed + struct.pack("!H", nn)), None
    four = admin[-1:] in ("L", "l")
    if four:
        admin = admin[:-1]
    asn = decimal(admin, _U32)
    if asn is None:
        raise FlowSpecError("redirect", f"{shown(value)}: {shown(admin)} is not an AS number (0-4294967295)")
    if asn > _U16 or four:
        if nn > _U16:
            raise FlowSpecError("redirect", f"{shown(value)}: with a 4-octet AS the value is 0-65535")
        return action_community(REDIRECT_AS4, struct.pack("!IH", asn, nn)), None
    if nn > _U32:
        raise FlowSpecError("redirect", f"{shown(value)}: the value is 0-4294967295")
    return action_community(REDIRECT_AS2, struct.pack("!HI", asn, nn)), None


def _flag(key: str, value: Any) -> bool:
    if value is None or value is True or value == "" or (isinstance(value, str)
                                                         and value.lower() in ("true", "yes")):
        return True
    if value is False or (isinstance(value, str) and value.lower() in ("false", "no")):
        return False
    raise FlowSpecError(key, f"{shown(value)}: takes no value (or true/false)")


def _listed(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            return text[1:-1].replace(",", " ").split()
        return text.split() if " " in text else [text]
    return [value]


def parse_actions(then: Mapping[str, Any]) -> FlowActions:
    """ExaBGP 'then' names and values -> FlowActions. Raises FlowSpecError naming the action.

    discard; accept; rate-limit N (bytes/s, or 'N packets'); rate-limit-packets N;
    redirect ASN:NN | A.B.C.D:NN | ASN4:NN | IP; redirect-to-nexthop (true or an IP);
    copy IP; next-hop IP; mark DSCP; action sample|terminal|sample-terminal;
    community / extended-community / large-community [ ... ]."""
    if not isinstance(then, Mapping):
        raise FlowSpecError("then", "expected a mapping of action names to values")
    comms: list[bytes] = []
    redirect_ip: str | None = None
    to_next_hop: int | None = None  # 0 redirect, 1 copy
    communities: list[int] = []
    large: list[tuple[int, int, int]] = []
    rate_set: str | None = None
    nh_from: str | None = None

    def set_ip(key: str, text: Any) -> None:
        nonlocal redirect_ip, nh_from
        ip = _ip(text, key) if isinstance(text, str) else None
        if ip is None:
            raise FlowSpecError(key, f"{shown(text)} is not an IP address")
        if redirect_ip is not None and redirect_ip != str(ip):
            raise FlowSpecError(key, f"{shown(text)}: a rule has one next hop, {nh_from} already set "
                                f"{redirect_ip}")
        redirect_ip, nh_from = str(ip), key

    def no_copy(key: str) -> int:
        if to_next_hop == 1:
            raise FlowSpecError(key, "cannot both redirect and copy to the next hop")
        return 0

    def set_rate(key: str) -> None:
        nonlocal rate_set
        if rate_set is not None:
            raise FlowSpecError(key, f"conflicts with '{rate_set}': one traffic-rate per rule")
        rate_set = key

    for raw_key, value in then.items():
        key = _norm_key(str(raw_key))
        if key == "accept":
            _flag(key, value)
        elif key == "discard":
            if _flag(key, value):
                set_rate(key)
                comms.append(rate_community(TRAFFIC_RATE, 0.0))
        elif key in ("rate-limit", "rate-limit-packets"):
            rate, unit = _rate_value(key, value)
            if key == "rate-limit-packets":
                unit = "packets"
            set_rate(key)
            comms.append(rate_community(TRAFFIC_RATE_PACKETS if unit == "packets" else TRAFFIC_RATE,
                                        rate))
        elif key == "redirect":
            for item in _listed(value):
                if not isinstance(item, str):
                    raise FlowSpecError(key, f"{shown(item)}: expected ASN:NN, A.B.C.D:NN or an IP")
                community, ip = _redirect(item)
                if community is not None:
                    comms.append(community)
                else:
                    set_ip(key, ip)
                    to_next_hop = no_copy(key)
        elif key == "redirect-to-nexthop":
            if isinstance(value, str) and _ip(value, key) is not None:
                set_ip(key, value)
                to_next_hop = no_copy(key)
            elif _flag(key, value):
                to_next_hop = no_copy(key)
        elif key in ("copy", "copy-to-nexthop"):
            if isinstance(value, str) and _ip(value, key) is not None:
                set_ip(key, value)
            elif not _flag(key, value):
                continue
            if to_next_hop == 0:
                raise FlowSpecError(key, "cannot both redirect and copy to the next hop")
            to_next_hop = 1
        elif key == "next-hop":
            set_ip(key, value)
        elif key == "mark":
            dscp = decimal(value.strip(), 63) if isinstance(value, str) else None
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 63:
                dscp = value
            if dscp is None:
                raise FlowSpecError(key, f"{shown(value)}: DSCP must be 0-63")
            comms.append(action_community(TRAFFIC_MARKING, bytes(5) + bytes((dscp,))))
        elif key == "action":
            text = str(value).strip().lower()
            bits = {"sample": 0x02, "terminal": 0x01, "sample-terminal": 0x03,
                    "terminal-sample": 0x03}.get(text)
            if bits is None:
                raise FlowSpecError(key, f"{shown(value)}: expected sample, terminal or sample-terminal")
            comms.append(action_community(TRAFFIC_ACTION, bytes(5) + bytes((bits,))))
        elif key in ("community", "extended-community", "large-community"):
            for item in _listed(value):
                text = str(item)
                try:
                    if key == "community":
                        communities.append(parse_community(text))
                    elif key == "large-community":
                        large.append(parse_large_community(text))
                    else:
                        comms.append(parse_extended_community(text).to_bytes(8, "big"))
                except ValueError as exc:
                    raise FlowSpecError(key, str(exc)) from None
        else:
            raise FlowSpecError(key, "not a flow action (known: accept, discard, rate-limit, "
                                "rate-limit-packets, redirect, redirect-to-nexthop, copy, next-hop, "
                                "mark, action, community, extended-community, large-community)")
    if to_next_hop is not None:
        comms.append(action_community(REDIRECT_NEXT_HOP, struct.pack("!IH", 0, to_next_hop)))
    if to_next_hop is None and redirect_ip is not None and nh_from == "next-hop":
        raise FlowSpecError("next-hop", "a next hop only matters with redirect-to-nexthop or copy")
    return FlowActions(tuple(sorted(set(comms))), redirect_ip, tuple(dict.fromkeys(communities)),
                       tuple(dict.fromkeys(large)))


# ---------------------------------------------------------------------------------------------
# Token streams: the configuration's `match { ... } then { ... }` and the API's one-line form

MATCH_NAMES = frozenset(n for names in _NAMES.values() for n in names)
_THEN_FLAGS = frozenset({"accept", "discard"})
THEN_NAMES = frozenset({"accept", "discard", "rate-limit", "rate-limit-packets", "redirect",
                        "redirect-to-nexthop", "copy", "copy-to-nexthop", "next-hop", "mark",
                        "action", "community", "extended-community", "large-community"})


def split_flow_tokens(tokens: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """ExaBGP flow statements as tokens -> (match, then) for parse_match / parse_actions.

    Accepts the block form `match { destination 10.0.0.0/24 ; ... } then { discard ; }` and the
    one-line API form `source 10.0.0.0/24 destination-port =80 protocol =tcp discard`, where a
    value is one token or a `[ ... ]` list. A component given twice is ORed, as ExaBGP does."""
    match: dict[str, Any] = {}
    then: dict[str, Any] = {}
    section: str | None = None
    toks = list(tokens)
    n = len(toks)
    i = 0

    def value(key: str) -> str:
        nonlocal i
        if i >= n or toks[i] in (";", "}", "{"):
            raise FlowSpecError(key, "needs a value")
        if toks[i] != "[":
            i += 1
            return toks[i - 1].rstrip(";")
        start = i
        while i < n and toks[i] != "]":
            i += 1
        if i >= n:
            raise FlowSpecError(key, "the '[' list is not closed with ']'")
        i += 1
        return " ".join(toks[start:i])

    while i < n:
        tok = toks[i]
        key = _norm_key(tok.rstrip(";"))
        i += 1
        if not key or tok in (";", "}"):
            section = None if tok == "}" else section
            continue
        if key in ("match", "then") and i < n and toks[i] == "{":
            section = key
            i += 1
            continue
        if key in MATCH_NAMES and section != "then":
            text = value(key)
            if key in match:
                prev = match[key]
                match[key] = [*(prev if isinstance(prev, list) else [prev]), text]
            else:
                match[key] = text
        elif key in THEN_NAMES and section != "match":
            if key in _THEN_FLAGS or tok.endswith(";"):
                then[key] = True
            elif key in ("redirect-to-nexthop", "copy-to-nexthop"):
                nxt = toks[i].rstrip(";") if i < n else ""
                if _ip(nxt) is not None or leading_zero(nxt):  # the latter: parse_actions says why
                    i += 1
                    then[key] = nxt
                else:
                    then[key] = True
            elif key == "rate-limit":
                text = value(key)
                if i < n and toks[i].rstrip(";").lower() in ("bytes", "packets"):
                    text += " " + toks[i].rstrip(";").lower()
                    i += 1
                then[key] = text
            elif key == "redirect" and key in then:
                _add(then, key, value(key))
            else:
                then[key] = value(key)
        else:
            where = f" inside '{section} {{ }}'" if section else ""
            raise FlowSpecError(key, f"not a flow match component or action{where}")
    return match, then


def _ipv4_text(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def decode_actions(extended_communities: Iterable[bytes | int]) -> dict[str, Any]:
    """Extended communities -> FlowSpec actions by ExaBGP name, for display and JSON.

    Communities that are no FlowSpec action go under 'extended-community' (as hex)."""
    out: dict[str, Any] = {}
    for item in extended_communities:
        raw = item.to_bytes(8, "big") if isinstance(item, int) else bytes(item)
        kind = int.from_bytes(raw[:2], "big")
        if kind in (TRAFFIC_RATE, TRAFFIC_RATE_PACKETS):
            rate = struct.unpack("!f", raw[4:8])[0]
            if math.isfinite(rate):
                rate = max(rate, 0.0)  # RFC 8955 7.1: negative is treated as zero
                if kind == TRAFFIC_RATE and rate == 0:
                    out["discard"] = True
                else:
                    key = "rate-limit" if kind == TRAFFIC_RATE else "rate-limit-packets"
                    out[key] = int(rate) if rate.is_integer() else rate
                continue
        elif kind == TRAFFIC_ACTION:
            bits = raw[7] & 0x03
            if bits:
                out["action"] = {1: "terminal", 2: "sample", 3: "sample-terminal"}[bits]
                continue
        elif kind == REDIRECT_AS2:
            asn, nn = struct.unpack("!HI", raw[2:])
            _add(out, "redirect", f"{asn}:{nn}")
            continue
        elif kind == REDIRECT_IPV4:
            _add(out, "redirect", f"{_ipv4_text(raw[2:6])}:{int.from_bytes(raw[6:], 'big')}")
            continue
        elif kind == REDIRECT_AS4:
            asn, nn = struct.unpack("!IH", raw[2:])
            _add(out, "redirect", f"{asn}:{nn}" if asn > _U16 else f"{asn}L:{nn}")
            continue
        elif kind == TRAFFIC_MARKING:
            out["mark"] = raw[7] & 0x3F  # RFC 8955 7.5: the two high bits are reserved
            continue
        elif kind == REDIRECT_NEXT_HOP:
            out["copy-to-nexthop" if raw[7] & REDIRECT_NEXT_HOP_COPY else "redirect-to-nexthop"] = True
            continue
        out.setdefault("extended-community", []).append("0x" + raw.hex())
    return out


# ---------------------------------------------------------------------------------------------
# Rules as the config, the API and the control socket give them


FAMILY_BY_NAME = {"ipv4": IPV4_FLOWSPEC, "ipv6": IPV6_FLOWSPEC}


def family_of(match: Mapping[str, Any], family: str | None = None) -> Family:
    """'ipv4'/'ipv6', or guessed from the destination/source prefix, else IPv4."""
    if family is not None:
        fam = FAMILY_BY_NAME.get(str(family).lower().replace(" flow", "").replace(" flowspec", "").strip())
        if fam is None:
            raise FlowSpecError("family", f"{family!r} is not a FlowSpec family: 'ipv4' or 'ipv6'")
        return fam
    return IPV6_FLOWSPEC if afi_for_match(match) == 2 else IPV4_FLOWSPEC


def flow_attributes(actions: FlowActions, extra: Attributes | None = None) -> Attributes:
    """The path attributes of a FlowSpec route: the actions as extended communities, the
    redirect-to-IP address (if any) as the next hop, and whatever else `then` gave (communities)."""
    ecs = actions.ext_community_values()
    communities = actions.communities
    large = actions.large_communities
    if extra is not None:
        ecs = ecs + tuple(c for c in extra.ext_communities if c not in ecs)
        communities = communities + tuple(c for c in extra.communities if c not in communities)
        large = large + tuple(c for c in extra.large_communities if c not in large)
    return Attributes.make(next_hop=actions.redirect_ip, ext_communities=ecs, communities=communities,
                           large_communities=large)


def build_rule(family: Family, match: Mapping[str, Any], then: Mapping[str, Any]) \
        -> tuple[FlowRule, FlowActions, bytes, Attributes]:
    """(rule, actions, NLRI bytes, attributes). Raises FlowSpecError naming the component."""
    if not match:
        raise FlowSpecError("match", "a rule needs at least one match component")
    rule = parse_match(family.afi, match)
    actions = parse_actions(then or {})
    nlri = rule.nlri()
    attrs = flow_attributes(actions)
    # The limit of the neighbors the rule goes to is checked where it is announced.
    too_large = size_error(family, nlri, attrs, MAX_EXTENDED_MESSAGE)
    if too_large is not None:
        raise too_large
    return rule, actions, nlri, attrs


def size_error(family: Family, nlri: bytes, attrs: Attributes, limit: Limit) -> FlowSpecError | None:
    """The rule does not fit in one UPDATE: named after what takes most of it (match or then)."""
    problem = size_problem(family, nlri, attrs, limit)
    if problem is None:
        return None
    return FlowSpecError("match" if 2 * len(nlri) > update_size(family, nlri, attrs) else "then", problem)


def then_text(then: Mapping[str, Any]) -> str:
    """A `then` mapping as ExaBGP configuration; one that does not parse, word for word."""
    try:
        return actions_text(parse_actions(then))
    except (FlowSpecError, ValueError, TypeError):
        parts = [f"{k};" if v is True or v is None else f"{k} {v};" for k, v in then.items()]
        return "then { " + " ".join(parts) + " }"


def rule_text(name: str, rule: FlowRule, then: str) -> str:
    return f"flow route {name} {{ {match_text(rule)} {then} }}"


def nlri_name(nlri: bytes) -> str:
    """A stable name for a rule that has none (an API program's): the hash of its NLRI."""
    return "rule-" + hashlib.sha256(nlri).hexdigest()[:10]
