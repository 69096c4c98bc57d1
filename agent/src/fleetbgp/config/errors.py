"""Diagnostics: every problem in a config file, with the place it was found."""

from __future__ import annotations

from typing import NamedTuple


class Location(NamedTuple):
    """A place in a config file. Lines and columns count from 1; 0 means "the whole file"."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"

    def short(self) -> str:
        """LINE:COL, for mentioning another place in the same file."""
        return f"{self.line}:{self.col}"


class Diagnostic(NamedTuple):
    """One error: printed as `FILE:LINE:COL: message` (or `FILE: message` for whole-file problems)."""

    file: str
    line: int
    col: int
    message: str

    @classmethod
    def at(cls, loc: Location, message: str) -> Diagnostic:
        return cls(loc.file, loc.line, loc.col, message)

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot be used. Holds every problem found, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)
