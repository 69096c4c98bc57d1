"""Protocol errors. Each carries the NOTIFICATION to send back."""

from __future__ import annotations

from .constants import describe_error


class BGPError(Exception):
    """A violation that ends the session: send NOTIFICATION(code, subcode, data), then close."""

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.code = int(code)
        self.subcode = int(subcode)
        self.data = bytes(data)
        self.reason = reason or describe_error(code, subcode)
        super().__init__(f"{describe_error(code, subcode)}: {self.reason}")
