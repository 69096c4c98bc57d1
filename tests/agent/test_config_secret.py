"""The MD5 password never shows: not in str()/repr() of the model, not in errors, not in validate's output."""

from __future__ import annotations

import logging
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetbgp.cli import main
from fleetbgp.config import ConfigError, Secret, parse_text

PW = "Zq7-very-secret-Pw"
HEAD = "local-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"


def config_text(md5_line: str, extra: str = "") -> str:
    return f"neighbor 192.0.2.1 {{\n{HEAD}{md5_line}\n{extra}}}\n"


def test_secret_wrapper_hides_the_value():
    s = Secret(PW)
    assert repr(s) == "***" and str(s) == "***" and f"{s}" == "***" and f"{s!r}" == "***"
    assert "%s %r" % (s, s) == "*** ***"  # noqa: UP031 (the old operator is what logging uses)
    assert s.reveal() == PW
    assert s == Secret(PW) and s != Secret("other") and hash(s) == hash(Secret(PW))
    assert pickle.loads(pickle.dumps(s)).reveal() == PW


def test_model_str_and_repr_do_not_show_the_password(caplog):
    cfg = parse_text(config_text(f'md5-password "{PW}";'), "x.conf")
    n = cfg.neighbors[0]
    assert n.md5_password.reveal() == PW
    for text in (str(cfg), repr(cfg), str(n), repr(n), repr(n.settings_key())):
        assert PW not in text
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("fleetbgp.test").info("loaded %s / %r", cfg, n)
    assert PW not in caplog.text and "***" in caplog.text


def test_errors_elsewhere_in_the_file_do_not_show_it():
    text = config_text(f'md5-password "{PW}";', "hold-time 1;\nfrobnicate;\n")
    with pytest.raises(ConfigError) as info:
        parse_text(text, "x.conf")
    assert len(info.value.diagnostics) == 2
    assert PW not in str(info.value) and PW not in repr(info.value)


def test_error_on_the_password_line_is_redacted():
    with pytest.raises(ConfigError) as info:
        parse_text(config_text(f'md5-password "{PW}"; bogus {PW};'), "x.conf")
    assert PW not in str(info.value)
    assert str(info.value) == ("x.conf:5:36: error on a line with an md5-password (details not shown, to keep "
                               "the password out of logs): put md5-password on a line of its own")


def test_unquoted_password_with_semicolon_does_not_leak_its_tail():
    with pytest.raises(ConfigError) as info:
        parse_text(config_text("md5-password abc;Tail0fThePassword;"), "x.conf")
    assert "Tail0fThePassword" not in str(info.value)


def test_password_with_hash_does_not_leak():
    with pytest.raises(ConfigError) as info:
        parse_text(config_text("md5-password abc#SecretTail\n"), "x.conf")
    assert "SecretTail" not in str(info.value) and "abc" not in str(info.value)


@pytest.mark.parametrize("line", [
    f'md5-password "{PW}" extra;',
    f"md5-password {PW} {PW};",
    f"md5-password '{PW}'\n",
    f"md5-passwd '{PW}';",
    f"md5-password [ '{PW}' ];",
    f"md5-password '{PW}';\nmd5-password '{PW}';",
    f"md5-password '{PW}';\nmd5-base64;",
    f"md5-password '{PW * 5}';",
])
def test_malformed_password_statements_do_not_leak(line):
    with pytest.raises(ConfigError) as info:
        parse_text(config_text(line), "x.conf")
    assert PW not in str(info.value)


def test_env_password_never_shown(monkeypatch):
    monkeypatch.setenv("FLEETBGP_TEST_PW", PW)
    cfg = parse_text(config_text("md5-password env['FLEETBGP_TEST_PW'];"), "x.conf")
    assert cfg.neighbors[0].md5_password.reveal() == PW
    assert PW not in repr(cfg)
    monkeypatch.setenv("FLEETBGP_TEST_PW", PW * 5)  # too long: an error that must not show it
    with pytest.raises(ConfigError) as info:
        parse_text(config_text("md5-password env['FLEETBGP_TEST_PW'];"), "x.conf")
    assert PW not in str(info.value)


@pytest.mark.parametrize("extra", ["", "hold-time 1;\n"])
def test_validate_output_does_not_show_it(tmp_path, capsys, extra):
    path = tmp_path / "a.conf"
    path.write_text(config_text(f'md5-password "{PW}";', extra))
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert rc == (1 if extra else 0)
    assert PW not in out and PW not in err


@settings(max_examples=150, deadline=None)
@given(password=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                              exclude_characters="\"'\\;{}[]()#"),
                        min_size=1, max_size=40),
       noise=st.lists(st.sampled_from(["hold-time 1;", "local-as 0;", "frobnicate;", "passive maybe;",
                                       "route 10.0.0.1/8 next-hop self;", "ttl-security 0;", "md5-base64;",
                                       "md5-password again;", "{", "}", "family { x y; }", "listen 0;"]),
                      max_size=5),
       quoted=st.booleans())
def test_property_password_never_in_errors(password, noise, quoted):
    password = "ZqX" + password  # a marker no message or repr contains by itself
    value = f'"{password}"' if quoted else password
    text = config_text(f"md5-password {value};", "\n".join(noise) + "\n")
    try:
        cfg = parse_text(text, "x.conf")
    except ConfigError as exc:
        assert password not in str(exc)
    else:
        assert password not in repr(cfg)
