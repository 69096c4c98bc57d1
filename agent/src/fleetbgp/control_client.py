"""Client of the fleetbgp control socket (newline-delimited JSON over a unix socket).

Standard library only, and no fleetbgp imports: the Ansible collection's
plugins/module_utils/fleetbgp_control.py is a symlink to this file (one source), and there it runs
on the target's system Python (3.8 and later work).

    from control_client import ControlClient, ControlError

    with ControlClient("/run/fleetbgp/control.sock", timeout=10) as client:
        client.call("status")["version"]
        client.call("announce", route="100.10.0.100/32 next-hop self med 100", owner="ansible")

`call()` returns the reply's "result" or raises ControlError(code, message, details). Not being
able to reach the agent at all is ControlUnavailable (a ControlError with code "unavailable").
"""

from __future__ import annotations

import json
import socket
from typing import Any, BinaryIO

DEFAULT_SOCKET = "/run/fleetbgp/control.sock"
DEFAULT_TIMEOUT = 30.0
PROTOCOL_VERSION = 1


class ControlError(Exception):
    """An error reply from the agent, or a failure to talk to it."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class ControlUnavailable(ControlError):
    """The socket could not be reached (no agent running, wrong path, no permission)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("unavailable", f"cannot reach the fleetbgp agent at {path}: {reason}")
        self.path = path
        self.reason = reason


class ControlClient:
    """One connection, opened on first use and reused for every call; not thread-safe."""

    def __init__(self, path: str = DEFAULT_SOCKET, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self._next_id = 0

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except FileNotFoundError:
            sock.close()
            raise ControlUnavailable(self.path, "no such socket (is the agent running?)") from None
        except ConnectionRefusedError:
            sock.close()
            raise ControlUnavailable(self.path, "connection refused (the agent is not running; "
                                                "a stale socket file is left)") from None
        except PermissionError:
            sock.close()
            raise ControlUnavailable(self.path, "permission denied (run as root or as a member of "
                                                "the socket's group, normally 'fleetbgp')") from None
        except OSError as exc:
            sock.close()
            raise ControlUnavailable(self.path, exc.strerror or str(exc)) from None
        self._sock = sock
        self._file = sock.makefile("rb")

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def call(self, cmd: str, **args: Any) -> Any:
        """Send one command; return its result or raise ControlError."""
        return self.call_args(cmd, args)

    def call_args(self, cmd: str, args: dict[str, Any] | None = None,
                  timeout: float | None = None) -> Any:
        """As call(), with the arguments as a dict and an optional timeout for this call only
        (a reload of a large config may take longer than a status query)."""
        reply = self.request(cmd, args or {}, timeout=timeout)
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise ControlError(str(error.get("code", "error")), str(error.get("message", "error reply")),
                           error.get("details"))

    def request(self, cmd: str, args: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return the whole reply object."""
        self.connect()
        # Not `assert`: ansible-test's no-assert rule applies to module_utils.
        if self._sock is None or self._file is None:
            raise ControlError("connection", f"not connected to {self.path}")
        self._next_id += 1
        request_id = self._next_id
        line = json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd, "args": args},
                          separators=(",", ":")) + "\n"
        if timeout is not None:
            self._sock.settimeout(timeout)
        try:
            self._sock.sendall(line.encode("utf-8"))
            raw = self._file.readline()
        except socket.timeout:  # noqa: UP041 - TimeoutError only from Python 3.10 on (module_utils)
            self.close()
            raise ControlError("timeout", f"no reply from the agent within {timeout or self.timeout} s "
                                          f"(command {cmd!r})") from None
        except OSError as exc:
            self.close()
            raise ControlError("connection", f"connection to {self.path} failed: "
                                             f"{exc.strerror or exc}") from None
        finally:
            if timeout is not None and self._sock is not None:
                self._sock.settimeout(self.timeout)
        if not raw:
            self.close()
            raise ControlError("connection", f"the agent closed the connection ({self.path})")
        try:
            reply = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            self.close()
            raise ControlError("protocol", f"reply is not JSON: {exc}") from None
        if not isinstance(reply, dict):
            self.close()
            raise ControlError("protocol", "reply is not a JSON object")
        if reply.get("id") not in (request_id, None):
            self.close()
            raise ControlError("protocol", f"reply to request {reply.get('id')!r}, expected {request_id}")
        if reply.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            raise ControlError("protocol", f"agent speaks protocol version {reply.get('v')!r}, "
                                           f"this client {PROTOCOL_VERSION}")
        return reply


def call(cmd: str, path: str = DEFAULT_SOCKET, timeout: float | None = DEFAULT_TIMEOUT, **args: Any) -> Any:
    """One command on a fresh connection."""
    with ControlClient(path, timeout) as client:
        return client.call(cmd, **args)
