"""The ExaBGP-compatible config language: `load(path)` or `parse_text(text, filename)` -> Config.

Both raise ConfigError, which lists every problem found as `FILE:LINE:COL: message`.
"""

from __future__ import annotations

import os

from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.route import parse_attributes, parse_prefix, parse_route

from .errors import ConfigError, Diagnostic, Location
from .model import Api, Capabilities, Config, MessageFlags, Neighbor, Process, Secret
from .parser import parse_text

__all__ = [
    "Api",
    "Capabilities",
    "Config",
    "ConfigError",
    "Diagnostic",
    "Location",
    "MessageFlags",
    "Neighbor",
    "Process",
    "RouteError",
    "Secret",
    "load",
    "parse_attributes",
    "parse_prefix",
    "parse_route",
    "parse_text",
]


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse a config file. A file that cannot be read is a ConfigError too."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError([Diagnostic(name, 0, 0, f"cannot read the config file: {reason}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([Diagnostic(name, line, col, "the file is not valid UTF-8")]) from None
    return parse_text(text, name)
