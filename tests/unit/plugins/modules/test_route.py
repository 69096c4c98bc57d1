"""fleet.bgp.route against the agent's real control server (fake speaker with real adj-rib-out
tables; sample_speaker(): 192.0.2.1 and 192.0.2.9 carry IPv4, 2001:db8::1 IPv4 and IPv6)."""

from __future__ import annotations

import pytest
from ansible_collections.fleet.bgp.plugins.modules import route
from control_fakes import short_tmpdir

from fleetbgp.control_client import ControlClient


def announced(agent, prefix, owner="control:ansible"):
    """{neighbor: entry} of the prefix by owner, read back from the agent."""
    with ControlClient(agent.path, timeout=5) as client:
        routes = client.call("routes", prefix=prefix, limit=0)["routes"]
    return {r["neighbor"]: r for r in routes if r.get("owner") == owner}


def calls(agent, kind):
    return [c for c in agent.speaker.calls if c[0] == kind]


def test_announce_is_idempotent(agent, run_module):
    args = {"socket": agent.path, "prefix": "100.10.9.0/24", "med": 100, "communities": ["65001:100"]}
    failed, result = run_module(route, args)
    assert not failed and result["changed"] is True
    assert result["announced_to"] == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert result["withdrawn_from"] == []
    now = announced(agent, "100.10.9.0/24")
    assert sorted(now) == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert now["192.0.2.1"]["route"] == "100.10.9.0/24 next-hop self med 100 community [ 65001:100 ]"
    assert result["route"] == {
        "prefix": "100.10.9.0/24", "state": "present", "owner": "control:ansible",
        "neighbors": ["192.0.2.1", "192.0.2.9", "2001:db8::1"], "next_hop": "self", "origin": "igp",
        "as_path": [], "med": 100, "local_preference": None, "communities": ["65001:100"],
        "large_communities": [], "extended_communities": []}

    before = len(agent.speaker.calls)
    failed, result = run_module(route, args)
    assert not failed and result["changed"] is False
    assert result["announced_to"] == [] and result["withdrawn_from"] == []
    assert result["route"]["neighbors"] == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert len(agent.speaker.calls) == before, "nothing sent to the speaker the second time"


def test_all_attributes_round_trip_without_a_change(agent, run_module):
    args = {"socket": agent.path, "prefix": "100.10.9.0/24", "next_hop": "192.0.2.50", "med": 5,
            "local_preference": 300, "origin": "incomplete", "as_path": [65001, 65002],
            "communities": ["no-export", "65001:1"], "large_communities": ["65001:1:2"],
            "extended_communities": ["target:65000:100"]}
    assert run_module(route, args)[1]["changed"] is True
    entry = announced(agent, "100.10.9.0/24")["192.0.2.1"]
    assert entry["next_hop"] == "192.0.2.50" and entry["local_preference"] == 300
    assert entry["as_path"] == [65001, 65002] and entry["origin"] == "incomplete"
    assert entry["extended_communities"] == ["target:65000:100"]
    failed, result = run_module(route, args)
    assert not failed and result["changed"] is False


def test_equivalent_spellings_are_no_change(agent, run_module):
    base = {"socket": agent.path, "prefix": "2001:db8:200::/48"}
    run_module(route, dict(base, next_hop="2001:db8::50", communities=["no-export", "65001:100"],
                           extended_communities=["rt:65000:7"]))
    same = dict(base, next_hop="2001:DB8:0::50", communities=["65001:100", "65535:65281"],
                extended_communities=["target:65000:7"])
    failed, result = run_module(route, same)
    assert not failed and result["changed"] is False, result


def test_changed_attribute_is_announced_again(agent, run_module):
    args = {"socket": agent.path, "prefix": "100.10.9.0/24", "med": 100}
    run_module(route, args)
    failed, result = run_module(route, dict(args, med=200), diff=True)
    assert not failed and result["changed"] is True
    assert {e["med"] for e in announced(agent, "100.10.9.0/24").values()} == {200}
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["neighbors"]["192.0.2.1"]["med"] == 100
    assert after["neighbors"]["192.0.2.1"]["med"] == 200
    # Dropping an attribute is a change too.
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24"})
    assert result["changed"] is True
    assert all("med" not in e for e in announced(agent, "100.10.9.0/24").values())


def test_check_mode_changes_nothing_and_predicts(agent, run_module):
    args = {"socket": agent.path, "prefix": "100.10.9.0/24", "med": 7}
    failed, result = run_module(route, args, check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["announced_to"] == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert calls(agent, "announce") == []
    assert announced(agent, "100.10.9.0/24") == {}
    assert result["diff"]["before"] == {"prefix": "100.10.9.0/24", "owner": "control:ansible",
                                        "state": "absent", "neighbors": {}}
    assert result["diff"]["after"]["state"] == "present"
    assert result["diff"]["after"]["neighbors"]["192.0.2.9"] == {"next_hop": "self", "origin": "igp",
                                                                 "med": 7}
    # and the real run then does exactly that
    failed, real = run_module(route, args, diff=True)
    assert real["diff"] == result["diff"]


def test_diff_shows_only_the_attributes_that_are_set(agent, run_module):
    _f, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                    "communities": ["65001:5"]}, diff=True)
    assert result["diff"]["after"]["neighbors"]["192.0.2.1"] == {
        "next_hop": "self", "origin": "igp", "communities": ["65001:5"]}


def test_ipv6_prefix_goes_to_the_neighbors_that_carry_ipv6(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "2001:db8:200::/48"})
    assert not failed and result["announced_to"] == ["2001:db8::1"]
    assert sorted(announced(agent, "2001:db8:200::/48")) == ["2001:db8::1"]


def test_explicit_neighbors_are_exact(agent, run_module):
    args = {"socket": agent.path, "prefix": "100.10.9.0/24", "neighbors": ["192.0.2.1"]}
    _f, result = run_module(route, args)
    assert result["announced_to"] == ["192.0.2.1"]
    assert sorted(announced(agent, "100.10.9.0/24")) == ["192.0.2.1"]
    _f, result = run_module(route, dict(args, neighbors=["192.0.2.9"]))
    assert result["changed"] is True
    assert (result["announced_to"], result["withdrawn_from"]) == (["192.0.2.9"], ["192.0.2.1"])
    assert sorted(announced(agent, "100.10.9.0/24")) == ["192.0.2.9"]
    _f, result = run_module(route, dict(args, neighbors=["192.0.2.9"]))
    assert result["changed"] is False


def test_neighbor_without_the_family_is_an_error(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "2001:db8:200::/48",
                                        "neighbors": ["192.0.2.1"]})
    assert failed
    assert result["msg"] == ("neighbors: 192.0.2.1 does not carry ipv6 unicast "
                             "(its families: ipv4 unicast)")
    assert calls(agent, "announce") == []


def test_no_neighbor_carries_the_family(run_module):
    from control_fakes import FakePeer, FakeSpeaker, served

    with served(FakeSpeaker([FakePeer("192.0.2.1")])) as (_s, path, _lt):
        failed, result = run_module(route, {"socket": path, "prefix": "2001:db8::/32"})
    assert failed and result["msg"].startswith("no neighbor of the agent carries ipv6 unicast")


def test_unknown_neighbor(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "neighbors": ["192.0.2.1", "198.51.100.1"]})
    assert failed
    assert "198.51.100.1" in result["msg"]
    assert "the agent's neighbors are: 192.0.2.1, 192.0.2.9, 2001:db8::1" in result["msg"]


def test_absent_withdraws_only_this_owners_route(agent, run_module):
    run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24"})
    run_module(route, {"socket": agent.path, "prefix": "100.10.8.0/24", "owner": "other"})
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "state": "absent"}, diff=True)
    assert not failed and result["changed"] is True
    assert result["withdrawn_from"] == ["192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert announced(agent, "100.10.9.0/24") == {}
    assert sorted(announced(agent, "100.10.8.0/24", "control:other")) == [
        "192.0.2.1", "192.0.2.9", "2001:db8::1"]
    assert result["route"] == {"prefix": "100.10.9.0/24", "owner": "control:ansible", "state": "absent",
                               "neighbors": []}
    assert result["diff"]["after"] == {"prefix": "100.10.9.0/24", "owner": "control:ansible",
                                       "state": "absent", "neighbors": {}}
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "state": "absent"})
    assert result["changed"] is False


def test_absent_leaves_routes_of_the_config_alone(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.1.0/24",
                                        "state": "absent"})
    assert not failed and result["changed"] is False
    assert calls(agent, "withdraw") == []


def test_absent_for_some_neighbors(agent, run_module):
    run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24"})
    _f, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24", "state": "absent",
                                    "neighbors": ["192.0.2.9"]})
    assert result["withdrawn_from"] == ["192.0.2.9"]
    assert sorted(announced(agent, "100.10.9.0/24")) == ["192.0.2.1", "2001:db8::1"]


def test_owners_keep_their_routes_apart(agent, run_module):
    run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24", "owner": "app1"})
    _f, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24", "owner": "app1"})
    assert result["changed"] is False
    assert result["route"]["owner"] == "control:app1"
    # control:NAME spelled out is the same owner
    _f, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                    "owner": "control:app1"})
    assert result["changed"] is False


def test_taking_over_a_route_of_the_config_warns(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.1.0/24",
                                        "neighbors": ["192.0.2.1"]})
    assert not failed and result["changed"] is True
    warnings = str(result.get("warnings"))  # ansible-core 2.19 sends them as structured events
    assert "100.10.1.0/24 was announced to 192.0.2.1 by config; the announcement of control:ansible " \
           "replaces it" in warnings
    assert announced(agent, "100.10.1.0/24")["192.0.2.1"]["origin"] == "igp"


def test_invalid_prefix_names_it_with_the_agents_hint(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.1/24"})
    assert failed
    assert result["msg"] == ("prefix '100.10.9.1/24': '100.10.9.1/24' has host bits set "
                             "(did you mean 100.10.9.0/24?)")
    assert result["error_code"] == "invalid_route"


@pytest.mark.parametrize(("extra", "option", "text"), [
    ({"med": 4294967296}, "med", "4294967296"),
    ({"local_preference": -1}, "local_preference", "-1"),
    ({"communities": ["65001:1", "65536:1"]}, "communities", "65536:1"),
    ({"large_communities": ["1:2"]}, "large_communities", "1:2"),
    ({"extended_communities": ["bogus:1:2"]}, "extended_communities", "bogus"),
    ({"as_path": [65001, 4294967296]}, "as_path", "4294967296"),
    ({"next_hop": "2001:db8::1"}, "next_hop", "IPv6"),
    ({"next_hop": "gateway"}, "next_hop", "gateway"),
])
def test_invalid_attributes_name_the_option(agent, run_module, extra, option, text):
    failed, result = run_module(route, dict({"socket": agent.path, "prefix": "100.10.9.0/24"}, **extra))
    assert failed, result
    assert result["msg"].startswith(f"{option}: "), result["msg"]
    assert text in result["msg"]
    assert result["error_code"] == "invalid_route"
    assert announced(agent, "100.10.9.0/24") == {}


def test_values_must_be_single_words(agent, run_module):
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "communities": ["65001:1 med 5"]})
    assert failed and result["msg"] == "communities: '65001:1 med 5' is not a single value"
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "owner": "my app"})
    assert failed and result["msg"].startswith("owner: ")
    assert calls(agent, "announce") == []


def test_an_agent_that_does_not_take_the_route_is_an_error(agent, run_module):
    agent.speaker.announce = lambda *a, **k: 0  # says yes, does nothing
    failed, result = run_module(route, {"socket": agent.path, "prefix": "100.10.9.0/24",
                                        "neighbors": ["192.0.2.1"]})
    assert failed
    assert result["msg"] == ("the agent accepted the change but its routes do not show it: "
                             "not announced as asked to 192.0.2.1")


def test_missing_socket(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(route, {"socket": path, "prefix": "100.10.9.0/24"})
    assert failed and "the agent is not running? systemctl status fleetbgp" in result["msg"]


def test_comparable_normalises_what_the_agent_normalises():
    c = route.comparable
    assert c({"communities": ["no-export", "1:2"]}) == c({"communities": ["1:2", "65535:65281", "1:2"]})
    assert c({"communities": ["1:2,3:4"]}) == c({"communities": ["3:4", "1:2"]})
    assert c({"next_hop": "2001:DB8::0:1"}) == c({"next_hop": "2001:db8::1"})
    assert c({"next_hop": "SELF"}) == c({"next_hop": "self"})
    assert c({"extended_communities": ["65000:1"]}) == c({"extended_communities": ["target:65000:1"]})
    assert c({"large_communities": ["01:2:3"]}) == c({"large_communities": ["1:2:3"]})
    assert c({"origin": None}) == c({"origin": "igp"})
    assert c({"med": 1}) != c({"med": None})
    assert c({"as_path": [1, 2]}) != c({"as_path": [2, 1]})


def test_explain_invalid_falls_back_to_the_agents_words():
    params = {"prefix": "10.0.0.0/8", **{field[0]: None for field in route.FIELDS}}
    assert route.explain_invalid(params, "something else") == "the agent refused the route: something else"
    msg = "announce route '10.0.0.0/8': the route has no next-hop (add 'next-hop self' or 'next-hop ADDRESS')"
    assert route.explain_invalid(params, msg).startswith("next_hop: the route has no next-hop")
