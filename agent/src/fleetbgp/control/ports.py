"""What the control commands use of the agent, as `typing.Protocol`s: the control-specific part
over the shared ports (fleetbgp/ports.py: peers read through PeerView, routes through a RouteSink).
The Speaker (daemon.py) fits them without importing this module. Read-only properties, so that a
plain attribute of a narrower type fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..ports import PeerView, RouteSink, StatusSource

if TYPE_CHECKING:
    from ..owner import Owner
    from ..reload_plan import ReloadPlan
    from ..settings import AgentSettings

__all__ = ["FlowRules", "PeerView", "ReloadOutcome", "SpeakerPort", "StatusSource"]


class ReloadOutcome(Protocol):
    @property
    def ok(self) -> bool:
        ...

    @property
    def summary(self) -> str:
        ...

    @property
    def errors(self) -> Sequence[str]:
        ...

    @property
    def plan(self) -> ReloadPlan | None:
        ...


class FlowRules(Protocol):
    """FlowSpec rules by name (flows.FlowManager)."""

    def add_rule(self, name: str, match: Mapping[str, Any], then: Mapping[str, Any], *,
                 family: str | None = None, neighbors: Sequence[str] | None = None,
                 expires_after: float | None = None, owner: Owner = ...) -> dict[str, Any]:
        ...

    def remove_rule(self, name: str) -> bool:
        ...

    def list(self) -> list[dict[str, Any]]:
        ...


class SpeakerPort(RouteSink, Protocol):
    """The Speaker, as the control commands use it."""

    @property
    def settings(self) -> AgentSettings:
        ...

    @property
    def maintenance(self) -> bool:
        ...

    @property
    def health(self) -> StatusSource | None:
        ...

    @property
    def api(self) -> StatusSource | None:
        ...

    @property
    def flows(self) -> FlowRules:
        ...

    def status(self) -> Mapping[str, Any]:
        ...  # JSON for the `status` reply

    def select(self, neighbors: Sequence[str] | None) -> Sequence[PeerView]:
        """The peers named (None: all); ValueError naming an unknown or malformed one."""

    def set_maintenance(self, on: bool) -> None:
        ...

    def request_restart(self, graceful: bool) -> Mapping[str, Any]:
        """Stop soon and exit with the restart status; graceful: keep graceful restart going
        (RFC 4724/8538). Returns what will happen, for the reply."""

    async def reload(self, *, dry_run: bool = False,
                     candidate: tuple[str, str, Mapping[str, str]] | None = None) -> ReloadOutcome:
        """Re-read the config (or plan `candidate`, (name, text, env), with dry_run). Serialised by the
        Speaker itself: callers take no lock."""
