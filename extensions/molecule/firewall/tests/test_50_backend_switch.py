"""Switching fleet_bgp_firewall_backend on a converged host: the nftables server goes to iptables and
back (firewall-only.yml). After each switch only the new backend's rules are live and persisted (the
other backend's table or chains, jump, files and unit are gone), the router's sessions are Established
and BGP from the outsider is still dropped."""

from __future__ import annotations

import pytest

from conftest import (
    ID_RE,
    OUTSIDER,
    SCENARIO_DIR,
    SERVERS,
    addresses,
    backend,
    bird_protocol,
    bird_state,
    connect_from,
    live_id,
    persisted_id,
    podman_host,
    run_playbook,
    target,
    wait_until,
)

NFT_SERVER = next(s for s in SERVERS if backend(s) == "nftables")
ETC = "/etc/fleetbgp-firewall"
IPT_UNIT = "fleetbgp-firewall.service"  # the iptables backend's loader unit


def includes(server: str) -> list[str]:
    conf = podman_host(server).file("/etc/nftables.conf").content_string
    return [line for line in conf.splitlines() if line.startswith(f'include "{ETC}/')]


def nft_table(server: str) -> bool:
    return podman_host(server).run("nft list table inet fleetbgp").rc == 0


def ipt_ids(server: str) -> dict[str, str]:
    """{iptables|ip6tables: id of our rules, '' without the jump from INPUT}."""
    h = podman_host(server)
    result = {}
    for ipt in ("iptables", "ip6tables"):
        r = h.run(f"{ipt}-save -t filter")
        jumped = r.rc == 0 and "-A INPUT -j FLEETBGP-INPUT" in r.stdout.splitlines()
        m = ID_RE.search(r.stdout) if jumped else None
        result[ipt] = m.group(1) if m else ""
    return result


def files(server: str) -> set[str]:
    return set(podman_host(server).check_output(f"ls {ETC}").split())


def sessions_established(router, server: str) -> None:
    for fam in ("v4", "v6"):
        protocol = bird_protocol(server, fam)
        line = wait_until(lambda p=protocol: bird_state(router, p).endswith("Established"), 60)
        assert line, f"{protocol} at BIRD: {bird_state(router, protocol)!r}"


def outsider_bgp(server: str) -> dict[str, str]:
    v4, v6 = addresses(server)
    return connect_from(OUTSIDER, [target(v4, 179), target(v6, 179)])


@pytest.fixture(scope="module")
def before() -> dict[str, object]:
    assert nft_table(NFT_SERVER) and live_id(NFT_SERVER), "the nftables server has no live rules"
    return {"id": live_id(NFT_SERVER), "files": files(NFT_SERVER)}


def test_switch_to_iptables_and_back(router, before):
    try:
        proc = run_playbook(SCENARIO_DIR / "firewall-only.yml", "--limit", NFT_SERVER,
                            "-e", "fleet_bgp_firewall_backend=iptables")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert not nft_table(NFT_SERVER), "table inet fleetbgp is still there after the switch to iptables"
        ids = ipt_ids(NFT_SERVER)
        assert ids["iptables"] and ids["iptables"] == ids["ip6tables"], ids
        assert "fleetbgp.nft" not in files(NFT_SERVER) and "rules.v4" in files(NFT_SERVER), files(NFT_SERVER)
        assert not includes(NFT_SERVER), "/etc/nftables.conf still includes our rules"
        assert podman_host(NFT_SERVER).service(IPT_UNIT).is_enabled
        sessions_established(router, NFT_SERVER)
        assert set(outsider_bgp(NFT_SERVER).values()) == {"timeout"}
    finally:
        proc = run_playbook(SCENARIO_DIR / "firewall-only.yml", "--limit", NFT_SERVER)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert live_id(NFT_SERVER) == before["id"] == persisted_id(NFT_SERVER)
    assert ipt_ids(NFT_SERVER) == {"iptables": "", "ip6tables": ""}
    assert files(NFT_SERVER) == before["files"]
    assert len(includes(NFT_SERVER)) == 1
    assert podman_host(NFT_SERVER).run(f"systemctl cat {IPT_UNIT}").rc != 0, f"{IPT_UNIT} is still installed"
    sessions_established(router, NFT_SERVER)
    assert set(outsider_bgp(NFT_SERVER).values()) == {"timeout"}
