"""Unit tests of the collection's modules and module_utils.

They run two ways: with the repository's pytest on the checkout (scripts/run-pytest.sh), and with
`ansible-test units` on the collection installed from the built tarball (scripts/test-collection.sh).
Everything they need ships in the collection: the agent's source (agent/src, put first on sys.path so
that the shipped copy is tested, not an installed one) and the fake speaker (tests/unit/fakes).

The modules import `ansible_collections.fleet.bgp...`. Installed, this collection already sits in a
collections path (ansible-test has set up Ansible's collection loader for it). In the checkout, a
temporary directory holding ansible_collections/fleet/bgp (a symlink to the repository root) and the
collection loader make that work without installing the collection. The modules talk to the agent's
real control server (fleetbgp.control.ControlServer) over a unix socket, with the fake speaker the
agent's own control tests use."""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[3]  # the collection root: the checkout or the installed copy
for _path in (REPO / "tests" / "unit" / "fakes", REPO / "agent" / "src"):  # control_fakes, fleetbgp
    if str(_path) in sys.path:
        sys.path.remove(str(_path))
    sys.path.insert(0, str(_path))

try:
    from ansible.module_utils.testing import patch_module_args  # ansible-core >= 2.19
except ImportError:  # older ansible-core (the collection supports 2.16 and later): what it does there
    import contextlib

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved
from ansible.utils.collection_loader import AnsibleCollectionConfig  # noqa: E402
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder  # noqa: E402

if REPO.parent.name == "fleet" and REPO.parent.parent.name == "ansible_collections":
    COLLECTIONS = REPO.parent.parent.parent  # installed (ansible-test units)
else:
    COLLECTIONS = Path(tempfile.mkdtemp(prefix="fleetbgp-collections-"))
    atexit.register(shutil.rmtree, COLLECTIONS, ignore_errors=True)
    (COLLECTIONS / "ansible_collections" / "fleet").mkdir(parents=True)
    (COLLECTIONS / "ansible_collections" / "fleet" / "bgp").symlink_to(REPO, target_is_directory=True)
if AnsibleCollectionConfig.collection_finder is None:  # ansible-test's pytest plugin installs its own
    _AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()

from control_fakes import sample_speaker, served  # noqa: E402

# Tests marked `checkout` need what only the repository has (galaxy.yml, scripts/): they are skipped on
# the installed collection, and scripts/test-collection.sh runs them on the checkout (-m checkout).
IN_CHECKOUT = (REPO / "galaxy.yml").is_file()


def pytest_configure(config):
    config.addinivalue_line("markers", "checkout: needs the repository checkout (galaxy.yml, scripts/); "
                                       "skipped on the installed collection")
    if not config.pluginmanager.hasplugin("timeout"):
        # pytest-timeout (tests/unit/requirements.txt) bounds the tests that run ansible-playbook; without
        # it (`ansible-test units` without --requirements) the marker is known but not enforced.
        config.addinivalue_line("markers", "timeout(seconds): pytest-timeout's limit for one test")


def pytest_collection_modifyitems(config, items):
    if IN_CHECKOUT:
        return
    skip = pytest.mark.skip(reason="needs the repository checkout (galaxy.yml, scripts/), not shipped: "
                                   "scripts/test-collection.sh runs it there")
    for item in items:
        if item.get_closest_marker("checkout") is not None:
            item.add_marker(skip)


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
