"""The e2e lab fleet for tests/e2e (the fixtures are in conftest.py): a second lab fleet (BIRD 2 router + three bgp_servers in podman containers
with systemd as PID 1), separate from the demo lab, driven with the collection's playbooks.

The lab is `lab/fleet/lab.sh` with FLEETBGP_LAB_INVENTORY=tests/e2e/inventory,
FLEETBGP_LAB_STATE=/run/fleetbgp-e2e-lab and FLEETBGP_LAB_LABEL=fleetbgp.e2e-lab. It is left
running after the session (quick re-runs); remove it with
    FLEETBGP_LAB_INVENTORY=$PWD/tests/e2e/inventory FLEETBGP_LAB_STATE=/run/fleetbgp-e2e-lab \
    FLEETBGP_LAB_LABEL=fleetbgp.e2e-lab lab/fleet/lab.sh down
(docs/lab.md, "The e2e lab"). Run: scripts/run-pytest.sh --root tests/e2e

Fixtures: `lab` (session scope, the `Lab` below, baseline deployed) and `BirdSampler` for tests
that must show BIRD kept a path at every moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAB_SH = REPO / "lab" / "fleet" / "lab.sh"
INVENTORY = Path(__file__).resolve().parent / "inventory"
# FLEETBGP_E2E_LAB_INVENTORY/_STATE/_LABEL point the harness at another lab of the same shape (a
# private one while developing tests; its inventory a copy of tests/e2e/inventory with its own
# container names, network and subnet).
INVENTORY = Path(os.environ.get("FLEETBGP_E2E_LAB_INVENTORY", str(INVENTORY)))
LAB_ENV = {
    "FLEETBGP_LAB_INVENTORY": str(INVENTORY),
    "FLEETBGP_LAB_STATE": os.environ.get("FLEETBGP_E2E_LAB_STATE", "/run/fleetbgp-e2e-lab"),
    "FLEETBGP_LAB_LABEL": os.environ.get("FLEETBGP_E2E_LAB_LABEL", "fleetbgp.e2e-lab"),
    # The tests must run on the images of this checkout, not on containers from an older build.
    "FLEETBGP_LAB_REPLACE_OLDER": "1",
}
# What the e2e inventory announces (tests/e2e/inventory/group_vars/bgp_servers/main.yml, host_vars/).
ANYCAST = "100.10.0.100/32"  # all three servers, same attributes (ECMP)
ANYCAST6 = "2001:db8:100::100/128"  # the same, over the IPv6 sessions
SERVICE = "100.10.0.200/32"  # srv1 MED 100 (primary), srv2 MED 200 (backup)
SERVICE_ANNOUNCERS = ("srv1", "srv2")
AGENT = "/opt/fleetbgp/venv/bin/fleetbgp"
UP_TIMEOUT = float(os.environ.get("FLEETBGP_E2E_UP_TIMEOUT", "600"))
SITE_TIMEOUT = float(os.environ.get("FLEETBGP_E2E_SITE_TIMEOUT", "900"))
CONVERGE_TIMEOUT = float(os.environ.get("FLEETBGP_E2E_CONVERGE_TIMEOUT", "60"))

_VIA = re.compile(r"^\s+via\s+([0-9a-fA-F.:]+)\s")
_MED = re.compile(r"^\s+BGP\.med:\s+(\d+)")


def _parse_sessions(out: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[1] == "BGP":
            result[f[0]] = f[5] if len(f) > 5 else f[3]
    return result


def _parse_vias(out: str) -> set[str]:
    return {m.group(1) for line in out.splitlines() if (m := _VIA.match(line))}


def _source_digest(files: dict[str, bytes]) -> str:
    """One digest of Python files {path from the package's parent: content}; _INSTALLED_DIGEST computes
    the same on a server from the installed package."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


_INSTALLED_DIGEST = """
import hashlib, pathlib, fleetbgp
root = pathlib.Path(fleetbgp.__file__).parent
files = {str(p.relative_to(root.parent)): p.read_bytes() for p in root.rglob("*.py")}
h = hashlib.sha256()
for name in sorted(files):
    h.update(name.encode() + b"\\0" + hashlib.sha256(files[name]).digest())
print(h.hexdigest())
"""


def _out(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


class Lab:
    """The e2e lab fleet. Servers are addressed by inventory name (srv1..srv3, router)."""

    def __init__(self) -> None:
        self.repo: Path = REPO
        self.inventory: Path = INVENTORY
        self._base_env = {**os.environ, **LAB_ENV}
        self.env: dict[str, str] = {}
        self.servers: list[str] = []
        self.router = "router"
        self.client = "client"
        self._containers: dict[str, str] = {}
        self._addrs: dict[str, str] = {}
        self._addrs6: dict[str, str] = {}

    # --- lab lifecycle ----------------------------------------------------------------------------
    def lab_sh(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(LAB_SH), *args], env=self._base_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"lab.sh {' '.join(args)} failed (exit {proc.returncode}):\n{_out(proc)}")
        return proc

    def up(self) -> None:
        self.lab_sh("up", timeout=UP_TIMEOUT)
        for line in self.lab_sh("names").stdout.splitlines():
            role, name, container, addr, addr6 = line.split()
            self._containers[name] = container
            self._addrs[name] = addr
            self._addrs6[name] = addr6
            if role == "router":
                self.router = name
            elif role == "client":
                self.client = name
            elif name not in self.servers:
                self.servers.append(name)
        env: dict[str, str] = {}
        for line in self.lab_sh("env").stdout.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                key, _, value = words[1].partition("=")
                env[key] = value
        env["ANSIBLE_FORCE_COLOR"] = "0"
        env["ANSIBLE_NOCOLOR"] = "1"
        self.env = env

    # --- containers -------------------------------------------------------------------------------
    def container(self, name: str) -> str:
        if name in self._containers.values():
            return name
        try:
            return self._containers[name]
        except KeyError:
            raise KeyError(f"no lab host {name!r} (have {sorted(self._containers)})") from None

    def addr(self, name: str) -> str:
        return self._addrs[name]

    def addr6(self, name: str) -> str:
        return self._addrs6[name]

    def name_of(self, addr: str) -> str:
        """Inventory name of the host with this IPv4 or IPv6 address."""
        for name in self._addrs:
            if addr in (self._addrs[name], self._addrs6[name]):
                return name
        raise KeyError(f"no lab host has address {addr}")

    def exec(self, name: str, *argv: str, check: bool = True, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["podman", "exec", *(["-i"] if input is not None else []),
                               self.container(name), *argv],
                              capture_output=True, text=True, timeout=timeout, check=False, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman exec {self.container(name)} {shlex.join(argv)} failed "
                                 f"(exit {proc.returncode}):\n{_out(proc)}")
        return proc

    def sha256(self, name: str, *paths: str) -> dict[str, str]:
        """sha256 of files on a host ({path: hexdigest}; a missing file maps to 'missing')."""
        script = 'for f in "$@"; do if [ -f "$f" ]; then sha256sum "$f"; else echo "missing $f"; fi; done'
        out = self.exec(name, "sh", "-c", script, "sh", *paths).stdout
        result: dict[str, str] = {}
        for line in out.splitlines():
            digest, _, path = line.partition(" ")
            result[path.strip().lstrip("*")] = digest
        return result

    def agent_status(self, name: str) -> dict[str, Any]:
        """The agent's `status` over its control socket (fleetbgp show status --json)."""
        proc = self.exec(name, AGENT, "show", "status", "--json")
        return json.loads(proc.stdout)

    def health_checks(self, name: str) -> dict[str, dict[str, Any]]:
        """The agent's health checks on a host (fleetbgp show health --json), by name."""
        proc = self.exec(name, AGENT, "show", "health", "--json")
        return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}

    # --- Ansible ----------------------------------------------------------------------------------
    def playbook(self, playbook: str, *args: str, extra_vars: dict[str, Any] | None = None,
                 inventory: str | None = None, check: bool = True,
                 timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """ansible-playbook PLAYBOOK ARGS with the lab's environment, from the repository root.
        stdout and stderr together in .stdout. With check=True a failure raises with the output."""
        cmd = [str(self.repo / ".venv/bin/ansible-playbook"), playbook, *args]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if inventory:
            cmd += ["-i", inventory]
        proc = subprocess.run(cmd, cwd=self.repo, env={**self._base_env, **self.env},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{shlex.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}")
        return proc

    # --- BIRD -------------------------------------------------------------------------------------
    def birdc(self, *args: str) -> str:
        return self.exec(self.router, "birdc", *args, timeout=20).stdout

    def sessions(self) -> dict[str, str]:
        """BGP protocols of the router: {name: Info column (Established, Passive, ...) or State}."""
        return _parse_sessions(self.birdc("show", "protocols"))

    def snapshot(self, prefix: str) -> tuple[dict[str, str], set[str]]:
        """sessions() and paths(prefix) from one birdc call (commands on stdin): cheaper to sample."""
        out = self.exec(self.router, "birdc", input=f"show protocols\nshow route {prefix} all\n",
                        timeout=20).stdout
        return _parse_sessions(out), _parse_vias(out)

    def paths(self, prefix: str) -> set[str]:
        """Next-hop addresses of the paths BIRD holds for PREFIX (exact match)."""
        out = self.exec(self.router, "birdc", "show", "route", prefix, "all", check=False, timeout=20).stdout
        return _parse_vias(out)

    def meds(self, prefix: str) -> dict[str, int | None]:
        """{server: MED of its path at BIRD (None when it sends none)} for PREFIX."""
        out = self.exec(self.router, "birdc", "show", "route", prefix, "all", check=False, timeout=20).stdout
        result: dict[str, int | None] = {}
        host = ""
        for line in out.splitlines():
            if m := _VIA.match(line):
                host = self.name_of(m.group(1))
                result[host] = None
            elif host and (m := _MED.match(line)):
                result[host] = int(m.group(1))
        return result

    def path_hosts(self, prefix: str) -> set[str]:
        """Inventory names of the servers BIRD has a path from for PREFIX."""
        return {self.name_of(a) for a in self.paths(prefix)}

    def best_path(self, prefix: str) -> str | None:
        """Next hop of the best path (marked *) for PREFIX, or None."""
        out = self.exec(self.router, "birdc", "show", "route", prefix, "primary", check=False,
                        timeout=20).stdout
        found = [m.group(1) for line in out.splitlines() if (m := _VIA.match(line))]
        return found[0] if found else None

    # --- convergence ------------------------------------------------------------------------------
    def expected_paths(self) -> dict[str, set[str]]:
        return {ANYCAST: {self.addr(s) for s in self.servers},
                ANYCAST6: {self.addr6(s) for s in self.servers},
                SERVICE: {self.addr(s) for s in SERVICE_ANNOUNCERS}}

    def session_names(self, *servers: str) -> set[str]:
        """BIRD's protocols for these servers (default all): NAME over IPv4, NAME_v6 over IPv6."""
        return {n for s in (servers or self.servers) for n in (s, f"{s}_v6")}

    def converged(self) -> tuple[bool, str]:
        sessions = self.sessions()
        bad = {n: s for n, s in sessions.items() if s != "Established"}
        if bad or set(sessions) != self.session_names():
            return False, f"sessions: {sessions}"
        for prefix, want in self.expected_paths().items():
            have = self.paths(prefix)
            if have != want:
                return False, f"{prefix}: paths {sorted(have)}, expected {sorted(want)}"
        return True, "ok"

    def wait_converged(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            ok, why = self.converged()
            if ok:
                return
            time.sleep(0.5)
        raise AssertionError(f"the lab did not converge within {timeout:.0f} s: {why}")

    @staticmethod
    def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll CHECK every 0.5 s until it is true; fail naming WHAT after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
            time.sleep(0.5)

    def deploy(self, *hosts: str) -> subprocess.CompletedProcess[str]:
        """fleet.bgp.site on HOSTS (default: every server)."""
        limit = ["--limit", ",".join(hosts)] if hosts else []
        return self.playbook("fleet.bgp.site", *limit, timeout=SITE_TIMEOUT)

    def agent_role(self, *hosts: str, extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        """The fleet.bgp.agent role alone on HOSTS (tests/e2e/playbooks/agent_role.yml): for a test that
        changes an agent setting only, in a fraction of a fleet.bgp.site run."""
        return self.playbook(str(Path(__file__).resolve().parent / "playbooks" / "agent_role.yml"),
                             "--limit", ",".join(hosts), extra_vars=extra_vars, timeout=SITE_TIMEOUT)

    # --- the baseline -------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """What the baseline deploy depends on: the collection's sources and the e2e inventory, the
        containers, and what each server runs (config, secrets, unit, agent active)."""
        paths = ["galaxy.yml", "meta", "roles", "playbooks", "plugins", "agent", "tests/e2e/inventory"]
        listed = subprocess.run(["git", "-C", str(self.repo), "ls-files", "-co", "--exclude-standard", "-z",
                                 "--", *paths], capture_output=True, check=True, timeout=60).stdout
        h = hashlib.sha256()
        for name in sorted(n for n in listed.decode().split("\0") if n and "__pycache__" not in n):
            f = self.repo / name
            if f.is_file():
                h.update(name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
        for name in [self.router, *self.servers]:
            h.update(subprocess.run(["podman", "container", "inspect", "--format", "{{.Id}}",
                                     self.container(name)], capture_output=True, check=True,
                                    timeout=60).stdout)
        for s in self.servers:
            h.update(self.exec(s, "sh", "-c", "sha256sum /etc/fleetbgp/fleetbgp.conf /etc/fleetbgp/secrets.env "
                               "/etc/systemd/system/fleetbgp.service 2>&1; systemctl is-active fleetbgp",
                               check=False).stdout.encode())
        return h.hexdigest()

    def agent_outdated(self) -> list[str]:
        """The servers whose installed agent is not this checkout's agent/src/fleetbgp (its .py files
        compared by content). The role reinstalls only when the version differs, so an agent changed
        without a new version (or installed by another checkout sharing the lab) stays otherwise."""
        listed = subprocess.run(["git", "-C", str(self.repo), "ls-files", "-co", "--exclude-standard", "-z",
                                 "--", "agent/src/fleetbgp"], capture_output=True, check=True, timeout=60).stdout
        files = {n.removeprefix("agent/src/"): self.repo / n
                 for n in listed.decode().split("\0") if n.endswith(".py")}
        want = _source_digest({name: f.read_bytes() for name, f in files.items() if f.is_file()})
        python = "/opt/fleetbgp/venv/bin/python"
        return [s for s in self.servers
                if self.exec(s, python, "-c", _INSTALLED_DIGEST, check=False).stdout.strip() != want]

    def ensure_baseline(self) -> None:
        """Deploy the baseline (fleet.bgp.site on every server) unless this lab already runs it: the
        same sources, containers and deployed files as after the last successful baseline deploy, and
        converged. FLEETBGP_E2E_REDEPLOY=1 always deploys."""
        marker = Path(LAB_ENV["FLEETBGP_LAB_STATE"]) / "e2e-baseline"
        if (os.environ.get("FLEETBGP_E2E_REDEPLOY") != "1" and marker.is_file()
                and marker.read_text().strip() == self.fingerprint() and not self.agent_outdated()
                and self.converged()[0]):
            return
        self._deploy_baseline(marker)

    def _deploy_baseline(self, marker: Path) -> None:
        marker.unlink(missing_ok=True)
        # Back to the baseline on purpose: a prefix a failed test left announced is withdrawn, which
        # the route plan would refuse without the override. An agent that is not this checkout's is
        # reinstalled (agent_outdated: same version, other code), without the route plan: the plan
        # asks the installed agent, which may not know the new config's keywords (e.g. `bfd`).
        # The drained restart of an upgrade would refuse to drain the last announcer of such a
        # leftover prefix: fleet_bgp_restart_force, since withdrawing it is the point.
        force = bool(self.agent_outdated())
        self.playbook("fleet.bgp.site", *(["--skip-tags", "fleet_bgp_plan"] if force else []),
                      extra_vars={"fleet_bgp_allow_unannounced": True, "fleet_bgp_agent_force_install": force,
                                  "fleet_bgp_restart_force": True},
                      timeout=SITE_TIMEOUT)
        try:
            self.wait_converged(timeout=30)
        except AssertionError:
            # After failed sessions (a test's wrong peer AS, a put-back) BIRD holds a protocol back
            # for its "error wait time" (60 s, doubling to 300 s): restart those protocols, as
            # docs/lab.md says, so that the baseline does not wait for BIRD's backoff.
            for name, state in self.sessions().items():
                if state != "Established":
                    self.birdc("restart", name)
            self.wait_converged()
        marker.write_text(self.fingerprint() + "\n")

    def reset(self) -> None:
        """Back to the baseline: undrain every agent that answers, redeploy fleet.bgp.site on all
        servers, wait until every session is Established and every route is back at BIRD."""
        for s in self.servers:
            self.exec(s, AGENT, "maintenance", "off", check=False, timeout=30)
        self._deploy_baseline(Path(LAB_ENV["FLEETBGP_LAB_STATE"]) / "e2e-baseline")


class BirdSampler:
    """Samples BIRD's sessions and the paths for PREFIX in a thread while the `with` block runs.

        with BirdSampler(lab, ANYCAST) as s:
            lab.playbook(...)
        assert s.min_paths() >= 1 and not s.gaps()
    """

    def __init__(self, lab: Lab, prefix: str, interval: float = 0.25) -> None:
        self.lab = lab
        self.prefix = prefix
        self.interval = interval
        self.samples: list[tuple[float, dict[str, str], set[str]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bird-sampler {prefix}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self.samples.append((time.time(), *self.lab.snapshot(self.prefix)))
            except Exception as exc:  # a failed birdc is recorded, never silently skipped
                self.errors.append(f"{time.time():.3f}: {exc}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def __enter__(self) -> BirdSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        # One last sample, so a short block still has a view of the end state.
        self.samples.append((time.time(), *self.lab.snapshot(self.prefix)))

    def min_paths(self) -> int:
        if not self.samples:
            raise AssertionError("BirdSampler took no sample")
        return min(len(p) for _, _, p in self.samples)

    def gaps(self) -> list[tuple[float, dict[str, str], set[str]]]:
        return [s for s in self.samples if not s[2]]
