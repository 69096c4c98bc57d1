"""The config language: what `fleetbgp run`, `validate` and a reload read."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable

from fleetbgp.config import Config, ConfigError, load, parse_text
from fleetbgp.session import Peer

from .base import require, target
from .sending import sends_everything

_DIR = tempfile.mkdtemp(prefix="fleetbgp-fuzz-")
atexit.register(shutil.rmtree, _DIR, True)
_PATH = os.path.join(_DIR, "fleetbgp.conf")

CONFIG_WORDS = tuple(w.encode() for w in (
    "neighbor", "template", "inherit", "process", "run", "encoder", "json", "text", "local-as", "peer-as",
    "router-id", "local-address", "hold-time", "family", "ipv4", "ipv6", "unicast", "flow", "static",
    "route", "next-hop", "self", "med", "local-preference", "community", "extended-community",
    "large-community", "as-path", "aggregator", "atomic-aggregate", "origin", "igp", "api",
    "processes", "receive", "send", "md5-password", "listen", "passive", "healthcheck", "ip",
    "interval", "rise", "fall", "withdraw-on-down", "match", "then", "destination", "source",
    "destination-port", "protocol", "discard", "rate-limit", "redirect", "mark", "{", "}", ";", "[",
    "]", "(", ")", "#", "'", '"', "\n", "\\", "10.0.0.0/24", "2001:db8::/64", "01.2.3.4",
    "010.0.0.0/8", "\u00b2", "9" * 5000, "4294967296", "65001:1.2.3.4", "target:1:2", "1:2:3",
    "origin:9000:9.9.9.9", "=80", ">1024&<2000", "tcp", "0.0.0.0", "224.0.0.1", "::",
    "bfd", "min-tx", "min-rx", "multiplier", "auth", "auth-key-id", "auth-password", "keyed-sha1",
    "meticulous-keyed-md5", "simple", "disable", "env['BFD_KEY']", "60001",
))


@target("config", max_len=16384, dictionary=CONFIG_WORDS, contract="""
    The input is a config file, read by load() as `fleetbgp run`, `validate` and a reload read it
    (bytes that are not UTF-8 are a ConfigError at their place; parse_text then also gets the text
    with them replaced, so the parser still sees them). The answer is a Config or a ConfigError
    whose every diagnostic names the file, a line and a column. What it accepts goes on the wire:
    every neighbor's static routes encode into UPDATEs no larger than the message size, with no
    route dropped.""")
def config(data: bytes) -> None:
    with open(_PATH, "wb") as fh:
        fh.write(data)
    _answer(lambda: load(_PATH), _PATH)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        _answer(lambda: parse_text(data.decode("utf-8", "replace"), _PATH), _PATH)


def _answer(parse: Callable[[], Config], path: str) -> None:
    try:
        result = parse()
    except ConfigError as exc:
        require(exc.diagnostics, "ConfigError without a diagnostic")
        for d in exc.diagnostics:
            require(d.file == path and d.line >= 1 and d.col >= 1 and d.message,
                    f"diagnostic without a place: {d!r}")
        return
    require(isinstance(result, Config), f"the parser returned {type(result).__name__}")
    _encodes(result)


def _encodes(conf: Config) -> None:
    sends_everything(Peer(neighbor) for neighbor in conf.neighbors[:8])
