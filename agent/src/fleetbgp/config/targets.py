"""What a health check's `check http` and `check dns` name, read from text: an http(s) URL and a
DNS name. The config file checks them when it reads a healthcheck block, and health.checks uses
them to connect and to query: here, so that config imports no runtime module (as limits.py)."""

from __future__ import annotations

import urllib.parse

from fleetbgp.literals import leading_zero


def split_url(url: str) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, request target, Host header) of an http(s) URL; ValueError if bad."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: the URL must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r}: the URL has no host")
    problem = leading_zero(host)
    if problem is not None:  # not an address, and a resolver would read it as octal
        raise ValueError(f"{url!r}: the host {problem}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"{url!r}: bad port") from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    netloc = parts.netloc.rpartition("@")[2]  # no credentials in the Host header
    return scheme, host, port, target, netloc


class DnsError(ValueError):
    pass


def encode_name(name: str) -> bytes:
    """A DNS name in its wire form (RFC 1035 3.1): what a query carries, and the check that the
    text is a DNS name at all. Raises DnsError."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name not in ("", ".") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsError(f"bad DNS name {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise DnsError(f"DNS name too long: {name!r}")
    return bytes(out)
