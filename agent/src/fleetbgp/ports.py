"""The seams between the Speaker (daemon.py) and the subsystems around it, as `typing.Protocol`s:
each subsystem names what it uses, not the Speaker, so that it can be read, tested and changed on
its own. The Speaker and Peer (session.py) fit them without importing this module; daemon.py hands
itself to each subsystem through these types, so mypy checks the fit where the subsystems are made.

Peers are seen read-only (`PeerView`): properties, so that a plain attribute, a narrower type or a
frozen value fits. Route changes go through a `RouteSink`, by owner.

    control/    control.ports.SpeakerPort (RouteSink, select, status, reload, maintenance, ...)
    api/        ApiSpeaker (RouteSink, the session commands of ExaBGP's API, events)
    health/     HealthSpeaker (RouteSink, flushed)
    flows.py    FlowSpeaker (RouteSink, the peers and the config's named rules)
    metrics.py  MetricsSource (counters, the peers, health and API status)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .bfd.status import BfdStatus
    from .config.model import Config, Neighbor
    from .durations import DurationHistogram
    from .events import PeerEvent, PeerRef
    from .fsm import State
    from .owner import Owner
    from .settings import AgentSettings
    from .wire.attributes import Attributes
    from .wire.messages import Negotiated
    from .wire.nlri import Family

JsonObject = dict[str, Any]  # a JSON object: its values are any JSON


# -- peers, read ----------------------------------------------------------------------------------


class RibOutView(Protocol):
    """An adj-rib-out, read: routes by family, then by key (the NLRI, or the path id and the NLRI
    for an ADD-PATH family: those are `path_families`), and who put each there."""

    @property
    def routes(self) -> Mapping[Family, Mapping[bytes, Attributes]]:
        ...

    @property
    def path_families(self) -> Collection[Family]:
        ...

    def count(self, fam: Family) -> int:
        ...

    def owner_of(self, fam: Family, key: bytes) -> Owner | None:
        ...


class RibInView(Protocol):
    """An adj-rib-in, read: attributes are None unless the neighbor keeps them (`adj-rib-in`)."""

    @property
    def routes(self) -> Mapping[Family, Mapping[bytes, Attributes | None]]:
        ...

    @property
    def path_families(self) -> Collection[Family]:
        ...

    def counts(self) -> Mapping[str, int]:
        ...


class Addressed(Protocol):
    @property
    def address(self) -> str:
        """The peer's key in the Speaker: its address as the kernel reports it."""


class PeerView(Addressed, Protocol):
    """A peer as control, metrics, flows and the API's `show` commands read it."""

    @property
    def neighbor(self) -> Neighbor:
        ...

    @property
    def state(self) -> State:
        ...

    @property
    def established_since(self) -> float | None:
        """None while no session is established."""

    @property
    def negotiated(self) -> Negotiated | None:
        ...

    @property
    def local_address(self) -> str | None:
        """The session's own address; None without a session."""

    @property
    def last_error(self) -> str:
        ...

    @property
    def last_notification(self) -> Mapping[str, Any] | None:
        ...  # JSON for `neighbors`

    @property
    def stats(self) -> Mapping[str, int]:
        ...

    @property
    def notifications(self) -> Mapping[tuple[str, int, int], int]:
        """NOTIFICATIONs counted by (direction, code, subcode)."""

    @property
    def drain_mode(self) -> str | None:
        """Maintenance: None, or how routes are drained ("withdraw", ...)."""

    @property
    def send_queue_empty(self) -> bool:
        """Nothing waits to be sent to the peer or to be acknowledged by it (True without a session)."""

    @property
    def rib_out(self) -> RibOutView:
        ...

    @property
    def bfd(self) -> BfdStatus | None:
        """The neighbor's BFD session; None without `bfd` in its config."""

    @property
    def rib_in(self) -> RibInView:
        ...

    @property
    def update_seconds(self) -> Mapping[str, DurationHistogram]:
        """Each UPDATE's processing time, by direction ("received", "sent"; durations.py)."""


class StatusSource(Protocol):
    """The health checks or the API programs: one JSON object per check or program."""

    def status(self) -> Sequence[JsonObject]:
        ...


# -- routes, by owner ----------------------------------------------------------------------------


class RouteSink(Protocol):
    """Where routes go: the peers' adj-rib-outs, each route held by an owner. `neighbors` are peer
    addresses (None: every peer); a name no peer has raises ValueError. Returns how many peers
    changed."""

    def announce(self, fam: Family, nlri: bytes, attrs: Attributes, *, owner: Owner,
                 neighbors: Sequence[str] | None = None) -> int:
        ...

    def withdraw(self, fam: Family, nlri: bytes, *, owner: Owner | None = None,
                 neighbors: Sequence[str] | None = None) -> int:
        ...

    def withdraw_owner(self, owner: Owner, neighbors: Sequence[str] | None = None) -> int:
        ...

    def owned(self, owner: Owner) -> Mapping[str, Mapping[Family, Collection[bytes]]]:
        """The routes `owner` holds, by peer address (peers where it holds none left out)."""


# -- what each subsystem uses of the Speaker -------------------------------------------------------


class HealthSpeaker(RouteSink, Protocol):
    """What a health check uses (health/runner.py)."""

    def select(self, neighbors: Sequence[str] | None) -> Sequence[Addressed]:
        ...

    async def flushed(self, neighbors: Sequence[str] | None = None, timeout: float = 10.0) -> bool:
        """True once the selected peers have handed their pending changes to the kernel."""


class FlowSpeaker(RouteSink, Protocol):
    """What the FlowSpec rules use (flows.py)."""

    @property
    def peers(self) -> Mapping[str, PeerView]:
        ...

    @property
    def config(self) -> Config:
        ...

    @property
    def config_loaded_at(self) -> float:
        ...

    def select(self, neighbors: Sequence[str] | None) -> Sequence[PeerView]:
        ...


class MetricsSource(Protocol):
    """What a Prometheus scrape reads (metrics.py)."""

    @property
    def config(self) -> Config:
        ...

    @property
    def config_path(self) -> str:
        ...

    @property
    def config_sha256(self) -> str:
        ...

    @property
    def config_loaded_at(self) -> float:
        ...

    @property
    def reload_counts(self) -> Mapping[str, int]:
        ...

    @property
    def last_reload(self) -> Mapping[str, Any]:
        ...  # JSON: result, time, errors

    @property
    def maintenance(self) -> bool:
        ...

    @property
    def maintenance_since(self) -> float | None:
        ...  # Unix time maintenance was turned on; None while off

    @property
    def peers(self) -> Mapping[str, PeerView]:
        ...

    @property
    def health(self) -> StatusSource | None:
        ...

    @property
    def api(self) -> StatusSource | None:
        ...


class ClearableRibIn(RibInView, Protocol):
    def clear(self) -> None:
        ...


class ApiPeer(PeerView, Protocol):
    """A peer as ExaBGP's API commands act on it (api/manager.py)."""

    # Set by the API manager: whether a program wants the UPDATEs this peer sends.
    report_sent: bool

    @property
    def ref(self) -> PeerRef:
        """The peer as its events name it (for a state event the manager makes itself)."""

    @property
    def rib_in(self) -> ClearableRibIn:
        ...

    def join_watchdog(self, name: str, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                      announced: bool) -> None:
        ...

    def resend(self) -> bool:
        ...

    def retract_all(self) -> int:
        ...

    def teardown(self, subcode: int, message: str = "") -> bool:
        ...


class ApiSpeaker(RouteSink, Protocol):
    """What the API programs use (api/manager.py)."""

    @property
    def settings(self) -> AgentSettings:
        ...

    @property
    def peers(self) -> Mapping[str, ApiPeer]:
        ...

    def select(self, neighbors: Sequence[str] | None) -> Sequence[ApiPeer]:
        ...

    def subscribe(self, callback: Callable[[PeerEvent], None]) -> Callable[[], None]:
        """Events of every peer; returns the unsubscribe function."""

    def announce(self, fam: Family, nlri: bytes, attrs: Attributes, *, owner: Owner,
                 neighbors: Sequence[str] | None = None, track: bool = True) -> int:
        """track=False: the route is not remembered as `owner`'s (withdraw-on-exit off)."""

    def owned(self, owner: Owner) -> dict[str, dict[Family, set[bytes]]]:
        """As RouteSink.owned, copies the caller may keep and change (api.process.OwnedRoutes)."""

    def move_watchdog(self, name: str, announce: bool, neighbors: Sequence[str] | None = None) -> int:
        ...

    def send_eor(self, neighbors: Sequence[str] | None = None, family: Family | None = None) -> int:
        ...

    def route_refresh(self, neighbors: Sequence[str] | None = None, family: Family | None = None) -> int:
        ...

    def request_stop(self) -> None:
        ...

    async def reload(self) -> object:
        ...
