"""The error every grammar function raises: which token is wrong, and why."""

from __future__ import annotations


class RouteError(ValueError):
    """A route (`PREFIX next-hop ... med ...`) that cannot be parsed.

    `index` is the position of the offending token in the token sequence given to the parser, so a
    caller (the config file parser, the API command parser) can point at it in its own terms.
    """

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        self.message = message
        super().__init__(message)

    def shifted(self, offset: int) -> RouteError:
        return RouteError(self.index + offset, self.message)
