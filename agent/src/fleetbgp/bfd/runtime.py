"""The BFD runtime: the sans-IO machines (machine.py) on real sockets and timers, in a thread of
its own with its own asyncio loop, so that a busy main loop (a 1M-line API burst, a 100k-route
reload) never delays a BFD packet: the main loop's GIL share is all this thread waits for.

Sockets (RFC 5881 4 and 5):
- receive: one UDP socket per address family bound to port 3784 (by default 0.0.0.0 and ::, with
  IPV6_V6ONLY), with IP_RECVTTL / IPV6_RECVHOPLIMIT; a packet whose TTL / hop limit is not 255
  was forwarded by a router, so it is dropped and counted;
- transmit: one UDP socket per session, bound to the local address (or any) and a source port in
  49152-65535 of its own, TTL / hop limit 255, sent to the peer's port 3784.
Demultiplexing (RFC 5880 6.3): Your Discriminator != 0 -> the session of that local discriminator
(and the packet must come from that session's peer); == 0 -> the session of the source address.

Threads: every public method may be called from any thread. The sessions belong to the BFD
thread; the public methods hand their work over with call_soon_threadsafe. Snapshots
(`status`, `all_status`) are made under a lock the BFD thread holds only while it changes a
session. State changes go back to the caller's loop with `loop.call_soon_threadsafe(on_change,
key, status)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..logutil import RateLimiter, log_event
from .auth import AuthConfig
from .machine import (
    Action,
    BfdMachine,
    Discarded,
    SetTimer,
    StateChange,
    StopTimer,
    Timers,
    TimersChanged,
    Transmit,
)
from .packet import BfdPacketError, BfdState, ControlPacket, decode
from .status import BfdStatus

__all__ = ["BFD_PORT", "BfdService", "BfdStatus", "Timers"]

log = logging.getLogger("fleetbgp.bfd")

BFD_PORT = 3784  # RFC 5881 4: single hop control packets
SOURCE_PORTS = (49152, 65535)  # RFC 5881 4: the source port range
TTL = 255
# Not in every Python's socket module: the Linux values.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
MAX_DATAGRAM = 512  # a control packet is 24 bytes, 52 with the longest authentication section
_ANCILLARY = socket.CMSG_SPACE(4) * 2
# A packet every few hundred ms per session: problems are logged at most this often per session.
LOG_BURST = 3
LOG_WINDOW = 60.0
# Removing a session: AdminDown is sent for this long at least (RFC 5880 6.8.16 asks for a
# detection time, so the peer knows it was us and not the path), then the session is forgotten.
REMOVE_LINGER_MIN = 1.0
STOP_TIMEOUT = 2.0


def _normal(address: str) -> str:
    """Addresses compared as the kernel reports them: no scope, IPv4-mapped made plain."""
    addr = address.partition("%")[0]
    ip = ipaddress.ip_address(addr)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _sockaddr(address: str, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    addr, _sep, scope = address.partition("%")
    if ":" not in addr:
        return (addr, port)
    return (addr, port, 0, socket.if_nametoindex(scope) if scope else 0)


@dataclass(slots=True, eq=False)
class _Session:
    key: str
    peer: str                        # normalised: no scope (what received packets are matched with)
    local: str | None
    target: str                      # the peer as configured, with its scope (fe80::1%eth0)
    timers: Timers
    auth: AuthConfig | None
    passive: bool
    machine: BfdMachine
    sock: socket.socket | None = None
    handles: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    sent: int = 0
    received: int = 0
    dropped: int = 0
    transitions: int = 0
    transitions_to: dict[str, int] = field(default_factory=dict)
    up_since: float | None = None
    last_down_reason: str | None = None
    holding: bool = False
    removing: bool = False
    problems: RateLimiter = field(default_factory=lambda: RateLimiter(LOG_BURST, LOG_WINDOW))


class BfdService:
    """BFD sessions by key (the neighbor's key in the agent). See the module docstring."""

    def __init__(self, on_change: Callable[[str, BfdStatus], None], loop: asyncio.AbstractEventLoop,
                 *, listen: Sequence[str] = ("0.0.0.0", "::"), port: int = BFD_PORT,
                 rng: random.Random | None = None) -> None:
        """listen: the addresses the receive sockets bind (one per family at most; an address of
        this host limits BFD to it); port: where we listen and where peers are sent to: 3784 by
        the RFC, another only for tests where both sides use it."""
        self._on_change = on_change
        self._main = loop
        self._listen = tuple(listen)
        self.port = port
        self._rng = rng or random.SystemRandom()
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}        # by key (changed under the lock)
        self._by_discr: dict[int, _Session] = {}
        self._by_peer: dict[str, _Session] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._rx: list[socket.socket] = []
        self.listening: list[tuple[str, int]] = []      # what the receive sockets bound
        self.listen_errors: list[str] = []
        self._families: set[socket.AddressFamily] = set()   # those with a receive socket
        self.unmatched = 0                              # packets for no session of ours
        self._unmatched_log = RateLimiter(LOG_BURST, LOG_WINDOW)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the receive sockets and start the thread (returns once it runs)."""
        if self._thread is not None:
            return
        self._open_listeners()
        self._thread = threading.Thread(target=self._run, name="fleetbgp-bfd", daemon=True)
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        """AdminDown to every peer (RFC 5880 6.8.16: they keep BGP up), then stop the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(self._shutdown)
        thread.join(STOP_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        for sock in self._rx:
            loop.add_reader(sock.fileno(), self._readable, sock)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for sock in self._rx:
                sock.close()
            self._rx.clear()
            loop.close()

    def _shutdown(self) -> None:
        assert self._loop is not None
        for s in list(self._sessions.values()):
            if not s.removing:
                self._drive(s, s.machine.admin_down, self._loop.time())
            self._forget(s)
        for sock in self._rx:
            self._loop.remove_reader(sock.fileno())
        self._loop.stop()

    def _open_listeners(self) -> None:
        seen: set[socket.AddressFamily] = set()
        for address in self._listen:
            fam = _family(address)
            if fam in seen:
                continue
            sock = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                if fam == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                sock.bind(_sockaddr(address, self.port))
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                where = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
                hint = (" (another BFD daemon on this host? bird, bfdd, a second agent)"
                        if exc.errno == errno.EADDRINUSE else "")
                text = f"cannot listen for BFD on UDP {where}: {exc.strerror}{hint}"
                self.listen_errors.append(text)
                # No IPv6 on this host: only an error if an IPv6 session is configured (_start_session).
                level = logging.WARNING if exc.errno == errno.EAFNOSUPPORT else logging.ERROR
                log.log(level, "%s; BFD sessions of that address family cannot come up", text)
                continue
            seen.add(fam)
            self._families.add(fam)
            self._rx.append(sock)
            self.listening.append((address, self.port))

    # -- the API (any thread) -----------------------------------------------------------------

    def add(self, key: str, peer: str, local: str | None, timers: Timers, auth: AuthConfig | None,
            passive: bool = False) -> None:
        with self._lock:
            if key in self._sessions and not self._sessions[key].removing:
                raise ValueError(f"BFD session {key} exists already")
            discr = self._new_discriminator()
            machine = BfdMachine(local_discr=discr, timers=timers, auth=auth, passive=passive)
            session = _Session(key=key, peer=_normal(peer), local=local, timers=timers, auth=auth,
                               passive=passive, machine=machine, target=peer)
            old = self._sessions.get(key)
            self._sessions[key] = session
            self._by_discr[discr] = session
        self._call(self._start_session, session, old)

    def update(self, key: str, timers: Timers, auth: AuthConfig | None) -> None:
        """New timers: a Poll sequence on a session that is Up, never a session drop. New
        authentication: used from the next packet (the peer must change its key at the same time:
        RFC 5880 has no key rollover)."""
        with self._lock:
            session = self._sessions.get(key)
        if session is None or session.removing:
            raise KeyError(key)
        self._call(self._update_session, session, timers, auth)

    def remove(self, key: str) -> None:
        """AdminDown to the peer (so it keeps its BGP session up), then forget the session."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.removing:
                return
            session.removing = True
        self._call(self._remove_session, session)

    def status(self, key: str) -> BfdStatus | None:
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.removing:
                return None
            return self._snapshot(session)

    def all_status(self) -> dict[str, BfdStatus]:
        with self._lock:
            return {k: self._snapshot(s) for k, s in self._sessions.items() if not s.removing}

    def keys(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._sessions.items() if not s.removing]

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the BFD service is not started")
        loop.call_soon_threadsafe(fn, *args)

    def _new_discriminator(self) -> int:
        while True:
            discr = self._rng.getrandbits(32)
            if discr and discr not in self._by_discr:
                return discr

    # -- sessions (BFD thread) ----------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _start_session(self, session: _Session, old: _Session | None) -> None:
        if old is not None:  # a remove() still lingering: the new one takes over now
            self._forget(old)
        if self._sessions.get(session.key) is not session:
            return
        self._open_tx(session)
        if _family(session.peer) not in self._families:
            log.error("BFD %s: no BFD listener for IPv%d (see the error above): this session cannot "
                      "come up", session.peer, 6 if _family(session.peer) == socket.AF_INET6 else 4)
        with self._lock:
            self._by_peer[session.peer] = session
        log.info("BFD %s: session added (min-tx %d ms, min-rx %d ms, multiplier %d%s%s)", session.peer,
                 session.timers.min_tx_ms, session.timers.min_rx_ms, session.timers.multiplier,
                 ", passive" if session.passive else "",
                 f", auth {session.auth.kind}" if session.auth is not None else "",
                 extra=log_event("bfd_session_added"))
        self._drive(session, session.machine.start, self._now())

    def _update_session(self, session: _Session, timers: Timers, auth: AuthConfig | None) -> None:
        if session.removing or self._sessions.get(session.key) is not session:
            return
        if auth != session.auth:
            # RFC 5880 has no key rollover: until the peer has the new key too, each side drops
            # the other's packets and the session goes Down (BGP held if it was Up).
            log.warning("BFD %s: authentication changed%s", session.peer,
                        f" to {auth.kind}, key id {auth.key_id}" if auth is not None else " to none")
            with self._lock:
                session.auth = auth
                session.machine.set_auth(auth)
        if timers != session.timers:
            log.info("BFD %s: timers changed to min-tx %d ms, min-rx %d ms, multiplier %d%s", session.peer,
                     timers.min_tx_ms, timers.min_rx_ms, timers.multiplier,
                     " (poll sequence)" if session.machine.state is BfdState.UP else "")
            with self._lock:
                session.timers = timers
            self._drive(session, session.machine.set_timers, timers, self._now())

    def _remove_session(self, session: _Session) -> None:
        if self._sessions.get(session.key) is not session:
            return
        self._drive(session, session.machine.admin_down, self._now())
        linger = max(REMOVE_LINGER_MIN, session.machine.detect_time or 0.0)
        log.info("BFD %s: session removed (AdminDown sent for %.1f s)", session.peer, linger,
                 extra=log_event("bfd_session_removed"))
        assert self._loop is not None
        self._loop.call_later(linger, self._forget, session)

    def _forget(self, session: _Session) -> None:
        self._drive(session, session.machine.stop)
        for handle in session.handles.values():
            handle.cancel()
        session.handles.clear()
        with self._lock:
            if self._sessions.get(session.key) is session:
                del self._sessions[session.key]
            if self._by_discr.get(session.machine.local_discr) is session:
                del self._by_discr[session.machine.local_discr]
            if self._by_peer.get(session.peer) is session:
                del self._by_peer[session.peer]
        if session.sock is not None:
            session.sock.close()
            session.sock = None

    def _tx_socket(self, peer: str, local: str | None) -> socket.socket:
        fam = _family(peer)
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            sock.setblocking(False)
            host = local or ("::" if fam == socket.AF_INET6 else "0.0.0.0")
            if "%" in peer and "%" not in host and host.lower().startswith("fe80"):
                host += "%" + peer.partition("%")[2]  # a link-local source needs the peer's interface
            low, high = SOURCE_PORTS
            # RFC 5881 4: a source port of the range, unique per session: random tries, then a scan.
            candidates = [self._rng.randint(low, high) for _draw in range(32)]
            for port in [*candidates, *range(low, high + 1)]:
                try:
                    sock.bind(_sockaddr(host, port))
                    return sock
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
            raise OSError(errno.EADDRINUSE, "no free source port in 49152-65535")
        except BaseException:
            sock.close()
            raise

    # -- actions --------------------------------------------------------------------------------

    def _drive(self, session: _Session, call: Callable[..., list[Action]], *args: object) -> None:
        """A machine call under the lock (a snapshot never sees a half-changed machine), then
        its actions outside it (they take the lock themselves, and call other threads)."""
        with self._lock:
            actions = call(*args)
        self._execute(session, actions)

    def _execute(self, session: _Session, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                self._send(session, action.data)
            elif isinstance(action, SetTimer):
                old = session.handles.pop(action.name, None)
                if old is not None:
                    old.cancel()
                if self._sessions.get(session.key) is session:
                    assert self._loop is not None
                    session.handles[action.name] = self._loop.call_later(
                        action.delay, self._timer_fired, session, action.name)
            elif isinstance(action, StopTimer):
                old = session.handles.pop(action.name, None)
                if old is not None:
                    old.cancel()
            elif isinstance(action, StateChange):
                self._state_changed(session, action)
            elif isinstance(action, Discarded):
                with self._lock:
                    session.dropped += 1
                self._problem(session, f"packet discarded: {action.reason}")
            elif isinstance(action, TimersChanged):
                log.debug("BFD %s: negotiated tx %.0f ms, detection time %.0f ms", session.peer,
                          session.machine.tx_interval * 1000, session.machine.detect_time * 1000)

    def _open_tx(self, session: _Session) -> None:
        try:
            session.sock = self._tx_socket(session.target, session.local)
        except OSError as exc:
            # The local address may not be up yet (an interface coming up): tried again at the
            # next packet to send (once a second while not Up).
            self._problem(session, f"cannot open a socket to send from {session.local or 'any address'}: "
                                   f"{exc.strerror or exc}")

    def _send(self, session: _Session, data: bytes) -> None:
        if session.sock is None:
            self._open_tx(session)
        sock = session.sock
        if sock is None:
            return
        try:
            sock.sendto(data, _sockaddr(session.target, self.port))
        except OSError as exc:
            # No route, a firewall's EPERM, a full buffer: the packet is lost as on the wire; the
            # detection timers (ours and the peer's) decide what that means.
            self._problem(session, f"cannot send: {exc.strerror or exc}")
            return
        with self._lock:
            session.sent += 1

    def _timer_fired(self, session: _Session, name: str) -> None:
        session.handles.pop(name, None)
        if self._sessions.get(session.key) is not session:
            return
        self._drive(session, session.machine.timer_fired, name, self._now())

    def _state_changed(self, session: _Session, change: StateChange) -> None:
        machine = session.machine
        with self._lock:
            session.transitions += 1
            session.transitions_to[str(change.new)] = session.transitions_to.get(str(change.new), 0) + 1
            if change.new is BfdState.UP:
                session.up_since = time.time()
                session.holding = False
            else:
                session.up_since = None
            if change.new is BfdState.DOWN:
                session.last_down_reason = change.reason or change.diag.describe()
            # RFC 5882 3.2: the peer's AdminDown is no failure, so BGP stays; anything else that
            # takes an Up session down holds BGP down until BFD is Up again.
            if (change.old is BfdState.UP and change.new is BfdState.DOWN
                    and machine.remote_state is not BfdState.ADMIN_DOWN and not session.removing):
                session.holding = True
            status = self._snapshot(session)
        reason = change.reason or change.diag.describe()
        if change.new is BfdState.DOWN and change.old is BfdState.UP:
            log.warning("BFD %s: session down: %s%s", session.peer, reason,
                        "" if session.holding else " (the peer's AdminDown: BGP stays up)",
                        extra=log_event("bfd_down"))
        elif change.new is BfdState.UP:
            log.info("BFD %s: session up (tx %.0f ms, detection time %.0f ms)", session.peer,
                     machine.tx_interval * 1000, machine.detect_time * 1000, extra=log_event("bfd_up"))
        elif change.new is BfdState.DOWN and change.old is BfdState.INIT:
            # the handshake broke off: the peer stopped answering, or said it is down
            log.warning("BFD %s: Init -> Down (%s)", session.peer, reason, extra=log_event("bfd_state"))
        else:
            log.info("BFD %s: %s -> %s (%s)", session.peer, change.old, change.new, reason,
                     extra=log_event("bfd_state"))
        self._notify(session.key, status)

    def _notify(self, key: str, status: BfdStatus) -> None:
        with contextlib.suppress(RuntimeError):  # the main loop is closed: nobody to tell
            self._main.call_soon_threadsafe(self._on_change, key, status)

    def _problem(self, session: _Session, text: str) -> None:
        ok, held = session.problems.allow()
        if ok:
            more = f" ({held} more not logged)" if held else ""
            log.warning("BFD %s: %s%s", session.peer, text, more)

    # -- receiving (BFD thread) ------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        for _packet in range(64):  # a bounded batch: timers run between batches
            try:
                data, ancdata, _flags, addr = sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("BFD receive error: %s", exc)
                return
            self._received(data, ancdata, addr[0])

    def _received(self, data: bytes, ancdata: list[tuple[int, int, bytes]], source: str) -> None:
        ttl = _ttl(ancdata)
        peer = _normal(source)
        if ttl != TTL:
            # RFC 5881 5: not from a direct neighbor (or spoofed from afar).
            self._drop(self._by_peer.get(peer), peer, f"TTL/hop limit {ttl}, not 255 (RFC 5881 5)")
            return
        try:
            pkt = decode(data)
        except BfdPacketError as exc:
            self._drop(self._by_peer.get(peer), peer, f"invalid packet: {exc.reason}")
            return
        if pkt.your_discr:
            session = self._by_discr.get(pkt.your_discr)
            if session is None:
                self._drop(None, peer, f"Your Discriminator {pkt.your_discr} is no session of ours")
                return
            if session.peer != peer:
                self._drop(session, peer, f"packet for this session from {peer}, not from the peer")
                return
        else:
            session = self._by_peer.get(peer)
            if session is None:
                self._drop(None, peer, "no BFD session is configured for this address")
                return
        if session.removing and self._sessions.get(session.key) is not session:
            return
        self._deliver(session, pkt)

    def _deliver(self, session: _Session, pkt: ControlPacket) -> None:
        machine = session.machine
        with self._lock:
            actions = machine.receive(pkt, self._now())
            if not any(isinstance(a, Discarded) for a in actions):
                session.received += 1
        self._execute(session, actions)
        if session.holding and machine.remote_state is BfdState.ADMIN_DOWN:
            # The peer turned BFD off for this session (RFC 5882 3.2): it no longer speaks for the path.
            with self._lock:
                session.holding = False
                status = self._snapshot(session)
            log.warning("BFD %s: the peer set the session AdminDown: BGP is no longer held down",
                        session.peer, extra=log_event("bfd_peer_admin_down"))
            self._notify(session.key, status)

    def _drop(self, session: _Session | None, peer: str, why: str) -> None:
        if session is not None:
            with self._lock:
                session.dropped += 1
            self._problem(session, f"packet dropped: {why}")
            return
        self.unmatched += 1
        ok, held = self._unmatched_log.allow()
        if ok:
            more = f" ({held} more not logged)" if held else ""
            log.info("BFD packet from %s dropped: %s%s", peer, why, more)

    # -- snapshots (under the lock) --------------------------------------------------------------

    def _snapshot(self, s: _Session) -> BfdStatus:
        m = s.machine
        return BfdStatus(
            state=m.state, remote_state=m.remote_state, local_diag=m.local_diag, remote_diag=m.remote_diag,
            local_discr=m.local_discr, remote_discr=m.remote_discr,
            tx_interval_ms=round(m.tx_interval * 1000), detect_time_ms=round(m.detect_time * 1000),
            remote_min_tx_ms=m.remote_min_tx_us // 1000, remote_min_rx_ms=m.remote_min_rx_us // 1000,
            remote_multiplier=m.remote_multiplier, configured=s.timers,
            auth=s.auth.kind if s.auth is not None else None, up_since=s.up_since,
            transitions=s.transitions, packets_sent=s.sent, packets_received=s.received,
            packets_dropped=s.dropped, last_down_reason=s.last_down_reason, passive=s.passive,
            holding_bgp=s.holding, transitions_to=dict(s.transitions_to))


def _ttl(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, value in ancdata:
        if ((level == socket.IPPROTO_IP and kind == socket.IP_TTL)
                or (level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT)) and len(value) >= 4:
            # a C int in host byte order
            return int.from_bytes(value[:4], sys.byteorder)
    return None
