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

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import (
    ATTRS,
    REPO,
    ROUTER_AS,
    SENDER_AS,
    SENDERS,
    Lab,
    Link,
    Namespace,
    Proc,
    Sender,
    Workload,
    neighbor_head,
    run_text,
    venv_python,
)

FEED = REPO / "bench" / "api_feed.py"
GOBGP_FEED = REPO / "bench" / "gobgp_feed.py"
GOBGP_PROTOS = REPO / "bench" / "gobgp_api"
LINES, REPORT = "routes.api", "feed.json"   # in the lab's work dir
GOBGP_API = "127.0.0.1:50051"               # in the sender's namespace


class GobgpSender(Sender):
    """GoBGP 3.10 (Debian's gobgpd), fed by bench/gobgp_feed.py over gRPC AddPathStream: the same
    lines file, read and turned into paths by that program. gobgpd and the program are spawned
    together at t0 (the program waits for the gRPC port). gobgpd is passive: BIRD connects to it
    (BIRD's connect retry is 2 s), because GoBGP's own first connect takes 7-9 s here.

    The program needs grpcio and grpcio-tools: in the project venv, or in the interpreter named
    by BENCH_GRPC_PYTHON. Without them the sender is skipped (bench/README.md)."""

    name = "gobgp"

    def __init__(self):
        self.gobgpd = shutil.which("gobgpd") or "/usr/bin/gobgpd"
        self.python = os.environ.get("BENCH_GRPC_PYTHON") or venv_python()
        self.stubs: Path | None = None

    def available(self) -> str | None:
        if not Path(self.gobgpd).exists():
            return "no gobgpd (Debian package gobgpd)"
        rc, out = run_text([self.python, "-c", "import grpc, grpc_tools"])
        if rc != 0:
            return (f"{self.python} has no grpcio/grpcio-tools (pip install grpcio grpcio-tools, or "
                    "BENCH_GRPC_PYTHON=PYTHON that has them)")
        self.stubs = Path(tempfile.mkdtemp(prefix="fbb-gobgp-stubs-"))
        atexit.register(shutil.rmtree, self.stubs, True)
        rc, out = run_text([self.python, "-m", "grpc_tools.protoc", f"-I{GOBGP_PROTOS}",
                            f"--python_out={self.stubs}", f"--grpc_python_out={self.stubs}",
                            *map(str, sorted(GOBGP_PROTOS.glob("*.proto")))])
        return None if rc == 0 else f"compiling {GOBGP_PROTOS}/*.proto failed: {out[-400:]}"

    def version(self) -> str:
        _, out = run_text([self.gobgpd, "--version"])
        return out.split()[-1] if out else "?"

    def argv(self, conf: Path) -> list[str]:
        return [self.gobgpd, "-f", str(conf), "-t", "toml", "-p", "-l", "info",
                "--api-hosts", GOBGP_API, "--pprof-disable"]

    def describe(self) -> str:
        return (f"{' '.join(self.argv(Path('GOBGP.toml')))} + {self.python} {GOBGP_FEED} LINES "
                "(gRPC AddPathStream, 1000 paths a request)")

    def start(self, lab: Lab, ns: Namespace, link: Link, conf: Path,
              hold_time: int) -> tuple[Proc, Proc | None]:
        from netlab.gobgp import GoBgpPeer  # lab/ is on sys.path once benchlib is imported

        toml = lab.path("gobgp.toml")
        peer = GoBgpPeer(neighbor=link.a4, peer_as=ROUTER_AS, local_address=link.b4, hold=hold_time,
                         keepalive=max(1, hold_time // 3), passive=True)
        toml.write_text(f'[global.config]\n  as = {SENDER_AS}\n  router-id = "{link.b4}"\n\n'
                        f"{peer.render()}\n")
        gobgpd = lab.spawn(ns, self.argv(toml), name="sender")
        feed = lab.spawn(ns, [self.python, str(GOBGP_FEED), "--stubs", str(self.stubs), "--api", GOBGP_API,
                              "--next-hop", link.b4, str(lab.path(LINES)), str(lab.path(REPORT))],
                         name="gobgp-feed")
        return gobgpd, feed


class ApiRoutes(Workload):
    name = "api_routes"
    default_routes = (100_000, 1_000_000)
    what = (f"one ExaBGP-syntax neighbor with api {{ processes [ feed ]; }}; the program "
            f"(bench/api_feed.py) writes 'announce route P {ATTRS}' x N to stdout as fast as the pipe "
            "takes it (distinct /24s from 10.0.0.0, skipping 10.255/16), then idles; the same config, "
            "program and lines for every sender; API acks off")

    def prepare(self, lab: Lab, routes: list[str], link: Link, hold_time: int) -> Path:
        lines = lab.path(LINES)
        with open(lines, "w") as f:
            f.writelines(f"announce route {p} {ATTRS}\n" for p in routes)
        run = f"{venv_python()} {FEED} {lines} {lab.path(REPORT)}"
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

    def senders(self) -> dict[str, type[Sender]]:
        return {**SENDERS, "gobgp": GobgpSender}

    def facts(self, lab: Lab, t0: float) -> dict:
        """The program's own report: when it was done writing, on the bench's clock (both read
        CLOCK_MONOTONIC, which network namespaces do not change)."""
        try:
            rep = json.loads(lab.path(REPORT).read_text())
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
