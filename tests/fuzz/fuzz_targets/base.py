"""What every fuzz target shares: the registry, the contract checks, and a private event loop.

A target is a function `run(data: bytes) -> None`. It feeds `data` to one parser of outside input
the way the agent does, catches the errors that parser DECLARES (a NOTIFICATION, a ConfigError with
FILE:LINE:COL, an API `error` answer, a control-socket error reply) and checks them. Anything else
escapes: an undeclared exception, a ContractViolation, a log record with a traceback. The drivers
(tests/fuzz/test_fuzz_bounded.py, tests/fuzz/fuzz.py) add the limits on time and memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

TARGETS: dict[str, Target] = {}


class ContractViolation(AssertionError):
    """The parser answered, but not the way its contract says."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    contract: str
    max_len: int
    # Words the mutators (ours and libFuzzer's -dict) splice in: tokens of the grammar and the
    # values that broke it before.
    dictionary: tuple[bytes, ...] = field(default=())


def target(name: str, *, contract: str, max_len: int,
           dictionary: tuple[bytes, ...] = ()) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    def register(run: Callable[[bytes], None]) -> Callable[[bytes], None]:
        if name in TARGETS:
            raise ValueError(f"fuzz target {name!r} registered twice")
        TARGETS[name] = Target(name, run, " ".join(contract.split()), max_len, dictionary)
        return run
    return register


def require(condition: object, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def watched_logs(max_records: int) -> Iterator[list[logging.LogRecord]]:
    """The agent's log records while the block runs. A record with a traceback is a bug that a
    broad `except` hid; more than `max_records` is a log flood a hostile input can cause."""
    logger = logging.getLogger("fleetbgp")
    handler = _Records()
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # DEBUG would turn on packet hex dumps: not what a user runs
    logger.propagate = False       # keep stderr quiet: millions of inputs
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    for record in handler.records:
        if record.exc_info:
            raise ContractViolation(f"logged a traceback: {record.getMessage()[:300]!r}") \
                from record.exc_info[1]
    require(len(handler.records) <= max_records,
            f"{len(handler.records)} log records for one input (at most {max_records}): a log flood")


_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """One event loop for all inputs of a process: creating one per input would dominate the run."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def settle(rounds: int = 3) -> None:
    """Let the callbacks and tasks an input scheduled run (without waiting on any timer)."""
    for _ in range(rounds):
        loop().run_until_complete(asyncio.sleep(0))
