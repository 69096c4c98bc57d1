"""API programs under the real Speaker (no BGP session: the peers dial port 9 on loopback, where
nothing listens): commands, acks, events, supervision, back-pressure, withdraw-on-exit, reload.

The programs are small Python scripts written by each test; they record what they read on stdin in
a file the test looks at. Restart delays are shortened through the module's constants."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fleetbgp.api import process as proc_mod
from fleetbgp.api.manager import ApiManager, ack_default
from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.events import EventKind, PeerEvent, SessionState
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.settings import AgentSettings
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST

PY = sys.executable


def settings(**kw: Any) -> AgentSettings:
    base: dict[str, Any] = {"control_socket": None, "metrics_port": None, "listen": (("127.0.0.1", 0),)}
    base.update(kw)
    return AgentSettings(**base)


def nlri(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def neighbors(api: str) -> str:
    return f"""
neighbor 127.100.0.1 {{ router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001; peer-as 65000;
  family {{ ipv4 unicast; }} {api} }}
neighbor 127.100.0.5 {{ router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001; peer-as 65002;
  family {{ ipv4 unicast; ipv6 unicast; }} {api} }}
"""


def process_block(name: str, script: Path, extra: str = "", encoder: str = "text") -> str:
    return f'process {name} {{ run {PY} {script}; encoder {encoder}; {extra} }}\n'


def write_script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text("import sys, os, time\n" + body)
    return path


# A program that writes its commands, then copies its stdin to a file until EOF.
RECORDER = """
out = open(sys.argv[1] if len(sys.argv) > 1 else os.environ['RECORD'], 'a', buffering=1)
for cmd in os.environ.get('COMMANDS', '').split('|'):
    if cmd:
        sys.stdout.write(cmd + '\\n')
sys.stdout.flush()
for line in sys.stdin:
    out.write(line)
"""


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def recorded(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


class Harness:
    def __init__(self, tmp_path: Path, text: str, **kw: Any) -> None:
        self.path = tmp_path / "fleetbgp.conf"
        self.path.write_text(text)
        self.speaker = Speaker(parse_text(text, str(self.path)), settings(**kw))  # type: ignore[arg-type]
        self.api = ApiManager(self.speaker, self.speaker.config)
        self.speaker.api = self.api

    async def __aenter__(self) -> Harness:
        await self.speaker.start()
        await self.api.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.stop()
        await self.speaker.stop()

    def routes(self, address: str = "127.100.0.1", fam: Any = IPV4_UNICAST) -> dict[bytes, Attributes]:
        return dict(self.speaker.peers[address].rib_out.routes.get(fam, {}))

    def runner(self, name: str) -> Any:
        return self.api.runners[name]

    async def reload(self, text: str) -> None:
        self.path.write_text(text)
        config = parse_text(text, str(self.path))
        self.speaker.config = config
        await self.api.reload(config)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc_mod, "BACKOFF_FIRST", 0.1)
    monkeypatch.setattr(proc_mod, "BACKOFF_MAX", 0.8)
    monkeypatch.setattr(proc_mod, "BACKOFF_RESET", 5.0)
    monkeypatch.setattr(proc_mod, "STOP_GRACE", 1.0)


def env_block(**values: str) -> str:
    return "env { " + " ".join(f"{k} = '{v}';" for k, v in values.items()) + " }"


# -- commands and acks -------------------------------------------------------------------------------

def test_routes_acks_and_error_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    commands = "|".join([
        "announce route 100.10.0.0/24 next-hop self med 100",
        "announce route 100.10.1.0/24 next-hop self mde 100",
        "neighbor 127.100.0.5 announce route 100.10.2.0/24 next-hop self community [ 65000:1 ]",
        "announce route 2001:db8::/32 next-hop self",
        "announce attributes next-hop self local-preference 50 nlri 100.20.0.0/24 100.20.1.0/24",
        "withdraw route 100.20.1.0/24",
        "neighbor 192.0.2.99 announce route 100.30.0.0/24 next-hop self",
        "announce flow route { match { destination 192.0.2.1/32; } then { discard; } }",
        "version",
    ])
    text = process_block("healthcheck", script, env_block(RECORD=str(record), COMMANDS=commands)) + \
        neighbors("api { processes [ healthcheck ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            got = await wait_for(lambda: len(recorded(record)) >= 10 and recorded(record), what="acks")
            assert got == ["done", "error", "done", "done", "done", "done", "error", "error",
                           "fleetbgp " + __import__("fleetbgp").__version__, "done"]
            assert set(h.routes()) == {nlri("100.10.0.0/24"), nlri("100.20.0.0/24")}
            assert h.routes()[nlri("100.10.0.0/24")] is Attributes.make(next_hop="self", med=100)
            assert set(h.routes("127.100.0.5")) == {nlri("100.10.0.0/24"), nlri("100.10.2.0/24"),
                                                    nlri("100.20.0.0/24")}
            assert set(h.routes("127.100.0.5", IPV6_UNICAST)) == {nlri("2001:db8::/32")}
            status = h.api.status()[0]
            assert status["name"] == "healthcheck" and status["state"] == "running" and status["errors"] == 3

    with caplog.at_level(logging.WARNING, logger="fleetbgp.api"):
        run(go)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("process healthcheck line 2: unknown route attribute 'mde' (did you mean 'med'?)")
               for m in messages), messages
    assert any("line 7: no configured neighbor matches 'neighbor 192.0.2.99'" in m for m in messages)
    assert any("line 8: no neighbor has the family ipv4 flow configured" in m for m in messages)


def test_acks_off_with_exabgp_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("fleetbgp_api_ack", "FLEETBGP_API_ACK", "exabgp.api.ack", "exabgp_api_ack"):
        monkeypatch.delenv(name, raising=False)
    assert ack_default(None) is True
    monkeypatch.setenv("exabgp.api.ack", "false")
    assert ack_default(None) is False
    monkeypatch.delenv("exabgp.api.ack")
    monkeypatch.setenv("exabgp_api_ack", "False")
    assert ack_default(None) is False
    assert ack_default(AgentSettings(api_ack=True)) is True  # the settings object wins

    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    commands = "announce route 100.10.0.0/24 next-hop self|bogus|version|enable-ack|version"
    text = process_block("p", script, env_block(RECORD=str(record), COMMANDS=commands)) + \
        neighbors("api { processes [ p ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text, api_ack=False) as h:
            got = await wait_for(lambda: len(recorded(record)) >= 4 and recorded(record), what="output")
            version = "fleetbgp " + __import__("fleetbgp").__version__
            assert got == [version, "done", version, "done"]
            assert nlri("100.10.0.0/24") in h.routes()

    run(go)


def test_silence_and_disable_ack(tmp_path: Path) -> None:
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    commands = "disable-ack|announce route 100.10.0.0/24 next-hop self|enable-ack|silence-ack|bogus|enable-ack"
    text = process_block("p", script, env_block(RECORD=str(record), COMMANDS=commands)) + \
        neighbors("api { processes [ p ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text):
            got = await wait_for(lambda: len(recorded(record)) >= 3 and recorded(record), what="acks")
            await asyncio.sleep(0.2)
            assert recorded(record) == got == ["done", "done", "done"]

    run(go)


def test_show_commands_answer_then_done(tmp_path: Path) -> None:
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    commands = "announce route 100.10.0.0/24 next-hop self med 7|show neighbor summary|show neighbor json|" \
               "show adj-rib out extensive|show adj-rib out json 127.100.0.1"
    text = process_block("p", script, env_block(RECORD=str(record), COMMANDS=commands)) + \
        neighbors("api { processes [ p ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text):
            await wait_for(lambda: recorded(record).count("done") >= 5, what="answers")
            lines = recorded(record)
            assert lines[0] == "done"
            assert lines[1].startswith("Peer            AS        up/down state")
            assert lines[2].startswith("127.100.0.1     65000        down ")
            assert lines[3].startswith("127.100.0.5     65002        down ")
            assert lines[4] == "done"
            neighbors_json = json.loads(lines[5])
            assert [n["peer-address"] for n in neighbors_json] == ["127.100.0.1", "127.100.0.5"]
            assert neighbors_json[0]["adj-rib-out"] == {"ipv4 unicast": 1}
            assert lines[6] == "done"
            assert "127.100.0.1 ipv4 unicast 100.10.0.0/24 next-hop self origin igp med 7" in lines[7:9]
            rib = json.loads(lines[10])
            assert rib["127.100.0.1"]["routes"][0]["prefix"] == "100.10.0.0/24"
            assert rib["127.100.0.1"]["routes"][0]["attribute"]["med"] == 7
            assert lines[11] == "done"

    run(go)


def test_a_programs_routes_reach_only_the_neighbors_that_list_it(tmp_path: Path) -> None:
    """ExaBGP's api-multiple-api: a route announced by `private`, which only one neighbor lists,
    reached the other neighbor too. In ExaBGP a program speaks only to the neighbors listing it."""
    script = write_script(tmp_path, "rec", RECORDER)
    rec_private, rec_public, rec_none = tmp_path / "private.txt", tmp_path / "public.txt", tmp_path / "none.txt"
    private = "|".join(["announce route 100.10.0.0/24 next-hop self",
                        "neighbor 127.100.0.5 announce route 100.10.1.0/24 next-hop self",
                        "neighbor 127.100.0.1 announce route 100.10.2.0/24 next-hop self",
                        "announce eor ipv4 unicast"])
    text = (process_block("private", script, env_block(RECORD=str(rec_private), COMMANDS=private))
            + process_block("public", script, env_block(RECORD=str(rec_public),
                                                        COMMANDS="announce route 100.20.0.0/24 next-hop self"))
            + process_block("unlisted", script, env_block(RECORD=str(rec_none),
                                                          COMMANDS="announce route 100.30.0.0/24 next-hop self"))
            + """
neighbor 127.100.0.1 { router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001; peer-as 65000;
  family { ipv4 unicast; } api { processes [ private public ]; } }
neighbor 127.100.0.5 { router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001; peer-as 65002;
  family { ipv4 unicast; } api { processes [ public ]; } }
""")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            got = await wait_for(lambda: len(recorded(rec_private)) >= 4 and recorded(rec_private), what="acks")
            assert got == ["done", "error", "done", "done"]
            assert await wait_for(lambda: recorded(rec_none), what="ack") == ["error"]
            await wait_for(lambda: recorded(rec_public), what="public ack")
            assert set(h.routes("127.100.0.1")) == {nlri("100.10.0.0/24"), nlri("100.10.2.0/24"), nlri("100.20.0.0/24")}
            assert set(h.routes("127.100.0.5")) == {nlri("100.20.0.0/24")}

    run(go)


def test_watchdogs_and_split_as_exabgp_has_them(tmp_path: Path) -> None:
    """ExaBGP's api-watchdog and api-announcement: `watchdog NAME` groups routes (of the config and
    of the API) that `announce/withdraw watchdog NAME` move together; `withdraw` starts one
    withdrawn; `split /N` makes the /N routes of a prefix."""
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "acks.txt"
    commands = "|".join([
        "announce watchdog dnsr",
        "withdraw watchdog web",
        "announce route 100.1.0.0/24 next-hop self watchdog api",
        "withdraw watchdog api",
        "announce route 100.2.0.0/23 next-hop self split /24",
        "withdraw route 100.2.0.0/23 split /24",
        "announce route 100.3.0.0/23 next-hop self split /24 watchdog later withdraw",
        "announce watchdog later",
        "announce watchdog nosuchgroup",
    ])
    text = process_block("dog", script, env_block(RECORD=str(record), COMMANDS=commands)) + """
neighbor 127.100.0.1 { router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001; peer-as 65000;
  family { ipv4 unicast; } api { processes [ dog ]; }
  static {
    route 66.66.66.66 next-hop 1.2.3.4;
    route 77.77.77.77 next-hop 1.2.3.4 watchdog dnsr withdraw;
    route 10.0.0.0/23 next-hop self split /24 watchdog web;
  }
}
"""
    config = parse_text(text, str(tmp_path / "fleetbgp.conf"))
    assert set(config.neighbors[0].static_routes[IPV4_UNICAST]) == \
        {nlri("66.66.66.66/32"), nlri("10.0.0.0/24"), nlri("10.0.1.0/24")}, "77.77.77.77 starts withdrawn"

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            got = await wait_for(lambda: len(recorded(record)) >= 9 and recorded(record), what="acks")
            assert got == ["done"] * 9
            assert set(h.routes()) == {nlri("66.66.66.66/32"), nlri("77.77.77.77/32"),
                                       nlri("100.3.0.0/24"), nlri("100.3.1.0/24")}
            # a reload puts the config's watchdog routes back as the config says
            await h.speaker.reload()
            assert set(h.routes()) == {nlri("66.66.66.66/32"), nlri("10.0.0.0/24"), nlri("10.0.1.0/24"),
                                       nlri("100.3.0.0/24"), nlri("100.3.1.0/24")}

    run(go)


def test_events_reach_subscribed_programs_only(tmp_path: Path) -> None:
    script = write_script(tmp_path, "rec", RECORDER)
    rec_json, rec_text, rec_none = tmp_path / "json.txt", tmp_path / "text.txt", tmp_path / "none.txt"
    text = (process_block("js", script, env_block(RECORD=str(rec_json)), encoder="json")
            + process_block("tx", script, env_block(RECORD=str(rec_text)) + " receive { parsed; update; }")
            + process_block("quiet", script, env_block(RECORD=str(rec_none)))
            + neighbors("api { processes [ js tx quiet ]; } api { processes [ js ]; neighbor-changes; }"))

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            await wait_for(lambda: all(r.state == "running" for r in h.api.runners.values()), what="running")
            peer = h.speaker.peers["127.100.0.1"]
            peer.emit(PeerEvent(EventKind.STATE, peer.ref, state=SessionState.UP))
            peer.emit(PeerEvent(EventKind.STATE, peer.ref, state=SessionState.DOWN, reason="hold timer expired"))
            peer.emit(PeerEvent(EventKind.KEEPALIVE, peer.ref))
            lines = await wait_for(lambda: len(recorded(rec_json)) >= 2 and recorded(rec_json), what="json")
            msgs = [json.loads(x) for x in lines]
            assert [(m["type"], m["neighbor"]["state"]) for m in msgs] == [("state", "up"), ("state", "down")]
            assert msgs[0]["neighbor"]["address"] == {"local": "127.100.0.2", "peer": "127.100.0.1"}
            assert msgs[0]["neighbor"]["asn"] == {"local": 65001, "peer": 65000}
            assert [m["counter"] for m in msgs] == [1, 2]
            await asyncio.sleep(0.2)
            assert recorded(rec_text) == [] and recorded(rec_none) == []  # no neighbor-changes, no keepalive

    run(go)


def test_processes_match_and_state_replayed_to_a_late_program(tmp_path: Path) -> None:
    """`processes-match` selects by name (ExaBGP's re.match); a program that starts while a session
    is already up is told `up` at once instead of waiting for a flap."""
    script = write_script(tmp_path, "rec", RECORDER)
    rec_a, rec_b = tmp_path / "a.txt", tmp_path / "b.txt"
    text = (process_block("collector-a", script, env_block(RECORD=str(rec_a)), encoder="json")
            + process_block("other", script, env_block(RECORD=str(rec_b)), encoder="json")
            + neighbors('api { processes-match [ "^collector-" ]; neighbor-changes; }'))

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            await wait_for(lambda: all(r.state == "running" for r in h.api.runners.values()), what="running")
            peer = h.speaker.peers["127.100.0.5"]
            peer.emit(PeerEvent(EventKind.STATE, peer.ref, state=SessionState.DOWN, reason="test"))
            got = await wait_for(lambda: recorded(rec_a), what="event")
            assert json.loads(got[0])["neighbor"]["state"] == "down"
            await asyncio.sleep(0.2)
            assert recorded(rec_b) == []
            # pretend the session is up, restart the program: its first line is the state
            peer.established = types.SimpleNamespace(local_address="127.100.0.6", remote_address="127.100.0.5")
            peer.established_since = time.time()
            try:
                await h.reload(text.replace(env_block(RECORD=str(rec_a)), env_block(RECORD=str(rec_a), X="1")))
                lines = await wait_for(lambda: len(recorded(rec_a)) >= 2 and recorded(rec_a), what="replay")
                assert json.loads(lines[1])["neighbor"]["state"] == "up"
                assert json.loads(lines[1])["neighbor"]["address"]["peer"] == "127.100.0.5"
            finally:
                peer.established = None
                peer.established_since = None

    run(go)


def test_large_line_and_binary_garbage_do_not_hurt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc_mod, "MAX_LINE", 10000)
    script = write_script(tmp_path, "big", """
out = open(os.environ['RECORD'], 'a', buffering=1)
sys.stdout.buffer.write(b'x' * 50000 + b' more\\n' + b'\\xff\\xfe garbage\\n'
                        + b'announce route 100.10.0.0/24 next-hop self\\n')
sys.stdout.flush()
for line in sys.stdin:
    out.write(line)
""")
    record = tmp_path / "stdin.txt"
    text = process_block("p", script, env_block(RECORD=str(record))) + neighbors("api { processes [ p ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            assert await wait_for(lambda: recorded(record) == ["error", "error", "done"], what="answers")
            assert nlri("100.10.0.0/24") in h.routes()

    run(go)


# -- supervision ----------------------------------------------------------------------------------------

def test_crash_loop_backs_off_and_never_gives_up(tmp_path: Path, fast: None,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    script = write_script(tmp_path, "die", "sys.stderr.write('cannot work\\n'); sys.exit(3)\n")
    text = process_block("dying", script) + neighbors("api { processes [ dying ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            runner = h.runner("dying")
            await wait_for(lambda: runner.restarts >= 6, timeout=20, what="six restarts")
            status = h.api.status()[0]
            assert status["last_exit"]["code"] == 3
            assert status["state"] in ("backoff", "running", "starting")

    with caplog.at_level(logging.INFO, logger="fleetbgp.api"):
        run(go)
    delays = [float(r.args[3]) for r in caplog.records if "restarting in" in r.msg]
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8], delays  # doubling, capped, never stops
    assert any(r.levelno == logging.WARNING and r.getMessage() == "process dying: cannot work"
               for r in caplog.records)
    assert any("process dying exited with code 3 after" in r.getMessage() for r in caplog.records)


def test_respawn_false_leaves_it_down(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "once", "sys.exit(0)\n")
    text = process_block("once", script, "respawn false;") + neighbors("api { processes [ once ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            await wait_for(lambda: h.runner("once").state == "exited", what="exited")
            await asyncio.sleep(0.5)
            assert h.runner("once").restarts == 0
            assert h.api.status()[0]["last_exit"]["code"] == 0

    run(go)


def test_stop_escalates_to_sigkill_and_leaves_no_zombie(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "stubborn", """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('announce route 100.10.0.0/24 next-hop self', flush=True)
while True:
    time.sleep(1)
""")
    text = process_block("stubborn", script) + neighbors("api { processes [ stubborn ]; }")

    async def go() -> None:
        h = Harness(tmp_path, text)
        await h.speaker.start()
        await h.api.start()
        runner = h.runner("stubborn")
        await wait_for(lambda: nlri("100.10.0.0/24") in h.routes(), what="route")
        pid = runner.pid
        started = time.monotonic()
        await h.api.stop()
        took = time.monotonic() - started
        assert 0.9 < took < 5, took
        assert not Path(f"/proc/{pid}").exists(), "the program (or its zombie) is still there"
        assert nlri("100.10.0.0/24") in h.routes(), "routes stay when programs are stopped"
        await h.speaker.stop()

    run(go)


def test_routes_stay_after_exit_by_default(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "oneshot", "print('announce route 100.10.0.0/24 next-hop self')\n")
    text = process_block("oneshot", script, "respawn false;") + neighbors("api { processes [ oneshot ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            await wait_for(lambda: h.runner("oneshot").state == "exited", what="exit")
            assert nlri("100.10.0.0/24") in h.routes()

    run(go)


# -- withdraw-on-exit ------------------------------------------------------------------------------------

def test_withdraw_on_exit_immediately(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "w0", """
print('announce route 100.10.0.0/24 next-hop self', flush=True)
time.sleep(0.5)
""")
    text = process_block("w0", script, "respawn false; withdraw-on-exit;") + neighbors("api { processes [ w0 ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            h.speaker.announce(IPV4_UNICAST, nlri("100.99.0.0/24"), Attributes.make(next_hop="self"),
                               owner="control:test")
            await wait_for(lambda: nlri("100.10.0.0/24") in h.routes(), what="announce")
            await wait_for(lambda: h.runner("w0").state == "exited", what="exit")
            assert nlri("100.10.0.0/24") not in h.routes()
            assert nlri("100.99.0.0/24") in h.routes(), "another owner's route is untouched"

    run(go)


def test_withdraw_on_exit_grace_keeps_what_the_new_incarnation_announces(tmp_path: Path, fast: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """First run announces A and B and dies; the restarted program announces only A within the
    grace period: B is withdrawn when the grace expires, A stays (it is the new run's)."""
    monkeypatch.setattr(proc_mod, "BACKOFF_FIRST", 0.3)
    state = tmp_path / "runs"
    script = write_script(tmp_path, "flaky", f"""
runs = int(open({str(state)!r}).read()) if os.path.exists({str(state)!r}) else 0
open({str(state)!r}, 'w').write(str(runs + 1))
if runs == 0:
    print('announce route 100.10.0.0/24 next-hop self', flush=True)
    print('announce route 100.10.1.0/24 next-hop self', flush=True)
    time.sleep(0.3)
    sys.exit(1)
print('announce route 100.10.0.0/24 next-hop self med 5', flush=True)
time.sleep(60)
""")
    text = process_block("flaky", script, "withdraw-on-exit 2;") + neighbors("api { processes [ flaky ]; }")
    a, b = nlri("100.10.0.0/24"), nlri("100.10.1.0/24")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            runner = h.runner("flaky")
            await wait_for(lambda: b in h.routes(), what="first run's routes")
            await wait_for(lambda: runner.restarts == 1 and h.routes().get(a, None) is not None
                           and h.routes()[a].med == 5, what="second run re-announces A")
            assert b in h.routes(), "still inside the grace period"
            assert h.api.status()[0]["pending_withdrawals"][0]["routes"] == 4  # 2 routes x 2 neighbors
            await wait_for(lambda: b not in h.routes(), timeout=5, what="B withdrawn after the grace")
            assert a in h.routes() and h.routes()[a].med == 5
            assert h.api.status()[0]["pending_withdrawals"] == []

    run(go)


def test_withdraw_on_exit_grace_without_return_withdraws_everything(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "gone", "print('announce route 100.10.0.0/24 next-hop self', flush=True)\n"
                                            "time.sleep(0.3)\n")
    text = process_block("gone", script, "respawn false; withdraw-on-exit 1;") + \
        neighbors("api { processes [ gone ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            await wait_for(lambda: nlri("100.10.0.0/24") in h.routes(), what="announce")
            await wait_for(lambda: h.runner("gone").state == "exited", what="exit")
            assert nlri("100.10.0.0/24") in h.routes()
            await wait_for(lambda: nlri("100.10.0.0/24") not in h.routes(), timeout=4, what="withdrawal")
            assert nlri("100.10.0.0/24") not in h.routes("127.100.0.5")

    run(go)


# -- back-pressure -----------------------------------------------------------------------------------------

def test_flood_without_reading_keeps_the_loop_responsive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """200,000 announce lines as fast as possible, stdin never read: every route lands, the event
    loop never stalls for long, acks beyond the queue are dropped (counted, one warning)."""
    monkeypatch.setattr(proc_mod, "QUEUE_MAX_ITEMS", 5000)
    count = 200_000
    script = write_script(tmp_path, "flood", f"""
out = sys.stdout
for i in range({count}):
    out.write(f'announce route {{100 + (i >> 16)}}.{{(i >> 8) & 255}}.{{i & 255}}.0/24 next-hop self\\n')
out.flush()
time.sleep(60)
""")
    text = process_block("flood", script) + neighbors("api { processes [ flood ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            gaps: list[float] = []

            async def ticker() -> None:
                last = time.monotonic()
                while True:
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.get_running_loop().create_task(ticker())
            await wait_for(lambda: len(h.speaker.peers["127.100.0.1"].rib_out) == count, timeout=120,
                           what="all routes")
            tick.cancel()
            runner = h.runner("flood")
            assert runner.lines == count
            assert runner.queue.dropped > 0 and len(runner.queue) <= 5000
            assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"

    with caplog.at_level(logging.WARNING, logger="fleetbgp.api"):
        run(go)
    warnings = [r for r in caplog.records if "is not reading its input" in r.getMessage()]
    assert len(warnings) == 1


# -- reload ---------------------------------------------------------------------------------------------------

def test_reload_keeps_unchanged_restarts_changed_stops_removed(tmp_path: Path, fast: None) -> None:
    script = write_script(tmp_path, "idle", "time.sleep(60)\n")

    def config(b_extra: str, with_c: bool, with_d: bool) -> str:
        text = process_block("a", script) + process_block("b", script, b_extra)
        if with_c:
            text += process_block("c", script)
        if with_d:
            text += process_block("d", script)
        return text + neighbors("api { processes [ a ]; }")

    async def go() -> None:
        async with Harness(tmp_path, config("", True, False)) as h:
            await wait_for(lambda: all(r.pid for r in h.api.runners.values()), what="all running")
            pids = {name: r.pid for name, r in h.api.runners.items()}
            await h.reload(config(env_block(X="1"), False, True))
            # b's old program may still be exiting when reload returns: wait for its successor.
            await wait_for(lambda: set(h.api.runners) == {"a", "b", "d"}
                           and all(r.pid for r in h.api.runners.values())
                           and h.runner("b").pid != pids["b"], what="reloaded, b restarted")
            assert h.runner("a").pid == pids["a"], "unchanged process kept running"
            assert h.runner("b").pid != pids["b"], "changed process restarted"
            assert h.runner("b").definition.env == {"X": "1"}
            assert not Path(f"/proc/{pids['c']}").exists(), "removed process stopped"
            assert h.runner("b").restarts == 1

    run(go)


def test_process_env_and_working_directory(tmp_path: Path) -> None:
    record = tmp_path / "where.txt"
    script = write_script(tmp_path, "where", "open(os.environ['RECORD'], 'w').write(os.getcwd() + ' ' + "
                                             "os.environ['SERVICE_IP'] + ' ' + os.environ.get('PATH', ''))\n"
                                             "time.sleep(60)\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    text = process_block("w", script, f"working-directory {workdir}; "
                         + env_block(RECORD=str(record), SERVICE_IP="100.10.0.100")) + \
        neighbors("api { processes [ w ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text):
            got = await wait_for(lambda: record.exists() and record.read_text(), what="record")
            cwd, ip, path = got.split(" ", 2)
            assert cwd == str(workdir) and ip == "100.10.0.100"
            assert path == os.environ.get("PATH", ""), "the agent's environment is passed on"

    run(go)


def test_only_peers_whose_programs_ask_for_sent_updates_decode_them(tmp_path: Path) -> None:
    script = write_script(tmp_path, "rec", RECORDER)
    text = (process_block("watcher", script, env_block(RECORD=str(tmp_path / "w.txt")), encoder="json")
            + """
neighbor 127.100.0.1 { router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001; peer-as 65000;
  family { ipv4 unicast; } api { processes [ watcher ]; send { parsed; update; } } }
neighbor 127.100.0.5 { router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001; peer-as 65002;
  family { ipv4 unicast; } api { processes [ watcher ]; receive { parsed; update; } } }
""")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            assert h.speaker.peers["127.100.0.1"].report_sent is True
            assert h.speaker.peers["127.100.0.5"].report_sent is False

    run(go)


def test_teardown_sends_the_subcodes_name_as_exabgp_does(tmp_path: Path) -> None:
    from test_peer_state import establish, remote_open

    from fleetbgp import fsm
    from fleetbgp.api.commands import CommandError, parse_command
    from fleetbgp.session import Peer

    text = process_block("p", tmp_path / "unused.py") + neighbors("api { processes [ p ]; }")
    speaker = Speaker(parse_text(text, str(tmp_path / "f.conf")), settings())  # type: ignore[arg-type]
    api = ApiManager(speaker, speaker.config)
    for neighbor in speaker.config.neighbors:  # not started: no session, no dialing
        peer = Peer(neighbor)
        speaker.peers[peer.address] = peer
    sent: list[bytes] = []
    first = speaker.peers["127.100.0.1"]
    first._carry_out = lambda conn, actions: sent.extend(  # type: ignore[method-assign]
        a.data for a in actions if isinstance(a, fsm.Send))
    runner = api.runners["p"] = api.new_runner(speaker.config.processes["p"])  # not started
    for code in (4, 2, 6):
        establish(first.core, remote_open(router_id="192.0.2.9"))  # each Cease ends the session
        assert api.dispatch(runner, parse_command(f"neighbor 127.100.0.1 teardown {code}")) is None
    assert sent[0][19:] == bytes.fromhex("0604") + b"\x14Administrative Reset"
    assert sent[1][19:] == bytes.fromhex("0602") + b"\x17Administrative Shutdown"
    assert sent[2][19:] == bytes.fromhex("0606")
    with pytest.raises(CommandError, match="no selected neighbor has an established session"):
        api.dispatch(runner, parse_command("neighbor 127.100.0.5 teardown 2"))
