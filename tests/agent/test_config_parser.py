"""The config language: every keyword, defaults, templates, processes, api, listen."""

from __future__ import annotations

import pytest

from fleetbgp.config import (
    Api,
    Capabilities,
    ConfigError,
    MessageFlags,
    Secret,
    load,
    parse_text,
)
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC, IPV6_UNICAST

HEAD = "local-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"


def neighbor(body: str = "", head: str = HEAD, addr: str = "192.0.2.1", extra: str = ""):
    cfg = parse_text(f"neighbor {addr} {{\n{head}{body}\n}}\n{extra}", "t.conf")
    assert len(cfg.neighbors) == 1
    return cfg.neighbors[0]


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "t.conf")
    return [str(d) for d in info.value.diagnostics]


# -- syntax --------------------------------------------------------------------------------------


def test_minimal_neighbor_and_defaults():
    n = neighbor()
    assert n.peer_address == "192.0.2.1"
    assert (n.local_as, n.peer_as, n.router_id) == (65001, 65000, "192.0.2.2")
    assert n.local_address is None
    assert n.hold_time == 180
    assert n.passive is False
    assert n.listen_port is None
    assert n.connect_port is None  # the agent default: 179, or exabgp.tcp.port
    assert n.description == ""
    assert n.md5_password is None and n.md5_base64 is False and n.md5_ip is None
    assert n.outgoing_ttl is None and n.incoming_ttl is None
    assert n.group_updates is True
    assert n.adj_rib_in is False
    assert n.families == (IPV4_UNICAST, IPV6_UNICAST)
    assert n.capabilities == Capabilities(graceful_restart=None, route_refresh=True, asn4=True,
                                          extended_message=False)
    assert n.static_routes == {}
    assert n.api == ()
    assert n.source.line == 1 and n.source.col == 1


def test_whole_config_on_one_line_and_comments_everywhere():
    cfg = parse_text("# top comment\nneighbor 192.0.2.1 { local-as 1; peer-as 2; # trailing\n"
                     "router-id 1.1.1.1; family { ipv4 unicast; } } # done\n", "x")
    n = cfg.neighbors[0]
    assert (n.local_as, n.peer_as, n.families) == (1, 2, (IPV4_UNICAST,))


def test_brace_on_its_own_line_is_accepted():
    cfg = parse_text("neighbor 192.0.2.1\n{\nlocal-as 1;\npeer-as 2;\nrouter-id 1.1.1.1;\n}\n", "x")
    assert cfg.neighbors[0].local_as == 1


def test_quotes_single_and_double_with_escapes():
    n = neighbor('description "edge \\"router\\" #1; primary";')
    assert n.description == 'edge "router" #1; primary'
    n = neighbor("description 'it''s';")
    assert n.description == "it s"  # two adjacent strings, joined by a space
    n = neighbor("description plain words here;")
    assert n.description == "plain words here"


def test_list_may_span_lines():
    n = neighbor("static {\nroute 10.0.0.0/24 next-hop self community [\n65000:1\n65000:2\n];\n}")
    attrs = n.static_routes[IPV4_UNICAST][bytes([24, 10, 0, 0])]
    assert attrs.communities == (0xFDE80001, 0xFDE80002)


def test_crlf_line_endings():
    cfg = parse_text("neighbor 192.0.2.1 {\r\nlocal-as 1;\r\npeer-as 2;\r\nrouter-id 1.1.1.1;\r\n}\r\n", "x")
    assert cfg.neighbors[0].peer_as == 2


def test_empty_config_is_valid():
    cfg = parse_text("# nothing\n\n", "x")
    assert cfg.neighbors == [] and cfg.processes == {}


# -- neighbor keywords -------------------------------------------------------------------------


def test_addresses_are_normalised():
    n = neighbor(addr="2001:DB8::0:1", head="local-as 1;\npeer-as 2;\nrouter-id 1.1.1.1;\n"
                                           "local-address 2001:db8:0::2;")
    assert n.peer_address == "2001:db8::1"
    assert n.local_address == "2001:db8::2"


def test_router_id_defaults_to_ipv4_local_address():
    n = neighbor(head="local-as 1;\npeer-as 2;\nlocal-address 192.0.2.2;\n")
    assert n.router_id == "192.0.2.2"


def test_local_address_auto_means_kernel_chooses():
    assert neighbor("local-address auto;").local_address is None


@pytest.mark.parametrize(("text", "value"), [("4200000000", 4200000000), ("1.10", 65546), ("1", 1)])
def test_as_numbers(text, value):
    assert neighbor(head=f"local-as {text};\npeer-as {text};\nrouter-id 1.1.1.1;\n").local_as == value


@pytest.mark.parametrize("value", [0, 3, 90, 65535])
def test_hold_time(value):
    assert neighbor(f"hold-time {value};").hold_time == value


@pytest.mark.parametrize(("text", "value"), [
    ("passive;", True), ("passive true;", True), ("passive false;", False),
    ("passive enable;", True), ("passive disable;", False),
])
def test_passive(text, value):
    assert neighbor(text).passive is value


def test_ports():
    n = neighbor("listen 1790;\nconnect 1791;")
    assert (n.listen_port, n.connect_port) == (1790, 1791)


def test_md5_password_literal_and_base64():
    n = neighbor('md5-password "s3cret";')
    assert isinstance(n.md5_password, Secret)
    assert n.md5_password.reveal() == "s3cret"
    n = neighbor("md5-password 'czNjcmV0';\nmd5-base64;")
    assert n.md5_base64 is True and n.md5_password.reveal() == "czNjcmV0"
    n = neighbor("md5-password bare;\nmd5-base64 false;\nmd5-ip 192.0.2.9;")
    assert (n.md5_password.reveal(), n.md5_base64, n.md5_ip) == ("bare", False, "192.0.2.9")


@pytest.mark.parametrize("form", ["env['BGP_PW']", 'env["BGP_PW"]', "env[BGP_PW]", "env [ 'BGP_PW' ]"])
def test_md5_password_from_environment(monkeypatch, form):
    monkeypatch.setenv("BGP_PW", "from-env")
    assert neighbor(f"md5-password {form};").md5_password.reveal() == "from-env"


def test_ttls():
    n = neighbor("outgoing-ttl 2;\nincoming-ttl 254;")
    assert (n.outgoing_ttl, n.incoming_ttl) == (2, 254)
    assert neighbor("ttl-security 255;").incoming_ttl == 255


@pytest.mark.parametrize(("text", "field", "value"), [
    ("group-updates false;", "group_updates", False),
    ("group-updates;", "group_updates", True),
    ("adj-rib-in;", "adj_rib_in", True),
    ("adj-rib-in false;", "adj_rib_in", False),
    ("adj-rib-out false;", "adj_rib_out", False),
    ("manual-eor true;", "manual_eor", True),
    ("auto-flush false;", "auto_flush", False),
    ("rate-limit 100;", "rate_limit", 100),
    ("rate-limit disable;", "rate_limit", None),
    ("host-name edge1;", "host_name", "edge1"),
    ("domain-name 'example.net';", "domain_name", "example.net"),
    ("source-interface eth0;", "source_interface", "eth0"),
    ('description "anycast edge";', "description", "anycast edge"),
])
def test_other_settings(text, field, value):
    assert getattr(neighbor(text), field) == value


# -- family and capability ----------------------------------------------------------------------


def test_families():
    n = neighbor("family {\nipv4 unicast;\nipv6 unicast;\nipv4 flow;\nipv6 flowspec;\n}")
    assert n.families == (IPV4_UNICAST, IPV6_UNICAST, IPV4_FLOWSPEC, IPV6_FLOWSPEC)
    assert neighbor("family { ipv4 flowspec; }").families == (IPV4_FLOWSPEC,)


def test_capabilities():
    n = neighbor("capability {\ngraceful-restart 120;\nroute-refresh disable;\nasn4 enable;\n"
                 "extended-message;\n}")
    assert n.capabilities == Capabilities(graceful_restart=120, route_refresh=False, asn4=True,
                                          extended_message=True)


def test_graceful_restart_without_time_uses_hold_time():
    assert neighbor("hold-time 90;\ncapability { graceful-restart; }").capabilities.graceful_restart == 90
    assert neighbor("capability { graceful-restart; }").capabilities.graceful_restart == 180
    assert neighbor("capability { graceful-restart disable; }").capabilities.graceful_restart is None
    assert neighbor("capability { asn4 disable; }").capabilities.asn4 is False


# -- routes ----------------------------------------------------------------------------------------


def test_static_routes_compact_storage():
    n = neighbor("static {\nroute 10.0.0.0/24 next-hop self med 100;\n"
                 "route 10.0.1.0/24 next-hop self med 100;\nroute 2001:db8::/48 next-hop 2001:db8::1;\n}")
    v4 = n.static_routes[IPV4_UNICAST]
    assert list(v4) == [bytes([24, 10, 0, 0]), bytes([24, 10, 0, 1])]
    a, b = v4.values()
    assert a is b and a == Attributes.make(next_hop="self", med=100)
    assert n.static_routes[IPV6_UNICAST] == {
        bytes([48, 0x20, 0x01, 0x0D, 0xB8, 0, 0]): Attributes.make(next_hop="2001:db8::1")}
    assert n.route_count() == 3


def test_route_directly_in_neighbor_exabgp3_style():
    n = neighbor("route 10.0.0.0/24 next-hop self;")
    assert bytes([24, 10, 0, 0]) in n.static_routes[IPV4_UNICAST]


def test_route_block_form():
    n = neighbor("static {\nroute 10.0.0.0/24 {\nnext-hop 192.0.2.1;\nmed 7;\n"
                 "community [ 65000:1 ];\n}\n}")
    a = n.static_routes[IPV4_UNICAST][bytes([24, 10, 0, 0])]
    assert (a.next_hop, a.med, a.communities) == ("192.0.2.1", 7, (0xFDE80001,))


def test_announce_block_exabgp4_style():
    n = neighbor("announce {\nipv4 {\nunicast 10.0.0.0/24 next-hop self;\n}\n"
                 "ipv6 {\nunicast 2001:db8::/32 next-hop 2001:db8::1;\n}\n}")
    assert n.route_count() == 2


def test_same_prefix_twice_later_wins():
    n = neighbor("static {\nroute 10.0.0.0/24 next-hop self med 1;\nroute 10.0.0.0/24 next-hop self med 2;\n}")
    assert n.static_routes[IPV4_UNICAST][bytes([24, 10, 0, 0])].med == 2


# -- api and processes ---------------------------------------------------------------------------


PROC = "process hc {\nrun /usr/bin/hc --flag 'two words';\nencoder json;\n}\n"


def test_process_block():
    cfg = parse_text("process hc {\nrun /usr/bin/hc --flag 'two words';\nencoder json;\n"
                     "working-directory /var/lib/fleetbgp;\nenv {\nA = '1';\nB=2;\nC '3';\n}\n"
                     "respawn false;\nwithdraw-on-exit 5;\n}\n", "x")
    p = cfg.processes["hc"]
    assert p.run == ("/usr/bin/hc", "--flag", "two words")
    assert p.encoder == "json"
    assert p.working_directory == "/var/lib/fleetbgp"
    assert p.env == {"A": "1", "B": "2", "C": "3"}
    assert p.respawn is False
    assert p.withdraw_on_exit == 5


def test_process_defaults():
    p = parse_text("process hc { run /bin/hc; }", "x").processes["hc"]
    assert (p.encoder, p.respawn, p.withdraw_on_exit, p.env, p.working_directory) == (
        "text", True, None, {}, None)
    assert parse_text("process hc { run /bin/hc; withdraw-on-exit; }", "x").processes["hc"].withdraw_on_exit == 0


def test_api_block_full():
    n = neighbor("api monitor {\nprocesses [ hc ];\nneighbor-changes;\nnegotiated;\nfsm false;\n"
                 "receive {\nparsed;\nupdate;\nnotification;\nopen;\nkeepalive;\nrefresh;\n}\n"
                 "send {\npackets;\n}\n}", extra=PROC)
    assert n.api == (Api(name="monitor", processes=("hc",), neighbor_changes=True, negotiated=True,
                         receive=MessageFlags(parsed=True, update=True, notification=True, open=True,
                                              keepalive=True, refresh=True),
                         send=MessageFlags(packets=True)),)


def test_api_updates_spelling_and_several_api_blocks():
    n = neighbor("api { processes [ hc ]; receive { updates; } }\napi { processes hc; }", extra=PROC)
    assert n.api[0].receive.update is True
    assert len(n.api) == 2


def test_process_level_receive_applies_through_subscriptions():
    cfg = parse_text(PROC.replace("encoder json;", "encoder json; receive { parsed; updates; "
                                  "neighbor-changes; }") +
                     f"neighbor 192.0.2.1 {{ {HEAD} api {{ processes [ hc ]; }} }}", "x")
    sub = cfg.subscriptions(cfg.neighbors[0])["hc"]
    assert sub.neighbor_changes and sub.receive.parsed and sub.receive.update
    assert not sub.receive.notification


def test_processes_match():
    n = neighbor("api { processes-match [ '^hc' ]; }")
    assert n.api[0].processes_match == ("^hc",)


# -- templates ---------------------------------------------------------------------------------


TEMPLATES = """
template {
    neighbor base {
        local-as 65001;
        hold-time 90;
        description "from base";
        family { ipv4 unicast; }
        capability { graceful-restart 60; route-refresh disable; }
        static { route 198.51.100.0/24 next-hop self; }
    }
    neighbor other {
        hold-time 30;
        peer-as 65100;
        capability { graceful-restart 10; }
    }
}
"""


def test_inherit_fills_settings():
    cfg = parse_text(TEMPLATES + "neighbor 192.0.2.1 { inherit base; peer-as 65000; router-id 1.1.1.1; }",
                     "x")
    n = cfg.neighbors[0]
    assert (n.local_as, n.hold_time, n.description) == (65001, 90, "from base")
    assert n.families == (IPV4_UNICAST,)
    assert n.capabilities.graceful_restart == 60 and n.capabilities.route_refresh is False
    assert n.route_count() == 1
    assert n.inherit == ("base",)


def test_later_template_overrides_earlier_and_neighbor_wins():
    cfg = parse_text(TEMPLATES + "neighbor 192.0.2.1 { inherit base; inherit other; router-id 1.1.1.1; "
                     "description mine; }\n"
                     "neighbor 192.0.2.3 { inherit [ other base ]; router-id 1.1.1.1; hold-time 240; }", "x")
    a, b = cfg.neighbors
    assert a.hold_time == 30 and a.peer_as == 65100 and a.description == "mine"
    assert a.capabilities.graceful_restart == 10 and a.capabilities.route_refresh is False
    assert b.hold_time == 240 and b.capabilities.graceful_restart == 60


def test_neighbor_routes_add_to_template_routes_without_changing_the_template():
    cfg = parse_text(TEMPLATES + "neighbor 192.0.2.1 { inherit base; peer-as 2; router-id 1.1.1.1; "
                     "static { route 10.0.0.0/8 next-hop self; route 198.51.100.0/24 next-hop self med 9; } }\n"
                     "neighbor 192.0.2.3 { inherit base; peer-as 2; router-id 1.1.1.1; }", "x")
    a, b = cfg.neighbors
    assert a.route_count() == 2
    assert a.static_routes[IPV4_UNICAST][bytes([24, 198, 51, 100])].med == 9
    assert b.route_count() == 1
    assert b.static_routes[IPV4_UNICAST][bytes([24, 198, 51, 100])].med is None


def test_template_defined_after_use():
    cfg = parse_text("neighbor 192.0.2.1 { inherit t; router-id 1.1.1.1; }\n"
                     "template { neighbor t { local-as 1; peer-as 2; } }", "x")
    assert cfg.neighbors[0].peer_as == 2


# -- listen --------------------------------------------------------------------------------------


def test_listen_default_is_any_on_179_plus_neighbor_ports():
    assert parse_text("", "x").listen == [("0.0.0.0", 179), ("::", 179)]
    cfg = parse_text(f"neighbor 192.0.2.1 {{ {HEAD} listen 1790; }}", "x")
    assert cfg.listen == [("0.0.0.0", 179), ("::", 179), ("0.0.0.0", 1790), ("::", 1790)]


def test_top_level_listen_statements():
    cfg = parse_text("listen 192.0.2.2;\nlisten 2001:db8::2 1179;\n", "x")
    assert cfg.listen == [("192.0.2.2", 179), ("2001:db8::2", 1179)]


# -- keys for reload ---------------------------------------------------------------------------------


def test_settings_key_ignores_routes_and_description_but_not_session_settings():
    a = neighbor('description one;\nmd5-password "x";\nroute 10.0.0.0/8 next-hop self;')
    b = neighbor('description two;\nmd5-password "x";\nadj-rib-in;\ngroup-updates false;')
    assert a.settings_key() == b.settings_key()
    assert hash(a.settings_key()) == hash(b.settings_key())
    for change in ('md5-password "y";', "hold-time 90;", "passive;", "ttl-security 255;", "connect 1179;",
                   "family { ipv4 unicast; }", "capability { graceful-restart 5; }", "local-address 192.0.2.2;"):
        assert neighbor(change).settings_key() != neighbor().settings_key(), change


# -- files -------------------------------------------------------------------------------------------


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text(f"neighbor 192.0.2.1 {{ {HEAD} }}\n")
    cfg = load(path)
    assert cfg.path == str(path) and cfg.neighbors[0].source.file == str(path)


def test_load_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.conf")
    assert str(info.value) == f"{tmp_path / 'nope.conf'}: cannot read the config file: No such file or directory"


def test_load_directory_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert "cannot read the config file" in str(info.value)


def test_load_invalid_utf8_names_the_place(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_bytes(b"neighbor 192.0.2.1 {\n description \xff;\n}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}:2:14: the file is not valid UTF-8"


def test_a_relative_program_is_read_from_the_config_files_directory(tmp_path):
    """As ExaBGP does: `run ./run/check.py` next to the config works from any working directory."""
    (tmp_path / "local-check").write_text("#!/bin/sh\n")
    text = """
process rel { run ./run/check.py --fast; }
process here { run local-check; }
process path { run python3 -u x.py; }
process abs { run /usr/bin/env true; }
"""
    conf = parse_text(text, str(tmp_path / "fleetbgp.conf"))
    runs = {name: proc.run for name, proc in conf.processes.items()}
    assert runs == {"rel": (str(tmp_path / "run" / "check.py"), "--fast"),
                    "here": (str(tmp_path / "local-check"),),
                    "path": ("python3", "-u", "x.py"),
                    "abs": ("/usr/bin/env", "true")}


def test_software_version_capability_and_host_name_reach_the_open():
    text = """
neighbor 127.0.0.1 { router-id 10.0.0.2; local-as 65533; peer-as 65533;
  host-name my-host-name; domain-name my-domain-name.com;
  capability { software-version enable; } }
"""
    from fleetbgp.session import Peer

    n = parse_text(text, "f.conf").neighbors[0]
    assert n.capabilities.software_version is True
    caps = Peer(n).local_open().capabilities
    assert caps.fqdn == ("my-host-name", "my-domain-name.com")
    assert caps.software_version and caps.software_version.startswith("fleetbgp/")
    plain = Peer(parse_text(text.replace("host-name my-host-name; domain-name my-domain-name.com;", "")
                            .replace("capability { software-version enable; }", ""), "f.conf").neighbors[0])
    assert (plain.local_open().capabilities.fqdn, plain.local_open().capabilities.software_version) == (None, None)


def test_host_and_domain_names_must_fit_in_the_open():
    text = f"neighbor 127.0.0.1 {{ router-id 10.0.0.2; local-as 1; peer-as 1; host-name {'h' * 100};\n" \
           f"  domain-name {'d' * 100}; }}\n"
    with pytest.raises(ConfigError, match=r"f.conf:2:3: host-name and domain-name together are longer"):
        parse_text(text, "f.conf")
