"""How long each UPDATE took to process, per peer and direction: a fixed-bucket histogram counted on
the hot path, exported as `fleetbgp_update_processing_seconds` (metrics.py).

prometheus_client's Histogram takes a lock per observation and looks labels up in a dict; this is a
list of counts per peer and direction, one `bisect` and two additions per UPDATE, read by a scrape
through a copy taken on the event loop (the only thread that writes it).

What is timed (docs/agent/operations.md, "UPDATE processing time"):
- received: one UPDATE, from its last byte framed to its routes in the Adj-RIB-In and its event
  handed to the API programs: decoding (with the RFC 7606 checks), applying, logging, dispatching.
  Not the time it waited in the socket, nor behind other messages of the same read.
- sent: one UPDATE, from asking the adj-rib-out for it (encoded as it is asked for) to its bytes
  handed to the transport (and decoded again for the API programs that asked for sent UPDATEs).
  Not the time spent waiting for the peer to read (flow control) or for the event loop.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

# Upper bounds in seconds. A decoded or encoded UPDATE takes tens of microseconds here; the seed
# guide's exporter used prometheus_client's default buckets (5 ms upwards), where every UPDATE
# would land in the first one. The top bounds catch an event loop that stalls.
UPDATE_SECONDS_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

DIRECTIONS = ("received", "sent")


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A copy for a scrape: counts per bucket (not cumulative; the last one is above every bound),
    the sum of the observed seconds, and the bounds."""

    counts: tuple[int, ...]
    total: float
    bounds: tuple[float, ...]

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) as Prometheus wants them, +Inf last."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class DurationHistogram:
    """Counts of durations by bucket; written by one thread (the event loop)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = UPDATE_SECONDS_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"histogram bounds must be distinct and increasing: {bounds!r}")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: a duration equal to a bound belongs to that bucket (Prometheus' `le`).
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(tuple(self.counts), self.total, self.bounds)


def update_histograms() -> dict[str, DurationHistogram]:
    """One histogram per direction, for a peer."""
    return {direction: DurationHistogram() for direction in DIRECTIONS}
