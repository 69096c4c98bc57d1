"""Running a target on one input with the limits both drivers share: a deadline and a saved copy of
any input that fails."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path
from types import FrameType

from .base import Target

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
FAILURES = ROOT / ".cache" / "fuzz" / "failures"
DEADLINE = 10.0  # seconds for one input: far above any legitimate parse, well below a hold time


class Hang(Exception):
    """One input took longer than DEADLINE: an agent doing this work would miss its keepalives."""


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Hang(f"one input took more than {DEADLINE:g} s")


def run_one(target: Target, data: bytes, deadline: float = DEADLINE) -> None:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    try:
        target.run(data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def save_failure(target: Target, data: bytes) -> Path:
    FAILURES.mkdir(parents=True, exist_ok=True)
    path = FAILURES / f"{target.name}-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    return path


def corpus(target: Target) -> list[tuple[str, bytes]]:
    folder = CORPUS / target.name
    if not folder.is_dir():
        return []
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]
