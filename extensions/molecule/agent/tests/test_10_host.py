"""The bgp_server after the role: unit, user, files and modes, secrets, hardening."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import SERVER

SECRETS = "/etc/fleetbgp/secrets.env"
SEARCHED = "/etc /var /opt /run /root /home /tmp /srv /usr/local"


def test_systemd_is_running(host):
    """Both instances booted systemd as PID 1 and nothing failed (the recipe's images)."""
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert state == "running", f"{state}; failed units: {failed}"


def unit_props(server) -> dict[str, str]:
    out = server.check_output(
        "systemctl show fleetbgp.service -p ActiveState -p SubState -p User -p Group -p MainPID -p Type "
        "-p FragmentPath -p UnitFileState -p ExecReload"
    )
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_unit_active_as_fleetbgp(server):
    props = unit_props(server)
    assert props["ActiveState"] == "active" and props["SubState"] == "running", props
    assert props["FragmentPath"] == "/etc/systemd/system/fleetbgp.service"
    assert props["UnitFileState"] == "enabled"
    assert props["Type"] == "notify"
    assert props["User"] == "fleetbgp"
    pid = int(props["MainPID"])
    assert pid > 0
    assert server.check_output(f"ps -o user= -p {pid}").strip() == "fleetbgp"
    assert "/opt/fleetbgp/venv/bin/" in server.check_output(f"cat /proc/{pid}/cmdline | tr '\\0' ' '")


def test_unit_documentation_is_on_the_host(server):
    """Documentation= names the operator's guide the role installed, not a URL the host cannot reach."""
    docs = server.check_output("systemctl show fleetbgp.service -p Documentation --value").split()
    assert docs == ["file:///usr/share/doc/fleetbgp/operations.md"], docs
    assert "fleetbgp" in server.check_output("head -5 /usr/share/doc/fleetbgp/operations.md")


def test_system_user(server):
    _name, _pw, uid, _gid, _gecos, home, shell = server.check_output("getent passwd fleetbgp").split(":")
    assert home == "/var/lib/fleetbgp"
    assert shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
    assert int(uid) < 1000, "a system user"
    assert server.run("getent group fleetbgp").rc == 0


# path, type, owner, group, mode (None: not checked): docs/dev/collection-contract.md
PATHS = [
    ("/opt/fleetbgp/venv/bin/fleetbgp", "regular file", "root", None, None),
    ("/etc/fleetbgp", "directory", "root", "fleetbgp", 0o750),
    ("/etc/fleetbgp/fleetbgp.conf", "regular file", "root", "fleetbgp", 0o640),
    (SECRETS, "regular file", "root", "root", 0o600),
    ("/etc/fleetbgp/api", "directory", "root", None, None),
    ("/etc/fleetbgp/api/molecule-announce", "regular file", "root", "root", 0o755),
    ("/var/lib/fleetbgp", "directory", "fleetbgp", None, 0o750),
    ("/etc/systemd/system/fleetbgp.service", "regular file", "root", "root", 0o644),
    ("/run/fleetbgp/control.sock", "socket", None, "fleetbgp", 0o660),
]


@pytest.fixture(scope="module")
def stats(server) -> dict[str, tuple[str, str, str, int]]:
    """One `stat` for every path of PATHS: {path: (type, owner, group, mode)}."""
    paths = " ".join(p[0] for p in PATHS)
    out = server.run(f"stat -L -c '%n|%F|%U|%G|%a' {paths}").stdout
    result = {}
    for line in out.splitlines():
        path, kind, owner, group, mode = line.split("|")
        result[path] = (kind, owner, group, int(mode, 8))
    return result


@pytest.mark.parametrize(("path", "kind", "owner", "group", "mode"), PATHS, ids=[p[0] for p in PATHS])
def test_owner_and_mode(stats, path, kind, owner, group, mode):
    assert path in stats, f"{path} does not exist"
    got_kind, got_owner, got_group, got_mode = stats[path]
    assert got_kind == kind
    if owner is not None:
        assert got_owner == owner
    if group is not None:
        assert got_group == group
    if mode is not None:
        assert got_mode == mode, f"{path}: {oct(got_mode)}, want {oct(mode)}"


def test_control_socket_owner(stats):
    # the contract says root:fleetbgp; the agent runs as fleetbgp and creates the socket itself
    assert stats["/run/fleetbgp/control.sock"][1] in ("root", "fleetbgp")


NOT_WRITABLE = [
    "/etc/fleetbgp",
    "/etc/fleetbgp/fleetbgp.conf",
    "/etc/fleetbgp/api",
    "/etc/fleetbgp/api/molecule-announce",
    "/opt/fleetbgp/venv",
    "/opt/fleetbgp/venv/bin/fleetbgp",
    "/etc/systemd/system/fleetbgp.service",
]


def test_agent_cannot_rewrite_its_config_or_programs(server):
    """The agent's user reads its config and programs but can change none of them."""
    script = "; ".join(f"test -w {p} && echo {p}" for p in NOT_WRITABLE) + "; true"
    writable = server.check_output(f"runuser -u fleetbgp -- sh -c '{script}'").split()
    assert writable == [], f"writable by fleetbgp: {writable}"


def test_agent_can_read_its_config(server):
    assert server.run("runuser -u fleetbgp -- test -r /etc/fleetbgp/fleetbgp.conf").rc == 0
    assert server.run(f"runuser -u fleetbgp -- test -r {SECRETS}").rc == 1


def test_config_references_password_by_env(server, md5_password):
    conf = server.file("/etc/fleetbgp/fleetbgp.conf").content_string
    assert re.search(r"md5-password\s+env\[", conf), "md5-password should come from the environment file"
    assert md5_password not in conf


def test_secrets_file_holds_the_password(server, md5_password):
    assert md5_password in server.file(SECRETS).content_string


def _exec_with_needle(script: str, needle: str, *, privileged: bool = False) -> subprocess.CompletedProcess:
    """Run script in the bgp_server with the password in $NEEDLE, which the script hands to grep on
    stdin (`printenv NEEDLE | grep -f -`): the password is never on a command line."""
    return subprocess.run(
        [
            "podman",
            "exec",
            *(["--privileged"] if privileged else []),
            "-e",
            "NEEDLE",
            SERVER,
            "sh",
            "-c",
            script,
        ],
        env=dict(os.environ, NEEDLE=needle),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_password_nowhere_else_on_disk(md5_password):
    proc = _exec_with_needle(f"printenv NEEDLE | grep -rlsF -D skip -f - {SEARCHED}; true", md5_password)
    found = sorted(set(proc.stdout.split()))
    assert found == [SECRETS], f"the MD5 password is in: {found}"


def test_password_not_in_journal(md5_password):
    proc = _exec_with_needle(
        "journalctl --no-pager -o verbose --all >/tmp/.journal;"
        " printenv NEEDLE | grep -cF -f - /tmp/.journal; wc -l </tmp/.journal; rm -f /tmp/.journal",
        md5_password,
    )
    count, lines = proc.stdout.split()
    assert int(lines) > 10, "the journal should not be empty (role and agent logs)"
    assert int(count) == 0, "the MD5 password is in the journal"


def test_password_not_on_any_command_line(md5_password):
    proc = _exec_with_needle(
        "ps -eo args= >/tmp/.ps; printenv NEEDLE | grep -cF -f - /tmp/.ps; rm -f /tmp/.ps", md5_password
    )
    assert proc.stdout.strip() == "0"


def test_password_not_in_unit_properties(server, md5_password):
    assert md5_password not in server.check_output("systemctl show fleetbgp.service")
    assert md5_password not in server.check_output("systemctl cat fleetbgp.service")


def test_systemd_analyze_security_exposure(server):
    out = server.check_output("systemd-analyze security --no-pager fleetbgp.service")
    m = re.search(r"Overall exposure level for fleetbgp\.service:\s*([0-9.]+)", out)
    assert m, out[-2000:]
    exposure = float(m.group(1))
    assert exposure <= 1.5, f"exposure {exposure} > 1.5\n{out}"


def test_sandbox_is_in_effect(server):
    """The unit runs in its own mount namespace, with /usr read-only: the hardening is applied for real
    (the container has CAP_SYS_ADMIN for that; without it systemd silently skips the mount sandbox)."""
    pid = unit_props(server)["MainPID"]
    # as root with every capability (CAP_SYS_PTRACE) to look into the fleetbgp process's namespace
    script = (
        f"readlink /proc/{pid}/ns/mnt /proc/1/ns/mnt; nsenter -t {pid} -m touch /usr/.fleetbgp-sandbox-probe"
    )
    proc = subprocess.run(
        ["podman", "exec", "--privileged", SERVER, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    service_ns, init_ns = proc.stdout.split()[:2]
    assert service_ns != init_ns, "the unit has no mount namespace of its own"
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr, (proc.returncode, proc.stderr)


def test_api_program_runs_as_fleetbgp(server):
    pid = unit_props(server)["MainPID"]
    out = server.check_output("ps -eo pid=,ppid=,user=,args=")
    progs = [line.split(None, 3) for line in out.splitlines() if "molecule-announce" in line]
    progs = [p for p in progs if "ps -eo" not in p[3]]
    assert progs, f"API program not running:\n{out}"
    for _pid, ppid, user, _args in progs:
        assert user == "fleetbgp"
        assert ppid == pid or server.run(f"test $(ps -o ppid= -p {ppid}) -eq {pid}").rc == 0


def test_api_program_environment_has_no_password(md5_password):
    """API programs get the agent's environment minus the FLEETBGP_MD5_* passwords (agent/src/fleetbgp/
    childenv.py): a program, maybe third-party, cannot read the MD5 passwords."""
    proc = _exec_with_needle(
        "for p in $(pgrep -f '^/bin/sh /etc/fleetbgp/api/molecule-announce'); do cat /proc/$p/environ; done"
        " | tr '\\0' '\\n' >/tmp/.env;"
        " printenv NEEDLE | grep -cF -f - /tmp/.env; wc -l </tmp/.env; rm -f /tmp/.env",
        md5_password,
        privileged=True,  # CAP_SYS_PTRACE to read a fleetbgp process's environ
    )
    count, lines = proc.stdout.split()
    assert int(lines) > 0, "no API program environment read"
    assert int(count) == 0, "the MD5 password is in an API program's environment"
