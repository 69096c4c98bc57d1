"""Requests on the control socket (`fleetbgp` CLI, the Ansible modules): JSON, one per line."""

from __future__ import annotations

import json

from fleetbgp.config import parse_text
from fleetbgp.control import COMMANDS, ControlServer
from fleetbgp.daemon import Speaker
from fleetbgp.session import Peer
from fleetbgp.settings import AgentSettings

from .base import loop, require, settle, target, watched_logs
from .sending import sends_everything

CONTROL_CONFIG = """
neighbor 192.0.2.1 {
    local-as 65001; peer-as 65000; router-id 192.0.2.2; local-address 192.0.2.2;
    family { ipv4 unicast; ipv6 unicast; ipv4 flow; }
    static { route 100.10.0.100/32 next-hop self med 100; route 100.10.1.0/24 next-hop self; }
}
neighbor 2001:db8::1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; family { ipv6 unicast; } }
"""
_config = parse_text(CONTROL_CONFIG, "fuzz-control.conf")
_settings = AgentSettings(control_socket=None, maintenance_mode="withdraw")

CONTROL_WORDS = tuple(w.encode() for w in (
    '{"v":1,"id":1,"cmd":"', '","args":{', "}}", '"status"', '"neighbors"', '"routes"', '"announce"',
    '"withdraw"', '"maintenance"', '"health"', '"processes"', '"flows"', '"flow_announce"',
    '"flow_withdraw"', '"limit":', '"prefix":"10.0.0.0/8"', '"match":"longer"', '"received":true',
    '"route":"100.10.2.0/24 next-hop self"', '"routes":[', '"owner":"x"', '"neighbor":"192.0.2.1"',
    '"state":"on"', '"all":true', '"family":"ipv4 unicast"', '"name":"f"', '"then":{"discard":true}',
    '"match":{"destination":"10.0.0.0/24"}', '"expires_after":', "9223372036854775808", "1e999",
    "-1", "true", "null", "[" * 64, "]" * 64, '"\\ud800"', "\n",
))


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def _server() -> tuple[Speaker, ControlServer]:
    speaker = Speaker(_config, _settings)
    for neighbor in _config.neighbors:
        peer = Peer(neighbor, on_event=speaker._dispatch)
        speaker.peers[peer.address] = peer  # not started: no dialing
    # Not reload: it reads files and may start peers; tested with real ones.
    server = ControlServer(speaker, _settings,
                           commands={name: c for name, c in COMMANDS.items() if name != "reload"})
    return speaker, server


@target("control_requests", max_len=8192, dictionary=CONTROL_WORDS, contract="""
    Each line of the input is one request to the control socket's handler. Each gets exactly one
    reply line: JSON with ok true and a result, or ok false and an error whose code is not
    `internal` (a bug). No reply is cut short, and nothing logs a traceback.""")
def control_requests(data: bytes) -> None:
    lines = [line for line in data.split(b"\n") if line.strip()][:32]
    with watched_logs(max_records=4 * len(lines) + 4):
        speaker, server = _server()
        for line in lines:
            writer = _Writer()
            loop().run_until_complete(server._handle_line(line, writer, "fuzz"))  # type: ignore[arg-type]
            _check_reply(bytes(writer.data))
        settle()
    sends_everything(speaker.peers.values())
    loop().run_until_complete(speaker.stop())


def _check_reply(raw: bytes) -> None:
    require(raw.endswith(b"\n") and raw.count(b"\n") == 1, f"not one reply line: {raw[:200]!r}")
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise AssertionError(f"reply is not JSON ({exc}): {raw[:200]!r}") from None
    require(isinstance(reply, dict) and isinstance(reply.get("ok"), bool), f"odd reply {raw[:200]!r}")
    if not reply["ok"]:
        error = reply.get("error") or {}
        require(error.get("code") != "internal", f"internal error: {error.get('message')!r}")
