"""The cases of test_exabgp_differential.py: one config text (and API lines) per case, given as is to
ExaBGP 5.0.15 and to fleetbgp. Each case is one ExaBGP start, so many routes share a case.

Every route attribute and form of docs/agent/configuration.md (static routes, `announce { }`,
FlowSpec rules) and of docs/agent/api.md (route, attributes, flow and neighbor-qualified lines)
appears here at least once. Forms fleetbgp refuses on purpose cannot share a config with the rest
(the whole file would be refused): they are in test_exabgp_differential.REFUSED_ON_PURPOSE, checked
on our side only, as are the forms only fleetbgp accepts (FLEETBGP_ONLY there).

Placeholders, replaced by the runner: @PROGRAM@ (the API program's command line: python, the script
and the file of API lines).
"""

from __future__ import annotations

from dataclasses import dataclass

ROUTER_ID = "10.0.0.1"
LOCAL_ADDRESS = "127.0.0.1"
SENTINEL = "203.0.113.255/32"  # the API program's last route: once it arrives, every line was applied


def asn(value: int | str) -> int:
    """An AS number, from a number or asdot text (`1.10` = 65546)."""
    if isinstance(value, int):
        return value
    high, _, low = value.partition(".")
    return (int(high) << 16) + int(low) if low else int(high)


@dataclass(frozen=True)
class Case:
    name: str
    local_as: int | str  # a number, or asdot text ("1.10")
    peer_as: int | str
    body: str  # the neighbor block's content after the session settings
    families: tuple[str, ...] = ("ipv4 unicast", "ipv6 unicast")
    # API lines, in phases: the program waits for the session to be up, then prints a phase's lines,
    # waits a moment between phases (so that a withdrawal is not folded into its announcement),
    # and last announces SENTINEL.
    api: tuple[tuple[str, ...], ...] = ()
    neighbor: str = "127.0.0.1"  # the capturing peer listens here
    local_address: str = LOCAL_ADDRESS
    capability: str = ""  # statements of a `capability { }` block
    extra: str = ""  # more config after the neighbor block (other neighbors)

    @property
    def ibgp(self) -> bool:
        return asn(self.local_as) == asn(self.peer_as)

    def config(self) -> str:
        families = "".join(f"        {f};\n" for f in self.families)
        process = ""
        api = ""
        if self.api:
            process = "process feed {\n    run @PROGRAM@;\n    encoder text;\n}\n\n"
            api = "    api {\n        processes [ feed ];\n        neighbor-changes;\n    }\n"
        capability = f"    capability {{ {self.capability} }}\n" if self.capability else ""
        return (
            f"{process}"
            f"neighbor {self.neighbor} {{\n"
            f"    router-id {ROUTER_ID};\n"
            f"    local-address {self.local_address};\n"
            f"    local-as {self.local_as};\n"
            f"    peer-as {self.peer_as};\n"
            f"    family {{\n{families}    }}\n"
            f"{capability}"
            f"{api}"
            f"{self.body}"
            f"}}\n"
            f"{self.extra}"
        )


# -- static routes, eBGP ------------------------------------------------------------------------
STATIC_EBGP = Case(
    name="static-ebgp",
    local_as=65001,
    peer_as=65000,
    body="""\
    static {
        route 10.1.0.0/24 next-hop self;
        route 10.1.1.0/24 next-hop 192.0.2.1;
        route 10.1.2.0/24 next-hop self origin igp;
        route 10.1.3.0/24 next-hop self origin egp;
        route 10.1.4.0/24 next-hop self origin incomplete;
        route 10.1.5.0/24 next-hop self as-path [ 65001 65002 ];
        route 10.1.8.0/24 next-hop self as-path [ 4200000000 65002 ];
        route 10.1.9.0/24 next-hop self med 0;
        route 10.1.10.0/24 next-hop self med 4294967295;
        route 10.1.11.0/24 next-hop self med 100;
        route 10.1.12.0/24 next-hop self local-preference 200;
        route 10.1.13.0/24 next-hop self community [ 65000:100 no-export ];
        route 10.1.14.0/24 next-hop self community 65000:1;
        route 10.1.15.0/24 next-hop self community [ 4259840100 ];
        route 10.1.16.0/24 next-hop self community [ no-export no-advertise no-export-subconfed nopeer ];
        route 10.1.17.0/24 next-hop self community [ blackhole no-peer 0xFFFF0001 ];
        route 10.1.18.0/24 next-hop self community [ 65000:3 65000:1 65000:2 ];
        route 10.1.19.0/24 next-hop self community [ 65000:1 65000:1 ];
        route 10.1.20.0/24 next-hop self community [ 0:0 65535:65535 ];
        route 10.1.21.0/24 next-hop self large-community [ 65000:1:2 ];
        route 10.1.22.0/24 next-hop self large-community [ 4294967295:4294967295:4294967295 65000:2:1 65000:1:2 ];
        route 10.1.23.0/24 next-hop self large-community 65000:9:9;
        route 10.1.24.0/24 next-hop self atomic-aggregate;
        route 10.1.25.0/24 next-hop self aggregator ( 65001:192.0.2.1 );
        route 10.1.26.0/24 next-hop self aggregator 4200000000:192.0.2.9;
        route 10.1.27.0/24 next-hop self med 7 origin egp as-path [ 65001 ] community [ 65000:7 ] large-community [ 65000:7:7 ] atomic-aggregate aggregator ( 65001:192.0.2.1 );
        route 10.1.28.1 next-hop self;
        route 10.1.29.0/24 next-hop self;
        route 10.1.29.0/24 next-hop self med 29;
        route 10.1.30.0/23 next-hop self med 30 split /24;
        route 10.1.32.0/24 next-hop self name the-web-service;
        route 10.1.33.0/24 next-hop self watchdog dog;
        route 198.51.100.0/24 {
            next-hop 192.0.2.2;
            local-preference 200;
            origin igp;
            as-path [ 65001 65002 ];
            med 10;
            community [ 65000:100 no-export ];
            large-community [ 65000:1:2 ];
            extended-community [ target:65000:100 origin:192.0.2.1:5 ];
            atomic-aggregate;
            aggregator ( 65001:192.0.2.1 );
        }
        route 2001:db8:1::/48 next-hop 2001:db8::1;
        route 2001:db8:2::/48 next-hop 2001:db8::1 med 5 as-path [ 65001 65002 ] community [ 65000:2 ];
        route 2001:db8:3::1 next-hop 2001:db8::1;
    }
    announce {
        ipv4 {
            unicast 10.2.0.0/24 next-hop self med 100;
            unicast 10.2.1.0/24 next-hop 192.0.2.3 community [ 65000:5 ];
        }
        ipv6 {
            unicast 2001:db8:100::/48 next-hop 2001:db8::2;
        }
    }
""",
)

# -- extended communities (one route each: a refused form shows on its own route) --------------------
EXTENDED_COMMUNITIES = Case(
    name="extended-communities",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast",),
    body="""\
    static {
        route 10.3.0.0/24 next-hop self extended-community [ target:65000:100 ];
        route 10.3.1.0/24 next-hop self extended-community [ origin:65000:7 ];
        route 10.3.2.0/24 next-hop self extended-community [ origin:1.2.3.4:5 ];
        route 10.3.3.0/24 next-hop self extended-community [ target:192.0.2.1:5 ];
        route 10.3.4.0/24 next-hop self extended-community [ target:4200000000:7 ];
        route 10.3.5.0/24 next-hop self extended-community [ origin:4200000000:7 ];
        route 10.3.6.0/24 next-hop self extended-community [ target:65000L:7 ];
        route 10.3.7.0/24 next-hop self extended-community [ target4:65000:7 ];
        route 10.3.8.0/24 next-hop self extended-community [ origin4:70000:7 ];
        route 10.3.9.0/24 next-hop self extended-community [ redirect:65000:666 ];
        route 10.3.10.0/24 next-hop self extended-community [ 0x0002fde800000064 ];
        route 10.3.11.0/24 next-hop self extended-community [ target:65000:4294967295 ];
        route 10.3.12.0/24 next-hop self extended-community [ origin:65000:7 target:65000:100 target:65000:1 ];
        route 10.3.13.0/24 next-hop self extended-community target:65000:9;
        route 10.3.14.0/24 next-hop self extended-community [ 65000:100 192.0.2.1:5 ];
    }
""",
)

# ExaBGP accepts an IPv4 address as the local part (ASN:IPv4, encoded as a 2-octet-AS community)
EXT_COMMUNITY_IP_LOCAL = Case(
    name="ext-community-ip-local",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast",),
    body="""\
    static {
        route 10.3.14.0/24 next-hop self extended-community [ origin:9000:9.9.9.9 ];
        route 10.3.15.0/24 next-hop self extended-community [ target:1000:10.10.10.10 ];
        route 10.3.16.0/24 next-hop self extended-community [ 72:0.0.0.1 ];
    }
""",
)

# ExaBGP's AS_SET syntax: `as-path [ SEQUENCE ] ( SET )`, groups one after the other
AS_SET = Case(
    name="as-set",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast",),
    body="""\
    static {
        route 10.5.0.0/24 next-hop self as-path [ 65001 ] ( 65010 65011 );
        route 10.5.1.0/24 next-hop self as-path ( 65010 65011 );
        route 10.5.2.0/24 next-hop self as-path [ 65001 ] ( 65010 ) [ 65002 ];
    }
""",
)

# -- 2-octet AS session (capability asn4 disable): AS_TRANS, AS4_PATH, AS4_AGGREGATOR ----------------
NO_ASN4 = Case(
    name="no-asn4",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast",),
    capability="asn4 disable;",
    body="""\
    static {
        route 10.7.0.0/24 next-hop self;
        route 10.7.1.0/24 next-hop self as-path [ 65001 65002 ];
        route 10.7.2.0/24 next-hop self as-path [ 65001 4200000000 65002 ];
        route 10.7.3.0/24 next-hop self aggregator ( 4200000000:192.0.2.9 );
        route 10.7.4.0/24 next-hop self aggregator ( 65001:192.0.2.1 ) atomic-aggregate;
    }
""",
)

# -- an IPv6 session ----------------------------------------------------------------------------------
IPV6_SESSION = Case(
    name="ipv6-session",
    local_as=65001,
    peer_as=65000,
    neighbor="::1",
    local_address="::1",
    body="""\
    static {
        route 2001:db8:10::/48 next-hop self;
        route 2001:db8:11::/48 next-hop 2001:db8::1 med 11;
        route 2001:db8:12::/48 next-hop fe80::1;
        route 10.6.0.0/24 next-hop 192.0.2.1;
    }
""",
)

# -- 4-octet AS numbers, in asdot, both ends -----------------------------------------------------------
ASDOT = Case(
    name="asdot",
    local_as="1.10",
    peer_as="1.20",
    families=("ipv4 unicast",),
    body="""\
    static {
        route 10.9.0.0/24 next-hop self;
        route 10.9.1.0/24 next-hop self as-path [ 65546 65002 ];
        route 10.9.2.0/24 next-hop self aggregator ( 65546:192.0.2.1 );
    }
""",
)

# -- capabilities spelled out (the OPEN is compared too) ----------------------------------------------
CAPABILITIES = Case(
    name="capabilities",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast",),
    capability="route-refresh; extended-message; graceful-restart 120;",
    body="""\
    static {
        route 10.8.0.0/24 next-hop self;
    }
""",
)

# -- iBGP -------------------------------------------------------------------------------------------
STATIC_IBGP = Case(
    name="static-ibgp",
    local_as=65001,
    peer_as=65001,
    families=("ipv4 unicast", "ipv6 unicast"),
    body="""\
    static {
        route 10.4.0.0/24 next-hop self;
        route 10.4.1.0/24 next-hop 192.0.2.1 local-preference 200;
        route 10.4.2.0/24 next-hop self local-preference 0 med 5;
        route 10.4.3.0/24 next-hop self as-path [ 65002 65003 ];
        route 10.4.4.0/24 next-hop self community [ 65001:1 no-export ] origin incomplete;
        route 10.4.5.0/24 next-hop self atomic-aggregate aggregator ( 65001:10.0.0.1 );
        route 2001:db8:5::/48 next-hop 2001:db8::5 local-preference 300;
    }
""",
)

# -- FlowSpec rules from the config -----------------------------------------------------------------
FLOW_CONFIG = Case(
    name="flow-config",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast", "ipv4 flow", "ipv6 flow"),
    body="""\
    flow {
        route block-ntp {
            match { destination 192.0.2.10/32; protocol =udp; source-port =123; packet-length >400; }
            then { discard; }
        }
        route every-v4 {
            match {
                destination 192.0.2.0/24;
                source 10.0.0.0/24;
                protocol [ =tcp =udp ];
                destination-port >1024&<2048;
                source-port =53;
                tcp-flags [ syn ];
                packet-length >100;
                dscp =10;
                fragment [ is-fragment ];
            }
            then { rate-limit 9600; }
        }
        route icmp {
            match { destination 192.0.2.1/32; protocol =icmp; port =80; icmp-type =8; icmp-code =0; }
            then { action sample-terminal; mark 10; }
        }
        route flags {
            match { destination 192.0.2.2/32; tcp-flags [ syn !=ack ]; fragment [ dont-fragment first-fragment ]; }
            then { redirect 65001:999; }
        }
        route red4 {
            match { destination 192.0.2.3/32; }
            then { redirect 4200000000:7; }
        }
        route red-nh {
            match { destination 192.0.2.5/32; }
            then { redirect 10.0.0.9; }
        }
        route red-nh-exabgp {
            next-hop 10.0.0.8;
            match { destination 192.0.2.8/32; }
            then { redirect-to-nexthop; }
        }
        route pkts {
            match { destination 192.0.2.6/32; }
            then { rate-limit 1000 packets; }
        }
        route accept-comm {
            match { destination 192.0.2.7/32; destination-port [ =80 =443 ]; }
            then { accept; community [ 65000:1 ]; extended-community [ target:65000:100 ]; large-community [ 65000:1:1 ]; }
        }
        route sample {
            match { source 198.51.100.0/24; }
            then { action sample; }
        }
        route terminal {
            match { source 198.51.100.1/32; }
            then { action terminal; rate-limit 0; }
        }
        route scrub-v6 {
            match { destination 2001:db8:100::/48; next-header =tcp; destination-port [ =80 =443 ]; }
            then { redirect 65001:999; }
        }
        route every-v6 {
            match {
                destination 2001:db8::/64/8;
                source 2001:db8:1::/48;
                next-header =udp;
                traffic-class =4;
                flow-label =5;
                icmp-type =128;
                packet-length <1500;
                fragment [ last-fragment ];
            }
            then { discard; }
        }
    }
""",
)

# -- the API -------------------------------------------------------------------------------------------
API_ROUTES = Case(
    name="api-routes",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast", "ipv6 unicast"),
    body="",
    # a second neighbor that never connects (passive, and no listener): for the selectors
    extra="""\
neighbor 127.0.0.2 {
    router-id 10.0.0.1;
    local-address 127.0.0.1;
    local-as 65001;
    peer-as 65000;
    passive;
    family {
        ipv4 unicast;
    }
}
""",
    api=(
        (
            "announce route 100.10.0.100/32 next-hop self med 100",
            "announce route 100.10.0.0/24 next-hop 192.0.2.1 local-preference 200 "
            "community [ 65000:100 no-export ]",
            "announce route 2001:db8:100::/48 next-hop 2001:db8::1 as-path [ 65010 65020 ] "
            "large-community 65001:1:1",
            "announce route 100.10.1.0/24 next-hop self origin egp as-path [ 65001 65002 ] "
            "community [ 65000:2 65000:1 ] extended-community [ target:65000:1 origin:192.0.2.1:5 "
            "redirect:65000:100 ] atomic-aggregate aggregator ( 65001:192.0.2.1 )",
            "announce route 100.10.2.0/24 next-hop self extended-community target:65000:9",
            # ExaBGP's other spellings of the well-known communities
            "announce route 100.10.12.0/24 next-hop self community [ no_export no_advertise ]",
            "announce route 100.10.13.0/24 next-hop self community [ NO-EXPORT Blackhole ]",
            # AS_SET: ExaBGP's spelling, then configuration.md's (which ExaBGP refuses)
            "announce route 100.10.10.0/24 next-hop self as-path [ 65001 ] ( 65010 65011 )",
            "announce route 100.10.11.0/24 next-hop self as-path [ 65001 ( 65010 65011 ) ]",
            "announce route 100.10.3.0/24 next-hop self extended-community [ origin:9000:9.9.9.9 ]",
            "announce ipv4 unicast 100.10.4.0/24 next-hop self med 4",
            "announce ipv6 unicast 2001:db8:101::/48 next-hop 2001:db8::1 med 6",
            "announce attributes next-hop self med 50 nlri 100.20.0.0/24 100.20.1.0/24 100.20.2.0/24",
            "announce attributes next-hop 2001:db8::9 community [ 65000:9 ] nlri 2001:db8:200::/48 "
            "2001:db8:201::/48",
            "neighbor 127.0.0.1 announce route 100.10.5.0/24 next-hop self",
            "neighbor 127.0.0.1 local-as 65001 peer-as 65000 announce route 100.10.6.0/24 next-hop self",
            "neighbor 127.0.0.1 router-id 10.0.0.1 local-ip 127.0.0.1 announce route 100.10.7.0/24 "
            "next-hop self med 7",
            "neighbor 127.0.0.1 announce attributes next-hop self nlri 100.10.8.0/24 100.10.9.0/24",
            "neighbor 127.0.0.1 , neighbor 127.0.0.2 announce route 100.10.14.0/24 next-hop self",
            "neighbor * announce route 100.10.15.0/24 next-hop self med 15",
            "neighbor 127.0.0.2 announce route 100.10.16.0/24 next-hop self",
            "neighbor 127.0.0.1 peer-as 65099 announce route 100.10.17.0/24 next-hop self",
            "announce route 100.50.0.0/23 next-hop self med 50 split /24",
            "announce route 100.50.2.0/24 next-hop self name the-web-service",
            "announce route 100.50.3.0/24 next-hop self watchdog dog",
            "announce route 100.50.4.0/24 next-hop self watchdog pup withdraw",
            "announce watchdog pup",
            "announce eor ipv4 unicast",
            # to withdraw in phase 2
            "announce route 100.30.0.0/24 next-hop self",
            "announce route 100.30.1.0/24 next-hop self med 1",
            "announce route 100.30.2.0/24 next-hop self",
            "announce attributes next-hop self nlri 100.30.3.0/24 100.30.4.0/24",
            "announce route 2001:db8:300::/48 next-hop 2001:db8::1",
            "announce route 100.30.5.0/24 next-hop self",
            "announce route 100.30.6.0/24 next-hop self",
            "announce route 100.30.7.0/24 next-hop self med 1",
        ),
        (
            "withdraw watchdog dog",
            "withdraw route 100.30.0.0/24",
            "withdraw route 100.30.1.0/24 next-hop self med 1",
            "withdraw route 100.30.2.0/24 next-hop 127.0.0.1",
            "withdraw attributes nlri 100.30.3.0/24 100.30.4.0/24",
            "withdraw route 2001:db8:300::/48",
            "neighbor 127.0.0.1 withdraw route 100.30.5.0/24",
            "withdraw ipv4 unicast 100.30.6.0/24",
            "withdraw attributes next-hop self med 50 nlri 100.20.2.0/24",
            "neighbor * withdraw route 100.10.15.0/24",
            # never announced; replaced with other attributes; announced again unchanged
            "withdraw route 100.40.0.0/24",
            "announce route 100.30.7.0/24 next-hop self med 2",
            "announce route 100.10.0.100/32 next-hop self med 100",
        ),
    ),
)

API_FLOW = Case(
    name="api-flow",
    local_as=65001,
    peer_as=65000,
    families=("ipv4 unicast", "ipv4 flow", "ipv6 flow"),
    body="",
    api=(
        (
            "announce flow route { match { source 10.0.0.0/24; destination-port =80; protocol =tcp; } "
            "then { discard; } }",
            "announce flow route source 10.0.1.0/24 destination-port =80 protocol =tcp discard",
            "announce flow route { match { destination 192.0.2.10/32; } then { redirect 65001:999; } }",
            "neighbor 127.0.0.1 announce flow route { match { destination 192.0.2.0/24; } "
            "then { rate-limit 9600; } }",
            "announce flow route destination 192.0.2.20/32 destination-port =80 destination-port =443 "
            "rate-limit 100",
            "announce flow route { match { destination 2001:db8:100::/48; next-header =udp; } "
            "then { discard; } }",
            "announce flow route { match { destination 192.0.2.30/32; } then { discard; } }",
            "announce flow route { match { destination 192.0.2.31/32; } then { redirect 10.0.0.9; } }",
            "announce flow route { match { destination 192.0.2.32/32; protocol =icmp; icmp-type =8; } "
            "then { rate-limit 1000 packets; mark 10; action sample; } }",
            "announce flow route destination 192.0.2.33/32 tcp-flags [ syn !=ack ] fragment is-fragment "
            "packet-length >=100&<=200 redirect 65001:999",
            "announce flow route { match { destination 2001:db8:200::/48; flow-label =5; "
            "traffic-class =4; } then { redirect 4200000000:7; } }",
        ),
        (
            "withdraw flow route { match { destination 192.0.2.30/32; } }",
            "withdraw flow route source 10.0.1.0/24 destination-port =80 protocol =tcp",
            "withdraw flow route { match { destination 2001:db8:100::/48; next-header =udp; } "
            "then { discard; } }",
            "withdraw flow route { match { destination 192.0.2.31/32; } }",
        ),
    ),
)

CASES: tuple[Case, ...] = (
    STATIC_EBGP, EXTENDED_COMMUNITIES, EXT_COMMUNITY_IP_LOCAL, AS_SET, NO_ASN4, IPV6_SESSION,
    CAPABILITIES, ASDOT, STATIC_IBGP, FLOW_CONFIG, API_ROUTES, API_FLOW,
)
