"""Shared helpers of the control socket / CLI / metrics tests (a plain module, not a test file):
a small fake Speaker with fake peers holding real adj-rib-out tables, and a control server run on
an event loop in a background thread so that the blocking client and the CLI can talk to it; a raw
line client of the socket (with the `speaker` / `conn` fixtures, which a test module imports by name)
and the real Speaker with real, not started Peers behind a control server (`real_agent`).

It lives under tests/unit/ because the collection ships it: the modules' unit tests (tests/unit/plugins,
run by `ansible-test units` on the installed collection) use it as well as the agent's own tests
(tests/agent, not shipped; the repository's pytest puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from fleetbgp.config import load
from fleetbgp.config.lexer import tokenize_line
from fleetbgp.config.model import Config, Neighbor
from fleetbgp.control import ControlServer
from fleetbgp.control_client import ControlClient
from fleetbgp.daemon import ReloadResult, Speaker
from fleetbgp.durations import update_histograms
from fleetbgp.flows import FlowManager
from fleetbgp.fsm import State
from fleetbgp.grammar.route import parse_route
from fleetbgp.owner import CONFIG, Owner
from fleetbgp.rib import AdjRibIn, OwnedRibOut
from fleetbgp.session import Peer
from fleetbgp.settings import AgentSettings
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.messages import Negotiated
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

if TYPE_CHECKING:
    from fleetbgp.bfd.status import BfdStatus
    from fleetbgp.control.ports import SpeakerPort
    from fleetbgp.ports import FlowSpeaker, MetricsSource, PeerView, StatusSource


def replaying_program(tmp_path: Path, commands: Path, record: Path) -> Path:
    """An API program that writes the lines of `commands`, then copies what the agent answers
    into `record`."""
    script = tmp_path / "prog.py"
    script.write_text(
        "import sys\n"
        f"sys.stdout.write(open({str(commands)!r}).read())\n"
        "sys.stdout.flush()\n"
        f"out = open({str(record)!r}, 'a', buffering=1)\n"
        "for line in sys.stdin:\n"
        "    out.write(line)\n")
    return script


def route(text: str) -> tuple[Family, bytes, Attributes]:
    return parse_route(tokenize_line(text))


class FakePeer:
    """A peer as the subsystems read it (ports.PeerView) with real tables: no session, no socket."""

    def __init__(self, address: str, *, local_as: int = 65001, peer_as: int = 65000,
                 families: tuple[Family, ...] = (IPV4_UNICAST,), state: State = State.ESTABLISHED) -> None:
        up = state is State.ESTABLISHED
        self.address = address
        self.neighbor = Neighbor(peer_address=address, local_as=local_as, peer_as=peer_as,
                                 router_id="192.0.2.2", local_address="192.0.2.2", hold_time=90,
                                 description="edge", families=families)
        self.rib_out = OwnedRibOut()
        self.rib_in = AdjRibIn(False)
        self.state = state
        self.established_since: float | None = time.time() - 3725 if up else None
        self.negotiated: Negotiated | None = Negotiated(
            hold_time=90, keepalive=30, families=families, asn4=True, route_refresh=True,
            extended_message=False, peer_as=peer_as, peer_router_id="192.0.2.1",
            graceful_restart=None) if up else None
        self.local_address = "192.0.2.2" if up else None
        self.last_error = "" if up else "connect to 192.0.2.9 port 179 failed: refused"
        self.last_notification: dict[str, Any] | None = None
        self.stats = {"messages_in": 12, "messages_out": 15, "updates_in": 2, "updates_out": 3,
                      "keepalives_in": 9, "notifications_in": 1, "notifications_out": 0,
                      "established_count": 2, "flaps": 1, "routes_announced": 7, "routes_withdrawn": 4,
                      "bytes_in": 999}
        self.notifications: dict[tuple[str, int, int], int] = {("received", 6, 2): 1}
        self.drain_mode: str | None = None
        self.send_queue_empty = True
        self.bfd: BfdStatus | None = None
        self.update_seconds = update_histograms()

    def add(self, text: str, owner: str = "config") -> None:
        fam, nlri, attrs = route(text)
        who = Owner.parse(owner)
        self.rib_out.put_owned(fam, nlri, attrs, who, track=who is not CONFIG)
        if who is CONFIG:
            self.rib_out.static.setdefault(fam, {})[nlri] = attrs


class FakeSpeaker:
    """The Speaker as control/, metrics.py and flows.py see it (their ports, checked by mypy below),
    over FakePeers, recording the changes it is asked for."""

    def __init__(self, peers: list[FakePeer] | None = None, settings: AgentSettings | None = None) -> None:
        self.peers = {p.address: p for p in (peers or [])}
        self.settings = settings or AgentSettings()
        self.maintenance = False
        self.maintenance_since: float | None = None
        self.config_path = "/etc/fleetbgp/fleetbgp.conf"
        self.config = Config(neighbors=[], processes={}, listen=[], path=self.config_path)
        self.config_sha256 = "ab" * 32
        self.config_loaded_at = time.time() - 60
        self.started_at = time.time() - 3600
        self.last_reload: dict[str, Any] = {"result": None, "time": None, "errors": []}
        self.reload_counts = {"success": 0, "failure": 0}
        self.health: StatusSource | None = None
        self.api: StatusSource | None = None
        self.flows = FlowManager(self)
        self.reload_result = ReloadResult(True, [], "no change to sessions or routes")
        self.calls: list[tuple[Any, ...]] = []

    def select(self, neighbors: Sequence[str] | None) -> list[FakePeer]:
        if neighbors is None:
            return list(self.peers.values())
        out = []
        for n in neighbors:
            if n not in self.peers:
                raise ValueError(f"unknown neighbor {n}")
            out.append(self.peers[n])
        return out

    def announce(self, fam: Family, nlri: bytes, attrs: Attributes, *, owner: Owner,
                 neighbors: Sequence[str] | None = None) -> int:
        self.calls.append(("announce", fam, nlri, attrs, str(owner), neighbors))
        changed = 0
        for p in self.select(neighbors):
            if fam in p.neighbor.families and p.rib_out.put_owned(fam, nlri, attrs, owner):
                changed += 1
        return changed

    def withdraw(self, fam: Family, nlri: bytes, *, owner: Owner | None = None,
                 neighbors: Sequence[str] | None = None) -> int:
        self.calls.append(("withdraw", fam, nlri, str(owner) if owner is not None else "", neighbors))
        return sum(p.rib_out.remove(fam, nlri) for p in self.select(neighbors))

    def owned(self, owner: Owner) -> dict[str, dict[Family, set[bytes]]]:
        return {a: t for a, p in self.peers.items() if (t := p.rib_out.owned_by(owner))}

    def withdraw_owner(self, owner: Owner, neighbors: Sequence[str] | None = None) -> int:
        self.calls.append(("withdraw_owner", str(owner), neighbors))
        return sum(p.rib_out.remove_owned_by(owner) for p in self.select(neighbors))

    def set_maintenance(self, on: bool) -> None:
        self.calls.append(("maintenance", on))
        if on != self.maintenance:  # as the Speaker: turning it on again keeps the time it began
            self.maintenance_since = time.time() if on else None
        self.maintenance = on
        for p in self.peers.values():
            p.drain_mode = self.settings.maintenance_mode if on else None

    def request_restart(self, graceful: bool) -> dict[str, Any]:
        self.calls.append(("restart", graceful))
        return {"restarting": True, "graceful": graceful, "exit_status": 75, "graceful_neighbors": [],
                "cease_neighbors": list(self.peers), "message": "recorded"}

    async def reload(self, *, dry_run: bool = False,
                     candidate: tuple[str, str, Mapping[str, str]] | None = None) -> ReloadResult:
        self.calls.append(("reload", dry_run) if dry_run else ("reload",))
        self.candidate = candidate
        await asyncio.sleep(0)
        result = self.reload_result
        self.reload_counts["success" if result.ok else "failure"] += 1
        self.last_reload = {"result": "success" if result.ok else "failure", "time": time.time(),
                            "errors": list(result.errors)}
        return result

    def status(self) -> dict[str, Any]:
        return {"version": "0.1.0", "pid": 4242, "started_at": self.started_at,
                "uptime": time.time() - self.started_at, "config_path": self.config_path,
                "config_sha256": self.config_sha256, "config_loaded_at": self.config_loaded_at,
                "last_reload": dict(self.last_reload), "reloads": dict(self.reload_counts),
                "maintenance": self.maintenance, "maintenance_mode": self.settings.maintenance_mode,
                "neighbors": len(self.peers),
                "established": sum(1 for p in self.peers.values() if p.state is State.ESTABLISHED)}


if TYPE_CHECKING:
    # The fakes are what the subsystems' ports say (mypy checks this file: agent/pyproject.toml).
    def _fits(speaker: FakeSpeaker, peer: FakePeer) -> tuple[SpeakerPort, MetricsSource, FlowSpeaker,
                                                             PeerView]:
        return speaker, speaker, speaker, peer


def sample_speaker(settings: AgentSettings | None = None) -> FakeSpeaker:
    """Two v4 peers and a v4+v6 one, some routes from the config, one from an API program."""
    a = FakePeer("192.0.2.1")
    a.add("100.10.0.100/32 next-hop self med 100 community [65001:100 no-export] "
          "large-community [65001:1:1] as-path [ 65010 ]")
    a.add("100.10.1.0/24 next-hop self origin incomplete")
    a.add("100.10.0.101/32 next-hop 192.0.2.2 local-preference 200", owner="process:hc")
    b = FakePeer("192.0.2.9", state=State.ACTIVE)
    b.add("100.10.0.100/32 next-hop self med 200")
    c = FakePeer("2001:db8::1", families=(IPV4_UNICAST, IPV6_UNICAST))
    c.add("2001:db8:100::/48 next-hop self med 50")
    c.add("100.10.0.100/32 next-hop self")
    return FakeSpeaker([a, b, c], settings)


def short_tmpdir() -> Path:
    """Unix socket paths are limited to 107 bytes: pytest's tmp_path can be longer. Removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="fbctl-", dir="/tmp"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class LoopThread:
    """An event loop running in a daemon thread; `run(coro)` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def go() -> Any:
            return fn(*args)
        return self.run(go())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def served(speaker: SpeakerPort, settings: AgentSettings | None = None,
           **overrides: Any) -> Iterator[tuple[ControlServer, str, LoopThread]]:
    """A ControlServer for `speaker` on a fresh socket; yields (server, path, loop thread)."""
    tmp = short_tmpdir()
    path = str(tmp / "control.sock")
    base = settings or AgentSettings()
    from dataclasses import replace

    settings = replace(base, control_socket=path, **overrides)
    lt = LoopThread()
    server = ControlServer(speaker, settings)
    lt.run(server.start())
    try:
        yield server, path, lt
    finally:
        lt.run(server.stop())
        lt.close()
        shutil.rmtree(tmp, ignore_errors=True)


class Raw:
    """A raw line-oriented client, to send what the real client never would."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> dict[str, Any]:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"no full reply line: {line[:200]!r}"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, cmd: str, args: dict[str, Any] | None = None, id: object = 1,
            **extra: Any) -> dict[str, Any]:
        req = {"v": 1, "id": id, "cmd": cmd, **({"args": args} if args is not None else {}), **extra}
        self.send(json.dumps(req).encode() + b"\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# Fixtures `speaker` and `conn`: a test module that wants them imports them by their function names,
# `conn_fixture` and `speaker_fixture` (pytest registers imported fixtures under their `name`), so that
# the tests' own `speaker` / `conn` arguments and variables do not shadow an imported name.

@pytest.fixture(name="speaker")
def speaker_fixture() -> FakeSpeaker:
    return sample_speaker()


@pytest.fixture(name="conn")
def conn_fixture(speaker: FakeSpeaker) -> Iterator[Raw]:
    with served(speaker) as (_server, path, _lt):
        raw = Raw(path)
        yield raw
        raw.close()


@contextlib.contextmanager
def real_agent(conf_text: str, tmp_path: Path, *, config_sha256: str = "",
               **settings_kw: Any) -> Iterator[SimpleNamespace]:
    """The real Speaker on `conf_text` (written to tmp_path/fleetbgp.conf) with real Peers that are not
    started (no dialing, state Idle), a started ControlServer on a short socket path and a ControlClient.
    Yields SimpleNamespace(speaker, server, client, lt, sock, conf)."""
    conf = tmp_path / "fleetbgp.conf"
    conf.write_text(conf_text)
    sock = str(short_tmpdir() / "control.sock")
    settings = AgentSettings(control_socket=sock, **settings_kw)
    lt = LoopThread()

    async def build() -> tuple[Speaker, ControlServer]:
        speaker = Speaker(load(str(conf)), settings, config_sha256=config_sha256)
        for neighbor in speaker.config.neighbors:
            peer = Peer(neighbor, on_event=speaker._dispatch)
            speaker.peers[peer.address] = peer  # not started: no dialing
        server = ControlServer(speaker, settings)
        await server.start()
        return speaker, server

    speaker, server = lt.run(build())
    client = ControlClient(sock, timeout=10)
    try:
        yield SimpleNamespace(speaker=speaker, server=server, client=client, lt=lt, sock=sock, conf=conf)
    finally:
        client.close()
        lt.run(server.stop())

        async def stop() -> None:
            speaker.flows.stop()
            for p in speaker.peers.values():
                await p.stop()
        lt.run(stop())
        lt.close()
