"""Children of the agent never inherit the MD5 passwords."""

from __future__ import annotations

import asyncio

import pytest

from fleetbgp import childenv
from fleetbgp.health.checks import run_command


@pytest.fixture(autouse=True)
def _reset():
    yield
    childenv.set_secret_values(())


def test_secret_variables_are_kept_from_children(monkeypatch):
    monkeypatch.setenv("FLEETBGP_MD5_0", "pw-zero")
    monkeypatch.setenv("BGP_MD5_PASSWORD", "pw-guide")
    monkeypatch.setenv("SERVICE_IP", "100.10.0.100")
    childenv.set_secret_values(["pw-guide"])
    env = childenv.child_environment({"CHECK_INTERVAL": "5"})
    assert "FLEETBGP_MD5_0" not in env and "BGP_MD5_PASSWORD" not in env
    assert env["SERVICE_IP"] == "100.10.0.100" and env["CHECK_INTERVAL"] == "5"


def test_a_check_command_does_not_see_the_password(monkeypatch):
    monkeypatch.setenv("BGP_MD5_PASSWORD", "pw-guide")
    childenv.set_secret_values(["pw-guide"])
    _status, out = asyncio.run(run_command("env | grep -c pw-guide; printenv PATH >/dev/null && echo path-ok",
                                          timeout=10))
    assert out.split() == ["0", "path-ok"], out
