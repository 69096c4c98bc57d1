#!/usr/bin/env python3
"""The API program of the API bench: copy a file of API command lines to stdout, then idle.

Run by the sender under test (the ExaBGP way: a `process` whose `run` is this script), the same
program and the same file for every sender:

    api_feed.py [--wait-for GATE] LINES REPORT

LINES is a file of `announce route P next-hop self ...` lines written by bench/api_routes.py. The
bytes go out in 64 KiB writes as fast as the pipe takes them: the program does no per-route work,
so its share of the measurement is the pipe and nothing else, and the sender's reading pace sets
the rate (a write blocks while the pipe is full). When everything is written, REPORT gets one JSON
object: the CLOCK_MONOTONIC times of the first and the last write (the bench reads the same clock:
it is system-wide, network namespaces do not change it), the bytes, and this process's CPU and peak
RSS. Then it reads its stdin until EOF, which is when the sender stops (the senders are started
with API acks off, so nothing arrives before): a program that exited after writing would be
respawned by both senders and its routes sent again.

With `--wait-for GATE` it first waits (polling every 20 ms) until the file GATE exists: the BFD
bench (bfd_sessions.py) starts the agent with this program idle, measures the agent at rest, and
then opens the gate to start the burst. The first write's time in REPORT is after the gate.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

CHUNK = 64 * 1024
GATE_POLL_S = 0.02


def main(argv: list[str]) -> int:
    gate = None
    if argv[:1] == ["--wait-for"] and len(argv) >= 2:
        gate, argv = argv[1], argv[2:]
    if len(argv) != 2:
        print("usage: api_feed.py [--wait-for GATE] LINES REPORT", file=sys.stderr)
        return 2
    lines, report = argv
    while gate is not None and not os.path.exists(gate):
        time.sleep(GATE_POLL_S)
    out = sys.stdout.buffer
    t_start = time.monotonic()
    sent = 0
    with open(lines, "rb") as f:
        while chunk := f.read(CHUNK):
            out.write(chunk)
            sent += len(chunk)
    out.flush()
    t_done = time.monotonic()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    tmp = report + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "t_start_mono": t_start, "t_done_mono": t_done, "bytes": sent,
                   "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_kib": ru.ru_maxrss}, f)
    os.replace(tmp, report)  # the bench never reads half a report
    for _ in sys.stdin.buffer:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
