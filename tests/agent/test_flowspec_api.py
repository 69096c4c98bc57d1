"""FlowSpec on the API: ExaBGP's `announce flow route { ... }` / `withdraw flow route { ... }` and its
one-line form, and received FlowSpec routes passed to programs in ExaBGP's JSON and text forms,
compared with ExaBGP 5.0.15's own encoder (run in a subprocess, as in test_api_encoders.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from test_api_encoders import ORACLE, envelope, fake_peer, merge

from fleetbgp.api.commands import Announce, CommandError, Withdraw, parse_command, parse_flow_rule
from fleetbgp.api.encoders import JsonEncoder, TextEncoder
from fleetbgp.config.lexer import tokenize_line
from fleetbgp.events import EventKind, PeerEvent
from fleetbgp.grammar.flowspec import build_rule, parse_actions, parse_match, split_flow_tokens
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext, encode_attributes
from fleetbgp.wire.messages import MessageReader, decode_update, pack_announce, pack_withdraw
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC, IPV6_UNICAST

SEED = ("announce flow route { match { source 192.0.2.0/24; destination-port =80; protocol =tcp; } "
        "then { redirect 65001:999; } }")


def test_the_seed_guides_flow_program_line():
    cmd = parse_command(SEED)
    assert isinstance(cmd, Announce)
    [(fam, nlri, attrs)] = cmd.routes
    want = parse_match(1, {"source": "192.0.2.0/24", "destination-port": "=80", "protocol": "=tcp"})
    assert fam == IPV4_FLOWSPEC and nlri == want.nlri()
    assert attrs is parse_actions({"redirect": "65001:999"}).attributes()
    assert attrs.ext_communities == (0x8008FDE9000003E7,)


@pytest.mark.parametrize("line, match, then", [
    ("announce flow route source 10.0.0.0/24 destination-port =80 protocol =tcp discard",
     {"source": "10.0.0.0/24", "destination-port": "=80", "protocol": "=tcp"}, {"discard": True}),
    ("announce flow route destination 192.0.2.1/32 destination-port [ =80 =443 ] rate-limit 9600",
     {"destination": "192.0.2.1/32", "destination-port": ["=80", "=443"]}, {"rate-limit": "9600"}),
    ("announce flow route { match { destination 192.0.2.1/32; tcp-flags [ syn ack ]; } "
     "then { mark 10; action sample; community [ 65000:1 ]; } }",
     {"destination": "192.0.2.1/32", "tcp-flags": ["syn", "ack"]},
     {"mark": "10", "action": "sample", "community": ["65000:1"]}),
    ("announce flow route web { match { destination 2001:db8::/64; next-header =tcp; } "
     "then { redirect 4200000000:7; } }",
     {"destination": "2001:db8::/64", "next-header": "=tcp"}, {"redirect": "4200000000:7"}),
    ("announce flow route destination 192.0.2.9/32 rate-limit 1000 packets",
     {"destination": "192.0.2.9/32"}, {"rate-limit-packets": 1000}),
    ("announce flow route { match { destination 192.0.2.9/32; } then { rate-limit 1000 packets; } }",
     {"destination": "192.0.2.9/32"}, {"rate-limit-packets": 1000}),
    ("announce flow route { next-hop 10.9.9.9; match { destination 192.0.2.1/32; } "
     "then { redirect-to-nexthop; } }",
     {"destination": "192.0.2.1/32"}, {"redirect-to-nexthop": True, "next-hop": "10.9.9.9"}),
])
def test_block_and_one_line_forms(line, match, then):
    cmd = parse_command(line)
    [(fam, nlri, attrs)] = cmd.routes
    want_fam = IPV6_FLOWSPEC if "2001:db8::/64" in line else IPV4_FLOWSPEC
    _rule, _actions, want_nlri, want_attrs = build_rule(want_fam, match, then)
    assert fam == want_fam and nlri == want_nlri and attrs is want_attrs


def test_withdraw_needs_only_the_match_and_takes_a_selector():
    cmd = parse_command("neighbor 192.0.2.1 withdraw flow route { match { source 192.0.2.0/24; "
                        "destination-port =80; protocol =tcp; } }")
    assert isinstance(cmd, Withdraw) and cmd.selector[0].address == "192.0.2.1"
    [(fam, nlri)] = cmd.routes  # no attributes: a withdrawal has none
    announced = parse_command(SEED).routes[0]
    assert (fam, nlri) == (announced[0], announced[1])
    one_line = parse_command("withdraw flow route source 192.0.2.0/24 destination-port =80 protocol =tcp")
    assert one_line.routes == cmd.routes


def test_a_withdrawals_actions_are_ignored_as_exabgp_ignores_them():
    cmd = parse_command("withdraw flow route { match { destination 10.0.0.0/8; } then { redirect nowhere; } }")
    assert isinstance(cmd, Withdraw)  # a withdrawal carries no attributes: only the match's NLRI
    assert cmd.routes == ((IPV4_FLOWSPEC, parse_match(1, {"destination": "10.0.0.0/8"}).nlri()),)


@pytest.mark.parametrize("line, message", [
    ("announce flow route { match { destination-port =99999; } then { discard; } }",
     "flow: destination-port: '=99999' is out of range 0-65535"),
    ("announce flow route { match { destinaton 10.0.0.0/8; } then { discard; } }",
     "flow: destinaton: not a match component"),
    ("announce flow route destinaton 10.0.0.0/8 discard",
     "flow: unknown match component or action 'destinaton' (did you mean 'destination'?)"),
    ("announce flow route { match { destination 10.0.0.0/8; } then { mark 99; } }",
     "flow: mark: '99': DSCP must be 0-63"),
    ("announce flow route { then { discard; } }", "flow: the rule has no 'match { ... }'"),
    ("announce flow route discard", "flow: the rule has no match component"),
    ("announce flow route { match { destination 10.0.0.0/8; } then { discard; }",
     "flow: the rule's '{' is not closed with '}'"),
    ("announce flow route { match { destination 10.0.0.0/8 } then { discard; } }", None),
    ("announce flow { match { destination 10.0.0.0/8; } }", "'route' is missing"),
    ("announce flow route { rd 65000:1; match { destination 10.0.0.0/8; } }", "VPN"),
])
def test_bad_rules_give_an_error_naming_the_component(line, message):
    if message is None:  # a missing ';' before '}' is fine, as in ExaBGP
        assert isinstance(parse_command(line), Announce)
        return
    with pytest.raises(CommandError) as err:
        parse_command(line)
    assert message in err.value.message, err.value.message


def test_parse_flow_rule_keeps_exabgp_names():
    match, then = parse_flow_rule(tokenize_line(
        "{ match { source 10.0.0.0/24; fragment [ is-fragment first-fragment ]; packet-length >100&<200; } "
        "then { rate-limit 0; } }"))
    assert match == {"source": "10.0.0.0/24", "fragment": ["is-fragment", "first-fragment"],
                     "packet-length": ">100&<200"}
    assert then == {"rate-limit": "0"}


@pytest.mark.parametrize("rule", [
    "destination-port =80 destination-port =443 discard",  # given twice: ORed, as ExaBGP and the codec do
    "destination-ipv4 192.0.2.0/24 protocol [ =tcp =udp ] rate-limit 1000 packets",  # ExaBGP's long name
    "{ match { destination_port =80; destination 192.0.2.0/24; } then { redirect-to-nexthop 10.0.0.1; } }",
    "web { match { source 10.0.0.0/8; } then { redirect 65000:1; redirect 10.1.1.1:7; } }",
])
def test_the_api_reads_a_rule_with_the_codecs_tokenizer(rule):
    """One parser: the API line (and the CLI, which calls parse_flow_rule) gives the rule that
    fleetbgp.wire.flowspec.split_flow_tokens gives for the same words."""
    toks = tokenize_line(rule)
    body = toks[toks.index("{") + 1:-1] if "{" in toks else toks
    want_match, want_then = split_flow_tokens(body)
    match, then = parse_flow_rule(toks)
    want = build_rule(IPV4_FLOWSPEC, want_match, want_then)
    got = build_rule(IPV4_FLOWSPEC, match, then)
    assert (got[2], got[3]) == (want[2], want[3])
    [(fam, nlri, attrs)] = parse_command(f"announce flow route {rule}").routes
    assert (fam, nlri, attrs) == (IPV4_FLOWSPEC, want[2], want[3])


# -- received FlowSpec routes to programs, compared with ExaBGP's encoder --------------------------

EBGP = EncodeContext(local_as=65000, peer_as=65001)


def flow_update(fam, match, then) -> bytes:
    _rule, _actions, nlri, attrs = build_rule(fam, match, then)
    head = encode_attributes(attrs, EBGP, ipv4_next_hop=False)
    [msg] = list(pack_announce(fam, attrs, [nlri], EBGP, head))
    return msg


def flow_withdraw(fam, match) -> bytes:
    [msg] = list(pack_withdraw(fam, [build_rule(fam, match, {})[2]], EBGP))
    return msg


FLOW_UPDATES = {
    "flow discard": flow_update(IPV4_FLOWSPEC, {"source": "10.0.0.0/24", "destination-port": "=80",
                                                "protocol": "=tcp"}, {"discard": True}),
    "flow every v4 component": flow_update(IPV4_FLOWSPEC, {
        "destination": "192.0.2.0/24", "source": "10.0.0.0/8", "protocol": ["=tcp", "=udp"],
        "port": ">=1024&<=2048", "destination-port": "=443", "source-port": "!=0", "icmp-type": "=8",
        "icmp-code": "=0", "tcp-flags": ["syn", "!=ack"], "packet-length": ">100",
        "dscp": "=46", "fragment": ["is-fragment"]}, {"rate-limit": 9600, "action": "sample-terminal",
                                                       "mark": 10}),
    "flow redirects": flow_update(IPV4_FLOWSPEC, {"destination": "192.0.2.2/32"},
                                  {"redirect": "65001:999", "extended-community": ["target:65000:1"]}),
    "flow redirect ipv4 rt": flow_update(IPV4_FLOWSPEC, {"destination": "192.0.2.3/32"},
                                         {"redirect": "10.1.1.1:5"}),
    "flow redirect to ip": flow_update(IPV4_FLOWSPEC, {"destination": "192.0.2.4/32"},
                                       {"redirect": "10.9.9.9"}),
    "flow v6": flow_update(IPV6_FLOWSPEC, {"destination": "2001:db8::/64/8", "source": "2001:db8:1::/48",
                                           "next-header": "=tcp", "flow-label": "=5",
                                           "traffic-class": "=4"}, {"redirect": "4200000000:7"}),
    "flow withdraw v4": flow_withdraw(IPV4_FLOWSPEC, {"destination": "192.0.2.0/24"}),
    "flow withdraw v6": flow_withdraw(IPV6_FLOWSPEC, {"destination": "2001:db8::/32"}),
}

FLOW_ORACLE = ORACLE.replace("family { ipv4 unicast; ipv6 unicast; }",
                             "family { ipv4 unicast; ipv6 unicast; ipv4 flow; ipv6 flow; }")


@pytest.fixture(scope="module")
def exabgp_flow() -> dict[str, tuple[dict[str, Any], list[str]]]:
    pytest.importorskip("exabgp", reason="the dev venv's exabgp==5.0.15 is the reference encoder")
    assert FLOW_ORACLE != ORACLE
    items = [[name, "update", msg.hex()] for name, msg in FLOW_UPDATES.items()]
    cp = subprocess.run([sys.executable, "-c", FLOW_ORACLE], input=json.dumps(items), capture_output=True,
                        text=True, timeout=120, check=False)
    assert cp.returncode == 0, cp.stderr
    return {k: (json.loads(j), t.splitlines()) for k, (j, t) in json.loads(cp.stdout).items()}


def event(message: bytes) -> PeerEvent:
    [(_, body)] = list(MessageReader(65535).feed(message))
    upd = decode_update(body, DecodeContext(asn4=True, ibgp=False),
                        [IPV4_UNICAST, IPV6_UNICAST, IPV4_FLOWSPEC, IPV6_FLOWSPEC])
    assert not upd.notes, upd.notes
    return PeerEvent(EventKind.UPDATE, fake_peer(), update=upd)


@pytest.mark.parametrize("name", list(FLOW_UPDATES))
def test_received_flow_json_matches_exabgp(exabgp_flow, name):
    want, _ = exabgp_flow[name]
    ours = [json.loads(line) for line in JsonEncoder().event(event(FLOW_UPDATES[name]))]
    assert ours
    for msg in ours:
        assert envelope(msg) == envelope(want)
    assert merge(ours) == want["neighbor"]["message"]["update"]


@pytest.mark.parametrize("name", list(FLOW_UPDATES))
def test_received_flow_text_matches_exabgp(exabgp_flow, name):
    _, want = exabgp_flow[name]
    assert TextEncoder().event(event(FLOW_UPDATES[name])) == want


def test_flow_attributes_are_interned_per_action_set():
    a = build_rule(IPV4_FLOWSPEC, {"destination": "10.0.0.0/8"}, {"discard": True})[3]
    b = build_rule(IPV4_FLOWSPEC, {"destination": "10.1.0.0/16"}, {"discard": True})[3]
    assert a is b and a is Attributes.make(ext_communities=(0x8006000000000000,))
