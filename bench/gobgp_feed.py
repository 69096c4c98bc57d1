#!/usr/bin/env python3
"""The API bench's program for GoBGP: the same `announce route` lines, streamed over gRPC.

GoBGP has no text API program; its API is gRPC (`AddPathStream`). This program is what an
operator would write in its place, and it does the work the sender's own parser does for
fleetbgp and ExaBGP: it reads the bench's lines file, turns each `announce route P next-hop self
med N community [ A:B ... ]` line into a GoBGP `Path` (the attribute set is built once per
distinct attribute text, as fleetbgp caches it), and streams them to gobgpd in requests of
--batch paths:

    gobgp_feed.py --stubs DIR --api 127.0.0.1:50051 --next-hop ADDR LINES REPORT

It waits for gobgpd's gRPC port (the bench starts both at t0), streams, writes REPORT (the
CLOCK_MONOTONIC times of the first request and of the stream's end, its CPU and peak RSS) and then
idles until stopped. Needs grpcio, and DIR holding stubs compiled from bench/gobgp_api/*.proto.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterator


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--api", default="127.0.0.1:50051")
    ap.add_argument("--next-hop", required=True, help="what `next-hop self` stands for")
    ap.add_argument("--batch", type=int, default=1000, help="paths per AddPathStream request")
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("lines")
    ap.add_argument("report")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.stubs)  # stubs compiled at run time; grpc checked by the bench
    import attribute_pb2 as attr
    import gobgp_pb2 as api
    import gobgp_pb2_grpc
    import grpc
    from google.protobuf.any_pb2 import Any

    def packed(msg) -> Any:
        a = Any()
        a.Pack(msg)
        return a

    family = api.Family(afi=api.Family.AFI_IP, safi=api.Family.SAFI_UNICAST)
    pattrs_cache: dict[str, list[Any]] = {}

    def pattrs(text: str) -> list[Any]:
        """`next-hop self med 100 community [ 65001:100 ]` -> GoBGP path attributes."""
        words = text.replace("[", " ").replace("]", " ").split()
        out = [packed(attr.OriginAttribute(origin=0))]
        i = 0
        while i < len(words):
            key = words[i]
            if key == "next-hop":
                nh = words[i + 1]
                out.append(packed(attr.NextHopAttribute(next_hop=args.next_hop if nh == "self" else nh)))
                i += 2
            elif key == "med":
                out.append(packed(attr.MultiExitDiscAttribute(med=int(words[i + 1]))))
                i += 2
            elif key == "community":
                comms = []
                i += 1
                while i < len(words) and ":" in words[i]:
                    a, b = words[i].split(":")
                    comms.append(int(a) << 16 | int(b))
                    i += 1
                out.append(packed(attr.CommunitiesAttribute(communities=comms)))
            else:
                raise SystemExit(f"gobgp_feed.py: attribute {key!r} not handled")
        return out

    def requests() -> Iterator:
        batch = []
        with open(args.lines) as f:
            for line in f:
                _announce, _route, prefix, rest = line.split(None, 3)
                pa = pattrs_cache.get(rest)
                if pa is None:
                    pa = pattrs_cache[rest] = pattrs(rest)
                addr, plen = prefix.split("/")
                nlri = packed(attr.IPAddressPrefix(prefix_len=int(plen), prefix=addr))
                batch.append(api.Path(nlri=nlri, pattrs=pa, family=family))
                if len(batch) >= args.batch:
                    yield api.AddPathStreamRequest(table_type=api.GLOBAL, paths=batch)
                    batch = []
        if batch:
            yield api.AddPathStreamRequest(table_type=api.GLOBAL, paths=batch)

    channel = grpc.insecure_channel(args.api)
    grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
    stub = gobgp_pb2_grpc.GobgpApiStub(channel)
    t_start = time.monotonic()
    stub.AddPathStream(requests())
    t_done = time.monotonic()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    tmp = args.report + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "t_start_mono": t_start, "t_done_mono": t_done,
                   "bytes": os.path.getsize(args.lines),
                   "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_kib": ru.ru_maxrss}, f)
    os.replace(tmp, args.report)
    while True:  # stdin is /dev/null here: idle until the bench stops the lab
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
