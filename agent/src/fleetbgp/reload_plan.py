"""Reload as a value: `reconcile` compares the running configuration and routes with a new file and
returns a `ReloadPlan`; the daemon applies it (`Speaker.reload`), or only shows it
(`fleetbgp reload --dry-run`). Pure: no sockets, no peers, nothing changes while planning."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .config.model import Config, Neighbor
from .rib import RouteTable
from .transport import normalise_peer


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


@dataclass(frozen=True, slots=True)
class NeighborStep:
    address: str
    action: NeighborAction
    neighbor: Neighbor | None = field(default=None, compare=False, repr=False)  # None: REMOVE
    settings: tuple[str, ...] = ()   # RESTART: the config keywords that changed
    announce: int = 0                # UPDATE: routes announced or changed
    withdraw: int = 0                # UPDATE: routes withdrawn

    def summary(self) -> str | None:
        """The line the reload log and reply show (None: nothing to say)."""
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
        return out


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

    @property
    def listeners_change(self) -> bool:
        return self.listen_before != self.listen_after

    def summary(self) -> str:
        lines = [s for step in self.neighbors if (s := step.summary()) is not None]
        return "; ".join(lines) or "no change to sessions or routes"

    def as_dict(self) -> dict[str, Any]:
        return {
            "neighbors": [s.as_dict() for s in self.neighbors if s.action is not NeighborAction.KEEP],
            "unchanged_neighbors": sum(s.action is NeighborAction.KEEP for s in self.neighbors),
            "listen": {"before": [list(a) for a in self.listen_before],
                       "after": [list(a) for a in self.listen_after]},
            "processes": self.processes.as_dict(),
            "healthchecks": self.healthchecks.as_dict(),
        }


def reconcile(old: Config, new: Config, running: Mapping[str, RunningPeer], *,
              listen_override: Sequence[tuple[str, int]] | None = None) -> ReloadPlan:
    """What a reload from `old` to `new` does, given the running peers (keyed by normalised
    address). Neighbors removed come first, then the new file's neighbors in its order.
    `listen_override`: the agent's own listen setting, which wins over both files."""
    wanted = {normalise_peer(n.peer_address): n for n in new.neighbors}
    steps = [NeighborStep(address, NeighborAction.REMOVE) for address in running if address not in wanted]
    for address, neighbor in wanted.items():
        peer = running.get(address)
        if peer is None:
            steps.append(NeighborStep(address, NeighborAction.ADD, neighbor))
        elif peer.neighbor.settings_key() != neighbor.settings_key():
            steps.append(NeighborStep(address, NeighborAction.RESTART, neighbor,
                                      settings=tuple(peer.neighbor.changed_settings(neighbor))))
        else:
            announce, withdraw = route_delta(peer.static, peer.announced, neighbor.static_routes)
            action = NeighborAction.UPDATE if announce or withdraw else NeighborAction.KEEP
            steps.append(NeighborStep(address, action, neighbor, announce=announce, withdraw=withdraw))
    return ReloadPlan(
        config=new,
        neighbors=tuple(steps),
        listen_before=tuple(old.listen if listen_override is None else listen_override),
        listen_after=tuple(new.listen if listen_override is None else listen_override),
        processes=named_changes(old.processes, new.processes),
        healthchecks=named_changes(old.healthchecks, new.healthchecks),
    )


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
