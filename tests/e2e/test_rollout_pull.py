"""fleet.bgp.rollout_pull (pull mode) on one e2e lab server, run by ansible-pull itself: the host is its
own controller.

The lab containers have no Ansible, so the test copies the controller's ansible-core and its
dependencies (same Debian 12, Python 3.11) and the collection into the last server, and puts a bare
git repository of the desired state there (a copy of tests/e2e/inventory plus local.yml importing
fleet.bgp.rollout_pull). Then, on the host, `ansible-pull -U file://REPO -C COMMIT -d DEST -i inventory
local.yml`, as a pull-mode fleet runs it from a timer: ansible-pull checks the commit out with git,
limits the run to the host's own names and runs local.yml over the local connection. Shown: a commit
whose config for this host does not validate (checked with the host's own fleetbgp) changes nothing; the
baseline commit passes validation, backup, apply and the health gate and is recorded with mode "pull"
and the commit ansible-pull checked out (read from the checkout, not passed in).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from e2e_lab import Lab

CONF = "/etc/fleetbgp/fleetbgp.conf"
RECORD = "/var/lib/fleetbgp/deployed.json"
ANSIBLE_DIR = "/opt/e2e-ansible"
DESIRED_REPO = "/srv/fleetbgp-desired.git"  # the "remote" ansible-pull clones from
CHECKOUT_DIR = "/var/lib/fleetbgp-pull"  # ansible-pull -d
VAULT_PASS = "/etc/fleetbgp-pull/vault-pass"
# ansible-pull runs `ansible` (the git checkout) and `ansible-playbook` from its own directory.
CLIS = {"ansible": "adhoc", "ansible-playbook": "playbook", "ansible-pull": "pull"}
# ansible-core and what it imports, taken from the controller's venv.
PACKAGES = ("ansible", "jinja2", "markupsafe", "yaml", "_yaml", "cryptography", "cffi", "pycparser",
            "packaging", "resolvelib")
DISTS = ("ansible_core", "jinja2", "markupsafe", "pyyaml", "cryptography", "cffi", "pycparser",
         "packaging", "resolvelib")
COLLECTION = ("galaxy.yml", "meta", "roles", "playbooks", "plugins", "agent/pyproject.toml", "agent/README.md",
              "agent/src", "docs")  # docs: the roles install the operator's guides on the host, as the tarball has them
pytestmark = pytest.mark.timeout(900)


def tar_into(lab: Lab, host: str, src: Path, names: list[str], dest: str) -> None:
    """Copy NAMES (relative to SRC) into DEST in the host's container (replaced)."""
    tar = subprocess.run(["tar", "-C", str(src), "--exclude=__pycache__", "-c", *names],
                         capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["podman", "exec", "-i", lab.container(host), "sh", "-c",
                    f'rm -rf "{dest}" && mkdir -p "{dest}" && tar -x -C "{dest}"'],
                   input=tar, capture_output=True, check=True, timeout=120)


@pytest.fixture(scope="module")
def pull_host(lab: Lab) -> Iterator[str]:
    host = lab.servers[-1]
    site = Path(next(p for p in sys.path if p.endswith("site-packages") and (Path(p) / "ansible").is_dir()))
    names = [p.name for p in site.iterdir()
             if p.name in PACKAGES or p.name.startswith("_cffi_backend.")
             or (p.name.endswith(".dist-info") and p.name.split("-")[0].lower() in DISTS)]
    tar_into(lab, host, site, names, f"{ANSIBLE_DIR}/lib")
    tar_into(lab, host, lab.repo, list(COLLECTION), f"{ANSIBLE_DIR}/collections/ansible_collections/fleet/bgp")
    for cli, module in CLIS.items():
        launcher = (f'#!/usr/bin/python3\nimport sys\nsys.path.insert(0, "{ANSIBLE_DIR}/lib")\n'
                    f"from ansible.cli.{module} import main\nmain()\n")
        lab.exec(host, "sh", "-c", f"mkdir -p {ANSIBLE_DIR}/bin && cat > {ANSIBLE_DIR}/bin/{cli} "
                 f"&& chmod 0755 {ANSIBLE_DIR}/bin/{cli}", input=launcher)
    vault = Path(lab.env["ANSIBLE_VAULT_PASSWORD_FILE"]).read_text()
    lab.exec(host, "sh", "-c", f"umask 077; mkdir -p {Path(VAULT_PASS).parent} && cat > {VAULT_PASS}", input=vault)
    yield host
    lab.exec(host, "rm", "-rf", ANSIBLE_DIR, DESIRED_REPO, CHECKOUT_DIR, str(Path(VAULT_PASS).parent), check=False)


def publish(lab: Lab, host: str, repo: Path) -> None:
    """The desired-state repository, as a bare repository on HOST (the remote ansible-pull clones)."""
    bare = repo.parent / "desired.git"
    shutil.rmtree(bare, ignore_errors=True)
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(bare))
    tar_into(lab, host, bare, ["."], DESIRED_REPO)


def pull(lab: Lab, host: str, commit: str) -> subprocess.CompletedProcess[str]:
    """ansible-pull on HOST: check COMMIT out of the desired-state repository, run its local.yml."""
    return subprocess.run(
        ["podman", "exec", "-w", "/", "-e", f"ANSIBLE_COLLECTIONS_PATH={ANSIBLE_DIR}/collections",
         "-e", "ANSIBLE_NOCOLOR=1", "-e", "ANSIBLE_RETRY_FILES_ENABLED=0", lab.container(host),
         f"{ANSIBLE_DIR}/bin/ansible-pull", "-U", f"file://{DESIRED_REPO}", "-C", commit, "--full",
         "-d", CHECKOUT_DIR, "-i", "inventory", "--vault-password-file", VAULT_PASS,
         "-e", json.dumps({"fleet_bgp_rollout_gate_timeout": 30}), "local.yml"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=800, check=False)


def state(lab: Lab, host: str) -> tuple[str, int, str]:
    return (lab.sha256(host, CONF)[CONF], lab.agent_status(host)["pid"],
            lab.exec(host, "sh", "-c", f"cat {RECORD} 2>/dev/null || echo missing").stdout)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=e2e", "-c", "user.email=e2e@invalid", *args],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def test_pull_mode_validates_on_the_host_then_applies_locally(lab: Lab, pull_host: str, tmp_path: Path) -> None:
    host = pull_host
    repo = tmp_path / "desired"
    shutil.copytree(lab.inventory, repo / "inventory")
    (repo / "local.yml").write_text("---\n- name: Pull-mode rollout\n"
                                    "  ansible.builtin.import_playbook: fleet.bgp.rollout_pull\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "baseline")
    baseline = git(repo, "rev-parse", "HEAD")

    # A commit whose config for this host does not validate: nothing changes on it.
    hv = repo / "inventory" / "host_vars" / f"{host}.yml"
    data = yaml.safe_load(hv.read_text()) if hv.exists() else {}
    hv.write_text("---\n" + yaml.safe_dump({**(data or {}), "fleet_bgp_routes": [{"prefix": "100.10.0.300/32"}]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "broken prefix")
    before = state(lab, host)
    broken = git(repo, "rev-parse", "HEAD")
    publish(lab, host, repo)
    proc = pull(lab, host, broken)
    assert proc.returncode != 0, proc.stdout
    assert lab.exec(host, "git", "-C", CHECKOUT_DIR, "rev-parse", "HEAD").stdout.strip() == broken, \
        "ansible-pull checked the commit out"
    assert "does not validate" in proc.stdout and "100.10.0.300" in proc.stdout, proc.stdout
    assert "/opt/fleetbgp/venv/bin/fleetbgp validate" in proc.stdout, "validated with the host's own agent"
    assert state(lab, host) == before

    # The baseline: validated, backed up, applied, gated and recorded, all over the local connection.
    proc = pull(lab, host, baseline)
    assert proc.returncode == 0, proc.stdout
    record = json.loads(lab.exec(host, "cat", RECORD).stdout)
    assert (record["sha"], record["mode"]) == (baseline, "pull"), record
    assert record["config_sha256"] == lab.sha256(host, CONF)[CONF] == lab.agent_status(host)["config_sha256"]
    assert lab.sessions().get(host) == "Established"
