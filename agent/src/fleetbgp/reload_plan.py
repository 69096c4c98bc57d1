"""Reload as a value: `reconcile` compares the running configuration and routes with a new file and
returns a `ReloadPlan`; the daemon applies it (`Speaker.reload`), or only shows it
(`fleetbgp reload --dry-run`). Pure: no sockets, no peers, nothing changes while planning.

The route plan: per neighbor, the routes the config file and the health checks own before and after
the reload (`owned_before`, `owned_after`), compared route by route (`neighbor_routes`). Routes of API
programs and control clients are not the file's: a reload leaves them as they are, so the plan
leaves them out. The health checks' routes come in as `PlannedCheck`s, made by the health runner
from each check's state (health/runner.py `planned_check`, the function its `sync` announces with).
A planned check that is not running yet is planned as if UP (`assumed_up`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .config.model import Config, Neighbor
from .grammar.communities import community_text, extended_community_text, large_community_text
from .grammar.route import as_path_text, origin_text
from .owner import CONFIG, Owner, OwnerKind
from .rib import RouteTable
from .transport import normalise_peer
from .wire.attributes import Attributes
from .wire.nlri import Family, family_name, nlri_to_prefix

RouteKey = tuple[Family, bytes]
OwnedRoutes = dict[RouteKey, tuple[Attributes, Owner]]  # what the file and the checks own, by route


class NeighborAction(enum.Enum):
    ADD = "add"            # a new neighbor: a new session
    REMOVE = "remove"      # gone from the file: Cease/Peer De-configured
    RESTART = "restart"    # a session setting changed: Cease/Other Configuration Change, new session
    UPDATE = "update"      # same session, only the route differences are sent
    KEEP = "keep"          # nothing to send


class RunningPeer(NamedTuple):
    """What the plan needs to know of a running peer (references, not copies)."""

    neighbor: Neighbor
    static: RouteTable     # the routes the running config put there
    announced: RouteTable  # the whole adj-rib-out (config, API, health, control routes)
    owners: Mapping[Family, Mapping[bytes, Owner]] = {}  # the tracked owners of the adj-rib-out


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    """What one health check of the new file will announce: its routes at the attributes its
    state gives (a check that is not running yet: as if UP, `assumed_up`)."""

    owner: Owner
    neighbors: tuple[str, ...] | None              # None: every neighbor
    routes: tuple[tuple[Family, bytes, Attributes], ...]  # IPs the state withdraws are left out
    assumed_up: bool = False


@dataclass(frozen=True, slots=True)
class RouteChanges:
    """One neighbor's route plan: announced (new), withdrawn, changed (old and new attributes)."""

    announce: tuple[tuple[RouteKey, Attributes, Owner], ...] = ()
    withdraw: tuple[tuple[RouteKey, Attributes, Owner], ...] = ()
    change: tuple[tuple[RouteKey, Attributes, Attributes, Owner], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw or self.change)

    def as_dict(self, assumed_up: frozenset[Owner] = frozenset()) -> dict[str, Any]:
        def entry(key: RouteKey, attrs: Attributes, owner: Owner) -> dict[str, Any]:
            out: dict[str, Any] = {"family": family_name(key[0]), "prefix": _prefix(key), "owner": str(owner),
                                   "attributes": attribute_fields(attrs)}
            if owner in assumed_up:
                out["assumed_up"] = True
            return out

        changed = []
        for key, old, new, owner in self.change:
            item = entry(key, new, owner)
            before, after = attribute_fields(old), item["attributes"]
            item["changes"] = {name: [before.get(name), after.get(name)]
                               for name in sorted(set(before) | set(after))
                               if before.get(name) != after.get(name)}
            changed.append(item)
        return {"announce": [entry(*r) for r in self.announce],
                "withdraw": [entry(*r) for r in self.withdraw],
                "change": changed}


@dataclass(frozen=True, slots=True)
class NeighborStep:
    address: str
    action: NeighborAction
    neighbor: Neighbor | None = field(default=None, compare=False, repr=False)  # None: REMOVE
    settings: tuple[str, ...] = ()   # RESTART: the config keywords that changed
    announce: int = 0                # UPDATE: routes announced or changed
    withdraw: int = 0                # UPDATE: routes withdrawn
    routes: RouteChanges = RouteChanges()  # the file's and the checks' routes, one by one
    # UPDATE/KEEP: the neighbor's `bfd` "added", "removed" or "changed" (never a BGP restart), or ""
    bfd: str = ""

    def summary(self) -> str | None:
        """The line the reload log and reply show (None: nothing to say)."""
        text = self._summary()
        if not self.bfd or self.action not in (NeighborAction.UPDATE, NeighborAction.KEEP):
            return text
        note = f"BFD {self.bfd} (the BGP session is kept)"
        return f"{text}; {note}" if text else f"neighbor {self.address}: {note}"

    def _summary(self) -> str | None:
        match self.action:
            case NeighborAction.ADD:
                return f"neighbor {self.address} added"
            case NeighborAction.REMOVE:
                return f"neighbor {self.address} removed"
            case NeighborAction.RESTART:
                return f"neighbor {self.address} restarted (session settings changed)"
            case NeighborAction.UPDATE:
                return (f"neighbor {self.address}: {self.announce} route(s) announced or changed, "
                        f"{self.withdraw} withdrawn")
        return None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"neighbor": self.address, "action": self.action.value}
        if self.action is NeighborAction.RESTART:
            out["settings"] = list(self.settings)
        if self.action is NeighborAction.UPDATE:
            out["announce"] = self.announce
            out["withdraw"] = self.withdraw
        if self.bfd:
            out["bfd"] = self.bfd
        return out

    def routes_dict(self, assumed_up: frozenset[Owner] = frozenset()) -> dict[str, Any]:
        return {"neighbor": self.address, "action": self.action.value, **self.routes.as_dict(assumed_up)}


@dataclass(frozen=True, slots=True)
class NamedChanges:
    """Processes or health checks, by name, as the subsystem's reload treats them."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    config: Config = field(compare=False, repr=False)
    neighbors: tuple[NeighborStep, ...]
    listen_before: tuple[tuple[str, int], ...]
    listen_after: tuple[tuple[str, int], ...]
    processes: NamedChanges
    healthchecks: NamedChanges
    assumed_up: frozenset[Owner] = frozenset()  # the checks planned as if UP (not running yet)
    routes_planned: bool = True                  # False: no health check view, config routes only
    # The routes the file and the checks own on any neighbor, before and after: which prefixes
    # this host stops or starts announcing at all (the collection's fleet-wide summary).
    owned_before: frozenset[RouteKey] = field(default=frozenset(), compare=False, repr=False)
    owned_after: frozenset[RouteKey] = field(default=frozenset(), compare=False, repr=False)

    @property
    def listeners_change(self) -> bool:
        return self.listen_before != self.listen_after

    def summary(self) -> str:
        lines = [s for step in self.neighbors if (s := step.summary()) is not None]
        return "; ".join(lines) or "no change to sessions or routes"

    def as_dict(self, *, routes: bool = False) -> dict[str, Any]:
        """The plan as JSON. `routes`: with the route lists and prefixes (a dry run asks for them;
        a real reload's reply leaves them out: a million routes are not worth a reply)."""
        out = {
            "neighbors": [s.as_dict() for s in self.neighbors
                          if s.action is not NeighborAction.KEEP or s.bfd],
            "unchanged_neighbors": sum(s.action is NeighborAction.KEEP and not s.bfd for s in self.neighbors),
            "listen": {"before": [list(a) for a in self.listen_before],
                       "after": [list(a) for a in self.listen_after]},
            "processes": self.processes.as_dict(),
            "healthchecks": self.healthchecks.as_dict(),
        }
        if routes:
            # Every neighbor of the new file and every removed one, even with nothing to send: a
            # fleet-wide summary needs to know who announces what.
            out["routes"] = [s.routes_dict(self.assumed_up) for s in self.neighbors]
            out["prefixes"] = {"before": sorted({_prefix(k) for k in self.owned_before}),
                               "after": sorted({_prefix(k) for k in self.owned_after})}
            out["assumed_up"] = sorted(o.name for o in self.assumed_up)
            out["routes_note"] = ROUTES_NOTE if self.routes_planned else ROUTES_NOTE_NO_CHECKS
        return out


ROUTES_NOTE = ("routes of the config file and of the health checks (at the attributes their state "
               "gives now; checks not running yet as if UP); routes of API programs and control "
               "clients are left as they are and not listed")
ROUTES_NOTE_NO_CHECKS = "routes of the config file only; API, control and health check routes are not listed"


def reconcile(old: Config, new: Config, running: Mapping[str, RunningPeer], *,
              listen_override: Sequence[tuple[str, int]] | None = None,
              checks: Mapping[str, PlannedCheck] | None = None, prefixes: bool = False) -> ReloadPlan:
    """What a reload from `old` to `new` does, given the running peers (keyed by normalised
    address). Neighbors removed come first, then the new file's neighbors in its order.
    `listen_override`: the agent's own listen setting, which wins over both files.
    `checks`: the new file's health checks as they will announce (None: leave the checks'
    routes out of the route plan, e.g. an agent without the health subsystem).
    `prefixes`: also collect every route the file and the checks own before and after, on any
    neighbor (a dry run's `prefixes`; a real reload does not need them)."""
    wanted = {normalise_peer(n.peer_address): n for n in new.neighbors}
    health = checks is not None
    checks = checks or {}
    all_before: set[RouteKey] = set()
    all_after: set[RouteKey] = set()
    steps = []
    for address, gone in running.items():
        if address not in wanted:
            routes = neighbor_routes(gone, None, address, checks, health=health)
            steps.append(NeighborStep(address, NeighborAction.REMOVE, routes=routes))
            if prefixes:
                all_before.update(owned_before(gone, health=health))
    for address, neighbor in wanted.items():
        peer = running.get(address)
        routes = neighbor_routes(peer, neighbor, address, checks, health=health)
        if prefixes:
            all_after.update(owned_after(address, neighbor, checks))
            if peer is not None:
                all_before.update(owned_before(peer, health=health))
        if peer is None:
            steps.append(NeighborStep(address, NeighborAction.ADD, neighbor, routes=routes))
        elif peer.neighbor.settings_key() != neighbor.settings_key():
            steps.append(NeighborStep(address, NeighborAction.RESTART, neighbor,
                                      settings=tuple(peer.neighbor.changed_settings(neighbor)),
                                      routes=routes))
        else:
            announce, withdraw = route_delta(peer.static, peer.announced, neighbor.static_routes)
            # The checks' changes count too: a MED changed in a healthcheck block is an update.
            announce = max(announce, len(routes.announce) + len(routes.change))
            withdraw = max(withdraw, len(routes.withdraw))
            action = NeighborAction.UPDATE if announce or withdraw else NeighborAction.KEEP
            before, after = peer.neighbor.bfd, neighbor.bfd
            bfd = "" if before == after else "added" if before is None else "removed" if after is None \
                else "changed"
            steps.append(NeighborStep(address, action, neighbor, announce=announce, withdraw=withdraw,
                                      routes=routes, bfd=bfd))
    return ReloadPlan(
        config=new,
        neighbors=tuple(steps),
        listen_before=tuple(old.listen if listen_override is None else listen_override),
        listen_after=tuple(new.listen if listen_override is None else listen_override),
        processes=named_changes(old.processes, new.processes),
        healthchecks=named_changes(old.healthchecks, new.healthchecks),
        assumed_up=frozenset(c.owner for c in checks.values() if c.assumed_up),
        routes_planned=health,
        owned_before=frozenset(all_before),
        owned_after=frozenset(all_after),
    )


def neighbor_routes(peer: RunningPeer | None, neighbor: Neighbor | None, address: str,
                    checks: Mapping[str, PlannedCheck], *, health: bool = True) -> RouteChanges:
    """One neighbor's route plan: before, the file's and the checks' routes on the running peer
    (None: a new neighbor); after, the new file's routes and the checks that select it (None: a
    removed neighbor); the checks win over the file on the same route, as in the agent.
    The checks' routes are few and compared as a whole; the file's routes, possibly a million,
    family by family without building anything for an unchanged route."""
    health_before = owned_before(peer, health=health, static=False) if peer is not None else {}
    health_after = owned_after(address, neighbor, checks, static=False) if neighbor is not None else {}
    old_static: Mapping[Family, Mapping[bytes, Attributes]] = peer.static if peer is not None else {}
    new_static: Mapping[Family, Mapping[bytes, Attributes]] = neighbor.static_routes if neighbor else {}
    announced: Mapping[Family, Mapping[bytes, Attributes]] = peer.announced if peer is not None else {}
    mixed = set(health_before) | set(health_after)  # routes a check owns before or after
    announce: list[tuple[RouteKey, Attributes, Owner]] = []
    withdraw: list[tuple[RouteKey, Attributes, Owner]] = []
    change: list[tuple[RouteKey, Attributes, Attributes, Owner]] = []
    for fam in set(old_static) | set(new_static):
        table = announced.get(fam, {})
        old = old_static.get(fam, {})
        new = new_static.get(fam, {})
        skip = {nlri for f, nlri in mixed if f == fam}
        for nlri, attrs in new.items():
            if nlri in skip:
                continue
            prev = table.get(nlri) if nlri in old else None
            if prev is None:
                announce.append(((fam, nlri), attrs, CONFIG))
            elif prev is not attrs and prev != attrs:
                change.append(((fam, nlri), prev, attrs, CONFIG))
        for nlri in old:
            if nlri not in new and nlri not in skip and (prev := table.get(nlri)) is not None:
                withdraw.append(((fam, nlri), prev, CONFIG))
    for key in mixed:  # a check's route before or after: compare the whole picture of that route
        fam, nlri = key
        before = health_before.get(key)
        on_wire = announced.get(fam, {}).get(nlri)
        if before is None and on_wire is not None and nlri in old_static.get(fam, {}):
            before = (on_wire, CONFIG)
        after = health_after.get(key)
        if after is None and (a := new_static.get(fam, {}).get(nlri)) is not None:
            after = (a, CONFIG)
        if before is None and after is not None:
            announce.append((key, *after))
        elif after is None and before is not None:
            withdraw.append((key, *before))
        elif before is not None and after is not None and before[0] is not after[0] and before[0] != after[0]:
            change.append((key, before[0], after[0], after[1]))
    return RouteChanges(tuple(sorted(announce, key=_first_order)), tuple(sorted(withdraw, key=_first_order)),
                        tuple(sorted(change, key=_first_order)))


def owned_before(peer: RunningPeer, *, health: bool = True, static: bool = True) -> OwnedRoutes:
    """The routes of a running peer that the file (`static`) and the health checks own, with the
    attributes on the wire now. Runtime owners (API, control) are not the file's business. Walks
    the file's and the tracked routes only: a million untracked API routes cost nothing here."""
    out: OwnedRoutes = {}
    if static:
        for fam, routes in peer.static.items():
            table = peer.announced.get(fam, {})
            for nlri in routes:
                attrs = table.get(nlri)
                if attrs is not None:  # not withdrawn since (clear adj-rib out)
                    out[(fam, nlri)] = (attrs, CONFIG)
    if health:
        for fam, owners in peer.owners.items():
            table = peer.announced.get(fam, {})
            for nlri, owner in owners.items():
                if owner.kind is OwnerKind.HEALTH and (attrs := table.get(nlri)) is not None:
                    out[(fam, nlri)] = (attrs, owner)
    return out


def owned_after(address: str, neighbor: Neighbor, checks: Mapping[str, PlannedCheck], *,
                static: bool = True) -> OwnedRoutes:
    """What the file and the checks will own on this neighbor: its static routes, then each check
    that selects it, for the neighbor's families (the checks win: the health runner puts its routes
    after the file's)."""
    out: OwnedRoutes = {}
    if static:
        out = {(fam, nlri): (attrs, CONFIG)
               for fam, table in neighbor.static_routes.items() for nlri, attrs in table.items()}
    for check in checks.values():
        if check.neighbors is not None and address not in {normalise_peer(n) for n in check.neighbors}:
            continue
        for fam, nlri, attrs in check.routes:
            if fam in neighbor.families:  # as PeerState.advertise: no route of a family it lacks
                out[(fam, nlri)] = (attrs, check.owner)
    return out


def _first_order(item: tuple[Any, ...]) -> tuple[int, int, bytes]:
    return _order(item[0])


def _order(key: RouteKey) -> tuple[int, int, bytes]:
    return (key[0].afi, key[0].safi, key[1])


def _prefix(key: RouteKey) -> str:
    try:
        return nlri_to_prefix(*key)
    except Exception:  # an NLRI with no prefix form (FlowSpec from the file): its bytes
        return key[1].hex()


def attribute_fields(attrs: Attributes) -> dict[str, Any]:
    """The attributes a person compares, in the config's words (`med`, `next-hop`, ...)."""
    out: dict[str, Any] = {}
    if attrs.next_hop is not None:
        out["next-hop"] = attrs.next_hop
    if attrs.origin:
        out["origin"] = origin_text(attrs.origin)
    if attrs.as_path:
        out["as-path"] = as_path_text(attrs.as_path)
    if attrs.med is not None:
        out["med"] = attrs.med
    if attrs.local_pref is not None:
        out["local-preference"] = attrs.local_pref
    if attrs.communities:
        out["community"] = " ".join(map(community_text, attrs.communities))
    if attrs.large_communities:
        out["large-community"] = " ".join(map(large_community_text, attrs.large_communities))
    if attrs.ext_communities:
        out["extended-community"] = " ".join(map(extended_community_text, attrs.ext_communities))
    if attrs.atomic_aggregate:
        out["atomic-aggregate"] = True
    if attrs.aggregator is not None:
        out["aggregator"] = f"{attrs.aggregator[0]}:{attrs.aggregator[1]}"
    return out


def route_delta(static: RouteTable, announced: RouteTable, desired: RouteTable) -> tuple[int, int]:
    """(announced or changed, withdrawn) when the static routes go from `static` to `desired`
    on a peer whose adj-rib-out is `announced`: the counts `Peer.set_static` reports. Attributes
    are interned, so an unchanged route is the same object."""
    announce = withdraw = 0
    for fam in set(static) | set(desired):
        table = announced.get(fam, {})
        new = desired.get(fam, {})
        withdraw += sum(1 for nlri in static.get(fam, {}) if nlri not in new and nlri in table)
        announce += sum(1 for nlri, attrs in new.items() if table.get(nlri) is not attrs)
    return announce, withdraw


def named_changes(old: Mapping[str, object], new: Mapping[str, object]) -> NamedChanges:
    """Processes or health checks by name: the rule their subsystems' reload follows."""
    return NamedChanges(
        added=tuple(n for n in new if n not in old),
        removed=tuple(n for n in old if n not in new),
        changed=tuple(n for n in new if n in old and old[n] != new[n]),
    )
