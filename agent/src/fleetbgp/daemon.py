"""The running agent: the Speaker owns the peers and is the one object every subsystem talks to
(API programs, health checks, the control socket, metrics). See docs/dev/agent-internals.md."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__
from .childenv import set_secret_values
from .config import ConfigError, load, parse_text
from .config.model import Config, Neighbor
from .events import EventKind, PeerEvent, SessionState
from .flows import FlowManager
from .literals import address_error
from .logsetup import config_secrets, set_secrets, setup_logging
from .logutil import log_event
from .owner import RUNTIME, Owner
from .reload_plan import NeighborAction, NeighborStep, ReloadPlan, RunningPeer, reconcile
from .session import Peer
from .systemd import notifier
from .transport import TransportError, listening_socket, md5_key, normalise_peer, set_md5
from .wire.attributes import Attributes
from .wire.constants import CeaseSub
from .wire.messages import Notification
from .wire.nlri import Family

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from .api import ApiManager
    from .bfd.runtime import BfdService
    from .bfd.status import BfdStatus
    from .config.model import BfdSettings
    from .control import ControlServer
    from .health import HealthManager
    from .metrics import Metrics
    from .settings import AgentSettings

log = logging.getLogger("fleetbgp")

# A reload or shutdown that takes longer than this is logged as stuck, not waited for forever.
STOP_TIMEOUT = 5.0
# `fleetbgp run` exits with this after `fleetbgp restart`: the unit's RestartForceExitStatus= and
# SuccessExitStatus= (roles/agent/templates/fleetbgp.service.j2) start it again at once, as a
# success. 75 is EX_TEMPFAIL (sysexits.h): "try again".
RESTART_EXIT_STATUS = 75
RESTART_REPLY_DELAY = 0.2  # seconds between a `restart` request and the stop


@dataclass(slots=True)
class ReloadResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    summary: str = ""
    plan: ReloadPlan | None = None  # None: the new file was refused
    sha256: str = ""


def file_sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class Speaker:
    def __init__(self, config: Config, settings: AgentSettings, *, config_sha256: str = "") -> None:
        self.config = config
        self.config_path = config.path
        self.config_sha256 = config_sha256
        self.config_loaded_at = time.time()
        self.settings = settings
        self.started_at = time.time()
        self.peers: dict[str, Peer] = {}
        self.listeners: list[socket.socket] = []
        self.last_reload: dict[str, Any] = {"result": None, "time": None, "errors": []}
        self.reload_counts = {"success": 0, "failure": 0}
        self.maintenance = False
        # When this process turned maintenance on (Unix time); None while off. A drain is not kept
        # across a restart of the agent, so neither is this.
        self.maintenance_since: float | None = None
        # The subsystems, made by _start_subsystems: each sees the Speaker through its port (ports.py).
        self.api: ApiManager | None = None
        self.health: HealthManager | None = None
        self.control: ControlServer | None = None
        self.metrics: Metrics | None = None
        self.flows = FlowManager(self)
        # BFD: made when a neighbor first has `bfd` (its own thread); what each session runs with.
        self.bfd: BfdService | None = None
        self._bfd_running: dict[str, tuple[BfdSettings, str | None]] = {}
        self._subscribers: list[Callable[[PeerEvent], None]] = []
        self._accept_tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        # `restart` asked for: None (a plain stop), or whether the stop is graceful (RFC 4724)
        self.restart_graceful: bool | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, dial: bool = True) -> None:
        """Create the peers and listen. With dial=False the peers wait for start_sessions(), so
        subsystems (API programs) can subscribe before the first session event."""
        for neighbor in self.config.neighbors:
            self._add_peer(neighbor, start=dial, restarting=True)
        self._sync_bfd()
        self._open_listeners()
        log.info("fleetbgp %s started: %d neighbor(s), %d static route(s)", __version__,
                 len(self.peers), sum(len(p.rib_out) for p in self.peers.values()),
                 extra=log_event("agent_started"))

    async def stop(self, message: str = "fleetbgp shutting down", *, graceful: bool = False) -> None:
        """Close every session: with Cease/Administrative Shutdown, which ends graceful restart
        (a Hard Reset around it where RFC 8538's N bit was negotiated), or, graceful=True, so that
        the peers with graceful restart keep our routes until we are back (PeerState.stop)."""
        self.flows.stop()
        for task in self._accept_tasks:
            task.cancel()
        for sock in self.listeners:
            sock.close()
        self.listeners.clear()
        note = Notification.shutdown(message)
        await asyncio.gather(*(p.stop(note, graceful=graceful) for p in self.peers.values()),
                             return_exceptions=True)
        self.peers.clear()
        if self.bfd is not None:
            # After BGP: AdminDown tells the peers' BFD that we stop on purpose (RFC 5882 3.2), so
            # their BGP sessions end with our Cease, not with a detection timeout.
            bfd, self.bfd = self.bfd, None
            self._bfd_running.clear()
            await asyncio.to_thread(bfd.stop)

    def request_stop(self) -> None:
        self._stopping.set()

    def request_restart(self, graceful: bool) -> dict[str, Any]:
        """`fleetbgp restart [--graceful]`: stop and exit with RESTART_EXIT_STATUS, which the unit
        restarts at once. Graceful: the sessions with graceful restart end without the Cease that
        would end it, and the new process says Restart State 1. Returns what will happen, per
        neighbor, for the reply and the log."""
        with_gr = [p.neighbor.peer_address for p in self.peers.values()
                   if p.neighbor.capabilities.graceful_restart is not None]
        without = [p.neighbor.peer_address for p in self.peers.values()
                   if p.neighbor.capabilities.graceful_restart is None]
        if graceful and not with_gr:
            note = "no neighbor has graceful-restart configured: every session ends with a Cease"
        elif graceful:
            note = (f"graceful restart for {len(with_gr)} neighbor(s)"
                    + (f"; {len(without)} without graceful-restart get a Cease" if without else ""))
        else:
            note = "a full restart: every session ends with a Cease (graceful restart ends)"
        log.warning("restart requested: %s", note, extra=log_event("restart_requested"))
        self.restart_graceful = graceful
        # A moment later, so that the control socket's reply is out before the control server stops.
        asyncio.get_running_loop().call_later(RESTART_REPLY_DELAY, self._stopping.set)
        return {"restarting": True, "graceful": graceful, "exit_status": RESTART_EXIT_STATUS,
                "graceful_neighbors": with_gr if graceful else [],
                "cease_neighbors": without if graceful else with_gr + without, "message": note}

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def start_sessions(self) -> None:
        for peer in self.peers.values():
            if not peer.running:
                peer.start()

    def _add_peer(self, neighbor: Neighbor, *, start: bool = True, restarting: bool = False) -> Peer:
        """restarting: the agent is starting (graceful restart's R bit); a reload adds peers
        without it."""
        peer = Peer(neighbor, on_event=self._dispatch, default_connect_port=self.settings.connect_port,
                    restarting=restarting, forwarding=self.settings.graceful_restart_forwarding)
        if self.maintenance:
            peer.set_drain(self.settings.maintenance_mode, self.settings.maintenance_metric)
        if self.bfd is not None:
            peer.bfd_lookup = self.bfd.status
            status = self.bfd.status(peer.address) if neighbor.bfd is not None else None
            if status is not None and status.holding_bgp:  # a reload restarted BGP while BFD is down
                peer.bfd_hold = status.last_down_reason or "BFD down"
        self.peers[peer.address] = peer
        if start:
            peer.start()
        return peer

    # -- BFD ---------------------------------------------------------------------------------------

    def _sync_bfd(self) -> None:
        """BFD sessions for the peers whose neighbor has `bfd`: added, changed (new timers: a poll
        sequence, never a BGP restart) and removed as the config says. Called at start and after
        every reload."""
        from .bfd.auth import AuthConfig
        from .bfd.machine import Timers
        from .bfd.runtime import BfdService

        wanted = {a: p.neighbor for a, p in self.peers.items() if p.neighbor.bfd is not None}
        if not wanted and self.bfd is None:
            return
        if self.bfd is None:
            self.bfd = BfdService(self._bfd_changed, asyncio.get_running_loop(),
                                  listen=self.settings.bfd_listen, port=self.settings.bfd_port)
            self.bfd.start()
            for each in self.peers.values():
                each.bfd_lookup = self.bfd.status
        bfd = self.bfd
        for key in [k for k in self._bfd_running if k not in wanted]:
            del self._bfd_running[key]
            bfd.remove(key)
            held = self.peers.get(key)
            if held is not None:
                held.release_bfd_hold("BFD removed from the configuration")
        for key, n in wanted.items():
            settings = n.bfd
            assert settings is not None
            timers = Timers(min_tx_ms=settings.min_tx_ms, min_rx_ms=settings.min_rx_ms,
                            multiplier=settings.multiplier)
            auth = None
            if settings.auth is not None and settings.auth_password is not None:
                auth = AuthConfig(kind=settings.auth, key_id=settings.auth_key_id,
                                  secret=settings.auth_password.reveal().encode())
            old = self._bfd_running.get(key)
            self._bfd_running[key] = (settings, n.local_address)
            if old is None:
                bfd.add(key, n.peer_address, n.local_address, timers, auth, settings.passive)
            elif old[1] != n.local_address or old[0].passive != settings.passive:
                bfd.remove(key)  # another source address or role: a new session
                bfd.add(key, n.peer_address, n.local_address, timers, auth, settings.passive)
            elif old[0] != settings:
                bfd.update(key, timers, auth)

    def _bfd_changed(self, key: str, status: BfdStatus) -> None:
        """A BFD state change (on this loop, from the BFD thread): hold BGP down or let it go."""
        peer = self.peers.get(key)
        if peer is None or peer.neighbor.bfd is None:
            return
        if status.holding_bgp:
            peer.hold_for_bfd(status.last_down_reason or "BFD down")
        elif peer.bfd_hold is not None:
            peer.release_bfd_hold("BFD is up again" if status.up else "the peer set BFD AdminDown")

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[PeerEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _dispatch(self, event: PeerEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on a %s event", callback, event.kind)
        if event.kind is EventKind.STATE and event.state in (SessionState.UP, SessionState.DOWN):
            self.notify_status()

    def status_line(self) -> str:
        up = sum(1 for p in self.peers.values() if p.established is not None)
        routes = sum(len(p.rib_out) for p in self.peers.values())
        text = f"{up}/{len(self.peers)} sessions established, {routes} routes in adj-rib-out"
        return text + (", maintenance on" if self.maintenance else "")

    def notify_status(self) -> None:
        notifier().status(self.status_line())

    # -- routes ------------------------------------------------------------------------------------

    def select(self, neighbors: Sequence[str] | None) -> list[Peer]:
        if neighbors is None:
            return list(self.peers.values())
        out = []
        for address in neighbors:
            try:
                key = normalise_peer(address)
            except ValueError:
                raise ValueError(address_error(address)) from None
            peer = self.peers.get(key)
            if peer is None:
                raise ValueError(f"unknown neighbor {address}")
            out.append(peer)
        return out

    def announce(self, fam: Family, nlri: bytes, attrs: Attributes, *, owner: Owner,
                 neighbors: Sequence[str] | None = None, track: bool = True) -> int:
        return sum(1 for p in self.select(neighbors) if p.advertise(fam, nlri, attrs, owner, track))

    def withdraw(self, fam: Family, nlri: bytes, *, owner: Owner | None = None,
                 neighbors: Sequence[str] | None = None) -> int:
        return sum(1 for p in self.select(neighbors) if p.retract(fam, nlri))

    def move_watchdog(self, name: str, announce: bool, neighbors: Sequence[str] | None = None) -> int:
        return sum(p.move_watchdog(name, announce) for p in self.select(neighbors))

    def withdraw_owner(self, owner: Owner, neighbors: Sequence[str] | None = None) -> int:
        return sum(p.retract_owner(owner) for p in self.select(neighbors))

    def owned(self, owner: Owner) -> dict[str, dict[Family, set[bytes]]]:
        return {a: t for a, p in self.peers.items() if (t := p.owned(owner))}

    def send_eor(self, neighbors: Sequence[str] | None = None, family: Family | None = None) -> int:
        families = None if family is None else (family,)
        return sum(1 for p in self.select(neighbors) if p.send_eor(families))

    def route_refresh(self, neighbors: Sequence[str] | None = None, family: Family | None = None) -> int:
        families = None if family is None else (family,)
        return sum(1 for p in self.select(neighbors) if p.request_refresh(families))

    async def flushed(self, neighbors: Sequence[str] | None = None, timeout: float = 10.0) -> bool:
        """True once every selected peer has handed its pending changes to the kernel."""
        peers = self.select(neighbors)
        results = await asyncio.gather(*(p.flushed(timeout) for p in peers))
        return all(results)

    def set_maintenance(self, on: bool) -> None:
        if on == self.maintenance:
            return
        self.maintenance = on
        self.maintenance_since = time.time() if on else None
        mode = self.settings.maintenance_mode if on else None
        for peer in self.peers.values():
            peer.set_drain(mode, self.settings.maintenance_metric)
        log.warning("maintenance %s (%s)", "on" if on else "off",
                    self.settings.maintenance_mode if on else "announcements restored",
                    extra=log_event("maintenance_on" if on else "maintenance_off"))
        self.notify_status()

    def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "uptime": time.time() - self.started_at,
            "config_path": self.config_path,
            "config_sha256": self.config_sha256,
            "config_loaded_at": self.config_loaded_at,
            "last_reload": dict(self.last_reload),
            "reloads": dict(self.reload_counts),
            "maintenance": self.maintenance,
            "maintenance_mode": self.settings.maintenance_mode,
            "neighbors": len(self.peers),
            "established": sum(1 for p in self.peers.values() if p.established is not None),
            "flows": self.flows.counts(),
            "bfd": self._bfd_summary(),
        }

    def _bfd_summary(self) -> dict[str, Any] | None:
        """For `status`: None without BFD in the config; else the sessions, how many are Up and
        hold BGP down, and where BFD listens (with the errors of a listener that failed)."""
        bfd = self.bfd
        if bfd is None:
            return None
        sessions = bfd.all_status().values()
        return {"sessions": len(sessions), "up": sum(1 for s in sessions if s.up),
                "holding_bgp": sum(1 for s in sessions if s.holding_bgp),
                "listening": [f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in bfd.listening],
                "errors": list(bfd.listen_errors)}

    # -- listening -------------------------------------------------------------------------------

    def _listen_addresses(self, config: Config) -> list[tuple[str, int]]:
        override = self.settings.listen
        return list(config.listen) if override is None else list(override)

    def _open_listeners(self) -> None:
        for address, port in self._listen_addresses(self.config):
            try:
                sock = listening_socket(address, port)
            except OSError as exc:
                log.warning("cannot listen on [%s]:%d: %s; incoming connections there will fail",
                            address, port, exc.strerror, extra=log_event("listen_failed"))
                continue
            self.listeners.append(sock)
            self._install_md5(sock)
            self._accept_tasks.append(asyncio.create_task(self._accept_loop(sock)))
            log.info("listening on [%s]:%d", address, port, extra=log_event("listening"))

    def _close_listeners(self) -> None:
        for task in self._accept_tasks:
            task.cancel()
        for sock in self.listeners:
            sock.close()
        self.listeners.clear()
        self._accept_tasks.clear()

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
                log.warning("connection from %s refused: not a configured neighbor", remote,
                            extra=log_event("connection_refused"))
                conn.close()
                continue
            conn.setblocking(False)
            peer.accept(conn)

    # -- reload -----------------------------------------------------------------------------------

    async def reload(self, *, dry_run: bool = False,
                     candidate: tuple[str, str, Mapping[str, str]] | None = None) -> ReloadResult:
        """Re-read the config and apply the plan `reconcile` makes of it. A bad file changes
        nothing. Unchanged neighbors keep their session and only get the route differences;
        changed ones restart; removed ones are shut down. dry_run: plan only, apply nothing.
        candidate: (file name, text, env) to plan instead of the config file (dry_run only); env:
        the secrets its env['NAME'] references read (the unit's env file after the change)."""
        if candidate is not None and not dry_run:
            raise ValueError("a candidate config can only be planned (dry_run), not applied")
        async with self._reload_lock:
            if dry_run:
                return self._plan_reload(dry_run=True, candidate=candidate)
            notifier().reloading("reloading the configuration")
            try:
                result = self._plan_reload(dry_run=False)
                if result.plan is not None:
                    await self._apply(result.plan, result.sha256)
                return result
            finally:
                notifier().ready(self.status_line())

    def _plan_reload(self, *, dry_run: bool,
                     candidate: tuple[str, str, Mapping[str, str]] | None = None) -> ReloadResult:
        path = self.config_path
        try:
            if candidate is not None:
                path, text, env = candidate
                sha = hashlib.sha256(text.encode()).hexdigest()
                with _environment(env):
                    new = parse_text(text, path)
            else:
                sha = file_sha256(path)
                new = load(path)
        except ConfigError as exc:
            return self._reload_failed(str(exc).splitlines(), dry_run)
        except OSError as exc:
            return self._reload_failed([f"{path}: {exc.strerror}"], dry_run)
        running = {address: RunningPeer(p.neighbor, p.rib_out.static, p.rib_out.routes, p.rib_out.owners)
                   for address, p in self.peers.items()}
        # The real reload plans the checks' routes too (the same code as the dry run): its log
        # line and reply then say what was really sent.
        checks = self.health.plan(new) if self.health is not None else None
        plan = reconcile(self.config, new, running, listen_override=self.settings.listen, checks=checks,
                         prefixes=dry_run)
        return ReloadResult(True, [], plan.summary(), plan=plan, sha256=sha)

    def _reload_failed(self, errors: list[str], dry_run: bool) -> ReloadResult:
        if dry_run:
            return ReloadResult(False, errors, "the new configuration is invalid: a reload would be refused")
        self.reload_counts["failure"] += 1
        self.last_reload = {"result": "failure", "time": time.time(), "errors": errors}
        log.error("reload refused, keeping the running configuration:\n%s", "\n".join(errors),
                  extra=log_event("config_reload_failed"))
        return ReloadResult(False, errors, "reload refused: the running configuration is unchanged")

    async def _apply(self, plan: ReloadPlan, sha256: str) -> None:
        new = plan.config
        for step in plan.neighbors:
            await self._apply_neighbor(step)
        set_secrets(config_secrets(new))
        set_secret_values(config_secrets(new))
        self.config = new
        self.config_sha256 = sha256
        self.config_loaded_at = time.time()
        self._sync_bfd()
        if plan.listeners_change:
            self._close_listeners()
            self._open_listeners()
        else:
            for sock in self.listeners:
                self._install_md5(sock)
        if self.api is not None:
            await self.api.reload(new, plan.processes)
        if self.health is not None:
            await self.health.reload(new, plan.healthchecks)
        self.flows.reapply()  # runtime FlowSpec rules reach neighbors added by this reload
        self.reload_counts["success"] += 1
        self.last_reload = {"result": "success", "time": time.time(), "errors": []}
        log.info("configuration reloaded from %s: %s", self.config_path, plan.summary(),
                 extra=log_event("config_reloaded"))

    async def _apply_neighbor(self, step: NeighborStep) -> None:
        match step.action:
            case NeighborAction.REMOVE:
                peer = self.peers.pop(step.address)
                await peer.stop(Notification(6, CeaseSub.PEER_DECONFIGURED))
            case NeighborAction.ADD:
                assert step.neighbor is not None
                self._add_peer(step.neighbor)
            case NeighborAction.RESTART:
                assert step.neighbor is not None
                peer = self.peers.pop(step.address)
                await peer.stop(Notification.shutdown("configuration changed",
                                                      CeaseSub.OTHER_CONFIGURATION_CHANGE))
                self._carry_runtime_routes(peer, self._add_peer(step.neighbor))
            case NeighborAction.UPDATE | NeighborAction.KEEP:
                assert step.neighbor is not None
                peer = self.peers[step.address]
                peer.neighbor = step.neighbor
                peer.rib_in.keep = step.neighbor.adj_rib_in
                peer.set_static(step.neighbor.static_routes)
                peer.set_watchdogs(step.neighbor.watchdogs)

    @staticmethod
    def _carry_runtime_routes(old: Peer, new: Peer) -> None:
        """Routes from API programs, health checks and the control socket survive a session
        restart caused by a reload: only the static routes come from the new file."""
        for fam, nlri, attrs, owner in list(old.rib_out.runtime_routes()):
            new.advertise(fam, nlri, attrs, owner or RUNTIME, track=owner is not None)


@contextlib.contextmanager
def _environment(extra: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `extra` over it, then as it was. The parser reads env['NAME'] from
    os.environ; this runs on the event loop with no await inside, so nothing else sees it."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_background: set[asyncio.Task[Any]] = set()


def _spawn(coro: Coroutine[Any, Any, object]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _start_subsystems(speaker: Speaker) -> None:
    from .api import ApiManager
    from .control import ControlServer
    from .health import HealthManager
    from .metrics import Metrics

    # Each subsystem takes the Speaker as its port (ports.py): mypy checks here that it fits.
    settings = speaker.settings
    speaker.control = ControlServer(speaker, settings)
    await speaker.control.start()
    if settings.metrics_enabled:
        speaker.metrics = Metrics(speaker, settings)
        speaker.metrics.start()
    speaker.api = ApiManager(speaker, speaker.config)
    await speaker.api.start()
    speaker.health = HealthManager(speaker, speaker.config)
    await speaker.health.start()


async def _stop_subsystems(speaker: Speaker) -> None:
    subsystems: tuple[tuple[str, HealthManager | ApiManager | ControlServer | None], ...] = (
        ("health", speaker.health), ("api", speaker.api), ("control", speaker.control))
    for name, subsystem in subsystems:
        if subsystem is not None:
            try:
                await asyncio.wait_for(subsystem.stop(), STOP_TIMEOUT)
            except Exception:
                log.exception("stopping %s failed", name)
    if speaker.metrics is not None:
        speaker.metrics.stop()


async def serve(config: Config, settings: AgentSettings, config_sha256: str = "") -> int:
    speaker = Speaker(config, settings, config_sha256=config_sha256)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, speaker.request_stop)
    for sig in (signal.SIGHUP, signal.SIGUSR1):  # SIGUSR1: ExaBGP's reload signal
        loop.add_signal_handler(sig, lambda: _spawn(speaker.reload()))
    systemd = notifier()
    await speaker.start(dial=False)
    try:
        await _start_subsystems(speaker)
    except OSError as exc:
        # The control socket is taken by another agent, or a port is in use: one clear line.
        log.error("cannot start: %s", exc, extra=log_event("start_failed"))
        failed = True
    except Exception:
        log.exception("cannot start", extra=log_event("start_failed"))
        failed = True
    else:
        failed = False
    if failed:
        await _stop_subsystems(speaker)
        await speaker.stop("fleetbgp failed to start")
        return 1
    speaker.start_sessions()
    systemd.ready(speaker.status_line())
    systemd.start_watchdog()
    await speaker.wait_stopped()
    graceful = speaker.restart_graceful
    systemd.stopping("restarting" if graceful is not None else "shutting down")
    log.info("%s", "shutting down" if graceful is None else
             f"restarting ({'graceful' if graceful else 'full'}): exit status {RESTART_EXIT_STATUS}",
             extra=log_event("agent_stopping"))
    # The routes stay in the adj-rib-out while subsystems stop: nothing is withdrawn on the way out.
    await _stop_subsystems(speaker)
    await speaker.stop("fleetbgp restarting" if graceful is not None else "fleetbgp shutting down",
                       graceful=bool(graceful))
    await systemd.stop_watchdog()
    return 0 if graceful is None else RESTART_EXIT_STATUS


def run(config_path: str, settings: AgentSettings) -> int:
    setup_logging(settings)
    try:
        sha = file_sha256(config_path)
        config = load(config_path)
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("%s: %s", config_path, exc.strerror)
        return 1
    set_secrets(config_secrets(config))
    set_secret_values(config_secrets(config))
    try:
        import uvloop  # type: ignore[import-not-found]
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    return int(runner(serve(config, settings, sha)))
