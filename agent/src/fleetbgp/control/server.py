"""The control socket's server: the unix socket (created with its mode and group, a stale one
from a dead agent removed, ours removed at the end), its clients (a limit, refusals logged
sparingly, idle and half-sent lines timed out) and, per request line, the command looked up in the
registry (commands.py) and its reply written (protocol.py)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..literals import decimal
from ..logutil import log_event
from .commands import COMMANDS, Command, Context
from .protocol import (
    STREAM_TAIL,
    ControlError,
    LineTooLong,
    RequestId,
    Stream,
    parse_request,
    reply_line,
    rest_of_line,
    short,
    stream_head,
)

if TYPE_CHECKING:
    from ..settings import AgentSettings
    from .ports import SpeakerPort

log = logging.getLogger("fleetbgp.control")

MAX_LINE = 1 << 20            # bytes in one request line
IDLE_TIMEOUT = 600.0          # a client that sends nothing (or reads nothing) this long is disconnected
LINE_TIMEOUT = 5.0            # once a request line has begun, it must end (newline) within this
REFUSED_LOG_INTERVAL = 60.0   # at most one "refusing a client" warning per this many seconds


class ControlServer:
    """Serves `commands` (by default every registered one) for `speaker` on settings.control_socket.
    Everything runs on the event loop thread, like every other caller of the Speaker."""

    def __init__(self, speaker: SpeakerPort, settings: AgentSettings, *,
                 commands: Mapping[str, Command] | None = None) -> None:
        self.speaker = speaker
        self.settings = settings
        self.path = settings.control_socket
        self.max_clients = settings.control_max_clients
        self.commands = COMMANDS if commands is None else commands
        self._context = Context(speaker, self.path)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._inode: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket file we made
        self._group_name: str | None = None
        self._refused_logged_at: float | None = None  # monotonic time of the last refusal warning
        self._refused_unlogged = 0                     # refusals since then, not logged one by one

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
                 f", group {self._group_name}" if self._group_name else "",
                 extra=log_event("control_listening"))

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
                writer.write(reply_line(None, error=ControlError(
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
                line, ended = await asyncio.wait_for(rest_of_line(reader, first), LINE_TIMEOUT)
            except TimeoutError:
                log.debug("control: dropping %s: a request line not finished within %g s", who,
                          LINE_TIMEOUT)
                writer.write(reply_line(None, error=ControlError(
                    "bad_request", f"request line not finished within {LINE_TIMEOUT:g} s "
                                   "(a request ends with a newline)")))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.drain(), 1.0)
                return
            except LineTooLong:
                writer.write(reply_line(None, error=ControlError(
                    "too_large", f"request line longer than {MAX_LINE} bytes")))
                await _drain(writer)
                continue
            if line.strip():
                await self._handle_line(line, writer, who)
            if ended:
                return  # the last request had no newline: answered, and the client is gone

    async def _handle_line(self, line: bytes, writer: asyncio.StreamWriter, who: str) -> None:
        request_id: RequestId = None
        try:
            request = parse_request(line, self.commands)  # on error, the id travels in the exception
            request_id = request.id
            command = self.commands[request.cmd]
            (log.info if command.changes else log.debug)("control: %s %s from %s", request.cmd,
                                                         short(command.logged(request.args)), who)
            result = await command.run(self._context, request.args)
        except ControlError as exc:
            request_id = exc.request_id if request_id is None else request_id
            log.debug("control: error reply to %s: %s: %s", who, exc.code, exc.message)
            writer.write(reply_line(request_id, error=exc))
        except Exception as exc:
            log.exception("control: internal error serving %s", short(line.decode("utf-8", "replace")))
            writer.write(reply_line(request_id, error=ControlError(
                "internal", f"internal error: {type(exc).__name__}: {exc}")))
        else:
            if isinstance(result, Stream):
                await self._write_stream(writer, request_id, result)
            else:
                writer.write(reply_line(request_id, result=result))
        await _drain(writer)

    @staticmethod
    async def _write_stream(writer: asyncio.StreamWriter, request_id: RequestId, stream: Stream) -> None:
        writer.write(stream_head(request_id))
        async for chunk in stream.chunks:
            writer.write(chunk.encode())
            await _drain(writer)
        writer.write(STREAM_TAIL)


async def _drain(writer: asyncio.StreamWriter) -> None:
    """A client that reads none of its replies must not hold its slot for ever: it gets as long as
    a silent one (TimeoutError ends the connection)."""
    await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)


def _peer_credentials(writer: asyncio.StreamWriter) -> str:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
    except (OSError, AttributeError, struct.error):
        return "unknown client"
    return f"pid {pid} uid {uid}"


def _chown_group(path: str, gid: int) -> None:
    try:
        # Under systemd's syscall filter chown is refused; with the group already right (the
        # agent's own primary group) there is nothing to change, so do not ask.
        if os.stat(path).st_gid == gid:
            return
        os.chown(path, -1, gid)
    except OSError as exc:
        log.warning("cannot give %s to group %d: %s", path, gid, exc.strerror)
