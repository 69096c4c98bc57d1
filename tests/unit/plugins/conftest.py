"""Unit tests of the collection's modules and module_utils, run with the repository's pytest.

The modules import `ansible_collections.fleet.bgp...`: a temporary directory holding
ansible_collections/fleet/bgp (a symlink to the repository root) and Ansible's collection loader
make that work without installing the collection. The modules talk to the agent's real control
server (fleetbgp.control.ControlServer) over a unix socket, with the fake speaker the agent's own
control tests use (tests/agent/control_fakes.py)."""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "agent"))  # control_fakes

COLLECTIONS = Path(tempfile.mkdtemp(prefix="fleetbgp-collections-"))
atexit.register(shutil.rmtree, COLLECTIONS, ignore_errors=True)
(COLLECTIONS / "ansible_collections" / "fleet").mkdir(parents=True)
(COLLECTIONS / "ansible_collections" / "fleet" / "bgp").symlink_to(REPO, target_is_directory=True)

from ansible.module_utils.testing import patch_module_args  # noqa: E402
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder  # noqa: E402

_AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()

from control_fakes import sample_speaker, served  # noqa: E402


@pytest.fixture
def collections_path() -> Path:
    """A collections path (ANSIBLE_COLLECTIONS_PATH) where fleet.bgp is this repository."""
    return COLLECTIONS


@pytest.fixture
def agent():
    """A control server with the sample speaker: .speaker, .path (the socket), .loop."""
    speaker = sample_speaker()
    with served(speaker) as (server, path, loop):
        yield SimpleNamespace(speaker=speaker, path=path, loop=loop, server=server)


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False, diff=False) -> (failed, result dict)."""

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            module.main()
        out = capsys.readouterr().out
        result = json.loads(out)
        failed = exc.value.code != 0
        assert failed == bool(result.get("failed")), result
        return failed, result

    return run
