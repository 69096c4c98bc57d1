"""Runtime settings of the agent (not BGP config): where the control socket and metrics live, how
to log, how maintenance drains. Built once at start from, lowest to highest precedence:

    defaults  <-  ExaBGP's environment names  <-  FLEETBGP_* environment  <-  `fleetbgp run` flags

ExaBGP's names are read as ExaBGP spells them, dotted (`exabgp.log.destination=syslog`) or with
underscores (`exabgp_log_destination=syslog`), so a unit file or an environment file written for
ExaBGP keeps working. The ones fleetbgp does not use are ignored (and listed at debug level).

docs/agent/operations.md lists every setting; keep it in step with `_FLEETBGP_ENV` and `add_run_arguments`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Setting name -> value, as the parsers below return them and AgentSettings takes them by keyword:
# Any because each setting has its own type, which a dict cannot say.
_Values = dict[str, Any]
# parser(raw, where): raw is a string from the environment or what argparse made of a flag.
_Parser = Callable[[object, str], _Values]
# ExaBGP's names come from the environment only: always a string.
_ExaParser = Callable[[str, str], _Values]

DEFAULT_CONTROL_SOCKET = "/run/fleetbgp/control.sock"
DEFAULT_CONTROL_MODE = 0o660
DEFAULT_CONTROL_GROUP = "fleetbgp"
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
DEFAULT_METRICS_PORT = 9101
DEFAULT_SYSLOG_ADDRESS = "/dev/log"
DEFAULT_BGP_PORT = 179
DEFAULT_BFD_PORT = 3784  # RFC 5881 4
DEFAULT_BFD_LISTEN = ("0.0.0.0", "::")
# MED sent for every route while `maintenance on` runs in `metric` mode. 1000 is ExaBGP
# healthcheck's default --down-metric: a drained server is as unattractive as a failed one, and
# loses to servers announcing the usual primary/backup MEDs (100/200 in the seed guide).
DEFAULT_MAINTENANCE_METRIC = 1000

LOG_DESTINATIONS = ("stderr", "syslog", "both")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAINTENANCE_MODES = ("withdraw", "metric")
SYSLOG_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
                     "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5",
                     "local6", "local7")
_OFF = ("off", "none", "disabled", "false", "no", "0")
_TRUE = ("1", "true", "yes", "on", "enable", "enabled")
_FALSE = ("0", "false", "no", "off", "disable", "disabled")


class SettingsError(ValueError):
    """A setting with a value fleetbgp cannot use. The message names where it came from."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    # control socket (None: no control socket)
    control_socket: str | None = DEFAULT_CONTROL_SOCKET
    control_mode: int = DEFAULT_CONTROL_MODE
    control_group: str | None = DEFAULT_CONTROL_GROUP  # applied only if the group exists
    control_max_clients: int = 32
    # Prometheus metrics (metrics_port None: not served)
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    metrics_port: int | None = DEFAULT_METRICS_PORT
    # logging
    log_destination: str = "stderr"
    log_level: str = "info"
    log_format: str = "text"
    syslog_facility: str = "daemon"
    syslog_address: str = DEFAULT_SYSLOG_ADDRESS  # a unix socket path, or HOST[:PORT] (UDP)
    log_packets: bool = False
    # API programs: acknowledge each command with done/error (ExaBGP's exabgp.api.ack)
    api_ack: bool = True
    # `maintenance on`: withdraw every announcement, or re-announce everything with this MED
    maintenance_mode: str = "withdraw"
    maintenance_metric: int = DEFAULT_MAINTENANCE_METRIC
    # graceful restart (RFC 4724): the Forwarding State bit of every family. On: the host forwards
    # without the agent (the routes are the host's addresses), so a router may keep using what it
    # kept while the agent restarts. Off: a router drops our routes at the reconnection.
    graceful_restart_forwarding: bool = True
    # where to accept BGP connections; None: as the config says (`listen`, default every address)
    listen: tuple[tuple[str, int], ...] | None = None
    # the port dialled for a neighbor without its own `connect PORT` (ExaBGP's exabgp.tcp.port
    # sets both the listening and the dialled port)
    connect_port: int = DEFAULT_BGP_PORT
    # BFD (neighbors with `bfd`): the addresses its UDP sockets listen on, one per address family,
    # and the port, which is also the port BFD packets are sent to (3784; another only for tests)
    bfd_listen: tuple[str, ...] = DEFAULT_BFD_LISTEN
    bfd_port: int = DEFAULT_BFD_PORT
    # what was read and from where, for `status` and for a debug line at start (not compared)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    ignored_env: tuple[str, ...] = field(default=(), compare=False)

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port is not None

    @property
    def syslog_enabled(self) -> bool:
        return self.log_destination in ("syslog", "both")

    @property
    def stderr_enabled(self) -> bool:
        return self.log_destination in ("stderr", "both")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (the control socket's `status` shows it)."""
        return {
            "control_socket": self.control_socket,
            "control_mode": f"0{self.control_mode:o}",
            "control_group": self.control_group,
            "metrics": (f"{_host_port(self.metrics_address, self.metrics_port)}"
                        if self.metrics_port is not None else "off"),
            "log_destination": self.log_destination,
            "log_level": self.log_level,
            "log_format": self.log_format,
            "syslog_facility": self.syslog_facility,
            "syslog_address": self.syslog_address,
            "log_packets": self.log_packets,
            "api_ack": self.api_ack,
            "maintenance_mode": self.maintenance_mode,
            "maintenance_metric": self.maintenance_metric,
            "graceful_restart_forwarding": self.graceful_restart_forwarding,
            "listen": None if self.listen is None else [_host_port(a, p) for a, p in self.listen],
            "connect_port": self.connect_port,
            "bfd_listen": [_host_port(a, self.bfd_port) for a in self.bfd_listen],
        }

    @classmethod
    def from_env_and_args(cls, environ: Mapping[str, str] | None = None,
                          args: argparse.Namespace | None = None) -> AgentSettings:
        """Defaults, then ExaBGP's environment names, then FLEETBGP_*, then the `run` flags.

        `args` is the argparse namespace of `fleetbgp run` (any object: missing attributes and
        None values mean "not given"). Raises SettingsError naming the variable or flag at fault.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        ignored: list[str] = []

        # 1. ExaBGP's names
        for name, raw in env.items():
            key = _exabgp_key(name)
            if key is None:
                continue
            handler = _EXABGP_ENV.get(key)
            if handler is None:
                ignored.append(name)
                continue
            for attr, value in handler(raw, name).items():
                values[attr] = value
                sources[attr] = f"environment {name}"
        # ExaBGP spells the listener as two variables; combine them once both are known.
        bind = values.pop("_tcp_bind", None)
        port = values.pop("_tcp_port", None)
        sources.pop("_tcp_bind", None)
        port_source = sources.pop("_tcp_port", None)
        if bind is not None or port is not None:
            listen = _exabgp_listen(bind, port)
            if listen is not None:
                values["listen"] = listen
                sources["listen"] = "environment exabgp.tcp.bind/exabgp.tcp.port" if port_source \
                    else "environment exabgp.tcp.bind"
        if port is not None and port_source is not None:
            values["connect_port"] = port
            sources["connect_port"] = port_source

        # 2. FLEETBGP_*
        for name, parse in _FLEETBGP_ENV.items():
            if name in env:
                for key, value in parse(env[name], name).items():
                    values[key] = value
                    sources[key] = f"environment {name}"

        # 3. flags
        if args is not None:
            for dest, parse in _FLAGS.items():
                flag: object = getattr(args, dest, None)
                if flag is None:
                    continue
                where = "--" + dest.replace("_", "-")
                for key, value in parse(flag, where).items():
                    values[key] = value
                    sources[key] = f"flag {where}"

        return replace(cls(), **values, sources=sources, ignored_env=tuple(sorted(ignored)))


# -- parsing helpers ----------------------------------------------------------------------------


def _host_port(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _choice(options: tuple[str, ...]) -> Callable[[object, str], str]:
    def parse(raw: object, where: str) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise SettingsError(f"{where}: {raw!r} is not one of {', '.join(options)}")
        return value
    return parse


def parse_bool(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().strip("'\"").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{where}: {raw!r} is not a boolean (true/false)")


def parse_int(raw: object, where: str, low: int, high: int) -> int:
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        raise SettingsError(f"{where}: {raw!r} is not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{where}: {value} is out of range {low}..{high}")
    return value


def parse_mode(raw: object, where: str) -> int:
    """A file mode, octal, as chmod writes it: 660, 0660, 0o660."""
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip().lower().removeprefix("0o")
        try:
            value = int(text, 8)
        except ValueError:
            raise SettingsError(f"{where}: {raw!r} is not an octal file mode like 0660") from None
    if not 0 <= value <= 0o777:
        raise SettingsError(f"{where}: {raw!r} is not a file mode (0000..0777)")
    if value & 0o600 != 0o600:
        raise SettingsError(f"{where}: mode 0{value:o} would lock the agent's owner out of its own "
                            "socket (needs at least 0600)")
    return value


def split_host_port(text: str, where: str, default_port: int | None) -> tuple[str, int]:
    """'127.0.0.1:9101', '[::1]:9101', '::1' (no port), '0.0.0.0', ':9101' or '9101' (port only:
    the default address is returned as '')."""
    text = text.strip()
    host: str
    port_text: str | None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SettingsError(f"{where}: {text!r}: '[' without ']'")
        host = text[1:close]
        rest = text[close + 1:]
        if rest and not rest.startswith(":"):
            raise SettingsError(f"{where}: {text!r}: expected [ADDRESS]:PORT")
        port_text = rest[1:] if rest else None
    elif text.isdigit():
        host, port_text = "", text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # an IPv6 address without a port, or an IPv4 address
    if host:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise SettingsError(f"{where}: {host!r} is not an IP address") from None
    if port_text is None or port_text == "":
        if default_port is None:
            raise SettingsError(f"{where}: {text!r} has no port")
        return host, default_port
    return host, parse_int(port_text, where, 1, 65535)


def _metrics(raw: object, where: str) -> _Values:
    text = str(raw).strip()
    if text.lower() in _OFF:
        return {"metrics_port": None}
    host, port = split_host_port(text, where, DEFAULT_METRICS_PORT)
    out: dict[str, Any] = {"metrics_port": port}
    if host:
        out["metrics_address"] = host
    return out


def _listen(raw: object, where: str) -> _Values:
    """'ADDR[:PORT] ...' (spaces or commas), as FLEETBGP_LISTEN / --listen take it."""
    items = raw if isinstance(raw, list | tuple) else [raw]
    out: list[tuple[str, int]] = []
    for item in items:
        for word in str(item).replace(",", " ").split():
            host, port = split_host_port(word, where, DEFAULT_BGP_PORT)
            if not host:
                raise SettingsError(f"{where}: {word!r}: give an address, like 0.0.0.0:{port}")
            if (host, port) not in out:
                out.append((host, port))
    if not out:
        raise SettingsError(f"{where}: no address given")
    return {"listen": tuple(out)}


def _bfd_listen(raw: object, where: str) -> _Values:
    """'ADDR[:PORT] ...': at most one address per family, one port for all (FLEETBGP_BFD_LISTEN,
    --bfd-listen)."""
    items = raw if isinstance(raw, list | tuple) else [raw]
    addresses: list[str] = []
    ports: set[int] = set()
    for item in items:
        for word in str(item).replace(",", " ").split():
            host, port = split_host_port(word, where, DEFAULT_BFD_PORT)
            if not host:
                raise SettingsError(f"{where}: {word!r}: give an address, like 0.0.0.0 or 192.0.2.10")
            family = 6 if ":" in host else 4
            if any((6 if ":" in a else 4) == family for a in addresses):
                raise SettingsError(f"{where}: more than one IPv{family} address: BFD listens on one "
                                    "address per family (0.0.0.0 / :: for all)")
            addresses.append(host)
            ports.add(port)
    if not addresses:
        raise SettingsError(f"{where}: no address given")
    if len(ports) > 1:
        raise SettingsError(f"{where}: one port for every address (BFD sends to the same port it listens on)")
    return {"bfd_listen": tuple(addresses), "bfd_port": ports.pop()}


def _control_socket(raw: object, where: str) -> _Values:
    text = str(raw).strip()
    if text.lower() in _OFF:
        return {"control_socket": None}
    if not text.startswith("/"):
        raise SettingsError(f"{where}: {text!r}: the control socket path must be absolute")
    if len(text.encode()) > 107:
        raise SettingsError(f"{where}: {text!r} is longer than a unix socket path may be (107 bytes)")
    return {"control_socket": text}


def _control_group(raw: object, where: str) -> _Values:
    text = str(raw).strip()
    return {"control_group": None if text == "" or text.lower() in _OFF else text}


def _syslog_address(raw: object, where: str) -> _Values:
    text = str(raw).strip()
    if not text:
        raise SettingsError(f"{where}: empty syslog address")
    return {"syslog_address": text}


def _one(attr: str, parse: Callable[[object, str], object]) -> _Parser:
    def wrapped(raw: object, where: str) -> _Values:
        return {attr: parse(raw, where)}
    return wrapped


def _level(raw: object, where: str) -> str:
    """fleetbgp's levels, plus the syslog names ExaBGP's exabgp.log.level takes."""
    value = str(raw).strip().strip("'\"").lower()
    mapped = {"debug": "debug", "info": "info", "notice": "info", "warning": "warning",
              "warn": "warning", "err": "error", "error": "error", "crit": "error",
              "critical": "error", "alert": "error", "emerg": "error"}.get(value)
    if mapped is None:
        raise SettingsError(f"{where}: {raw!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return mapped


def _metric(raw: object, where: str) -> int:
    return parse_int(raw, where, 0, 0xFFFFFFFF)


def _max_clients(raw: object, where: str) -> int:
    return parse_int(raw, where, 1, 1024)


# FLEETBGP_* variables: name -> parser(raw, where) returning {setting: value, ...}
_FLEETBGP_ENV: dict[str, _Parser] = {
    "FLEETBGP_CONTROL_SOCKET": _control_socket,
    "FLEETBGP_CONTROL_MODE": _one("control_mode", parse_mode),
    "FLEETBGP_CONTROL_GROUP": _control_group,
    "FLEETBGP_CONTROL_MAX_CLIENTS": _one("control_max_clients", _max_clients),
    "FLEETBGP_METRICS": _metrics,
    "FLEETBGP_LOG_DESTINATION": _one("log_destination", _choice(LOG_DESTINATIONS)),
    "FLEETBGP_LOG_LEVEL": _one("log_level", _level),
    "FLEETBGP_LOG_FORMAT": _one("log_format", _choice(LOG_FORMATS)),
    "FLEETBGP_SYSLOG_FACILITY": _one("syslog_facility", _choice(SYSLOG_FACILITIES)),
    "FLEETBGP_SYSLOG_ADDRESS": _syslog_address,
    "FLEETBGP_LOG_PACKETS": _one("log_packets", parse_bool),
    "FLEETBGP_API_ACK": _one("api_ack", parse_bool),
    "FLEETBGP_MAINTENANCE_MODE": _one("maintenance_mode", _choice(MAINTENANCE_MODES)),
    "FLEETBGP_MAINTENANCE_METRIC": _one("maintenance_metric", _metric),
    "FLEETBGP_GRACEFUL_RESTART_FORWARDING": _one("graceful_restart_forwarding", parse_bool),
    "FLEETBGP_LISTEN": _listen,
    "FLEETBGP_BFD_LISTEN": _bfd_listen,
}

# `fleetbgp run` flags: argparse dest -> parser(raw, where)
_FLAGS: dict[str, _Parser] = {
    "control_socket": _control_socket,
    "control_mode": _one("control_mode", parse_mode),
    "control_group": _control_group,
    "metrics": _metrics,
    "log_destination": _one("log_destination", _choice(LOG_DESTINATIONS)),
    "log_level": _one("log_level", _level),
    "log_format": _one("log_format", _choice(LOG_FORMATS)),
    "syslog_facility": _one("syslog_facility", _choice(SYSLOG_FACILITIES)),
    "syslog_address": _syslog_address,
    "log_packets": _one("log_packets", parse_bool),
    "api_ack": _one("api_ack", parse_bool),
    "maintenance_mode": _one("maintenance_mode", _choice(MAINTENANCE_MODES)),
    "maintenance_metric": _one("maintenance_metric", _metric),
    "graceful_restart_forwarding": _one("graceful_restart_forwarding", parse_bool),
    "listen": _listen,
    "bfd_listen": _bfd_listen,
}


# -- ExaBGP's environment names ------------------------------------------------------------------


def _exabgp_key(name: str) -> str | None:
    """'exabgp.log.destination' or 'exabgp_log_destination' -> 'log.destination'; else None."""
    lowered = name.lower()
    if lowered.startswith("exabgp."):
        return lowered[7:]
    if lowered.startswith("exabgp_"):
        return lowered[7:].replace("_", ".", 1)
    return None


def _unquote(raw: str) -> str:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text.strip()


def _exa_destination(raw: str, where: str) -> _Values:
    """ExaBGP: stdout, stderr, syslog, host:ADDRESS (remote syslog), or a file name."""
    text = _unquote(raw)
    lowered = text.lower()
    if lowered in ("stderr", "stdout", ""):
        return {"log_destination": "stderr"}
    if lowered == "syslog":
        return {"log_destination": "syslog"}
    if lowered.startswith("host:"):
        return {"log_destination": "syslog", "syslog_address": text[5:]}
    raise SettingsError(f"{where}={text}: fleetbgp does not write log files; log to syslog "
                        "(rsyslog can write the file) or stderr (the journal)")


def _exa_bool(attr: str) -> _ExaParser:
    def parse(raw: str, where: str) -> _Values:
        return {attr: parse_bool(_unquote(raw), where)}
    return parse


def _exa_level(raw: str, where: str) -> _Values:
    return {"log_level": _level(_unquote(raw), where)}


def _exa_bind(raw: str, where: str) -> _Values:
    return {"_tcp_bind": _unquote(raw)}


def _exa_port(raw: str, where: str) -> _Values:
    return {"_tcp_port": parse_int(_unquote(raw), where, 1, 65535)}


def _exabgp_listen(bind: str | None, port: int | None) -> tuple[tuple[str, int], ...] | None:
    """exabgp.tcp.bind: addresses separated by spaces. Set but empty: no listener, as in ExaBGP
    (its source: "no ip to disable"). Not set: as the config says (`listen`, every address by
    default), on exabgp.tcp.port when that is given."""
    port = port or DEFAULT_BGP_PORT
    words = (bind or "").replace(",", " ").split()
    if bind is not None and not words:
        return ()
    if not words:
        if port == DEFAULT_BGP_PORT:
            return None  # as the config says
        return (("0.0.0.0", port), ("::", port))
    spelled = " ".join(f"[{w}]:{port}" if ":" in w else f"{w}:{port}" for w in words)
    listen: tuple[tuple[str, int], ...] = _listen(spelled, "exabgp.tcp.bind")["listen"]
    return listen


_EXABGP_ENV: dict[str, _ExaParser] = {
    "log.destination": _exa_destination,
    "log.level": _exa_level,
    "log.packets": _exa_bool("log_packets"),
    "api.ack": _exa_bool("api_ack"),
    "tcp.bind": _exa_bind,
    "tcp.port": _exa_port,
}


# -- `fleetbgp run` flags -------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings flags of `fleetbgp run`. Every default is None: "not given", so that the
    environment and the built-in defaults apply (see AgentSettings.from_env_and_args)."""
    g = parser.add_argument_group("logging")
    g.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default=None,
                   help="default: info (env FLEETBGP_LOG_LEVEL, exabgp.log.level)")
    g.add_argument("--log-destination", type=str.lower, choices=LOG_DESTINATIONS, default=None,
                   help="default: stderr, which systemd puts in the journal "
                        "(env FLEETBGP_LOG_DESTINATION, exabgp.log.destination)")
    g.add_argument("--log-format", type=str.lower, choices=LOG_FORMATS, default=None,
                   help="text (default) or json: one JSON object per line (env FLEETBGP_LOG_FORMAT)")
    g.add_argument("--syslog-facility", type=str.lower, choices=SYSLOG_FACILITIES, default=None,
                   metavar="FACILITY", help="default: daemon (env FLEETBGP_SYSLOG_FACILITY)")
    g.add_argument("--syslog-address", default=None, metavar="PATH|HOST[:PORT]",
                   help=f"default: {DEFAULT_SYSLOG_ADDRESS} (env FLEETBGP_SYSLOG_ADDRESS)")
    g.add_argument("--log-packets", action=argparse.BooleanOptionalAction, default=None,
                   help="log every BGP message (noisy); default: off "
                        "(env FLEETBGP_LOG_PACKETS, exabgp.log.packets)")
    g = parser.add_argument_group("control and metrics")
    g.add_argument("--control-socket", default=None, metavar="PATH|off",
                   help=f"default: {DEFAULT_CONTROL_SOCKET} (env FLEETBGP_CONTROL_SOCKET)")
    g.add_argument("--control-mode", default=None, metavar="MODE",
                   help="octal, default: 0660 (env FLEETBGP_CONTROL_MODE)")
    g.add_argument("--control-group", default=None, metavar="GROUP",
                   help=f"default: {DEFAULT_CONTROL_GROUP}, when that group exists "
                        "(env FLEETBGP_CONTROL_GROUP)")
    g.add_argument("--metrics", default=None, metavar="[ADDRESS:]PORT|off",
                   help=f"Prometheus endpoint; default: {DEFAULT_METRICS_ADDRESS}:{DEFAULT_METRICS_PORT} "
                        "(env FLEETBGP_METRICS)")
    g = parser.add_argument_group("behaviour")
    g.add_argument("--api-ack", action=argparse.BooleanOptionalAction, default=None,
                   help="acknowledge API commands with done/error; default: on "
                        "(env FLEETBGP_API_ACK, exabgp.api.ack)")
    g.add_argument("--maintenance-mode", type=str.lower, choices=MAINTENANCE_MODES, default=None,
                   help="what `maintenance on` does: withdraw (default) or metric "
                        "(env FLEETBGP_MAINTENANCE_MODE)")
    g.add_argument("--maintenance-metric", default=None, metavar="MED",
                   help=f"MED in metric mode; default: {DEFAULT_MAINTENANCE_METRIC} "
                        "(env FLEETBGP_MAINTENANCE_METRIC)")
    g.add_argument("--graceful-restart-forwarding", action=argparse.BooleanOptionalAction, default=None,
                   help="graceful restart's Forwarding State bit, per family: the host forwards "
                        "while the agent restarts; default: on (env FLEETBGP_GRACEFUL_RESTART_FORWARDING)")
    g.add_argument("--listen", action="append", default=None, metavar="ADDRESS[:PORT]",
                   help="accept BGP connections here instead of the config's `listen` "
                        "(repeatable; env FLEETBGP_LISTEN, exabgp.tcp.bind/exabgp.tcp.port)")
    g.add_argument("--bfd-listen", action="append", default=None, metavar="ADDRESS[:PORT]",
                   help="where BFD listens, one address per family; default: 0.0.0.0 and :: on UDP "
                        f"{DEFAULT_BFD_PORT} (repeatable; env FLEETBGP_BFD_LISTEN)")
