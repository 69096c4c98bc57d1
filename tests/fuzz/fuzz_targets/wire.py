"""BGP messages from a peer: each decoder on its own, and the whole receive path of a session."""

from __future__ import annotations

import asyncio
from typing import Any

from fleetbgp.api.encoders import JsonEncoder, TextEncoder
from fleetbgp.config import parse_text
from fleetbgp.events import PeerEvent
from fleetbgp.grammar.flowspec import flow_string, format_nlri
from fleetbgp.session import BGPProtocol, Peer
from fleetbgp.wire.attributes import DecodeContext
from fleetbgp.wire.constants import MsgType
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.flowspec import FlowSpecError, decode_nlri
from fleetbgp.wire.messages import (
    KEEPALIVE,
    Capabilities,
    MessageReader,
    Notification,
    Open,
    RouteRefresh,
    decode_update,
)
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_FLOWSPEC, IPV6_UNICAST

from .base import loop, require, settle, target, watched_logs

FAMILIES = (IPV4_UNICAST, IPV6_UNICAST, IPV4_FLOWSPEC, IPV6_FLOWSPEC)
UNICAST = frozenset((IPV4_UNICAST, IPV6_UNICAST))

WIRE_WORDS = (
    b"\xff" * 16, b"\x40\x01\x01\x00", b"\x40\x02\x00", b"\x40\x03\x04\xc0\x00\x02\x01",
    b"\x80\x04\x04\x00\x00\x00\x64", b"\x90\x0e", b"\x90\x0f", b"\x80\x09\x04", b"\x80\x0a\x04",
    b"\x02\x06\x01\x04\x00\x01\x00\x01", b"\x02\x06\x41\x04\x00\x00\xfd\xe9", b"\x00\x01\x85",
    b"\x00\x02\x01\x10", b"\x03\x01", b"\x00\x19", b"\x10\x00",
)


def _decoders(selector: int, body: bytes) -> None:
    ctx = DecodeContext(asn4=bool(selector & 0x10), ibgp=bool(selector & 0x20),
                        addpath=UNICAST if selector & 0x40 else frozenset(),
                        extended_next_hop=frozenset((IPV4_UNICAST,)) if selector & 0x80 else frozenset())
    which = selector % 7
    if which == 0:
        for msg_type, payload in MessageReader().feed(body):
            require(0 < msg_type <= 5 and len(payload) <= 4077, f"framing let through type {msg_type}")
    elif which == 1:
        Open.decode(body)
    elif which == 2:
        decode_update(body, ctx, FAMILIES)
    elif which == 3:
        note = Notification.decode(body)
        _ = note.shutdown_message, note.hard_reset_of  # RFC 9003 text, RFC 8538 Hard Reset contents
    elif which == 4:
        RouteRefresh.decode(body)
    elif which == 5:
        caps = Capabilities.decode(body)
        if caps.graceful_restart is not None and len(caps.gr_families) <= 63:  # 63: what fits one capability
            # the graceful-restart flags read (R, RFC 8538's N, F per family) encode back the same
            gr = Capabilities(graceful_restart=caps.graceful_restart, gr_restarting=caps.gr_restarting,
                              gr_notification=caps.gr_notification, gr_families=caps.gr_families)
            require(Capabilities.decode(gr.encode()) == gr, "graceful-restart flags do not survive a re-encode")
    else:
        afi = 2 if selector & 0x80 else 1
        try:
            flow_string(decode_nlri(afi, body))
        except FlowSpecError:
            pass
        format_nlri((afi, 133), body)


@target("bgp_decoders", max_len=4200, dictionary=WIRE_WORDS, contract="""
    Byte 0 picks a decoder (framing, OPEN, UPDATE, NOTIFICATION, ROUTE-REFRESH, capabilities,
    FlowSpec NLRI) and the decode context (4-octet AS, iBGP, ADD-PATH receive, RFC 8950 extended
    next hop); the rest is its input. A decoder returns or raises
    BGPError (the FSM's NOTIFICATION); the FlowSpec NLRI decoder may raise FlowSpecError, and its
    formatter never raises. Problems are reported in the UPDATE's notes: one log line at most.""")
def bgp_decoders(data: bytes) -> None:
    if not data:
        return
    with watched_logs(max_records=1):  # decoders report through notes, not the log
        try:
            _decoders(data[0], data[1:])
        except BGPError as exc:
            require(1 <= exc.code <= 7, f"BGPError with NOTIFICATION code {exc.code}")


# -- the session path: bytes on an Established TCP connection ---------------------------------------

SESSION_CONFIG = """
neighbor 192.0.2.1 {
    local-as 65001; peer-as 65000; router-id 192.0.2.2; local-address 192.0.2.2;
    adj-rib-in true;
    family { ipv4 unicast; ipv6 unicast; ipv4 flow; ipv6 flow; }
    static { route 100.10.0.100/32 next-hop self; }
}
neighbor 192.0.2.3 {
    local-as 65001; peer-as 65001; router-id 192.0.2.2; local-address 192.0.2.2;
    family { ipv4 unicast; ipv6 unicast; }
    capability { asn4 disable; }
}
"""
_neighbors = parse_text(SESSION_CONFIG, "fuzz-session.conf").neighbors


class _Wire(asyncio.Transport):
    """The socket's place: keeps what the agent writes, reports an address pair."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closing = False

    def write(self, data: Any) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("192.0.2.2", 179), "peername": ("192.0.2.1", 40000)}.get(name, default)


def _peer_open(neighbor: Any) -> bytes:
    caps = Capabilities(families=list(FAMILIES), asn4=neighbor.peer_as if neighbor.capabilities.asn4 else None,
                        route_refresh=True)
    return Open(asn=neighbor.peer_as, hold_time=90, router_id="192.0.2.1", capabilities=caps).encode()


_encoders = (JsonEncoder(), TextEncoder())


def _render(event: PeerEvent) -> None:
    for encoder in _encoders:
        encoder.event(event)


@target("bgp_session", max_len=20000, dictionary=WIRE_WORDS, contract="""
    Byte 0 picks a neighbor (eBGP with four families and adj-rib-in, or iBGP without 4-byte ASNs);
    the rest arrives on its Established session, after the OPEN/KEEPALIVE handshake. The session
    turns every malformed message into a NOTIFICATION it sends and a close, or into
    treat-as-withdraw; nothing raises, every received event renders in the API's JSON and text
    encoders, the agent only writes whole BGP messages, and it logs at most one line per
    message received (plus a handful for the session itself).""")
def bgp_session(data: bytes) -> None:
    if not data:
        return
    neighbor = _neighbors[data[0] % len(_neighbors)]
    stream = data[1:]
    with watched_logs(max_records=20 + stream.count(b"\xff" * 16)):
        peer = Peer(neighbor, on_event=_render)
        wire = _Wire()

        async def run() -> None:
            proto = BGPProtocol(peer, "in")
            proto.connection_made(wire)
            proto.data_received(_peer_open(neighbor) + KEEPALIVE)
            require(proto.state.name == "ESTABLISHED", f"handshake ended in {proto.state}")
            proto.data_received(stream)
            if not proto.conn.closed:
                proto.connection_lost(None)

        loop().run_until_complete(run())
        settle()
        loop().run_until_complete(peer.stop())
    for msg_type, _ in MessageReader(65535).feed(bytes(wire.out)):
        require(msg_type in (MsgType.OPEN, MsgType.UPDATE, MsgType.NOTIFICATION, MsgType.KEEPALIVE),
                f"the agent wrote a message of type {msg_type}")

