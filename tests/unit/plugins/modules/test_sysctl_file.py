"""fleet.bgp.sysctl_file against a fake /proc/sys tree (proc_root) in a temporary directory: the file,
the values written, the keys skipped with a warning, check mode, errors; and (as root) against a real
/proc/sys bound read-only in a throwaway mount and network namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.fleet.bgp.plugins.modules import sysctl_file


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net" / "ipv4").mkdir(parents=True)
    (root / "net" / "core").mkdir(parents=True)
    (root / "net" / "ipv4" / "conf" / "eth0.100").mkdir(parents=True)
    (root / "net" / "ipv4" / "tcp_fin_timeout").write_text("60\n")
    (root / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456\n")
    (root / "net" / "ipv4" / "conf" / "eth0.100" / "rp_filter").write_text("0\n")
    ro = root / "net" / "core" / "rmem_max"
    ro.write_text("212992\n")
    ro.chmod(0o444)  # what a container sees for a per-host key
    return root


SETTINGS = {
    "net.ipv4.tcp_fin_timeout": 30,
    "net.ipv4.tcp_rmem": [4096, 87380, 67108864],
    "net.ipv4.conf.eth0/100.rp_filter": 2,  # a dot inside a name: eth0.100
    "net.core.rmem_max": 134217728,  # read-only here
    "net.netfilter.nf_conntrack_max": 262144,  # no such file
    "net.ipv4.tcp_max_syn_backlog": None,  # left out
}


def args(proc: Path, tmp_path: Path, **kw):
    return {"settings": SETTINGS, "path": str(tmp_path / "99-test.conf"), "proc_root": str(proc),
            "header": ["test header"], **kw}


def test_writes_applies_warns_and_is_idempotent(proc, tmp_path, run_module):
    failed, result = run_module(sysctl_file, args(proc, tmp_path), diff=True)
    assert not failed and result["changed"]
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "30"
    assert (proc / "net/ipv4/tcp_rmem").read_text() == "4096 87380 67108864"
    assert (proc / "net/ipv4/conf/eth0.100/rp_filter").read_text() == "2"
    assert (proc / "net/core/rmem_max").read_text() == "212992\n", "a read-only key is not written"
    assert set(result["applied"]) == {"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_rmem",
                                      "net.ipv4.conf.eth0/100.rp_filter"}
    assert result["applied"]["net.ipv4.tcp_rmem"] == {"before": "4096 131072 6291456",
                                                      "after": "4096 87380 67108864"}
    assert set(result["skipped_keys"]) == {"net.core.rmem_max", "net.netfilter.nf_conntrack_max"}
    warnings = "\n".join(map(str, result["warnings"]))  # 2.19: dicts (with the message), earlier: strings
    assert "sysctl net.core.rmem_max: read-only here" in warnings
    assert "sysctl net.netfilter.nf_conntrack_max: not in the running kernel" in warnings
    assert "modprobe nf_conntrack" in warnings
    assert (tmp_path / "99-test.conf").read_text() == (
        "# test header\n"
        "# net.core.rmem_max = 134217728    # skipped: read-only here\n"
        "net.ipv4.conf.eth0/100.rp_filter = 2\n"
        "net.ipv4.tcp_fin_timeout = 30\n"
        "net.ipv4.tcp_rmem = 4096 87380 67108864\n"
        "# net.netfilter.nf_conntrack_max = 262144    # skipped: not in the running kernel\n"
    )
    assert (tmp_path / "99-test.conf").stat().st_mode & 0o777 == 0o644

    failed, result = run_module(sysctl_file, args(proc, tmp_path))
    assert not failed and not result["changed"] and result["applied"] == {}
    assert result["warnings"], "the skipped keys are warned about on every run"


def test_check_mode_predicts_and_changes_nothing(proc, tmp_path, run_module):
    failed, result = run_module(sysctl_file, args(proc, tmp_path), check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert "net.ipv4.tcp_fin_timeout" in result["applied"]
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "60\n"
    assert not (tmp_path / "99-test.conf").exists()
    assert "net.ipv4.tcp_fin_timeout = 30" in result["diff"][0]["after"]


def test_apply_false_only_writes_the_file(proc, tmp_path, run_module):
    failed, result = run_module(sysctl_file, args(proc, tmp_path, apply=False))
    assert not failed and result["changed"] and result["applied"] == {}
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "60\n"
    assert "net.ipv4.tcp_fin_timeout = 30" in (tmp_path / "99-test.conf").read_text()


def test_missing_fail_names_every_key(proc, tmp_path, run_module):
    failed, result = run_module(sysctl_file, args(proc, tmp_path, missing="fail"))
    assert failed
    assert "net.core.rmem_max" in result["msg"] and "net.netfilter.nf_conntrack_max" in result["msg"]
    assert not (tmp_path / "99-test.conf").exists()
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "60\n"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"net.ipv4.tcp fin": 1}, "'net.ipv4.tcp fin' is not a sysctl key"),
        ({"net..ipv4": 1}, "'net..ipv4' is not a sysctl key"),
        ({"net.ipv4.tcp_fin_timeout": ""}, "net.ipv4.tcp_fin_timeout: empty value"),
        ({"net.ipv4.tcp_fin_timeout": "30\nkernel.x = 1"}, "net.ipv4.tcp_fin_timeout: the value has a line break"),
    ],
)
def test_bad_input_is_an_error_naming_the_key(proc, tmp_path, run_module, settings, message):
    failed, result = run_module(sysctl_file, {"settings": settings, "path": str(tmp_path / "x.conf"),
                                              "proc_root": str(proc)})
    assert failed and message in result["msg"], result["msg"]
    assert not (tmp_path / "x.conf").exists()


def test_proc_path():
    assert sysctl_file.proc_path("net.ipv4.tcp_fin_timeout") == "net/ipv4/tcp_fin_timeout"
    assert sysctl_file.proc_path("net.ipv4.conf.eth0/100.rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"
    assert sysctl_file.proc_path("net/ipv4/conf/eth0.100/rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"


# --- a /proc/sys that cannot be written (read-only mount, or files this user cannot write) --------------
# The unit tests below stand the mount in with write_blocker (what the module asks the system); the
# real thing, a read-only bind of /proc/sys in a throwaway mount namespace, is the last test.

def read_only_here(*keys: str):
    def blocker(proc_root, full):
        if any(full.endswith(sysctl_file.proc_path(k)) for k in keys):
            return f"{proc_root} is mounted read-only here ({full} is on a read-only mount)"
        return None
    return blocker


def test_read_only_proc_fails_before_writing_anything(proc, tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(sysctl_file, "write_blocker", read_only_here("net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_rmem"))
    for check_mode in (True, False):  # the preview fails as the run would
        failed, result = run_module(sysctl_file, args(proc, tmp_path), check_mode=check_mode)
        assert failed
        assert "2 key(s) cannot be applied" in result["msg"]
        assert "net.ipv4.tcp_fin_timeout: running 60, wanted 30 - " in result["msg"]
        assert "is mounted read-only here" in result["msg"] and "proc_read_only=file_only" in result["msg"]
        assert set(result["not_applied"]) == {"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_rmem"}
        assert not (tmp_path / "99-test.conf").exists(), "the file is not written before the keys can be applied"
        assert (proc / "net/ipv4/conf/eth0.100/rp_filter").read_text() == "0\n", "no key is applied either"


def test_read_only_proc_file_only_writes_the_file_and_reports_it(proc, tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(sysctl_file, "write_blocker", read_only_here("net.ipv4.tcp_fin_timeout"))
    failed, result = run_module(sysctl_file, args(proc, tmp_path, proc_read_only="file_only"))
    assert not failed and result["changed"]
    assert list(result["not_applied"]) == ["net.ipv4.tcp_fin_timeout"]
    assert "net.ipv4.tcp_fin_timeout" not in result["applied"] and "net.ipv4.tcp_rmem" in result["applied"]
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "60\n"
    assert "\nnet.ipv4.tcp_fin_timeout = 30\n" in (tmp_path / "99-test.conf").read_text(), "live, for the next boot"
    warnings = "\n".join(map(str, result["warnings"]))
    assert "sysctl net.ipv4.tcp_fin_timeout: not applied to the running kernel (running 60, wanted 30" in warnings

    failed, result = run_module(sysctl_file, args(proc, tmp_path, proc_read_only="file_only"))
    assert not failed and not result["changed"], "nothing more to do"
    assert list(result["not_applied"]) == ["net.ipv4.tcp_fin_timeout"], "and still said on every run"


def test_read_only_proc_is_fine_when_the_running_values_are_right(proc, tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(sysctl_file, "write_blocker", read_only_here("net.ipv4.tcp_fin_timeout"))
    (proc / "net/ipv4/tcp_fin_timeout").write_text("30\n")
    failed, result = run_module(sysctl_file, args(proc, tmp_path))
    assert not failed and result["not_applied"] == {}


def test_apply_false_never_asks_whether_proc_is_writable(proc, tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(sysctl_file, "write_blocker", read_only_here("net.ipv4.tcp_fin_timeout"))
    failed, result = run_module(sysctl_file, args(proc, tmp_path, apply=False))
    assert not failed and result["not_applied"] == {}


def test_a_value_the_kernel_refuses_never_reaches_the_file(proc, tmp_path, run_module, monkeypatch):
    real_open = open

    def kernel_open(file, mode="r", **kw):
        if str(file).endswith("tcp_rmem") and "w" in mode:
            raise OSError(22, "Invalid argument")
        return real_open(file, mode, **kw)

    monkeypatch.setattr(sysctl_file, "open", kernel_open, raising=False)
    failed, result = run_module(sysctl_file, args(proc, tmp_path))
    assert failed and "sysctl net.ipv4.tcp_rmem = 4096 87380 67108864: the kernel refused it" in result["msg"]
    assert "99-test.conf was not written" in result["msg"]
    assert not (tmp_path / "99-test.conf").exists()
    # key order: the two keys before tcp_rmem were applied, and are reported as a change
    assert set(result["applied"]) == {"net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.tcp_fin_timeout"}
    assert result["changed"] is True


def test_a_missing_directory_fails_before_the_kernel_changes(proc, tmp_path, run_module):
    failed, result = run_module(sysctl_file, args(proc, tmp_path, path=str(tmp_path / "nodir/99-test.conf")))
    assert failed and "the directory" in result["msg"] and "does not exist" in result["msg"]
    assert (proc / "net/ipv4/tcp_fin_timeout").read_text() == "60\n"


def test_write_blocker_on_a_writable_file(tmp_path):
    (tmp_path / "key").write_text("1\n")
    assert sysctl_file.write_blocker(str(tmp_path), str(tmp_path / "key")) is None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare(1): a read-only bind of /proc/sys in a mount namespace")
def test_real_read_only_proc_sys_in_a_mount_namespace(tmp_path, collections_path):
    """The issue's case: /proc/sys bound read-only (files stay 0644). A new network namespace too, so
    that the net.* key the module would write is a throwaway namespace's, never the host's."""
    conf = tmp_path / "99-test.conf"

    def run(proc_read_only: str, mount_ro: bool = True) -> tuple[int, dict]:
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "settings": {"net.ipv4.tcp_fin_timeout": 31}, "path": str(conf), "proc_read_only": proc_read_only}}))
        module = f"{sys.executable} -m ansible_collections.fleet.bgp.plugins.modules.sysctl_file {args_file}"
        ro = "mount --bind -o ro /proc/sys /proc/sys && " if mount_ro else ""
        proc = subprocess.run(
            ["unshare", "--mount", "--net", "sh", "-c",
             f"mount --make-rprivate / && {ro}cat /proc/sys/net/ipv4/tcp_fin_timeout >&2 && {module}"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(collections_path)},
            cwd=tmp_path, check=False, timeout=60,
        )
        running = proc.stderr.strip().splitlines()[0]
        assert running != "31", "a fresh network namespace starts with the kernel default"
        return proc.returncode, json.loads(proc.stdout), running

    rc, result, running = run("fail")
    assert rc != 0 and result["failed"]
    assert (f"net.ipv4.tcp_fin_timeout: running {running}, wanted 31 - /proc/sys is mounted read-only here"
            in result["msg"]), result["msg"]
    assert not conf.exists(), "the file is left untouched"

    rc, result, running = run("file_only")
    assert rc == 0 and not result.get("failed") and result["changed"]
    assert list(result["not_applied"]) == ["net.ipv4.tcp_fin_timeout"] and result["applied"] == {}
    assert result["not_applied"]["net.ipv4.tcp_fin_timeout"].startswith(f"running {running}, wanted 31 - ")
    assert "net.ipv4.tcp_fin_timeout = 31" in conf.read_text()

    # control: the same key in a writable namespace is applied (the test above was not a no-op)
    conf.unlink()
    rc, result, running = run("fail", mount_ro=False)
    assert rc == 0 and result["applied"] == {"net.ipv4.tcp_fin_timeout": {"before": running, "after": "31"}}
