"""API program of test_exabgp_differential.py: prints API lines to its speaker (ExaBGP or fleetbgp).

    api_program.py LINES_JSON

LINES_JSON holds a list of phases, each a list of lines. The program waits until its speaker says
the session is up (`neighbor-changes`, text encoder: `neighbor ADDRESS up`), prints each phase,
and between phases waits for the answer (`done` / `error`) to every line printed so far and then
PAUSE seconds, so that a withdrawal is not folded into the announcement before it. Then it sleeps
until its stdin closes (the speaker stopped). It reads every line the speaker writes, so the
speaker never blocks on it.
"""

from __future__ import annotations

import json
import sys
import threading
import time

PAUSE = 0.7


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        phases: list[list[str]] = json.load(fh)
    up = threading.Event()
    closed = threading.Event()
    answers = threading.Semaphore(0)

    def read() -> None:
        for line in sys.stdin:
            words = line.split()
            if len(words) >= 3 and words[0] == "neighbor" and words[2] == "up":
                up.set()
            elif words in (["done"], ["error"]):
                answers.release()
        closed.set()
        up.set()

    threading.Thread(target=read, daemon=True).start()
    up.wait(30)
    if closed.is_set():
        return 0
    time.sleep(0.2)
    sent = 0
    for n, phase in enumerate(phases):
        if n:
            for _ in range(sent):
                answers.acquire(timeout=10)
            sent = 0
            time.sleep(PAUSE)
        for line in phase:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            sent += 1
    closed.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
