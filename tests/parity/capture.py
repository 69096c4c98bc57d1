"""A capturing BGP peer for the parity tests.

`Capture` listens on 127.0.0.1 (or ::1), accepts any number of sessions, answers the speaker's
OPEN the way ExaBGP's own functional-test peer does (qa/sbin/bgp: its OPEN sent back, so every
capability the speaker offered is offered in return and negotiates, with our own router id and,
when asked, another AS), then a KEEPALIVE, and keeps the session up, answering each message with a
KEEPALIVE. It records every OPEN, UPDATE and NOTIFICATION it receives.

The options after `router_id` reproduce the `option:` lines of ExaBGP's .msg files (send a default
route, an unknown capability, an unknown message type, a NOTIFICATION after the OPEN).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MARKER = b"\xff" * 16
OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE_REFRESH = 1, 2, 3, 4, 5
KEEPALIVE_MESSAGE = MARKER + struct.pack("!HB", 19, KEEPALIVE)
# qa/sbin/bgp's Message.default_route(): 0.0.0.0/0, origin igp, empty AS_PATH, next hop 127.0.0.1
DEFAULT_ROUTE = MARKER + bytes.fromhex(
    "0031" "02" "0000" "0015" "40010100" "400200" "4003047f000001" "400504" "00000064" "2000000000")


def message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def capabilities(open_body: bytes) -> list[tuple[int, bytes]]:
    """The capabilities of an OPEN body as (code, value), in order (RFC 5492; RFC 9072 extended
    optional parameters length understood)."""
    if len(open_body) < 10:
        return []
    plen = open_body[9]
    params = open_body[10:10 + plen]
    extended = plen == 255 and len(open_body) > 10 and open_body[10] == 255
    if extended:
        plen = int.from_bytes(open_body[11:13], "big")
        params = open_body[13:13 + plen]
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(params):
        ptype = params[offset]
        if extended:
            length = int.from_bytes(params[offset + 1:offset + 3], "big")
            offset += 3
        else:
            length = params[offset + 1]
            offset += 2
        value = params[offset:offset + length]
        offset += length
        if ptype != 2:
            continue
        inner = 0
        while inner + 2 <= len(value):
            code, clen = value[inner], value[inner + 1]
            out.append((code, value[inner + 2:inner + 2 + clen]))
            inner += 2 + clen
    return out


def addpath_families(sent: bytes, received: bytes) -> frozenset[tuple[int, int]]:
    """The (afi, safi) on which the speaker that sent `sent` may send path identifiers to the one
    that sent `received` (RFC 7911: our send bit and their receive bit)."""
    def table(body: bytes) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for code, value in capabilities(body):
            if code != 69:
                continue
            for i in range(0, len(value) - 3, 4):
                out[(int.from_bytes(value[i:i + 2], "big"), value[i + 2])] = value[i + 3]
        return out

    ours, theirs = table(sent), table(received)
    return frozenset(k for k, v in ours.items() if v & 2 and theirs.get(k, 0) & 1)


def asn4(sent: bytes, received: bytes) -> bool:
    return any(c == 65 for c, _ in capabilities(sent)) and any(c == 65 for c, _ in capabilities(received))


@dataclass
class Session:
    """One accepted connection: the OPENs both ways and what came in on it."""
    index: int
    speaker_open: bytes = b""
    our_open: bytes = b""
    updates: list[bytes] = field(default_factory=list)
    notifications: list[bytes] = field(default_factory=list)
    closed: bool = False


class Capture:
    """A BGP peer on 127.0.0.1 that accepts sessions and records every message it receives."""

    def __init__(self, *, port: int = 0, asn: int | None = None, router_id: str = "10.0.0.2",
                 host: str = "127.0.0.1", send_default_route: bool = False,
                 send_unknown_capability: bool = False, send_unknown_message: bool = False,
                 notification_after_open: str | None = None,
                 answer_route_refresh: bool = True) -> None:
        self.host = host
        self.asn = asn
        self.router_id = router_id
        self.send_default_route = send_default_route
        self.send_unknown_capability = send_unknown_capability
        self.send_unknown_message = send_unknown_message
        self.notification_after_open = notification_after_open
        self.answer_route_refresh = answer_route_refresh
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self.port: int = self._listener.getsockname()[1]
        self.opens: list[bytes] = []
        self.updates: list[bytes] = []
        self.notifications: list[bytes] = []
        self.sessions: list[Session] = []
        # every UPDATE with the index of the session it came on (same order as `updates`)
        self.session_of_update: list[int] = []
        self.last_update = 0.0
        self.eor_seen = False
        self._lock = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Capture:
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        thread = threading.Thread(target=self._accept, name=f"capture-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        for thread in self._threads:
            thread.join(timeout=2)

    # -- waiting -------------------------------------------------------------------------------

    def wait_updates(self, *, quiet: float = 1.0, timeout: float = 30.0, eor: bool = False,
                     count: int = 0, until: Callable[[list[bytes]], bool] | None = None) -> list[bytes]:
        """Wait until at least `count` UPDATEs (and, if eor, an End-of-RIB) arrived and then none
        for `quiet` s. Returns the UPDATE bodies received so far (also on timeout).

        `until`, if given, is another way to be done waiting: it is called with the UPDATEs so far
        (under the lock, keep it quick) and returning True counts as `count` being reached."""
        start = time.monotonic()
        deadline = start + timeout
        with self._lock:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                reached = len(self.updates) >= count or (until is not None and until(self.updates))
                if reached and (self.eor_seen or not eor):
                    idle = now - max(self.last_update, start)
                    if idle >= quiet:
                        break
                    self._lock.wait(min(quiet - idle, deadline - now))
                else:
                    self._lock.wait(min(0.2, deadline - now))
            return list(self.updates)

    # -- sessions ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                session = Session(len(self.sessions))
                self.sessions.append(session)
                self._connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, session), daemon=True,
                                      name=f"capture-{self.port}-{session.index}")
            thread.start()
            self._threads.append(thread)

    def _read(self, conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            try:
                chunk = conn.recv(size - len(data))
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    def _serve(self, conn: socket.socket, session: Session) -> None:
        try:
            while not self._closing:
                header = self._read(conn, 19)
                if header is None:
                    break
                length, kind = struct.unpack("!HB", header[16:19])
                body = self._read(conn, length - 19) if length > 19 else b""
                if body is None:
                    break
                if kind == OPEN:
                    self._on_open(conn, session, body)
                elif kind == UPDATE:
                    with self._lock:
                        session.updates.append(body)
                        self.updates.append(body)
                        self.session_of_update.append(session.index)
                        self.last_update = time.monotonic()
                        if len(body) == 4 or (len(body) == 11 and body[:4] == b"\0\0\0\x07"
                                              and body[4:6] == b"\x80\x0f"):
                            self.eor_seen = True
                        self._lock.notify_all()
                    self._send(conn, KEEPALIVE_MESSAGE)
                elif kind == NOTIFICATION:
                    with self._lock:
                        session.notifications.append(body)
                        self.notifications.append(body)
                        self._lock.notify_all()
                    break
                elif kind == ROUTE_REFRESH and self.answer_route_refresh:
                    # qa/sbin/bgp sends back every UPDATE it has seen, then a KEEPALIVE
                    with self._lock:
                        seen = [u for u in self.updates if len(u) > 11]
                    for update in seen:
                        self._send(conn, message(UPDATE, update))
                    self._send(conn, KEEPALIVE_MESSAGE)
                else:
                    self._send(conn, KEEPALIVE_MESSAGE)
        finally:
            session.closed = True
            with contextlib.suppress(OSError):
                conn.close()

    def _our_open(self, body: bytes) -> bytes:
        """The speaker's OPEN sent back (every capability mirrored), with our router id and AS."""
        out = bytearray(body)
        rid = ipaddress.IPv4Address(self.router_id).packed
        if rid == bytes(body[5:9]):
            rid = rid[:3] + bytes([(rid[3] + 1) & 0xFF])
        out[5:9] = rid
        if self.asn is not None:
            out[1:3] = struct.pack("!H", self.asn if self.asn < 65536 else 23456)
            # the 4-octet AS capability, wherever it is
            plen = out[9]
            offset = 10
            while offset < 10 + plen:
                ptype, length = out[offset], out[offset + 1]
                if ptype == 2:
                    inner = offset + 2
                    while inner < offset + 2 + length:
                        code, clen = out[inner], out[inner + 1]
                        if code == 65 and clen == 4:
                            out[inner + 2:inner + 6] = struct.pack("!I", self.asn)
                        inner += 2 + clen
                offset += 2 + length
        if self.send_unknown_capability:  # qa/sbin/bgp's capability 66 "loremipsum"
            content = b"loremipsum"
            param = bytes([2, len(content) + 2, 66, len(content)]) + content
            out[9] += len(param)
            out += param
        return bytes(out)

    def _on_open(self, conn: socket.socket, session: Session, body: bytes) -> None:
        ours = self._our_open(body)
        with self._lock:
            session.speaker_open = body
            session.our_open = ours
            self.opens.append(body)
            first = len(self.opens) == 1
            self._lock.notify_all()
        data = message(OPEN, ours) + KEEPALIVE_MESSAGE
        if self.send_unknown_message and first:  # the qa peer's test ends with that session
            data += MARKER + struct.pack("!HB", 19, 255)
        if self.notification_after_open is not None and first:
            # qa/sbin/bgp: "cease" (6) / subcode 0 with the text
            data += message(NOTIFICATION, b"\x06\x00" + self.notification_after_open.encode())
        if self.send_default_route:
            data += DEFAULT_ROUTE
        self._send(conn, data)
