"""Health checks with rise/fall hysteresis and a maintenance (disable) file.

Two front ends share one state machine (engine.py) and the checks (checks.py):
- runner.HealthManager: the agent's `healthcheck NAME { ... }` blocks, no child process;
- cli: `fleetbgp healthcheck ...`, a drop-in for ExaBGP's `exabgp healthcheck` API program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import HealthManager

__all__ = ["HealthManager"]


def __getattr__(name: str) -> type[HealthManager]:
    # Lazy: `fleetbgp healthcheck` (the program) does not need the agent's side.
    if name == "HealthManager":
        from .runner import HealthManager

        return HealthManager
    raise AttributeError(name)
