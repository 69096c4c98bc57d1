"""Logging: stderr (the journal, under systemd) by default, syslog, or both; text or JSON lines.

Whatever the destination, every record passes a `SecretFilter` on its way out: the MD5 passwords
of the running config (and of environment variables whose name says PASSWORD or SECRET) are
replaced with `***` in the message, its arguments and any traceback, and so is whatever follows
`md5-password` in a config line quoted in a message. `Secret` objects already print as `***`; the
filter is the guarantee for the paths that do not use them (an exception that quotes a value, a
program's stderr, a config line echoed in a parse error).

The daemon calls, in this order:

    setup_logging(settings)                # once, before anything logs
    set_secrets(config_secrets(config))    # after every successful (re)load of the config
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .config.model import Config
    from .settings import AgentSettings

PROGRAM = "fleetbgp"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SYSLOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
REDACTED = "***"
# A secret shorter than this is not searched for in free text (replacing every "ab" in every line
# would make logs unreadable); the keyword rule below still hides it after `md5-password`.
MIN_SECRET_LENGTH = 4
# Environment variables whose values are treated as secrets from the first log line on.
_SECRET_ENV_RE = re.compile(r"PASSWORD|PASSWD|SECRET|MD5", re.IGNORECASE)
# `md5-password VALUE` (config syntax), `md5_password=VALUE`, `"md5-password": "VALUE"` (and the
# same with BFD's `auth-password`), and
# ExaBGP's md5-password env['NAME'] form (the name is not secret; keep the whole match readable).
_KEYWORD_RE = re.compile(
    r"""(?P<key>(?:md5|auth)[-_]password["']?\s*[:=]?\s*)(?P<value>env\[[^\]]*\]|"[^"]*"|'[^']*'|[^\s;,}'"]+)""",
    re.IGNORECASE)

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class SecretFilter(logging.Filter):
    """Redacts known secrets from a record before any handler formats it. Attach to handlers (a
    logger's own filters do not see records propagated from its children)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._config: frozenset[str] = frozenset()
        self._env: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def set_config_secrets(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._config = frozenset(s for s in secrets if s)
            self._compile()

    def set_env_secrets(self, environ: Mapping[str, str]) -> None:
        with self._lock:
            self._env = frozenset(v for k, v in environ.items() if _SECRET_ENV_RE.search(k) and v)
            self._compile()

    def _compile(self) -> None:
        words = sorted({s for s in self._config | self._env if len(s) >= MIN_SECRET_LENGTH},
                       key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(w) for w in words)) if words else None

    def redact(self, text: str) -> str:
        if not text:
            return text
        if "md5" in text.lower():
            text = _KEYWORD_RE.sub(_keep_env_name, text)
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: show the raw parts, still redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None  # formatters use exc_text; never re-render the raw exception
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _keep_env_name(m: re.Match[str]) -> str:
    value = m.group("value")
    if value.lower().startswith("env["):
        return m.group(0)
    return m.group("key") + REDACTED


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, pid, host (the host
    name), event (what happened: the name a log call gives with `logutil.log_event`, else
    `message`), and the peer address when the message
    is about one (`peer ADDRESS: ...`).

    Time and host are in the object whatever the destination: the logging role's file keeps the
    object alone on its line (no syslog header, docs/roles/logging.md), and a line shipped from
    there must still say when and where."""

    _PEER_RE = re.compile(r"^peer (\S+): ")

    def __init__(self, *, host: str | None = None) -> None:
        super().__init__()
        self.host = socket.gethostname() if host is None else host

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, Any] = {
            "time": _rfc3339(record.created), "level": record.levelname.lower(), "logger": record.name,
            "message": message, "pid": record.process, "host": self.host,
            "event": getattr(record, "event", None) or DEFAULT_EVENT,
        }
        m = self._PEER_RE.match(message)
        if m:
            out["peer"] = m.group(1)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


# The `event` of a line whose call names none: a message for people, nothing stable to match on.
DEFAULT_EVENT = "message"


def _rfc3339(created: float) -> str:
    t = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(created % 1 * 1000):03d}Z"


# The one filter every handler installed here carries (module-level so the daemon can feed it).
secret_filter = SecretFilter()


def set_secrets(secrets: Iterable[str]) -> None:
    """The secrets of the running config; call after every successful (re)load."""
    secret_filter.set_config_secrets(secrets)


def config_secrets(config: Config) -> list[str]:
    """Every MD5 password of a config, as configured and (for md5-base64) decoded when it is text,
    and every BFD authentication password."""
    import base64
    import binascii

    out: list[str] = []
    for neighbor in config.neighbors:
        if neighbor.bfd is not None and neighbor.bfd.auth_password is not None:
            out.append(neighbor.bfd.auth_password.reveal())
        secret = neighbor.md5_password
        if secret is None:
            continue
        value = secret.reveal()
        out.append(value)
        if neighbor.md5_base64:
            try:
                out.append(base64.b64decode(value, validate=True).decode())
            except (binascii.Error, UnicodeDecodeError, ValueError):
                pass
    return out


def syslog_address(text: str) -> str | tuple[str, int]:
    """'/dev/log' (a unix socket), 'HOST', 'HOST:PORT', '[IPV6]:PORT' or a bare IPv6 address
    (UDP, port 514 unless given)."""
    if text.startswith("/"):
        return text
    host, port = text, "514"
    if text.startswith("["):
        host, _sep, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"syslog address {text!r}: expected a socket path or HOST[:PORT]")
    return host, int(port)


def _probe_unix(path: str) -> None:
    last: OSError | None = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(path)
                return
            except OSError as exc:
                last = exc
    assert last is not None
    raise last


def syslog_handler(settings: AgentSettings) -> logging.Handler:
    """A SysLogHandler on a unix socket (default /dev/log) or HOST[:PORT] over UDP, tagged
    `fleetbgp[PID]: ` so rsyslog's $programname is `fleetbgp`. Raises OSError if unreachable."""
    facility = logging.handlers.SysLogHandler.facility_names[settings.syslog_facility]
    address = syslog_address(settings.syslog_address)
    if isinstance(address, str):
        _probe_unix(address)  # SysLogHandler itself ignores a missing socket: say so at start
    # unix: datagram, or stream if that is what the socket is (SysLogHandler tries both); else UDP
    handler = logging.handlers.SysLogHandler(address=address, facility=facility,
                                             socktype=None if isinstance(address, str) else socket.SOCK_DGRAM)
    handler.ident = f"{PROGRAM}[{os.getpid()}]: "
    return handler


def setup_logging(settings: AgentSettings, *, stream: TextIO | None = None,
                  environ: Mapping[str, str] | None = None) -> list[logging.Handler]:
    """Replace the root logger's handlers as the settings say. Returns the handlers installed.

    If syslog cannot be reached, logging falls back to stderr and says so (the agent still runs)."""
    env = os.environ if environ is None else environ
    secret_filter.set_env_secrets(env)
    handlers: list[logging.Handler] = []
    problem = None
    if settings.syslog_enabled:
        try:
            handler = syslog_handler(settings)
        except (OSError, ValueError) as exc:
            problem = f"cannot log to syslog at {settings.syslog_address}: {exc}; logging to stderr"
        else:
            handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                                 else logging.Formatter(SYSLOG_FORMAT))
            handlers.append(handler)
    if settings.stderr_enabled or not handlers:
        handler = logging.StreamHandler(sys.stderr if stream is None else stream)
        handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                             else logging.Formatter(TEXT_FORMAT))
        handlers.append(handler)
    for handler in handlers:
        handler.addFilter(secret_filter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if old not in handlers:
            old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(_LEVELS.get(settings.log_level, logging.INFO))
    # Packet logging has its own logger, off unless asked for, whatever the level.
    logging.getLogger("fleetbgp.packets").setLevel(logging.DEBUG if settings.log_packets
                                                   else logging.CRITICAL + 1)
    log = logging.getLogger("fleetbgp")
    if problem:
        log.warning("%s", problem)
    if settings.ignored_env:
        log.debug("ignored ExaBGP environment variable(s) fleetbgp does not use: %s",
                  ", ".join(settings.ignored_env))
    if settings.sources:
        log.debug("settings: %s", ", ".join(f"{k} from {v}" for k, v in sorted(settings.sources.items())))
    return handlers
