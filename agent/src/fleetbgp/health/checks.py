"""The checks: tcp, http(s), dns and command, as coroutines that never raise (but for cancellation).

No child process where one is not needed: tcp is a connect, http a minimal HTTP/1.1 GET (http and
https, stdlib ssl), dns one UDP query (A, AAAA, ...) parsed here. `command` runs a shell command
in its own process group, killed (the whole group) when the timeout expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import ssl
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fleetbgp import __version__
from fleetbgp.config.model import CheckSpec, CommandCheckSpec, DnsCheckSpec, HttpCheckSpec, TcpCheckSpec
from fleetbgp.config.targets import DnsError, encode_name, split_url
from fleetbgp.literals import decimal

from ..childenv import child_environment

OUTPUT_KEEP = 200  # characters of a command's output kept for the status text


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    text: str
    elapsed: float = 0.0


def describe(spec: CheckSpec) -> str:
    if isinstance(spec, TcpCheckSpec):
        return f"tcp {_hostport(spec.host, spec.port)}"
    if isinstance(spec, HttpCheckSpec):
        extra = f" status {spec.status}" if spec.status is not None else ""
        return f"http {spec.url}{extra}{' insecure' if spec.insecure else ''}"
    if isinstance(spec, DnsCheckSpec):
        where = f" server {spec.server}" if spec.server else ""
        port = f" port {spec.port}" if spec.port != 53 else ""
        return f"dns {spec.name} type {spec.qtype}{where}{port}"
    return f"command {spec.command!r}"


async def run_check(spec: CheckSpec, timeout: float) -> Result:
    """Run one check with a timeout. Never raises (asyncio.CancelledError excepted)."""
    start = time.monotonic()
    try:
        if isinstance(spec, TcpCheckSpec):
            result = await tcp_check(spec.host, spec.port, timeout)
        elif isinstance(spec, HttpCheckSpec):
            result = await http_check(spec.url, timeout, status=spec.status, insecure=spec.insecure)
        elif isinstance(spec, DnsCheckSpec):
            result = await dns_check(spec.name, timeout, qtype=spec.qtype, server=spec.server,
                                     port=spec.port)
        elif isinstance(spec, CommandCheckSpec):
            result = await command_check(spec.command, timeout)
        else:  # pragma: no cover - the config only makes the kinds above
            return Result(False, f"unknown check {spec!r}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a check must never take its runner down
        result = Result(False, f"check failed: {exc.__class__.__name__}: {exc}")
    return Result(result.ok, result.text, time.monotonic() - start)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ms(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.1f} ms"


def _oserror(exc: OSError) -> str:
    if exc.errno:  # asyncio's "Connect call failed (...)" hides the reason: name it
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or exc.__class__.__name__


# ------------------------------------------------------------------------------------------------
# tcp


async def tcp_check(host: str, port: int, timeout: float) -> Result:
    start = time.monotonic()
    where = _hostport(host, port)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Result(False, f"tcp {where}: no connection within {timeout:g} s")
    except OSError as exc:
        return Result(False, f"tcp {where}: {_oserror(exc)}")
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return Result(True, f"tcp {where}: connected in {_ms(start)}")


# ------------------------------------------------------------------------------------------------
# http


async def http_check(url: str, timeout: float, *, status: int | None = None,
                     insecure: bool = False) -> Result:
    """GET url; ok when the status is `status`, or any 2xx/3xx when None (as `curl -sf`)."""
    start = time.monotonic()
    try:
        return await asyncio.wait_for(_http_get(url, status, insecure, start), timeout)
    except TimeoutError:
        return Result(False, f"GET {url}: no answer within {timeout:g} s")
    except ssl.SSLError as exc:
        return Result(False, f"GET {url}: TLS: {exc.reason or exc}")
    except OSError as exc:
        return Result(False, f"GET {url}: {_oserror(exc)}")


async def _http_get(url: str, want: int | None, insecure: bool, start: float) -> Result:
    scheme, host, port, target, netloc = split_url(url)
    context: ssl.SSLContext | None = None
    if scheme == "https":
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                   server_hostname=host if context else None)
    try:
        request = (f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\n"
                   f"User-Agent: fleetbgp-healthcheck/{__version__}\r\n"
                   "Accept: */*\r\nConnection: close\r\n\r\n")
        writer.write(request.encode("ascii", "backslashreplace"))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)
    words = line.decode("latin-1").split(None, 2)
    code = decimal(words[1], 999) if len(words) >= 2 and words[0].startswith("HTTP/") else None
    if code is None:
        shown = line[:60].decode("latin-1").strip() or "nothing"
        return Result(False, f"GET {url}: not an HTTP response ({shown!r})")
    ok = code == want if want is not None else 200 <= code < 400
    expected = f" (expected {want})" if want is not None and not ok else ""
    return Result(ok, f"GET {url}: {code}{expected} in {_ms(start)}")


# ------------------------------------------------------------------------------------------------
# dns

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33}
_QTYPE_NAMES = {v: k for k, v in QTYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
RESOLV_CONF = "/etc/resolv.conf"


def build_query(name: str, qtype: int, ident: int) -> bytes:
    """A standard query, recursion desired (RFC 1035 4.1)."""
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, 1)


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name at offset: (name, offset after it in the message)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise DnsError("truncated name")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsError("truncated pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            if jumps > 64:
                raise DnsError("name compression loop")
            continue
        if length & 0xC0:
            raise DnsError("bad label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            raise DnsError("truncated label")
        labels.append(data[offset:offset + length].decode("ascii", "backslashreplace"))
        offset += length
    return ".".join(labels) + ".", (end if end >= 0 else offset)


def _rdata_text(rtype: int, rdata: bytes, data: bytes, offset: int) -> str:
    if rtype == 1 and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == 28 and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (2, 5, 12):
        return _read_name(data, offset)[0]
    return rdata.hex()


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    rcode: int
    truncated: bool
    answers: list[tuple[int, str]]  # (type, value as text)


def parse_response(data: bytes, ident: int, name: str, qtype: int) -> DnsAnswer:
    """Check that `data` answers our query and read its answer section."""
    if len(data) < 12:
        raise DnsError("short DNS message")
    rid, flags, qd, an, _ns_count, _ar_count = struct.unpack_from("!HHHHHH", data)
    if rid != ident:
        raise DnsError("answer to another query (id mismatch)")
    if not flags & 0x8000:
        raise DnsError("not a response")
    offset = 12
    want = encode_name(name)
    for _question in range(qd):
        qname, offset = _read_name(data, offset)
        if offset + 4 > len(data):
            raise DnsError("truncated question")
        rtype, _rclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        if encode_name(qname).lower() != want.lower() or rtype != qtype:
            raise DnsError("answer to another question")
    answers: list[tuple[int, str]] = []
    for _answer in range(an):
        _name, offset = _read_name(data, offset)
        if offset + 10 > len(data):
            raise DnsError("truncated answer")
        rtype, _rclass, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if offset + length > len(data):
            raise DnsError("truncated answer data")
        answers.append((rtype, _rdata_text(rtype, data[offset:offset + length], data, offset)))
        offset += length
    return DnsAnswer(flags & 0x000F, bool(flags & 0x0200), answers)


def system_nameservers(path: str = RESOLV_CONF) -> list[str]:
    """The `nameserver` lines of resolv.conf (127.0.0.1 when there is none, as the resolver does)."""
    servers: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    addr = words[1].split("%")[0]
                    with contextlib.suppress(ValueError):
                        servers.append(str(ipaddress.ip_address(addr)))
    except OSError:
        pass
    return servers or ["127.0.0.1"]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)


async def _dns_query(server: str, port: int, name: str, qtype: int, timeout: float) -> DnsAnswer:
    loop = asyncio.get_running_loop()
    ident = secrets.randbits(16)
    transport, proto = await loop.create_datagram_endpoint(_Udp, remote_addr=(server, port))
    try:
        transport.sendto(build_query(name, qtype, ident))
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            got = await asyncio.wait_for(proto.queue.get(), left)
            if isinstance(got, Exception):
                raise got
            try:
                return parse_response(got, ident, name, qtype)
            except DnsError:
                continue  # not the answer to this query: keep waiting for it
    finally:
        transport.close()


async def dns_check(name: str, timeout: float, *, qtype: str = "A", server: str | None = None,
                    port: int = 53, resolv_conf: str = RESOLV_CONF) -> Result:
    """One query; ok when the answer is NOERROR with at least one record of the type asked."""
    start = time.monotonic()
    code = QTYPES[qtype.upper()]
    servers = [server] if server else system_nameservers(resolv_conf)
    per_server = timeout / len(servers)
    problems: list[str] = []
    for srv in servers:
        where = _hostport(srv, port)
        try:
            answer = await _dns_query(srv, port, name, code, per_server)
        except TimeoutError:
            problems.append(f"{where}: no answer within {per_server:g} s")
            continue
        except OSError as exc:
            problems.append(f"{where}: {_oserror(exc)}")
            continue
        except DnsError as exc:
            problems.append(f"{where}: {exc}")
            continue
        values = [value for rtype, value in answer.answers if rtype == code]
        rcode = RCODES.get(answer.rcode, f"RCODE {answer.rcode}")
        if answer.rcode != 0:
            return Result(False, f"dns {name} {qtype} @{where}: {rcode} in {_ms(start)}")
        if not values:
            return Result(False, f"dns {name} {qtype} @{where}: no {qtype} record in the answer "
                                 f"in {_ms(start)}")
        shown = " ".join(values[:4]) + (" ..." if len(values) > 4 else "")
        return Result(True, f"dns {name} {qtype} @{where}: {shown} in {_ms(start)}")
    return Result(False, f"dns {name} {qtype}: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------------
# command (checks and hooks)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_command(command: str, timeout: float,
                      env: Mapping[str, str] | None = None) -> tuple[int | None, str]:
    """Run `command` with /bin/sh in its own process group: (exit status, or None when it was
    killed at the timeout; the last OUTPUT_KEEP characters of stdout+stderr)."""
    full_env = child_environment(env)
    proc = await asyncio.create_subprocess_shell(
        command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=full_env, start_new_session=True)
    try:
        out, _stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill_group(proc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), 5)
        return None, ""
    except asyncio.CancelledError:
        _kill_group(proc)
        with contextlib.suppress(Exception):  # reap it, so that nothing is left to the GC
            await asyncio.wait_for(proc.wait(), 2)
        raise
    text = out.decode("utf-8", "replace").strip()
    if len(text) > OUTPUT_KEEP:
        text = "..." + text[-OUTPUT_KEEP:]
    return proc.returncode, text


async def command_check(command: str, timeout: float) -> Result:
    start = time.monotonic()
    status, output = await run_command(command, timeout)
    if status is None:
        return Result(False, f"command timed out after {timeout:g} s (killed)")
    said = f": {output.splitlines()[-1]}" if output else ""
    if status == 0:
        return Result(True, f"command exited 0 in {_ms(start)}{said}")
    if status < 0:
        return Result(False, f"command killed by signal {-status}{said}")
    return Result(False, f"command exited {status}{said}")
