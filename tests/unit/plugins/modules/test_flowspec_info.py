"""fleet.bgp.flowspec_info against the agent's real control server and FlowSpec rule manager
(fleetbgp.flows.FlowManager) on the fake speaker of the control tests; and the deprecated
fleet.bgp.flowspec state=query it replaces."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ansible_collections.fleet.bgp.plugins.modules import flowspec, flowspec_info
from control_fakes import FakePeer, FakeSpeaker, served, short_tmpdir

from fleetbgp.flows import FlowManager
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC, IPV6_UNICAST


@pytest.fixture
def agent():
    peers = [FakePeer("192.0.2.1", families=(IPV4_UNICAST, IPV4_FLOWSPEC)),
             FakePeer("2001:db8::1", families=(IPV4_FLOWSPEC, IPV6_UNICAST, IPV6_FLOWSPEC))]
    for peer in peers:  # what FlowManager reads of a real Peer beyond the fake's attributes
        peer.established = object() if peer.state == "Established" else None
    speaker = FakeSpeaker(peers)
    speaker.config = SimpleNamespace(neighbors=())
    speaker.flows = FlowManager(speaker)
    with served(speaker) as (server, path, loop):
        yield SimpleNamespace(speaker=speaker, path=path, loop=loop, server=server)
        loop.call(speaker.flows.stop)


def announce(agent, run_module, name, **kw):
    failed, result = run_module(flowspec, {"socket": agent.path, "name": name, "then": {"discard": True}, **kw})
    assert not failed, result


def test_lists_the_rules_and_changes_nothing(agent, run_module):
    announce(agent, run_module, "b", match={"destination": "2001:db8:1::/48"}, neighbors=["2001:db8::1"],
             expires_after="1h")
    announce(agent, run_module, "a", match={"destination": "10.0.1.0/24"}, owner="mitigate")
    before = len(agent.speaker.calls)
    failed, result = run_module(flowspec_info, {"socket": agent.path})
    assert not failed and result["changed"] is False and result["rule"] is None
    assert [r["name"] for r in result["rules"]] == ["a", "b"], "sorted by name"
    a, b = result["rules"]
    assert a["owner"] == "control:mitigate" and a["expires_at"] is None
    assert sorted(a["announced_to"]) == ["192.0.2.1", "2001:db8::1"]
    assert b["family"] == "ipv6" and b["neighbors"] == ["2001:db8::1"] and b["expires_at"] > b["created_at"]
    assert b["text"].startswith("flow route b { match { destination 2001:db8:1::/48")

    failed, checked = run_module(flowspec_info, {"socket": agent.path}, check_mode=True)
    assert not failed and checked["rules"] == result["rules"]

    failed, one = run_module(flowspec_info, {"socket": agent.path, "name": "b"})
    assert one["rules"] == [b] and one["rule"] == b
    failed, none = run_module(flowspec_info, {"socket": agent.path, "name": "nope"})
    assert not failed and none["rules"] == [] and none["rule"] is None
    assert len(agent.speaker.calls) == before, "flowspec_info sent nothing to the routers"


def test_flowspec_state_query_still_works_with_a_deprecation(agent, run_module):
    announce(agent, run_module, "a", match={"destination": "10.0.1.0/24"})
    failed, old = run_module(flowspec, {"socket": agent.path, "state": "query", "name": "a"})
    assert not failed and old["changed"] is False and old["rule"]["name"] == "a"
    [deprecation] = old["deprecations"]
    # ansible-core 2.19 returns a DeprecationSummary (event.msg, deprecator), older ones a flat dict
    msg = deprecation.get("msg") or deprecation["event"]["msg"]
    collection = deprecation.get("collection_name") or deprecation["deprecator"]["resolved_name"]
    assert "state=query is deprecated, use the module fleet.bgp.flowspec_info" in msg
    assert deprecation["version"] == "1.0.0" and collection == "fleet.bgp"
    failed, new = run_module(flowspec_info, {"socket": agent.path, "name": "a"})
    assert new["rule"] == old["rule"] and new["rules"] == old["rules"]


def test_missing_socket(run_module):
    path = str(short_tmpdir() / "control.sock")
    failed, result = run_module(flowspec_info, {"socket": path})
    assert failed and "the agent is not running? systemctl status fleetbgp" in result["msg"]
