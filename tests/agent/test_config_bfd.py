"""The `bfd` neighbor statement (docs/agent/bfd.md): defaults, the block, templates, secrets, errors."""

from __future__ import annotations

import logging

import pytest

from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.model import BfdSettings
from fleetbgp.logsetup import config_secrets

HEAD = "local-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"
KEY = "bfd-Key-9q"


def conf(body: str, template: str = "") -> str:
    tpl = f"template {{\nneighbor T {{\n{template}\n}}\n}}\n" if template else ""
    return f"{tpl}neighbor 192.0.2.1 {{\n{HEAD}{body}\n}}\n"


def bfd_of(text: str) -> BfdSettings | None:
    return parse_text(text, "x.conf").neighbors[0].bfd


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "x.conf")
    return str(info.value)


def test_no_bfd_by_default():
    assert bfd_of(conf("")) is None


def test_bare_statement_gives_the_defaults():
    b = bfd_of(conf("bfd;"))
    assert b == BfdSettings(min_tx_ms=300, min_rx_ms=300, multiplier=3, passive=False, auth=None)
    assert bfd_of(conf("bfd enable;")) == b


def test_block_sets_every_field():
    b = bfd_of(conf("bfd {\nmin-tx 100;\nmin-rx 150;\nmultiplier 5;\npassive;\n}"))
    assert b is not None
    assert (b.min_tx_ms, b.min_rx_ms, b.multiplier, b.passive) == (100, 150, 5, True)
    assert bfd_of(conf("bfd { }")) == BfdSettings()


def test_template_gives_bfd_and_the_neighbor_can_turn_it_off():
    text = conf("inherit T;", template="bfd { min-tx 50; }")
    b = bfd_of(text)
    assert b is not None and b.min_tx_ms == 50 and b.min_rx_ms == 300
    assert bfd_of(conf("inherit T;\nbfd disable;", template="bfd;")) is None
    # the neighbor's own block replaces the template's as a whole
    b = bfd_of(conf("inherit T;\nbfd { multiplier 4; }", template="bfd { min-tx 50; }"))
    assert b is not None and (b.min_tx_ms, b.multiplier) == (300, 4)


def test_bfd_is_not_a_session_setting():
    """A reload that changes only BFD must not restart BGP: the settings key ignores it."""
    a = parse_text(conf("bfd;"), "x.conf").neighbors[0]
    b = parse_text(conf("bfd { min-tx 100; }"), "x.conf").neighbors[0]
    c = parse_text(conf(""), "x.conf").neighbors[0]
    assert a.settings_key() == b.settings_key() == c.settings_key()
    assert a.changed_settings(b) == [] and a.changed_settings(c) == []


def test_auth_from_the_environment(monkeypatch):
    monkeypatch.setenv("BFD_KEY", KEY)
    b = bfd_of(conf("bfd {\nauth keyed-sha1;\nauth-key-id 7;\nauth-password env['BFD_KEY'];\n}"))
    assert b is not None and b.auth == "keyed-sha1" and b.auth_key_id == 7
    assert b.auth_password is not None and b.auth_password.reveal() == KEY
    assert KEY not in repr(b) and KEY not in str(parse_text(conf(
        "bfd {\nauth keyed-sha1;\nauth-password env['BFD_KEY'];\n}"), "x.conf"))


def test_auth_password_is_a_config_secret_for_the_logs(caplog):
    cfg = parse_text(conf(f"bfd {{\nauth keyed-md5;\nauth-password \"{KEY}\";\n}}"), "x.conf")
    assert KEY in config_secrets(cfg)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("fleetbgp.test").info("loaded %r", cfg.neighbors[0])
    assert KEY not in caplog.text


@pytest.mark.parametrize("body, message", [
    ("bfd 5;", "x.conf:5:5: bfd takes no value (bfd; for the defaults), 'disable', or a block"),
    ("bfd;\nbfd { }", "x.conf:6:1: 'bfd' is set twice (first at 5:1)"),
    ("bfd { min-tx 0; }", "x.conf:5:14: min-tx '0': expected milliseconds 1..60000 (the default is 300)"),
    ("bfd { min-rx 60001; }", "x.conf:5:14: min-rx '60001': expected milliseconds 1..60000"),
    ("bfd { multiplier 256; }", "x.conf:5:18: multiplier '256': expected 1..255"),
    ("bfd { min-tx; }", "x.conf:5:7: min-tx takes one value: the minimum transmit interval in milliseconds"),
    ("bfd { echo; }", "x.conf:5:7: BFD echo mode is not supported (asynchronous mode only)"),
    ("bfd { interval 300; }", "x.conf:5:7: 'interval' is not a bfd keyword: min-tx (what we send) and min-rx"),
    ("bfd { min_tx 300; }", "x.conf:5:7: unknown keyword 'min_tx' in the bfd block (did you mean 'min-tx'?)"),
    ("bfd { auth keyed-sha1; }", "x.conf:5:7: auth keyed-sha1 needs auth-password"),
    ("bfd { auth sha256;\n}", "x.conf:5:12: auth 'sha256' is not a BFD authentication type"),
    ("bfd {\nauth-password 'abc';\n}", "x.conf:6:1: auth-password without auth: say which type"),
    ("bfd {\nauth simple;\nauth-password '12345678901234567';\n}",
     "x.conf:7:1: auth-password is 17 bytes: simple takes at most 16 (RFC 5880 4.2-4.4)"),
    ("bfd {\nauth keyed-sha1;\nauth-password env['NOT_SET_ANYWHERE'];\n}",
     "x.conf:7:15: auth-password: environment variable NOT_SET_ANYWHERE is not set"),
    ("bfd { auth-key-id 256; }", "x.conf:5:19: auth-key-id '256': expected 0..255"),
    ("bfd { inner { } }", "x.conf:5:7: the bfd block holds settings ('min-tx 300;'), not blocks"),
])
def test_errors_name_the_place_and_the_problem(body, message):
    assert error_of(conf(body)).startswith(message)


def test_an_error_on_the_password_line_does_not_show_it():
    text = error_of(conf(f"bfd {{\nauth sha9; auth-password '{KEY}';\n}}"))
    assert KEY not in text
    assert "error on a line with an auth-password (details not shown" in text


def test_bfd_statement_outside_a_neighbor_says_where_it_belongs():
    assert "it belongs inside a neighbor block" in error_of("bfd;\n")


def test_the_bfd_doc_examples_parse(monkeypatch):
    from doc_examples import DOCS, config_examples

    monkeypatch.setenv("BFD_KEY", KEY)
    examples = config_examples(DOCS / "bfd.md")
    assert len(examples) >= 3
    for i, text in enumerate(examples):
        assert parse_text(text, f"bfd-{i}.conf").neighbors[0].bfd is not None
