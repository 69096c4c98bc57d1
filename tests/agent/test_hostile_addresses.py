"""IPv4 addresses with a leading-zero octet (010.0.0.1: octal 8 or decimal 10?) are refused wherever
an address is read from outside, with an error that says why: the config file (FILE:LINE:COL), API
lines, the control socket and the health-check program's options."""

from __future__ import annotations

from typing import Any

import pytest
from control_fakes import sample_speaker, served

from fleetbgp import literals
from fleetbgp.api.commands import CommandError, parse_command
from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.targets import split_url
from fleetbgp.control_client import ControlClient, ControlError
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.health import exabgp_program as program
from fleetbgp.settings import AgentSettings

HEAD = " local-as 65001;\n peer-as 65000;\n router-id 192.0.2.2;\n"


def config_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "f.conf")
    return [str(d) for d in info.value.diagnostics]


def neighbor(body: str, address: str = "192.0.2.1") -> str:
    """A neighbor block whose `body` is on line 5."""
    return f"neighbor {address} {{\n{HEAD}{body}\n}}\n"


def assert_leading_zero(errs: list[str], where: str, token: str) -> None:
    assert len(errs) == 1, errs
    assert errs[0].startswith(where), errs
    assert "leading zero" in errs[0] and token in errs[0], errs


# -- the helper ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3.04", "00.0.0.0", "::ffff:01.2.3.4", "010.0.0.0/8", "01.2.3.4%eth0"])
def test_leading_zero_is_named(text: str) -> None:
    assert "leading zero" in (literals.leading_zero(text) or "")


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "100.0.0.0/8", "2001:db8::1", "::ffff:1.2.3.4",
                                  "example.com", "10.0.0.0/08"])
def test_no_leading_zero(text: str) -> None:
    assert literals.leading_zero(text) is None


def test_prefix_to_nlri_refuses_leading_zero() -> None:
    with pytest.raises(ValueError, match="leading zero"):
        prefix_to_nlri("010.0.0.0/8")


# -- the config file -----------------------------------------------------------------------------------

def test_config_route_with_leading_zero_prefix() -> None:
    """Before: read silently as 10.0.0.0/8."""
    errs = config_errors(neighbor("route 010.0.0.0/8 next-hop 10.0.0.1;"))
    assert_leading_zero(errs, "f.conf:5:7:", "010.0.0.0/8")


def test_config_healthcheck_ip_with_leading_zero() -> None:
    """Before: ValueError out of the parser (a traceback; the agent did not start)."""
    errs = config_errors("healthcheck h {\n ip 01.2.3.4;\n check tcp 127.0.0.1:80;\n}\n")
    assert_leading_zero(errs, "f.conf:2:5:", "01.2.3.4")


@pytest.mark.parametrize(("text", "where", "token"), [
    (neighbor("route 10.0.0.0/8 next-hop 010.0.0.1;"), "f.conf:5:27:", "010.0.0.1"),
    (neighbor("static { route 10.1.0.0/16 next-hop self aggregator ( 65001:010.0.0.1 ); }"), "f.conf:5:", "010"),
    (neighbor(" local-address 010.0.0.1;"), "f.conf:5:16:", "010.0.0.1"),
    (neighbor("", address="010.0.0.1"), "f.conf:1:10:", "010.0.0.1"),
    (neighbor("").replace("router-id 192.0.2.2", "router-id 192.0.2.02"), "f.conf:4:12:", "192.0.2.02"),
    (neighbor(" family { ipv4 flow; }\n flow { route r { match { destination 010.0.0.0/8; } "
              "then { discard; } } }"), "f.conf:6:", "010.0.0.0/8"),
    ("listen 127.0.0.01;\n" + neighbor(""), "f.conf:1:8:", "127.0.0.01"),
    ("healthcheck h {\n ip 10.0.0.1;\n check tcp 010.0.0.1:80;\n}\n", "f.conf:3:12:", "010.0.0.1"),
    ("healthcheck h {\n ip 10.0.0.1;\n check http http://010.0.0.1/;\n}\n", "f.conf:3:13:", "010.0.0.1"),
    ("healthcheck h {\n ip 10.0.0.1;\n next-hop 010.0.0.1;\n check tcp 127.0.0.1:80;\n}\n", "f.conf:3:11:",
     "010.0.0.1"),
])
def test_config_addresses_with_leading_zero(text: str, where: str, token: str) -> None:
    assert_leading_zero(config_errors(text), where, token)


# -- API program lines --------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "announce route 010.0.0.0/8 next-hop self",
    "announce route 10.0.0.0/8 next-hop 010.0.0.1",
    "announce ipv4 unicast 010.0.0.0/8 next-hop self",
    "withdraw route 010.0.0.0/8",
    "announce attributes next-hop self nlri 10.1.0.0/16 010.0.0.0/8",
    "neighbor 010.0.0.1 announce route 10.0.0.0/8 next-hop self",
    "neighbor 10.0.0.1 local-ip 010.0.0.2 announce route 10.0.0.0/8 next-hop self",
    "neighbor 10.0.0.1 router-id 010.0.0.2 announce route 10.0.0.0/8 next-hop self",
    "show neighbor 010.0.0.1",
    "announce flow route destination 010.0.0.0/8 discard",
    "announce flow route { match { destination 10.0.0.0/8; } then { redirect 010.0.0.1:100; } }",
    "announce flow route { match { destination 10.0.0.0/8; } then { redirect-to-nexthop 010.0.0.1; } }",
])
def test_api_lines_with_leading_zero(line: str) -> None:
    with pytest.raises(CommandError, match="leading zero"):
        parse_command(line)


# -- the control socket -----------------------------------------------------------------------------

@pytest.mark.parametrize(("cmd", "args", "code"), [
    ("announce", {"route": "010.0.0.0/8 next-hop self"}, "invalid_route"),
    ("announce", {"prefix": "10.0.0.0/8", "next_hop": "010.0.0.1"}, "invalid_route"),
    ("withdraw", {"prefix": "010.0.0.0/8"}, "invalid_route"),
    ("routes", {"prefix": "010.0.0.0/8"}, "invalid_route"),
])
def test_control_requests_with_leading_zero(cmd: str, args: dict[str, Any], code: str) -> None:
    with served(sample_speaker()) as (_server, path, _lt), ControlClient(path, timeout=10) as client:
        with pytest.raises(ControlError) as info:
            client.call_args(cmd, args)
        assert info.value.code == code and "leading zero" in info.value.message, info.value


# -- the health-check program's options --------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--ip", "01.2.3.4"],
    ["--ip", "010.0.0.0/8"],
    ["--ip", "10.0.0.1", "--next-hop", "010.0.0.1"],
    ["--ip", "10.0.0.1", "--neighbor", "010.0.0.1"],
])
def test_healthcheck_program_refuses_leading_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        program.parse_args(argv)
    assert info.value.code == 2
    assert "leading zero" in capsys.readouterr().err


def test_split_url_refuses_a_leading_zero_host() -> None:
    """Such a host is no IP address to Python, so it was looked up as a name: getaddrinfo reads
    010.0.0.1 as octal, 8.0.0.1."""
    with pytest.raises(ValueError, match="leading zero"):
        split_url("http://010.0.0.1:8080/health")


def test_speaker_and_flow_neighbor_lists_name_the_leading_zero() -> None:
    """The control socket's `neighbor(s)` arguments go through Speaker.select and the flow rules'
    normalise_neighbors."""

    from fleetbgp.daemon import Speaker
    from fleetbgp.flows import normalise_neighbors

    config = parse_text(neighbor(""), "f.conf")
    settings = AgentSettings(control_socket=None, metrics_port=None, listen=())
    speaker = Speaker(config, settings)
    with pytest.raises(ValueError, match="leading zero"):
        speaker.select(["192.0.2.01"])
    with pytest.raises(ValueError, match="leading zero"):
        normalise_neighbors(["192.0.2.01"])


# -- IPv6 zones: ipaddress takes 'fe80::1%eth0' and forgets (or keeps, when printing) the zone -------

def test_a_route_prefix_with_a_zone_is_refused() -> None:
    # Found by make fuzz: `route 2001:db8::1%eth0/128` was read as 2001:db8::1/128, silently.
    for text in ("2001:db8::1%eth0/128", "2001:db8::1%eth0", "fe80::%1/64"):
        with pytest.raises(ValueError, match="no zone"):
            prefix_to_nlri(text)
    with pytest.raises(ConfigError, match=r"z\.conf:2:\d+: .*no zone"):
        parse_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
                   "static { route 2001:db8::1%eth0/128 next-hop self; } }\n", "z.conf")


def test_healthcheck_program_refuses_an_ip_with_a_zone(capsys: pytest.CaptureFixture[str]) -> None:
    # Found by make fuzz: `--ip '88:db8::100%1:db8- '` was taken, and printed into the announce line
    # with its zone (and its space), which the agent then refused on every announcement.
    with pytest.raises(SystemExit):
        program.parse_args(["--ip", "88:db8::100%1:db8- "])
    assert "no zone" in capsys.readouterr().err


def test_a_flowspec_prefix_with_a_zone_is_refused() -> None:
    with pytest.raises(CommandError, match="no zone"):
        parse_command("announce flow route { match { destination 2001:db8::%eth0/64; } then { discard; } }")
