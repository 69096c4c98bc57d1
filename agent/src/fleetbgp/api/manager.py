"""ApiManager: every configured API program, the events they subscribe to, the commands they send.

The daemon creates one `ApiManager(speaker, config)` and calls `start()`, `reload(config)`,
`stop()` and `status()`. Routes a program announces are owned by `process:NAME` in the speaker.

Each runner is built with `dispatch` as its process.Dispatch: one `match` over the command kinds,
scoped to the neighbors whose `api` lists the program.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, assert_never

from fleetbgp import __version__
from fleetbgp.config.model import Api, Config, MessageFlags, Neighbor, Process
from fleetbgp.events import Direction, EventKind, PeerEvent, SessionState
from fleetbgp.reload_plan import NamedChanges, named_changes
from fleetbgp.transport import normalise_peer
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.constants import CeaseSub
from fleetbgp.wire.fit import first_foreign_next_hop, first_oversized
from fleetbgp.wire.nlri import Family, family_name, nlri_to_prefix, path_id_text, split_key

from ..logutil import log_event
from .commands import (
    HELP,
    Announce,
    AnnounceInWatchdog,
    ClearAdjRib,
    Command,
    CommandError,
    Comment,
    DisableAck,
    EnableAck,
    FlushAdjRibOut,
    Help,
    MoveWatchdog,
    NeighborFilter,
    Reload,
    RequestRouteRefresh,
    Restart,
    SendEndOfRib,
    ShowAdjRib,
    ShowNeighbor,
    Shutdown,
    SilenceAck,
    Teardown,
    Version,
    Withdraw,
)
from .encoders import attributes_json, attributes_text
from .process import ProcessRunner

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fleetbgp.ports import ApiPeer, ApiSpeaker, PeerView
    from fleetbgp.settings import AgentSettings
    from fleetbgp.wire.fit import RouteTarget

log = logging.getLogger("fleetbgp.api")

_TRUE = ("1", "true", "yes", "on", "enable", "enabled")
_FALSE = ("0", "false", "no", "off", "disable", "disabled")

# PeerEvent.kind -> whether these MessageFlags subscribe to it
_MESSAGE_FLAG: dict[EventKind, Callable[[MessageFlags], bool]] = {
    EventKind.UPDATE: lambda f: f.update,
    EventKind.NOTIFICATION: lambda f: f.notification,
    EventKind.OPEN: lambda f: f.open,
    EventKind.KEEPALIVE: lambda f: f.keepalive,
    EventKind.REFRESH: lambda f: f.refresh,
}


def ack_default(settings: AgentSettings | None) -> bool:
    """The agent's setting (which reads ExaBGP's exabgp.api.ack too); without settings, the
    environment's exabgp.api.ack (also exabgp_api_ack) or FLEETBGP_API_ACK; default on."""
    if settings is not None:
        return settings.api_ack
    for name in ("fleetbgp_api_ack", "FLEETBGP_API_ACK", "exabgp.api.ack", "exabgp_api_ack"):
        raw = os.environ.get(name)
        if raw is None:
            continue
        text = raw.strip().strip("'\"").lower()
        if text in _FALSE:
            return False
        if text in _TRUE:
            return True
    return True


def _wants(api: Api, event: PeerEvent) -> bool:
    kind = event.kind
    if kind is EventKind.STATE:
        return api.neighbor_changes
    subscribed = _MESSAGE_FLAG.get(kind)
    if subscribed is None:
        return False
    flags: MessageFlags = api.receive if event.direction is Direction.RECEIVE else api.send
    if not subscribed(flags):
        return False
    # ExaBGP sends decoded messages with `parsed` (or `consolidate`); `packets` alone asks for raw
    # hex, which fleetbgp does not produce. A bare `update;` is taken as parsed.
    return flags.parsed or flags.consolidate or not flags.packets


class ApiManager:
    def __init__(self, speaker: ApiSpeaker, config: Config) -> None:
        self.speaker = speaker
        self.config = config
        self.default_ack = ack_default(speaker.settings)
        self.runners: dict[str, ProcessRunner] = {}
        self._subs: dict[str, tuple[int, list[tuple[ProcessRunner, Api]]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._families_ok: dict[Family, bool] = {}
        self._peers_of: dict[str, list[str] | None] = {}

    # -- lifecycle (called by the daemon) ----------------------------------------------------------

    async def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.speaker.subscribe(self._on_event)
        self._warn_unused(self.config)
        for name, definition in self.config.processes.items():
            runner = self.new_runner(definition)
            self.runners[name] = runner
            runner.start()
        self._mark_sent_reports()
        if self.runners:
            log.info("API: %d process(es) started: %s", len(self.runners), ", ".join(self.runners))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        runners = list(self.runners.values())
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    async def reload(self, config: Config, changes: NamedChanges | None = None) -> None:
        """New processes start, removed ones stop, changed ones restart, the others keep running.
        `changes`: the reload plan's (`reload_plan.reconcile`); None: worked out the same way."""
        if changes is None:
            changes = named_changes(self.config.processes, config.processes)
        self.config = config
        self.default_ack = ack_default(self.speaker.settings)
        for kept in self.runners.values():
            kept.default_ack = self.default_ack  # from their next start on
        self._subs.clear()
        self._families_ok.clear()
        self._peers_of.clear()
        self._warn_unused(config)
        for name in changes.removed:
            removed = self.runners.pop(name)
            log.info("API: process %s removed from the configuration: stopping it", name,
                     extra=log_event("api_process_removed"))
            await removed.stop()
            if removed.definition.withdraw_on_exit is not None:
                count = self.speaker.withdraw_owner(removed.owner)
                log.info("API: process %s: withdrew its %d route(s) (withdraw-on-exit)", name, count)
        for name in changes.added:
            log.info("API: process %s added: starting it", name, extra=log_event("api_process_added"))
            runner = self.runners[name] = self.new_runner(config.processes[name])
            runner.start()
        for name in changes.changed:
            log.info("API: process %s changed: restarting it", name, extra=log_event("api_process_changed"))
            await self.runners[name].restart(config.processes[name])
        self._mark_sent_reports()

    def new_runner(self, definition: Process) -> ProcessRunner:
        """A runner for `definition`, not started: its commands come back to `dispatch`."""
        return ProcessRunner(definition, self.dispatch, self.speaker, on_start=self.replay_state,
                             default_ack=self.default_ack)

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.runners.values()]

    def _warn_unused(self, config: Config) -> None:
        used = {name for n in config.neighbors for api in n.api for name in config.processes
                if name in api.processes or any(_match(p, name) for p in api.processes_match)}
        for name in config.processes:
            if name not in used:
                log.warning("API: process %s is listed by no neighbor's api { processes [ ... ] }: it "
                            "gets no messages and its routes reach no neighbor (as in ExaBGP)", name)

    # -- events to programs --------------------------------------------------------------------------

    def _subscribers(self, address: str, neighbor: Neighbor) -> list[tuple[ProcessRunner, Api]]:
        """The programs that hear about the peer at `address`, configured as `neighbor`."""
        cached = self._subs.get(address)
        if cached is not None and cached[0] == id(neighbor):
            return cached[1]
        wanted = dict(self.config.subscriptions(neighbor))
        for block in neighbor.api:  # `processes-match [ REGEX ... ]`: ExaBGP's re.match on the name
            for name in self.runners:
                if name in block.processes or not any(_match(p, name) for p in block.processes_match):
                    continue
                wanted[name] = _merge(wanted.get(name), block, self.runners[name].definition)
        subs = []
        for name, api in wanted.items():
            runner = self.runners.get(name)
            if runner is not None:
                subs.append((runner, api))
        self._subs[address] = (id(neighbor), subs)
        return subs

    def _mark_sent_reports(self) -> None:
        """Tell each peer whether a program wants the UPDATEs it sends (decoding them costs)."""
        for peer in self.speaker.peers.values():
            subscribers = self._subscribers(peer.address, peer.neighbor)
            peer.report_sent = any(api.send.update for _sub, api in subscribers)

    def _on_event(self, event: PeerEvent) -> None:
        for runner, api in self._subscribers(event.peer.address, event.peer.neighbor):
            if runner.state == "running" and _wants(api, event):
                runner.send(runner.encoder.event(event))

    def replay_state(self, runner: ProcessRunner) -> None:
        """A program just started: an `up` for every established session it follows."""
        for peer in list(self.speaker.peers.values()):
            if peer.established_since is None:
                continue
            for sub, api in self._subscribers(peer.address, peer.neighbor):
                if sub is runner and api.neighbor_changes:
                    runner.send(runner.encoder.event(PeerEvent(EventKind.STATE, peer.ref,
                                                               state=SessionState.UP)))

    # -- commands from programs -------------------------------------------------------------------------

    def _targets(self, selector: Sequence[NeighborFilter]) -> list[str] | None:
        """Peer addresses a selector names; None = every peer (no selector or `neighbor *`)."""
        if not selector:
            return None
        peers = self.speaker.peers
        out: list[str] = []
        for f in selector:
            if f.address == "*" and f.local_ip is None and f.local_as is None and f.peer_as is None \
                    and f.router_id is None and f.family is None:
                return None
            matched = [addr for addr, peer in peers.items() if _matches(f, addr, peer)]
            if not matched:
                raise CommandError(f"no configured neighbor matches '{f.describe()}'")
            out.extend(a for a in matched if a not in out)
        return out

    def _peers_listing(self, runner: ProcessRunner) -> list[str] | None:
        """The peers whose `api` lists this program (None: every peer does). As in ExaBGP, a
        program speaks only to those: its announcements and commands reach no other neighbor."""
        name = runner.name
        if name in self._peers_of:
            return self._peers_of[name]
        peers = self.speaker.peers
        listing = [addr for addr, peer in peers.items()
                   if any(sub.name == name for sub, _api in self._subscribers(addr, peer.neighbor))]
        found = None if len(listing) == len(peers) else listing
        self._peers_of[name] = found
        return found

    def _scoped(self, runner: ProcessRunner, selector: Sequence[NeighborFilter]) -> list[str] | None:
        """The peers a command of this program is for: those its selector names (all without
        one), among the peers that list the program."""
        own = self._peers_listing(runner)
        targets = self._targets(selector) if selector else None
        if own is None:
            return targets
        if targets is None:
            if not own:
                raise CommandError(f"no neighbor lists process {runner.name} in its api "
                                   "{ processes [ ... ] }: its routes and commands reach no neighbor "
                                   "(as in ExaBGP)")
            return own
        kept = [a for a in targets if a in own]
        if not kept:
            raise CommandError(f"the selected neighbor(s) {', '.join(targets)} do not list process "
                               f"{runner.name} in their api {{ processes [ ... ] }}")
        return kept

    def _check_family(self, family: Family, targets: list[str] | None) -> None:
        if targets is None:
            ok = self._families_ok.get(family)
            if ok is None:
                ok = any(family in p.neighbor.families for p in self.speaker.peers.values())
                self._families_ok[family] = ok
        else:
            ok = any(family in self.speaker.peers[a].neighbor.families for a in targets)
        if not ok:
            where = "no neighbor" if targets is None else "none of the selected neighbors"
            raise CommandError(f"{where} has the family {family_name(family)} configured")

    def _check_sizes(self, routes: Sequence[tuple[Family, bytes, Attributes | None]],
                     targets: list[str] | None) -> None:
        """Every route must fit in one UPDATE to the neighbors it is for, or none is announced."""
        def chosen() -> Iterator[RouteTarget]:
            return (p.neighbor for p in self.speaker.select(targets))

        found = first_oversized(routes, chosen)
        if found is None:
            # An IPv4 route with an IPv6 next hop reaches only neighbors with RFC 8950's extended
            # next hop: refused here rather than never sent.
            found = first_foreign_next_hop(routes, chosen)
        if found is not None:
            raise CommandError(found[2])

    def dispatch(self, runner: ProcessRunner, cmd: Command) -> Iterable[str] | None:
        """Carry out one command of `runner`'s program (process.Dispatch): None when done, or the
        lines to answer with. Raises CommandError. Route commands come first: one per line."""
        match cmd:
            case Announce():
                # the hot path, one call per route line of a burst: no helper call, attributes read
                # directly (a class pattern with keywords costs more than the whole arm's overhead)
                routes = cmd.routes
                targets = self._scoped(runner, cmd.selector)
                self._check_sizes(routes, targets)
                speaker = self.speaker
                owner = runner.owner
                tracking = runner.tracking
                track = runner.definition.withdraw_on_exit is not None
                checked: Family | None = None
                for family, nlri, attrs in routes:
                    if family is not checked:
                        self._check_family(family, targets)
                        checked = family
                    speaker.announce(family, nlri, attrs, owner=owner, neighbors=targets,
                                     track=track or family.safi == 133)
                    if tracking:
                        runner.touched(family, nlri)
            case Withdraw():  # the hot path too
                targets = self._scoped(runner, cmd.selector)
                owner = runner.owner
                withdraw = self.speaker.withdraw
                tracking = runner.tracking
                for family, nlri in cmd.routes:
                    withdraw(family, nlri, owner=owner, neighbors=targets)
                    if tracking:
                        runner.touched(family, nlri)
            case AnnounceInWatchdog(routes=routes, group=group, kept_back=kept_back, selector=selector):
                targets = self._scoped(runner, selector)
                self._check_sizes(routes, targets)
                self._check_family(routes[0][0], targets)
                for peer in self.speaker.select(targets):
                    for family, nlri, attrs in routes:
                        peer.join_watchdog(group, family, nlri, attrs, runner.owner, not kept_back)
                if not kept_back:
                    return self.dispatch(runner, Announce(routes, selector))
            case MoveWatchdog(group=group, announce=announce, selector=selector):
                moved = self.speaker.move_watchdog(group, announce, self._scoped(runner, selector))
                log.info("API: process %s: %s watchdog %s: %d route(s)", runner.name,
                         "announce" if announce else "withdraw", group, moved)
            case SendEndOfRib(family=family, selector=selector):
                targets = self._scoped(runner, selector)
                if family is not None:
                    self._check_family(family, targets)
                self.speaker.send_eor(targets, family)
            case RequestRouteRefresh(family=family, selector=selector):
                targets = self._scoped(runner, selector)
                if family is not None:
                    self._check_family(family, targets)
                self.speaker.route_refresh(targets, family)
            case FlushAdjRibOut(selector=selector):
                for peer in self.speaker.select(self._scoped(runner, selector)):
                    peer.resend()
            case ClearAdjRib(direction=direction, selector=selector):
                for peer in self.speaker.select(self._scoped(runner, selector)):
                    if direction == "out":
                        count = peer.retract_all()
                        log.warning("API: process %s cleared the adj-rib-out of %s: %d route(s) withdrawn",
                                    runner.name, peer.address, count,
                                    extra=log_event("api_adj_rib_out_cleared"))
                    else:
                        peer.rib_in.clear()
            case Teardown(code=code, selector=selector):
                count = 0
                for peer in self.speaker.select(self._scoped(runner, selector)):
                    if peer.teardown(code, teardown_message(code)):
                        log.warning("API: process %s tears down the session with %s (Cease subcode %d)",
                                    runner.name, peer.address, code, extra=log_event("api_teardown"))
                        count += 1
                if not count:
                    raise CommandError("no selected neighbor has an established session")
            case ShowNeighbor():
                return self._show_neighbor(cmd)
            case ShowAdjRib():
                return self._show_adj_rib(cmd)
            case Help():
                return HELP.splitlines()
            case Version():
                runner.queue.put(f"fleetbgp {__version__}")
            case Reload():
                runner.queue.put("reload in progress")
                self._spawn(self._reload(runner.name))
            case Restart():
                raise CommandError("'restart' is not supported: use 'reload' (sessions whose settings did "
                                   "not change are kept)")
            case Shutdown():
                runner.queue.put("shutdown in progress")
                log.warning("API: process %s asked the agent to shut down", runner.name,
                            extra=log_event("api_shutdown"))
                self.speaker.request_stop()
            case EnableAck():
                runner.enable_ack()
            case DisableAck():
                runner.disable_ack()
            case SilenceAck():
                runner.silence_ack()
            case Comment():
                pass
            case _:
                assert_never(cmd)
        return None

    async def _reload(self, name: str) -> None:
        log.info("API: process %s asked for a configuration reload", name, extra=log_event("api_reload"))
        await self.speaker.reload()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- show ---------------------------------------------------------------------------------------

    def _show_peers(self, target: str | None) -> list[ApiPeer]:
        peers = list(self.speaker.peers.values())
        if target is None:
            return peers
        try:
            key = normalise_peer(target)
        except ValueError:
            raise CommandError(f"{target!r} is not an IP address") from None
        found = [p for p in peers if p.address == key]
        if not found:
            raise CommandError(f"unknown neighbor {target}")
        return found

    def _show_neighbor(self, cmd: ShowNeighbor) -> Iterator[str]:
        peers = self._show_peers(cmd.target)
        opts = cmd.options
        if "json" in opts:
            yield json.dumps([neighbor_dict(p) for p in peers])
            return
        if "extensive" in opts:
            for p in peers:
                yield from neighbor_extensive(p).splitlines()
            return
        if "configuration" in opts:
            for p in peers:
                yield from neighbor_configuration(p).splitlines()
            return
        yield SUMMARY_HEADER
        for p in peers:
            yield neighbor_summary(p)

    def _show_adj_rib(self, cmd: ShowAdjRib) -> Iterator[str]:
        peers = self._show_peers(cmd.target)
        opts = cmd.options
        outgoing = "out" in opts
        as_json = "json" in opts
        extensive = "extensive" in opts
        for p in peers:
            routes = p.rib_out.routes if outgoing else p.rib_in.routes
            if as_json:
                chunk: list[dict[str, Any]] = []
                for fam, table in routes.items():
                    for nlri, attrs in table.items():
                        path_id, plain = split_key(nlri) if fam.safi == 1 else (None, nlri)
                        entry: dict[str, Any] = {"prefix": nlri_to_prefix(fam, plain),
                                                 "family": family_name(fam)}
                        if path_id is not None:
                            entry["path-information"] = path_id_text(path_id)  # ExaBGP's field
                        if attrs is not None:
                            entry["next-hop"] = attrs.next_hop
                            entry["attribute"] = json.loads("{" + attributes_json(attrs) + "}")
                        chunk.append(entry)
                        if len(chunk) >= 1000:
                            yield json.dumps({p.neighbor.peer_address: {"routes": chunk}})
                            chunk = []
                if chunk or not routes:
                    yield json.dumps({p.neighbor.peer_address: {"routes": chunk}})
                continue
            for fam, table in routes.items():
                name = family_name(fam)
                for nlri, attrs in table.items():
                    line = f"{p.neighbor.peer_address} {name} {nlri_to_prefix(fam, nlri)}"
                    if attrs is not None:
                        line += f" next-hop {attrs.next_hop or 'null'}"
                        if extensive:
                            line += attributes_text(attrs)
                    yield line


def teardown_message(subcode: int) -> str:
    """The RFC 9003 communication a teardown sends: for administrative shutdown and reset the
    subcode's name, as ExaBGP sends it ("Administrative Reset"); none for the other subcodes."""
    if subcode in (CeaseSub.ADMINISTRATIVE_SHUTDOWN, CeaseSub.ADMINISTRATIVE_RESET):
        return CeaseSub(subcode).name.replace("_", " ").title()
    return ""


def _match(pattern: str, name: str) -> bool:
    try:
        return re.match(pattern, name) is not None
    except re.error:
        return False


def _merge(prev: Api | None, block: Api, proc: Process) -> Api:
    """What a process matched by `processes-match` hears: the api block, the process's own flags,
    and what other api blocks already asked for it."""
    parts = [block] + ([prev] if prev is not None else [])
    receive = proc.receive
    send = proc.send
    for part in parts:
        receive = receive.union(part.receive)
        send = send.union(part.send)
    return Api(name=proc.name, processes=(proc.name,),
               neighbor_changes=proc.neighbor_changes or any(p.neighbor_changes for p in parts),
               negotiated=any(p.negotiated for p in parts), fsm=any(p.fsm for p in parts),
               signal=any(p.signal for p in parts), receive=receive, send=send)


def _matches(f: NeighborFilter, address: str, peer: PeerView) -> bool:
    n = peer.neighbor
    if f.address != "*":
        try:
            if normalise_peer(f.address) != address:
                return False
        except ValueError:
            return False
    if f.local_ip is not None and (n.local_address or "") != f.local_ip:
        return False
    if f.local_as is not None and n.local_as != f.local_as:
        return False
    if f.peer_as is not None and n.peer_as != f.peer_as:
        return False
    if f.router_id is not None and n.router_id != f.router_id:
        return False
    return f.family is None or f.family in n.families


# -- `show neighbor` renderings (ExaBGP's layout) ------------------------------------------------------

SUMMARY_HEADER = "Peer            AS        up/down state       |     #sent     #recvd"


def _duration(peer: PeerView) -> float:
    since = peer.established_since
    return time.time() - since if since else 0.0


def neighbor_summary(peer: PeerView) -> str:
    up = _duration(peer)
    when = str(timedelta(seconds=int(up))) if up else "down"
    state = str(peer.state).lower()
    sent = peer.stats.get("updates_out", 0)
    received = peer.stats.get("updates_in", 0)
    n = peer.neighbor
    return f"{n.peer_address:<15} {n.peer_as:<7} {when:>9} {state:<12} {sent:>10} {received:>10}"


def neighbor_dict(peer: PeerView) -> dict[str, Any]:
    n = peer.neighbor
    neg = peer.negotiated
    up = _duration(peer)
    families = {family_name(f): {"local": True, "peer": bool(neg and f in neg.families)} for f in n.families}
    return {
        "peer-address": n.peer_address,
        "local-address": peer.local_address or n.local_address,
        "state": "up" if peer.established_since is not None else "down",
        "fsm": str(peer.state),
        "duration": int(up),
        "local": {"as": n.local_as, "id": n.router_id, "hold": n.hold_time},
        "peer": {"as": n.peer_as, "id": neg.peer_router_id if neg else None,
                 "hold": neg.hold_time if neg else None},
        "families": families,
        "messages": dict(peer.stats),
        "adj-rib-out": {family_name(f): peer.rib_out.count(f) for f in n.families},
        "adj-rib-in": peer.rib_in.counts(),
        "last-error": peer.last_error,
    }


def neighbor_extensive(peer: PeerView) -> str:
    d = neighbor_dict(peer)
    n = peer.neighbor

    def row(label: str, local: Any, remote: Any = "") -> str:
        return f"   {label:<20} {local!s:>15} {remote!s:>15}"

    lines = [f"Neighbor {n.peer_address}", "", "    Session                       Local",
             row("local", d["local-address"] or "-"), row("state", d["fsm"]),
             row("up for" if d["state"] == "up" else "down for", str(timedelta(seconds=d["duration"]))),
             "", "    Setup                         Local          Remote",
             row("AS", n.local_as, n.peer_as), row("ID", n.router_id, d["peer"]["id"] or "-"),
             row("hold-time", n.hold_time, d["peer"]["hold"] or "-"),
             "", "    Families                      Local          Remote"]
    for name, f in d["families"].items():
        lines.append(row(name + ":", "yes", "yes" if f["peer"] else "no"))
    lines += ["", "    Message Statistic            Count"]
    for key, value in d["messages"].items():
        lines.append(row(key + ":", value))
    return "\n".join(lines) + "\n"


def neighbor_configuration(peer: PeerView) -> str:
    n = peer.neighbor
    lines = [f"neighbor {n.peer_address} {{", f"  router-id {n.router_id};"]
    if n.local_address:
        lines.append(f"  local-address {n.local_address};")
    lines += [f"  local-as {n.local_as};", f"  peer-as {n.peer_as};", f"  hold-time {n.hold_time};"]
    if n.passive:
        lines.append("  passive true;")
    lines.append("  family {")
    lines += [f"    {family_name(f)};" for f in n.families]
    lines += ["  }", "}"]
    return "\n".join(lines)
