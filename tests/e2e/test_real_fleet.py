"""The README's "Using the collection on a real fleet" path, run as a user runs it (issue 18, item 7).

Not the e2e lab and not Molecule: the point is the user's own controller, so the commands are the
README's own (readme_path.py extracts them), run by a shell in a fresh copy of this checkout with an
empty HOME (no ~/.ansible, no ANSIBLE_* variables from the developer's environment), against stock
Debian 12 cloud-image containers (lab/images/build-cloud.sh: no python3-venv, rsyslog or nftables)
reached over SSH as `deploy` with passwordless sudo, peering with a BIRD router. Molecule would run
its own ansible-playbook with its own inventory and collections path: exactly what must not be
used here.

What the test substitutes, and nothing else:
- addresses: each host's `ansible_host` -> a container's address, each neighbor `address` -> the router;
- where things are: `$FLEET_BGP_SRC` is a copy of this checkout, the commands run in `fleet-ops/`
  next to it (the README's "one directory of your own");
- the SSH key: inventory/group_vars/all/zz_test_connection.yml (the key and a known_hosts file of
  its own, what a user has in ~/.ssh); the login user is the README inventory's own;
- `--ask-vault-pass` -> `--vault-password-file FILE` (the README's own alternative);
  `ansible-vault create FILE` -> `ansible-vault encrypt` of the variables the README lists under it,
  with random values;
- an `ansible-playbook` line repeated later in the section runs once, at its last place (the vault
  block shows the deploy command that "Deploy and look" runs after its --check --diff).
Then the test adds: a second deploy (changed=0), and the backup with fleet_bgp_backup_fetch=true
(the README's command if it has one, else docs/operations/backup-restore.md's), whose controller
copies must be 0600 in 0700 folders.

Run alone: make real-fleet (root; ~3-5 min). Containers and network: fleetbgp-real-* (removed at the
end; FLEETBGP_REAL_FLEET_KEEP=1 keeps them for a look).
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from readme_path import Command, ReadmeError, RealFleetSection, parse

ROOT = Path(__file__).resolve().parents[2]
LOCK = "/run/lock/fleetbgp-real-fleet.lock"
CONTAINERS_CONF = str(ROOT / "lab/images/containers.conf")
CLOUD_IMAGE = "localhost/fleetbgp-cloud:bookworm"
ROUTER_IMAGE = "localhost/fleetbgp-router:bookworm"
NETWORK = "fleetbgp-real"
SUBNET = "10.89.61"  # .2.. routers, .11.. hosts; the lab uses 10.89.7, the e2e lab 10.89.8
LABEL = "fleetbgp.test=real-fleet"
# What must not appear in any run's output once issue 18 is fixed (both were in every run).
FORBIDDEN_WARNINGS = ("discovered Python interpreter", "Could not match supplied host pattern")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".matrix", "__pycache__", ".*_cache", ".hypothesis", "*.tar.gz", "results", "collections"
)


def podman(*args: str, check: bool = True, stdin: str | None = None) -> str:
    env = {**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF}
    proc = subprocess.run(["podman", *args], env=env, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: rc={proc.returncode}\n{proc.stderr}")
    return proc.stdout


def test_readme_section_parses() -> None:
    """Fast guard (no containers): the README section has the shape readme_path.py relies on."""
    section = parse((ROOT / "README.md").read_text())
    assert any(c.argv0 == "ansible-galaxy" and "build" in c.text for c in section.commands)
    assert any("fleet.bgp.site" in c.text and "--check" in c.text for c in section.commands)
    assert any(p.endswith("hosts.yml") for p in section.files), "no inventory file block (# inventory/hosts.yml)"


@dataclass
class Fleet:
    """The containers and the controller side of one run; everything under `work` is thrown away."""

    work: Path
    home: Path
    checkout: Path
    vault_pass: Path
    hosts: dict[str, str] = field(default_factory=dict)  # inventory name -> address
    routers: dict[str, str] = field(default_factory=dict)  # README address -> router address
    containers: list[str] = field(default_factory=list)
    log: list[tuple[str, float]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        # A fresh controller: the venv's tools on PATH, nothing else from the developer's environment.
        return {
            "PATH": f"{ROOT / '.venv/bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ANSIBLE_NOCOLOR": "1",
            "FLEET_BGP_SRC": str(self.checkout),  # the README: "where you cloned this repository"
        }

    def sh(self, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=self.env(), capture_output=True, text=True, check=False
        )
        self.log.append((command.splitlines()[0][:100], time.monotonic() - t0))
        return proc


def _run_ok(fleet: Fleet, command: str, cwd: Path) -> str:
    proc = fleet.sh(command, cwd)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"README command failed (rc={proc.returncode}): {command}\n{out[-6000:]}"
    for warning in FORBIDDEN_WARNINGS:
        assert warning not in out, f"{command}: prints a warning a user should not get: {warning}\n{out[-3000:]}"
    return out


def _inventory_hosts(section: RealFleetSection) -> tuple[dict[str, str], list[dict[str, object]]]:
    hosts: dict[str, str] = {}
    neighbors: list[dict[str, object]] = []

    def walk(group: dict[str, object]) -> None:
        for name, hvars in (group.get("hosts") or {}).items():  # type: ignore[union-attr]
            hosts[name] = str((hvars or {}).get("ansible_host", name))
        for child in (group.get("children") or {}).values():  # type: ignore[union-attr]
            walk(child or {})

    for path, content in section.files.items():
        if not path.endswith((".yml", ".yaml")):
            continue  # e.g. ansible.cfg
        data = yaml.safe_load(content) or {}
        if path.endswith(("hosts.yml", "hosts.yaml")):
            for group in data.values():
                walk(group or {})
        neighbors.extend(data.get("fleet_bgp_neighbors") or [])
    if len(hosts) < 2:
        raise ReadmeError(f"the README's inventory has {len(hosts)} host(s); the test needs at least two")
    if not neighbors:
        raise ReadmeError("the README's group_vars have no fleet_bgp_neighbors")
    return hosts, neighbors


def _substitute_addresses(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = re.sub(rf"(?<![\d.]){re.escape(old)}(?![\d.])", new, text)
    return text


def _cleanup(names: list[str]) -> None:
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)
    if _ours_network():
        podman("network", "rm", NETWORK, check=False)


def _ours_network() -> bool:
    labels = podman("network", "inspect", "--format", "{{ .Labels }}", NETWORK, check=False)
    return "real-fleet" in labels


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[Fleet, RealFleetSection]]:
    if os.geteuid() != 0:
        pytest.skip("the real-fleet test needs root (rootful podman)")
    section = parse((ROOT / "README.md").read_text())
    readme_hosts, neighbors = _inventory_hosts(section)
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t0 = time.monotonic()
        for script in ("lab/images/build-cloud.sh", "lab/images/build.sh"):
            # --check first: a build takes the images' lock, which other builds may hold for minutes.
            if subprocess.run([str(ROOT / script), "--check"], capture_output=True, check=False).returncode:
                subprocess.run([str(ROOT / script)], check=True, capture_output=True, text=True)
        work = Path(tempfile.mkdtemp(prefix="fleetbgp-real-fleet.", dir="/var/tmp"))
        fleet = Fleet(work, work / "home", work / "fleet-bgp", work / "vault-password")
        fleet.log.append(("(images)", time.monotonic() - t0))
        t0 = time.monotonic()
        fleet.home.mkdir(mode=0o700)
        fleet.vault_pass.write_text(secrets.token_urlsafe(24) + "\n")
        fleet.vault_pass.chmod(0o600)
        shutil.copytree(ROOT, fleet.checkout, ignore=COPY_IGNORE, symlinks=True)
        names = [f"fleetbgp-real-router{i}" for i in range(len(neighbors))]
        names += [f"fleetbgp-real-{h}" for h in readme_hosts]
        try:
            # Leftovers of an earlier run of this test (our label only) go first.
            for name in names:
                if LABEL.split("=")[1] in podman("inspect", "--format", "{{ .Config.Labels }}", name, check=False):
                    podman("rm", "-f", "-t", "0", name)
            if _ours_network():
                podman("network", "rm", NETWORK)
            podman("network", "create", "--label", LABEL, "--subnet", f"{SUBNET}.0/24", NETWORK)
            for i, neighbor in enumerate(neighbors):
                fleet.routers[str(neighbor["address"])] = f"{SUBNET}.{2 + i}"
            for i, host in enumerate(readme_hosts):
                fleet.hosts[host] = f"{SUBNET}.{11 + i}"
            run = ["run", "-d", "--label", LABEL, "--network", NETWORK, "--systemd=always",
                   "--cap-add", "NET_ADMIN,NET_RAW", "--security-opt", "unmask=/proc/sys"]  # fmt: skip
            for i, address in enumerate(fleet.routers.values()):
                # NET_BROADCAST: the packaged bird.service's `bird -u bird` keeps it (capset fails without).
                podman(*run, "--cap-add", "NET_BROADCAST", "--name", names[i], "--hostname", f"router{i}",
                       "--ip", address, ROUTER_IMAGE)  # fmt: skip
                fleet.containers.append(names[i])
            for host, address in fleet.hosts.items():
                name = f"fleetbgp-real-{host}"
                podman(*run, "--name", name, "--hostname", host, "--ip", address, CLOUD_IMAGE)
                fleet.containers.append(name)
            _ssh_login(fleet)
            fleet.log.append(("(copy of the checkout, containers up, SSH login as deploy)", time.monotonic() - t0))
            yield fleet, section
        finally:
            if os.environ.get("FLEETBGP_REAL_FLEET_KEEP") != "1":
                _cleanup(fleet.containers)
                shutil.rmtree(work, ignore_errors=True)
            print("\nreal-fleet steps (s):\n" + "\n".join(f"  {s:6.1f}  {c}" for c, s in fleet.log))


def _ssh_login(fleet: Fleet) -> None:
    """What a cloud provider and the user do before Ansible: a key in ~deploy/.ssh, the host reachable."""
    ssh_dir = fleet.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / "id_ed25519")], check=True)
    pub = (ssh_dir / "id_ed25519.pub").read_text()
    for host in fleet.hosts:
        podman("exec", "-i", f"fleetbgp-real-{host}", "sh", "-c",
               "install -d -m 0700 -o deploy -g deploy ~deploy/.ssh && cat > ~deploy/.ssh/authorized_keys"
               " && chown deploy:deploy ~deploy/.ssh/authorized_keys", stdin=pub)  # fmt: skip
    deadline = time.monotonic() + 90
    for address in fleet.hosts.values():
        while True:
            proc = subprocess.run(
                ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                 "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
                 f"deploy@{address}", "sudo -n true"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                break
            assert time.monotonic() < deadline, f"no SSH login as deploy@{address}: {proc.stderr}"
            time.sleep(1)


def _write_files(fleet: Fleet, section: RealFleetSection, cwd: Path) -> None:
    mapping = {old: new for old, new in fleet.routers.items()}
    section_hosts, _ = _inventory_hosts(section)
    mapping.update({section_hosts[h]: a for h, a in fleet.hosts.items() if section_hosts[h] != h})
    for path, content in section.files.items():
        target = Path(path.replace("~", str(fleet.home), 1)) if path.startswith("~") else cwd / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_substitute_addresses(content, mapping))
    inventory_dir = next(cwd / p for p in section.files if p.endswith(("hosts.yml", "hosts.yaml"))).parent
    connection = inventory_dir / "group_vars/all/zz_test_connection.yml"
    connection.parent.mkdir(parents=True, exist_ok=True)
    ssh = fleet.home / ".ssh"
    connection.write_text(
        "# written by tests/e2e/test_real_fleet.py: the SSH key a user has in ~/.ssh (the user: the README's)\n"
        + yaml.safe_dump({
            "ansible_ssh_private_key_file": str(ssh / "id_ed25519"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'}",
        })
    )  # fmt: skip


def _vault_values(section: RealFleetSection) -> dict[str, str]:
    """The variables the README lists under `ansible-vault create` (`#   vault_NAME: ...`), random values."""
    values: dict[str, str] = {}
    for command in section.commands:
        if command.text.startswith("ansible-vault create"):
            names = [m.group(1) for note in command.notes if (m := re.match(r"#\s*(vault_\w+)\s*:", note))]
            assert names, f"the README lists no vault variables (#   vault_NAME: ...) under {command.text!r}"
            values.update({name: secrets.token_urlsafe(18) for name in names})
    return values


def _vault_encrypt(fleet: Fleet, command: Command, values: dict[str, str], cwd: Path) -> None:
    """`ansible-vault create FILE`, without the editor: encrypt the listed variables into FILE."""
    target = shlex.split(command.text)[-1]
    plain = fleet.work / "vault-plain.yml"
    plain.write_text(yaml.safe_dump(values))
    (cwd / target).parent.mkdir(parents=True, exist_ok=True)
    _run_ok(fleet, f"ansible-vault encrypt --vault-password-file {fleet.vault_pass} --output {target} {plain}", cwd)
    plain.unlink()


def _configure_routers(fleet: Fleet, section: RealFleetSection, vault: dict[str, str]) -> None:
    """BIRD on each router: a passive session to every host, with the host's MD5 password."""
    group_vars: dict[str, object] = {}
    for path, content in section.files.items():
        if "group_vars" in path and path.endswith((".yml", ".yaml")):
            group_vars.update(yaml.safe_load(content) or {})
    local_as = group_vars["fleet_bgp_local_as"]
    for i, neighbor in enumerate(group_vars["fleet_bgp_neighbors"]):  # type: ignore[arg-type]
        router = fleet.routers[str(neighbor["address"])]
        password = ""
        if "md5_password" in neighbor:
            var = re.search(r"\b(vault_\w+)", str(neighbor["md5_password"]))
            password = vault[var.group(1)] if var else str(neighbor["md5_password"])
        protocols = "".join(
            f"protocol bgp {host.replace('-', '_')} {{\n  local {router} as {neighbor['peer_as']};\n"
            f"  neighbor {address} as {local_as};\n  passive on;\n"
            + (f'  password "{password}";\n' if password else "")
            + "  ipv4 { import all; export none; };\n}\n"
            for host, address in fleet.hosts.items()
        )
        conf = f"log syslog all;\nrouter id {router};\nprotocol device {{}}\n{protocols}"
        name = f"fleetbgp-real-router{i}"
        podman("exec", "-i", name, "sh", "-c", "cat > /etc/bird/bird.conf", stdin=conf)
        podman("exec", name, "systemctl", "restart", "bird.service")
        deadline = time.monotonic() + 30
        while "up and running" not in podman("exec", name, "birdc", "show", "status", check=False):
            assert time.monotonic() < deadline, podman("exec", name, "journalctl", "-u", "bird", "-n", "20", check=False)
            time.sleep(0.5)


def _recap_changed(out: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M)}


def test_real_fleet_path(fleet: tuple[Fleet, RealFleetSection]) -> None:
    fl, section = fleet
    cwd = fl.work / "fleet-ops"  # the README: "one directory of your own that holds the inventory"
    cwd.mkdir()
    # A cloud image, not the lab's: the roles must install these themselves.
    for host in fl.hosts:
        missing = podman("exec", f"fleetbgp-real-{host}", "sh", "-c",
                         "for p in python3-venv rsyslog nftables; do dpkg -s $p >/dev/null 2>&1 && echo $p; done; true")  # fmt: skip
        assert missing.strip() == "", f"{host}: the stock image has {missing.split()}"
    _write_files(fl, section, cwd)
    commands = [c.text for c in section.commands]
    vault = _vault_values(section)
    _configure_routers(fl, section, vault)
    deploy = ""
    checked = status_seen = False
    for i, command in enumerate(section.commands):
        text = command.text.replace("--ask-vault-pass", f"--vault-password-file {fl.vault_pass}")
        words = shlex.split(text.split("\n", 1)[0])
        if words and words[0] == "cd":
            cwd = (cwd / words[1].replace("~", str(fl.home), 1)).resolve()
            continue
        if words[:2] == ["ansible-vault", "create"]:
            _vault_encrypt(fl, command, vault, cwd)
            continue
        if words[0] == "ansible-playbook" and command.text in commands[i + 1 :]:
            continue  # shown again later in the section: run it there
        is_site = "fleet.bgp.site" in words
        if is_site and "--check" in words:
            assert not deploy, "the README deploys before its --check --diff preview"
        out = _run_ok(fl, text, cwd)
        if words[0] == "ansible-doc":
            assert "not found" not in out.lower(), f"{text}: {out[-2000:]}"
        if is_site and "--check" in words:
            checked = True
        elif is_site:
            deploy = text
        if "fleet.bgp.status" in words:
            status_seen = True
            _assert_established(fl, out)
    assert checked, "the README has no `ansible-playbook fleet.bgp.site ... --check --diff`"
    assert deploy, "the README has no deploy (`ansible-playbook fleet.bgp.site ...` without --check)"
    assert status_seen, "the README has no `ansible-playbook fleet.bgp.status`"

    # Second run: nothing to change.
    out = _run_ok(fl, deploy, cwd)
    changed = _recap_changed(out)
    assert set(changed) >= set(fl.hosts), f"no PLAY RECAP for every host:\n{out[-3000:]}"
    assert all(n == 0 for n in changed.values()), f"second run changed something: {changed}\n{out[-6000:]}"

    # Backup with a controller copy: the README's command if it has one, else the documented one.
    # (docs/operations/backup-restore.md's command, with the vault the README's inventory has)
    backup = next((c for c in commands if "fleet.bgp.backup" in c), "ansible-playbook fleet.bgp.backup -i inventory/ --ask-vault-pass")
    backup = backup.replace("--ask-vault-pass", f"--vault-password-file {fl.vault_pass}")
    if "fleet_bgp_backup_fetch" not in backup:
        backup += " -e fleet_bgp_backup_fetch=true"
    _run_ok(fl, backup, cwd)
    _assert_private_copies(fl.home / "fleetbgp-backups", fl.hosts)


def _assert_established(fleet: Fleet, status_out: str) -> None:
    # fleet.bgp.status: one row per host, "established/configured" as N/M.
    for host in fleet.hosts:
        row = next((line for line in status_out.splitlines() if re.search(rf"(^|\W){re.escape(host)}\W", line)
                    and re.search(r"\b\d+/\d+\b", line)), "")  # fmt: skip
        pair = re.search(r"\b(\d+)/(\d+)\b", row)
        assert pair and pair.group(1) == pair.group(2) != "0", f"{host}: sessions not established: {row!r}\n{status_out[-3000:]}"
    for i in range(len(fleet.routers)):
        protocols = podman("exec", f"fleetbgp-real-router{i}", "birdc", "show", "protocols")
        assert protocols.count("Established") == len(fleet.hosts), protocols


def _assert_private_copies(fetch_dir: Path, hosts: dict[str, str]) -> None:
    assert fetch_dir.is_dir(), f"no controller copy in {fetch_dir}"
    for path in [fetch_dir, *fetch_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        assert mode == want, f"{path}: mode {mode:04o}, want {want:04o} (the archive holds secrets.env)"
    for host in hosts:
        assert any(p.is_file() and not p.name.endswith(".sha256") for p in (fetch_dir / host).iterdir()), host
