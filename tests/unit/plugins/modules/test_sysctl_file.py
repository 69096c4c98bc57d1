"""fleet.bgp.sysctl_file against a fake /proc/sys tree (proc_root) in a temporary directory: the file,
the values written, the keys skipped with a warning, check mode, errors."""

from __future__ import annotations

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
