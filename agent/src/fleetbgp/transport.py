"""Socket options a BGP session needs: TCP MD5 (RFC 2385), GTSM (RFC 5082), TTL for multihop."""

from __future__ import annotations

import base64
import ipaddress
import socket
import struct

TCP_MD5SIG = getattr(socket, "TCP_MD5SIG", 14)
IP_MINTTL = getattr(socket, "IP_MINTTL", 21)
IPV6_MINHOPCOUNT = getattr(socket, "IPV6_MINHOPCOUNT", 73)
TCP_MD5SIG_MAXKEYLEN = 80


class TransportError(Exception):
    pass


def split_scope(address: str) -> tuple[str, str | None]:
    """'fe80::1%eth0' -> ('fe80::1', 'eth0')."""
    addr, _sep, scope = address.partition("%")
    return addr, scope or None


def family_of(address: str) -> int:
    addr, _scope = split_scope(address)
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def sockaddr(address: str, port: int = 0) -> tuple[str, int] | tuple[str, int, int, int]:
    addr, scope = split_scope(address)
    if family_of(addr) == socket.AF_INET:
        return (addr, port)
    scope_id = socket.if_nametoindex(scope) if scope else 0
    return (addr, port, 0, scope_id)


def md5_key(password: str, is_base64: bool) -> bytes:
    key = base64.b64decode(password, validate=True) if is_base64 else password.encode()
    if len(key) > TCP_MD5SIG_MAXKEYLEN:
        raise TransportError(f"MD5 key is {len(key)} bytes, the kernel allows {TCP_MD5SIG_MAXKEYLEN}")
    return key


def set_md5(sock: socket.socket, peer: str, key: bytes) -> None:
    """Install (or with an empty key, remove) the TCP MD5 key for one peer address on sock."""
    addr, _scope = split_scope(peer)
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        sa = struct.pack("=H", socket.AF_INET) + b"\x00\x00" + ip.packed
    else:
        sa = struct.pack("=H", socket.AF_INET6) + b"\x00\x00" + b"\x00" * 4 + ip.packed + b"\x00" * 4
    # struct tcp_md5sig: sockaddr_storage, u8 flags, u8 prefixlen, u16 keylen, int ifindex, u8 key[80]
    value = struct.pack("=128sBBHi80s", sa, 0, 0, len(key), 0, key)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, value)
    except OSError as exc:
        raise TransportError(f"cannot set TCP MD5 key for {peer}: {exc.strerror}") from exc


def set_ttl(sock: socket.socket, ttl: int) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)


def set_min_ttl(sock: socket.socket, min_ttl: int) -> None:
    """GTSM: drop segments that arrive with a TTL/hop limit below min_ttl."""
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
    except OSError as exc:
        raise TransportError(f"cannot set minimum TTL {min_ttl}: {exc.strerror}") from exc


def outgoing_socket(peer: str, local: str | None, *, md5: bytes | None, ttl: int | None,
                    min_ttl: int | None) -> socket.socket:
    sock = socket.socket(family_of(peer), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if md5:
            set_md5(sock, peer, md5)
        if ttl:
            set_ttl(sock, ttl)
        if min_ttl:
            set_min_ttl(sock, min_ttl)
        if local:
            sock.bind(sockaddr(local, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def listening_socket(address: str, port: int) -> socket.socket:
    fam = family_of(address)
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr(address, port))
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def normalise_peer(address: str) -> str:
    """Compare peer addresses as the kernel reports them: no scope, IPv4-mapped made plain."""
    addr, _scope = split_scope(address)
    ip = ipaddress.ip_address(addr)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
