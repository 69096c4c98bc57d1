"""FlowSpec rules as people write them: ExaBGP's text (API line, config block) and the control
socket's JSON `match`/`then` objects."""

from __future__ import annotations

import json
from typing import Any

from fleetbgp.api.commands import CommandError, parse_flow_rule
from fleetbgp.config.lexer import tokenize_line
from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.flowspec import actions_text, build_rule, family_of, flow_string, match_text, then_text
from fleetbgp.wire.flowspec import FlowSpecError, decode_nlri

from .base import require, target

FLOW_WORDS = tuple(w.encode() for w in (
    "{", "}", ";", "[", "]", "match", "then", "destination", "source", "destination-port", "source-port",
    "port", "protocol", "next-header", "icmp-type", "icmp-code", "tcp-flags", "packet-length", "dscp",
    "traffic-class", "fragment", "flow-label", "discard", "rate-limit", "rate-limit-packets", "redirect",
    "redirect-to-nexthop", "redirect-to-nexthop-ietf", "copy", "mark", "action", "sample", "terminal",
    "community", "extended-community", "=80", ">1024&<2000", "!=0", "tcp", "udp", "syn", "ack",
    "is-fragment", "10.0.0.0/24", "2001:db8::/64/8", "65000:1", "192.0.2.1:100", "\u00b2", "9" * 5000,
    "01.2.3.4", "nan", "inf", "1e400", "-1",
))


def _roundtrip(family: Any, match: Any, then: Any) -> None:
    rule, actions, nlri, _attrs = build_rule(family, match, then)
    again = decode_nlri(family.afi, nlri)
    require(again.nlri() == nlri, f"NLRI does not survive decode/encode: {nlri.hex()}")
    flow_string(again)
    match_text(rule)
    actions_text(actions)
    then_text(then)


@target("flowspec_text", max_len=4096, dictionary=FLOW_WORDS, contract="""
    The input is the rule part of `announce flow route ...` (block or one-line form), as the
    API and the config's flow blocks read it. It is refused with CommandError/FlowSpecError/
    RouteError naming the component, or it builds a rule whose NLRI decodes back to the same bytes
    and renders as text.""")
def flowspec_text(data: bytes) -> None:
    tokens = tokenize_line(data.decode("utf-8", "replace").replace("\n", " "))
    try:
        match, then = parse_flow_rule(tokens)
        _roundtrip(family_of(match), match, then)
    except (CommandError, FlowSpecError, RouteError):
        pass


@target("flowspec_json", max_len=4096, dictionary=(*FLOW_WORDS, b"{\"match\":", b"\"then\":", b"\"family\":"),
        contract="""
    The input is a JSON object {"match": {...}, "then": {...}, "family": ...} as the control
    socket's flow_announce takes it. Not JSON, not an object: skipped (the control target covers
    the framing). Otherwise it is refused with FlowSpecError naming the component, or builds a
    rule whose NLRI decodes back to the same bytes.""")
def flowspec_json(data: bytes) -> None:
    try:
        request = json.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(request, dict) or not isinstance(request.get("match"), dict):
        return
    then = request.get("then") or {}
    family = request.get("family")
    if not isinstance(then, dict) or not (family is None or isinstance(family, str)):
        return
    try:
        _roundtrip(family_of(request["match"], family), request["match"], then)
    except FlowSpecError:
        pass
