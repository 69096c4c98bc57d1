"""Speaker and Peer bookkeeping: owners, drain, reload decisions.

The peers are on loopback addresses and dial port 9, where nothing listens: no traffic leaves
the host and no session comes up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker, file_sha256
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.owner import Owner
from fleetbgp.settings import AgentSettings
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST

CONF = """
neighbor 127.100.0.1 {{ router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001; peer-as 65000;
  family {{ ipv4 unicast; }}
  static {{ {routes} }} }}
neighbor 127.100.0.5 {{ router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001; peer-as {peer_as};
  family {{ ipv4 unicast; ipv6 unicast; }} }}
"""

SETTINGS = AgentSettings(control_socket=None, metrics_port=None, listen=(("127.0.0.1", 0),))


def conf(routes: str = "route 100.10.0.100/32 next-hop self med 100;", peer_as: int = 65000) -> str:
    return CONF.format(routes=routes, peer_as=peer_as)


def nlri(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def run(coro_fn):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn())


def make_speaker(tmp_path: Path, text: str) -> Speaker:
    path = tmp_path / "fleetbgp.conf"
    path.write_text(text)
    config = parse_text(text, str(path))
    return Speaker(config, SETTINGS, config_sha256=file_sha256(str(path)))  # type: ignore[arg-type]


def test_announce_selects_neighbors_and_families(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            attrs = Attributes.make(next_hop="self", med=5)
            assert sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), attrs, owner=Owner.control("t")) == 2
            only = sp.announce(IPV4_UNICAST, nlri("198.51.101.0/24"), attrs, owner=Owner.control("t"),
                               neighbors=["127.100.0.5"])
            assert only == 1
            # The first neighbor does not do IPv6: the route only lands where the family is configured.
            assert sp.announce(IPV6_UNICAST, nlri("2001:db8::/32"), attrs, owner=Owner.control("t")) == 1
            # Announcing the same thing twice changes nothing.
            assert sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), attrs, owner=Owner.control("t")) == 0
            with pytest.raises(ValueError, match=r"unknown neighbor 203\.0\.113\.9"):
                sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), attrs, owner=Owner.control("x"),
                            neighbors=["203.0.113.9"])
        finally:
            await sp.stop()

    run(go)


def test_owners_withdraw_only_their_own_routes(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            a = Attributes.make(next_hop="self", med=1)
            b = Attributes.make(next_hop="self", med=2)
            sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), a, owner=Owner.process("a"))
            sp.announce(IPV4_UNICAST, nlri("198.51.101.0/24"), a, owner=Owner.process("a"))
            # b takes over one of a's routes: the last announcement wins and b now owns it.
            sp.announce(IPV4_UNICAST, nlri("198.51.101.0/24"), b, owner=Owner.process("b"))
            assert sp.owned(Owner.process("a")) == {a_: {IPV4_UNICAST: {nlri("198.51.100.0/24")}}
                                            for a_ in ("127.100.0.1", "127.100.0.5")}
            assert sp.withdraw_owner(Owner.process("a")) == 2
            peer = sp.peers["127.100.0.1"]
            assert nlri("198.51.100.0/24") not in peer.rib_out.routes[IPV4_UNICAST]
            assert peer.rib_out.routes[IPV4_UNICAST][nlri("198.51.101.0/24")] is b
            # The static route is owned by the config and untouched.
            assert nlri("100.10.0.100/32") in peer.rib_out.routes[IPV4_UNICAST]
            # An untracked owner cannot be withdrawn by owner, only route by route.
            sp.announce(IPV4_UNICAST, nlri("198.51.102.0/24"), a, owner=Owner.process("c"), track=False)
            assert sp.withdraw_owner(Owner.process("c")) == 0
            assert sp.withdraw(IPV4_UNICAST, nlri("198.51.102.0/24")) == 2
        finally:
            await sp.stop()

    run(go)


def test_reload_keeps_unchanged_peers_and_applies_route_delta(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            first, second = sp.peers["127.100.0.1"], sp.peers["127.100.0.5"]
            runtime = Attributes.make(next_hop="self", med=7)
            sp.announce(IPV4_UNICAST, nlri("198.51.100.0/24"), runtime, owner=Owner.control("t"))
            (tmp_path / "fleetbgp.conf").write_text(conf(
                "route 100.10.0.101/32 next-hop self med 200;", peer_as=65002))
            result = await sp.reload()
            assert result.ok, result.errors
            # Only the routes changed for the first neighbor: same Peer object, same session.
            assert sp.peers["127.100.0.1"] is first
            table = first.rib_out.routes[IPV4_UNICAST]
            assert nlri("100.10.0.100/32") not in table
            assert table[nlri("100.10.0.101/32")].med == 200
            assert table[nlri("198.51.100.0/24")] is runtime  # runtime routes survive a reload
            # The second neighbor's peer-as changed: it was replaced, and kept its runtime route.
            assert sp.peers["127.100.0.5"] is not second
            assert sp.peers["127.100.0.5"].rib_out.routes[IPV4_UNICAST][nlri("198.51.100.0/24")] is runtime
            assert sp.reload_counts == {"success": 1, "failure": 0}
            assert "restarted" in result.summary
        finally:
            await sp.stop()

    run(go)


def test_bad_reload_changes_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            before = dict(sp.peers)
            sha = sp.config_sha256
            (tmp_path / "fleetbgp.conf").write_text(conf("route 100.10.0.1/24 next-hop self;"))
            result = await sp.reload()
            assert not result.ok
            assert any("fleetbgp.conf:4:" in e and "host bits" in e for e in result.errors)
            assert sp.peers == before
            assert sp.config_sha256 == sha
            assert sp.last_reload["result"] == "failure"
            assert sp.reload_counts == {"success": 0, "failure": 1}
            table = sp.peers["127.100.0.1"].rib_out.routes[IPV4_UNICAST]
            assert list(table) == [nlri("100.10.0.100/32")]
        finally:
            await sp.stop()

    run(go)


def test_maintenance_sets_drain_on_every_peer_and_new_ones(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            sp.set_maintenance(True)
            assert all(p.drain_mode == "withdraw" for p in sp.peers.values())
            assert sp.status()["maintenance"] is True
            (tmp_path / "fleetbgp.conf").write_text(conf(peer_as=65003))
            assert (await sp.reload()).ok
            assert sp.peers["127.100.0.5"].drain_mode == "withdraw"
            sp.set_maintenance(False)
            assert all(p.drain_mode is None for p in sp.peers.values())
        finally:
            await sp.stop()

    run(go)


def test_maintenance_since_is_kept_while_on_and_cleared_by_off(tmp_path: Path) -> None:
    """What fleetbgp_maintenance_since_timestamp_seconds shows: a second `maintenance on` (a drain
    run twice) does not make a forgotten drain look new."""
    sp = make_speaker(tmp_path, conf())
    assert sp.maintenance_since is None
    sp.set_maintenance(True)
    since = sp.maintenance_since
    assert since is not None and since <= time.time()
    sp.set_maintenance(True)
    assert sp.maintenance_since == since
    sp.set_maintenance(False)
    assert sp.maintenance_since is None


def test_reload_gives_a_route_back_to_the_config(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            taken = Attributes.make(next_hop="self", med=9)
            sp.announce(IPV4_UNICAST, nlri("100.10.0.100/32"), taken, owner=Owner.control("t"))
            assert sp.owned(Owner.control("t"))
            (tmp_path / "fleetbgp.conf").write_text(conf("route 100.10.0.100/32 next-hop self med 101;"))
            assert (await sp.reload()).ok
            peer = sp.peers["127.100.0.1"]
            assert peer.rib_out.routes[IPV4_UNICAST][nlri("100.10.0.100/32")].med == 101
            assert "127.100.0.1" not in sp.owned(Owner.control("t"))  # the other neighbor has no static route
            assert nlri("100.10.0.100/32") in peer.owned(Owner.parse("config"))[IPV4_UNICAST]
        finally:
            await sp.stop()

    run(go)


def test_a_connection_that_fails_after_connect_leaves_no_protocol_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TCP connect succeeds, then wrapping the socket fails: the half-made protocol must not
    stay in peer.protocols, or the dial loop would wait for it to end and never dial again."""
    import socket

    from fleetbgp.session import Peer

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    text = (f"neighbor 127.0.0.1 {{ router-id 192.0.2.2; local-address 127.0.0.1; connect {port}; "
            "local-as 65001; peer-as 65000; }")
    peer = Peer(parse_text(text, "f.conf").neighbors[0])

    async def go() -> None:
        async def broken(*args: object, **kwargs: object) -> None:
            raise OSError(104, "Connection reset by peer")

        monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", broken)
        assert await peer._connect() is None
        assert not peer.protocols
        assert "Connection reset by peer" in peer.last_error

    try:
        run(go)
    finally:
        listener.close()


def test_peers_made_at_start_say_restarted_those_a_reload_makes_do_not(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            assert all(p.core.restarting for p in sp.peers.values())
            (tmp_path / "fleetbgp.conf").write_text(conf(peer_as=65002))
            assert (await sp.reload()).ok
            assert sp.peers["127.100.0.1"].core.restarting, "unchanged: still its first session"
            assert not sp.peers["127.100.0.5"].core.restarting, "a reload restart is no agent restart"
        finally:
            await sp.stop()

    run(go)


def test_a_restart_request_says_which_neighbors_keep_routes_then_stops(tmp_path: Path) -> None:
    """`restart --graceful`: only neighbors with graceful-restart keep routes, the reply says so;
    the stop comes after the reply; the Forwarding State setting reaches every peer."""
    text = conf().replace("family {{ ipv4 unicast; }}".replace("{{", "{").replace("}}", "}"),
                          "capability { graceful-restart 60; } family { ipv4 unicast; }", 1)

    async def go() -> None:
        path = tmp_path / "fleetbgp.conf"
        path.write_text(text)
        settings = AgentSettings(control_socket=None, metrics_port=None, listen=(("127.0.0.1", 0),),
                                 graceful_restart_forwarding=False)
        sp = Speaker(parse_text(text, str(path)), settings)
        await sp.start()
        try:
            assert not any(p.core.forwarding for p in sp.peers.values())
            reply = sp.request_restart(True)
            assert reply["graceful"] and reply["exit_status"] == 75
            assert reply["graceful_neighbors"] == ["127.100.0.1"] and reply["cease_neighbors"] == ["127.100.0.5"]
            assert not sp._stopping.is_set(), "the reply must go out before the stop"
            await asyncio.wait_for(sp.wait_stopped(), 5)
            assert sp.restart_graceful is True
        finally:
            await sp.stop(graceful=True)

    run(go)


def test_a_graceful_restart_with_no_graceful_neighbor_still_restarts(tmp_path: Path) -> None:
    async def go() -> None:
        sp = make_speaker(tmp_path, conf())
        await sp.start()
        try:
            reply = sp.request_restart(True)
            assert reply["graceful_neighbors"] == [] and "no neighbor has graceful-restart" in reply["message"]
            await asyncio.wait_for(sp.wait_stopped(), 5)
        finally:
            await sp.stop()

    run(go)
