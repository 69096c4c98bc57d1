"""One API program: spawn it, read its commands, write it events and acks, respawn it when it dies.

Reading (the program's stdout) gives natural back-pressure: a chunk is read, its lines are parsed and
applied, and only then is the next chunk read; while we work the pipe fills and the program's writes
block. Every few thousand lines (or few milliseconds) the loop yields to the event loop so BGP
timers and sessions keep running. Nothing is read ahead without bound: at most one chunk plus one
partial line (capped at MAX_LINE) is held.

Writing (the program's stdin: acks, events, `show` output) goes through a bounded queue drained by
its own task. A program that stops reading never blocks the agent: once the queue is full the
oldest messages are dropped and counted, with one warning per burst.

Supervision: the program is restarted when it exits, after 1 s, then 2, 4, ... up to 60 s; the delay
goes back to 1 s once a run lasted 60 s. There is no give-up (ExaBGP's "Too many respawn" is not a
state an operator wants at 3 a.m.). `respawn false` turns restarting off. Routes a program
announced stay when it exits (as in ExaBGP) unless its block says `withdraw-on-exit [SECONDS]`.

The runner knows nothing of the manager: it is given a `Dispatch` callable that carries out each
command, the routes its program owns (`OwnedRoutes`, for withdraw-on-exit) and an `on_start` hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fleetbgp.wire.nlri import Family

from ..childenv import child_environment
from ..logutil import RateLimiter, log_event, printable
from ..owner import Owner
from .commands import Command, CommandError, parse_command
from .encoders import Encoder, make_encoder

if TYPE_CHECKING:
    from fleetbgp.config.model import Process

log = logging.getLogger("fleetbgp.api")

READ_CHUNK = 65536           # bytes read from a program's stdout at a time
MAX_LINE = 1024 * 1024       # a longer command is refused (ExaBGP's MAX_COMMAND_SIZE)
YIELD_LINES = 2000           # commands applied before giving the event loop a turn ...
YIELD_SECONDS = 0.02         # ... or this long, whichever comes first
QUEUE_MAX_ITEMS = 200_000    # messages waiting for a program to read them ...
QUEUE_MAX_BYTES = 64 << 20   # ... and their size; beyond either, the oldest are dropped
WRITE_CHUNK = 256 * 1024     # bytes handed to the pipe at a time
BACKOFF_FIRST = 1.0          # seconds before the first restart
BACKOFF_MAX = 60.0           # cap of the doubling restart delay
BACKOFF_RESET = 60.0         # a run this long resets the delay to BACKOFF_FIRST
STOP_GRACE = 3.0             # SIGTERM, then SIGKILL after this long
EXIT_DRAIN = 5.0             # after the program exits, how long its remaining output may take
STDERR_BURST = 200           # stderr lines logged per STDERR_WINDOW before the rest is counted
STDERR_WINDOW = 10.0
ERRORS_BURST = 20            # command errors logged per ERRORS_WINDOW before the rest is counted
ERRORS_WINDOW = 10.0


Dispatch = Callable[["ProcessRunner", Command], Iterable[str] | None]
"""Carries out one command of a program. Returns None when it is done (the program is then answered
`done`), or output lines for the program, sent waiting for it to read them, then `done`. Raises
CommandError (answered `error`, the message logged). Route commands are the hot path: called once
per line, synchronously, so no coroutine is made per route."""


class OwnedRoutes(Protocol):
    """What withdraw-on-exit needs of the speaker: the routes an owner holds, per neighbor
    address, and taking them away."""

    def owned(self, owner: Owner) -> dict[str, dict[Family, set[bytes]]]:
        ...

    def withdraw(self, fam: Family, nlri: bytes, *, owner: Owner | None = None,
                 neighbors: Sequence[str] | None = None) -> int:
        ...

    def withdraw_owner(self, owner: Owner, neighbors: Sequence[str] | None = None) -> int:
        ...


class OutputQueue:
    """Lines for a program's stdin, bounded in count and size; the oldest go first when full."""

    def __init__(self, name: str, max_items: int | None = None, max_bytes: int | None = None) -> None:
        self.name = name
        self.max_items = max_items or QUEUE_MAX_ITEMS
        self.max_bytes = max_bytes or QUEUE_MAX_BYTES
        self.items: deque[str] = deque()
        self.size = 0
        self.dropped = 0          # total, for status/metrics
        self.burst_dropped = 0    # since the current burst began
        self.wakeup = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, text: str) -> None:
        """Queue one message (a line without its newline, or several joined with newlines)."""
        item = text + "\n"
        self.items.append(item)
        self.size += len(item)
        if len(self.items) > self.max_items or self.size > self.max_bytes:
            self._drop()
        self.wakeup.set()

    def put_many(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.put(line)

    def _drop(self) -> None:
        items = self.items
        while items and (len(items) > self.max_items or self.size > self.max_bytes):
            old = items.popleft()
            self.size -= len(old)
            self.dropped += 1
            if not self.burst_dropped:
                log.warning("process %s is not reading its input: its queue is full (%d messages, %d bytes); "
                            "dropping the oldest messages", self.name, len(items), self.size,
                            extra=log_event("api_process_blocked"))
            self.burst_dropped += 1
        self.room.clear()

    def take(self, limit: int = WRITE_CHUNK) -> str:
        """Up to `limit` characters of whole lines (at least one line), removed from the queue."""
        items = self.items
        parts = []
        size = 0
        while items and size < limit:
            item = items.popleft()
            parts.append(item)
            size += len(item)
        self.size -= size
        if not items:
            self.wakeup.clear()
            if self.burst_dropped:
                log.warning("process %s reads its input again; %d message(s) were dropped", self.name,
                            self.burst_dropped, extra=log_event("api_process_unblocked"))
                self.burst_dropped = 0
        if len(items) < self.max_items // 2 and self.size < self.max_bytes // 2:
            self.room.set()
        return "".join(parts)

    def clear(self) -> None:
        self.items.clear()
        self.size = 0
        self.wakeup.clear()
        self.room.set()


@dataclass(slots=True)
class _Grace:
    """Routes of a dead incarnation waiting for withdraw-on-exit: withdrawn at `deadline` unless the
    next incarnation announced them again (then they are its routes)."""

    deadline: float
    routes: dict[str, dict[Family, set[bytes]]]
    handle: asyncio.TimerHandle | None = None
    count: int = field(default=0)


def _count(routes: dict[str, dict[Family, set[bytes]]]) -> int:
    return sum(len(keys) for table in routes.values() for keys in table.values())


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {_signal_name(-returncode)}"
    return f"exited with code {returncode}"


class ProcessRunner:
    """A configured `process NAME { run ...; }`: its current incarnation and its supervision."""

    def __init__(self, definition: Process, dispatch: Dispatch, routes: OwnedRoutes, *,
                 on_start: Callable[[ProcessRunner], None] | None = None, default_ack: bool = True) -> None:
        self.definition = definition
        self.name = definition.name
        self.owner = Owner.process(definition.name)
        self._dispatch = dispatch
        self._routes = routes
        # called when an incarnation runs, e.g. to tell it the sessions that are already up
        self._on_start = on_start
        # acks on or off when an incarnation starts (the program may switch them)
        self.default_ack = default_ack
        self.encoder: Encoder = make_encoder(definition.encoder)
        self.queue = OutputQueue(definition.name)
        self.state = "stopped"
        self.pid: int | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.last_exit: dict[str, Any] | None = None
        self.next_restart_at: float | None = None
        self.lines = 0              # command lines read from the current incarnation
        self.errors = 0             # commands answered with error (all incarnations)
        self.ack = default_ack
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # cuts a backoff sleep short (restart with a new definition)
        self._error_limit = RateLimiter(ERRORS_BURST, ERRORS_WINDOW)
        self._stderr_limit = RateLimiter(STDERR_BURST, STDERR_WINDOW)
        self._grace: list[_Grace] = []
        self._touched: set[tuple[Family, bytes]] | None = None
        self._grace_tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._supervise(), name=f"process {self.name}")

    async def stop(self, timeout: float | None = None, *, notify: bool = True) -> None:
        """Stop for good: tell the program (ExaBGP's shutdown message), SIGTERM, SIGKILL after
        `timeout`; no zombie is left. Routes stay (the agent is stopping or the process was removed)."""
        self._stopping = True
        self._wake.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if notify:
                self.queue.put(self.encoder.shutdown())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue_empty(), 0.2)
            await self._terminate(proc, STOP_GRACE if timeout is None else timeout)
        task = self._task
        if task is not None:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.state = "stopped"
        self.next_restart_at = None
        self.cancel_grace()

    async def restart(self, definition: Process) -> None:
        """A changed definition: end the running program (as an exit: withdraw-on-exit applies with
        the definition it ran under) and start the new one at once, without backoff."""
        self._next_definition = definition
        self._restart_now = True
        for _attempt in range(200):  # a program being spawned right now: let it start, then end it
            if self.state != "starting":
                break
            await asyncio.sleep(0.01)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            await self._terminate(proc, STOP_GRACE)
        elif self._task is None or self._task.done():
            self._apply_definition()
            self._restart_now = False
            self.start()
        else:
            self._wake.set()  # in backoff: go now

    _next_definition: Process | None = None
    _restart_now = False

    def _apply_definition(self) -> None:
        new = self._next_definition
        if new is None:
            return
        self._next_definition = None
        if new.encoder != self.definition.encoder:
            self.encoder = make_encoder(new.encoder)
        self.definition = new

    async def _queue_empty(self) -> None:
        while len(self.queue):
            await asyncio.sleep(0.01)

    @staticmethod
    async def _terminate(proc: asyncio.subprocess.Process, timeout: float) -> None:
        _signal_group(proc.pid, signal.SIGTERM, leader=proc)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            log.warning("process (pid %d) did not stop within %.0f s of SIGTERM: SIGKILL", proc.pid, timeout)
            _signal_group(proc.pid, signal.SIGKILL, leader=proc)
            await proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # whatever it left behind in its group

    async def _supervise(self) -> None:
        delay = BACKOFF_FIRST
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._apply_definition()
            self._restart_now = False
            begun = loop.time()
            returncode: int | None = None
            try:
                returncode = await self._run_once()
            except OSError as exc:
                reason = exc.strerror or str(exc)
                self.last_exit = {"code": None, "signal": None, "time": time.time(), "ran_for": 0.0,
                                  "error": f"cannot start: {reason}"}
                log.error("process %s: cannot start %r: %s", self.name, " ".join(self.definition.run), reason,
                          extra=log_event("api_process_start_failed"))
            except Exception as exc:  # a bug here must not end supervision for good
                log.exception("process %s: supervision failed", self.name)
                self.last_exit = {"code": None, "signal": None, "time": time.time(), "ran_for": 0.0,
                                  "error": f"internal error: {exc!r}"}
            ran = loop.time() - begun
            if self._stopping:
                break
            self._on_exit()
            if self._restart_now:
                self.restarts += 1
                delay = BACKOFF_FIRST
                log.info("process %s: restarting with its new definition", self.name,
                         extra=log_event("api_process_restarted"))
                continue
            what = describe_exit(returncode) if returncode is not None else "could not be started"
            if not self.definition.respawn:
                self.state = "exited"
                log.warning("process %s %s after %.1f s; not restarted (respawn false)", self.name, what, ran,
                            extra=log_event("api_process_exit"))
                break
            if ran >= BACKOFF_RESET:
                delay = BACKOFF_FIRST
            self.state = "backoff"
            self.next_restart_at = time.time() + delay
            log.warning("process %s %s after %.1f s; restarting in %g s (restart #%d)", self.name, what,
                        ran, delay, self.restarts + 1, extra=log_event("api_process_exit"))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._restart_now:
                delay = BACKOFF_FIRST
            else:
                delay = min(delay * 2, BACKOFF_MAX)
            self.next_restart_at = None
            self.restarts += 1
        if self.state not in ("exited",):
            self.state = "stopped"

    async def _run_once(self) -> int:
        d = self.definition
        env = child_environment(d.env)
        self.state = "starting"
        self.queue.clear()
        self.lines = 0
        self.ack = self.default_ack
        proc = await asyncio.create_subprocess_exec(
            *d.run, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=d.working_directory, env=env, start_new_session=True,
            limit=READ_CHUNK)
        self._proc = proc
        self.pid = proc.pid
        self.started_at = time.time()
        self.state = "running"
        log.info("process %s started (pid %d): %s", self.name, proc.pid, " ".join(d.run),
                 extra=log_event("api_process_started"))
        # Sessions that came up before this program ran (agent start, respawn): say so now, so that
        # a program following neighbor-changes does not wait for a flap to learn the state.
        if self._on_start is not None:
            try:
                self._on_start(self)
            except Exception:
                log.exception("process %s: telling it the sessions' state failed", self.name)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write_loop(proc.stdin), name=f"process {self.name} stdin")
        reader = loop.create_task(self._read_loop(proc.stdout), name=f"process {self.name} stdout")
        errors = loop.create_task(self._stderr_loop(proc.stderr), name=f"process {self.name} stderr")
        try:
            returncode = await proc.wait()
            # What it wrote before exiting is still applied (a program may announce and exit).
            done, pending = await asyncio.wait({reader, errors}, timeout=EXIT_DRAIN)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("process %s: reading its output failed: %r", self.name, task.exception())
        finally:
            for task in (reader, errors, writer):
                task.cancel()
            for task in (reader, errors, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if proc.returncode is None:
                await self._terminate(proc, STOP_GRACE)
            else:
                _signal_group(proc.pid, signal.SIGTERM)  # children it left running
            with contextlib.suppress(Exception):
                proc.stdin.close()
            self._proc = None
            self.pid = None
        ran = time.time() - (self.started_at or time.time())
        self.last_exit = {"code": returncode if returncode >= 0 else None,
                          "signal": _signal_name(-returncode) if returncode < 0 else None,
                          "time": time.time(), "ran_for": round(ran, 3)}
        self.queue.clear()
        return returncode

    # -- stdin ------------------------------------------------------------------------------------

    async def _write_loop(self, stdin: asyncio.StreamWriter) -> None:
        queue = self.queue
        try:
            while True:
                await queue.wakeup.wait()
                while len(queue):
                    stdin.write(queue.take().encode("utf-8", "replace"))
                    await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("process %s closed its input", self.name)
            queue.clear()

    def send(self, lines: list[str]) -> None:
        """Events for the program (from the speaker's event callback: never blocks)."""
        if self.state == "running":
            for line in lines:
                self.queue.put(line)

    async def send_waiting(self, lines: Iterable[str], timeout: float = 30.0) -> bool:
        """Command output (`show ...`): waits for the program to read when the queue is full, so a
        large answer is not dropped; gives up after `timeout` seconds without progress."""
        queue = self.queue
        for line in lines:
            if not queue.room.is_set():
                try:
                    await asyncio.wait_for(queue.room.wait(), timeout)
                except TimeoutError:
                    return False
            queue.put(line)
        return True

    # -- stdout: commands -------------------------------------------------------------------------

    async def _read_loop(self, stdout: asyncio.StreamReader) -> None:
        partial = b""
        skipping = False  # inside an over-long line: drop up to its end
        loop = asyncio.get_running_loop()
        budget_end = loop.time() + YIELD_SECONDS
        handled = 0
        while True:
            chunk = await stdout.read(READ_CHUNK)
            if not chunk:
                break
            end = chunk.rfind(b"\n")
            if end < 0:
                if skipping:
                    continue
                partial += chunk
                if len(partial) > MAX_LINE:
                    self.lines += 1
                    self._answer_error(f"command longer than {MAX_LINE} bytes: ignored", "")
                    partial = b""
                    skipping = True
                continue
            data = partial + chunk[:end] if partial else chunk[:end]
            partial = chunk[end + 1:]
            if skipping:
                cut = data.find(b"\n")
                data = data[cut + 1:] if cut >= 0 else b""
                skipping = False
                if cut < 0:
                    continue
            for line in data.decode("utf-8", "replace").split("\n"):
                try:
                    output = self._handle_line(line)
                    if output is not None:
                        await self._answer_with(output, line)
                except Exception as exc:  # last resort: whatever one line does, read the next
                    self._answer_internal(exc, line)
                handled += 1
                if handled >= YIELD_LINES or loop.time() >= budget_end:
                    handled = 0
                    await asyncio.sleep(0)
                    budget_end = loop.time() + YIELD_SECONDS
        if partial and not skipping:
            line = partial.decode("utf-8", "replace")
            try:
                output = self._handle_line(line)
                if output is not None:
                    await self._answer_with(output, line)
            except Exception as exc:
                self._answer_internal(exc, line)

    def _handle_line(self, line: str) -> Iterable[str] | None:
        """Parse a line and carry it out. Output for the program is returned, to be sent by
        `_answer_with`, which may wait."""
        self.lines += 1
        if line.endswith("\r"):
            line = line[:-1]
        try:
            cmd = parse_command(line)
        except CommandError as exc:
            if not line.strip():
                return None  # blank lines are not commands: no answer
            if line.startswith("debug "):
                log.warning("process %s: debug: %s", self.name, printable(line[6:]))
                return None
            self._answer_error(exc.message, line)
            return None
        except Exception as exc:  # a bug on one line must not stop reading the program
            self._answer_internal(exc, line)
            return None
        try:
            output = self._dispatch(self, cmd)
        except CommandError as exc:
            self._answer_error(exc.message, line)
            return None
        except Exception as exc:  # a bug must not take the program's session down
            self._answer_internal(exc, line)
            return None
        if output is not None:
            return output
        if self.ack:
            self.queue.put(self.encoder.ack_done)
        return None

    async def _answer_with(self, output: Iterable[str], line: str) -> None:
        """A command's output lines (they may be produced as they are sent), then `done`."""
        try:
            await self.send_waiting(output)
        except CommandError as exc:
            self._answer_error(exc.message, line)
            return
        except Exception as exc:
            self._answer_internal(exc, line)
            return
        if self.ack:
            self.queue.put(self.encoder.ack_done)

    # -- acks: the program's switches (carried out by the dispatch, as any command) ----------------

    def enable_ack(self) -> None:
        """`enable-ack`: answered `done`, as every command from now on."""
        self.ack = True

    def disable_ack(self) -> None:
        """`disable-ack`: answered `done`, and nothing after it."""
        self.queue.put(self.encoder.ack_done)
        self.ack = False

    def silence_ack(self) -> None:
        """`silence-ack`: not even this line is answered."""
        self.ack = False

    def _answer_error(self, reason: str, line: str, exc: BaseException | None = None) -> None:
        self.errors += 1
        ok, held = self._error_limit.allow()
        if held:
            log.warning("process %s: %d more command error(s) not logged", self.name, held,
                        extra=log_event("api_command_error"))
        if ok:
            shown = line if len(line) <= 200 else line[:200] + "..."
            # The reason quotes the program's words: escaped like the repr() of the line (which
            # leaves U+FFFD, the trace of bytes that were not UTF-8, unescaped: done here).
            reason = printable(reason)
            if len(reason) > 500:  # a reason quoting a huge token must not make a huge log line
                reason = reason[:500] + "..."
            log.log(logging.ERROR if exc else logging.WARNING, "process %s line %d: %s (command: %s)",
                    self.name, self.lines, reason, repr(shown).replace("\ufffd", "\\ufffd"),
                    exc_info=exc, extra=log_event("api_command_error"))
        if self.ack:
            self.queue.put(self.encoder.ack_error)

    def _answer_internal(self, exc: Exception, line: str) -> None:
        """An unexpected exception from one command (a bug, not bad input): that line's error, with
        the traceback logged (rate-limited like other errors); the next line is read as usual."""
        self._answer_error(f"internal error: {type(exc).__name__}: {exc}", line, exc)

    # -- stderr -----------------------------------------------------------------------------------

    async def _stderr_loop(self, stderr: asyncio.StreamReader) -> None:
        partial = b""
        while True:
            chunk = await stderr.read(READ_CHUNK)
            if not chunk:
                break
            data = partial + chunk
            lines = data.split(b"\n")
            partial = lines.pop()
            if len(partial) > 8192:
                lines.append(partial)
                partial = b""
            for raw in lines:
                self._log_stderr(raw)
        if partial:
            self._log_stderr(partial)

    def _log_stderr(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip()
        if not text:
            return
        ok, held = self._stderr_limit.allow()
        if held:
            log.warning("process %s: %d more stderr line(s) not logged", self.name, held,
                        extra=log_event("api_process_stderr"))
        if ok:
            if len(text) > 2000:
                text = text[:2000] + "..."
            log.warning("process %s: %s", self.name, text, extra=log_event("api_process_stderr"))

    # -- withdraw-on-exit ---------------------------------------------------------------------------

    def touched(self, family: Family, nlri: bytes) -> None:
        """The running incarnation announced or withdrew a route (called only while a grace is pending)."""
        touched = self._touched
        if touched is not None:
            touched.add((family, nlri))

    @property
    def tracking(self) -> bool:
        return self._touched is not None

    def _on_exit(self) -> None:
        grace = self.definition.withdraw_on_exit
        if grace is None:
            return
        routes = self._routes
        if grace == 0:
            self.cancel_grace()
            count = routes.withdraw_owner(self.owner)
            log.warning("process %s: withdrew its %d route(s) (withdraw-on-exit)", self.name, count,
                        extra=log_event("api_routes_withdrawn"))
            return
        owned = routes.owned(self.owner)
        by_family: dict[Family, set[bytes]] = {}
        for fam, nlri in self._touched or ():
            by_family.setdefault(fam, set()).add(nlri)
        pending: dict[str, dict[Family, set[bytes]]] = {}
        for group in self._grace:
            # Routes the incarnation that just died announced again are no longer on the old clock.
            for table in group.routes.values():
                for fam, keys in table.items():
                    keys -= by_family.get(fam, set())
            group.count = _count(group.routes)
            for addr, table in group.routes.items():
                mine = pending.setdefault(addr, {})
                for fam, keys in table.items():
                    mine.setdefault(fam, set()).update(keys)
        fresh: dict[str, dict[Family, set[bytes]]] = {}
        for addr, table in owned.items():
            for fam, keys in table.items():
                left = keys - pending.get(addr, {}).get(fam, set())
                if left:
                    fresh.setdefault(addr, {})[fam] = left
        self._touched = set()
        count = _count(fresh)
        if not count:
            if not self._grace:
                self._touched = None
            return
        loop = asyncio.get_running_loop()
        group = _Grace(deadline=time.time() + grace, routes=fresh, count=count)
        group.handle = loop.call_later(grace, self._grace_expired, group)
        self._grace.append(group)
        log.warning("process %s: its %d route(s) will be withdrawn in %d s unless it announces them "
                    "again (withdraw-on-exit)", self.name, count, grace,
                    extra=log_event("api_routes_withdraw_pending"))

    def _grace_expired(self, group: _Grace) -> None:
        with contextlib.suppress(ValueError):
            self._grace.remove(group)
        touched = self._touched or set()
        if not self._grace:
            self._touched = None
        task = asyncio.get_running_loop().create_task(self._withdraw_group(group, touched))
        self._grace_tasks.add(task)
        task.add_done_callback(self._grace_tasks.discard)

    async def _withdraw_group(self, group: _Grace, touched: set[tuple[Family, bytes]]) -> None:
        routes = self._routes
        owned = routes.owned(self.owner)  # only what is still ours (another owner may have taken some)
        count = 0
        for addr, table in group.routes.items():
            still = owned.get(addr, {})
            for fam, keys in table.items():
                mine = still.get(fam, set())
                for nlri in keys:
                    if nlri not in mine or (fam, nlri) in touched:
                        continue
                    try:
                        count += routes.withdraw(fam, nlri, owner=self.owner, neighbors=[addr])
                    except ValueError:
                        break  # the neighbor is gone
                    if count % 5000 == 0:
                        await asyncio.sleep(0)
        log.warning("process %s: withdrew %d route(s) it did not announce again within %d s "
                    "(withdraw-on-exit)", self.name, count, self.definition.withdraw_on_exit or 0,
                    extra=log_event("api_routes_withdrawn"))

    def cancel_grace(self) -> None:
        for group in self._grace:
            if group.handle is not None:
                group.handle.cancel()
        self._grace.clear()
        self._touched = None

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "run": shlex.join(self.definition.run),
            "encoder": self.definition.encoder,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": dict(self.last_exit) if self.last_exit else None,
            "next_restart_at": self.next_restart_at,
            "lines": self.lines,
            "errors": self.errors,
            "queued": len(self.queue),
            "dropped": self.queue.dropped,
            "ack": self.ack,
            "withdraw_on_exit": self.definition.withdraw_on_exit,
            "pending_withdrawals": [{"at": g.deadline, "routes": g.count} for g in self._grace],
        }


def _signal_group(pid: int, sig: int, *, leader: asyncio.subprocess.Process | None = None) -> None:
    """Signal the program's process group (it leads one: start_new_session), so helpers it started
    (`sh -c`, pipelines) go too. A group that no longer exists is fine. The leader alone is signalled
    only while it is known not to be reaped (its pid cannot have been reused then)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        if leader is not None and leader.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
