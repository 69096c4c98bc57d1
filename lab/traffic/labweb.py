#!/usr/bin/env python3
"""labweb: the tiny HTTP service every lab server runs; it answers with its own name.

Usage::

    python3 labweb.py [--listen ADDR:PORT ...] [--name NAME] [--access-log]

Every request gets ``200 OK`` with ``Content-Type: text/plain``, ``Connection: close``, a
``Content-Length`` and the body ``NAME\\n``: NAME is ``--name`` or, by default, the host name.
A client behind an anycast address thereby learns which server answered. ``GET /health`` answers
``200`` with the body ``ok\\n``. The connection is closed after each response (no keep-alive).

Listening:

- default ``[::]:80``: ONE dual-stack socket (IPV6_V6ONLY=0) that answers IPv4 and IPv6 on every
  address of the host, including the service addresses configured on ``lo``. If the kernel has no
  IPv6, the default falls back to ``0.0.0.0:80``.
- ``--listen`` (repeatable) replaces the default: ``0.0.0.0:8080``, ``[::1]:8080``, ``:8080``
  (the same as ``[::]:8080``), ``127.0.0.1:0`` (an ephemeral port; the startup line says which).
  ``[::]`` is always dual-stack, every other IPv6 address is IPv6-only, so ``[::]:P`` and
  ``0.0.0.0:P`` conflict, while ``[::1]:P`` and ``127.0.0.1:P`` coexist.

Robustness (it must never crash on what a client sends): a request line that does not parse gets
``400``; a request head larger than 16 KiB gets ``431``; a client that has not sent its whole
request head within 5 s gets ``408``. Errors on one connection never affect the others.

Logging goes to stderr: one line at startup (``labweb: NAME listening on ADDR:PORT, ...``, with
the real ports), one when stopping, and with ``--access-log`` one line per request. SIGTERM (and
SIGINT) stop accepting, let in-flight responses finish for up to a second, and exit 0.

From Python (tests)::

    servers = await serve(["127.0.0.1:0"], "srv1")      # inside a running event loop
    port = bound_addresses(servers)[0][1]

    with BackgroundServer(["127.0.0.1:0"], "srv1") as web:  # in a thread of its own
        host, port = web.addresses[0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import re
import signal
import socket
import sys
import threading
import weakref
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import urlsplit

DEFAULT_LISTEN = "[::]:80"
READ_TIMEOUT = 5.0  # seconds for the whole request head: a slow client cannot hold a slot longer
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_LINE = 8 * 1024  # bytes of one line (the StreamReader's buffer limit)
LINGER_TIMEOUT = 1.0  # seconds to wait for the client's close after our response (see _linger)
LINGER_BYTES = 64 * 1024
STOP_GRACE = 1.0  # seconds in-flight connections get after SIGTERM
BACKLOG = 1024  # load tests open hundreds of connections per second; don't drop SYNs in bursts

REASONS = {
    200: "OK",
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
}

# method SP request-target SP HTTP-version (RFC 9112 section 3); anything else is a 400.
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s]+) HTTP/(\d)\.(\d)\r?\n")


class BadRequest(Exception):
    """The client sent something we answer with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def parse_listen(spec: str) -> tuple[str, int]:
    """``ADDR:PORT`` -> (addr, port); IPv6 in brackets; ``:PORT`` or ``PORT`` mean ``[::]:PORT``."""
    spec = spec.strip()
    if spec.startswith("["):
        host, sep, port = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f"{spec!r}: expected [IPV6]:PORT")
    elif ":" in spec:
        host, _, port = spec.rpartition(":")
        if ":" in host:
            raise ValueError(f"{spec!r}: put IPv6 addresses in brackets, e.g. [::1]:8080")
    else:
        host, port = "", spec
    host = host or "::"
    if host == "*":
        host = "::"
    ipaddress.ip_address(host)  # raises ValueError: names are not accepted, only addresses
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{spec!r}: bad port {port!r}")
    return host, int(port)


def format_addr(host: str, port: int) -> str:
    """(host, port) -> ``host:port`` or ``[host]:port`` for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket; ``::`` is dual-stack, other IPv6 addresses are IPv6-only."""
    ip = ipaddress.ip_address(host)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Restarts must not wait for TIME_WAIT connections of the previous instance.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # Explicit in both directions: the default (net.ipv6.bindv6only) varies by host.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if ip.is_unspecified else 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _Service:
    """The connection handler: reads one request, answers it, closes."""

    def __init__(self, name: str, access_log: bool, read_timeout: float) -> None:
        self.body = (name + "\n").encode()
        self.access_log = access_log
        self.read_timeout = read_timeout
        self.active: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.CancelledError):
            pass  # the client went away, or we are stopping: nothing to answer
        except Exception as exc:  # a bug must cost one connection, never the service
            log(f"labweb: error on a connection: {exc!r}")
        finally:
            writer.close()
            if task is not None:
                self.active.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.read_timeout):
                request = await read_request_head(reader)
        except BadRequest as exc:
            await self._respond(writer, exc.status, b"", head_only=False, what="-")
            await _linger(reader)
            return
        except TimeoutError:
            await self._respond(writer, 408, b"", head_only=False, what="-")
            return
        if request is None:
            return  # connected and closed without a request (port checks, health probes)
        method, target = request
        path = urlsplit(target.decode("latin-1")).path
        body = b"ok\n" if path == "/health" else self.body
        await self._respond(writer, 200, body, head_only=method == b"HEAD", what=f"{method.decode()} {path}")
        await _linger(reader)

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, *, head_only: bool, what: str
    ) -> None:
        if status != 200:
            body = f"{status} {REASONS[status]}\n".encode()
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\n"
            "Content-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head if head_only else head + body)
        # FIN right after the response: the client sees the end at once and we, not it, keep the
        # TIME_WAIT state (a load client opening hundreds of connections a second would otherwise
        # pile them up).
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(self.read_timeout):
            await writer.drain()
        if self.access_log:
            peer = writer.get_extra_info("peername")
            log(f"labweb: {peer[0] if peer else '?'} {what} {status}")


async def read_request_head(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """Read the request line and headers; (method, target), or None on EOF before a request.

    Raises BadRequest(400) for an unparseable request line and BadRequest(431) for a head over
    MAX_HEAD bytes. EOF after a valid request line answers the request anyway (``printf 'GET /
    HTTP/1.0\\r\\n' | nc`` is an operator's test too).
    """
    line = await _readline(reader)
    # RFC 9112 2.2: ignore at least one empty line before the request line.
    for _ in range(4):
        if line not in (b"\r\n", b"\n"):
            break
        line = await _readline(reader)
    if not line:
        return None
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise BadRequest(400)
    size = len(line)
    while True:
        header = await _readline(reader)
        size += len(header)
        if size > MAX_HEAD:
            raise BadRequest(431)
        if header in (b"\r\n", b"\n", b""):
            return match.group(1), match.group(2)


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError:  # a line longer than the reader's limit (MAX_LINE)
        raise BadRequest(431) from None


async def _linger(reader: asyncio.StreamReader) -> None:
    """Wait briefly for the client to close, discarding what it still sends.

    Closing a socket with unread input makes the kernel send RST, which can destroy the response
    still in flight to the client (a 400 for a garbage request would then never arrive).
    """
    with contextlib.suppress(TimeoutError, OSError, ValueError):
        async with asyncio.timeout(LINGER_TIMEOUT):
            discarded = 0
            while discarded < LINGER_BYTES:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                discarded += len(chunk)


# Which service a server feeds, so that stop() can wait for its in-flight connections.
_SERVICES: weakref.WeakKeyDictionary[asyncio.Server, _Service] = weakref.WeakKeyDictionary()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def serve(
    listens: Sequence[str], name: str, *, access_log: bool = False, read_timeout: float = READ_TIMEOUT
) -> list[asyncio.Server]:
    """Start serving on every ``ADDR:PORT`` of ``listens``; return the started servers.

    Must be called inside a running event loop; ``stop()`` them (or close them) to stop. Raises
    OSError if an address cannot be bound (nothing is left listening then). ``read_timeout`` is
    there for tests, which cannot wait 5 s for a slow client to be cut off.
    """
    service = _Service(name, access_log, read_timeout)
    servers: list[asyncio.Server] = []
    try:
        for spec in listens:
            sock = bind_socket(*parse_listen(spec))
            server = await asyncio.start_server(service.handle, sock=sock, backlog=BACKLOG, limit=MAX_LINE)
            servers.append(server)
    except BaseException:
        for server in servers:
            server.close()
        raise
    for server in servers:
        _SERVICES[server] = service
    return servers


def bound_addresses(servers: Sequence[asyncio.Server]) -> list[tuple[str, int]]:
    """The (address, port) each server really listens on (ephemeral ports resolved)."""
    result = []
    for server in servers:
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            result.append((str(host), int(port)))
    return result


async def stop(servers: Sequence[asyncio.Server], grace: float = STOP_GRACE) -> None:
    """Stop accepting; give in-flight connections ``grace`` seconds, then cancel them."""
    for server in servers:
        server.close()
    active: set[asyncio.Task[None]] = set()
    for server in servers:
        service = _SERVICES.get(server)
        if service is not None:
            active |= service.active
    if active:
        _, pending = await asyncio.wait(active, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)


class BackgroundServer:
    """labweb in a thread with its own event loop, for tests: a context manager.

    ``addresses`` holds the bound (address, port) pairs once ``__enter__`` returns.
    """

    def __init__(
        self,
        listens: Sequence[str],
        name: str,
        *,
        access_log: bool = False,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.listens = list(listens)
        self.name = name
        self.access_log = access_log
        self.read_timeout = read_timeout
        self.addresses: list[tuple[str, int]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"labweb-{name}", daemon=True)
        self._servers: list[asyncio.Server] = []

    def start(self) -> BackgroundServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            serve(self.listens, self.name, access_log=self.access_log, read_timeout=self.read_timeout),
            self._loop,
        )
        try:
            self._servers = future.result(timeout=10)
        except BaseException:
            self._shutdown_loop()
            raise
        self.addresses = bound_addresses(self._servers)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(self._servers), self._loop).result(timeout=10)
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def _bind_default(name: str, access_log: bool) -> list[asyncio.Server]:
    try:
        return await serve([DEFAULT_LISTEN], name, access_log=access_log)
    except OSError as exc:
        if exc.errno != errno.EAFNOSUPPORT:
            raise
        log("labweb: no IPv6 in this kernel, listening on IPv4 only")
        return await serve(["0.0.0.0:80"], name, access_log=access_log)


async def run(listens: Sequence[str] | None, name: str, access_log: bool) -> int:
    """The program: serve until SIGTERM or SIGINT; the exit status."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signalled: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        signalled.append(sig.name)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if listens:
            servers = await serve(listens, name, access_log=access_log)
        else:
            servers = await _bind_default(name, access_log)
    except OSError as exc:
        log(f"labweb: cannot listen: {exc}")
        return 1
    where = ", ".join(format_addr(h, p) for h, p in bound_addresses(servers))
    log(f"labweb: {name} listening on {where}")
    await stopping.wait()
    log(f"labweb: stopping ({signalled[0] if signalled else 'stop'})")
    await stop(servers)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="labweb.py",
        description="Answer every HTTP request with this host's name (lab service).",
    )
    parser.add_argument(
        "--listen",
        action="append",
        metavar="ADDR:PORT",
        help=f"address to listen on, repeatable (default {DEFAULT_LISTEN}, dual-stack); "
        "IPv6 in brackets, port 0 for an ephemeral one",
    )
    parser.add_argument("--name", help="name to answer with (default: the host name)")
    parser.add_argument("--access-log", action="store_true", help="log one line per request to stderr")
    args = parser.parse_args(argv)
    for spec in args.listen or ():
        try:
            parse_listen(spec)
        except ValueError as exc:
            parser.error(f"--listen: {exc}")
    if args.name is not None and (not args.name or "\n" in args.name):
        parser.error("--name must be a non-empty single line")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    name = args.name or socket.gethostname()
    return asyncio.run(run(args.listen, name, args.access_log))


if __name__ == "__main__":
    sys.exit(main())
