"""The running agent: loads the config, starts a Peer per neighbor, listens, reloads, shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

from .config import ConfigError, load
from .config.model import Config, Neighbor
from .session import Peer
from .transport import TransportError, listening_socket, md5_key, normalise_peer, set_md5
from .wire.constants import CeaseSub
from .wire.messages import Notification

log = logging.getLogger("fleetbgp")


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) what we are doing; a no-op outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(state.encode())


class Speaker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.peers: dict[str, Peer] = {}
        self.listeners: list[socket.socket] = []
        self._accept_tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.reloads = 0
        self.reload_failures = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        for neighbor in self.config.neighbors:
            self._add_peer(neighbor)
        self._open_listeners()
        log.info("fleetbgp started: %d neighbor(s), %d static route(s)", len(self.peers),
                 sum(len(p.rib_out) for p in self.peers.values()))

    async def stop(self, message: str = "fleetbgp shutting down") -> None:
        for task in self._accept_tasks:
            task.cancel()
        for sock in self.listeners:
            sock.close()
        self.listeners.clear()
        note = Notification.shutdown(message)
        await asyncio.gather(*(p.stop(note) for p in self.peers.values()), return_exceptions=True)
        self.peers.clear()

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def _add_peer(self, neighbor: Neighbor) -> Peer:
        peer = Peer(neighbor)
        self.peers[peer.address] = peer
        peer.start()
        return peer

    # -- listening -------------------------------------------------------------------------------

    def _open_listeners(self) -> None:
        for address, port in self.config.listen:
            try:
                sock = listening_socket(address, port)
            except OSError as exc:
                log.warning("cannot listen on [%s]:%d: %s; incoming connections there will fail",
                            address, port, exc.strerror)
                continue
            self.listeners.append(sock)
            self._install_md5(sock)
            self._accept_tasks.append(asyncio.create_task(self._accept_loop(sock)))
            log.info("listening on [%s]:%d", address, port)

    def _install_md5(self, sock: socket.socket) -> None:
        for peer in self.peers.values():
            n = peer.neighbor
            if n.md5_password is None:
                continue
            if (sock.family == socket.AF_INET6) != (":" in peer.address):
                continue
            try:
                set_md5(sock, peer.address, md5_key(n.md5_password.reveal(), n.md5_base64))
            except (TransportError, ValueError) as exc:
                log.error("peer %s: %s", peer.address, exc)

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except OSError as exc:
                log.error("accept failed: %s", exc)
                await asyncio.sleep(1)
                continue
            remote = normalise_peer(addr[0])
            peer = self.peers.get(remote)
            if peer is None:
                log.warning("connection from %s refused: not a configured neighbor", remote)
                conn.close()
                continue
            conn.setblocking(False)
            peer.accept(conn)

    # -- reload -----------------------------------------------------------------------------------

    async def reload(self, path: str) -> bool:
        """Re-read the config. A bad file changes nothing. Unchanged neighbors keep their session
        and only get the route differences; changed ones restart; removed ones are shut down."""
        sd_notify("RELOADING=1")
        try:
            try:
                new = load(path)
            except ConfigError as exc:
                self.reload_failures += 1
                log.error("reload refused, keeping the running configuration:\n%s", exc)
                return False
            except OSError as exc:
                self.reload_failures += 1
                log.error("reload refused, cannot read %s: %s", path, exc.strerror)
                return False
            wanted = {normalise_peer(n.peer_address): n for n in new.neighbors}
            for address in [a for a in self.peers if a not in wanted]:
                peer = self.peers.pop(address)
                log.info("neighbor %s removed from the configuration", address)
                await peer.stop(Notification(6, CeaseSub.PEER_DECONFIGURED))
            for address, neighbor in wanted.items():
                peer = self.peers.get(address)
                if peer is None:
                    log.info("neighbor %s added", address)
                    self._add_peer(neighbor)
                elif peer.neighbor.settings_key() != neighbor.settings_key():
                    log.info("neighbor %s: session settings changed, restarting the session", address)
                    self.peers.pop(address)
                    await peer.stop(Notification.shutdown("configuration changed",
                                                          CeaseSub.OTHER_CONFIGURATION_CHANGE))
                    self._add_peer(neighbor)
                else:
                    peer.neighbor = neighbor
                    changed, withdrawn = peer.set_static(neighbor.static_routes)
                    if changed or withdrawn:
                        log.info("neighbor %s: %d route(s) announced or changed, %d withdrawn",
                                 address, changed, withdrawn)
            listen_changed = new.listen != self.config.listen
            self.config = new
            if listen_changed:
                for task in self._accept_tasks:
                    task.cancel()
                for sock in self.listeners:
                    sock.close()
                self.listeners.clear()
                self._accept_tasks.clear()
                self._open_listeners()
            else:
                for sock in self.listeners:
                    self._install_md5(sock)
            self.reloads += 1
            log.info("configuration reloaded from %s", path)
            return True
        finally:
            sd_notify("READY=1")


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


async def _main(config: Config, path: str) -> int:
    speaker = Speaker(config)
    loop = asyncio.get_running_loop()
    reload_lock = asyncio.Lock()

    def reload_soon() -> None:
        async def go() -> None:
            async with reload_lock:
                await speaker.reload(path)
        task = loop.create_task(go())
        _background.add(task)
        task.add_done_callback(_background.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, speaker.request_stop)
    for sig in (signal.SIGHUP, signal.SIGUSR1):  # SIGUSR1: ExaBGP's reload signal
        loop.add_signal_handler(sig, reload_soon)
    await speaker.start()
    sd_notify("READY=1")
    await speaker.wait_stopped()
    sd_notify("STOPPING=1")
    log.info("shutting down")
    await speaker.stop()
    return 0


_background: set[asyncio.Task[Any]] = set()


def run(config_path: str, log_level: str = "info") -> int:
    setup_logging(log_level)
    try:
        config = load(config_path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{config_path}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        import uvloop  # type: ignore[import-not-found]
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    return int(runner(_main(config, config_path)))
