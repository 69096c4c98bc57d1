"""FlowSpec through the control socket (`flow_announce`, `flow_withdraw`, `flows`), the expiry timer,
the adj-rib-in view of received rules and the CLI's `flow` / `show flows`, against the real Speaker
and real Peers (not connected: a session is simulated only where `announced_to` needs one)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from control_fakes import real_agent

from fleetbgp import cli_control
from fleetbgp.api.commands import parse_command
from fleetbgp.control_client import ControlError
from fleetbgp.grammar.flowspec import nlri_name, parse_match
from fleetbgp.owner import Owner
from fleetbgp.session import Peer
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC

CONF = """\
neighbor 192.0.2.1 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    local-address 192.0.2.2;
    adj-rib-in true;
    family { ipv4 unicast; ipv4 flow; ipv6 flow; }
    flow {
        route from-config {
            match { destination 198.51.100.0/24; protocol =udp; destination-port =53; }
            then { rate-limit 1000; }
        }
    }
}
neighbor 192.0.2.5 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    family { ipv4 unicast; }
}
"""

WEB = {"destination": "192.0.2.10/32", "destination-port": "=80", "protocol": "=tcp"}


# Two more FlowSpec neighbors, for the tests about neighbor lists
MORE = CONF + """\
neighbor 192.0.2.9 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    family { ipv4 flow; }
}
neighbor 2001:db8::9 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    family { ipv4 flow; }
}
"""


@pytest.fixture
def agent(tmp_path: Path, request):
    with real_agent(getattr(request, "param", CONF), tmp_path) as a:
        yield a


def established(peer: Peer, *families) -> None:
    """Pretend the peer's session is up with these families (what announced_to looks at)."""
    peer.established_since = time.time()
    peer.negotiated = SimpleNamespace(families=list(families))  # type: ignore[assignment]


def test_announce_lists_and_withdraws_a_rule(agent):
    c, speaker = agent.client, agent.speaker
    peer = speaker.peers["192.0.2.1"]
    established(peer, IPV4_UNICAST, IPV4_FLOWSPEC)
    r = c.call("flow_announce", name="web-syn", match=WEB, then={"discard": True})
    assert r["changed"] is True
    rule = r["rule"]
    assert rule["name"] == "web-syn" and rule["family"] == "ipv4" and rule["owner"] == "control:cli"
    assert rule["match"] == {"destination": ["192.0.2.10/32"], "protocol": ["=tcp"],
                             "destination-port": ["=80"]}
    assert rule["then"] == {"discard": True}
    assert rule["text"].startswith("flow route web-syn { match { destination 192.0.2.10/32;")
    assert rule["text"].endswith("then { discard; } }")
    assert rule["announced_to"] == ["192.0.2.1"]  # 192.0.2.5 has no flow family
    assert rule["neighbors"] is None and rule["expires_at"] is None
    assert abs(rule["created_at"] - time.time()) < 30
    nlri = parse_match(1, WEB).nlri()
    assert nlri in peer.rib_out.routes[IPV4_FLOWSPEC]
    assert peer.rib_out.owner_of(IPV4_FLOWSPEC, nlri) is Owner.control("cli")
    assert IPV4_FLOWSPEC not in speaker.peers["192.0.2.5"].rib_out.routes

    # the same rule again: nothing changes
    again = agent.client.call("flow_announce", name="web-syn", match=WEB, then={"discard": True})
    assert again["changed"] is False

    flows = {f["name"]: f for f in c.call("flows")}
    assert set(flows) == {"web-syn", "from-config"}
    cfg = flows["from-config"]
    assert cfg["owner"] == "config" and cfg["then"] == {"rate-limit": 1000}
    assert cfg["match"]["destination-port"] == ["=53"]
    assert cfg["neighbors"] == ["192.0.2.1"] and cfg["announced_to"] == ["192.0.2.1"]

    assert c.call("flow_withdraw", name="web-syn") == {"changed": True}
    assert nlri not in peer.rib_out.routes[IPV4_FLOWSPEC]
    assert c.call("flow_withdraw", name="web-syn") == {"changed": False}
    assert [f["name"] for f in c.call("flows")] == ["from-config"]


def test_a_rule_withdrawn_behind_its_back_is_announced_again(agent):
    c, speaker = agent.client, agent.speaker
    c.call("flow_announce", name="r", match=WEB, then={"discard": True})
    nlri = parse_match(1, WEB).nlri()
    agent.lt.run(_withdraw(speaker, nlri))
    assert c.call("flow_announce", name="r", match=WEB, then={"discard": True})["changed"] is True
    assert nlri in speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]


async def _withdraw(speaker, nlri):
    speaker.withdraw(IPV4_FLOWSPEC, nlri)


def test_a_different_rule_under_the_same_name_replaces_the_old_one(agent):
    c, peer = agent.client, agent.speaker.peers["192.0.2.1"]
    c.call("flow_announce", name="r", match=WEB, then={"discard": True})
    other = dict(WEB, **{"destination-port": "=443"})
    r = c.call("flow_announce", name="r", match=other, then={"rate-limit": 9600}, owner="ansible")
    assert r["changed"] is True and r["rule"]["owner"] == "control:ansible"
    table = peer.rib_out.routes[IPV4_FLOWSPEC]
    assert parse_match(1, WEB).nlri() not in table
    new = parse_match(1, other).nlri()
    assert table[new].ext_communities  # the traffic-rate community
    # the actions alone change: replaced too
    r = c.call("flow_announce", name="r", match=other, then={"discard": True}, owner="ansible")
    assert r["changed"] is True and r["rule"]["then"] == {"discard": True}
    assert len([k for k in peer.rib_out.routes[IPV4_FLOWSPEC] if k == new]) == 1


def test_invalid_rules_are_refused_and_nothing_is_announced(agent):
    c, peer = agent.client, agent.speaker.peers["192.0.2.1"]
    before = dict(peer.rib_out.routes.get(IPV4_FLOWSPEC, {}))
    cases = [
        ({"name": "a", "match": {"destination-port": "=99999"}, "then": {"discard": True}},
         "destination-port: '=99999' is out of range 0-65535"),
        ({"name": "a", "match": {"destinaton": "10.0.0.0/8"}}, "destinaton: not a match component"),
        ({"name": "a", "match": WEB, "then": {"redirect": "nonsense"}}, "redirect:"),
        ({"name": "a", "match": WEB, "then": {"mark": 64}}, "mark: 64: DSCP must be 0-63"),
        ({"name": "bad name!", "match": WEB}, "rule name 'bad name!'"),
        ({"name": "a", "match": WEB, "expires_after": -1}, "expires_after -1"),
        ({"name": "a", "match": WEB, "family": "ipv5"}, "family: 'ipv5' is not a FlowSpec family"),
        ({"name": "a", "match": {}}, "at least one match component"),
        ({"name": "a", "match": WEB, "neighbors": ["192.0.2.5"]},
         "neighbor 192.0.2.5 does not have 'family { ipv4 flow; }'"),
    ]
    for args, message in cases:
        with pytest.raises(ControlError) as err:
            c.call("flow_announce", **args)
        assert err.value.code == "invalid_flow", args
        assert message in err.value.message, (message, err.value.message)
    with pytest.raises(ControlError) as err:
        c.call("flow_announce", name="a", match="destination 10.0.0.0/8")
    assert err.value.code == "bad_request"
    with pytest.raises(ControlError) as err:
        c.call("flow_announce", name="a", match=WEB, neighbors=["203.0.113.9"])
    assert err.value.code == "unknown_neighbor"
    assert dict(peer.rib_out.routes.get(IPV4_FLOWSPEC, {})) == before
    assert [f["name"] for f in c.call("flows")] == ["from-config"]


def test_two_names_for_the_same_match_are_refused(agent):
    c = agent.client
    c.call("flow_announce", name="one", match=WEB, then={"discard": True})
    with pytest.raises(ControlError) as err:
        c.call("flow_announce", name="two", match=WEB, then={"rate-limit": 10})
    assert "rule 'one' already matches exactly this traffic" in err.value.message


def test_family_from_the_prefix_and_neighbors(agent):
    c, speaker = agent.client, agent.speaker
    r = c.call("flow_announce", name="v6", match={"destination": "2001:db8::/64", "next-header": "=udp"},
               then={"rate-limit": "1000 packets"}, neighbors=["192.0.2.1"])
    assert r["rule"]["family"] == "ipv6" and r["rule"]["neighbors"] == ["192.0.2.1"]
    assert r["rule"]["then"] == {"rate-limit-packets": 1000}
    assert speaker.peers["192.0.2.1"].rib_out.count(IPV6_FLOWSPEC) == 1


def test_expiry_withdraws_the_rule_and_refresh_keeps_it(agent, caplog):
    c, speaker = agent.client, agent.speaker
    peer = speaker.peers["192.0.2.1"]
    r = c.call("flow_announce", name="short", match=WEB, then={"discard": True}, expires_after=0.6)
    assert r["rule"]["expires_at"] == pytest.approx(time.time() + 0.6, abs=0.5)
    # announcing the same rule again with a new expiry only moves the deadline
    r2 = c.call("flow_announce", name="short", match=WEB, then={"discard": True}, expires_after=1.2)
    assert r2["changed"] is False and r2["rule"]["expires_at"] > r["rule"]["expires_at"]
    time.sleep(0.8)
    assert [f["name"] for f in c.call("flows") if f["name"] == "short"] == ["short"]
    deadline = time.time() + 5
    while time.time() < deadline and any(f["name"] == "short" for f in c.call("flows")):
        time.sleep(0.1)
    assert not any(f["name"] == "short" for f in c.call("flows"))
    assert parse_match(1, WEB).nlri() not in peer.rib_out.routes[IPV4_FLOWSPEC]
    status = c.call("status")
    assert status["flows"]["expired"] == 1 and status["flows"]["rules_config"] == 1


def test_runtime_rules_survive_a_reload_and_config_rules_follow_the_file(agent):
    c, speaker = agent.client, agent.speaker
    peer = speaker.peers["192.0.2.1"]
    c.call("flow_announce", name="keep-me", match=WEB, then={"discard": True})
    cfg_nlri = speaker.config.neighbors[0].flow_routes[0].nlri
    table = peer.rib_out.routes[IPV4_FLOWSPEC]
    old_attrs = table[cfg_nlri]
    # the config rule's actions change; the runtime rule is untouched
    agent.conf.write_text(CONF.replace("rate-limit 1000", "rate-limit 2000"))
    result = c.call("reload")
    assert "1 route(s) announced or changed" in result["summary"]
    assert table[cfg_nlri] is not old_attrs
    assert parse_match(1, WEB).nlri() in table
    names = {f["name"]: f for f in c.call("flows")}
    assert names["from-config"]["then"] == {"rate-limit": 2000}
    assert names["keep-me"]["owner"] == "control:cli"
    # an unchanged config rule is not re-sent
    result = c.call("reload")
    assert result["summary"] == "no change to sessions or routes"
    # the config rule removed: withdrawn; the runtime rule stays
    agent.conf.write_text(CONF.replace("""    flow {
        route from-config {
            match { destination 198.51.100.0/24; protocol =udp; destination-port =53; }
            then { rate-limit 1000; }
        }
    }
""", ""))
    result = c.call("reload")
    assert "1 withdrawn" in result["summary"]
    assert [f["name"] for f in c.call("flows")] == ["keep-me"]


def test_received_rules_in_the_adj_rib_in_view(agent):
    c, peer = agent.client, agent.speaker.peers["192.0.2.1"]
    rule = parse_match(1, {"source": "203.0.113.0/24", "protocol": "=udp"})
    attrs = Attributes.make(as_path=((2, (65000,)),), ext_communities=(0x8006000000000000,))
    peer.rib_in.put(IPV4_FLOWSPEC, attrs, [rule.nlri()])
    got = c.call("routes", received=True, family="ipv4 flow")
    assert got["count"] == 1
    entry = got["routes"][0]
    assert entry["received"] is True and entry["family"] == "ipv4 flow"
    assert entry["flow"]["match"] == {"source": ["203.0.113.0/24"], "protocol": ["=udp"]}
    assert entry["flow"]["then"] == {"discard": True}
    assert entry["route"] == "flow route { match { source 203.0.113.0/24; protocol =udp; } " \
                             "then { discard; } }"
    # our own rules: the adj-rib-out view shows them decoded too
    out = c.call("routes", family="ipv4 flow")
    assert out["routes"][0]["flow"]["match"]["destination"] == ["198.51.100.0/24"]
    assert out["routes"][0]["owner"] == "config"
    with pytest.raises(ControlError):
        c.call("routes", received="yes")
    parser = __import__("fleetbgp.cli", fromlist=["_parser"])._parser()
    out = io.StringIO()
    args = parser.parse_args(["show", "routes", "--received", "--socket", agent.sock])
    assert cli_control.main(args, out, io.StringIO()) == 0
    text = out.getvalue()
    assert "192.0.2.1  ipv4 flow  flow route { match { source 203.0.113.0/24; protocol =udp; } " \
           "then { discard; } }" in text and text.endswith("1 route\n")


def test_cli_flow_announce_show_and_withdraw(agent):
    def cli(*argv: str) -> tuple[int, str, str]:
        parser = __import__("fleetbgp.cli", fromlist=["_parser"])._parser()
        args = parser.parse_args([*argv, "--socket", agent.sock])
        out, err = io.StringIO(), io.StringIO()
        return cli_control.main(args, out, err), out.getvalue(), err.getvalue()

    rc, out, err = cli("flow", "announce", "web", "destination", "192.0.2.10/32", "destination-port",
                       "=80", "protocol", "=tcp", "discard", "--expires-after", "600")
    assert rc == 0, err
    assert "announced: flow route web { match { destination 192.0.2.10/32;" in out
    assert "expires at:" in out
    rc, out, err = cli("flow", "announce", "web2", "{ match { destination 192.0.2.11/32; } "
                                                    "then { redirect 65001:999; } }")
    assert rc == 0, err
    rc, out, _ = cli("show", "flows")
    assert rc == 0
    assert "web " in out and "web2" in out and "from-config" in out and "in 9m" in out
    assert "redirect 65001:999" in out
    rc, out, err = cli("flow", "announce", "bad", "destination-port", "=99999", "discard")
    assert rc == 1 and "destination-port: '=99999' is out of range 0-65535" in err
    rc, out, err = cli("flow", "announce", "bad", "destinaton", "10.0.0.0/8")
    assert rc == 2 and "did you mean 'destination'" in err
    rc, out, _ = cli("flow", "withdraw", "web")
    assert rc == 0 and out == "withdrawn\n"
    rc, out, _ = cli("flow", "withdraw", "web")
    assert rc == 0 and out == "no such rule: nothing withdrawn\n"
    rc, out, _ = cli("show", "routes", "--received")
    assert rc == 0 and out.strip() == "0 routes"


# -- follow-ups: neighbor order, withdraw by name, rules withdrawn behind their back ---------------


@pytest.mark.parametrize("agent", [MORE], indirect=True)
def test_the_same_neighbors_in_another_order_are_the_same_rule(agent, caplog):
    c, speaker = agent.client, agent.speaker
    first = c.call("flow_announce", name="n", match=WEB, then={"discard": True},
                   neighbors=["2001:DB8::9", "192.0.2.9", "192.0.2.1"])
    assert first["changed"] is True
    # stored sorted and normalised: IPv4 first, addresses as the kernel writes them
    assert first["rule"]["neighbors"] == ["192.0.2.1", "192.0.2.9", "2001:db8::9"]
    nlri = parse_match(1, WEB).nlri()
    held = {a: speaker.peers[a].rib_out.routes[IPV4_FLOWSPEC][nlri] for a in first["rule"]["neighbors"]}
    caplog.set_level(logging.INFO, logger="fleetbgp")
    caplog.clear()
    for order in (["192.0.2.1", "192.0.2.9", "2001:db8::9"], ["192.0.2.9", "2001:db8:0::9", "192.0.2.1"],
                  ["192.0.2.1", "2001:db8::9", "192.0.2.9", "192.0.2.1"]):
        again = c.call("flow_announce", name="n", match=WEB, then={"discard": True}, neighbors=order)
        assert again["changed"] is False, order
        assert again["rule"]["neighbors"] == ["192.0.2.1", "192.0.2.9", "2001:db8::9"]
    assert "replaced" not in caplog.text  # no withdraw + announce in between
    assert {a: speaker.peers[a].rib_out.routes[IPV4_FLOWSPEC][nlri] for a in held} == held
    [listed] = [f for f in c.call("flows") if f["name"] == "n"]
    assert listed["neighbors"] == ["192.0.2.1", "192.0.2.9", "2001:db8::9"]
    # another set of neighbors is another rule: replaced, and gone from the neighbor left out
    fewer = c.call("flow_announce", name="n", match=WEB, then={"discard": True},
                   neighbors=["192.0.2.9", "192.0.2.1"])
    assert fewer["changed"] is True and fewer["rule"]["neighbors"] == ["192.0.2.1", "192.0.2.9"]
    assert nlri not in speaker.peers["2001:db8::9"].rib_out.routes[IPV4_FLOWSPEC]


async def _api_announce(speaker, line: str, process: str) -> bytes:
    """What the API manager does with an `announce flow route` line of a program."""
    [(fam, nlri, attrs)] = parse_command(line).routes
    speaker.announce(fam, nlri, attrs, owner=Owner.process(process))
    return nlri


def test_an_api_programs_rule_is_withdrawn_by_its_listed_name(agent, caplog):
    caplog.set_level(logging.INFO, logger="fleetbgp")
    c, speaker = agent.client, agent.speaker
    peer = speaker.peers["192.0.2.1"]
    nlri = agent.lt.run(_api_announce(speaker, "announce flow route source 203.0.113.0/24 protocol =udp "
                                               "discard", "ddos"))
    name = nlri_name(nlri)
    [api] = [f for f in c.call("flows") if f["owner"] == "process:ddos"]
    assert api["name"] == name and api["neighbors"] == ["192.0.2.1"]
    assert c.call("flow_withdraw", name=name) == {"changed": True}
    assert nlri not in peer.rib_out.routes[IPV4_FLOWSPEC]
    assert [f["name"] for f in c.call("flows")] == ["from-config"]
    assert f"flow rule {name} (owner process:ddos) withdrawn by name" in caplog.text
    assert c.call("flow_withdraw", name=name) == {"changed": False}
    # the CLI does the same
    nlri = agent.lt.run(_api_announce(speaker, "announce flow route { match { destination 192.0.2.77/32; } "
                                               "then { rate-limit 9600; } }", "other"))
    parser = __import__("fleetbgp.cli", fromlist=["_parser"])._parser()
    out = io.StringIO()
    args = parser.parse_args(["flow", "withdraw", nlri_name(nlri), "--socket", agent.sock])
    assert cli_control.main(args, out, io.StringIO()) == 0 and out.getvalue() == "withdrawn\n"
    assert nlri not in peer.rib_out.routes[IPV4_FLOWSPEC]


def test_a_config_rule_is_not_withdrawn_by_name(agent):
    c, speaker = agent.client, agent.speaker
    cfg_nlri = speaker.config.neighbors[0].flow_routes[0].nlri
    with pytest.raises(ControlError) as err:
        c.call("flow_withdraw", name="from-config")
    assert err.value.code == "invalid_flow"
    assert "rule from-config comes from the config file" in err.value.message
    assert "remove its 'flow { route from-config { ... } }' from the config and reload" in err.value.message
    assert cfg_nlri in speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]
    assert [f["name"] for f in c.call("flows")] == ["from-config"]


def test_a_control_rule_withdrawn_by_a_plain_withdraw_leaves_flows(agent, caplog):
    c, speaker = agent.client, agent.speaker
    c.call("flow_announce", name="short", match=WEB, then={"discard": True}, expires_after=600)
    other = dict(WEB, **{"destination-port": "=443"})
    c.call("flow_announce", name="kept", match=other, then={"discard": True}, owner="ansible")
    assert c.call("status")["flows"]["rules_control"] == 2
    # a plain `withdraw` of everything the owner control:cli announced takes the rule's NLRI away
    assert c.call("withdraw", all=True)["changed"] == 1
    assert parse_match(1, WEB).nlri() not in speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]
    names = {f["name"] for f in c.call("flows")}
    assert names == {"from-config", "kept"}
    assert "flow rule short was withdrawn by a plain withdraw" in caplog.text
    status = c.call("status")["flows"]
    assert status["rules_control"] == 1 and status["with_expiry"] == 0  # its timer stopped
    # a reload does not bring it back; a new flow_announce is a change
    c.call("reload")
    assert parse_match(1, WEB).nlri() not in speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]
    assert c.call("flow_announce", name="short", match=WEB, then={"discard": True})["changed"] is True
    # the same through an API program's `withdraw flow route` line
    line = "withdraw flow route destination 192.0.2.10/32 destination-port =80 protocol =tcp"
    agent.lt.run(_api_withdraw(speaker, line))
    assert {f["name"] for f in c.call("flows")} == {"from-config", "kept"}
    assert c.call("flow_withdraw", name="short") == {"changed": False}


async def _api_withdraw(speaker, line: str) -> None:
    [(fam, nlri)] = parse_command(line).routes
    speaker.withdraw(fam, nlri)
