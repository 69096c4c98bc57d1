"""The bounded fuzz run of `make test`: every target replays its checked-in corpus (seeds and the
inputs that once broke it, regress-*), then a fixed set of mutants of it. A failure names the target
and saves the input under .cache/fuzz/failures/ (docs/dev/fuzzing.md: how to reproduce)."""

from __future__ import annotations

import os
import resource

import pytest
from fuzz_targets import TARGETS, Target
from fuzz_targets.driver import corpus, run_one, save_failure
from fuzz_targets.mutate import mutants

# Mutants per target, from the measured rate of each (docs/dev/fuzzing.md): the whole bounded run
# takes about 40 s on a 2-core CI machine (corpus replay included).
MUTANTS = {"api_commands": 5000, "bfd_packets": 15000, "bgp_decoders": 40000, "bgp_session": 6000,
           "config": 5000, "control_requests": 5000, "flowspec_json": 30000, "flowspec_text": 20000,
           "health_options": 5000}
DEFAULT_MUTANTS = 5000
SEED = int(os.environ.get("FUZZ_SEED", "13"))
MAX_RSS_GROWTH_MB = 512


def _run(target: Target, label: str, data: bytes) -> None:
    try:
        run_one(target, data)
    except BaseException as exc:
        path = save_failure(target, data)
        raise AssertionError(f"{target.name}: {label} broke the contract ({type(exc).__name__}: "
                             f"{str(exc)[:400]}); input saved as {path}; contract: {target.contract}") from exc


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus(name: str) -> None:
    target = TARGETS[name]
    entries = corpus(target)
    assert entries, f"tests/fuzz/corpus/{name}/ is empty: run tests/fuzz/seed_corpus.py"
    for file, data in entries:
        _run(target, f"corpus file {file}", data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutants(name: str) -> None:
    target = TARGETS[name]
    seeds = [data for _, data in corpus(target)]
    before = _rss_mb()
    count = MUTANTS.get(name, DEFAULT_MUTANTS)
    for i, data in enumerate(mutants(seeds, target.dictionary, count, target.max_len, SEED)):
        _run(target, f"mutant {i} of seed {SEED}", data)
    growth = _rss_mb() - before
    assert growth < MAX_RSS_GROWTH_MB, f"{name}: memory grew by {growth:.0f} MiB over {count} inputs"
