"""labweb, the lab servers' HTTP service: answers, error statuses, robustness, the program itself.

Real sockets on loopback only; the server runs in a thread (BackgroundServer) or as a subprocess.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from traffic.labweb import BackgroundServer, parse_listen

StartWeb = Callable[..., BackgroundServer]  # the start_web fixture (conftest.py)

LABWEB = Path(__file__).resolve().parents[2] / "lab" / "traffic" / "labweb.py"


def exchange(addr: tuple[str, int], data: bytes, *, half_close: bool = True, timeout: float = 5.0) -> bytes:
    """Send ``data``, optionally half-close, and read everything until the server closes."""
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.1 (\d{3}) .+", status_line)
    assert match, f"bad status line {status_line!r}"
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers, body


def get(addr: tuple[str, int], path: str = "/") -> tuple[int, dict[str, str], bytes]:
    return parse(exchange(addr, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), half_close=False))


def test_answers_with_its_name(start_web: StartWeb) -> None:
    addr = start_web("srv1").addresses[0]
    status, headers, body = get(addr)
    assert status == 200
    assert body == b"srv1\n"
    assert headers["content-type"] == "text/plain"
    assert headers["connection"] == "close"
    assert headers["content-length"] == str(len(body))
    # Any path, any method, HTTP/1.0 too, and absolute-form targets.
    assert get(addr, "/some/where?x=1")[2] == b"srv1\n"
    assert parse(exchange(addr, b"POST /x HTTP/1.0\r\n\r\n"))[2] == b"srv1\n"
    assert parse(exchange(addr, b"GET http://h/ HTTP/1.1\r\n\r\n"))[2] == b"srv1\n"


def test_health(start_web: StartWeb) -> None:
    addr = start_web("srv1").addresses[0]
    assert get(addr, "/health")[::2] == (200, b"ok\n")
    assert get(addr, "/health?probe=1")[::2] == (200, b"ok\n")
    assert get(addr, "/healthz")[2] == b"srv1\n"


def test_head_has_no_body(start_web: StartWeb) -> None:
    addr = start_web("srv1").addresses[0]
    status, headers, body = parse(exchange(addr, b"HEAD / HTTP/1.1\r\n\r\n"))
    assert (status, headers["content-length"], body) == (200, "5", b"")


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage\r\n\r\n",
        b"GET /\r\n\r\n",  # HTTP/0.9 style: no version
        b"GET / HTTP/x.y\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
    ],
)
def test_garbage_gets_400(start_web: StartWeb, garbage: bytes) -> None:
    addr = start_web("srv1").addresses[0]
    assert parse(exchange(addr, garbage))[0] == 400
    assert get(addr)[2] == b"srv1\n"


def test_huge_head_gets_431_and_the_service_survives(start_web: StartWeb) -> None:
    addr = start_web("srv1").addresses[0]
    # One endless line, then many headers: both exceed the limits; the answer arrives although we
    # sent far more than the server read.
    assert parse(exchange(addr, b"A" * 200_000))[0] == 431
    assert (
        parse(exchange(addr, b"GET / HTTP/1.1\r\n" + b"X-Filler: 0123456789\r\n" * 2000 + b"\r\n"))[0] == 431
    )
    assert get(addr)[2] == b"srv1\n"


def test_connect_and_close_without_request(start_web: StartWeb) -> None:
    addr = start_web("srv1").addresses[0]
    assert exchange(addr, b"") == b""
    with socket.create_connection(addr):
        pass  # an abrupt close (port check)
    assert get(addr)[0] == 200


def test_slow_clients_are_cut_off_and_do_not_block_others(start_web: StartWeb) -> None:
    addr = start_web("srv1", read_timeout=0.5).addresses[0]
    idle = [socket.create_connection(addr, timeout=5) for _ in range(50)]
    drip = socket.create_connection(addr, timeout=5)
    try:
        # While 50 clients say nothing and one drips bytes, real requests are answered at once.
        t0 = time.monotonic()
        for _ in range(5):
            drip.sendall(b"G")
            assert get(addr)[2] == b"srv1\n"
        assert time.monotonic() - t0 < 0.4
        # The head must be complete within read_timeout, however slowly it trickles in.
        for byte in b"ET / HTTP/1.1\r\n":
            try:
                drip.sendall(bytes([byte]))
            except OSError:
                break  # the server already gave up on us
            time.sleep(0.05)
        assert parse(drip.recv(65536))[0] == 408
        assert idle[0].recv(65536).startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in [*idle, drip]:
            sock.close()
    assert get(addr)[0] == 200


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen("[::]:80") == ("::", 80)
    assert parse_listen(":8080") == ("::", 8080)
    assert parse_listen("8080") == ("::", 8080)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    for bad in ["::1:80", "[::1]", "localhost:80", "1.2.3.4:http", "1.2.3.4:70000", "[::1]80"]:
        with pytest.raises(ValueError):
            parse_listen(bad)


# ---------------------------------------------------------------------------------------------
# The program (a subprocess)
# ---------------------------------------------------------------------------------------------


def read_line(stream: object, timeout: float) -> str:
    """One line from a subprocess pipe, failing (not hanging) after ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return stream.readline()  # type: ignore[attr-defined, no-any-return]


def start_program(*args: str) -> tuple[subprocess.Popen[str], list[tuple[str, int]]]:
    proc = subprocess.Popen(
        [sys.executable, str(LABWEB), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = read_line(proc.stderr, 10)
    except AssertionError:
        proc.kill()
        raise
    match = re.fullmatch(r"labweb: \S+ listening on (.*)\n", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"unexpected startup line {line!r}")
    addresses = []
    for spec in match.group(1).split(", "):
        host, port = parse_listen(spec)
        addresses.append((host, port))
    return proc, addresses


def stop_program(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_program_serves_host_name_and_stops_on_sigterm() -> None:
    proc, addresses = start_program("--listen", "127.0.0.1:0")
    try:
        assert get(addresses[0])[2] == f"{socket.gethostname()}\n".encode()
    finally:
        rc, err = stop_program(proc)
    assert rc == 0
    assert "labweb: stopping (SIGTERM)" in err
    assert "GET" not in err  # no access log by default


def test_program_access_log() -> None:
    proc, addresses = start_program("--listen", "127.0.0.1:0", "--name", "srv9", "--access-log")
    try:
        assert get(addresses[0], "/health")[2] == b"ok\n"
    finally:
        rc, err = stop_program(proc)
    assert rc == 0
    assert "127.0.0.1 GET /health 200" in err


@pytest.mark.usefixtures("ipv6")
def test_program_unspecified_ipv6_is_dual_stack() -> None:
    proc, addresses = start_program("--listen", "[::]:0", "--name", "dual")
    try:
        ((host, port),) = addresses
        assert host == "::"
        assert get(("127.0.0.1", port))[2] == b"dual\n"
        assert get(("::1", port))[2] == b"dual\n"
    finally:
        assert stop_program(proc)[0] == 0


def test_program_bad_usage_exits_2() -> None:
    for args in (["--listen", "localhost:80"], ["--name", ""], ["--bogus"]):
        result = subprocess.run(
            [sys.executable, str(LABWEB), *args], capture_output=True, text=True, timeout=10, check=False
        )
        assert result.returncode == 2, (args, result.stderr)


def test_program_port_in_use_fails_cleanly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(LABWEB), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
