"""Every error names FILE:LINE:COL, and every error in a file is reported, not only the first."""

from __future__ import annotations

import pytest

from fleetbgp.config import ConfigError, Diagnostic, parse_text

HEAD = "local-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "f.conf")
    return [str(d) for d in info.value.diagnostics]


def in_neighbor(body: str) -> list[str]:
    """Errors of `body`, placed from line 5 of a neighbor block (lines 2-4 are HEAD)."""
    return errors(f"neighbor 192.0.2.1 {{\n{HEAD}{body}\n}}\n")


def test_diagnostic_format_and_config_error_str():
    d = Diagnostic("a.conf", 3, 7, "boom")
    assert str(d) == "a.conf:3:7: boom"
    assert str(Diagnostic("a.conf", 0, 0, "unreadable")) == "a.conf: unreadable"
    err = ConfigError([d, Diagnostic("a.conf", 4, 1, "bang")])
    assert str(err) == "a.conf:3:7: boom\na.conf:4:1: bang"


# -- unknown keywords and did-you-mean -------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ("pasive;", "f.conf:5:1: unknown keyword 'pasive' in the neighbor block (did you mean 'passive'?)"),
    ("  hold-tme 90;", "f.conf:5:3: unknown keyword 'hold-tme' in the neighbor block (did you mean 'hold-time'?)"),
    ("family { ipv4 unicst; }", "f.conf:5:15: family 'ipv4 unicst' is not supported (supported: ipv4 unicast, "
                                "ipv6 unicast, ipv4 flow, ipv6 flow)"),
    ("family { ipv44 unicast; }", "f.conf:5:10: unknown family 'ipv44 unicast' (did you mean 'ipv4 unicast'?)"),
    ("capability { route-refesh; }", "f.conf:5:14: unknown keyword 'route-refesh' in the capability block "
                                     "(did you mean 'route-refresh'?)"),
    ("capability { add-path sned; }", "f.conf:5:23: add-path 'sned' is not a mode (did you mean 'send'?): "
                                      "add-path takes one of: send, receive, send/receive, disable"),
    ("capability { add-path receive/send; }", "f.conf:5:23: add-path 'receive/send' is not a mode (the "
                                              "option is send/receive): add-path takes one of: send, "
                                              "receive, send/receive, disable"),
    ("capability { add-path multi-session; }", "f.conf:5:23: add-path 'multi-session' is not a mode: "
                                               "add-path takes one of: send, receive, send/receive, disable"),
    ("capability { multi-session; }", "f.conf:5:14: capability 'multi-session' is not supported"),
    ("statik { }", "f.conf:5:1: unknown keyword 'statik' in the neighbor block (did you mean 'static'?)"),
    ("api { procesess [ a ]; }", "f.conf:5:7: unknown keyword 'procesess' in the api block "
                                 "(did you mean 'processes'?)"),
    ("flow { route x { } }", "f.conf:5:8: flow route x: no 'match { ... }' block (a rule without one "
                             "would match all traffic)"),
    ("static { rout 10.0.0.0/8 next-hop self; }",
     "f.conf:5:10: unknown keyword 'rout' in the static block (did you mean 'route'?)"),
    ("static { route 10.0.0.0/8 next-hop self comunity 1:1; }",
     "f.conf:5:41: unknown route attribute 'comunity' (did you mean 'community'?)"),
    ("family ipv4 unicast;", "f.conf:5:1: 'family' is a block: write family { ... }"),
    ("local-as { }", "f.conf:5:1: 'local-as' is a statement, not a block: end it with ';'"),
    ('"quoted";', "f.conf:5:1: unknown keyword a quoted string in the neighbor block"),
])
def test_unknown_keywords(body, expected):
    assert in_neighbor(body) == [expected]


def test_unknown_top_level_keyword():
    assert errors("neighbour 192.0.2.1 { }") == [
        "f.conf:1:1: unknown keyword 'neighbour' at the top level (did you mean 'neighbor'?)"]
    assert errors("local-as 1;") == [
        "f.conf:1:1: unknown keyword 'local-as' at the top level (it belongs inside a neighbor block)"]
    assert errors("group g { }") == [
        "f.conf:1:1: ExaBGP 3 'group' blocks are not supported: use template { neighbor NAME { ... } } "
        "and 'inherit NAME;' in each neighbor"]


def test_unknown_keyword_in_receive():
    assert errors(f"process a {{ run /bin/a; }}\nneighbor 192.0.2.1 {{\n{HEAD}"
                  "api { processes [ a ]; receive { parsd; } }\n}") == [
        "f.conf:6:34: unknown keyword 'parsd' in the receive block (did you mean 'parsed'?)"]


def test_unknown_keyword_in_process():
    assert errors("process p {\nrun /bin/p;\nencodr json;\n}") == [
        "f.conf:3:1: unknown keyword 'encodr' in the process block (did you mean 'encoder'?)"]


# -- values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ("router-id 300.1.1.1;", "f.conf:5:11: router-id '300.1.1.1' is not an IPv4 address"),
    ("router-id 0.0.0.0;", "f.conf:5:11: router-id 0.0.0.0 is not allowed (RFC 6286)"),
    ("local-address 192.0.2.256;", "f.conf:5:15: '192.0.2.256' is not an IP address"),
    ("local-address 2001:db8::1;", "f.conf:5:1: local-address 2001:db8::1 is IPv6 but the neighbor "
                                   "192.0.2.1 is IPv4"),
    ("md5-ip nope;", "f.conf:5:8: 'nope' is not an IP address"),
    ("hold-time 2;", "f.conf:5:11: hold-time 2 is not allowed: 0 (no keepalives) or 3..65535 seconds "
                     "(RFC 4271 4.2)"),
    ("hold-time 65536;", "f.conf:5:11: hold-time '65536': expected 0 or 3..65535 seconds"),
    ("hold-time -1;", "f.conf:5:11: hold-time '-1': expected 0 or 3..65535 seconds"),
    ("hold-time 90 120;", "f.conf:5:14: hold-time takes one value: 0 or 3..65535 seconds"),
    ("hold-time;", "f.conf:5:1: hold-time takes one value: 0 or 3..65535 seconds"),
    ("passive maybe;", "f.conf:5:9: passive takes no value, or one of true/false (enable/disable)"),
    ("listen 0;", "f.conf:5:8: listen '0': expected a TCP port 1..65535"),
    ("connect 65536;", "f.conf:5:9: connect '65536': expected a TCP port 1..65535"),
    ("outgoing-ttl 0;", "f.conf:5:14: outgoing-ttl '0': expected a TTL 1..255"),
    ("incoming-ttl 256;", "f.conf:5:14: incoming-ttl '256': expected a TTL 1..255"),
    ("ttl-security 300;", "f.conf:5:14: ttl-security '300': expected a TTL 1..255"),
    ("description;", "f.conf:5:1: description needs a value"),
    ("capability { graceful-restart 5000; }",
     "f.conf:5:31: graceful-restart '5000': expected 0..4095 seconds"),
    ("hold-time 90;\nhold-time 30;", "f.conf:6:1: 'hold-time' is set twice (first at 5:1)"),
    ("incoming-ttl 255;\nttl-security 255;", "f.conf:6:1: 'ttl-security' repeats 'incoming-ttl' (first at 5:1)"),
    ("family { ipv4 unicast; }\nfamily { ipv6 unicast; }", "f.conf:6:1: 'family' is given twice (first at 5:1)"),
    ("family { ipv4 unicast; ipv4 unicast; }", "f.conf:5:24: family ipv4 unicast is listed twice"),
    ("family { }", "f.conf:5:1: the family block enables no family"),
    ("family { all; }", "f.conf:5:10: family 'all' is not supported: list the families, from: ipv4 unicast, "
                        "ipv6 unicast, ipv4 flow, ipv6 flow"),
    ("family { ipv4 multicast; }", "f.conf:5:15: family 'ipv4 multicast' is not supported (supported: "
                                   "ipv4 unicast, ipv6 unicast, ipv4 flow, ipv6 flow)"),
])
def test_bad_values(body, expected):
    assert in_neighbor(body) == [expected]


@pytest.mark.parametrize(("head", "expected"), [
    ("local-as 0;\npeer-as 1;\nrouter-id 1.1.1.1;", "f.conf:2:10: local-as '0' is not an AS number: expected "
                                                    "1..4294967295"),
    ("local-as 4294967296;\npeer-as 1;\nrouter-id 1.1.1.1;",
     "f.conf:2:10: local-as '4294967296' is not an AS number: expected 1..4294967295"),
    ("local-as 1;\npeer-as abc;\nrouter-id 1.1.1.1;",
     "f.conf:3:9: peer-as 'abc' is not an AS number: expected 1..4294967295"),
    ("local-as 1;\npeer-as auto;\nrouter-id 1.1.1.1;", "f.conf:3:9: peer-as auto is not supported: give the "
                                                       "AS number"),
])
def test_as_out_of_range_is_reported_once(head, expected):
    assert errors(f"neighbor 192.0.2.1 {{\n{head}\n}}\n") == [expected]


# -- required settings ------------------------------------------------------------------------------


def test_missing_local_as_peer_as_and_router_id():
    assert errors("\nneighbor 2001:db8::1 {\n  local-address 2001:db8::2;\n}\n") == [
        "f.conf:2:1: neighbor 2001:db8::1 has no 'local-as'",
        "f.conf:2:1: neighbor 2001:db8::1 has no 'peer-as'",
        "f.conf:2:1: neighbor 2001:db8::1 has no 'router-id' (it defaults to local-address only when that "
        "is an IPv4 address)",
    ]


def test_bad_neighbor_address():
    assert errors("neighbor 192.0.2 {\n}\n") == ["f.conf:1:10: '192.0.2' is not an IP address"]
    assert errors("neighbor 10.0.0.0/24 {\n}\n") == [
        "f.conf:1:10: neighbor 10.0.0.0/24: address ranges are not supported, give one address"]


def test_duplicate_neighbor():
    one = f"neighbor 192.0.2.1 {{ {HEAD.replace(chr(10), ' ')}}}\n"
    assert errors(one + "\n" + one.replace("192.0.2.1", "192.0.2.01".replace("01", "1"))) == [
        "f.conf:3:1: duplicate neighbor 192.0.2.1 (first defined at 1:1)"]


def test_duplicate_neighbor_in_other_spelling_of_the_same_ipv6_address():
    head = HEAD.replace("\n", " ")
    assert errors(f"neighbor 2001:db8::1 {{ {head}}}\nneighbor 2001:DB8:0::1 {{ {head}}}\n") == [
        "f.conf:2:1: duplicate neighbor 2001:db8::1 (first defined at 1:1)"]


# -- routes ------------------------------------------------------------------------------------------


def test_route_errors_point_at_the_token():
    assert in_neighbor("static {\n"
                       "    route 10.0.0.1/24 next-hop self;\n"
                       "    route 10.0.1.0/24 med 100;\n"
                       "    route 10.0.2.0/24 next-hop self med high;\n"
                       "    route 10.0.3.0/24 next-hop self community [ 65000:1 65536:1 ];\n"
                       "}") == [
        "f.conf:6:11: '10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)",
        "f.conf:7:11: the route has no next-hop (add 'next-hop self' or 'next-hop ADDRESS')",
        "f.conf:8:41: med 'high': expected a number 0..4294967295",
        "f.conf:9:57: community '65536:1': expected ASN:VALUE, both 0..65535",
    ]


def test_route_error_in_a_multi_line_list():
    assert in_neighbor("route 10.0.0.0/24 next-hop self community [\n  65000:1\n  bad:1\n];") == [
        "f.conf:7:3: community 'bad:1': expected ASN:VALUE, both 0..65535"]


def test_route_block_errors_point_into_the_block():
    assert in_neighbor("static {\nroute 10.0.0.0/24 {\nnext-hop self;\nmed x;\n}\n}") == [
        "f.conf:8:5: med 'x': expected a number 0..4294967295"]
    assert in_neighbor("static {\nroute 10.0.0.1/24 {\nnext-hop self;\n}\n}") == [
        "f.conf:6:7: '10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)"]
    assert in_neighbor("static {\nroute 10.0.0.0/24 {\nmed 1;\n}\n}") == [
        "f.conf:6:7: the route has no next-hop (add 'next-hop self' or 'next-hop ADDRESS')"]


def test_route_of_a_family_the_neighbor_does_not_enable():
    assert in_neighbor("family { ipv4 unicast; }\nstatic {\nroute 10.0.0.0/8 next-hop self;\n"
                       "route 2001:db8::/32 next-hop 2001:db8::1;\n}") == [
        "f.conf:8:7: neighbor 192.0.2.1: this ipv6 unicast route needs 'family { ipv6 unicast; }' (the "
        "neighbor enables ipv4 unicast)"]


def test_announce_block_family_mismatch():
    assert in_neighbor("announce { ipv4 { unicast 2001:db8::/32 next-hop self; } }") == [
        "f.conf:5:27: 2001:db8::/32 is not an IPv4 prefix"]


# -- templates and processes -----------------------------------------------------------------------


def test_unknown_template_and_process():
    text = ("template { neighbor base { local-as 1; } }\n"
            "process healthcheck { run /bin/hc; }\n"
            "neighbor 192.0.2.1 {\n"
            "  inherit bsae;\n"
            "  peer-as 2; local-as 1; router-id 1.1.1.1;\n"
            "  api { processes [ healthchek other ]; }\n"
            "}\n")
    assert errors(text) == [
        "f.conf:4:11: unknown template 'bsae' (did you mean 'base'?)",
        "f.conf:6:21: unknown process 'healthchek' (did you mean 'healthcheck'?)",
        "f.conf:6:32: unknown process 'other' (processes: healthcheck)",
    ]


def test_unknown_template_when_none_exist():
    assert errors(f"neighbor 192.0.2.1 {{\n{HEAD}inherit t;\n}}") == [
        "f.conf:5:9: unknown template 't' (templates: none is defined)"]


def test_duplicate_template_and_process():
    assert errors("template {\n neighbor a { }\n neighbor a { }\n}\n"
                  "process p { run /bin/p; }\nprocess p { run /bin/q; }\n") == [
        "f.conf:3:11: template 'a' is already defined at 2:2",
        "f.conf:6:1: process 'p' is already defined at 5:1",
    ]


def test_template_cannot_inherit():
    assert errors("template { neighbor a { inherit b; } }") == [
        "f.conf:1:25: a template cannot inherit another template"]


def test_process_errors():
    assert errors("process p {\nencoder xml;\nrun;\nenv { 1BAD = x; }\n}\n") == [
        "f.conf:1:1: process p has no 'run' command",
        "f.conf:2:9: encoder 'xml': expected text or json",
        "f.conf:3:1: run needs a command: run /path/to/program ARGS...;",
        "f.conf:4:7: env: '1BAD' is not a valid environment variable name",
    ]


def test_api_without_processes():
    assert in_neighbor("api { neighbor-changes; }") == [
        "f.conf:5:1: the api block names no process: add processes [ NAME ];"]


def test_listen_errors():
    assert errors("listen 1790;\nlisten 0.0.0.0 0;\nlisten 0.0.0.0;\nlisten 0.0.0.0 179;\n") == [
        "f.conf:1:8: '1790' is not an IP address",
        "f.conf:2:16: listen '0': expected a TCP port 1..65535",
        "f.conf:4:1: listen 0.0.0.0 179 is given twice",
    ]
    assert errors(f"listen 0.0.0.0;\nneighbor 192.0.2.1 {{\n{HEAD}listen 1790;\n}}") == [
        "f.conf:2:1: neighbor 192.0.2.1 has 'listen 1790', but no top-level listen statement uses port 1790"]


# -- md5 ---------------------------------------------------------------------------------------------


def test_md5_missing_env_var_names_the_variable(monkeypatch):
    monkeypatch.delenv("FLEETBGP_TEST_NOPE", raising=False)
    assert in_neighbor("md5-password env['FLEETBGP_TEST_NOPE'];") == [
        "f.conf:5:14: md5-password: environment variable FLEETBGP_TEST_NOPE is not set"]


def test_md5_empty_env_var(monkeypatch):
    monkeypatch.setenv("FLEETBGP_TEST_EMPTY", "")
    assert in_neighbor("md5-password env['FLEETBGP_TEST_EMPTY'];") == [
        "f.conf:5:14: md5-password: environment variable FLEETBGP_TEST_EMPTY is empty"]


def test_md5_syntax_errors():
    assert in_neighbor("md5-password;") == [
        "f.conf:5:1: md5-password takes one value: a quoted string, or env['VARIABLE']"]
    assert in_neighbor("md5-password a b;") == [
        "f.conf:5:1: md5-password takes one value: a quoted string, or env['VARIABLE']"]
    assert in_neighbor('md5-password "";') == ["f.conf:5:14: md5-password is empty"]
    assert in_neighbor("md5-password env['1X'];") == [
        "f.conf:5:18: md5-password env[...]: not a valid environment variable name"]
    assert in_neighbor("md5-password '!!notbase64';\nmd5-base64;") == [
        "f.conf:5:1: md5-password is not valid base64 (md5-base64 is set)"]
    assert in_neighbor(f"md5-password '{'x' * 81}';") == [
        "f.conf:5:1: md5-password is longer than 80 bytes, the kernel's limit"]


# -- structure: braces and semicolons ------------------------------------------------------------------


def test_missing_semicolon():
    assert in_neighbor("hold-time 90\npassive;") == [
        "f.conf:5:13: missing ';' at the end of the 'hold-time' statement"]


def test_missing_semicolon_before_closing_brace():
    assert errors("neighbor 192.0.2.1 {\nlocal-as 1; peer-as 2; router-id 1.1.1.1; family { ipv4 unicast }\n}") == [
        "f.conf:2:64: missing ';' at the end of the 'ipv4' statement"]


def test_missing_semicolon_at_end_of_file():
    assert errors("listen 0.0.0.0") == ["f.conf:1:15: missing ';' at the end of the 'listen' statement"]


def test_unclosed_block_says_where_it_opened():
    assert errors(f"neighbor 192.0.2.1 {{\n{HEAD}static {{\nroute 10.0.0.0/8 next-hop self;\n") == [
        "f.conf:6:32: end of file inside the 'static' block opened at 5:1: missing '}'",
        "f.conf:6:32: end of file inside the 'neighbor 192.0.2.1' block opened at 1:1: missing '}'",
    ]


def test_missing_closing_brace_before_next_neighbor_recovers():
    text = (f"neighbor 192.0.2.1 {{\n{HEAD}\n"
            f"neighbor 192.0.2.3 {{\n{HEAD}}}\n")
    assert errors(text) == [
        "f.conf:6:1: 'neighbor' block inside the 'neighbor 192.0.2.1' block opened at 1:1: is a '}' "
        "missing before this line?"]


def test_extra_closing_brace():
    assert errors(f"neighbor 192.0.2.1 {{\n{HEAD}}}\n}}\n") == [
        "f.conf:6:1: unexpected '}': no block is open here"]


def test_unterminated_string():
    assert in_neighbor('description "oops;') == ['f.conf:5:13: string opened with " is not closed on this line']


def test_brace_without_name():
    assert errors("{ }") == ["f.conf:1:1: '{' without a block name before it"]


def test_every_error_is_reported_sorted_by_position():
    text = ("neighbor 192.0.2.1 {\n"
            "  local-as 0;\n"
            "  peer-as 65000;\n"
            "  router-id 192.0.2.2;\n"
            "  hold-time 1;\n"
            "  ttl-security 0;\n"
            "  frobnicate;\n"
            "}\n"
            "neighbor 192.0.2.1 { }\n"
            "process p { }\n")
    assert errors(text) == [
        "f.conf:2:12: local-as '0' is not an AS number: expected 1..4294967295",
        "f.conf:5:13: hold-time 1 is not allowed: 0 (no keepalives) or 3..65535 seconds (RFC 4271 4.2)",
        "f.conf:6:16: ttl-security '0': expected a TTL 1..255",
        "f.conf:7:3: unknown keyword 'frobnicate' in the neighbor block",
        "f.conf:9:1: duplicate neighbor 192.0.2.1 (first defined at 1:1)",
        "f.conf:10:1: process p has no 'run' command",
    ]
