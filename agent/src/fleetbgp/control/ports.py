"""What the control commands use of the agent, as `typing.Protocol`s: the Speaker (daemon.py) fits
them, and so does a test's fake, without either importing this module. Read-only properties, so
that a plain attribute of a narrower type fits."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..owner import Owner
    from ..reload_plan import ReloadPlan
    from ..settings import AgentSettings
    from ..wire.attributes import Attributes
    from ..wire.fit import RouteTarget
    from ..wire.nlri import Family


class RouteTableView(Protocol):
    """An adj-rib-out or adj-rib-in, read: routes by family, then by key (the NLRI, or the path id
    and the NLRI for an ADD-PATH family: those are `path_families`)."""

    @property
    def routes(self) -> Mapping[Family, Mapping[bytes, Attributes | None]]: ...

    @property
    def path_families(self) -> Collection[Family]: ...


class PeerView(Protocol):
    """A peer as the `routes` query and the size check read it (views.py reads more of it)."""

    @property
    def address(self) -> str: ...

    @property
    def neighbor(self) -> RouteTarget: ...

    @property
    def rib_out(self) -> RouteTableView: ...

    @property
    def rib_in(self) -> RouteTableView: ...


class StatusSource(Protocol):
    """The health checks or the API programs: `status()` is a list of entries or a dict by name."""

    def status(self) -> Any: ...  # JSON: a list, or a dict of name -> entry (see commands._as_list)


class ReloadOutcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def summary(self) -> str: ...

    @property
    def errors(self) -> Sequence[str]: ...

    @property
    def plan(self) -> ReloadPlan | None: ...


class FlowRules(Protocol):
    """FlowSpec rules by name (flows.FlowManager)."""

    def add_rule(self, name: str, match: Mapping[str, Any], then: Mapping[str, Any], *,
                 family: str | None = None, neighbors: Sequence[str] | None = None,
                 expires_after: float | None = None, owner: Owner = ...) -> dict[str, Any]: ...

    def remove_rule(self, name: str) -> bool: ...

    def list(self) -> list[dict[str, Any]]: ...


class SpeakerPort(Protocol):
    """The Speaker, as the control commands use it."""

    @property
    def settings(self) -> AgentSettings: ...

    @property
    def maintenance(self) -> bool: ...

    @property
    def health(self) -> StatusSource | None: ...

    @property
    def api(self) -> StatusSource | None: ...

    @property
    def flows(self) -> FlowRules: ...

    def status(self) -> Mapping[str, Any]: ...  # JSON for the `status` reply

    def select(self, neighbors: Sequence[str] | None) -> Sequence[PeerView]:
        """The peers named (None: all); ValueError naming an unknown or malformed one."""
        ...

    def announce(self, fam: Family, nlri: bytes, attrs: Attributes, *, owner: Owner,
                 neighbors: Sequence[str] | None = None) -> int: ...

    def withdraw(self, fam: Family, nlri: bytes, *, owner: Owner | None = None,
                 neighbors: Sequence[str] | None = None) -> int: ...

    def withdraw_owner(self, owner: Owner, neighbors: Sequence[str] | None = None) -> int: ...

    def owned(self, owner: Owner) -> Mapping[str, Mapping[Family, Collection[bytes]]]: ...

    def set_maintenance(self, on: bool) -> None: ...

    async def reload(self, *, dry_run: bool = False) -> ReloadOutcome:
        """Re-read the config. Serialised by the Speaker itself: callers take no lock."""
        ...
