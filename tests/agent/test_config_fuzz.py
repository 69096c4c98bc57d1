"""Garbage in: the parser answers with a Config or a ConfigError, never anything else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetbgp.config import Config, ConfigError, parse_text

WORDS = [
    "neighbor", "192.0.2.1", "2001:db8::1", "template", "inherit", "process", "run", "/bin/x", "encoder",
    "json", "text", "env", "=", "'v'", '"q"', "{", "}", ";", "[", "]", "(", ")", "#", "'", '"', "\n",
    "local-as", "peer-as", "router-id", "local-address", "hold-time", "65001", "0", "4294967296", "1.10",
    "family", "ipv4", "ipv6", "unicast", "flow", "capability", "graceful-restart", "static", "route",
    "10.0.0.0/24", "10.0.0.1/24", "next-hop", "self", "med", "community", "65000:1", "no-export",
    "extended-community", "target:1:2", "large-community", "1:2:3", "as-path", "aggregator",
    "65001:1.2.3.4", "api", "processes", "receive", "parsed", "updates", "send", "md5-password",
    "env['X']", "md5-base64", "ttl-security", "255", "listen", "connect", "announce", "unicast",
    "passive", "true", "auto", ",", "\\", "é", "\t", "\r", "bfd", "min-tx", "min-rx", "multiplier",
    "auth", "auth-key-id", "auth-password", "keyed-sha1", "disable",
]


def check(text: str) -> None:
    try:
        result = parse_text(text, "fuzz.conf")
    except ConfigError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.file == "fuzz.conf" and d.line >= 1 and d.col >= 1 and d.message
    else:
        assert isinstance(result, Config)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(text):
    check(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=60), st.lists(st.sampled_from([" ", "", "\n"]), max_size=60))
def test_random_config_words(words, seps):
    text = "".join(w + (seps[i] if i < len(seps) else " ") for i, w in enumerate(words))
    check(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.text(max_size=20))
def test_corrupting_a_valid_config(pos, junk):
    valid = ("template { neighbor t { local-as 1; family { ipv4 unicast; ipv6 unicast; } } }\n"
             "process p { run /bin/p; encoder json; receive { parsed; updates; } }\n"
             "neighbor 192.0.2.1 {\n inherit t;\n peer-as 2;\n router-id 1.1.1.1;\n"
             " static { route 10.0.0.0/24 next-hop self med 5 community [ 1:1 ]; }\n"
             " api { processes [ p ]; }\n}\n")
    check(valid[:pos] + junk + valid[pos:])
