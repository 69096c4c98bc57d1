"""Is the config file on disk the one the agent runs? (metric fleetbgp_config_file_state)

A deploy writes the file and reloads the agent; a file written but never loaded (a reload not run,
or refused), edited by hand, or removed is config drift: the next restart runs something else, or
does not start. The agent knows the SHA-256 of what it loaded; this compares the file with it.

Asked on every scrape, from the metrics server's thread (never the event loop). The file is read
and hashed again only when its stat changed (device, inode, size, mtime, ctime: an editor's
rename, an in-place write, a `touch` all change one), so a scrape usually costs one stat(2).
The config grammar has no include, so the one file is all there is to compare.
"""

from __future__ import annotations

import hashlib
import os
import threading

# The states, as the metric's `state` label says them.
SAME = "same"              # the file on disk is what runs
DIFFERS = "differs"        # other content than what runs: written but not (successfully) loaded
MISSING = "missing"        # no file at the path: the next start of the agent fails
UNREADABLE = "unreadable"  # there, but the agent cannot read it (permissions, a directory, I/O)
STATES = (SAME, DIFFERS, MISSING, UNREADABLE)

_Identity = tuple[int, int, int, int, int]


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ConfigFileWatch:
    """The state of one config file against a running SHA-256; caches the file's hash by its stat.
    Thread-safe: concurrent scrapes share the cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[str, _Identity, str] | None = None  # path, identity, sha256
        self.hashed = 0  # files read and hashed, for tests: a scrape of an unchanged file reads none

    def state(self, path: str, running_sha256: str) -> str | None:
        """One of STATES; None when there is nothing to compare (no path, or no running hash)."""
        if not path or not running_sha256:
            return None
        with self._lock:
            try:
                on_disk = self._sha256(path)
            except FileNotFoundError:
                self._cached = None
                return MISSING
            except OSError:
                self._cached = None
                return UNREADABLE
        return SAME if on_disk == running_sha256 else DIFFERS

    def _sha256(self, path: str) -> str:
        before = _identity(os.stat(path))
        cached = self._cached
        if cached is not None and cached[0] == path and cached[1] == before:
            return cached[2]
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        self.hashed += 1
        # Kept under the stat taken BEFORE the read: a file written while it was read (half a file
        # hashed) or replaced since has another stat by now, so the next scrape reads it again.
        self._cached = (path, before, digest)
        return digest
