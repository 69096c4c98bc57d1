"""The checks against real services that each test starts on 127.0.0.1: a TCP listener, a small
http.server (and https with a throw-away self-signed certificate), a UDP DNS responder; and
commands with their timeout. Plus the DNS message codec on hand-made bytes."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from fleetbgp.config.model import CommandCheckSpec, DnsCheckSpec, HttpCheckSpec, TcpCheckSpec
from fleetbgp.config.targets import DnsError, encode_name, split_url
from fleetbgp.health import checks
from fleetbgp.health.checks import (
    build_query,
    command_check,
    describe,
    dns_check,
    http_check,
    parse_response,
    run_check,
    run_command,
    system_nameservers,
    tcp_check,
)


def arun(coro):
    return asyncio.run(coro)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- tcp ------------------------------------------------------------------------------------------

@pytest.fixture
def tcp_listener() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv.getsockname()[1]
    srv.close()


def test_tcp_ok(tcp_listener):
    r = arun(tcp_check("127.0.0.1", tcp_listener, 2))
    assert r.ok and "connected" in r.text and f":{tcp_listener}" in r.text


def test_tcp_refused():
    r = arun(tcp_check("127.0.0.1", free_port(), 2))
    assert not r.ok and "refused" in r.text.lower()


def test_tcp_timeout():
    # 192.0.2.0/24 (TEST-NET-1) is not routed: the SYN goes nowhere (or fails fast without a route)
    start = time.monotonic()
    r = arun(tcp_check("192.0.2.1", 9, 0.3))
    assert not r.ok and time.monotonic() - start < 2


def test_tcp_listener_stops(tcp_listener):
    srv_port = tcp_listener
    assert arun(tcp_check("127.0.0.1", srv_port, 1)).ok
    # the fixture's socket is closed at teardown; simulate a stopped service with a fresh port
    assert not arun(tcp_check("127.0.0.1", free_port(), 1)).ok


# -- http -----------------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    delay = 0.0
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self):  # http.server's name
        type(self).seen.append({"path": self.path, "host": self.headers.get("Host", ""),
                                "ua": self.headers.get("User-Agent", "")})
        if self.delay:
            time.sleep(self.delay)
        code = int(self.path.rsplit("/", 1)[-1]) if self.path.rsplit("/", 1)[-1].isdigit() else self.status
        body = b"hello\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server() -> Iterator[http.server.ThreadingHTTPServer]:
    Handler.seen = []
    Handler.delay = 0.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server, path="/health") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_http_200(http_server):
    r = arun(http_check(url(http_server, "/health?x=1"), 2))
    assert r.ok and ": 200 " in r.text
    seen = Handler.seen[-1]
    assert seen["path"] == "/health?x=1"
    assert seen["host"] == f"127.0.0.1:{http_server.server_address[1]}"
    assert seen["ua"].startswith("fleetbgp-healthcheck/")


@pytest.mark.parametrize(("code", "ok"), [(204, True), (301, True), (404, False), (500, False), (503, False)])
def test_http_default_accepts_2xx_3xx_like_curl_f(http_server, code, ok):
    r = arun(http_check(url(http_server, f"/{code}"), 2))
    assert r.ok is ok and str(code) in r.text


def test_http_wanted_status(http_server):
    assert arun(http_check(url(http_server, "/204"), 2, status=204)).ok
    r = arun(http_check(url(http_server, "/200"), 2, status=204))
    assert not r.ok and "expected 204" in r.text


def test_http_refused():
    r = arun(http_check(f"http://127.0.0.1:{free_port()}/", 2))
    assert not r.ok and "refused" in r.text.lower()


def test_http_timeout(http_server):
    Handler.delay = 2
    start = time.monotonic()
    r = arun(http_check(url(http_server), 0.3))
    assert not r.ok and "no answer within 0.3 s" in r.text
    assert time.monotonic() - start < 1.5


def test_http_not_http(tcp_listener):
    # a server that accepts and closes: no status line
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        conn.recv(1000)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    r = arun(http_check(f"http://127.0.0.1:{port}/", 2))
    srv.close()
    assert not r.ok and "not an HTTP response" in r.text


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "1", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    return str(crt), str(key)


@pytest.fixture
def https_server(cert) -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_self_signed_fails_verification(https_server):
    r = arun(http_check(f"https://127.0.0.1:{https_server.server_address[1]}/", 3))
    assert not r.ok and "TLS" in r.text


def test_https_insecure_ok(https_server):
    r = arun(http_check(f"https://127.0.0.1:{https_server.server_address[1]}/", 3, insecure=True))
    assert r.ok and ": 200 " in r.text


def test_split_url():
    assert split_url("http://h/") == ("http", "h", 80, "/", "h")
    assert split_url("https://h") == ("https", "h", 443, "/", "h")
    assert split_url("http://u:p@[::1]:8080/a?b") == ("http", "::1", 8080, "/a?b", "[::1]:8080")
    for bad in ("ftp://h/", "http:///x", "http://h:99999/"):
        with pytest.raises(ValueError):
            split_url(bad)


# -- dns --------------------------------------------------------------------------------------------

def dns_answer(query: bytes, records: list[tuple[int, bytes]], rcode: int = 0, *, compress: bool = True,
               ident: int | None = None) -> bytes:
    """A response to `query` with (type, rdata) answers, the owner name as a pointer to the question."""
    qid = struct.unpack_from("!H", query)[0] if ident is None else ident
    question = query[12:]
    header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
    body = b""
    qname = question[:-4]
    for rtype, rdata in records:
        owner = b"\xc0\x0c" if compress else qname
        body += owner + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return header + question + body


class DnsResponder(asyncio.DatagramProtocol):
    """Answers A/AAAA for names in `zone`, NXDOMAIN otherwise; `mute` drops queries."""

    def __init__(self, zone: dict[tuple[str, int], list[bytes]]) -> None:
        self.zone = zone
        self.mute = False
        self.queries = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.queries += 1
        if self.mute:
            return
        labels, i = [], 12
        while data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode())
            i += 1 + data[i]
        qtype = struct.unpack_from("!H", data, i + 1)[0]
        found = self.zone.get((".".join(labels).lower(), qtype))
        if found is None:
            self.transport.sendto(dns_answer(data, [], rcode=3), addr)
        else:
            self.transport.sendto(dns_answer(data, [(qtype, r) for r in found]), addr)


ZONE = {("service.example", 1): [socket.inet_aton("192.0.2.10"), socket.inet_aton("192.0.2.11")],
        ("service.example", 28): [socket.inet_pton(socket.AF_INET6, "2001:db8::10")],
        ("empty.example", 1): []}


async def with_dns(coro_fn, mute: bool = False):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: DnsResponder(ZONE),
                                                           local_addr=("127.0.0.1", 0))
    proto.mute = mute
    port = transport.get_extra_info("sockname")[1]
    try:
        return await coro_fn(port), proto
    finally:
        transport.close()


def test_dns_a():
    r, _ = arun(with_dns(lambda port: dns_check("service.example", 2, server="127.0.0.1", port=port)))
    assert r.ok and "192.0.2.10 192.0.2.11" in r.text


def test_dns_aaaa():
    r, _ = arun(with_dns(lambda port: dns_check("service.example.", 2, qtype="AAAA", server="127.0.0.1",
                                                port=port)))
    assert r.ok and "2001:db8::10" in r.text


def test_dns_nxdomain():
    r, _ = arun(with_dns(lambda port: dns_check("nothing.example", 2, server="127.0.0.1", port=port)))
    assert not r.ok and "NXDOMAIN" in r.text


def test_dns_no_record_of_that_type():
    r, _ = arun(with_dns(lambda port: dns_check("empty.example", 2, server="127.0.0.1", port=port)))
    assert not r.ok and "no A record" in r.text


def test_dns_timeout():
    start = time.monotonic()
    r, proto = arun(with_dns(lambda port: dns_check("service.example", 0.3, server="127.0.0.1", port=port),
                             mute=True))
    assert not r.ok and "no answer" in r.text and proto.queries == 1
    assert time.monotonic() - start < 1.5


def test_dns_nobody_listening():
    r = arun(dns_check("service.example", 1, server="127.0.0.1", port=free_port(socket.SOCK_DGRAM)))
    assert not r.ok


def test_dns_system_resolver_from_resolv_conf(tmp_path):
    async def go(port):
        conf = tmp_path / "resolv.conf"
        conf.write_text("# comment\nsearch example\nnameserver 127.0.0.1\n")
        return await dns_check("service.example", 2, port=port, resolv_conf=str(conf))
    r, _ = arun(with_dns(go))
    assert r.ok


def test_system_nameservers(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bogus\noptions x\n")
    assert system_nameservers(str(conf)) == ["10.0.0.1", "fe80::1"]
    assert system_nameservers(str(tmp_path / "missing")) == ["127.0.0.1"]


def test_dns_codec():
    q = build_query("www.Example.com", 1, 0x1234)
    assert q[:12] == bytes.fromhex("123401000001000000000000")
    assert q[12:] == b"\x03www\x07Example\x03com\x00\x00\x01\x00\x01"
    answer = parse_response(dns_answer(q, [(5, b"\x03foo\xc0\x10"), (1, b"\x01\x02\x03\x04")]),
                            0x1234, "www.example.com", 1)
    assert answer.rcode == 0 and answer.answers == [(5, "foo.Example.com."), (1, "1.2.3.4")]
    plain = parse_response(dns_answer(q, [(1, b"\x01\x02\x03\x04")], compress=False), 0x1234,
                           "www.example.com", 1)
    assert plain.answers == [(1, "1.2.3.4")]
    with pytest.raises(DnsError, match="id mismatch"):
        parse_response(dns_answer(q, [], ident=1), 0x1234, "www.example.com", 1)
    with pytest.raises(DnsError, match="another question"):
        parse_response(dns_answer(q, []), 0x1234, "other.example.com", 1)
    with pytest.raises(DnsError, match="not a response"):
        parse_response(q, 0x1234, "www.example.com", 1)
    with pytest.raises(DnsError):
        parse_response(dns_answer(q, [(1, b"\x01\x02\x03\x04")])[:-3], 0x1234, "www.example.com", 1)
    loop = dns_answer(q, [])[:12] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(DnsError):
        parse_response(loop, 0x1234, "www.example.com", 1)
    with pytest.raises(DnsError):
        encode_name("a" * 64 + ".com")
    assert encode_name(".") == b"\x00"


# -- command ----------------------------------------------------------------------------------------

def test_command_ok_and_failed():
    ok = arun(command_check("echo fine; exit 0", 5))
    assert ok.ok and ok.text.endswith(": fine")
    bad = arun(command_check("echo broken >&2; exit 3", 5))
    assert not bad.ok and "exited 3" in bad.text and "broken" in bad.text


def test_command_timeout_kills_the_whole_group(tmp_path):
    marker = tmp_path / "survived"
    start = time.monotonic()
    r = arun(command_check(f"(sleep 1.5; touch {marker}) & sleep 30", 0.3))
    assert not r.ok and "timed out" in r.text
    assert time.monotonic() - start < 3
    time.sleep(2)
    assert not marker.exists(), "the command's children must die with it"


def test_run_command_env():
    status, out = arun(run_command('echo "$STATE-$X"', 5, {"STATE": "UP", "X": "y"}))
    assert status == 0 and out == "UP-y"


def test_run_check_dispatch_and_describe(tcp_listener, http_server):
    specs = [TcpCheckSpec(host="127.0.0.1", port=tcp_listener),
             HttpCheckSpec(url=url(http_server)),
             CommandCheckSpec(command="true")]
    for spec in specs:
        r = arun(run_check(spec, 2))
        assert r.ok and r.elapsed >= 0, (spec, r)
    assert describe(specs[0]) == f"tcp 127.0.0.1:{tcp_listener}"
    assert describe(TcpCheckSpec(host="::1", port=80)) == "tcp [::1]:80"
    assert describe(DnsCheckSpec(name="a.example", server="127.0.0.1", port=5353)) == \
        "dns a.example type A server 127.0.0.1 port 5353"
    assert describe(HttpCheckSpec(url="https://x/", status=204, insecure=True)) == \
        "http https://x/ status 204 insecure"


def test_run_check_never_raises(monkeypatch):
    async def boom(*a, **k):
        raise RuntimeError("bug")
    monkeypatch.setattr(checks, "tcp_check", boom)
    r = arun(run_check(TcpCheckSpec(host="127.0.0.1", port=1), 1))
    assert not r.ok and "RuntimeError: bug" in r.text
