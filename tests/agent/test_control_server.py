"""The control socket server (fleetbgp.control) against a fake Speaker: every command, every error
path, the socket file's lifecycle, limits. Requests go over a real unix socket."""

from __future__ import annotations

import os
import socket
import stat
import time

import pytest
from control_fakes import (  # noqa: F401 (the conn and speaker fixtures)
    FakePeer,
    FakeSpeaker,
    LoopThread,
    Raw,
    ReloadResult,
    conn_fixture,
    sample_speaker,
    served,
    short_tmpdir,
    speaker_fixture,
)

from fleetbgp.config.lexer import tokenize_line
from fleetbgp.control import ControlServer, commands
from fleetbgp.control import server as control_server
from fleetbgp.grammar.route import parse_route, route_text
from fleetbgp.settings import AgentSettings
from fleetbgp.wire.nlri import IPV4_UNICAST, nlri_to_prefix


def ok(reply: dict) -> object:
    assert reply["ok"] is True, reply
    assert reply["v"] == 1
    return reply["result"]


def err(reply: dict, code: str) -> dict:
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    return reply["error"]


# -- read-only commands ---------------------------------------------------------------------------

def test_status(conn, speaker):
    r = conn.ask("status", id="abc")
    assert r["id"] == "abc"
    result = ok(r)
    assert result["version"] == "0.1.0"
    assert result["pid"] == 4242
    assert result["config_sha256"] == "ab" * 32
    assert result["control_socket"].endswith("control.sock")
    assert result["settings"]["control_mode"] == "0660"
    assert result["settings"]["maintenance_mode"] == "withdraw"


def test_neighbors_lists_every_field(conn):
    result = ok(conn.ask("neighbors"))
    by_addr = {n["address"]: n for n in result["neighbors"]}
    assert set(by_addr) == {"192.0.2.1", "192.0.2.9", "2001:db8::1"}
    a = by_addr["192.0.2.1"]
    assert a["state"] == "Established"
    assert a["local_as"] == 65001 and a["peer_as"] == 65000
    assert a["hold_time"] == 90 and a["keepalive"] == 30
    assert 3700 < a["uptime"] < 3800
    assert a["messages"] == {"received": 12, "sent": 15}
    assert a["updates"] == {"received": 2, "sent": 3}
    assert a["notifications"]["received"] == 1
    assert a["notifications"]["by_code"] == [{"direction": "received", "code": 6, "subcode": 2, "count": 1}]
    assert a["prefixes"] == {"sent": {"ipv4 unicast": 3}, "received": {"ipv4 unicast": 0}}
    assert a["families"] == {"configured": ["ipv4 unicast"], "negotiated": ["ipv4 unicast"]}
    assert a["flaps"] == 1
    b = by_addr["192.0.2.9"]
    assert b["state"] == "Active"
    assert b["uptime"] is None and b["established_since"] is None
    assert b["prefixes"]["sent"] == {"ipv4 unicast": 0}, "not established: the peer holds nothing"
    assert b["adj_rib_out"] == {"ipv4 unicast": 1}
    assert "refused" in b["last_error"]
    c = by_addr["2001:db8::1"]
    assert c["prefixes"]["sent"] == {"ipv4 unicast": 1, "ipv6 unicast": 1}


def test_neighbors_filter_and_unknown_neighbor(conn):
    result = ok(conn.ask("neighbors", {"neighbor": "192.0.2.9"}))
    assert [n["address"] for n in result["neighbors"]] == ["192.0.2.9"]
    result = ok(conn.ask("neighbors", {"neighbor": ["192.0.2.9", "192.0.2.1"]}))
    assert len(result["neighbors"]) == 2
    e = err(conn.ask("neighbors", {"neighbor": "198.51.100.1"}), "unknown_neighbor")
    assert "198.51.100.1" in e["message"]
    err(conn.ask("neighbors", {"neighbor": 5}), "bad_request")


def test_routes_all_with_attributes_and_route_text(conn):
    result = ok(conn.ask("routes"))
    assert result["count"] == 6 and result["returned"] == 6 and result["truncated"] is False
    r = next(e for e in result["routes"] if e["neighbor"] == "192.0.2.1" and e["prefix"] == "100.10.0.100/32")
    assert r["family"] == "ipv4 unicast"
    assert r["next_hop"] == "self"
    assert r["med"] == 100
    assert r["communities"] == ["65001:100", "no-export"]
    assert r["large_communities"] == ["65001:1:1"]
    assert r["as_path"] == [65010]
    assert r["owner"] == "config"
    assert r["route"] == ("100.10.0.100/32 next-hop self as-path [ 65010 ] med 100 "
                          "community [ 65001:100 no-export ] large-community [ 65001:1:1 ]")
    api = next(e for e in result["routes"] if e["prefix"] == "100.10.0.101/32")
    assert api["owner"] == "process:hc" and api["local_preference"] == 200


def test_routes_filters(conn):
    def prefixes(args):
        return sorted((e["neighbor"], e["prefix"]) for e in ok(conn.ask("routes", args))["routes"])

    assert prefixes({"neighbor": "192.0.2.9"}) == [("192.0.2.9", "100.10.0.100/32")]
    assert prefixes({"family": "ipv6"}) == [("2001:db8::1", "2001:db8:100::/48")]
    assert prefixes({"family": "ipv6 unicast"}) == [("2001:db8::1", "2001:db8:100::/48")]
    assert prefixes({"prefix": "100.10.0.100/32"}) == [
        ("192.0.2.1", "100.10.0.100/32"), ("192.0.2.9", "100.10.0.100/32"), ("2001:db8::1", "100.10.0.100/32")]
    assert prefixes({"prefix": "100.10.0.0/16"}) == [], "exact match by default"
    assert prefixes({"prefix": "100.10.0.0/24", "match": "longer", "neighbor": "192.0.2.1"}) == [
        ("192.0.2.1", "100.10.0.100/32"), ("192.0.2.1", "100.10.0.101/32")]
    assert prefixes({"prefix": "100.10.0.0/16", "match": "longer", "neighbor": "192.0.2.1"}) == [
        ("192.0.2.1", "100.10.0.100/32"), ("192.0.2.1", "100.10.0.101/32"), ("192.0.2.1", "100.10.1.0/24")]
    assert prefixes({"prefix": "0.0.0.0/0", "match": "longer", "family": "ipv4"}) == prefixes({"family": "ipv4"})
    assert prefixes({"prefix": "2001:db8::/32", "match": "longer"}) == [("2001:db8::1", "2001:db8:100::/48")]
    assert prefixes({"prefix": "100.10.0.100/32", "family": "ipv6"}) == []
    assert prefixes({"owner": "process:hc"}) == [("192.0.2.1", "100.10.0.101/32")]
    assert len(prefixes({"owner": "config"})) == 5


def test_routes_errors(conn):
    err(conn.ask("routes", {"family": "ipv5"}), "bad_request")
    err(conn.ask("routes", {"prefix": "10.0.0.1/24"}), "invalid_route")
    err(conn.ask("routes", {"match": "shorter"}), "bad_request")
    err(conn.ask("routes", {"limit": -1}), "bad_request")
    err(conn.ask("routes", {"limit": "ten"}), "bad_request")
    err(conn.ask("routes", {"neighbor": "203.0.113.1"}), "unknown_neighbor")
    e = err(conn.ask("routes", {"colour": "red"}), "bad_request")
    assert "colour" in e["message"]


def test_routes_limit_counts_everything_but_returns_at_most_limit():
    peer = FakePeer("192.0.2.1")
    _fam, _nlri, attrs = parse_route(["10.0.0.0/32", "next-hop", "self"])
    for i in range(5000):
        peer.rib_out.put(IPV4_UNICAST, bytes((32, 10, i >> 8 & 255, i & 255, 0)), attrs)
    speaker = FakeSpeaker([peer])
    with served(speaker) as (_s, path, _lt):
        c = Raw(path)
        result = ok(c.ask("routes"))
        assert result["count"] == 5000
        assert result["returned"] == commands.DEFAULT_ROUTE_LIMIT == len(result["routes"])
        assert result["truncated"] is True
        result = ok(c.ask("routes", {"limit": 10}))
        assert (result["count"], result["returned"], len(result["routes"])) == (5000, 10, 10)
        result = ok(c.ask("routes", {"limit": 0}))  # everything, streamed in chunks
        assert (result["count"], result["returned"], result["truncated"]) == (5000, 5000, False)
        assert len({e["prefix"] for e in result["routes"]}) == 5000
        result = ok(c.ask("routes", {"prefix": "10.0.0.0/16", "match": "longer", "limit": 3}))
        assert (result["count"], result["returned"]) == (256, 3)
        # the connection still works after a streamed reply
        assert ok(c.ask("status"))["pid"] == 4242
        c.close()


def test_health_and_processes(conn, speaker):
    assert ok(conn.ask("health")) == {"checks": []}
    assert ok(conn.ask("processes")) == {"processes": []}

    class Health:
        def status(self):
            return [{"name": "web", "state": "UP", "since": 1.0, "transitions": 3}]

    class Api:
        def status(self):
            return [{"name": "hc", "pid": 12, "restarts": 2}]

    speaker.health = Health()
    speaker.api = Api()
    assert ok(conn.ask("health")) == {"checks": [{"name": "web", "state": "UP", "since": 1.0, "transitions": 3}]}
    assert ok(conn.ask("processes")) == {"processes": [{"name": "hc", "pid": 12, "restarts": 2}]}
    err(conn.ask("health", {"x": 1}), "bad_request")


# -- commands that change things -------------------------------------------------------------------

def test_announce_exabgp_syntax(conn, speaker):
    r = ok(conn.ask("announce", {"route": "route 100.10.0.200/32 next-hop self med 100"}))
    assert r == {"routes": 1, "changed": 3, "owner": "control:cli", "maintenance": False}
    kind, fam, _nlri, attrs, owner, neighbors = speaker.calls[-1]
    assert (kind, fam, attrs.med, attrs.next_hop, owner, neighbors) == (
        "announce", IPV4_UNICAST, 100, "self", "control:cli", None)
    routes = ok(conn.ask("routes", {"prefix": "100.10.0.200/32"}))["routes"]
    assert {e["owner"] for e in routes} == {"control:cli"}


def test_announce_without_the_route_keyword_to_some_neighbors_with_owner(conn, speaker):
    r = ok(conn.ask("announce", {"route": "100.10.0.201/32 next-hop self community [65001:1 65001:2]",
                                 "neighbors": ["192.0.2.1"], "owner": "ansible"}))
    assert r["changed"] == 1 and r["owner"] == "control:ansible"
    assert speaker.calls[-1][-1] == ["192.0.2.1"]
    assert speaker.calls[-1][3].communities == ((65001 << 16) | 1, (65001 << 16) | 2)
    # an owner that is already control:... is kept as it is
    assert ok(conn.ask("announce", {"route": "100.10.0.202/32 next-hop self",
                                    "owner": "control:x"}))["owner"] == "control:x"


def test_announce_structured_fields(conn, speaker):
    r = ok(conn.ask("announce", {"prefix": "100.10.0.203/32", "next_hop": "self", "med": 300,
                                 "local_preference": 150, "as_path": [65010, 65020], "origin": "egp",
                                 "community": ["65001:7"], "large_community": "65001:2:3"}))
    assert r["routes"] == 1
    attrs = speaker.calls[-1][3]
    assert (attrs.med, attrs.local_pref, attrs.origin) == (300, 150, 1)
    assert attrs.as_path == ((2, (65010, 65020)),)
    assert attrs.large_communities == ((65001, 2, 3),)


def test_announce_many_routes(conn, speaker):
    r = ok(conn.ask("announce", {"routes": ["100.10.2.1/32 next-hop self", "100.10.2.2/32 next-hop self"],
                                 "neighbor": "192.0.2.1"}))
    assert r["routes"] == 2 and r["changed"] == 2


@pytest.mark.parametrize("route,needle", [
    ("100.10.0.1/24 next-hop self", "host bits"),
    ("100.10.0.1/32", "next-hop"),
    ("100.10.0.1/32 next-hop self med lots", "med"),
    ("100.10.0.1/32 next-hop self colour blue", "colour"),
    ("", "route"),
])
def test_announce_invalid_route_is_an_error_reply_and_changes_nothing(conn, speaker, route, needle):
    before = len(speaker.calls)
    reply = conn.ask("announce", {"route": route})
    assert reply["ok"] is False
    assert reply["error"]["code"] in ("invalid_route", "bad_request")
    assert needle in reply["error"]["message"]
    assert len(speaker.calls) == before


def test_announce_argument_errors(conn, speaker):
    err(conn.ask("announce", {}), "bad_request")
    err(conn.ask("announce", {"route": 5}), "bad_request")
    err(conn.ask("announce", {"med": 5}), "bad_request")  # fields without a prefix
    err(conn.ask("announce", {"prefix": "100.10.0.1/32", "next_hop": "self", "med": "1 2"}), "bad_request")
    err(conn.ask("announce", {"route": "100.10.0.1/32 next-hop self", "owner": "a b"}), "bad_request")
    e = err(conn.ask("announce", {"route": "100.10.0.1/32 next-hop self", "neighbors": ["203.0.113.5"]}),
            "unknown_neighbor")
    assert "203.0.113.5" in e["message"]
    assert not [c for c in speaker.calls if c[0] == "announce"], "nothing announced on a bad request"


def test_withdraw(conn, speaker):
    ok(conn.ask("announce", {"route": "100.10.0.210/32 next-hop self med 5"}))
    r = ok(conn.ask("withdraw", {"route": "route 100.10.0.210/32"}))
    assert r == {"routes": 1, "changed": 3, "owner": "control:cli"}
    assert ok(conn.ask("routes", {"prefix": "100.10.0.210/32"}))["count"] == 0
    # attributes are accepted (ExaBGP lets you repeat the announce line), but must be valid
    assert ok(conn.ask("withdraw", {"route": "100.10.0.210/32 next-hop self med 5"}))["changed"] == 0
    err(conn.ask("withdraw", {"route": "100.10.0.210/32 next-hop self med x"}), "invalid_route")
    err(conn.ask("withdraw", {"route": "100.10.0.210/33"}), "invalid_route")


def test_withdraw_all_of_an_owner(conn, speaker):
    ok(conn.ask("announce", {"routes": ["100.10.3.1/32 next-hop self", "100.10.3.2/32 next-hop self"],
                             "owner": "job", "neighbor": "192.0.2.1"}))
    ok(conn.ask("announce", {"route": "100.10.3.3/32 next-hop self", "owner": "other", "neighbor": "192.0.2.1"}))
    r = ok(conn.ask("withdraw", {"all": True, "owner": "job"}))
    assert r["changed"] == 2 and r["owner"] == "control:job"
    left = {e["prefix"] for e in ok(conn.ask("routes", {"neighbor": "192.0.2.1"}))["routes"]}
    assert "100.10.3.3/32" in left and "100.10.3.1/32" not in left
    err(conn.ask("withdraw", {"all": True, "route": "100.10.3.3/32"}), "bad_request")


def test_maintenance(conn, speaker):
    assert ok(conn.ask("maintenance")) == {"maintenance": False, "changed": False, "mode": "withdraw",
                                           "metric": 1000}
    r = ok(conn.ask("maintenance", {"state": "on"}))
    assert r["maintenance"] is True and r["changed"] is True
    assert speaker.maintenance is True
    assert ok(conn.ask("maintenance", {"state": "on"}))["changed"] is False
    assert ok(conn.ask("neighbors", {"neighbor": "192.0.2.1"}))["neighbors"][0]["prefixes"]["sent"] == {
        "ipv4 unicast": 0}, "drained by withdrawal: the peer holds nothing"
    r = ok(conn.ask("maintenance", {"state": False}))
    assert r["maintenance"] is False and speaker.maintenance is False
    err(conn.ask("maintenance", {"state": "sideways"}), "bad_request")


def test_reload_success_and_failure(conn, speaker):
    r = ok(conn.ask("reload"))
    assert r == {"ok": True, "summary": "no change to sessions or routes", "errors": []}
    speaker.reload_result = ReloadResult(False, ["/etc/f.conf:3:1: bad", "/etc/f.conf:9:2: worse"],
                                         "reload refused: the running configuration is unchanged")
    e = err(conn.ask("reload"), "reload_failed")
    assert e["details"] == ["/etc/f.conf:3:1: bad", "/etc/f.conf:9:2: worse"]
    assert "refused" in e["message"]
    assert speaker.reload_counts == {"success": 1, "failure": 1}


# -- protocol errors: the connection and the agent carry on ----------------------------------------

def test_malformed_requests_get_errors_and_the_connection_stays_open(conn):
    for line, code in [
        (b"this is not json\n", "bad_request"),
        (b"[1, 2]\n", "bad_request"),
        (b'{"v": 1, "id": 3}\n', "bad_request"),
        (b'{"v": 1, "id": 3, "cmd": 7}\n', "bad_request"),
        (b'{"v": 1, "id": 4, "cmd": "frobnicate"}\n', "unknown_command"),
        (b'{"v": 1, "id": 5, "cmd": "status", "args": [1]}\n', "bad_request"),
        (b'{"v": 2, "id": 6, "cmd": "status"}\n', "unsupported_version"),
        (b'{"v": 1, "id": {"x": 1}, "cmd": "status"}\n', "bad_request"),
        (b'\xff\xfe\n', "bad_request"),
        (b'{"v": 1, "id": 7, "cmd": "status", "args": {"verbose": true}}\n', "bad_request"),
    ]:
        conn.send(line)
        reply = conn.reply()
        err(reply, code)
    assert ok(conn.ask("status", id=99))["pid"] == 4242


def test_reply_ids_are_echoed_and_version_is_optional(conn):
    conn.send(b'{"id": 17, "cmd": "status"}\n')
    r = conn.reply()
    assert r["id"] == 17 and r["ok"] is True
    conn.send(b'{"v": 1, "id": 4, "cmd": "frob"}\n')
    assert conn.reply()["id"] == 4, "error replies carry the request id too"
    conn.send(b'{"v": 1, "cmd": "status"}\n')
    assert conn.reply()["id"] is None


def test_blank_lines_are_ignored_and_pipelined_requests_answered_in_order(conn):
    conn.send(b'\n\n{"v":1,"id":1,"cmd":"status"}\n{"v":1,"id":2,"cmd":"health"}\n\n'
              b'{"v":1,"id":3,"cmd":"nope"}\n')
    assert [conn.reply()["id"] for _ in range(3)] == [1, 2, 3]


def test_over_long_line_is_refused_and_the_connection_carries_on(conn, monkeypatch):
    conn.send(b'{"v":1,"id":1,"cmd":"status","pad":"' + b"x" * (control_server.MAX_LINE + 10) + b'"}\n')
    err(conn.reply(), "too_large")
    assert ok(conn.ask("status"))["pid"] == 4242


def test_last_request_without_newline_is_answered(speaker):
    with served(speaker) as (_s, path, _lt):
        c = Raw(path)
        c.send(b'{"v":1,"id":8,"cmd":"status"}')
        c.sock.shutdown(socket.SHUT_WR)
        assert ok(c.reply())["pid"] == 4242
        c.close()


def test_a_failing_command_is_an_internal_error_not_a_crash(conn, speaker):
    def broken():
        raise RuntimeError("boom")
    speaker.status = broken
    e = err(conn.ask("status"), "internal")
    assert "boom" in e["message"]
    assert ok(conn.ask("health")) == {"checks": []}


def test_client_limit(speaker):
    with served(speaker, control_max_clients=2) as (_s, path, _lt):
        a, b = Raw(path), Raw(path)
        assert ok(a.ask("status")) and ok(b.ask("status"))
        c = Raw(path)
        err(c.reply(), "busy")
        assert c.file.readline() == b"", "the refused client is disconnected"
        c.close()
        a.close()
        time.sleep(0.2)
        d = Raw(path)
        assert ok(d.ask("status"))["pid"] == 4242
        for x in (b, d):
            x.close()


def test_idle_clients_are_disconnected(speaker, monkeypatch):
    monkeypatch.setattr(control_server, "IDLE_TIMEOUT", 0.2)
    with served(speaker) as (_s, path, _lt):
        c = Raw(path)
        assert c.file.readline() == b""
        c.close()


# -- the socket file -------------------------------------------------------------------------------

def test_socket_mode_group_and_parent_directory():
    tmp = short_tmpdir()
    path = tmp / "run" / "fleetbgp" / "control.sock"
    group = __import__("grp").getgrgid(os.getgid()).gr_name
    settings = AgentSettings(control_socket=str(path), control_group=group)
    lt = LoopThread()
    server = ControlServer(FakeSpeaker(), settings)
    try:
        lt.run(server.start())
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == os.getgid()
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o750
        lt.run(server.stop())
        assert not path.exists(), "stop() removes the socket"
    finally:
        lt.close()


def test_missing_group_is_ignored_and_mode_is_configurable():
    tmp = short_tmpdir()
    path = tmp / "c.sock"
    settings = AgentSettings(control_socket=str(path), control_group="no-such-group-fleetbgp", control_mode=0o600)
    lt = LoopThread()
    server = ControlServer(FakeSpeaker(), settings)
    try:
        lt.run(server.start())
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        lt.run(server.stop())
    finally:
        lt.close()


def test_stale_socket_is_replaced_but_a_live_one_is_not():
    tmp = short_tmpdir()
    path = str(tmp / "c.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays; nobody listens
    lt = LoopThread()
    try:
        first = ControlServer(FakeSpeaker(), AgentSettings(control_socket=path))
        lt.run(first.start())
        c = Raw(path)
        assert ok(c.ask("status"))["pid"] == 4242
        second = ControlServer(FakeSpeaker(), AgentSettings(control_socket=path))
        with pytest.raises(OSError, match="another fleetbgp"):
            lt.run(second.start())
        assert ok(c.ask("status"))["pid"] == 4242, "the running server's socket is untouched"
        c.close()
        lt.run(first.stop())
    finally:
        lt.close()


def test_a_regular_file_in_the_way_is_never_removed():
    tmp = short_tmpdir()
    path = tmp / "c.sock"
    path.write_text("precious")
    lt = LoopThread()
    try:
        with pytest.raises(OSError, match="not a socket"):
            lt.run(ControlServer(FakeSpeaker(), AgentSettings(control_socket=str(path))).start())
        assert path.read_text() == "precious"
    finally:
        lt.close()


def test_stop_leaves_a_successors_socket_alone():
    tmp = short_tmpdir()
    path = str(tmp / "c.sock")
    lt = LoopThread()
    try:
        server = ControlServer(FakeSpeaker(), AgentSettings(control_socket=path))
        lt.run(server.start())
        os.unlink(path)  # e.g. a new agent took over the path
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.bind(path)
        lt.run(server.stop())
        assert os.path.exists(path), "stop() must only remove its own socket file"
        other.close()
    finally:
        lt.close()


def test_disabled_control_socket():
    lt = LoopThread()
    try:
        server = ControlServer(FakeSpeaker(), AgentSettings(control_socket=None))
        lt.run(server.start())
        lt.run(server.stop())
    finally:
        lt.close()


# -- the route text formatter round-trips through the parser ---------------------------------------

@pytest.mark.parametrize("text", [
    "100.10.0.100/32 next-hop self",
    "100.10.0.100/32 next-hop 192.0.2.1 origin egp as-path [ 65010 ( 65020 65030 ) ] med 5 "
    "local-preference 200 community [ 65001:100 no-export blackhole ] large-community [ 1:2:3 ] "
    "extended-community [ target:65000:100 origin:192.0.2.1:5 target:4200000000L:7 ] atomic-aggregate "
    "aggregator ( 65001:192.0.2.1 )",
    "2001:db8::/32 next-hop self origin incomplete extended-community [ 0x0123456789abcdef ]",
])
def test_route_text_round_trips(text):
    fam, nlri, attrs = parse_route(tokenize_line(text))
    again = route_text(nlri_to_prefix(fam, nlri), attrs)
    assert parse_route(tokenize_line(again)) == (fam, nlri, attrs)


def test_routes_filtered_by_prefix_and_owner_returns_only_that_prefix(conn, speaker):
    for prefix in ("100.10.5.0/24", "100.10.6.0/24"):
        ok(conn.ask("announce", {"route": f"{prefix} next-hop self", "owner": "q"}))
    routes = ok(conn.ask("routes", {"prefix": "100.10.5.0/24", "owner": "control:q"}))["routes"]
    assert routes and {e["prefix"] for e in routes} == {"100.10.5.0/24"}
    assert ok(conn.ask("routes", {"prefix": "100.10.7.0/24", "owner": "control:q"}))["routes"] == []
