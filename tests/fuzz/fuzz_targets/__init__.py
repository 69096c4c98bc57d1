"""The fuzz targets of fleet.bgp: one per parser of outside input (docs/dev/fuzzing.md)."""

from __future__ import annotations

from . import api, bfd, config, control, flowspec, health, wire
from .base import TARGETS, ContractViolation, Target

__all__ = ["TARGETS", "ContractViolation", "Target", "api", "bfd", "config", "control", "flowspec", "health",
           "wire"]
