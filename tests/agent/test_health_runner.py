"""The agent's HealthManager (fleetbgp.health.runner) with a stand-in Speaker that records what it
is asked, against a real TCP service the test starts and stops on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from fleetbgp.config import parse_text
from fleetbgp.config.model import Config
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.health import HealthManager
from fleetbgp.health.engine import State
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import Family, nlri_to_prefix

PEERS = ("192.0.2.1", "192.0.2.5")


class FakePeer:
    def __init__(self, address: str) -> None:
        self.address = address


class FakeSpeaker:
    """The Speaker members the health checks use (docs/dev/agent-internals.md)."""

    def __init__(self, peers=PEERS, journal: Path | None = None, flush_delay: float = 0.0) -> None:
        self.peers = {a: FakePeer(a) for a in peers}
        self.rib: dict[str, dict[tuple[Family, bytes], tuple[Attributes, str]]] = {a: {} for a in peers}
        self.calls: list[tuple] = []
        self.journal = journal
        self.flush_delay = flush_delay

    def note(self, text: str) -> None:
        if self.journal is not None:
            with self.journal.open("a") as fh:
                fh.write(text + "\n")

    def select(self, neighbors):
        if neighbors is None:
            return list(self.peers.values())
        for n in neighbors:
            if n not in self.peers:
                raise ValueError(f"unknown neighbor {n}")
        return [self.peers[n] for n in neighbors]

    def announce(self, fam, nlri, attrs, *, owner, neighbors=None, track=True):
        changed = 0
        for p in self.select(neighbors):
            if self.rib[p.address].get((fam, nlri)) != (attrs, owner):
                self.rib[p.address][(fam, nlri)] = (attrs, owner)
                changed += 1
        self.calls.append(("announce", nlri_to_prefix(fam, nlri), attrs.med, owner, neighbors))
        self.note(f"announce {nlri_to_prefix(fam, nlri)} med {attrs.med}")
        return changed

    def withdraw(self, fam, nlri, *, owner="", neighbors=None):
        changed = 0
        for p in self.select(neighbors):
            if self.rib[p.address].pop((fam, nlri), None) is not None:
                changed += 1
        self.calls.append(("withdraw", nlri_to_prefix(fam, nlri), None, owner, neighbors))
        self.note(f"withdraw {nlri_to_prefix(fam, nlri)}")
        return changed

    def withdraw_owner(self, owner, neighbors=None):
        count = 0
        for p in self.select(neighbors):
            for key in [k for k, (_, o) in self.rib[p.address].items() if o == owner]:
                del self.rib[p.address][key]
                count += 1
        return count

    def owned(self, owner):
        out: dict[str, dict[Family, set[bytes]]] = {}
        for address, table in self.rib.items():
            for (fam, nlri), (_, o) in table.items():
                if o == owner:
                    out.setdefault(address, {}).setdefault(fam, set()).add(nlri)
        return out

    async def flushed(self, neighbors=None, timeout=10.0):
        self.select(neighbors)
        await asyncio.sleep(self.flush_delay)
        self.note("flushed")
        return True

    # what a peer holds, readably: {prefix: med}
    def held(self, address: str) -> dict[str, int | None]:
        return {nlri_to_prefix(f, n): a.med for (f, n), (a, _) in self.rib[address].items()}


class Service:
    """A TCP listener on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.port = 0
        self.start()

    def start(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.sock = s

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def config(body: str, port: int, peers=PEERS) -> Config:
    neighbors = "".join(f"neighbor {p} {{ local-as 65001; peer-as 65000; router-id 192.0.2.2; }}\n"
                        for p in peers)
    return parse_text(neighbors + body.replace("PORT", str(port)), "test.conf")


async def until(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


BASIC = """
healthcheck web {
    ip 100.10.0.100/32;
    ip 100.10.0.101/32;
    check tcp 127.0.0.1:PORT;
    interval 0.1; fast-interval 0.1; timeout 0.5;
    rise 2; fall 3;
    community [ 65000:100 ];
    local-preference 200;
}
"""


@pytest.fixture
def service():
    s = Service()
    yield s
    s.stop()


def test_up_down_up_with_metrics(service):
    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(BASIC, service.port))
        await hm.start()
        try:
            await until(lambda: speaker.held(PEERS[0]) == {"100.10.0.100/32": 100, "100.10.0.101/32": 101},
                        what="UP announcement")
            assert speaker.held(PEERS[1]) == speaker.held(PEERS[0])
            fam, nlri = prefix_to_nlri("100.10.0.100/32")
            attrs, owner = speaker.rib[PEERS[0]][(fam, nlri)]
            assert str(owner) == "health:web" and attrs.local_pref == 200
            assert attrs.communities == (65000 << 16 | 100,) and attrs.next_hop == "self"
            st = hm.status()[0]
            assert st["state"] == "UP" and st["metric"] == 100 and st["consecutive_ok"] >= 2
            assert st["announced"] == {"100.10.0.100/32": 100, "100.10.0.101/32": 101}

            calls_before = len(speaker.calls)
            await asyncio.sleep(0.5)               # several more checks, all fine
            assert len(speaker.calls) == calls_before, "announced again without a state change"

            service.stop()
            await until(lambda: hm.status()[0]["state"] == "DOWN", what="DOWN")
            assert speaker.held(PEERS[0]) == {"100.10.0.100/32": 1000, "100.10.0.101/32": 1001}
            runner = hm.get("web")
            assert runner.engine.fail_streak >= 3

            service.start()
            await until(lambda: hm.status()[0]["state"] == "UP", what="UP again")
            assert speaker.held(PEERS[0]) == {"100.10.0.100/32": 100, "100.10.0.101/32": 101}
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_fall_and_rise_are_counted(service):
    """Exactly `fall` failed checks before the withdraw and `rise` good ones before the announce."""
    body = BASIC.replace("rise 2; fall 3;", "rise 4; fall 3; withdraw-on-down;")

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(body, service.port))
        await hm.start()
        try:
            engine = hm.get("web").engine
            await until(lambda: engine.state is State.UP, what="UP")
            assert engine.total_checks == 4
            service.stop()
            failed_at = engine.total_checks
            await until(lambda: engine.state is State.DOWN, what="DOWN")
            assert engine.total_checks - failed_at == 3
            assert speaker.held(PEERS[0]) == {}
            service.start()
            ok_at = engine.total_checks
            await until(lambda: engine.state is State.UP, what="UP again")
            assert engine.total_checks - ok_at == 4
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_withdraw_is_flushed_before_down_hook_and_up_hook_before_announce(service, tmp_path):
    journal = tmp_path / "journal"
    body = f"""
healthcheck web {{
    ip 100.10.0.100/32;
    check tcp 127.0.0.1:PORT;
    interval 0.1; fast-interval 0.1; timeout 0.5; rise 1; fall 1;
    withdraw-on-down;
    up-execute "echo up-hook $STATE >> {journal}";
    down-execute "echo down-hook $STATE $FLEETBGP_HEALTHCHECK >> {journal}";
    execute "echo any-hook $STATE >> {journal}";
}}
"""

    async def scenario():
        speaker = FakeSpeaker(journal=journal, flush_delay=0.3)
        hm = HealthManager(speaker, config(body, service.port))
        await hm.start()
        try:
            await until(lambda: "announce" in journal.read_text() if journal.exists() else False)
            service.stop()
            await until(lambda: "any-hook DOWN" in journal.read_text(), what="down hooks")
        finally:
            await hm.stop()
    asyncio.run(scenario())
    lines = journal.read_text().splitlines()
    assert lines == ["up-hook UP", "any-hook UP", "announce 100.10.0.100/32 med 100",
                     "withdraw 100.10.0.100/32", "flushed", "down-hook DOWN web", "any-hook DOWN"]


def test_disable_file_drains_quickly_and_comes_back(service, tmp_path):
    flag = tmp_path / "maintenance"
    body = BASIC.replace("    interval 0.1;", f"    interval 30; disable-file {flag};")

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(body, service.port))
        await hm.start()
        try:
            await until(lambda: hm.status()[0]["state"] == "UP", what="UP")
            flag.touch()
            start = time.monotonic()
            await until(lambda: hm.status()[0]["state"] == "DISABLED", timeout=3, what="DISABLED")
            assert time.monotonic() - start < 2, "the disable file must not wait for the 30 s interval"
            assert speaker.held(PEERS[0]) == {"100.10.0.100/32": 500, "100.10.0.101/32": 501}
            assert hm.status()[0]["disabled"] is True
            flag.unlink()
            await until(lambda: hm.status()[0]["state"] == "UP", timeout=3, what="UP after the drain")
            assert speaker.held(PEERS[0])["100.10.0.100/32"] == 100
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_neighbors_subset(service):
    body = BASIC.replace("rise 2;", f"rise 1; neighbors [ {PEERS[1]} ];")

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(body, service.port))
        await hm.start()
        try:
            await until(lambda: speaker.held(PEERS[1]) != {}, what="announcement")
            assert speaker.held(PEERS[0]) == {}
            assert hm.status()[0]["neighbors"] == [PEERS[1]]
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_reload_keeps_unchanged_changes_changed_removes_and_adds(service):
    two = BASIC + BASIC.replace("healthcheck web", "healthcheck api").replace("100.10.0.10", "100.10.1.10")

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(two, service.port))
        await hm.start()
        try:
            await until(lambda: len(speaker.held(PEERS[0])) == 4, what="both UP")
            web, api = hm.get("web"), hm.get("api")
            since = web.engine.since

            # unchanged: same runner, same state, nothing sent
            calls = len(speaker.calls)
            await hm.reload(config(two, service.port))
            assert hm.get("web") is web and hm.get("api") is api and web.engine.since == since
            assert all(c[0] == "announce" for c in speaker.calls[calls:])   # re-asserted, no change
            assert speaker.held(PEERS[0])["100.10.0.100/32"] == 100

            # changed: a metric and an IP; the state is kept, the routes follow at once
            changed = two.replace("rise 2; fall 3;\n    community", "rise 2; fall 3; up-metric 7;\n    community",
                                  1).replace("ip 100.10.0.101/32;", "ip 100.10.0.102/32;", 1)
            await hm.reload(config(changed, service.port))
            assert hm.get("web") is web and web.engine.state is State.UP and web.engine.since == since
            held = speaker.held(PEERS[0])
            assert held["100.10.0.100/32"] == 7 and held["100.10.0.102/32"] == 8
            assert "100.10.0.101/32" not in held

            # removed: its routes go; added: it starts from INIT
            only_new = BASIC.replace("healthcheck web", "healthcheck dns").replace("100.10.0.10", "100.10.2.10")
            await hm.reload(config(changed.split("healthcheck api")[0] + only_new, service.port))
            assert hm.get("api") is None and hm.get("dns") is not None
            assert not any(p.startswith("100.10.1.") for p in speaker.held(PEERS[0]))
            await until(lambda: "100.10.2.100/32" in speaker.held(PEERS[0]), what="new check UP")
            assert [s["name"] for s in hm.status()] == ["dns", "web"]
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_reload_neighbors_change_withdraws_from_peers_no_longer_selected(service):
    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(BASIC, service.port))
        await hm.start()
        try:
            await until(lambda: speaker.held(PEERS[1]) != {}, what="UP")
            await hm.reload(config(BASIC.replace("rise 2;", f"rise 2; neighbors [ {PEERS[0]} ];"),
                                   service.port))
            assert speaker.held(PEERS[1]) == {} and len(speaker.held(PEERS[0])) == 2
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_reload_puts_routes_on_a_peer_added_or_restarted(service):
    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(BASIC, service.port))
        await hm.start()
        try:
            await until(lambda: speaker.held(PEERS[0]) != {}, what="UP")
            # the daemon added a neighbor (or restarted one: its adj-rib-out starts empty)
            speaker.peers["192.0.2.9"] = FakePeer("192.0.2.9")
            speaker.rib["192.0.2.9"] = {}
            speaker.rib[PEERS[1]].clear()
            await hm.reload(config(BASIC, service.port, peers=(*PEERS, "192.0.2.9")))
            assert speaker.held("192.0.2.9") == speaker.held(PEERS[0]) == speaker.held(PEERS[1])
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_stop_is_quick_and_kills_a_running_command(tmp_path):
    body = """
healthcheck slow { ip 100.10.0.100/32; check command "sleep 30"; timeout 60; }
"""

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(body, 0))
        await hm.start()
        await asyncio.sleep(0.3)
        start = time.monotonic()
        await hm.stop()
        assert time.monotonic() - start < 2
        assert hm.status() == []
    asyncio.run(scenario())


def test_no_healthchecks():
    async def scenario():
        hm = HealthManager(FakeSpeaker(), config("", 0))
        await hm.start()
        assert hm.status() == []
        await hm.reload(config("", 0))
        await hm.stop()
    asyncio.run(scenario())


def test_status_fields(service):
    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(BASIC, service.port))
        await hm.start()
        try:
            await until(lambda: hm.status()[0]["state"] == "UP")
            st = hm.status()[0]
            assert set(st) >= {"name", "state", "since", "check", "last_result", "last_ok", "last_check",
                               "consecutive_ok", "consecutive_fail", "checks", "transitions", "ips",
                               "metric", "announced", "disabled", "neighbors", "next_hop", "owner",
                               "timers", "withdraw_on_down"}
            assert st["check"] == f"tcp 127.0.0.1:{service.port}" and st["owner"] == "health:web"
            assert st["last_ok"] is True and "connected" in st["last_result"]
            assert st["since"] <= time.time() and st["last_check"] <= time.time()
            assert st["ips"] == ["100.10.0.100/32", "100.10.0.101/32"] and st["next_hop"] == "self"
            hc = config(BASIC, service.port).healthchecks["web"]
            assert st["timers"] == {"interval": hc.interval, "fast_interval": hc.fast_interval,
                                    "timeout": hc.timeout, "rise": hc.rise, "fall": hc.fall}
            assert st["withdraw_on_down"] is hc.withdraw_on_down
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_a_changed_check_runs_at_once_with_its_new_settings(service):
    body = BASIC.replace("    interval 0.1;", "    interval 30;").replace("rise 2; fall 3;", "rise 1; fall 1;")

    async def scenario():
        speaker = FakeSpeaker()
        hm = HealthManager(speaker, config(body, service.port))
        await hm.start()
        try:
            await until(lambda: hm.status()[0]["state"] == "UP", what="UP")
            dead = Service()
            dead.stop()          # a port nobody listens on
            start = time.monotonic()
            await hm.reload(config(body, dead.port))
            await until(lambda: hm.status()[0]["state"] == "DOWN", timeout=5, what="DOWN")
            assert time.monotonic() - start < 3, "the next check must not wait for the 30 s interval"
        finally:
            await hm.stop()
    asyncio.run(scenario())


def test_route_attributes_per_state_follow_the_block_and_the_engine_states():
    # config/model.py names the states by their text (config cannot import the engine): the
    # engine's State members must be those strings, or every state would get the block's own.
    hc = config("""healthcheck h {
    ip 100.10.0.1; check tcp 127.0.0.1:PORT;
    community [ 65000:100 ]; disabled-community [ 65000:666 ];
    as-path [ 65001 65001 ]; up-as-path [ 65001 ]; down-as-path [ 65001 65001 65001 ];
}
""", 1).healthchecks["h"]
    seen = {state: hc.route_attributes(state, 7) for state in (State.UP, State.DOWN, State.DISABLED)}
    assert seen[State.UP].communities == (65000 << 16 | 100,)
    assert seen[State.DOWN].communities == seen[State.DISABLED].communities == (65000 << 16 | 666,)
    assert [a.as_path for a in seen.values()] == [((2, (65001,)),), ((2, (65001,) * 3),),
                                                  ((2, (65001, 65001)),)]
    assert {a.med for a in seen.values()} == {7}
    assert hc.route_attributes(State.RISING, 7).communities == (65000 << 16 | 100,)
