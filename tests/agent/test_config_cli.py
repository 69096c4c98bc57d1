"""The fleetbgp command line: validate, --test (both spellings), run, --version, exit codes."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import fleetbgp
from fleetbgp.cli import main

GOOD = ("process hc { run /bin/hc; }\n"
        "neighbor 192.0.2.1 {\n local-as 65001;\n peer-as 65000;\n router-id 192.0.2.2;\n"
        " static {\n  route 10.0.0.0/24 next-hop self;\n  route 10.0.1.0/24 next-hop self;\n }\n"
        " api { processes [ hc ]; }\n}\n")
BAD = "neighbor 192.0.2.1 {\n local-as 0;\n peer-as 65000;\n router-id 192.0.2.2;\n hold-tim 9;\n}\n"


@pytest.fixture
def good(tmp_path: Path) -> str:
    path = tmp_path / "good.conf"
    path.write_text(GOOD)
    return str(path)


@pytest.fixture
def bad(tmp_path: Path) -> str:
    path = tmp_path / "bad.conf"
    path.write_text(BAD)
    return str(path)


def test_validate_ok_prints_a_summary(good, capsys):
    assert main(["validate", good]) == 0
    out, err = capsys.readouterr()
    assert out == f"{good}: OK: 1 neighbor, 2 routes, 1 process\n"
    assert err == ""


def test_validate_bad_prints_every_error_to_stderr(bad, capsys):
    assert main(["validate", bad]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{bad}:2:11: local-as '0' is not an AS number: expected 1..4294967295",
        f"{bad}:5:2: unknown keyword 'hold-tim' in the neighbor block (did you mean 'hold-time'?)",
        f"{bad}: 2 errors",
    ]


def test_test_flag_is_validate(good, bad, capsys):
    assert main(["--test", good]) == 0
    assert main(["--test", bad]) == 1
    assert main([good, "--test"]) == 0  # exabgp FILE --test, as the guide writes it
    assert main([bad, "--test"]) == 1


def test_missing_file_is_a_clean_error(tmp_path, capsys):
    missing = str(tmp_path / "nope.conf")
    assert main(["validate", missing]) == 1
    _, err = capsys.readouterr()
    assert err == f"{missing}: cannot read the config file: No such file or directory\n{missing}: 1 error\n"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fleetbgp {fleetbgp.__version__}\n"


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["validate"]) == 2
    assert main(["--test", "a", "validate", "b"]) == 2


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out


def test_run_calls_the_daemon(monkeypatch, good):
    calls = []
    fake = types.ModuleType("fleetbgp.daemon")

    def run(config_path: str, settings: object) -> int:
        calls.append((config_path, str(getattr(settings, "log_level", "")).lower()))
        return 0

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fleetbgp.daemon", fake)
    monkeypatch.setattr(fleetbgp, "daemon", fake, raising=False)
    assert main(["run", good]) == 0
    assert main(["run", good, "--log-level", "debug"]) == 0
    assert calls == [(good, "info"), (good, "debug")]


def test_python_dash_m(good):
    src = Path(fleetbgp.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "fleetbgp", "validate", good], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src)}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "OK: 1 neighbor, 2 routes, 1 process" in proc.stdout


ENV_CONF = "neighbor 10.0.0.1 { router-id 10.0.0.2; local-as 1; peer-as 2; md5-password env['FB_TEST_MD5']; }\n"


def test_validate_env_file_supplies_secrets_without_showing_them(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FB_TEST_MD5", raising=False)
    conf = tmp_path / "f.conf"
    conf.write_text(ENV_CONF)
    assert main(["validate", str(conf)]) == 1
    assert "FB_TEST_MD5 is not set" in capsys.readouterr().err
    env = tmp_path / "secrets.env"
    env.write_text("# managed by ansible\n\nFB_TEST_MD5='p#ss word'\nOTHER=\"x\"\n")
    assert main(["validate", "--env-file", str(env), str(conf)]) == 0
    out = capsys.readouterr()
    assert "p#ss" not in out.out + out.err


def test_validate_env_file_errors_name_the_line(tmp_path, capsys):
    conf = tmp_path / "f.conf"
    conf.write_text(ENV_CONF)
    env = tmp_path / "secrets.env"
    env.write_text("GOOD=1\nthis is not an assignment\n")
    assert main(["validate", "--env-file", str(env), str(conf)]) == 2
    assert f"{env}:2: expected KEY=VALUE" in capsys.readouterr().err
    assert main(["validate", "--env-file", str(tmp_path / "missing.env"), str(conf)]) == 2
