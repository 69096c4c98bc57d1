#!/usr/bin/env python3
"""Static-route load bench: how long until BIRD 2 holds N routes from a sender's config file.

For each N (default 10,000 and 100,000), in the same run and on the same machine, each sender
gets a fresh lab: two network namespaces joined by a veth pair, BIRD 2 as the receiver in one
(``ipv4 { import all; export none; }``), the sender in the other, loading N static routes from
one ExaBGP-syntax config file (the same file for every sender):

    neighbor 10.255.1.1 {
      router-id 10.255.1.2; local-address 10.255.1.2; local-as 65001; peer-as 65000; ...
      family { ipv4 unicast; }
      static {
        route 10.0.0.0/24 next-hop self med 100 community [ 65001:100 ];
        ...                      (N distinct /24s, identical attributes)
      }
    }

Senders: ``fleetbgp`` (``python -m fleetbgp run CONF``), ExaBGP 5.0.15 (``exabgp server CONF``),
and with ``--baseline REF`` (or ``--baseline-src PATH``) ``fleetbgp@REF``: the agent of another git
revision, same interpreter. GoBGP is not comparable here (it has no static routes in a config
file, and ``gobgp global rib add`` forks one CLI process per route): bench/api_routes.py feeds it
over gRPC.

The lab, the senders, the measurement and the report are bench/benchlib.py's, shared with
bench/api_routes.py; bench/README.md says what each number means. Measurement, not a test:
nothing here asserts a time. The exit code is 1 only when a run did not complete (sender crashed,
session never came up, wrong route count, bounded wait ran out).

Usage (as root):  .venv/bin/python bench/static_routes.py [--routes 10000 100000]
                  [--senders fleetbgp exabgp] [--baseline REF | --baseline-src PATH] [--repeat 1]
                  [--profile] [--out bench/results/static_routes-DATE.json | --no-out]
                  [--markdown RESULT.json]
       make bench BENCH=bench/static_routes.py BENCH_ARGS="--repeat 3 --profile"
"""

from __future__ import annotations

import io
import json
import pstats
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import ATTRS, FleetbgpSender, Lab, Link, Sender, Workload, neighbor_head, prefixes, run_text


def render_config(routes: Sequence[str], peer: str, local: str, hold_time: int) -> str:
    body = "".join(f"    route {p} {ATTRS};\n" for p in routes)
    return neighbor_head(peer, local, hold_time) + "  static {\n" + body + "  }\n}\n"


class StaticRoutes(Workload):
    name = "static_routes"
    default_routes = (10_000, 100_000)
    what = (f"one ExaBGP-syntax neighbor, static {{ route P/24 {ATTRS}; }} x N, distinct /24s "
            "from 10.0.0.0 (skipping 10.255/16); the same file for every sender")

    def prepare(self, lab: Lab, routes: list[str], link: Link, hold_time: int) -> Path:
        conf = lab.path("sender.conf")
        conf.write_text(render_config(routes, peer=link.a4, local=link.b4, hold_time=hold_time))
        return conf


# --------------------------------------------------------------------------------------------
# --profile


def parse_only(sender: FleetbgpSender, n: int, tmp: Path, tries: int = 3) -> list:
    """Seconds fleetbgp.config.load() takes for the N-route config, in a fresh agent interpreter each
    time (no network, no profiler): the parse share of the agent's start-up."""
    conf = tmp / "parse-only.conf"
    conf.write_text(render_config(prefixes(n), peer="10.255.1.1", local="10.255.1.2", hold_time=90))
    code = (f"import time, fleetbgp.config as c; t = time.perf_counter(); c.load({str(conf)!r}); "
            "print(time.perf_counter() - t)")
    out = []
    for _ in range(tries):
        rc, text = run_text([sender.python, "-c", code], env=sender.env(), timeout=300)
        out.append(round(float(text.split()[-1]), 3) if rc == 0 else None)
    return out


def profile_run(args, senders: list[Sender]) -> dict | None:
    """One fleetbgp run under cProfile (python -m cProfile -o F -m fleetbgp run CONF), stopped with
    SIGTERM after BIRD holds everything (the agent exits cleanly, so cProfile writes its stats)."""
    if not args.profile or "fleetbgp" not in [s.name for s in senders]:
        return None
    n = max(args.routes)
    tmp = Path(tempfile.mkdtemp(prefix="fbb-profile-"))
    try:
        sender = FleetbgpSender(profile_out=tmp / "fleetbgp.prof")
        print(f"-- fleetbgp under cProfile, {n:,} routes (not in the table) ...", flush=True)
        rec = benchlib.one_run(sender, StaticRoutes(), n, prefixes(n), args)
        parse = parse_only(sender, n, tmp)
        out = {"config_load_s_no_profiler": parse, "routes": n, "ok": rec["ok"], "error": rec["error"],
               "t_all_s_under_profiler": rec.get("t_all_s"),
               "t_established_s_under_profiler": rec.get("t_established_s")}
        if sender.profile_out is None or not sender.profile_out.exists():
            out["error"] = (out["error"] or "") + " (no profile written)"
            out["text"] = json.dumps(out)
            return out
        buf = io.StringIO()
        buf.write(f"fleetbgp run, {n:,} static routes, under cProfile: all in BIRD after "
                  f"{rec.get('t_all_s')} s (established {rec.get('t_established_s')} s)\n"
                  f"fleetbgp.config.load() alone, no profiler, fresh interpreter, 3 tries: {parse} s\n\n")
        st = pstats.Stats(str(sender.profile_out), stream=buf)
        st.sort_stats("cumulative").print_stats(40)
        st.sort_stats("tottime").print_stats(25)
        out["text"] = buf.getvalue()
        top = []
        for (file, line, func), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
            top.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc,
                        "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)})
        out["top_tottime"] = sorted(top, key=lambda x: -x["tottime_s"])[:15]
        out["top_cumtime"] = sorted(top, key=lambda x: -x["cumtime_s"])[:25]
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    workload = StaticRoutes()
    ap = benchlib.parser(workload, __doc__ or "")
    ap.add_argument("--profile", action="store_true",
                    help="after the measured runs, one extra fleetbgp run at the largest N under cProfile "
                         "(not in the results table); top functions go to a -profile.txt next to --out")
    return benchlib.main(workload, ap.parse_args(argv), after_runs=profile_run)


if __name__ == "__main__":
    raise SystemExit(main())
