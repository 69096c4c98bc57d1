"""Small helpers: bounded waits, tool lookup, short random ids."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import NetlabError, WaitTimeout

T = TypeVar("T")


def short_id(n: int = 6) -> str:
    """A short random lowercase hex id (fits in 15-char interface names with a prefix)."""
    return secrets.token_hex((n + 1) // 2)[:n]


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    On timeout raise WaitTimeout naming ``what`` and, if given, the output of
    ``describe()`` (e.g. a peer's log tail) so a failure explains itself.
    Exceptions raised by the predicate propagate (a dead process is not a wait).
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    msg = f"timed out after {timeout:.1f}s waiting for {what} (last value: {last!r})"
    if describe is not None:
        try:
            msg += "\n" + describe()
        except Exception as exc:  # pragma: no cover - diagnostics only
            msg += f"\n(describe failed: {exc!r})"
    raise WaitTimeout(msg)


def which_or_fail(name: str, extra_dirs: tuple = ()) -> str:
    """Absolute path of a tool; raise (never skip) when it is missing."""
    for d in extra_dirs:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise NetlabError(
        f"required tool {name!r} not found in PATH"
        f"{' or ' + ', '.join(map(str, extra_dirs)) if extra_dirs else ''}; "
        "`make test` installs it (apt: bird2 gobgpd frr tshark iproute2; venv: exabgp==5.0.15)"
    )


def venv_tool(name: str) -> str:
    """A console script next to the running interpreter (the project venv), else from PATH."""
    return which_or_fail(name, extra_dirs=(Path(sys.executable).parent,))


def tail(path, lines: int = 60) -> str:
    """Last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path}: missing>"
    parts = text.splitlines()
    cut = parts[-lines:]
    head = f"--- {path} (last {len(cut)} of {len(parts)} lines) ---"
    return "\n".join([head, *cut])
