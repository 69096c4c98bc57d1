"""The pinned outcome of each ExaBGP 5.0 encoding test (qa/encoding/NAME.ci) run against fleetbgp.

outcome: identical (every route and attribute as ExaBGP sends them), differs (DIFFERENCES lists
what, line by line), refused (`fleetbgp validate` refuses the configuration: the text is its first
error), failed (no session, or the agent died: the text says why).

test_exabgp_encoding.py fails when a run does not give the pinned outcome (or difference lines).
After a deliberate change, regenerate with
    .venv/bin/python tests/parity/exabgp_encoding.py --write
and review the diff (the "differs" reasons are prose, kept while the outcome stays "differs").
"""


EXPECTED: dict[str, tuple[str, str]] = {
    'api-ack-control': ('identical', ''),
    'api-add-remove': ('identical', ''),
    'api-announce': ('identical', ''),
    'api-announce-processes-match': ('identical', ''),
    'api-announce-star': ('identical', ''),
    'api-announcement': ('identical', ''),
    'api-api': ('refused', "api-api.conf: 14:9: family 'ipv4 nlri-mpls' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-attributes': ('identical', ''),
    'api-attributes-path': ('identical', ''),
    'api-attributes-vpn': ('refused', "api-attributes-vpn.conf: 15:8: family 'ipv4 mpls-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-broken-flow': ('identical', ''),
    'api-check': ('identical', ''),
    'api-eor': ('identical', ''),
    'api-fast': ('differs', 'commands written in one go: ExaBGP folds them in its RIB before sending (1.1.0.0/24 announce+withdraw and the 2.2.0.0/25 announce never reach the wire); the agent sends each'),
    'api-flow': ('differs', 'a repeated identical flow announce is sent again (ExaBGP sends nothing for it)'),
    'api-flow-merge': ('refused', "api-flow-merge.conf: 24:13: the flow 'scope' block (interface-set) is not supported"),
    'api-ipv4': ('refused', "api-ipv4.conf: 15:14: family 'ipv4 mup' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-ipv6': ('refused', "api-ipv6.conf: 15:14: family 'ipv6 mup' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-manual-eor': ('identical', ''),
    'api-multi-neighbor': ('identical', ''),
    'api-multiple-api': ('identical', ''),
    'api-multisession': ('refused', "api-multisession.conf: 14:3: capability 'multi-session' is not supported"),
    'api-mvpn': ('refused', "api-mvpn.conf: 16:14: family 'ipv4 mcast-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-nexthop': ('identical', ''),
    'api-nexthop-self': ('differs', '2.2.0.1/32 next-hop self (= 127.0.0.1) after the same route with next-hop 127.0.0.1: the agent sends it again, ExaBGP sees no change'),
    'api-no-respawn': ('identical', ''),
    'api-notification': ('identical', ''),
    'api-open': ('refused', "api-open.conf: 18:3: neighbor 127.0.0.1: 'nexthop { ipv4 unicast ipv6; }' needs 'family { ipv6 unicast; }' (the neighbor enables ipv4 unicast; as in ExaBGP, the extended next hop is offered only with both families)"),
    'api-reload': ('identical', ''),
    'api-rib': ('identical', ''),
    'api-rr': ('identical', ''),
    'api-rr-rib': ('identical', ''),
    'api-silence-ack': ('identical', ''),
    'api-teardown': ('identical', ''),
    'api-vpls': ('refused', "api-vpls.conf: 17:3: family 'l2vpn vpls' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'api-vpnv4': ('refused', "api-vpnv4.conf: 14:8: family 'ipv4 mpls-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-addpath': ('refused', "conf-addpath.conf: 14:8: family 'ipv4 mpls-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-aggregator': ('identical', ''),
    'conf-attributes': ('refused', "conf-attributes.conf: 19:4: raw 'attribute [ ... ]' is not supported"),
    'conf-cap-software-version': ('differs', 'the software version capability is sent (fleetbgp/VERSION); extended-message is not: it is off by default in fleetbgp (configuration.md), ExaBGP 5 offers it unless disabled'),
    'conf-ebgp': ('identical', ''),
    'conf-extended-attributes': ('refused', "conf-extended-attributes.conf: 32:63: extended-community 'l2info:1:2:13398:30864': expected TYPE:ADMIN:LOCAL (target:65000:100, origin:192.0.2.1:5) or 0x and 16 hex digits"),
    'conf-flow': ('refused', "conf-flow.conf: 10:8: family 'ipv4 flow-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-flow-redirect': ('refused', "conf-flow-redirect.conf: 13:8: family 'ipv4 flow-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-generic-attribute': ('refused', "conf-generic-attribute.conf: 15:48: raw 'attribute [ ... ]' is not supported"),
    'conf-group': ('identical', ''),
    'conf-group-limit': ('identical', ''),
    'conf-hostname': ('differs', 'the hostname capability is sent as ExaBGP sends it; extended-message is not: it is off by default in fleetbgp (configuration.md), ExaBGP 5 offers it unless disabled'),
    'conf-ipself4': ('identical', ''),
    'conf-ipself6': ('identical', ''),
    'conf-ipv46routes4family': ('identical', ''),
    'conf-ipv46routes6family': ('identical', ''),
    'conf-ipv6grouping': ('identical', ''),
    'conf-l2vpn': ('refused', "conf-l2vpn.conf: 11:3: family 'l2vpn vpls' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-largecommunity': ('identical', ''),
    'conf-mvpn': ('refused', "conf-mvpn.conf: 10:14: family 'ipv4 mcast-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-name': ('identical', ''),
    'conf-new-v4': ('identical', ''),
    'conf-new-v6': ('identical', ''),
    'conf-no-asn4': ('identical', ''),
    'conf-parity': ('refused', "conf-parity.conf: 8:8: family 'ipv6 mpls-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-path-information': ('identical', ''),
    'conf-prefix-sid': ('refused', "conf-prefix-sid.conf: 10:8: family 'ipv4 nlri-mpls' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-split': ('refused', "conf-split.conf: 21:2: end of file inside the 'neighbor 127.0.0.1' block opened at 1:1: missing '}'"),
    'conf-srv6-mup': ('refused', "conf-srv6-mup.conf: 8:14: family 'ipv4 mup' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-srv6-mup-v3': ('refused', "conf-srv6-mup-v3.conf: 8:14: family 'ipv4 mup' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'conf-template': ('identical', ''),
    'conf-unknowncap': ('identical', ''),
    'conf-vpn': ('refused', "conf-vpn.conf: 13:21: VPN routes ('rd') are not supported"),
    'conf-watchdog': ('identical', ''),
    'extended-nexthop': ('refused', "extended-nexthop.conf: 14:8: family 'ipv4 mpls-vpn' is not supported (supported: ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
    'unknown-message': ('differs', 'NOTIFICATION for the unknown message type 255: the agent sends 1/3 with the type byte as data (RFC 4271), ExaBGP a text'),
}

# the difference lines of every "differs" test, sorted (decode.compare and NOTIFICATION/OPEN)
DIFFERENCES: dict[str, tuple[str, ...]] = {
    'api-fast': (
        '1.1.0.0/24 ipv4 unicast: announce received, not expected (AS_PATH (empty), LOCAL_PREF 100, NEXT_HOP 101.1.101.1, ORIGIN igp)',
        '1.1.0.0/24 ipv4 unicast: withdraw received, not expected',
        '2.2.0.0/25 ipv4 unicast: announce received, not expected (AS_PATH (empty), LOCAL_PREF 100, NEXT_HOP 101.1.101.1, ORIGIN igp)',
    ),
    'api-flow': (
        '1301200000000002200000000003810605910c38 ipv4 flow: announce received, not expected (AS_PATH (empty), EXTENDED_COMMUNITIES 8006000000000000, LOCAL_PREF 100, MP_NEXT_HOP (none), ORIGIN igp)',
    ),
    'api-nexthop-self': (
        '2.2.0.1/32 ipv4 unicast: announce received, not expected (AS_PATH (empty), LOCAL_PREF 100, NEXT_HOP 127.0.0.1, ORIGIN igp)',
    ),
    'conf-cap-software-version': (
        'OPEN: capability expected, not offered: extended-message (empty)',
        'OPEN: capability expected, not offered: software-version 134578614247502f352e302e302d302b74657374',
        'OPEN: capability offered, not expected: route-refresh (empty)',
        'OPEN: capability offered, not expected: software-version 0e666c6565746267702f302e312e30',
    ),
    'conf-hostname': (
        'OPEN: capability expected, not offered: extended-message (empty)',
        'OPEN: capability offered, not expected: route-refresh (empty)',
    ),
    'unknown-message': (
        'NOTIFICATION 1/3 \'can not decode message of type "255"\': expected, not received',
        "NOTIFICATION 1/3 'ff': received, not expected",
    ),
}

# Tests whose outcome depends on timing (how the agent's reads and sends interleave with an API
# program's writes); only "a session, and identical or differs" is checked for them. Say why.
UNSTABLE: dict[str, str] = {
    'api-check': "the API program gives up unless the first line it reads is the received default route; whether the agent's own 'send update' lines come first is a race",
    'api-flow': 'the program writes 7 flow commands in one go; which of the repeated ones the agent coalesces depends on how the reads split them',
    'api-multiple-api': "process private writes 'shutdown' right after its route: whether the public neighbor's session is up by then (and gets 1.1.1.1 and 3.3.3.3) is a race; FORBIDDEN keeps the point of the test",
}
