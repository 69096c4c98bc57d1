"""fleet.bgp.flowspec against the agent's real control server and its real FlowSpec rule manager
(fleetbgp.flows.FlowManager, with the real codec), on the fake speaker of the control tests (real
adj-rib-out tables): 192.0.2.1 (Established, ipv4 unicast + ipv4 flow), 192.0.2.9 (Established,
ipv4 unicast only), 2001:db8::1 (Established, ipv4 flow + ipv6 flow)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from ansible_collections.fleet.bgp.plugins.modules import flowspec
from control_fakes import FakePeer, FakeSpeaker, served, short_tmpdir

from fleetbgp.control_client import ControlClient
from fleetbgp.flows import FlowManager
from fleetbgp.grammar.flowspec import parse_match
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC, IPV6_UNICAST

DNS = {"destination": "203.0.113.10/32", "protocol": "udp", "source-port": 53}


def flow_speaker() -> FakeSpeaker:
    peers = [FakePeer("192.0.2.1", families=(IPV4_UNICAST, IPV4_FLOWSPEC)),
             FakePeer("192.0.2.9", families=(IPV4_UNICAST,)),
             FakePeer("2001:db8::1", families=(IPV4_FLOWSPEC, IPV6_UNICAST, IPV6_FLOWSPEC))]
    for peer in peers:  # what FlowManager reads of a real Peer beyond the fake's attributes
        peer.established = object() if peer.state == "Established" else None
    speaker = FakeSpeaker(peers)
    speaker.config = SimpleNamespace(neighbors=())
    speaker.flows = FlowManager(speaker)
    return speaker


@pytest.fixture
def agent():
    speaker = flow_speaker()
    with served(speaker) as (server, path, loop):
        yield SimpleNamespace(speaker=speaker, path=path, loop=loop, server=server)
        loop.call(speaker.flows.stop)


def flows(agent) -> dict[str, dict]:
    with ControlClient(agent.path, timeout=5) as client:
        return {r["name"]: r for r in client.call("flows")}


def calls(agent, kind):
    return [c for c in agent.speaker.calls if c[0] == kind]


def args(agent, **kw):
    return {"socket": agent.path, **kw}


def test_announce_is_idempotent(agent, run_module):
    task = args(agent, name="dns-amp", match=DNS, then={"discard": True})
    failed, result = run_module(flowspec, task)
    assert not failed and result["changed"] is True, result
    rule = result["rule"]
    assert rule["name"] == "dns-amp" and rule["family"] == "ipv4"
    assert rule["match"] == {"destination": ["203.0.113.10/32"], "protocol": ["=udp"],
                             "source-port": ["=53"]}
    assert rule["then"] == {"discard": True}
    assert rule["owner"] == "control:ansible" and rule["expires_at"] is None
    assert sorted(rule["announced_to"]) == ["192.0.2.1", "2001:db8::1"]
    assert rule["text"] == ("flow route dns-amp { match { destination 203.0.113.10/32; protocol =udp; "
                            "source-port =53; } then { discard; } }")
    assert [r["name"] for r in result["rules"]] == ["dns-amp"]
    assert result["removed"] == [] and result["expiry_refreshed"] is False
    nlri = parse_match(1, DNS).nlri()
    [announce] = calls(agent, "announce")
    assert announce[1] == IPV4_FLOWSPEC and announce[2] == nlri and announce[4] == "control:ansible"
    assert nlri in agent.speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]
    assert IPV4_FLOWSPEC not in agent.speaker.peers["192.0.2.9"].rib_out.routes

    before = len(agent.speaker.calls)
    failed, again = run_module(flowspec, task)
    assert not failed and again["changed"] is False
    assert again["rule"]["created_at"] == rule["created_at"]
    assert len(agent.speaker.calls) == before, "nothing sent to the speaker the second time"


def test_different_spellings_of_the_same_rule_are_no_change(agent, run_module):
    run_module(flowspec, args(agent, name="web", match={"destination": "192.0.2.10/32", "protocol": "=tcp",
                                                        "destination-port": ["=80", "=443"]},
                              then={"rate-limit": 1000000}))
    same = args(agent, name="web", match={"destination_port": "[ 80 443 ]", "protocol": 6,
                                          "destination-ipv4": "192.0.2.10/32"},
                then={"rate-limit": "1000000"})
    failed, check = run_module(flowspec, same, check_mode=True)
    assert not failed and check["changed"] is False, "check mode sees the same rule"
    failed, real = run_module(flowspec, same)
    assert not failed and real["changed"] is False, "and so does the agent"


@pytest.mark.parametrize(("match", "then"), [
    ({"destination": "10.1.0.0/16", "protocol": ["tcp", "udp"], "port": ">=1024&<=2048"}, {"discard": None}),
    ({"source": "10.2.0.0/16", "icmp-type": 8, "icmp-code": 0, "protocol": "icmp"}, {"rate-limit": 0}),
    ({"destination": "10.3.0.0/24", "tcp-flags": "[syn]", "packet-length": [">512", "<64"]},
     {"rate-limit": "100 packets"}),
    ({"destination": "10.4.0.0/24", "fragment": "[is-fragment]", "dscp": 46},
     {"redirect": "65001:999", "mark": "10"}),
    ({"destination": "10.5.0.0/24", "protocol": "gre"}, {"action": "sample", "community": ["65001:1"]}),
    ({"destination": "2001:DB8:5::/48", "next-header": "tcp", "flow-label": ">100&<2000", "dscp": 5},
     {"redirect": "192.0.2.50"}),
])
def test_check_mode_predicts_what_the_agent_does(agent, run_module, match, then):
    task = args(agent, name="r1", match=match, then=then)
    failed, check = run_module(flowspec, task, check_mode=True, diff=True)
    assert not failed and check["changed"] is True
    assert calls(agent, "announce") == [] and flows(agent) == {}
    failed, real = run_module(flowspec, task, diff=True)
    assert not failed and real["changed"] is True, real
    assert check["rule"]["family"] == real["rule"]["family"]
    # once it is there, check mode (and the agent) see no change
    failed, check = run_module(flowspec, task, check_mode=True)
    assert not failed and check["changed"] is False, (real["rule"], flowspec.rule_comparable(real["rule"]))
    failed, real = run_module(flowspec, task)
    assert not failed and real["changed"] is False


def test_check_mode_changes_nothing_and_shows_the_diff(agent, run_module):
    task = args(agent, name="dns-amp", match=DNS, then={"discard": True}, expires_after="30m")
    failed, check = run_module(flowspec, task, check_mode=True, diff=True)
    assert not failed and check["changed"] is True
    assert flows(agent) == {} and agent.speaker.calls == []
    assert check["diff"]["before"] == ""
    assert check["diff"]["after"] == (
        "# family ipv4, neighbors: all\n"
        "flow route dns-amp { match { destination 203.0.113.10/32; protocol =udp; source-port =53; } "
        "then { discard; } }\n")
    assert check["rule"]["expires_at"] == pytest.approx(time.time() + 1800, abs=30)
    failed, real = run_module(flowspec, task, diff=True)
    assert real["diff"] == check["diff"], "check mode shows what the real run then does"
    assert real["rule"]["match"] == check["rule"]["match"]
    # an action the agent shows in its own order: the diff is still the same rule
    task = args(agent, name="limit", match={"source-port": "=123", "protocol": 17, "destination": "10.0.0.0/8"},
                then={"rate-limit": 1000000})
    failed, check = run_module(flowspec, task, check_mode=True, diff=True)
    failed, real = run_module(flowspec, task, diff=True)
    assert real["diff"] == check["diff"]
    assert "{ destination 10.0.0.0/8; protocol =udp; source-port =123; } then { rate-limit 1000000; }" \
        in real["diff"]["after"]


def test_a_changed_rule_replaces_the_old_one(agent, run_module):
    task = args(agent, name="ntp", match={"destination": "198.51.100.0/24", "destination-port": 123},
                then={"rate-limit": 9600})
    run_module(flowspec, task)
    old = parse_match(1, {"destination": "198.51.100.0/24", "destination-port": 123}).nlri()
    changed = dict(task, match={"destination": "198.51.100.0/24", "destination-port": 123, "protocol": "udp"})
    failed, result = run_module(flowspec, changed, diff=True)
    assert not failed and result["changed"] is True
    assert "destination-port =123; } then { rate-limit 9600; }" in result["diff"]["before"]
    assert "protocol =udp; destination-port =123;" in result["diff"]["after"]
    table = agent.speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]
    assert old not in table and len(table) == 1, "the old rule is withdrawn, the new one announced"
    # a different action is a change too
    failed, result = run_module(flowspec, dict(changed, then={"discard": True}))
    assert result["changed"] is True and flows(agent)["ntp"]["then"] == {"discard": True}


def test_expires_after_is_kept_refreshed_and_expires(agent, run_module):
    task = args(agent, name="short", match=DNS, then={"discard": True}, expires_after=2)
    failed, first = run_module(flowspec, task)
    assert not failed and first["rule"]["expires_at"] == pytest.approx(time.time() + 2, abs=1)
    time.sleep(0.3)
    failed, again = run_module(flowspec, task)
    assert not failed and again["changed"] is False and again["expiry_refreshed"] is True
    assert again["rule"]["expires_at"] > first["rule"]["expires_at"]
    assert len(calls(agent, "announce")) == 1, "a refresh announces nothing"
    # without expires_after the expiry stays as it is
    failed, keep = run_module(flowspec, dict(task, expires_after=None))
    assert keep["changed"] is False and keep["expiry_refreshed"] is False
    assert keep["rule"]["expires_at"] == again["rule"]["expires_at"]
    # the agent withdraws it itself
    deadline = time.monotonic() + 5
    while "short" in flows(agent) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "short" not in flows(agent)
    assert calls(agent, "withdraw"), "the agent withdrew the rule from the peers"
    assert IPV4_FLOWSPEC not in agent.speaker.peers["192.0.2.1"].rib_out.routes or \
        not agent.speaker.peers["192.0.2.1"].rib_out.routes[IPV4_FLOWSPEC]


@pytest.mark.parametrize(("value", "seconds"), [
    ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1d", 86400), (3600, 3600), ("45", 45),
    ("1.5h", 5400),
])
def test_expires_after_durations(agent, run_module, value, seconds):
    failed, result = run_module(flowspec, args(agent, name="d", match=DNS, then={"discard": True},
                                               expires_after=value))
    assert not failed, result
    assert result["rule"]["expires_at"] == pytest.approx(time.time() + seconds, abs=30)


@pytest.mark.parametrize(("value", "text"), [
    ("30x", "'30x' is not a duration"), (0, "must be more than 0 seconds"), ("-5m", "is not a duration"),
    ("400d", "more than a year"), (True, "is not a duration"),
])
def test_bad_expires_after_names_the_option(agent, run_module, value, text):
    failed, result = run_module(flowspec, args(agent, name="d", match=DNS, then={"discard": True},
                                               expires_after=value))
    assert failed and result["msg"].startswith("expires_after: ") and text in result["msg"], result["msg"]
    assert agent.speaker.calls == []


def test_absent_removes_the_rule(agent, run_module):
    run_module(flowspec, args(agent, name="dns-amp", match=DNS, then={"discard": True}))
    failed, check = run_module(flowspec, args(agent, name="dns-amp", state="absent"), check_mode=True, diff=True)
    assert not failed and check["changed"] is True and check["removed"] == ["dns-amp"]
    assert "dns-amp" in flows(agent)
    assert "flow route dns-amp" in check["diff"]["before"] and check["diff"]["after"] == ""
    failed, result = run_module(flowspec, args(agent, name="dns-amp", state="absent"))
    assert not failed and result["changed"] is True and result["rule"] is None
    assert flows(agent) == {} and result["rules"] == []
    assert not agent.speaker.peers["192.0.2.1"].rib_out.routes.get(IPV4_FLOWSPEC)
    failed, result = run_module(flowspec, args(agent, name="dns-amp", state="absent"))
    assert not failed and result["changed"] is False and result["removed"] == []


def test_all_removes_only_the_owners_rules(agent, run_module):
    for i, owner in enumerate(["mitigate", "mitigate", "ansible"]):
        run_module(flowspec, args(agent, name=f"r{i}", owner=owner, then={"discard": True},
                                  match={"destination": f"10.0.{i}.0/24"}))
    failed, result = run_module(flowspec, args(agent, state="absent", all=True, owner="mitigate"))
    assert not failed and result["changed"] is True and result["removed"] == ["r0", "r1"]
    assert sorted(flows(agent)) == ["r2"]
    failed, result = run_module(flowspec, args(agent, state="absent", all=True, owner="mitigate"))
    assert result["changed"] is False


def test_query_lists_without_changing(agent, run_module):
    run_module(flowspec, args(agent, name="a", match={"destination": "10.0.1.0/24"}, then={"discard": True}))
    run_module(flowspec, args(agent, name="b", match={"destination": "2001:db8:1::/48"},
                              then={"rate-limit": 500}, neighbors=["2001:db8::1"]))
    before = len(agent.speaker.calls)
    failed, result = run_module(flowspec, args(agent, state="query"))
    assert not failed and result["changed"] is False
    assert [r["name"] for r in result["rules"]] == ["a", "b"]
    assert result["rules"][1]["family"] == "ipv6" and result["rules"][1]["neighbors"] == ["2001:db8::1"]
    failed, result = run_module(flowspec, args(agent, state="query", name="b"))
    assert [r["name"] for r in result["rules"]] == ["b"] and result["rule"]["name"] == "b"
    failed, result = run_module(flowspec, args(agent, state="query", name="nope"))
    assert result["rules"] == [] and result["rule"] is None
    assert len(agent.speaker.calls) == before


def test_neighbors_are_exact_and_checked(agent, run_module):
    task = args(agent, name="n", match={"destination": "10.0.0.0/24"}, then={"discard": True},
                neighbors=["192.0.2.1"])
    failed, result = run_module(flowspec, task)
    assert not failed and result["rule"]["announced_to"] == ["192.0.2.1"]
    failed, result = run_module(flowspec, dict(task, neighbors=["192.0.2.1", "2001:db8::1"]))
    assert result["changed"] is True
    failed, result = run_module(flowspec, dict(task, neighbors=["2001:db8::1", "192.0.2.1"]))
    assert result["changed"] is False, "the order of the neighbors does not matter"
    failed, result = run_module(flowspec, dict(task, neighbors=["192.0.2.9"]))
    assert failed and result["msg"].startswith("neighbors: neighbor 192.0.2.9 does not have")
    failed, result = run_module(flowspec, dict(task, neighbors=["198.51.100.1"]))
    assert failed and result["msg"].startswith("neighbors: ") and "198.51.100.1" in result["msg"]


def test_a_rule_that_reaches_no_router_warns(run_module):
    peer = FakePeer("192.0.2.1", families=(IPV4_UNICAST, IPV4_FLOWSPEC), state="Active")
    peer.established = None
    speaker = FakeSpeaker([peer])
    speaker.config = SimpleNamespace(neighbors=())
    speaker.flows = FlowManager(speaker)
    with served(speaker) as (_s, path, loop):
        failed, result = run_module(flowspec, {"socket": path, "name": "x", "then": {"discard": True},
                                               "match": {"destination": "10.0.0.0/24"}})
        loop.call(speaker.flows.stop)
    assert not failed and result["changed"] is True and result["rule"]["announced_to"] == []
    assert "rule x is active but no neighbor has it" in str(result.get("warnings"))


def test_no_neighbor_with_the_family(run_module):
    speaker = FakeSpeaker([FakePeer("192.0.2.1")])
    speaker.config = SimpleNamespace(neighbors=())
    speaker.flows = FlowManager(speaker)
    with served(speaker) as (_s, path, _loop):
        failed, result = run_module(flowspec, {"socket": path, "name": "x", "then": {"discard": True},
                                               "match": {"destination": "10.0.0.0/24"}})
    assert failed and "no neighbor of the agent carries ipv4 FlowSpec" in result["msg"]
    assert "ipv4 flow" in result["msg"]


@pytest.mark.parametrize(("task", "msg"), [
    ({"name": "x", "match": {"destination-port": "=99999"}, "then": {"discard": True}},
     "match.destination-port: '=99999' is out of range"),
    ({"name": "x", "match": {"destination": "10.0.0.1/24"}, "then": {"discard": True}},
     "match.destination: "),
    ({"name": "x", "match": {"protocol": "=bogus"}, "then": {"discard": True}}, "match.protocol: "),
    ({"name": "x", "match": {"destination": "10.0.0.0/24", "flow-label": 5}, "then": {"discard": True}},
     "match.flow-label: "),
    ({"name": "x", "match": {"destination": "10.0.0.0/24"}, "then": {"mark": 99}}, "then.mark: "),
    ({"name": "x", "match": {"destination": "10.0.0.0/24"}, "then": {"redirect": "nowhere"}}, "then.redirect: "),
    ({"name": "x", "match": {"destination": "10.0.0.0/24"}, "then": {"rate-limit": -1}}, "then.rate-limit: "),
])
def test_the_agents_errors_name_the_key(agent, run_module, task, msg):
    failed, result = run_module(flowspec, args(agent, **task))
    assert failed and result["msg"].startswith(msg), result["msg"]
    assert result["error_code"] == "invalid_flow"
    assert flows(agent) == {} and calls(agent, "announce") == []


@pytest.mark.parametrize(("task", "msg"), [
    ({"name": "x", "match": {"destination-prot": 80}, "then": {"discard": True}},
     "match: unknown component 'destination-prot' (did you mean 'destination-port'?)"),
    ({"name": "x", "match": {"destination": "10.0.0.0/8"}, "then": {"drop": True}},
     "then: unknown action 'drop'"),
    ({"name": "x", "match": {"destination": {"a": 1}}, "then": {"discard": True}}, "match.destination: "),
    ({"name": "x", "match": {"port": []}, "then": {"discard": True}}, "match.port: the list is empty"),
    ({"name": "bad name", "match": {"port": 1}, "then": {"discard": True}}, "name: 'bad name' must be"),
    ({"name": "x" * 65, "match": {"port": 1}, "then": {"discard": True}}, "name: "),
    ({"name": "x", "then": {"discard": True}}, "match: required with state=present"),
    ({"name": "x", "match": {}, "then": {"discard": True}}, "match: required with state=present"),
    ({"name": "x", "match": {"port": 1}}, "then: required with state=present"),
    ({"match": {"port": 1}, "then": {"discard": True}}, "name: required with state=present"),
    ({"state": "absent"}, "name: required with state=absent (or all=true"),
    ({"state": "absent", "name": "x", "all": True}, "all: give either name"),
    ({"state": "present", "name": "x", "all": True, "match": {"port": 1}, "then": {"discard": True}},
     "all: only with state=absent"),
    ({"name": "x", "owner": "my app", "match": {"port": 1}, "then": {"discard": True}}, "owner: "),
])
def test_argument_errors_name_the_option(agent, run_module, task, msg):
    failed, result = run_module(flowspec, args(agent, **task))
    assert failed and result["msg"].startswith(msg), result["msg"]
    assert agent.speaker.calls == []


def test_rules_of_the_config_are_not_removed_by_name(agent, run_module):
    """A rule the agent lists with another owner (here: the config) cannot be withdrawn by the module."""
    peer = agent.speaker.peers["192.0.2.1"]
    nlri = parse_match(1, {"destination": "10.9.0.0/24"}).nlri()
    from fleetbgp.grammar.flowspec import build_rule

    attrs = build_rule(IPV4_FLOWSPEC, {"destination": "10.9.0.0/24"}, {"discard": True})[3]

    def add():
        peer.rib_out.put(IPV4_FLOWSPEC, nlri, attrs)
        peer.rib_out.static.setdefault(IPV4_FLOWSPEC, {})[nlri] = attrs
    agent.loop.call(add)
    [listed] = flows(agent).values()
    assert listed["owner"] == "config"
    failed, result = run_module(flowspec, args(agent, name=listed["name"], state="absent"))
    assert failed and "comes from config" in result["msg"] and "configuration and reload" in result["msg"]


def test_an_api_programs_rule_is_removed_by_its_listed_name(agent, run_module):
    """An API program's rule (owner process:NAME, listed as rule-HASH) can be withdrawn by name."""
    peer = agent.speaker.peers["192.0.2.1"]
    from fleetbgp.grammar.flowspec import build_rule

    _rule, _actions, nlri, attrs = build_rule(IPV4_FLOWSPEC, {"destination": "10.9.1.0/24"}, {"discard": True})
    agent.loop.call(lambda: agent.speaker.announce(IPV4_FLOWSPEC, nlri, attrs, owner="process:ddos"))
    [listed] = flows(agent).values()
    assert listed["owner"] == "process:ddos" and listed["name"].startswith("rule-")
    failed, result = run_module(flowspec, args(agent, name=listed["name"], state="absent"))
    assert not failed and result["changed"] is True and result["removed"] == [listed["name"]], result
    assert nlri not in agent.loop.call(lambda: dict(peer.rib_out.routes.get(IPV4_FLOWSPEC, {})))


def test_replacing_another_owners_rule_warns(agent, run_module):
    base = args(agent, name="shared", match={"destination": "10.0.0.0/24"})
    run_module(flowspec, dict(base, owner="other", then={"discard": True}))
    failed, result = run_module(flowspec, dict(base, then={"rate-limit": 1000}))
    assert not failed and result["changed"] is True
    assert "rule shared was announced by control:other" in str(result.get("warnings"))


def test_missing_socket(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(flowspec, {"socket": path, "state": "query"})
    assert failed and "the agent is not running? systemctl status fleetbgp" in result["msg"]


def test_parse_duration():
    assert flowspec.parse_duration("1h30m") == 5400
    assert flowspec.parse_duration(" 2H ") == 7200
    assert flowspec.parse_duration(None) is None
    with pytest.raises(ValueError, match="not a duration"):
        flowspec.parse_duration("1h30")
    with pytest.raises(ValueError, match="more than 0"):
        flowspec.parse_duration("0s")


def test_comparable_normalises_like_the_agent():
    def same(family, a, b):
        return flowspec.norm_match(a, family) == flowspec.norm_match(b, family)

    assert same("ipv4", {"protocol": "tcp"}, {"protocol": ["=6"]})
    assert same("ipv4", {"destination_port": "[ 80 443 ]"}, {"destination-port": ["=80", "=443"]})
    assert same("ipv4", {"icmp-type": "=echo-request"}, {"icmp-type": 8})
    assert same("ipv6", {"destination": "2001:DB8:0::/48"}, {"destination-ipv6": "2001:db8::/48"})
    assert same("ipv6", {"dscp": 5}, {"traffic-class": "=5"})
    assert not same("ipv4", {"port": ["=80", "=443"]}, {"port": ["=443", "=80"]}), "the order is kept"
    assert flowspec.norm_then({"rate-limit": 0}) == flowspec.norm_then({"discard": None})
    assert flowspec.norm_then({"rate-limit": "10 packets"}) == flowspec.norm_then({"rate-limit-packets": 10})
    assert flowspec.norm_then({}) == {"accept": True}
