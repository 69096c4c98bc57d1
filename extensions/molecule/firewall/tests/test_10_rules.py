"""The rules after converge: ours live and persisted, the host's own firewall untouched."""

from __future__ import annotations

import pytest

from conftest import ROUTER, SERVERS, addresses, backend, live_id, persisted_id, podman_host


def test_systemd_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert state == "running", f"{state}; failed units: {failed}"


@pytest.mark.parametrize("server", SERVERS)
def test_our_rules_are_live_and_persisted(server):
    got = live_id(server)
    assert got, f"{server}: no fleet.bgp.firewall rules live ({backend(server)})"
    assert persisted_id(server) == got, f"{server}: the persisted rules are not the live ones"


@pytest.mark.parametrize("server", SERVERS)
def test_bfd_from_the_router_only(server):
    """The servers run BFD with the router (fleet_bgp_bfd): UDP 3784 accepted from the router's IPv4 and
    IPv6 addresses, everything else to 3784 dropped, in either backend."""
    h = podman_host(server)
    r4, r6 = addresses(ROUTER)
    if backend(server) == "nftables":
        table = h.check_output("nft list table inet fleetbgp")
        assert "udp dport 3784 ip saddr @bfd_peers_v4 accept" in table, table
        assert "udp dport 3784 ip6 saddr @bfd_peers_v6 accept" in table, table
        assert 'udp dport 3784 counter name "bfd_dropped" drop' in table, table
        assert r4 in h.check_output("nft list set inet fleetbgp bfd_peers_v4")
        assert r6 in h.check_output("nft list set inet fleetbgp bfd_peers_v6")
    else:
        for ipt, peer, plen in (("iptables", r4, 32), ("ip6tables", r6, 128)):
            rules = h.check_output(f"{ipt} -S FLEETBGP-INPUT").splitlines()
            bfd = [r for r in rules if "3784" in r]
            assert bfd == [f"-A FLEETBGP-INPUT -s {peer}/{plen} -p udp -m udp --dport 3784 -j ACCEPT",
                           '-A FLEETBGP-INPUT -p udp -m udp --dport 3784 -m comment --comment '
                           '"fleetbgp: BFD from a non-peer dropped" -j DROP'], rules


@pytest.mark.parametrize("server", SERVERS)
def test_host_table_untouched(server):
    """The host's own nftables table (prepare.yml) is still loaded, with its rule."""
    h = podman_host(server)
    out = h.run("nft list table inet hostfw")
    assert out.rc == 0 and "hostfw-marker" in out.stdout, out.stdout + out.stderr


def test_host_nftables_conf_kept_and_includes_ours():
    h = podman_host("fw-nft")
    conf = h.file("/etc/nftables.conf").content_string
    assert "table inet hostfw" in conf and "flush ruleset" in conf, conf
    includes = [line for line in conf.splitlines() if line.startswith('include "/etc/fleetbgp-firewall/')]
    assert len(includes) == 1, conf
    assert h.run("nft -c -f /etc/nftables.conf").rc == 0
    assert h.service("nftables").is_enabled


def test_iptables_rules_of_the_host_untouched_and_one_jump():
    h = podman_host("fw-ipt")
    for ipt in ("iptables", "ip6tables"):
        rules = h.check_output(f"{ipt} -S INPUT").splitlines()
        assert rules.count("-A INPUT -j FLEETBGP-INPUT") == 1, rules
        assert rules[1] == "-A INPUT -j FLEETBGP-INPUT", f"{ipt}: our jump is not first: {rules}"
    assert "hostipt-marker" in h.check_output("iptables -S INPUT")
    unit = h.service("fleetbgp-firewall")
    assert unit.is_enabled and unit.is_running


@pytest.mark.parametrize("server", SERVERS)
def test_no_rollback_pending(server):
    h = podman_host(server)
    assert h.run("systemctl is-active fleetbgp-firewall-rollback.timer").stdout.strip() != "active"
