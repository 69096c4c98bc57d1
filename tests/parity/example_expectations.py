"""What `fleetbgp validate` says about each of ExaBGP 5.0.15's example configs (etc/exabgp/*.conf).

Every file here is accepted by ExaBGP 5.0.15's own `exabgp validate -n -r FILE` (run once, by hand,
from its etc/exabgp directory with exabgp_daemon_user=root exabgp_daemon_drop=false: all 86 pass).
test_exabgp_examples.py checks that `fleetbgp validate` still gives the outcome pinned here.

EXPECTED: file -> ("accepted", "") or ("refused", FIRST) where FIRST is the stable start of our first
diagnostic: `FILE:LINE:COL: message` (a diagnostic must start with it; trailing lists such as
"(supported: ...)" are left out).
REASONS: file -> why we refuse it: "out of scope: ..." (a family or feature fleetbgp does not do, on
purpose), "stricter: ..." (ExaBGP lets it pass, fleetbgp calls it an error, on purpose) or
"todo: FEATURE" (ExaBGP syntax we may want to accept some day).
When an outcome changes on purpose, update the pin (and the reason).
"""

from __future__ import annotations

EXABGP_VERSION = "5.0.15"

EXPECTED: dict[str, tuple[str, str]] = {
    "api-ack-control.conf": ("accepted", ""),
    "api-add-remove.conf": ("accepted", ""),
    "api-announce-processes-match.conf": ("accepted", ""),
    "api-announce-star.conf": ("accepted", ""),
    "api-announce.conf": ("accepted", ""),
    "api-announcement.conf": ("accepted", ""),
    "api-attributes.conf": ("accepted", ""),
    "api-attributes-path.conf": ("accepted", ""),
    "api-broken-flow.conf": ("accepted", ""),
    "api-check.conf": ("accepted", ""),
    "api-eor.conf": ("accepted", ""),
    "api-fast.conf": ("accepted", ""),
    "api-flow.conf": ("accepted", ""),
    "api-manual-eor.conf": ("accepted", ""),
    "api-multi-neighbor.conf": ("accepted", ""),
    "api-multiple-api.conf": ("accepted", ""),
    "api-nexthop-self.conf": ("accepted", ""),
    "api-nexthop.conf": ("accepted", ""),
    "api-no-respawn.conf": ("accepted", ""),
    "api-notification.conf": ("accepted", ""),
    "api-reload.1.conf": ("accepted", ""),
    "api-reload.2.conf": ("accepted", ""),
    "api-rib.conf": ("accepted", ""),
    "api-rr-rib.conf": ("accepted", ""),
    "api-rr.conf": ("accepted", ""),
    "api-silence-ack.conf": ("accepted", ""),
    "api-teardown.conf": ("accepted", ""),
    "conf-aggregator.conf": ("accepted", ""),
    "conf-ebgp.conf": ("accepted", ""),
    "conf-group-limit.conf": ("accepted", ""),
    "conf-group.conf": ("accepted", ""),
    "conf-hostname.conf": ("accepted", ""),
    "conf-name.conf": ("accepted", ""),
    "conf-cap-software-version.conf": ("accepted", ""),
    "api-watchdog.conf": ("accepted", ""),
    "conf-ipself4.conf": ("accepted", ""),
    "conf-ipself6.conf": ("accepted", ""),
    "conf-ipv46routes4family.conf": ("accepted", ""),
    "conf-ipv46routes6family.conf": ("accepted", ""),
    "conf-ipv6grouping.conf": ("accepted", ""),
    "conf-largecommunity.conf": ("accepted", ""),
    "conf-new-v4.conf": ("accepted", ""),
    "conf-new-v6.conf": ("accepted", ""),
    "conf-path-information.conf": ("accepted", ""),
    "conf-no-asn4.conf": ("accepted", ""),
    "conf-template.conf": ("accepted", ""),
    "conf-unknowncap.conf": ("accepted", ""),
    "example-healthcheck.conf": ("accepted", ""),
    "parse-community.conf": ("accepted", ""),
    "parse-dual-neighbor.conf": ("accepted", ""),
    "parse-md5.conf": ("accepted", ""),
    "parse-multiple-process.conf": ("accepted", ""),
    "parse-process.conf": ("accepted", ""),
    "parse-simple-v4.conf": ("accepted", ""),
    "parse-simple-v6.conf": ("accepted", ""),
    "parse-ttl.conf": ("accepted", ""),
    "unknown-message.conf": ("accepted", ""),
    "api-api.conf": ("refused", "api-api.conf:14:9: family 'ipv4 nlri-mpls' is not supported"),
    "api-attributes-vpn.conf": (
        "refused",
        "api-attributes-vpn.conf:15:8: family 'ipv4 mpls-vpn' is not supported",
    ),
    "api-blocklist.conf": ("refused", "api-blocklist.conf:23:13: capability 'operational' is not supported"),
    "api-flow-merge.conf": (
        "refused",
        "api-flow-merge.conf:24:13: the flow 'scope' block (interface-set) is not supported",
    ),
    "api-ipv4.conf": ("refused", "api-ipv4.conf:15:14: family 'ipv4 mup' is not supported"),
    "api-ipv6.conf": ("refused", "api-ipv6.conf:15:14: family 'ipv6 mup' is not supported"),
    "api-multisession.conf": (
        "refused",
        "api-multisession.conf:14:3: capability 'multi-session' is not supported",
    ),
    "api-mvpn.conf": ("refused", "api-mvpn.conf:16:14: family 'ipv4 mcast-vpn' is not supported"),
    "api-open.conf": (
        "refused",
        "api-open.conf:18:3: neighbor 127.0.0.1: 'nexthop { ipv4 unicast ipv6; }' needs 'family { ipv6 unicast; }'",
    ),
    "api-vpls.conf": ("refused", "api-vpls.conf:17:3: family 'l2vpn vpls' is not supported"),
    "api-vpnv4.conf": ("refused", "api-vpnv4.conf:14:8: family 'ipv4 mpls-vpn' is not supported"),
    "conf-addpath.conf": ("refused", "conf-addpath.conf:14:8: family 'ipv4 mpls-vpn' is not supported"),
    "conf-attributes.conf": (
        "refused",
        "conf-attributes.conf:19:4: raw 'attribute [ ... ]' is not supported",
    ),
    "conf-bgpls.conf": ("refused", "conf-bgpls.conf:8:3: family 'bgp-ls bgp-ls' is not supported"),
    "conf-extended-attributes.conf": (
        "refused",
        "conf-extended-attributes.conf:32:63: extended-community 'l2info:1:2:13398:30864': expected TYPE:ADMIN:LOCAL (target:65000:100, origin:192.0.2.1:5) or 0x and 16 hex digits",
    ),
    "conf-flow-redirect.conf": (
        "refused",
        "conf-flow-redirect.conf:13:8: family 'ipv4 flow-vpn' is not supported",
    ),
    "conf-flow.conf": ("refused", "conf-flow.conf:10:8: family 'ipv4 flow-vpn' is not supported"),
    "conf-generic-attribute.conf": (
        "refused",
        "conf-generic-attribute.conf:15:48: raw 'attribute [ ... ]' is not supported",
    ),
    "conf-l2vpn.conf": ("refused", "conf-l2vpn.conf:11:3: family 'l2vpn vpls' is not supported"),
    "conf-mvpn.conf": ("refused", "conf-mvpn.conf:10:14: family 'ipv4 mcast-vpn' is not supported"),
    "conf-parity.conf": ("refused", "conf-parity.conf:8:8: family 'ipv6 mpls-vpn' is not supported"),
    "conf-prefix-sid-srv6.conf": (
        "refused",
        "conf-prefix-sid-srv6.conf:12:8: family 'ipv4 mpls-vpn' is not supported",
    ),
    "conf-prefix-sid.conf": (
        "refused",
        "conf-prefix-sid.conf:10:8: family 'ipv4 nlri-mpls' is not supported",
    ),
    "conf-split.conf": (
        "refused",
        "conf-split.conf:21:2: end of file inside the 'neighbor 127.0.0.1' block opened at 1:1: missing '}'",
    ),
    "conf-srv6-mup-v3.conf": ("refused", "conf-srv6-mup-v3.conf:8:14: family 'ipv4 mup' is not supported"),
    "conf-srv6-mup.conf": ("refused", "conf-srv6-mup.conf:8:14: family 'ipv4 mup' is not supported"),
    "conf-vpn.conf": ("refused", "conf-vpn.conf:13:21: VPN routes ('rd') are not supported"),
    "extended-nexthop.conf": ("refused", "extended-nexthop.conf:14:8: family 'ipv4 mpls-vpn' is not supported"),
    "parse-multisession.conf": (
        "refused",
        "parse-multisession.conf:15:3: capability 'multi-session' is not supported",
    ),
}

REASONS: dict[str, str] = {
    "api-api.conf": "out of scope: VPN/MPLS",
    "api-attributes-vpn.conf": "out of scope: VPN/MPLS",
    "api-blocklist.conf": "out of scope: operational",
    "api-flow-merge.conf": "out of scope: flow interface-set (scope)",
    "api-ipv4.conf": "out of scope: MUP",
    "api-ipv6.conf": "out of scope: MUP",
    "api-multisession.conf": "out of scope: multi-session",
    "api-mvpn.conf": "out of scope: multicast VPN",
    "api-open.conf": "out of scope: operational",
    "api-vpls.conf": "out of scope: VPLS",
    "api-vpnv4.conf": "out of scope: VPN/MPLS",
    "conf-addpath.conf": "out of scope: VPN/MPLS",
    "conf-attributes.conf": "out of scope: generic attribute",
    "conf-bgpls.conf": "out of scope: BGP-LS",
    "conf-extended-attributes.conf": "out of scope: VPLS",
    "conf-flow-redirect.conf": "out of scope: flow-vpn",
    "conf-flow.conf": "out of scope: flow-vpn",
    "conf-generic-attribute.conf": "out of scope: generic attribute",
    "conf-l2vpn.conf": "out of scope: VPLS",
    "conf-mvpn.conf": "out of scope: multicast VPN",
    "conf-parity.conf": "out of scope: VPN/MPLS",
    "conf-prefix-sid-srv6.conf": "out of scope: VPN/MPLS",
    "conf-prefix-sid.conf": "out of scope: VPN/MPLS",
    "conf-split.conf": "stricter: a missing '}' at the end of the file is an error (ExaBGP does not notice it); split itself works",
    "conf-srv6-mup-v3.conf": "out of scope: MUP",
    "conf-srv6-mup.conf": "out of scope: MUP",
    "conf-vpn.conf": "out of scope: VPN/MPLS",
    "extended-nexthop.conf": "out of scope: VPN/MPLS",
    "parse-multisession.conf": "out of scope: multi-session",
}

# Behind the first error (what else a refused file shows, worth knowing when the first one goes):
# - conf-extended-attributes.conf: l2info:1:2:13398:30864 (a VPLS extended community) and a stray
#   '}' at 36:1, which ExaBGP ignores.
# - api-flow-merge.conf: two flow routes with the same match (31:9; ExaBGP merges them).
# - conf-flow.conf: `traffic-class 101` (126:19) is refused as out of range 0-63 (RFC 8956: the
#   6-bit DSCP of the traffic class); ExaBGP takes up to 65535, and docs/agent/flowspec.md says 0-255.
# - conf-flow-redirect.conf: the flow action `redirect-to-nexthop-ietf` (74:17, 83:17): todo.
# - extended-nexthop.conf: behind ipv4/ipv6 mpls-vpn, `nexthop { ipv4 mpls-vpn ipv6; }` (21:8) and
#   `ipv6 unicast ipv4` (22:3, an IPv6 route with an IPv4 next hop, which ExaBGP sends but never
#   offers in its capability), then the IPv6 route with an IPv4 next hop (27:58). Its IPv4 route
#   with an IPv6 next hop (26:34) is accepted since the extended next hop (RFC 8950) is supported.
# - api-open.conf: its `nexthop { ipv4 unicast ipv6; }` without family ipv6 unicast (18:3), which
#   ExaBGP skips silently (no capability), is refused; then `ipv6 unicast ipv4` (19:3) and the
#   capabilities aigp (24:3), operational, multi-session, add-path.
# - conf-addpath.conf: the mpls-vpn route (label, rd, 24:107); its add-path capability, add-path
#   block and `path-information 1.2.3.4` / `path-information 10` routes are accepted.

