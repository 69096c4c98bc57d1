"""Every config snippet of the seed guide (shared/seed/exabgp-production-best-practices.txt) parses.

The fixtures are the snippets as the guide writes them: indentation lost, comments after statements,
and forms that are not ExaBGP's own (`ttl-security`, `ipv4 flowspec`, `env['VAR']`, `process { env { }
receive { } }`, `updates`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbgp.config import ConfigError, load, parse_text
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST

FIXTURES = Path(__file__).parent / "fixtures"
GUIDE = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "exabgp-production-best-practices.txt"
SEED_FIXTURES = sorted(FIXTURES.glob("seed_*.conf"))


def test_there_are_five_seed_snippets():
    assert [p.name for p in SEED_FIXTURES] == [
        "seed_anycast_server.conf", "seed_md5_env.conf", "seed_md5_gtsm.conf",
        "seed_process_healthcheck.conf", "seed_prometheus_exporter.conf"]


@pytest.mark.skipif(not GUIDE.exists(), reason="the seed guide is not beside the repository")
@pytest.mark.parametrize("fixture", SEED_FIXTURES, ids=lambda p: p.name)
def test_fixture_is_verbatim_from_the_guide(fixture):
    guide = GUIDE.read_text(encoding="utf-8").split("\n")
    lines = fixture.read_text().rstrip("\n").split("\n")

    def matches_at(start: int) -> bool:
        for k, line in enumerate(lines):
            g = guide[start + k] if start + k < len(guide) else None
            last = k == len(lines) - 1
            # The guide glues the prose after a snippet onto its closing brace: "}Generate strong ..."
            if g is None or not (g == line or (last and line == "}" and g.startswith("}"))):
                return False
        return True

    assert any(matches_at(i) for i in range(len(guide))), f"{fixture.name} is not a snippet of the guide"


def test_md5_and_gtsm_snippet():
    cfg = load(FIXTURES / "seed_md5_gtsm.conf")
    (n,) = cfg.neighbors
    assert (n.peer_address, n.router_id, n.local_address, n.local_as, n.peer_as) == (
        "192.168.1.1", "192.168.1.2", "192.168.1.2", 65001, 65000)
    assert n.md5_password is not None and n.md5_password.reveal() == "your-strong-password-here"
    assert n.incoming_ttl == 255  # ttl-security 255: GTSM
    assert n.families == (IPV4_UNICAST, IPV4_FLOWSPEC)


def test_md5_from_env_snippet_parses(monkeypatch):
    """The guide's fragment is a neighbor with only md5-password: the syntax (env['VAR']) parses, and
    what is reported is only what any neighbor needs (local-as, peer-as, router-id)."""
    monkeypatch.setenv("BGP_MD5_PASSWORD", "from-the-environment")
    with pytest.raises(ConfigError) as info:
        load(FIXTURES / "seed_md5_env.conf")
    assert [d.message for d in info.value.diagnostics] == [
        "neighbor 192.168.1.1 has no 'local-as'",
        "neighbor 192.168.1.1 has no 'peer-as'",
        "neighbor 192.168.1.1 has no 'router-id' (it defaults to local-address only when that is an IPv4 "
        "address)",
    ]


def test_md5_from_env_snippet_in_the_neighbor_it_belongs_to(monkeypatch):
    """Put where the guide means it (the neighbor of the MD5 snippet), the env form is a complete config."""
    monkeypatch.setenv("BGP_MD5_PASSWORD", "from-the-environment")
    text = (FIXTURES / "seed_md5_gtsm.conf").read_text().replace(
        'md5-password "your-strong-password-here";', "md5-password env['BGP_MD5_PASSWORD'];")
    (n,) = parse_text(text, "merged.conf").neighbors
    assert n.md5_password is not None and n.md5_password.reveal() == "from-the-environment"


def test_md5_from_env_snippet_without_the_variable(monkeypatch):
    monkeypatch.delenv("BGP_MD5_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as info:
        load(FIXTURES / "seed_md5_env.conf")
    assert str(FIXTURES / "seed_md5_env.conf") + ":3:14: md5-password: environment variable " \
        "BGP_MD5_PASSWORD is not set" in str(info.value).split("\n")


def test_restricted_process_snippet():
    cfg = load(FIXTURES / "seed_process_healthcheck.conf")
    assert cfg.neighbors == []
    p = cfg.processes["healthcheck"]
    assert p.run == ("/usr/local/bin/exabgp-healthcheck.py",)
    assert p.working_directory == "/var/lib/exabgp"
    assert p.env == {"SERVICE_IP": "100.10.0.100", "CHECK_INTERVAL": "5"}
    assert p.encoder == "text"


def test_prometheus_exporter_snippet():
    cfg = load(FIXTURES / "seed_prometheus_exporter.conf")
    p = cfg.processes["prometheus_exporter"]
    assert p.encoder == "json"
    assert p.receive.parsed and p.receive.update and p.neighbor_changes
    (n,) = cfg.neighbors
    assert n.api[0].processes == ("prometheus_exporter",)
    assert n.families == (IPV4_UNICAST, IPV6_UNICAST)
    sub = cfg.subscriptions(n)["prometheus_exporter"]
    assert sub.neighbor_changes and sub.receive.parsed and sub.receive.update


def test_anycast_server_snippet_process_defined_after_use():
    cfg = load(FIXTURES / "seed_anycast_server.conf")
    (n,) = cfg.neighbors
    assert n.families == (IPV4_UNICAST,)
    assert n.api[0].processes == ("healthcheck",)
    assert cfg.processes["healthcheck"].run == ("/usr/local/bin/healthcheck.py",)


def test_all_seed_snippets_together_in_one_file(monkeypatch):
    """An operator pasting the guide's pieces into one exabgp.conf (one neighbor, two processes)."""
    monkeypatch.setenv("BGP_MD5_PASSWORD", "pw")
    gtsm = (FIXTURES / "seed_md5_gtsm.conf").read_text().replace(
        "family {", "api {\nprocesses [ prometheus_exporter healthcheck ];\n}\nfamily {")
    exporter = (FIXTURES / "seed_prometheus_exporter.conf").read_text()
    exporter = exporter[:exporter.index("neighbor 192")]
    cfg = parse_text(gtsm + exporter + (FIXTURES / "seed_process_healthcheck.conf").read_text(), "all.conf")
    assert sorted(cfg.processes) == ["healthcheck", "prometheus_exporter"]
    assert cfg.neighbors[0].api[0].processes == ("prometheus_exporter", "healthcheck")
