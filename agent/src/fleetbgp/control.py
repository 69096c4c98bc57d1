"""The control socket: newline-delimited JSON requests and replies on a unix socket.

    request   {"v": 1, "id": 7, "cmd": "routes", "args": {"neighbor": "192.0.2.1", "limit": 10}}
    reply     {"v": 1, "id": 7, "ok": true, "result": {...}}
    error     {"v": 1, "id": 7, "ok": false, "error": {"code": "unknown_neighbor", "message": "..."}}

One request per line, replies in order. A bad request (not JSON, unknown command, bad arguments, a
route that does not parse) gets an error reply; the connection stays open and the agent carries on.
Commands: status, neighbors, routes, health, processes, announce, withdraw, maintenance, reload,
flow_announce, flow_withdraw, flows (FlowSpec rules by name; docs/agent/flowspec.md).
The reference with examples is docs/agent/operations.md; `control_client.py` is the client.

Everything here runs on the event loop thread, like every other caller of the Speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import itertools
import json
import logging
import math
import os
import socket
import stat
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .config.lexer import tokenize_line
from .flows import received_flow_fields
from .grammar.communities import community_text, extended_community_text, large_community_text
from .grammar.errors import RouteError
from .grammar.route import (
    check_path_family,
    origin_text,
    parse_prefix,
    parse_route,
    parse_route_attributes,
    route_text,
)
from .literals import decimal
from .owner import RUNTIME, Owner
from .rib import keys_of_prefix
from .wire.fit import first_foreign_next_hop, first_oversized
from .wire.nlri import (
    PATH_MARK,
    Family,
    family_from_name,
    family_name,
    nlri_to_prefix,
    path_id_text,
    path_key,
    split_key,
)

if TYPE_CHECKING:
    from .settings import AgentSettings
    from .wire.attributes import Attributes

log = logging.getLogger("fleetbgp.control")

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20            # bytes in one request line
IDLE_TIMEOUT = 600.0          # a client that sends nothing (or reads nothing) this long is disconnected
LINE_TIMEOUT = 5.0            # once a request line has begun, it must end (newline) within this
REFUSED_LOG_INTERVAL = 60.0   # at most one "refusing a client" warning per this many seconds
MAX_DEPTH = 32                # nesting of objects/arrays in a request (real ones need 4 or 5)
DEFAULT_ROUTE_LIMIT = 1000    # `routes` returns at most this many unless asked (limit 0: all)
MAX_ROUTE_LIMIT = 100_000_000  # a larger `limit` is a mistake (0 asks for everything)
STREAM_CHUNK = 500            # routes serialised between two yields to the event loop
DEFAULT_OWNER = Owner.control("cli")
COMMANDS = ("status", "neighbors", "routes", "health", "processes", "announce", "withdraw",
            "maintenance", "reload", "flow_announce", "flow_withdraw", "flows")


class ControlError(Exception):
    """A request that cannot be served: becomes an error reply."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.request_id: Any = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


class _Stream:
    """A result written piece by piece (a large `routes` answer): `chunks` yields JSON text that,
    concatenated, is the value of "result"."""

    def __init__(self, chunks: AsyncIterator[str]) -> None:
        self.chunks = chunks


Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlServer:
    def __init__(self, speaker: Any, settings: AgentSettings) -> None:
        self.speaker = speaker
        self.settings = settings
        self.path = settings.control_socket
        self.max_clients = settings.control_max_clients
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._inode: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket file we made
        self._group_name: str | None = None
        self._refused_logged_at: float | None = None  # monotonic time of the last refusal warning
        self._refused_unlogged = 0                     # refusals since then, not logged one by one
        self._handlers: dict[str, Handler] = {
            "status": self._status, "neighbors": self._neighbors, "routes": self._routes,
            "health": self._health, "processes": self._processes, "announce": self._announce,
            "withdraw": self._withdraw, "maintenance": self._maintenance, "reload": self._reload,
            "flow_announce": self._flow_announce, "flow_withdraw": self._flow_withdraw,
            "flows": self._flows,
        }
        self._reload_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.path is None:
            log.info("control socket disabled")
            return
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_LINE)
        except BaseException:
            sock.close()
            self._unlink_own()
            raise
        log.info("control socket listening on %s (mode 0%o%s)", self.path, self.settings.control_mode,
                 f", group {self._group_name}" if self._group_name else "")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._unlink_own()

    def _bind(self) -> socket.socket:
        assert self.path is not None
        path = self.path
        parent = os.path.dirname(path) or "."
        gid = self._group_id()
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o750, exist_ok=True)
            os.chmod(parent, 0o750)  # makedirs applies the umask
            if gid is not None:
                _chown_group(parent, gid)
        self._remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The socket file gets its mode at bind(); a restrictive umask for that one call means
            # it never exists with wider permissions, not even for the time up to chmod().
            old_umask = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
            st = os.stat(path)
            self._inode = (st.st_dev, st.st_ino)
            if gid is not None:
                _chown_group(path, gid)
            os.chmod(path, self.settings.control_mode)
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            self._unlink_own()
            raise
        return sock

    def _group_id(self) -> int | None:
        name = self.settings.control_group
        if not name:
            return None
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            number = decimal(name, 0xFFFFFFFF)
            if number is not None:
                self._group_name = name
                return number
            log.debug("control socket group %r does not exist; keeping the default group", name)
            return None
        self._group_name = name
        return gid

    @staticmethod
    def _remove_stale(path: str) -> None:
        """A socket file left by an agent that died: removed, but only if nobody answers on it.
        Anything that is not a socket is never removed."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket; not removing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise
        else:
            raise OSError(errno.EADDRINUSE, f"another process is serving the control socket {path} "
                                            "(is another fleetbgp running?)")
        finally:
            probe.close()
        log.info("removing stale control socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def _unlink_own(self) -> None:
        """Remove the socket file if it is still the one we created (not a successor's)."""
        if self.path is None or self._inode is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove control socket %s: %s", self.path, exc.strerror)
        self._inode = None

    # -- connections -----------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        who = _peer_credentials(writer)
        if len(self._clients) >= self.max_clients:
            self._log_refusal(who)
            with contextlib.suppress(Exception):
                writer.write(_reply_line(None, error=ControlError(
                    "busy", f"too many control clients (limit {self.max_clients}); try again")))
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.close()
            return
        self._clients.add(task)
        try:
            await self._serve(reader, writer, who)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("control: connection from %s failed", who)
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _log_refusal(self, who: str) -> None:
        """A client flood must not become a log flood: one warning per REFUSED_LOG_INTERVAL, which
        counts the refusals that were not logged since the previous one."""
        now = time.monotonic()
        last = self._refused_logged_at
        if last is not None and now - last < REFUSED_LOG_INTERVAL:
            self._refused_unlogged += 1
            return
        more = (f"; {self._refused_unlogged} more refused since the last message"
                if self._refused_unlogged else "")
        log.warning("control: refusing a client (%s): %d clients already connected (limit %d)%s",
                    who, len(self._clients), self.max_clients, more)
        self._refused_logged_at = now
        self._refused_unlogged = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: str) -> None:
        while True:
            # Between requests a client may stay silent for IDLE_TIMEOUT; once a line has begun it
            # gets LINE_TIMEOUT to end, so half a line cannot hold a client slot for long.
            try:
                first = await asyncio.wait_for(reader.read(1), IDLE_TIMEOUT)
            except TimeoutError:
                log.debug("control: closing idle connection from %s", who)
                return
            if not first:
                return  # clean end of the connection
            try:
                line, ended = await asyncio.wait_for(_rest_of_line(reader, first), LINE_TIMEOUT)
            except TimeoutError:
                log.debug("control: dropping %s: a request line not finished within %g s", who,
                          LINE_TIMEOUT)
                writer.write(_reply_line(None, error=ControlError(
                    "bad_request", f"request line not finished within {LINE_TIMEOUT:g} s "
                                   "(a request ends with a newline)")))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.drain(), 1.0)
                return
            except _LineTooLong:
                writer.write(_reply_line(None, error=ControlError(
                    "too_large", f"request line longer than {MAX_LINE} bytes")))
                await _drain(writer)
                continue
            if line.strip():
                await self._handle_line(line, writer, who)
            if ended:
                return  # the last request had no newline: answered, and the client is gone

    async def _handle_line(self, line: bytes, writer: asyncio.StreamWriter, who: str) -> None:
        request_id: Any = None
        try:
            request = _parse_request(line)  # on error, the id (if any) travels in the exception
            request_id = request.get("id")
            cmd = request["cmd"]
            args = request["args"]
            handler = self._handlers[cmd]
            if cmd in ("announce", "withdraw", "maintenance", "reload", "flow_announce", "flow_withdraw"):
                log.info("control: %s %s from %s", cmd, _short(args), who)
            else:
                log.debug("control: %s %s from %s", cmd, _short(args), who)
            result = await handler(args)
        except ControlError as exc:
            request_id = exc.request_id if request_id is None else request_id
            log.debug("control: error reply to %s: %s: %s", who, exc.code, exc.message)
            writer.write(_reply_line(request_id, error=exc))
        except Exception as exc:
            log.exception("control: internal error serving %s", _short(line.decode("utf-8", "replace")))
            writer.write(_reply_line(request_id, error=ControlError(
                "internal", f"internal error: {type(exc).__name__}: {exc}")))
        else:
            if isinstance(result, _Stream):
                await self._write_stream(writer, request_id, result)
            else:
                writer.write(_reply_line(request_id, result=result))
        await _drain(writer)

    @staticmethod
    async def _write_stream(writer: asyncio.StreamWriter, request_id: Any, stream: _Stream) -> None:
        head = json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True}, separators=(",", ":"))
        writer.write(head[:-1].encode() + b',"result":')
        async for chunk in stream.chunks:
            writer.write(chunk.encode())
            await _drain(writer)
        writer.write(b"}\n")

    # -- commands --------------------------------------------------------------------------------

    async def _status(self, args: dict[str, Any]) -> Any:
        _no_args(args, "status")
        status = dict(self.speaker.status())
        status.setdefault("control_socket", self.path)
        settings = getattr(self.speaker, "settings", None) or self.settings
        if hasattr(settings, "as_dict"):
            status.setdefault("settings", settings.as_dict())
        return status

    async def _neighbors(self, args: dict[str, Any]) -> Any:
        _only(args, "neighbors", {"neighbor"})
        peers = self._select(args.get("neighbor"))
        now = time.time()
        return {"neighbors": [peer_info(p, now) for p in peers]}

    async def _health(self, args: dict[str, Any]) -> Any:
        _no_args(args, "health")
        health = getattr(self.speaker, "health", None)
        if health is None:
            return {"checks": []}
        return {"checks": _as_list(health.status())}

    async def _processes(self, args: dict[str, Any]) -> Any:
        _no_args(args, "processes")
        api = getattr(self.speaker, "api", None)
        if api is None or not hasattr(api, "status"):
            return {"processes": []}
        return {"processes": _as_list(api.status())}

    async def _maintenance(self, args: dict[str, Any]) -> Any:
        _only(args, "maintenance", {"state"})
        state = args.get("state")
        before = bool(self.speaker.maintenance)
        if state is not None:
            if state is True or state in ("on", "enable", "drain"):
                on = True
            elif state is False or state in ("off", "disable", "undrain"):
                on = False
            else:
                raise ControlError("bad_request", "maintenance: 'state' must be 'on' or 'off', not "
                                                  f"{_short(repr(state), 40)}")
            self.speaker.set_maintenance(on)
        settings = getattr(self.speaker, "settings", None) or self.settings
        after = bool(self.speaker.maintenance)
        return {"maintenance": after, "changed": after != before,
                "mode": getattr(settings, "maintenance_mode", None),
                "metric": getattr(settings, "maintenance_metric", None)}

    async def _reload(self, args: dict[str, Any]) -> Any:
        _only(args, "reload", {"dry_run"})
        dry_run = args.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ControlError("bad_request", f"reload: dry_run must be true or false, not {_short(dry_run)}")
        async with self._reload_lock:
            result = await self.speaker.reload(dry_run=dry_run)
        if not result.ok:
            raise ControlError("reload_failed", result.summary or "reload refused",
                               details=list(result.errors))
        reply = {"ok": True, "summary": result.summary, "errors": list(result.errors)}
        if result.plan is not None:
            reply["plan"] = result.plan.as_dict()
        if dry_run:
            reply["applied"] = False
        return reply

    async def _announce(self, args: dict[str, Any]) -> Any:
        _only(args, "announce", {"route", "routes", "owner", "neighbor", "neighbors"} | _FIELD_NAMES)
        owner = _owner(args)
        neighbors = self._neighbor_list(args)
        routes = _routes_from_args(args, "announce")
        self._check_sizes(routes, neighbors)
        changed = 0
        for fam, nlri, attrs in routes:
            changed += self.speaker.announce(fam, nlri, attrs, owner=owner, neighbors=neighbors)
        return {"routes": len(routes), "changed": changed, "owner": str(owner),
                "maintenance": bool(getattr(self.speaker, "maintenance", False))}

    async def _withdraw(self, args: dict[str, Any]) -> Any:
        _only(args, "withdraw", {"route", "routes", "owner", "neighbor", "neighbors", "all"} | _FIELD_NAMES)
        owner = _owner(args)
        neighbors = self._neighbor_list(args)
        if not isinstance(args.get("all", False), bool):  # "all": "no" must not withdraw everything
            raise ControlError("bad_request", "withdraw: 'all' must be true or false")
        if args.get("all"):
            if any(k in args for k in ("route", "routes", "prefix")):
                raise ControlError("bad_request", "withdraw: give either 'all' or routes, not both")
            changed = self.speaker.withdraw_owner(owner, neighbors)
            return {"routes": None, "changed": changed, "owner": str(owner)}
        prefixes = _prefixes_from_args(args)
        changed = 0
        for fam, nlri in prefixes:
            changed += self.speaker.withdraw(fam, nlri, owner=owner, neighbors=neighbors)
        return {"routes": len(prefixes), "changed": changed, "owner": str(owner)}

    async def _routes(self, args: dict[str, Any]) -> Any:
        _only(args, "routes", {"neighbor", "family", "prefix", "match", "owner", "limit", "received"})
        peers = self._select(args.get("neighbor"))
        families = _family_filter(args.get("family"))
        match = args.get("match", "exact")
        if not isinstance(match, str) or match not in ("exact", "longer"):
            raise ControlError("bad_request", "routes: 'match' must be 'exact' or 'longer'")
        prefix = None
        if args.get("prefix") is not None:
            text = _string(args["prefix"], "prefix")
            try:
                prefix = parse_prefix([text])
            except RouteError as exc:
                raise ControlError("invalid_route", f"prefix {text!r}: {exc.message}") from None
            if families is not None and prefix[0] not in families:
                families = set()
            else:
                families = {prefix[0]}
        owner: Owner | None = None
        if args.get("owner") is not None:  # any owner may be looked at; a bare NAME means control:NAME
            text = _string(args["owner"], "owner")
            try:
                owner = Owner.parse(text)
            except ValueError:
                owner = None
            if owner is None or owner is RUNTIME:  # nobody is tracked as `runtime`: a client's name
                owner = Owner.control(text)
        limit = args.get("limit", DEFAULT_ROUTE_LIMIT)
        if limit is None:
            limit = 0
        # Checked here, in full: once the streamed reply has begun, an error cannot be reported.
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_ROUTE_LIMIT:
            raise ControlError("bad_request", f"routes: 'limit' must be a whole number 0..{MAX_ROUTE_LIMIT} "
                                              f"(0: no limit), not {_short(repr(limit), 40)}")
        received = args.get("received", False)
        if not isinstance(received, bool):
            raise ControlError("bad_request", "routes: 'received' must be true (adj-rib-in) or false")
        if received and owner is not None:
            raise ControlError("bad_request", "routes: 'owner' applies to our routes, not received ones")
        query = _RouteQuery(self.speaker, peers, families, prefix, match, owner, limit, received)
        return _Stream(query.chunks())

    async def _flow_announce(self, args: dict[str, Any]) -> Any:
        _only(args, "flow_announce", {"name", "family", "match", "then", "neighbors", "neighbor",
                                      "expires_after", "owner"})
        name = args.get("name")
        if not isinstance(name, str):
            raise ControlError("bad_request", "flow_announce: 'name' must be a string")
        match = args.get("match")
        if not isinstance(match, dict):
            raise ControlError("bad_request", "flow_announce: 'match' must be an object like "
                                              '{"destination": "192.0.2.0/24", "destination-port": "=80"}')
        then = args.get("then", {})
        if then is None:
            then = {}
        if not isinstance(then, dict):
            raise ControlError("bad_request", "flow_announce: 'then' must be an object like "
                                              '{"discard": true}')
        family = args.get("family")
        if family is not None and not isinstance(family, str):
            raise ControlError("bad_request", "flow_announce: 'family' must be 'ipv4' or 'ipv6'")
        neighbors = self._neighbor_list(args)
        expires = args.get("expires_after")
        owner = _owner(args)
        try:
            return self.speaker.flows.add_rule(name, match, then, family=family, neighbors=neighbors,
                                               expires_after=expires, owner=owner)
        except ValueError as exc:  # FlowSpecError (the component and why) is a ValueError too
            raise ControlError("invalid_flow", str(exc)) from None

    async def _flow_withdraw(self, args: dict[str, Any]) -> Any:
        _only(args, "flow_withdraw", {"name"})
        name = _string(args.get("name"), "name")
        try:
            return {"changed": self.speaker.flows.remove_rule(name)}
        except ValueError as exc:  # a config rule: the config file owns it
            raise ControlError("invalid_flow", str(exc)) from None

    async def _flows(self, args: dict[str, Any]) -> Any:
        _no_args(args, "flows")
        return self.speaker.flows.list()

    # -- helpers ---------------------------------------------------------------------------------

    def _select(self, neighbor: Any) -> list[Any]:
        names = _names(neighbor, "neighbor")
        try:
            return list(self.speaker.select(names))
        except ValueError as exc:
            raise ControlError("unknown_neighbor", str(exc)) from None

    def _check_sizes(self, routes: list[tuple[Family, bytes, Attributes]],
                     neighbors: list[str] | None) -> None:
        """Every route must fit in one UPDATE to the neighbors it is for, or none is announced."""
        def chosen() -> Any:
            return (p.neighbor for p in self.speaker.select(neighbors))

        found = first_oversized(routes, chosen)
        if found is None:
            # An IPv4 route with an IPv6 next hop reaches only neighbors with RFC 8950's extended
            # next hop: refused here rather than never sent.
            found = first_foreign_next_hop(routes, chosen)
        if found is not None:
            fam, nlri, problem = found
            raise ControlError("invalid_route", f"announce route {nlri_to_prefix(fam, nlri)}: {problem}")

    def _neighbor_list(self, args: dict[str, Any]) -> list[str] | None:
        raw = args.get("neighbors", args.get("neighbor"))
        names = _names(raw, "neighbors")
        if names is not None:
            self._select(names)  # fail before changing anything
        return names


# -- requests and replies -------------------------------------------------------------------------


def _parse_request(line: bytes) -> dict[str, Any]:
    request = _load(line)
    try:
        return _check_request(request)
    except ControlError as exc:
        if isinstance(request, dict) and _echoable(request.get("id")):
            exc.request_id = request.get("id")
        raise


def _load(line: bytes) -> Any:
    too_deep = ControlError("bad_request", f"JSON nested too deeply (at most {MAX_DEPTH} levels)")
    try:
        request = json.loads(line)
    except RecursionError:  # json's parser recurses: a line of '[' exhausts the stack
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError("bad_request", f"not JSON: {exc}") from None
    if _depth_exceeds(request, MAX_DEPTH):
        # What is parsed is still printed (repr, json.dumps) later, which recurses as well.
        raise too_deep
    return request


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Is `value` (parsed JSON) nested deeper than `limit` objects/arrays? Without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _echoable(request_id: Any) -> bool:
    """Can this id be sent back in a reply? (NaN and Infinity are not JSON; true is not a number.)"""
    if isinstance(request_id, float):
        return math.isfinite(request_id)
    return request_id is None or isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool))


def _check_request(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise ControlError("bad_request",
                           'a request is a JSON object: {"v": 1, "cmd": ..., "args": {...}}')
    if not _echoable(request.get("id")):
        raise ControlError("bad_request", "'id' must be a string, a finite number or null")
    version = request.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ControlError("unsupported_version",
                           f"protocol version {_short(repr(version), 40)} is not supported (this agent "
                           f"speaks {PROTOCOL_VERSION})", details={"supported": [PROTOCOL_VERSION]})
    cmd = request.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ControlError("bad_request", "missing 'cmd'")
    if cmd not in COMMANDS:
        raise ControlError("unknown_command", f"unknown command {_short(repr(cmd), 60)} "
                                              f"(known: {', '.join(COMMANDS)})")
    args = request.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ControlError("bad_request", "'args' must be a JSON object")
    request["args"] = args
    return request


def _reply_line(request_id: Any, *, result: Any = None, error: ControlError | None = None) -> bytes:
    reply: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id}
    if error is None:
        reply["ok"] = True
        reply["result"] = result
    else:
        reply["ok"] = False
        reply["error"] = error.as_dict()
    return json.dumps(reply, separators=(",", ":"), default=_json_default).encode() + b"\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class _LineTooLong(Exception):
    """A request line over MAX_LINE bytes (now read and dropped)."""


async def _rest_of_line(reader: asyncio.StreamReader, first: bytes) -> tuple[bytes, bool]:
    """The request line that begins with `first`, and whether the connection ended with it
    (a last request without a newline is still answered)."""
    if first == b"\n":
        return first, False
    try:
        return first + await reader.readuntil(b"\n"), False
    except asyncio.IncompleteReadError as exc:
        return first + exc.partial, True
    except asyncio.LimitOverrunError:
        await _discard_line(reader)
        raise _LineTooLong from None


async def _drain(writer: asyncio.StreamWriter) -> None:
    """A client that reads none of its replies must not hold its slot for ever: it gets as long as
    a silent one (TimeoutError ends the connection)."""
    await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)


async def _discard_line(reader: asyncio.StreamReader) -> None:
    """After an over-long line: drop bytes up to and including the next newline."""
    while True:
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)


def _peer_credentials(writer: asyncio.StreamWriter) -> str:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
    except (OSError, AttributeError, struct.error):
        return "unknown client"
    return f"pid {pid} uid {uid}"


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _chown_group(path: str, gid: int) -> None:
    try:
        # Under systemd's syscall filter chown is refused; with the group already right (the
        # agent's own primary group) there is nothing to change, so do not ask.
        if os.stat(path).st_gid == gid:
            return
        os.chown(path, -1, gid)
    except OSError as exc:
        log.warning("cannot give %s to group %d: %s", path, gid, exc.strerror)


# -- argument checking ----------------------------------------------------------------------------


def _only(args: dict[str, Any], cmd: str, allowed: Iterable[str]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ControlError("bad_request", f"{cmd}: unknown argument(s) {', '.join(map(repr, unknown))} "
                                          f"(known: {', '.join(sorted(allowed))})")


def _no_args(args: dict[str, Any], cmd: str) -> None:
    _only(args, cmd, ())


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ControlError("bad_request", f"'{what}' must be a non-empty string")
    return value.strip()


def _names(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [v for v in value.replace(",", " ").split() if v]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise ControlError("bad_request", f"'{what}' must be an address or a list of addresses")
    if not items:
        raise ControlError("bad_request", f"'{what}' is empty")
    return items


def _owner(args: dict[str, Any]) -> Owner:
    """Runtime routes from the control socket are always owned by `control:SOMETHING`, so a client
    cannot touch routes of the config, an API program or a health check by naming their owner."""
    raw = args.get("owner")
    if raw is None:
        return DEFAULT_OWNER
    text = _string(raw, "owner")
    if any(c.isspace() for c in text):
        raise ControlError("bad_request", "'owner' must not contain spaces")
    return Owner.control(text.removeprefix("control:"))


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [{"name": name, **(v if isinstance(v, dict) else {"value": v})} for name, v in value.items()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _family_filter(value: Any) -> set[Family] | None:
    if value is None:
        return None
    out: set[Family] = set()
    for text in (value if isinstance(value, list) else [value]):
        if not isinstance(text, str):
            raise ControlError("bad_request", "'family' must be like 'ipv4 unicast' or 'ipv6'")
        words = text.replace("-", " ").replace("/", " ").split()
        if len(words) == 1:
            words.append("unicast")
        fam = family_from_name(*words) if len(words) == 2 else None
        if fam is None:
            raise ControlError("bad_request",
                               f"unknown family {text!r} (like 'ipv4 unicast', 'ipv6 unicast')")
        out.add(fam)
    return out


# Structured route fields (an alternative to the ExaBGP text form), in the order they are written.
_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (JSON name, ExaBGP keyword, kind)
    ("next_hop", "next-hop", "scalar"),
    ("origin", "origin", "scalar"),
    ("as_path", "as-path", "list"),
    ("med", "med", "scalar"),
    ("local_preference", "local-preference", "scalar"),
    ("community", "community", "list"),
    ("large_community", "large-community", "list"),
    ("extended_community", "extended-community", "list"),
    ("atomic_aggregate", "atomic-aggregate", "flag"),
    ("aggregator", "aggregator", "scalar"),
)
_FIELD_NAMES = frozenset({"prefix"} | {f[0] for f in _FIELDS} | {"communities", "large_communities",
                                                                 "extended_communities", "local_pref"})
_ALIASES = {"communities": "community", "large_communities": "large_community",
            "extended_communities": "extended_community", "local_pref": "local_preference"}


def _route_tokens(value: Any, cmd: str) -> list[str]:
    """A route in ExaBGP's syntax, with or without the leading `route` keyword."""
    if not isinstance(value, str) or not value.strip():
        raise ControlError("bad_request", f"{cmd}: a route is a string like "
                                          "'100.10.0.100/32 next-hop self med 100'")
    toks = tokenize_line(value.strip().rstrip(";"))
    if toks and toks[0] == "route":
        toks = toks[1:]
    if not toks:
        raise ControlError("invalid_route", f"{cmd}: empty route")
    return toks


def _structured_tokens(args: dict[str, Any]) -> list[str] | None:
    fields = {_ALIASES.get(k, k): v for k, v in args.items() if k in _FIELD_NAMES}
    if not fields:
        return None
    if "prefix" not in fields:
        raise ControlError("bad_request", "a structured route needs 'prefix'")
    toks = [_scalar_text(fields["prefix"], "prefix")]
    for name, keyword, kind in _FIELDS:
        value = fields.get(name)
        if value is None or value is False:
            continue
        if kind == "flag":
            toks.append(keyword)
        elif kind == "list":
            items = value if isinstance(value, list) else [value]
            toks += [keyword, "[", *(_scalar_text(v, name) for v in items), "]"]
        else:
            toks += [keyword, _scalar_text(value, name)]
    return toks


def _scalar_text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ControlError("bad_request", f"'{what}' must be a string or a number")
    text = str(value).strip()
    if not text or any(c.isspace() or c in "[]();{}" for c in text):
        raise ControlError("bad_request", f"'{what}': {text!r} is not a single value")
    return text


def _route_texts(args: dict[str, Any], cmd: str) -> list[list[str]]:
    out: list[list[str]] = []
    for key in ("route", "routes"):
        value = args.get(key)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append(_route_tokens(item, cmd))
    structured = _structured_tokens(args)
    if structured is not None:
        out.append(structured)
    if not out:
        raise ControlError("bad_request", f"{cmd}: give 'route' (ExaBGP syntax) or 'prefix' and fields")
    return out


def _invalid(cmd: str, toks: Sequence[str], exc: RouteError) -> ControlError:
    near = toks[exc.index] if 0 <= exc.index < len(toks) else ""
    where = f" (at {near!r}, word {exc.index + 1})" if near else ""
    return ControlError("invalid_route", f"{cmd} route {' '.join(toks)!r}: {exc.message}{where}")


def _routes_from_args(args: dict[str, Any], cmd: str) -> list[tuple[Family, bytes, Attributes]]:
    out = []
    for toks in _route_texts(args, cmd):
        try:
            out.append(parse_route(toks))
        except RouteError as exc:
            raise _invalid(cmd, toks, exc) from None
    return out


def _prefixes_from_args(args: dict[str, Any]) -> list[tuple[Family, bytes]]:
    """A withdrawal needs only the prefix; attributes, if given, must still be valid."""
    out = []
    for toks in _route_texts(args, "withdraw"):
        try:
            fam, nlri = parse_prefix(toks)
            if len(toks) > 1:
                # Attributes are checked; a path-information says which path of the prefix goes.
                _, path_id = parse_route_attributes(toks, fam, 1, require_next_hop=False)
                if path_id:
                    check_path_family(fam, 0)
                    nlri = path_key(nlri, path_id)
        except RouteError as exc:
            raise _invalid("withdraw", toks, exc) from None
        out.append((fam, nlri))
    return out


# -- routes ---------------------------------------------------------------------------------------


class _RouteQuery:
    """adj-rib-out entries, filtered, serialised a chunk at a time with the loop free in between.

    Only keys are copied (never one object per route beyond that), so a 1,000,000-route table
    costs a list of references while it is being read; tables that change meanwhile are read as
    they are when each route's turn comes (a route withdrawn meanwhile is skipped)."""

    def __init__(self, speaker: Any, peers: list[Any], families: set[Family] | None,
                 prefix: tuple[Family, bytes] | None, match: str, owner: Owner | None, limit: int,
                 received: bool = False) -> None:
        self.received = received
        self.speaker = speaker
        self.peers = peers
        self.families = families
        self.prefix = prefix
        self.match = match
        self.owner = owner
        self.limit = limit

    def _keys(self, peer: Any, fam: Family, table: dict[bytes, Any],
              owned: dict[str, dict[Family, set[bytes]]] | None) -> tuple[list[bytes], int | None]:
        """(candidate keys, exact count if known without looking at every key)."""
        rib = peer.rib_in if self.received else peer.rib_out
        paths = fam in getattr(rib, "path_families", ())
        if owned is not None:
            keys = owned.get(peer.address, {}).get(fam, set())
            if self.prefix is not None and self.match == "exact":
                return keys_of_prefix(dict.fromkeys(keys), fam, self.prefix[1], paths), None
            return list(keys), None
        if self.prefix is not None and self.match == "exact":
            # Every path of the prefix (ADD-PATH keys carry a path id before the NLRI).
            return keys_of_prefix(table, fam, self.prefix[1], paths), None
        if self.prefix is None and self.limit:
            return list(itertools.islice(table, self.limit)), len(table)
        return list(table), None

    async def chunks(self) -> AsyncIterator[str]:
        returned = count = 0
        first = True
        owned = self.speaker.owned(self.owner) if self.owner is not None else None
        contains = _container(self.prefix[1], self.prefix[0]) \
            if self.prefix is not None and self.match == "longer" else None
        yield '{"routes":['
        work = 0
        parts: list[str] = []
        for peer in self.peers:
            rib = peer.rib_in.routes if self.received else peer.rib_out.routes
            for fam in sorted(rib, key=lambda f: (f.afi, f.safi)):
                if self.families is not None and fam not in self.families:
                    continue
                keys, known = self._keys(peer, fam, rib[fam], owned)
                if known is not None:
                    count += known - len(keys)  # the rest, counted without reading them
                for nlri in keys:
                    # Yield to the event loop regularly: for every STREAM_CHUNK routes written, and
                    # as often while only scanning (a `longer` match over a large table).
                    work += 1
                    if work >= STREAM_CHUNK * 10:
                        work = 0
                        if parts:
                            yield "".join(parts)
                            parts.clear()
                        await asyncio.sleep(0)
                    table = rib.get(fam)
                    if table is None or nlri not in table:
                        continue
                    attrs = table[nlri]
                    if (attrs is None and not self.received) or (contains is not None
                                                                and not contains(nlri)):
                        continue
                    count += 1
                    if self.limit and returned >= self.limit:
                        continue
                    returned += 1
                    entry = (received_entry(peer, fam, nlri, attrs) if self.received
                             else route_entry(peer, fam, nlri, attrs))
                    parts.append(("" if first else ",") + json.dumps(entry, separators=(",", ":")))
                    first = False
                    work += 9  # serialising a route costs about ten times scanning one
        if parts:
            yield "".join(parts)
        tail = {"count": count, "returned": returned, "truncated": returned < count,
                "limit": self.limit or None}
        yield "]," + json.dumps(tail, separators=(",", ":"))[1:]


def _container(prefix: bytes, fam: Family) -> Callable[[bytes], bool]:
    """A test: is an NLRI (unicast wire form) inside this prefix (or equal to it)?"""
    plen = prefix[0]
    size = 4 if fam.afi == 1 else 16
    bits = size * 8
    want = int.from_bytes(prefix[1:].ljust(size, b"\0"), "big")
    mask = ((1 << plen) - 1) << (bits - plen) if plen else 0

    def contains(nlri: bytes) -> bool:
        if nlri and nlri[0] == PATH_MARK:
            nlri = nlri[5:]  # a route with a path id: the prefix after it
        if not nlri or nlri[0] < plen:
            return False
        return int.from_bytes(nlri[1:].ljust(size, b"\0")[:size], "big") & mask == want

    return contains


def route_entry(peer: Any, fam: Family, nlri: bytes, attrs: Attributes) -> dict[str, Any]:
    try:
        prefix = nlri_to_prefix(fam, nlri)
    except Exception:
        prefix = nlri.hex()
    entry: dict[str, Any] = {"neighbor": peer.address, "family": family_name(fam), "prefix": prefix,
                             "next_hop": attrs.next_hop,
                             "origin": origin_text(attrs.origin) if attrs.origin < 3 else attrs.origin}
    _path_fields(entry, nlri)
    if attrs.as_path:
        entry["as_path"] = [list(asns) if seg == 1 else a for seg, asns in attrs.as_path
                            for a in ((asns,) if seg == 1 else asns)]
    if attrs.med is not None:
        entry["med"] = attrs.med
    if attrs.local_pref is not None:
        entry["local_preference"] = attrs.local_pref
    if attrs.communities:
        entry["communities"] = [community_text(c) for c in attrs.communities]
    if attrs.large_communities:
        entry["large_communities"] = [large_community_text(c) for c in attrs.large_communities]
    if attrs.ext_communities:
        entry["extended_communities"] = [extended_community_text(c) for c in attrs.ext_communities]
    if attrs.atomic_aggregate:
        entry["atomic_aggregate"] = True
    if attrs.aggregator is not None:
        entry["aggregator"] = f"{attrs.aggregator[0]}:{attrs.aggregator[1]}"
    owner = peer.rib_out.owner_of(fam, nlri)
    if owner is not None:
        entry["owner"] = str(owner)
    entry["route"] = route_text(prefix, attrs)
    if fam.safi == 133:
        entry.update(received_flow_fields(fam, nlri, attrs))
        entry["route"] = entry["flow"].get("text", entry["route"])
    return entry


def received_entry(peer: Any, fam: Family, nlri: bytes, attrs: Attributes | None) -> dict[str, Any]:
    """A route of the adj-rib-in. Without `adj-rib-in true` only the NLRI is kept (attributes: null)."""
    if attrs is not None:
        entry = route_entry(peer, fam, nlri, attrs)
        entry.pop("owner", None)
    else:
        try:
            prefix = nlri_to_prefix(fam, nlri)
        except Exception:
            prefix = nlri.hex()
        entry = {"neighbor": peer.address, "family": family_name(fam), "prefix": prefix,
                 "attributes": None}
        _path_fields(entry, nlri)
    if fam.safi == 133:
        entry.update(received_flow_fields(fam, nlri, attrs))
        entry["route"] = entry["flow"].get("text", entry.get("route", ""))
    entry["received"] = True
    return entry


def _path_fields(entry: dict[str, Any], key: bytes) -> None:
    """A route with an ADD-PATH path id: "prefix" is the prefix alone, "path_id" the id (number),
    "path_information" as ExaBGP writes it (0.0.0.1)."""
    if key and key[0] == PATH_MARK and not entry["family"].endswith("flow"):
        path_id = split_key(key)[0]
        assert path_id is not None
        entry["prefix"] = entry["prefix"].partition(" ")[0]
        entry["path_id"] = path_id
        entry["path_information"] = path_id_text(path_id)


# -- neighbors ------------------------------------------------------------------------------------


def peer_info(peer: Any, now: float) -> dict[str, Any]:
    n = peer.neighbor
    neg = getattr(peer, "negotiated", None)
    stats: dict[str, int] = dict(getattr(peer, "stats", {}))
    state = str(peer.state)
    since = getattr(peer, "established_since", None)
    established = since is not None and state == "Established"
    drain = getattr(peer, "drain_mode", None)
    rib_out = {family_name(f): peer.rib_out.count(f) for f in _families(peer)}
    rib_in_counts = peer.rib_in.counts() if hasattr(peer.rib_in, "counts") else {}
    received = {family_name(f): rib_in_counts.get(family_name(f), 0) for f in _families(peer)}
    for name, value in rib_in_counts.items():
        received.setdefault(name, value)
    sent = {k: (v if established and drain != "withdraw" else 0) for k, v in rib_out.items()}
    notes = getattr(peer, "notifications", {}) or {}
    return {
        "address": peer.address,
        "peer_address": n.peer_address,
        "local_address": getattr(peer, "local_address", None) or n.local_address,
        "local_as": n.local_as,
        "peer_as": n.peer_as,
        "router_id": n.router_id,
        "peer_router_id": getattr(neg, "peer_router_id", None),
        "description": getattr(n, "description", ""),
        "passive": bool(getattr(n, "passive", False)),
        "state": state,
        "established_since": since if established else None,
        "uptime": round(now - since, 3) if established and since is not None else None,
        "hold_time": getattr(neg, "hold_time", None) if neg is not None else n.hold_time,
        "keepalive": getattr(neg, "keepalive", None) if neg is not None else n.hold_time // 3,
        "configured_hold_time": n.hold_time,
        "families": {"configured": [family_name(f) for f in n.families],
                     "negotiated": [family_name(f) for f in neg.families] if neg is not None else []},
        "last_error": getattr(peer, "last_error", "") or None,
        "last_notification": getattr(peer, "last_notification", None),
        "messages": {"received": stats.get("messages_in", 0), "sent": stats.get("messages_out", 0)},
        "updates": {"received": stats.get("updates_in", 0), "sent": stats.get("updates_out", 0)},
        "notifications": {
            "received": stats.get("notifications_in", 0), "sent": stats.get("notifications_out", 0),
            "by_code": [{"direction": d, "code": c, "subcode": s, "count": k}
                        for (d, c, s), k in sorted(notes.items())]},
        "flaps": stats.get("flaps", 0),
        "established_count": stats.get("established_count", 0),
        "routes_announced": stats.get("routes_announced", 0),
        "routes_withdrawn": stats.get("routes_withdrawn", 0),
        "prefixes": {"sent": sent, "received": received},
        "adj_rib_out": rib_out,
        "maintenance": drain,
        "stats": stats,
    }


def _families(peer: Any) -> list[Family]:
    seen = list(peer.neighbor.families)
    for fam in peer.rib_out.routes:
        if fam not in seen:
            seen.append(fam)
    return seen
