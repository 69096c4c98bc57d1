#!/usr/bin/env python3
"""API load bench: how long until BIRD 2 holds N routes that an API program announced.

The ExaBGP way: the sender's config names a `process` whose program prints one
``announce route P next-hop self med 100 community [ 65001:100 ]`` line per route on its stdout,
and the sender turns them into UPDATEs. For each N (default 100,000 and 1,000,000) and each
sender, a fresh lab (the static bench's: BIRD 2 as the receiver, a veth pair between two
namespaces) and one config, the same file for every sender:

    process feed {
      run PYTHON bench/api_feed.py LINES REPORT;    # copies LINES to stdout, then idles
      encoder text;
    }
    neighbor 10.255.1.1 {
      router-id 10.255.1.2; local-address 10.255.1.2; local-as 65001; peer-as 65000; ...
      family { ipv4 unicast; }
      api { processes [ feed ]; }
    }

LINES holds the N lines (the same distinct /24s as the static bench), rendered before the sender
starts, so the program does no per-route work and its writes go as fast as the sender reads.
Senders start with API acks off (``exabgp_api_ack=false``): the program never reads answers.

Senders: ``fleetbgp``, ExaBGP 5.0.15, and with ``--baseline REF`` (or ``--baseline-src PATH``)
``fleetbgp@REF``. ExaBGP is capped at 100,000 routes by default (``--max-routes exabgp=100000``):
its API takes about 3 ms a line here (284 s for 100,000), so 1,000,000 would add most of an hour;
``--max-routes exabgp=0`` lifts the cap. GoBGP: see ``GobgpApiSender`` in benchlib.py.

Metrics are the static bench's (bench/README.md), plus the program's share, reported apart from
the sender's: ``program_rss_peak_mib`` (its VmHWM), ``program_cpu_s`` (its CPU when BIRD held all
routes) and ``t_feed_done_s`` (spawn to the program's last write returning: how fast the sender
drained the pipe; the rest of ``t_all_s`` is the sender working off what it read).

Usage (as root):  .venv/bin/python bench/api_routes.py [--routes 100000 1000000]
                  [--senders fleetbgp exabgp] [--baseline REF | --baseline-src PATH]
                  [--max-routes exabgp=100000] [--repeat 1]
                  [--out bench/results/api_routes-DATE.json | --no-out] [--markdown RESULT.json]
       make bench BENCH=bench/api_routes.py BENCH_ARGS="--repeat 3"
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import ATTRS, REPO, Lab, Link, Workload, neighbor_head, venv_python

FEED = REPO / "bench" / "api_feed.py"


class ApiRoutes(Workload):
    name = "api_routes"
    default_routes = (100_000, 1_000_000)
    what = (f"one ExaBGP-syntax neighbor with api {{ processes [ feed ]; }}; the program "
            f"(bench/api_feed.py) writes 'announce route P {ATTRS}' x N to stdout as fast as the pipe "
            "takes it (distinct /24s from 10.0.0.0, skipping 10.255/16), then idles; the same config, "
            "program and lines for every sender; API acks off")

    def prepare(self, lab: Lab, routes: list[str], link: Link, hold_time: int) -> Path:
        lines = lab.path("routes.api")
        with open(lines, "w") as f:
            f.writelines(f"announce route {p} {ATTRS}\n" for p in routes)
        run = f"{venv_python()} {FEED} {lines} {lab.path('feed.json')}"
        conf = lab.path("sender.conf")
        conf.write_text(
            "process feed {\n"
            f"  run {run};\n"
            "  encoder text;\n"
            "}\n\n"
            + neighbor_head(link.a4, link.b4, hold_time)
            + "  api {\n    processes [ feed ];\n  }\n}\n")
        return conf

    def program_marker(self) -> str:
        return str(FEED)

    def facts(self, lab: Lab, t0: float) -> dict:
        """The program's own report: when it was done writing, on the bench's clock (both read
        CLOCK_MONOTONIC, which network namespaces do not change)."""
        try:
            rep = json.loads(lab.path("feed.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"t_feed_done_s": None, "feed_report": None}
        return {"t_feed_start_s": round(rep["t_start_mono"] - t0, 3),
                "t_feed_done_s": round(rep["t_done_mono"] - t0, 3),
                "feed_bytes": rep["bytes"], "feed_report": rep}


def main(argv: Sequence[str] | None = None) -> int:
    workload = ApiRoutes()
    ap = benchlib.parser(workload, __doc__ or "", max_routes=["exabgp=100000"])
    return benchlib.main(workload, ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
