"""fleet.bgp.sysctl on the bgp_server: values in the container's network namespace, the file, boot."""

from __future__ import annotations

import pytest

CONF = "/etc/sysctl.d/99-fleetbgp.conf"

# inventory/group_vars/bgp_servers.yml over the role's defaults (the guide's values)
APPLIED = {
    "net.ipv4.tcp_fin_timeout": "30",
    "net.ipv4.tcp_keepalive_time": "120",  # overridden
    "net.ipv4.tcp_keepalive_intvl": "10",
    "net.ipv4.tcp_keepalive_probes": "3",
    "net.ipv4.tcp_rmem": "4096 87380 67108864",
    "net.ipv4.tcp_wmem": "4096 65536 67108864",
    "net.ipv4.tcp_syn_retries": "4",  # added
    # for the service addresses on lo (fleet.bgp.service_addresses; test_40 shows what they do)
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
    "net.ipv4.conf.all.rp_filter": "2",
}
# Not applied, written commented out: no such key, or read-only in a container's network namespace
# (net.core.*mem_max and nf_conntrack_max belong to the host; netdev_max_backlog is not per-namespace).
SKIPPED = [
    "net.ipv4.fleetbgp_molecule_absent",
    "net.core.netdev_max_backlog",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.netfilter.nf_conntrack_max",
]


def proc(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


@pytest.fixture(scope="module")
def conf_lines(server) -> list[str]:
    f = server.file(CONF)
    assert f.exists, f"{CONF} missing"
    assert (f.user, f.group, f.mode) == ("root", "root", 0o644)
    return f.content_string.splitlines()


@pytest.mark.parametrize(("key", "value"), sorted(APPLIED.items()))
def test_value_applied_in_the_namespace(server, key, value):
    assert " ".join(server.file(proc(key)).content_string.split()) == value


@pytest.mark.parametrize(("key", "value"), sorted(APPLIED.items()))
def test_value_persisted_in_the_file(conf_lines, key, value):
    assert f"{key} = {value}" in conf_lines


@pytest.mark.parametrize("key", SKIPPED)
def test_skipped_key_commented_out(conf_lines, key):
    lines = [line for line in conf_lines if key in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"# {key} = ") and "# skipped:" in lines[0], lines[0]


def test_removed_key_absent(conf_lines):
    assert not [line for line in conf_lines if "tcp_max_syn_backlog" in line]


def test_other_namespace_untouched(server):
    """The router (another network namespace) keeps the kernel's defaults: the settings stayed in the
    bgp_server's namespace. The kernel default of tcp_fin_timeout is 60."""
    from conftest import ROUTER, podman_host

    assert podman_host(ROUTER).file(proc("net.ipv4.tcp_fin_timeout")).content_string.strip() == "60"


def test_file_is_applied_at_boot_without_error(server):
    """systemd-sysctl (what applies /etc/sysctl.d at boot) takes the file without an error (the
    skipped keys are comments) and puts back a value changed at runtime."""
    key = proc("net.ipv4.tcp_fin_timeout")
    server.check_output(f"echo 45 > {key}")
    assert server.file(key).content_string.strip() == "45"
    result = server.run(f"/lib/systemd/systemd-sysctl {CONF}")
    assert result.rc == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert server.file(key).content_string.strip() == "30"
