"""module_utils: the control client is the agent's own file (one source, a symlink), and the
Ansible-side helpers turn its errors into messages an operator can act on."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from ansible_collections.fleet.bgp.plugins.module_utils import fleetbgp_common as common
from ansible_collections.fleet.bgp.plugins.module_utils import fleetbgp_control
from control_fakes import sample_speaker, served, short_tmpdir

from fleetbgp import control_client

REPO = Path(__file__).resolve().parents[4]
LINK = REPO / "plugins" / "module_utils" / "fleetbgp_control.py"
AGENT_CLIENT = REPO / "agent" / "src" / "fleetbgp" / "control_client.py"


# -- one source -----------------------------------------------------------------------------------

def test_module_utils_client_is_a_relative_symlink_to_the_agents_client():
    """Not a copy: plugins/module_utils/fleetbgp_control.py -> agent/src/fleetbgp/control_client.py.
    The rules of ansible-test's `symlinks` sanity test hold (relative, inside the collection, to a
    file), so `ansible-galaxy collection build` keeps it as a link and the installed collection has
    it (test_ansible_run.py installs the built tarball and runs a module)."""
    assert LINK.is_symlink(), "must be a symlink to the agent's client, not a second copy"
    target = os.readlink(LINK)
    assert not os.path.isabs(target), f"absolute link {target!r}: breaks once installed elsewhere"
    assert LINK.resolve() == AGENT_CLIENT.resolve()
    assert AGENT_CLIENT.is_file() and not AGENT_CLIENT.is_symlink()
    assert REPO.resolve() in LINK.resolve().parents, "the link leaves the collection"


def test_the_loaded_module_utils_is_the_agents_source():
    assert Path(fleetbgp_control.__file__).read_text() == Path(control_client.__file__).read_text()
    for name in ("ControlClient", "ControlError", "ControlUnavailable", "DEFAULT_SOCKET"):
        assert hasattr(fleetbgp_control, name)
    assert fleetbgp_control.DEFAULT_SOCKET == "/run/fleetbgp/control.sock"


def test_module_utils_use_only_the_standard_library_and_module_utils():
    """What runs on the target: the standard library, ansible.module_utils, our module_utils."""
    import ast
    import sys

    for path in [LINK, *sorted((REPO / "plugins" / "module_utils").glob("*.py")),
                 *sorted((REPO / "plugins" / "modules").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                ok = (top in sys.stdlib_module_names or name.startswith("ansible.module_utils")
                      or name.startswith("ansible_collections.fleet.bgp.plugins.module_utils"))
                assert ok, f"{path.name} imports {name}"


# -- messages -------------------------------------------------------------------------------------

def test_missing_socket_message_names_path_and_systemctl():
    path = str(short_tmpdir() / "none.sock")
    with pytest.raises(fleetbgp_control.ControlUnavailable) as exc:
        fleetbgp_control.ControlClient(path).call("status")
    msg = common.error_message(exc.value, "status")
    assert path in msg
    assert "the agent is not running?" in msg
    assert "systemctl status fleetbgp" in msg


def test_permission_denied_message_suggests_become_or_group(monkeypatch):
    def deny(self, address):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", deny)
    with pytest.raises(fleetbgp_control.ControlUnavailable) as exc:
        fleetbgp_control.ControlClient("/run/fleetbgp/control.sock").call("status")
    assert common.is_permission_error(exc.value)
    msg = common.error_message(exc.value, "status")
    assert "permission denied" in msg
    assert "become" in msg and "group fleetbgp" in msg


def test_stale_socket_message():
    path = str(short_tmpdir() / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    with pytest.raises(fleetbgp_control.ControlUnavailable) as exc:
        fleetbgp_control.ControlClient(path).call("status")
    msg = common.error_message(exc.value, "status")
    assert "stale socket" in msg and "systemctl status fleetbgp" in msg
    assert not common.is_permission_error(exc.value)


def test_other_unavailable_reason_is_passed_on():
    exc = fleetbgp_control.ControlUnavailable("/x.sock", "Too many open files")
    assert common.error_message(exc, "status") == (
        "cannot reach the fleetbgp agent at /x.sock: Too many open files (systemctl status fleetbgp)")


@pytest.mark.parametrize(("code", "expect"), [
    ("timeout", "did not answer 'reload' in time"),
    ("connection", "lost the connection"),
    ("protocol", "lost the connection"),
    ("reload_failed", "the fleetbgp agent refused 'reload': bad (reload_failed)"),
])
def test_error_messages_by_code(code, expect):
    assert expect in common.error_message(fleetbgp_control.ControlError(code, "bad"), "reload")


class FakeModule:
    def __init__(self, **params):
        self.params = {"socket": "/nonexistent/control.sock", "timeout": 5.0, **params}
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_agent_call_returns_results_and_fails_the_module_on_errors():
    with served(sample_speaker()) as (_s, path, _lt):
        module = FakeModule(socket=path)
        agent = common.Agent(module)
        assert agent.call("status")["pid"] == 4242
        refused = agent.try_call("neighbors", neighbor="203.0.113.1")
        assert isinstance(refused, fleetbgp_control.ControlError)
        assert refused.code == "unknown_neighbor"
        with pytest.raises(SystemExit):
            agent.call("neighbors", neighbor="203.0.113.1")
        assert module.failed["error_code"] == "unknown_neighbor"
        assert "refused 'neighbors'" in module.failed["msg"]


def test_try_call_still_fails_when_the_agent_is_not_there():
    module = FakeModule()
    with pytest.raises(SystemExit):
        common.Agent(module).try_call("status")
    assert module.failed["error_code"] == "unavailable"
    assert "systemctl status fleetbgp" in module.failed["msg"]


def test_control_argument_spec_defaults():
    spec = common.control_argument_spec(timeout=60)
    assert spec["socket"] == {"type": "path", "default": "/run/fleetbgp/control.sock"}
    assert spec["timeout"] == {"type": "float", "default": 60.0}
