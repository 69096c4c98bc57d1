"""FlowSpec in the config file: `flow { route NAME { match { ... } then { ... } } }` in a neighbor or
a template (ExaBGP syntax), `family { ipv4 flow; ipv6 flow; }`, and errors at FILE:LINE:COL that
name the component and why."""

from __future__ import annotations

import pytest

from fleetbgp.config import ConfigError, parse_text
from fleetbgp.grammar.flowspec import actions_text, parse_actions, parse_match
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC

HEAD = """\
neighbor 192.0.2.1 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    family { ipv4 unicast; ipv4 flow; ipv6 flowspec; }
"""


def conf(body: str, head: str = HEAD) -> str:
    return head + body + "}\n"


def errors(body: str, head: str = HEAD) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_text(conf(body, head), "f.conf")
    return str(err.value).splitlines()


FULL = """\
    flow {
        route block-attack {
            match {
                source 203.0.113.0/24;
                destination 192.0.2.10/32;
                protocol [ =tcp =udp ];
                destination-port [ =80 =443 ];
                source-port >1024;
                packet-length >=64&<=1500;
                tcp-flags [ syn ];
                fragment [ dont-fragment ];
                dscp =0;
            }
            then { rate-limit 9600; }
        }
        route ping {
            match { destination 192.0.2.11/32; protocol =icmp; icmp-type =echo-request; icmp-code =0; }
            then { discard; }
        }
        route to-scrubbing {
            match { destination 192.0.2.12/32; port =53; }
            then { redirect 65001:999; action sample-terminal; mark 10; community [ 65001:666 ]; }
        }
        route v6 {
            match { destination 2001:db8::/64; next-header =tcp; flow-label =5; traffic-class =4; }
            then { redirect 4200000000:7; }
        }
        route nexthop {
            next-hop 10.9.9.9;
            match { destination 192.0.2.13/32; }
            then { redirect-to-nexthop; }
        }
    }
"""


def test_rules_become_named_static_flowspec_routes():
    n = parse_text(conf(FULL), "f.conf").neighbors[0]
    assert n.families == (IPV4_UNICAST, IPV4_FLOWSPEC, IPV6_FLOWSPEC)
    rules = {r.name: r for r in n.flow_routes}
    assert list(rules) == ["block-attack", "ping", "to-scrubbing", "v6", "nexthop"]
    want = parse_match(1, {"source": "203.0.113.0/24", "destination": "192.0.2.10/32",
                           "protocol": ["=tcp", "=udp"], "destination-port": ["=80", "=443"],
                           "source-port": ">1024", "packet-length": ">=64&<=1500", "tcp-flags": ["syn"],
                           "fragment": ["dont-fragment"], "dscp": "=0"})
    block = rules["block-attack"]
    assert block.family == IPV4_FLOWSPEC and block.nlri == want.nlri()
    assert block.attrs is parse_actions({"rate-limit": 9600}).attributes()
    assert rules["v6"].family == IPV6_FLOWSPEC
    scrub = rules["to-scrubbing"].attrs
    assert scrub.communities == (65001 << 16 | 666,)
    assert 0x8008FDE9000003E7 in scrub.ext_communities
    assert rules["nexthop"].attrs.next_hop == "10.9.9.9"
    # and they are static routes: announced on session up, reload sends the difference
    assert len(n.static_routes[IPV4_FLOWSPEC]) == 4
    assert set(n.static_routes[IPV6_FLOWSPEC]) == {rules["v6"].nlri}
    assert n.static_routes[IPV4_FLOWSPEC][block.nlri] is block.attrs


def test_rules_in_a_template_are_inherited():
    text = """\
template {
    neighbor edge {
        family { ipv4 flow; }
        flow { route t1 { match { destination 192.0.2.0/24; } then { discard; } } }
    }
}
neighbor 192.0.2.1 {
    inherit edge;
    local-as 65001; peer-as 65000; router-id 192.0.2.2;
    flow { route own { match { destination 198.51.100.0/24; } then { rate-limit 0; } } }
}
neighbor 192.0.2.3 {
    inherit edge;
    local-as 65001; peer-as 65000; router-id 192.0.2.2;
}
"""
    a, b = parse_text(text, "f.conf").neighbors
    assert [r.name for r in a.flow_routes] == ["t1", "own"]
    assert [r.name for r in b.flow_routes] == ["t1"]
    assert len(a.static_routes[IPV4_FLOWSPEC]) == 2 and len(b.static_routes[IPV4_FLOWSPEC]) == 1


def test_an_unnamed_rule_gets_a_name_from_its_match():
    n = parse_text(conf("    flow { route { match { destination 10.0.0.0/8; } then { discard; } } }\n"),
                   "f.conf").neighbors[0]
    assert n.flow_routes[0].name.startswith("rule-")


@pytest.mark.parametrize("body, expected", [
    ("    flow { route a { match { destination-port =99999; } then { discard; } } }\n",
     "f.conf:6:47: flow route a: destination-port: '=99999' is out of range 0-65535"),
    ("    flow { route a { match { destinaton 10.0.0.0/8; } then { discard; } } }\n",
     "f.conf:6:30: flow route a: destinaton: not a match component of ipv4 flow"),
    ("    flow { route a { match { protocol =tcpp; } } }\n",
     "f.conf:6:39: flow route a: protocol: '=tcpp': 'tcpp' is not a valid value"),
    ("    flow { route a { match { destination 10.0.0.0/8; } then { mark 64; } } }\n",
     "f.conf:6:68: flow route a: mark: '64': DSCP must be 0-63"),
    ("    flow { route a { match { destination 10.0.0.0/8; } then { redirect 65001; } } }\n",
     "f.conf:6:72: flow route a: redirect: '65001': expected ASN:NN"),
    ("    flow { route a { match { destination 10.0.0.0/8; } then { discrad; } } }\n",
     "f.conf:6:63: flow route a: discrad: not a flow action"),
    ("    flow { route a { then { discard; } } }\n",
     "f.conf:6:12: flow route a: no 'match { ... }' block (a rule without one would match all traffic)"),
    ("    flow { route a { match { destination 10.0.0.0/8; source 2001:db8::/32; } } }\n",
     "f.conf:6:61: flow route a: source: '2001:db8::/32' is an IPv6 prefix but the rule is ipv4 flow"),
    ("    flow { route a { match { destination; } } }\n", "f.conf:6:30: match: 'destination' needs a value"),
    ("    flow { route a { match { port =80; port =81; } } }\n",
     "f.conf:6:40: match: 'port' is given twice (first at 6:30)"),
    ("    flow { route a { rd 65000:1; match { port =80; } } }\n",
     "f.conf:6:22: FlowSpec VPN rules (rd / route-distinguisher) are not supported"),
    ("    flow { route bad/name { match { port =80; } } }\n",
     "f.conf:6:18: flow route name 'bad/name': 1 to 64 characters"),
    ("    flow { rule a { match { port =80; } } }\n",
     "f.conf:6:12: unknown keyword 'rule' in the flow block"),
])
def test_errors_name_the_place_and_the_component(body, expected):
    got = errors(body)
    assert len(got) == 1, got
    assert got[0].startswith(expected), got[0]


def test_duplicate_names_and_matches_are_refused():
    got = errors("""\
    flow {
        route a { match { destination 10.0.0.0/8; } then { discard; } }
        route a { match { destination 10.1.0.0/16; } then { discard; } }
        route b { match { destination 10.0.0.0/8; } then { rate-limit 10; } }
    }
""")
    assert got == ["f.conf:8:9: flow route a is defined twice in 192.0.2.1 (first at 7:9)",
                   "f.conf:9:9: flow route b matches exactly what flow route a (at 7:9) matches: one rule "
                   "per match"]


def test_a_rule_needs_its_family_on_the_neighbor():
    head = HEAD.replace("family { ipv4 unicast; ipv4 flow; ipv6 flowspec; }", "family { ipv4 unicast; }")
    got = errors("    flow { route a { match { destination 10.0.0.0/8; } then { discard; } } }\n", head)
    assert got == ["f.conf:6:12: neighbor 192.0.2.1: this ipv4 flow route needs 'family { ipv4 flow; }' "
                   "(the neighbor enables ipv4 unicast)"]


def test_every_error_is_reported_not_only_the_first():
    got = errors("""\
    flow {
        route a { match { destination-port =99999; } }
        route b { match { icmp-type =300; } }
    }
""")
    assert len(got) == 2 and got[0].startswith("f.conf:7:") and got[1].startswith("f.conf:8:")
    assert "icmp-type" in got[1]


def test_the_config_examples_of_the_docs_parse():
    from doc_examples import DOCS, config_examples

    examples = config_examples(DOCS / "flowspec.md")
    assert examples
    for text in examples:
        n = parse_text(text, "flowspec.md").neighbors[0]
        assert n.flow_routes
    wrapped = config_examples(DOCS / "configuration.md")
    flow = [t for t in wrapped if t.lstrip().startswith("family { ipv4 flow")]
    assert len(flow) == 1
    n = parse_text("neighbor 192.0.2.1 {\nlocal-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"
                   + flow[0] + "}\n", "configuration.md").neighbors[0]
    assert [r.name for r in n.flow_routes] == ["block-ntp", "scrub-v6"]


def test_the_text_of_a_rule_is_valid_config():
    """What `flows` shows (`text`) can be pasted into the config file."""
    from fleetbgp.grammar.flowspec import build_rule, rule_text

    fam = IPV4_FLOWSPEC
    rule, actions, nlri, attrs = build_rule(fam, {"destination": "192.0.2.0/24", "tcp-flags": ["syn", "!=ack"],
                                                  "packet-length": ">=64&<=1500"},
                                            {"rate-limit-packets": 100, "mark": 10, "action": "sample"})
    text = rule_text("pasted", rule, actions_text(actions))
    n = parse_text(conf(f"    flow {{ {text.removeprefix('flow ')} }}\n"), "f.conf").neighbors[0]
    [got] = n.flow_routes
    assert got.name == "pasted" and got.nlri == nlri and got.attrs is attrs
