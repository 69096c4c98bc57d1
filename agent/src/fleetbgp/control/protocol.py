"""The control protocol's framing: a request line is checked (JSON, depth, version, command, args)
and becomes a `Request`; a result or a `ControlError` becomes one reply line, a `Stream` a reply
written in pieces. No sockets here, only bytes and the reader/writer helpers the server uses."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
MAX_DEPTH = 32                # nesting of objects/arrays in a request (real ones need 4 or 5)

# What a client may send as "id" and gets back: JSON has no NaN, and true is no number.
RequestId = str | int | float | None


class ControlError(Exception):
    """A request that cannot be served: becomes an error reply."""

    # `details` is any JSON value (the reload errors, the supported versions).
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.request_id: RequestId = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    cmd: str
    args: dict[str, Any]  # a JSON object: its values are any JSON


class Stream:
    """A result written piece by piece (a large `routes` answer): `chunks` yields JSON text that,
    concatenated, is the value of "result"."""

    def __init__(self, chunks: AsyncIterator[str]) -> None:
        self.chunks = chunks


# -- requests -------------------------------------------------------------------------------------


def parse_request(line: bytes, known: Collection[str]) -> Request:
    """The request on `line`, whose command must be one of `known`. On an error the id, when the
    request has a usable one, travels in the exception so that the error reply carries it."""
    request = _load(line)
    try:
        return _check_request(request, known)
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


def _check_request(request: Any, known: Collection[str]) -> Request:
    if not isinstance(request, dict):
        raise ControlError("bad_request",
                           'a request is a JSON object: {"v": 1, "cmd": ..., "args": {...}}')
    request_id = request.get("id")
    if not _echoable(request_id):
        raise ControlError("bad_request", "'id' must be a string, a finite number or null")
    version = request.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ControlError("unsupported_version",
                           f"protocol version {short(repr(version), 40)} is not supported (this agent "
                           f"speaks {PROTOCOL_VERSION})", details={"supported": [PROTOCOL_VERSION]})
    cmd = request.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ControlError("bad_request", "missing 'cmd'")
    if cmd not in known:
        raise ControlError("unknown_command", f"unknown command {short(repr(cmd), 60)} "
                                              f"(known: {', '.join(known)})")
    args = request.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ControlError("bad_request", "'args' must be a JSON object")
    return Request(request_id, cmd, args)


def short(value: Any, limit: int = 200) -> str:
    """A request (or a part of one) for a log line or an error message: at most `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


# -- replies --------------------------------------------------------------------------------------


def reply_line(request_id: RequestId, *, result: Any = None, error: ControlError | None = None) -> bytes:
    reply: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id}
    if error is None:
        reply["ok"] = True
        reply["result"] = result
    else:
        reply["ok"] = False
        reply["error"] = error.as_dict()
    return json.dumps(reply, separators=(",", ":"), default=json_default).encode() + b"\n"


def stream_head(request_id: RequestId) -> bytes:
    """The start of a streamed reply, up to the value of "result" (the chunks, then b"}\\n")."""
    head = json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True}, separators=(",", ":"))
    return head[:-1].encode() + b',"result":'


STREAM_TAIL = b"}\n"


def json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# -- reading lines --------------------------------------------------------------------------------


class LineTooLong(Exception):
    """A request line over the reader's limit (now read and dropped)."""


async def rest_of_line(reader: asyncio.StreamReader, first: bytes) -> tuple[bytes, bool]:
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
        raise LineTooLong from None


async def _discard_line(reader: asyncio.StreamReader) -> None:
    """After an over-long line: drop bytes up to and including the next newline."""
    while True:
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
