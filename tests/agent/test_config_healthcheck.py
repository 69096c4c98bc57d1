"""The top-level `healthcheck NAME { ... }` block: model, defaults, and errors with FILE:LINE:COL."""

from __future__ import annotations

import pytest

from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.model import (
    CommandCheckSpec,
    DnsCheckSpec,
    HealthCheck,
    HttpCheckSpec,
    TcpCheckSpec,
)
from fleetbgp.owner import Owner

NEIGHBORS = ("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; }\n"
             "neighbor 2001:db8::1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; }\n")


def parse(body: str) -> dict[str, HealthCheck]:
    return parse_text(NEIGHBORS + body, "h.conf").healthchecks


def one(body: str) -> HealthCheck:
    checks = parse("healthcheck web {\n" + body + "\n}\n")
    return checks["web"]


def errors(body: str) -> list[str]:
    """Errors of a healthcheck block whose body starts at line 4 (lines 1-2: neighbors)."""
    with pytest.raises(ConfigError) as info:
        parse_text(NEIGHBORS + "healthcheck web {\n" + body + "\n}\n", "h.conf")
    return [str(d) for d in info.value.diagnostics]


def test_no_healthcheck_is_an_empty_dict():
    assert parse_text(NEIGHBORS, "h.conf").healthchecks == {}


def test_defaults_are_exabgps():
    hc = one("ip 100.10.0.100/32; check tcp 127.0.0.1:80;")
    assert hc == HealthCheck(name="web", ips=("100.10.0.100/32",), check=TcpCheckSpec(host="127.0.0.1", port=80))
    assert (hc.interval, hc.fast_interval, hc.timeout, hc.rise, hc.fall) == (5.0, 1.0, 5.0, 3, 3)
    assert (hc.up_metric, hc.down_metric, hc.disabled_metric, hc.increase) == (100, 1000, 500, 1)
    assert hc.next_hop == "self" and hc.neighbors is None and not hc.withdraw_on_down
    assert hc.owner == Owner.health("web") and str(hc.owner) == "health:web" and hc.source.line == 3


def test_everything():
    hc = one("""
    ip 100.10.0.100/32;
    ip [ 100.10.0.101 2001:db8:100::/48 ];
    next-hop self;
    neighbors [ 192.0.2.1 2001:db8::1 ];
    check http http://127.0.0.1:8080/health status 204;
    interval 2; fast-interval 0.5; timeout 1.5;
    rise 2; fall 4;
    up-metric 10; down-metric 2000; disabled-metric 700; increase 0;
    withdraw-on-down;
    disable-file /etc/fleetbgp/maintenance;
    community [ 65000:100 no-export ];
    disabled-community [ 65000:666 ];
    large-community [ 65000:1:2 ];
    extended-community [ target:65000:1 ];
    as-path [ 65001 65001 ];
    up-as-path [ 65001 ];
    down-as-path [ 65001 65001 65001 ];
    disabled-as-path 65002;
    local-preference 200;
    execute "logger any";
    up-execute "ip addr replace 100.10.0.100/32 dev lo";
    up-execute "logger up";
    down-execute 'logger down';
    disabled-execute "logger disabled";
    """)
    assert hc.ips == ("100.10.0.100/32", "100.10.0.101/32", "2001:db8:100::/48")
    assert hc.neighbors == ("192.0.2.1", "2001:db8::1")
    assert hc.check == HttpCheckSpec(url="http://127.0.0.1:8080/health", status=204)
    assert (hc.interval, hc.fast_interval, hc.timeout, hc.rise, hc.fall) == (2.0, 0.5, 1.5, 2, 4)
    assert (hc.up_metric, hc.down_metric, hc.disabled_metric, hc.increase) == (10, 2000, 700, 0)
    assert hc.withdraw_on_down and hc.disable_file == "/etc/fleetbgp/maintenance"
    assert hc.communities == (65000 << 16 | 100, 0xFFFFFF01)
    assert hc.disabled_communities == (65000 << 16 | 666,)
    assert hc.large_communities == ((65000, 1, 2),)
    assert hc.ext_communities == (0x0002FDE800000001,)
    assert hc.as_path == ((2, (65001, 65001)),) and hc.up_as_path == ((2, (65001,)),)
    assert hc.down_as_path == ((2, (65001, 65001, 65001)),) and hc.disabled_as_path == ((2, (65002,)),)
    assert hc.local_pref == 200
    assert hc.execute == ("logger any",)
    assert hc.up_execute == ("ip addr replace 100.10.0.100/32 dev lo", "logger up")
    assert hc.down_execute == ("logger down",) and hc.disabled_execute == ("logger disabled",)


@pytest.mark.parametrize(("text", "spec"), [
    ("tcp 127.0.0.1:80", TcpCheckSpec(host="127.0.0.1", port=80)),
    ("tcp [::1]:8443", TcpCheckSpec(host="::1", port=8443)),
    ("tcp '[2001:db8::5]:53'", TcpCheckSpec(host="2001:db8::5", port=53)),
    ("tcp localhost:25", TcpCheckSpec(host="localhost", port=25)),
    ("http https://svc.example/ready", HttpCheckSpec(url="https://svc.example/ready")),
    ("http https://127.0.0.1/ insecure status 200", HttpCheckSpec(url="https://127.0.0.1/", status=200,
                                                                  insecure=True)),
    ("http 'http://[::1]:8080/x?y=1'", HttpCheckSpec(url="http://[::1]:8080/x?y=1")),
    ("dns example.com", DnsCheckSpec(name="example.com")),
    ("dns example.com type aaaa server 2001:db8::53 port 5353",
     DnsCheckSpec(name="example.com", qtype="AAAA", server="2001:db8::53", port=5353)),
    ('command "curl -sf http://127.0.0.1/"', CommandCheckSpec(command="curl -sf http://127.0.0.1/")),
    ("command /usr/local/bin/check-web --quick", CommandCheckSpec(command="/usr/local/bin/check-web --quick")),
])
def test_check_forms(text, spec):
    assert one(f"ip 100.10.0.100/32; check {text};").check == spec


def test_several_healthchecks_and_equality_ignores_place():
    checks = parse("healthcheck a { ip 100.10.0.1; check tcp 127.0.0.1:1; }\n"
                   "healthcheck b { ip 100.10.0.2; check tcp 127.0.0.1:1; }\n")
    assert list(checks) == ["a", "b"]
    again = parse("\n\nhealthcheck a {\n ip 100.10.0.1;\n check tcp 127.0.0.1:1;\n}\n")
    assert checks["a"] == again["a"] and checks["a"].source != again["a"].source


def test_ipv6_next_hop_for_ipv6_ips():
    hc = one("ip 2001:db8:100::1; next-hop 2001:db8::2; check tcp [::1]:80;")
    assert hc.ips == ("2001:db8:100::1/128",) and hc.next_hop == "2001:db8::2"


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ("ip 100.10.0.100/32;",
     "h.conf:3:1: healthcheck web has no 'check'"),
    ("check tcp 127.0.0.1:80;",
     "h.conf:3:1: healthcheck web has no 'ip' to announce"),
    ("ip 100.10.0.1/24; check tcp 127.0.0.1:80;",
     "h.conf:4:4: '100.10.0.1/24' has host bits set (did you mean 100.10.0.0/24?)"),
    ("ip [ 100.10.0.1 100.10.0.1/32 ]; check tcp 127.0.0.1:80;",
     "h.conf:4:17: ip 100.10.0.1/32 is listed twice (first at 4:6)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1;",
     "h.conf:4:26: check tcp '127.0.0.1': expected HOST:PORT (IPv6: [ADDRESS]:PORT)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:0;",
     "h.conf:4:26: check tcp '127.0.0.1:0': the port must be 1..65535"),
    ("ip 100.10.0.1; check smtp 127.0.0.1:25;",
     "h.conf:4:22: unknown check 'smtp': check takes one of: tcp HOST:PORT | http URL [status N] [insecure] "
     "| dns NAME [type A] [server ADDRESS] [port N] | command \"CMD\""),
    ("ip 100.10.0.1; check;",
     "h.conf:4:16: check takes one of: tcp HOST:PORT | http URL [status N] [insecure] | dns NAME [type A] "
     "[server ADDRESS] [port N] | command \"CMD\""),
    ("ip 100.10.0.1; check http ftp://x/;",
     "h.conf:4:27: check http: 'ftp://x/': the URL must start with http:// or https://"),
    ("ip 100.10.0.1; check http http://x/ status 99;",
     "h.conf:4:44: status '99': expected an HTTP status 100..599"),
    ("ip 100.10.0.1; check http http://x/ insecure;",
     "h.conf:4:37: check http: 'insecure' only applies to https:// URLs"),
    ("ip 100.10.0.1; check dns example.com type MX2;",
     "h.conf:4:43: check dns: type 'MX2': expected one of A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT"),
    ("ip 100.10.0.1; check dns example.com server nowhere;",
     "h.conf:4:45: 'nowhere' is not an IP address"),
    ("ip 100.10.0.1; check dns example.com color blue;",
     "h.conf:4:38: check dns NAME takes: [type A] [server ADDRESS] [port N]"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; intervall 5;",
     "h.conf:4:40: unknown keyword 'intervall' in the healthcheck block (did you mean 'interval'?)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; interval 0;",
     "h.conf:4:49: interval '0': expected seconds, 0.1..86400 (decimals allowed)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; timeout 1e3;",
     "h.conf:4:48: timeout '1e3': expected seconds, 0.1..3600 (decimals allowed)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; rise 0;",
     "h.conf:4:45: rise '0': expected a number 1..1000"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; rise 2; rise 3;",
     "h.conf:4:48: 'rise' is set twice (first at 4:40)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; up-metric -1;",
     "h.conf:4:50: up-metric '-1': expected a number 0..4294967295"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; neighbors [ 192.0.2.9 ];",
     "h.conf:4:52: healthcheck web: 192.0.2.9 is not a configured neighbor (neighbors: 192.0.2.1, 2001:db8::1)"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; neighbors [ banana ];",
     "h.conf:4:52: neighbors: 'banana' is not an IP address"),
    ("ip [ 100.10.0.1 2001:db8::1 ]; next-hop 192.0.2.2; check tcp 127.0.0.1:80;",
     "h.conf:4:32: next-hop 192.0.2.2 is IPv4, but ip 2001:db8::1/128 (at 4:17) is not: use 'next-hop self' "
     "or one healthcheck per address family"),
    ("ip 100.10.0.1; next-hop 0.0.0.0; check tcp 127.0.0.1:80;",
     "h.conf:4:25: next-hop 0.0.0.0 cannot be used as a next hop"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; community [ 65000:x ];",
     "h.conf:4:52: community '65000:x': expected ASN:VALUE, both 0..65535"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; as-path [ 65001 ( ];",
     "h.conf:4:56: as-path: '(' is not closed with ')'"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; disable-file maintenance;",
     "h.conf:4:53: disable-file 'maintenance': give an absolute path"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; cmd 'curl x';",
     "h.conf:4:40: 'cmd' is not a healthcheck keyword: write check command \"CMD\";"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; disable /tmp/x;",
     "h.conf:4:40: 'disable' is not a healthcheck keyword: write disable-file PATH;"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; neighbor 192.0.2.1;",
     "h.conf:4:40: 'neighbor' is not a healthcheck keyword: write neighbors [ ADDRESS ... ];"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; med 5;",
     "h.conf:4:40: a healthcheck sets the MED per state: up-metric, down-metric, disabled-metric"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; up-execute;",
     "h.conf:4:40: up-execute needs a command: up-execute \"CMD\";"),
    ("ip 100.10.0.1; check tcp 127.0.0.1:80; withdraw-on-down maybe;",
     "h.conf:4:57: withdraw-on-down takes no value, or one of true/false (enable/disable)"),
])
def test_errors(body, expected):
    assert errors(body) == [expected]


def test_every_error_is_reported():
    got = errors("ip 100.10.0.1/24;\ncheck tcp nowhere;\nrise 0;\nfall x;\n")
    assert [e.split(":")[1] for e in got] == ["4", "5", "6", "7"]


def test_an_ip_of_a_family_no_neighbor_enables():
    with pytest.raises(ConfigError) as info:
        parse_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; "
                   "family { ipv4 unicast; } }\n"
                   "neighbor 2001:db8::1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; }\n"
                   "healthcheck a { ip 2001:db8:1::1; check tcp 127.0.0.1:1; }\n"
                   "healthcheck b { ip [ 100.10.0.1 2001:db8:1::2 ]; neighbors [ 192.0.2.1 ]; "
                   "check tcp 127.0.0.1:1; }\n", "h.conf")
    assert [str(d) for d in info.value.diagnostics] == [
        "h.conf:4:33: healthcheck b: ip 2001:db8:1::2/128 is ipv6 unicast, which none of its neighbors "
        "enables (family { ipv6 unicast; })"]
    with pytest.raises(ConfigError) as info:
        parse_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; "
                   "family { ipv4 unicast; } }\n"
                   "healthcheck a { ip 2001:db8:1::1; check tcp 127.0.0.1:1; }\n", "h.conf")
    assert [str(d) for d in info.value.diagnostics] == [
        "h.conf:2:20: healthcheck a: ip 2001:db8:1::1/128 is ipv6 unicast, which no neighbor enables "
        "(family { ipv6 unicast; })"]


def test_duplicate_and_badly_named_healthchecks():
    with pytest.raises(ConfigError) as info:
        parse_text(NEIGHBORS + "healthcheck a { ip 100.10.0.1; check tcp 127.0.0.1:1; }\n"
                   "healthcheck a { ip 100.10.0.2; check tcp 127.0.0.1:1; }\n"
                   "healthcheck 'a b' { ip 100.10.0.3; check tcp 127.0.0.1:1; }\n"
                   "healthcheck { ip 100.10.0.3; check tcp 127.0.0.1:1; }\n", "h.conf")
    assert [str(d) for d in info.value.diagnostics] == [
        "h.conf:4:1: healthcheck 'a' is already defined at 3:1",
        "h.conf:5:13: healthcheck name a quoted string: use letters, digits, '_', '-' and '.'",
        "h.conf:6:1: healthcheck takes one name: healthcheck NAME { ip ...; check ...; }",
    ]


def test_missing_brace_before_next_healthcheck():
    with pytest.raises(ConfigError) as info:
        parse_text(NEIGHBORS + "healthcheck a {\n ip 100.10.0.1; check tcp 127.0.0.1:1;\n"
                   "healthcheck b { ip 100.10.0.2; check tcp 127.0.0.1:1; }\n", "h.conf")
    assert [str(d) for d in info.value.diagnostics] == [
        "h.conf:5:1: 'healthcheck' block inside the 'healthcheck a' block opened at 3:1: is a '}' missing "
        "before this line?"]


def test_healthcheck_inside_a_neighbor_is_reported():
    with pytest.raises(ConfigError) as info:
        parse_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
                   "healthcheck a { ip 100.10.0.1; check tcp 127.0.0.1:1; }\n", "h.conf")
    assert "is a '}' missing before this line?" in str(info.value)


def test_the_unknown_keyword_hint_lists_healthcheck_at_top_level():
    with pytest.raises(ConfigError) as info:
        parse_text("healtcheck a { }\n", "h.conf")
    assert str(info.value) == "h.conf:1:1: unknown keyword 'healtcheck' at the top level (did you mean 'healthcheck'?)"
