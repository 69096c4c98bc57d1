"""fleet_bgp_processes_immutable: the programs carry chattr's immutable attribute, root cannot change
them by accident, and the role itself still replaces, removes and un-protects them.

The converge deployed /etc/fleetbgp/api with the option on (inventory/group_vars/bgp_servers.yml) and
Molecule's idempotence step ran over it. The updates run the role's own API program tasks
(api-programs.yml, tasks_from: api) on a scratch directory, so the running agent keeps its programs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import SERVER, recap, run_playbook

PROGRAM = "/etc/fleetbgp/api/molecule-announce"
PLAYBOOK = Path(__file__).resolve().parent.parent / "api-programs.yml"
SCRATCH = "/var/tmp/fleetbgp-api-test"
NO_ATTRIBUTES = "/var/tmp/fleetbgp-api-ramfs"


def flags(server, path: str) -> str:
    """The attribute letters of a file, e.g. `ie` (immutable, extents)."""
    out = server.check_output(f"lsattr -d {path}")
    return out.split()[0].replace("-", "")


def play(
    programs: dict[str, Path], api_dir: str, *args: str, immutable: bool = True
) -> subprocess.CompletedProcess:
    """api-programs.yml with these programs (name: file on the controller) deployed to api_dir."""
    extra = {
        "api_test_dir": api_dir,
        "fleet_bgp_processes_immutable": immutable,
        "fleet_bgp_processes": [{"name": name, "src": str(src)} for name, src in programs.items()],
    }
    return run_playbook(PLAYBOOK, "-e", json.dumps(extra), *args, timeout=300)


def changed(proc: subprocess.CompletedProcess) -> int:
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    line = recap(proc.stdout, SERVER)
    assert "failed=0" in line, line
    return int(line.split("changed=")[1].split()[0])


def test_deployed_program_is_immutable(server):
    assert "i" in flags(server, PROGRAM)


@pytest.mark.parametrize(
    "write",
    [
        f"echo '# changed' >> {PROGRAM}",
        f"rm -f {PROGRAM}",
        f"mv {PROGRAM} {PROGRAM}.old",
        f"chmod 0777 {PROGRAM}",
    ],
)
def test_root_cannot_change_the_program(server, write):
    before = server.check_output(f"sha1sum {PROGRAM}; stat -c %a {PROGRAM}")
    result = server.run(write)
    assert result.rc != 0 and "Operation not permitted" in result.stderr, (write, result.rc, result.stderr)
    assert server.check_output(f"sha1sum {PROGRAM}; stat -c %a {PROGRAM}") == before


ONE_V1 = "#!/bin/sh\necho one\n"


@pytest.fixture
def scratch(server):
    """Programs one and two as an earlier run of the role left them: root:root 0755, immutable."""
    server.check_output(
        f"mkdir -p {SCRATCH} && cd {SCRATCH} && printf '{ONE_V1}' >one && printf 'two' >two"
        " && chmod 0755 one two && chattr +i one two"
    )
    yield SCRATCH
    server.run(f"chattr -R -i {SCRATCH}; rm -rf {SCRATCH}")


def test_role_updates_and_removes_immutable_programs(server, scratch, tmp_path):
    one_v2 = tmp_path / "one"
    one_v2.write_text("#!/bin/sh\necho one, version 2\n")
    assert server.file(f"{scratch}/one").content_string == ONE_V1

    # check mode: the change is reported, nothing is touched
    assert changed(play({"one": one_v2}, scratch, "--check")) > 0
    assert server.file(f"{scratch}/one").content_string == ONE_V1
    assert "i" in flags(server, f"{scratch}/one") and "i" in flags(server, f"{scratch}/two")

    # a new version of one, two no longer listed: one replaced and immutable again, two removed
    assert changed(play({"one": one_v2}, scratch)) > 0
    assert server.file(f"{scratch}/one").content_string == one_v2.read_text()
    assert "i" in flags(server, f"{scratch}/one")
    assert not server.file(f"{scratch}/two").exists

    # the option turned off: the role takes the attribute away (it could not replace the file otherwise)
    assert changed(play({"one": one_v2}, scratch, immutable=False)) > 0
    assert "i" not in flags(server, f"{scratch}/one")


@pytest.fixture
def no_attributes(server):
    """A directory on ramfs, a file system without file attributes (the container has CAP_SYS_ADMIN)."""
    server.check_output(f"mkdir -p {NO_ATTRIBUTES} && mount -t ramfs ramfs {NO_ATTRIBUTES}")
    yield NO_ATTRIBUTES
    server.run(f"umount {NO_ATTRIBUTES}; rmdir {NO_ATTRIBUTES}")


def test_file_system_without_attributes_is_named(no_attributes, tmp_path):
    program = tmp_path / "one"
    program.write_text("#!/bin/sh\necho one\n")
    proc = play({"one": program}, no_attributes)
    # ansible-core 2.19 prints the failed task's error on stderr; the YAML callback folds long lines
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, output[-3000:]
    assert f"could not be set on {no_attributes}/one" in output, output[-3000:]
    assert "fleet_bgp_processes_immutable: false" in output, output[-3000:]
