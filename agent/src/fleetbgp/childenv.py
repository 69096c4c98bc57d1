"""The environment API programs, health-check commands and hooks start with: the agent's own,
minus the BGP MD5 passwords the unit hands the agent (they are for the agent's sockets, not for
every script it runs)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# Variables the Ansible role writes to /etc/fleetbgp/secrets.env.
_SECRET_PREFIX = "FLEETBGP_MD5_"
_secret_values: frozenset[str] = frozenset()


def set_secret_values(values: Iterable[str]) -> None:
    """The passwords of the running config; any variable holding one is kept from children."""
    global _secret_values
    _secret_values = frozenset(v for v in values if v)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SECRET_PREFIX) and v not in _secret_values}
    if extra:
        env.update(extra)
    return env
