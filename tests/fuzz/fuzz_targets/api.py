"""What an API program writes on its stdout: ExaBGP's text commands, answered in text or JSON."""

from __future__ import annotations

import asyncio
from typing import Any

from fleetbgp import __version__
from fleetbgp.api.manager import ApiManager
from fleetbgp.api.process import ProcessRunner
from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.session import Peer
from fleetbgp.settings import AgentSettings

from .base import loop, require, settle, target, watched_logs
from .sending import sends_everything

API_CONFIG = """
process fuzz-text { run /bin/true; encoder text; }
process fuzz-json { run /bin/true; encoder json; }
neighbor 192.0.2.1 {
    local-as 65001; peer-as 65000; router-id 192.0.2.2; local-address 192.0.2.2;
    family { ipv4 unicast; ipv6 unicast; ipv4 flow; ipv6 flow; }
    api { processes [ fuzz-text fuzz-json ]; receive { parsed; update; } }
}
neighbor 2001:db8::1 {
    local-as 65001; peer-as 65001; router-id 192.0.2.2;
    family { ipv6 unicast; }
}
"""
_config = parse_text(API_CONFIG, "fuzz-api.conf")
_settings = AgentSettings(control_socket=None, api_ack=True)

API_WORDS = tuple(w.encode() for w in (
    "announce route ", "withdraw route ", "announce flow route ", "withdraw flow route ", "neighbor ",
    "announce eor", "announce route-refresh", "teardown ", "show neighbor ", "show adj-rib out ",
    "extensive", "summary", "json", "next-hop self", "next-hop 10.0.0.1", "med ", "local-preference ",
    "community [", "large-community [", "extended-community [", "as-path [", "]", "origin igp",
    "match {", "then {", "}", "destination 10.0.0.0/24", "destination-port =80", "rate-limit ",
    "redirect 65000:1", "mark ", "discard", "local-as ", "peer-as ", "10.0.0.0/24", "2001:db8::/64",
    "192.0.2.1", "\u00b2", "9" * 5000, "4294967296", "01.2.3.4", "\x00", "\ufffd", "\r", "\n",
    "enable-ack", "disable-ack", "silence-ack", "version", "help", "reload", "#", ";",
))


async def _no_reload() -> Any:
    return None  # the grammar is what is fuzzed; reloads are tested with real files elsewhere


def _speaker() -> tuple[Speaker, ApiManager]:
    speaker = Speaker(_config, _settings)
    for neighbor in _config.neighbors:
        peer = Peer(neighbor, on_event=speaker._dispatch)
        speaker.peers[peer.address] = peer  # not started: no dialing
    speaker.reload = _no_reload  # type: ignore[method-assign]
    manager = ApiManager(speaker, _config)
    speaker.api = manager
    return speaker, manager


def _answers_expected(data: bytes) -> int | None:
    """How many done/error answers the input must get, when that is easy to know: no ack switches,
    no output commands, no over-long or odd lines."""
    lines = data.decode("utf-8", "replace").split("\n")
    if b"ack" in data or any(len(line) > 1000 for line in lines):
        return None
    count = 0
    for line in lines:
        line = line.removesuffix("\r")
        if not line.strip() or line.startswith("debug "):
            continue
        if line.lstrip().startswith(("show", "help", "version", "reload", "shutdown", "#")):
            return None
        count += 1
    return count


@target("api_commands", max_len=8192, dictionary=API_WORDS, contract="""
    Byte 0 picks the program's encoder (text or json); the rest is what the program writes, read by
    the real read loop. Every command line is answered (`done` or `error`, acks on), none stops the
    loop: a `version` line after the input is always answered. Errors are logged rate-limited, and
    nothing logs a traceback.""")
def api_commands(data: bytes) -> None:
    if not data:
        return
    proc = list(_config.processes.values())[data[0] % 2]
    body = data[1:]
    expected = _answers_expected(body)
    with watched_logs(max_records=40):
        speaker, manager = _speaker()
        runner = manager.new_runner(proc)
        runner.state = "running"
        manager.runners[runner.name] = runner
        out: list[str] = []

        async def run() -> None:
            reader = asyncio.StreamReader()
            reader.feed_data(body + b"\nversion\n")
            reader.feed_eof()
            drain = asyncio.create_task(_drain(runner, out))
            await runner._read_loop(reader)
            await asyncio.sleep(0)
            drain.cancel()
            out.extend(_take_all(runner))

        loop().run_until_complete(run())
        settle()
    sends_everything(speaker.peers.values())
    loop().run_until_complete(speaker.stop())
    answers = [line for line in out if line in ("done", "error")]
    require(f"fleetbgp {__version__}" in out[-2:],
            f"the read loop stopped before the last line; the program got {out[-3:]!r}")
    if expected is not None:
        require(len(answers) == expected + 1,
                f"{expected} command line(s) (and `version`) got {len(answers)} answer(s)")


def _take_all(runner: ProcessRunner) -> list[str]:
    lines: list[str] = []
    while len(runner.queue):
        lines.extend(runner.queue.take().splitlines())
    return lines


async def _drain(runner: ProcessRunner, out: list[str]) -> None:
    while True:
        await runner.queue.wakeup.wait()
        out.extend(_take_all(runner))
