"""Prometheus metrics, served by the agent itself with prometheus_client (default 127.0.0.1:9101).

Nothing is counted on the hot path here: a custom collector reads the speaker's own counters
(peer.stats, peer.notifications, table sizes, reload counts, health and API status) when Prometheus
scrapes. The one thing counted per message, each UPDATE's processing time, is counted by the
session into a plain list of bucket counts (durations.py), copied here the same way. The HTTP
server runs in prometheus_client's thread; the speaker belongs to the event loop, so a scrape asks
the loop for a snapshot (a few dict reads per peer) and waits for it.

docs/agent/operations.md lists every metric with its type and labels.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import platform
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from . import __version__
from .config_file_watch import STATES as CONFIG_FILE_STATES
from .config_file_watch import ConfigFileWatch
from .durations import HistogramSnapshot
from .logutil import log_event
from .wire.nlri import family_name

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from .bfd.status import BfdStatus
    from .config.model import Config
    from .ports import MetricsSource
    from .settings import AgentSettings

log = logging.getLogger("fleetbgp.metrics")

SCRAPE_TIMEOUT = 5.0
SESSION_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
HEALTH_STATES = ("INIT", "DISABLED", "RISING", "FALLING", "UP", "DOWN", "EXIT", "END")


@dataclass(slots=True)
class PeerSnapshot:
    peer: str
    local_as: int
    peer_as: int
    state: str
    established_since: float | None
    stats: dict[str, int]
    notifications: dict[tuple[str, int, int], int]
    rib_out: dict[str, int]
    rib_in: dict[str, int]
    advertised: dict[str, int] = field(default_factory=dict)
    bfd: BfdStatus | None = None
    update_seconds: dict[str, HistogramSnapshot] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    peers: list[PeerSnapshot] = field(default_factory=list)
    reloads: dict[str, int] = field(default_factory=dict)
    last_reload: str | None = None
    config_path: str = ""
    config_sha256: str = ""
    config_loaded_at: float = 0.0
    maintenance: bool = False
    maintenance_since: float | None = None
    config_file: str | None = None  # config_file_watch.STATES; set off the event loop (collect)
    checks: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    config_routes: int | None = None
    routes_digest: str = ""


def take_snapshot(speaker: MetricsSource) -> Snapshot:
    """Everything a scrape needs, copied on the event loop thread: O(peers x families)."""
    snap = Snapshot(
        reloads=dict(speaker.reload_counts),
        last_reload=speaker.last_reload.get("result"),
        config_path=speaker.config_path,
        config_sha256=speaker.config_sha256,
        config_loaded_at=speaker.config_loaded_at,
        maintenance=speaker.maintenance,
        maintenance_since=speaker.maintenance_since,
    )
    config = speaker.config
    snap.config_routes = config.route_count()
    snap.routes_digest = routes_digest(config, snap.config_sha256)
    for peer in list(speaker.peers.values()):
        n = peer.neighbor
        families = list(n.families) + [f for f in peer.rib_out.routes if f not in n.families]
        rib_in = dict(peer.rib_in.counts())
        for fam in n.families:
            rib_in.setdefault(family_name(fam), 0)
        rib_out = {family_name(f): peer.rib_out.count(f) for f in families}
        # What the peer holds from us: nothing while the session is down or drained by withdrawal.
        sending = str(peer.state) == "Established" and peer.drain_mode != "withdraw"
        snap.peers.append(PeerSnapshot(
            peer=peer.address, local_as=n.local_as, peer_as=n.peer_as, state=str(peer.state),
            established_since=peer.established_since,
            stats=dict(peer.stats),
            notifications=dict(peer.notifications),
            rib_out=rib_out,
            rib_in=rib_in,
            advertised={fam: count if sending else 0 for fam, count in rib_out.items()},
            bfd=peer.bfd,  # a snapshot the BFD thread made: no waiting on it
            update_seconds={d: h.snapshot() for d, h in peer.update_seconds.items()},
        ))
    if speaker.health is not None:
        snap.checks = list(speaker.health.status())
    if speaker.api is not None:
        snap.processes = list(speaker.api.status())
    return snap


_DIGESTS: dict[str, str] = {}


def routes_digest(config: Config, key: str) -> str:
    """SHA-256 of what the config announces, whatever the host: the static routes (family, prefix,
    attributes; once, whichever neighbors carry them) and the health checks (name, addresses).
    Router ID, neighbor addresses and secrets are left out, so hosts of one anycast group agree.
    Cached per config file hash (one entry): computed once per load, not per scrape."""
    cached = _DIGESTS.get(key) if key else None
    if cached is not None:
        return cached
    lines: set[str] = set()
    for n in config.neighbors:
        for fam, routes in n.static_routes.items():
            for nlri, attrs in routes.items():
                # The attributes' value tuple: its repr is what digests of earlier versions hashed.
                lines.add(f"route {family_name(fam)} {nlri.hex()} {attrs._key!r}")
    for name, hc in config.healthchecks.items():
        lines.add(f"healthcheck {name} {sorted(hc.ips)!r}")
    digest = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    if key:
        _DIGESTS.clear()
        _DIGESTS[key] = digest
    return digest


class SpeakerCollector:
    """A prometheus_client collector over a live Speaker."""

    def __init__(self, speaker: MetricsSource, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.speaker = speaker
        self.loop = loop
        self.config_file = ConfigFileWatch()

    def snapshot(self) -> Snapshot:
        loop = self.loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            return take_snapshot(self.speaker)
        done: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def run() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(take_snapshot(self.speaker))
                except BaseException as exc:
                    done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        try:
            return done.result(timeout=SCRAPE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            done.cancel()
            raise TimeoutError(f"the event loop did not answer within {SCRAPE_TIMEOUT} s") from None

    def collect(self) -> Iterator[Metric]:
        try:
            snap = self.snapshot()
        except Exception:
            log.exception("metrics: cannot read the speaker's state")
            raise
        # File I/O here, in the HTTP server's thread: the event loop only copied the running hash.
        snap.config_file = self.config_file.state(snap.config_path, snap.config_sha256)
        yield from build_metrics(snap, time.time())


def build_metrics(snap: Snapshot, now: float) -> Iterable[Metric]:
    up = GaugeMetricFamily("fleetbgp_session_up", "1 if the BGP session is Established, else 0",
                           labels=["peer", "local_as", "peer_as"])
    state = GaugeMetricFamily("fleetbgp_session_state",
                              "BGP FSM state of the session, one series per state: 1 for the current",
                              labels=["peer", "state"])
    flaps = CounterMetricFamily("fleetbgp_session_flaps", "Established sessions that went down",
                                labels=["peer"])
    est_count = CounterMetricFamily("fleetbgp_session_established",
                                    "Times the session reached Established", labels=["peer"])
    since = GaugeMetricFamily("fleetbgp_session_established_timestamp_seconds",
                              "Unix time the session was established; 0 while not established",
                              labels=["peer"])
    announced = CounterMetricFamily("fleetbgp_routes_announced",
                                    "Routes sent to the peer in UPDATE announcements", labels=["peer"])
    withdrawn = CounterMetricFamily("fleetbgp_routes_withdrawn",
                                    "Routes sent to the peer as withdrawals", labels=["peer"])
    rib_out = GaugeMetricFamily("fleetbgp_adj_rib_out_routes",
                                "Routes in the adj-rib-out (what the agent announces to the peer)",
                                labels=["peer", "family"])
    rib_in = GaugeMetricFamily("fleetbgp_adj_rib_in_routes", "Routes received from the peer",
                               labels=["peer", "family"])
    advertised = GaugeMetricFamily("fleetbgp_routes_advertised",
                                   "Routes the peer holds from the agent now: the adj-rib-out while "
                                   "Established and not drained by withdrawal, else 0",
                                   labels=["peer", "family"])
    notifications = CounterMetricFamily("fleetbgp_notifications",
                                        "NOTIFICATION messages sent and received",
                                        labels=["peer", "direction", "code", "subcode"])
    updates = CounterMetricFamily("fleetbgp_update_messages", "UPDATE messages sent and received",
                                  labels=["peer", "direction"])
    messages = CounterMetricFamily("fleetbgp_messages", "BGP messages of any type sent and received",
                                   labels=["peer", "direction"])
    for p in snap.peers:
        established = p.state == "Established"
        up.add_metric([p.peer, str(p.local_as), str(p.peer_as)], 1.0 if established else 0.0)
        states: tuple[str, ...] = SESSION_STATES if p.state in SESSION_STATES else (*SESSION_STATES, p.state)
        for s in states:
            state.add_metric([p.peer, s], 1.0 if s == p.state else 0.0)
        flaps.add_metric([p.peer], p.stats.get("flaps", 0))
        est_count.add_metric([p.peer], p.stats.get("established_count", 0))
        since.add_metric([p.peer], p.established_since if established and p.established_since else 0.0)
        announced.add_metric([p.peer], p.stats.get("routes_announced", 0))
        withdrawn.add_metric([p.peer], p.stats.get("routes_withdrawn", 0))
        for fam, count in p.rib_out.items():
            rib_out.add_metric([p.peer, fam], count)
        for fam, count in p.rib_in.items():
            rib_in.add_metric([p.peer, fam], count)
        for fam, count in p.advertised.items():
            advertised.add_metric([p.peer, fam], count)
        for (direction, code, subcode), count in sorted(p.notifications.items()):
            notifications.add_metric([p.peer, direction, str(code), str(subcode)], count)
        updates.add_metric([p.peer, "received"], p.stats.get("updates_in", 0))
        updates.add_metric([p.peer, "sent"], p.stats.get("updates_out", 0))
        messages.add_metric([p.peer, "received"], p.stats.get("messages_in", 0))
        messages.add_metric([p.peer, "sent"], p.stats.get("messages_out", 0))
    yield from (up, state, flaps, est_count, since, announced, withdrawn, rib_out, rib_in, advertised,
                notifications, updates, messages)
    yield from bfd_metrics(snap)
    yield from update_time_metrics(snap)

    hc_state = GaugeMetricFamily("fleetbgp_healthcheck_state",
                                 "Health check state, one series per state: 1 for the current",
                                 labels=["check", "state"])
    hc_transitions = CounterMetricFamily("fleetbgp_healthcheck_transitions",
                                         "Health check state changes", labels=["check"])
    for check in snap.checks:
        name = str(check.get("name", ""))
        current = str(check.get("state", "")).upper()
        states = HEALTH_STATES if current in HEALTH_STATES or not current else (*HEALTH_STATES, current)
        for s in states:
            hc_state.add_metric([name, s], 1.0 if s == current else 0.0)
        hc_transitions.add_metric([name], _number(check.get("transitions")))
    yield hc_state
    yield hc_transitions

    restarts = CounterMetricFamily("fleetbgp_api_process_restarts",
                                   "Times an API program was started again after it exited",
                                   labels=["process"])
    for proc in snap.processes:
        restarts.add_metric([str(proc.get("name", ""))], _number(proc.get("restarts")))
    yield restarts

    reloads = CounterMetricFamily("fleetbgp_config_reloads", "Configuration reloads by result",
                                  labels=["result"])
    for result in sorted({"success", "failure", *snap.reloads}):
        reloads.add_metric([result], snap.reloads.get(result, 0))
    yield reloads
    yield GaugeMetricFamily("fleetbgp_config_last_reload_successful",
                            "0 if the last reload was refused (the previous config still runs), else 1",
                            value=0.0 if snap.last_reload == "failure" else 1.0)
    yield GaugeMetricFamily("fleetbgp_config_loaded_timestamp_seconds",
                            "Unix time the running configuration was loaded", value=snap.config_loaded_at)
    info = InfoMetricFamily("fleetbgp_config", "The running configuration file and its SHA-256")
    info.add_metric([], {"path": snap.config_path, "sha256": snap.config_sha256})
    yield info
    if snap.config_routes is not None:
        yield GaugeMetricFamily("fleetbgp_config_routes", "Static routes in the running configuration",
                                value=snap.config_routes)
        digest = InfoMetricFamily("fleetbgp_config_routes_digest",
                                  "SHA-256 of what the configuration announces (static routes and "
                                  "health check addresses; no router ID, neighbors or secrets): equal "
                                  "on hosts meant to announce the same")
        digest.add_metric([], {"sha256": snap.routes_digest})
        yield digest
    build = InfoMetricFamily("fleetbgp_build", "fleetbgp version and Python version")
    build.add_metric([], {"version": __version__, "python": platform.python_version()})
    yield build
    yield GaugeMetricFamily("fleetbgp_maintenance", "1 while maintenance (drain) is on",
                            value=1.0 if snap.maintenance else 0.0)
    yield from drift_metrics(snap)


def drift_metrics(snap: Snapshot) -> Iterable[Metric]:
    """What alerts on a host left in an unintended state read: a drain since when (a rule
    `for: 4h` would start again at every restart of Prometheus or missed scrape; this time does
    not), and whether the config file on disk is the one that runs."""
    since = snap.maintenance_since if snap.maintenance and snap.maintenance_since else 0.0
    yield GaugeMetricFamily("fleetbgp_maintenance_since_timestamp_seconds",
                            "Unix time maintenance (drain) was turned on; 0 while it is off", value=since)
    state = GaugeMetricFamily("fleetbgp_config_file_state",
                              "The config file on disk against the running configuration, one series "
                              "per state (same, differs, missing, unreadable): 1 for the current",
                              labels=["state"])
    if snap.config_file is not None:
        for s in CONFIG_FILE_STATES:
            state.add_metric([s], 1.0 if s == snap.config_file else 0.0)
    yield state


# BFD states as numbers (RFC 5880 4.1's State field) for fleetbgp_bfd_session_state
BFD_STATES = ("AdminDown", "Down", "Init", "Up")


def bfd_metrics(snap: Snapshot) -> Iterable[Metric]:
    """The neighbors with `bfd` (docs/agent/bfd.md)."""
    state = GaugeMetricFamily("fleetbgp_bfd_session_state",
                              "BFD session state: 0 AdminDown, 1 Down, 2 Init, 3 Up", labels=["neighbor"])
    up = GaugeMetricFamily("fleetbgp_bfd_session_up", "1 if the BFD session is Up, else 0",
                           labels=["neighbor"])
    transitions = CounterMetricFamily("fleetbgp_bfd_transitions", "BFD state changes, by the new state",
                                      labels=["neighbor", "to"])
    packets = CounterMetricFamily("fleetbgp_bfd_packets",
                                  "BFD control packets sent, received (valid) and dropped (TTL, "
                                  "authentication, malformed)", labels=["neighbor", "direction"])
    detect = GaugeMetricFamily("fleetbgp_bfd_detect_time_seconds",
                               "Negotiated BFD detection time (0 until the peer was heard)",
                               labels=["neighbor"])
    held = GaugeMetricFamily("fleetbgp_bfd_holding_bgp",
                             "1 while BFD holds the BGP session down (Down after Up), else 0",
                             labels=["neighbor"])
    for p in snap.peers:
        b = p.bfd
        if b is None:
            continue
        name = str(b.state)
        state.add_metric([p.peer], float(BFD_STATES.index(name)) if name in BFD_STATES else -1.0)
        up.add_metric([p.peer], 1.0 if name == "Up" else 0.0)
        for to in BFD_STATES:
            transitions.add_metric([p.peer, to], b.transitions_to.get(to, 0))
        packets.add_metric([p.peer, "sent"], b.packets_sent)
        packets.add_metric([p.peer, "received"], b.packets_received)
        packets.add_metric([p.peer, "dropped"], b.packets_dropped)
        detect.add_metric([p.peer], b.detect_time_ms / 1000)
        held.add_metric([p.peer], 1.0 if b.holding_bgp else 0.0)
    yield from (state, up, transitions, packets, detect, held)


def update_time_metrics(snap: Snapshot) -> Iterable[Metric]:
    """Each UPDATE's processing time, by peer and direction (durations.py says what is timed)."""
    seconds = HistogramMetricFamily("fleetbgp_update_processing_seconds",
                                    "Time to process one UPDATE: received, decoded and applied to the "
                                    "adj-rib-in; sent, encoded and handed to the transport",
                                    labels=["peer", "direction"])
    for p in snap.peers:
        for direction, hist in sorted(p.update_seconds.items()):
            seconds.add_metric([p.peer, direction], hist.cumulative(), hist.total)
    yield seconds


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Metrics:
    """Serves /metrics for a Speaker. `start()` from the event loop thread; `stop()` anywhere."""

    def __init__(self, speaker: MetricsSource, settings: AgentSettings) -> None:
        self.speaker = speaker
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SpeakerCollector(speaker)
        self.registry.register(self.collector)
        try:
            ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, ... (Linux)
        except Exception:  # pragma: no cover - no /proc
            pass
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> bool:
        """Serve on the configured address. A port in use is logged, not fatal: BGP matters more
        than metrics. Returns whether the server runs."""
        port = self.settings.metrics_port
        if port is None:
            return False
        self.collector.loop = _running_loop()
        host = self.settings.metrics_address
        try:
            started = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("cannot serve metrics on %s: %s; metrics are off", _url(host, port),
                      exc.strerror or exc, extra=log_event("metrics_failed"))
            return False
        # prometheus_client >= 0.20 returns (server, thread); older ones nothing (cannot stop).
        if started:
            self._server, self._thread = started
        self.address = (host, self._server.server_address[1] if self._server else port)
        log.info("metrics on http://%s/metrics", _url(host, self.address[1]),
                 extra=log_event("metrics_listening"))
        return True

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


def _url(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
