"""A small deterministic mutator for the bounded run in `make test` (the long run uses libFuzzer's)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence


def _one(rng: random.Random, data: bytes, corpus: Sequence[bytes], words: Sequence[bytes]) -> bytes:
    buf = bytearray(data)
    choice = rng.randrange(8)
    pos = rng.randrange(len(buf) + 1)
    if choice == 0 and buf:  # flip a bit
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    elif choice == 1:  # an interesting byte
        buf[pos:pos] = bytes((rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x0A, 0x20, 0x7B, 0x7D, 0x3B)),))
    elif choice == 2 and buf:  # delete a range
        end = min(len(buf), pos + rng.randrange(1, 64))
        del buf[pos:end]
    elif choice == 3 and buf:  # duplicate a range
        start = rng.randrange(len(buf))
        buf[pos:pos] = buf[start:start + rng.randrange(1, 64)]
    elif choice in (4, 5) and words:  # a word of the grammar, or a value that broke it before
        word = rng.choice(words)
        if choice == 5 and buf:  # replacing the same length keeps lengths in binary formats consistent
            buf[pos:pos + len(word)] = word
        else:
            buf[pos:pos] = word
    elif choice == 6 and corpus:  # splice with another input
        other = rng.choice(corpus)
        cut = rng.randrange(len(other) + 1)
        buf = buf[:pos] + other[cut:]
    elif buf:  # overwrite a byte
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def mutants(corpus: Sequence[bytes], words: Sequence[bytes], count: int, max_len: int,
            seed: int) -> Iterator[bytes]:
    """`count` inputs, each a corpus entry with one to four mutations; the same seed gives the same inputs."""
    rng = random.Random(seed)
    base = list(corpus) or [b""]
    for _ in range(count):
        data = rng.choice(base)
        for _ in range(rng.randrange(1, 5)):
            data = _one(rng, data, base, words)
        yield data[:max_len]
