"""Health-check options that were accepted and then broke every announcement or the program
(issue 13): 32-bit metrics and local preference, an increase that overflows the MED, a
deaggregation into millions of routes, NaN/infinite/negative seconds. Refused at parse time, in
`fleetbgp healthcheck` (command line and --config FILE) and in the config's healthcheck block."""

from __future__ import annotations

import ipaddress

import pytest

from fleetbgp.config import ConfigError, limits, parse_text
from fleetbgp.health import exabgp_program as program

IP = ["--ip", "100.10.0.1/32"]
TWO_IPS = ["--ip", "100.10.0.1/32", "--ip", "100.10.0.2/32"]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        program.parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


# -- 32-bit values -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [
    ("--up-metric", "4294967296"), ("--down-metric", "4294967296"), ("--disabled-metric", "4294967296"),
    ("--increase", "4294967296"), ("--local-preference", "4294967296"), ("--local-preference", "-2"),
    ("--up-metric", str(10 ** 30)),
])
def test_out_of_range_32_bit_options_are_refused(option, value, capsys):
    err = refused([*IP, option, value], capsys)
    assert option in err and "4294967295" in err, err


def test_32_bit_limits_themselves_are_accepted():
    o = program.parse_args([*IP, "--up-metric", "4294967295", "--down-metric", "4294967295",
                         "--disabled-metric", "4294967295", "--local-preference", "4294967295"])
    assert (o.up_metric, o.local_preference) == (4294967295, 4294967295)
    assert program.parse_args([*IP, "--local-preference", "-1"]).local_preference == -1  # ExaBGP's "unset"


@pytest.mark.parametrize("metric", ["--up-metric", "--down-metric", "--disabled-metric"])
def test_an_increase_that_overflows_the_med_is_refused(metric, capsys):
    err = refused([*TWO_IPS, metric, "4294967295", "--increase", "1"], capsys)
    assert metric in err and "--increase" in err and "4294967296" in err, err


def test_increase_overflow_counts_the_deaggregated_routes(capsys):
    err = refused(["--ip", "100.10.0.0/30", "--deaggregate-networks", "--up-metric", "4294967293",
                   "--increase", "1"], capsys)
    assert "--up-metric" in err and "4 routes" in err, err
    program.parse_args(["--ip", "100.10.0.0/30", "--deaggregate-networks", "--up-metric", "4294967292",
                     "--down-metric", "0", "--disabled-metric", "0", "--increase", "1"])


def test_the_down_metrics_do_not_matter_with_withdraw_on_down():
    o = program.parse_args([*TWO_IPS, "--down-metric", "4294967295", "--disabled-metric", "4294967295",
                         "--withdraw-on-down"])
    assert o.down_metric == 4294967295


# -- route count -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["10.0.0.0/8", "2001:db8::/64", "100.10.0.0/19"])
def test_deaggregating_into_too_many_routes_is_refused(net, capsys):
    err = refused(["--ip", net, "--deaggregate-networks", "--increase", "0"], capsys)
    assert "--deaggregate-networks" in err and str(limits.MAX_ROUTES) in err and net in err, err


def test_deaggregating_up_to_the_limit_works():
    o = program.parse_args(["--ip", "100.10.0.0/20", "--deaggregate-networks", "--increase", "0"])
    assert program.prepare_ips(o)
    assert len(o.ips) == limits.MAX_ROUTES == 4096


def test_too_many_ips_are_refused(capsys):
    argv = [a for i in range(limits.MAX_ROUTES + 1) for a in ("--ip", f"100.{64 + i // 256}.{i % 256}.1/32")]
    err = refused([*argv, "--increase", "0"], capsys)
    assert "--ip" in err and str(limits.MAX_ROUTES) in err, err


def test_too_many_loopback_addresses_are_refused_before_starting(monkeypatch):
    """Without --ip the addresses come from the loopback, known only when the program starts."""
    nets = [ipaddress.ip_network(f"100.{64 + i // 256}.{i % 256}.1/32") for i in range(limits.MAX_ROUTES + 1)]
    monkeypatch.setattr(program, "loopback_ips", lambda label, exact: nets)
    with pytest.raises(ValueError, match=str(limits.MAX_ROUTES)):
        program.prepare_ips(program.parse_args(["--increase", "0"]))
    assert program.main(["--increase", "0", "--silent"]) == program.EXIT_USAGE


def test_a_next_hop_of_the_other_family_than_the_loopback_addresses_is_refused_before_starting(monkeypatch):
    # Found by the fuzzer: `--next-hop 21::32` without --ip was accepted, and every IPv4 loopback
    # address's announcement was then refused by the agent.
    monkeypatch.setattr(program, "loopback_ips", lambda label, exact: [ipaddress.ip_network("100.10.0.1/32")])
    with pytest.raises(ValueError, match=r"--next-hop 21::32 is IPv6, but the loopback's address 100.10.0.1/32"):
        program.prepare_ips(program.parse_args(["--next-hop", "21::32"]))
    assert program.main(["--next-hop", "21::32", "--silent"]) == program.EXIT_USAGE


# -- seconds ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--interval", "--fast-interval", "--timeout", "--ack-timeout"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "-1", "1e12"])
def test_seconds_must_be_finite_and_in_range(option, value, capsys):
    err = refused([*IP, f"{option}={value}"], capsys)  # with '=': argparse takes '-inf' as a value
    assert option in err and repr(value) in err, err


def test_seconds_in_range_are_accepted():
    o = program.parse_args([*IP, "--interval", "0", "--fast-interval", "0.5", "--timeout", "0",
                         "--ack-timeout", "86400"])
    assert (o.interval, o.fast, o.timeout, o.ack_timeout) == (0.0, 0.5, 0.0, 86400.0)


def test_config_file_options_are_checked_the_same(tmp_path, capsys):
    conf = tmp_path / "hc.conf"
    conf.write_text("ip = 100.10.0.1/32\ninterval = nan\n")
    assert "--interval" in refused(["--config", str(conf)], capsys)
    conf.write_text("ip = 10.0.0.0/8\ndeaggregate-networks\n")
    assert str(limits.MAX_ROUTES) in refused(["--config", str(conf)], capsys)
    conf.write_text("ip = 100.10.0.1/32\nip = 100.10.0.2/32\nup-metric = 4294967295\n")
    assert "--increase" in refused(["--config", str(conf)], capsys)


# -- the config's healthcheck block ------------------------------------------------------------------

NEIGHBOR = "neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; }\n"


def block_errors(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(NEIGHBOR + "healthcheck web {\n" + body + "\n}\n", "h.conf")
    return [str(d) for d in info.value.diagnostics]


def test_block_increase_overflowing_the_med_is_an_error_at_the_increase():
    got = block_errors("ip [ 100.10.0.1 100.10.0.2 ];\ncheck tcp 127.0.0.1:80;\nup-metric 4294967295;\n"
                       "increase 1;")
    assert len(got) == 1 and got[0].startswith("h.conf:6:1: "), got
    assert "up-metric 4294967295" in got[0] and "4294967296" in got[0], got


def test_block_increase_overflow_without_an_increase_statement_points_at_the_metric():
    got = block_errors("ip [ 100.10.0.1 100.10.0.2 ];\ncheck tcp 127.0.0.1:80;\ndown-metric 4294967295;")
    assert len(got) == 1 and got[0].startswith("h.conf:5:1: ") and "down-metric" in got[0], got


def test_block_down_metric_does_not_matter_with_withdraw_on_down():
    hc = parse_text(NEIGHBOR + "healthcheck web {\nip [ 100.10.0.1 100.10.0.2 ];\ncheck tcp 127.0.0.1:80;\n"
                    "down-metric 4294967295;\nwithdraw-on-down;\n}\n", "h.conf").healthchecks["web"]
    assert hc.down_metric == 4294967295


def test_block_with_too_many_ips_is_an_error():
    ips = " ".join(f"100.{64 + i // 256}.{i % 256}.1" for i in range(limits.MAX_ROUTES + 1))
    got = block_errors(f"ip [ {ips} ];\ncheck tcp 127.0.0.1:80;\nincrease 0;")
    assert len(got) == 1 and got[0].startswith("h.conf:3:") and str(limits.MAX_ROUTES) in got[0], got
    assert f"100.80.0.1/32 is ip number {limits.MAX_ROUTES + 1}" in got[0], got


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e400"])
def test_block_seconds_refuse_nan_and_infinity(value):
    got = block_errors(f"ip 100.10.0.1;\ncheck tcp 127.0.0.1:80;\ninterval {value};")
    assert got == [f"h.conf:5:10: interval '{value}': expected seconds, 0.1..86400 (decimals allowed)"]


@pytest.mark.parametrize("argv", [["--ip", "10.0.0.1/32", "-N--"], ["--ip", "10.0.0.1/32", "--next-hop=--"]])
def test_an_option_glued_to_dashdash_is_a_missing_value(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Found by the fuzzer: argparse hands `-N--` over as [] with no type check, which crashed later.
    with pytest.raises(SystemExit) as exc:
        program.parse_args(argv)
    assert exc.value.code == 2
    assert "a value is missing" in capsys.readouterr().err
