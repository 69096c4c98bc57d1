"""fleetbgp_update_processing_seconds: each UPDATE's processing time, received and sent, per peer.
The histogram itself (buckets as Prometheus reads them), the FSM's decode timing with a clock handed
in, and two speakers with a real BGP session over loopback, scraped over HTTP. No timed asserts:
what is checked is which bucket a given duration lands in and that every UPDATE is counted."""

from __future__ import annotations

import asyncio
import itertools
import urllib.request
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_api_process import settings, wait_for
from test_hostile_peer import BASE, established_connection, make_peer, update

from fleetbgp.config import parse_text
from fleetbgp.daemon import Speaker
from fleetbgp.durations import UPDATE_SECONDS_BUCKETS, DurationHistogram
from fleetbgp.fsm import UpdateReceived
from fleetbgp.metrics import Metrics
from fleetbgp.session import BGPProtocol
from fleetbgp.settings import AgentSettings
from fleetbgp.wire.messages import frame
from fleetbgp.wire.nlri import IPV4_UNICAST

# -- the histogram ----------------------------------------------------------------------------------


def test_a_duration_lands_in_the_first_bucket_whose_bound_holds_it() -> None:
    hist = DurationHistogram((0.001, 0.01, 0.1))
    for seconds in (0.0, 0.001, 0.0011, 0.01, 0.5, 7.0):
        hist.observe(seconds)
    snap = hist.snapshot()
    assert snap.counts == (2, 2, 0, 2), "a duration equal to a bound counts in that bound's bucket"
    assert snap.cumulative() == [("0.001", 2), ("0.01", 4), ("0.1", 4), ("+Inf", 6)]
    assert snap.count == 6
    assert snap.total == pytest.approx(0.0 + 0.001 + 0.0011 + 0.01 + 0.5 + 7.0)


def test_a_snapshot_is_a_copy() -> None:
    hist = DurationHistogram()
    before = hist.snapshot()
    hist.observe(0.002)
    assert before.count == 0 and hist.snapshot().count == 1
    assert len(before.counts) == len(UPDATE_SECONDS_BUCKETS) + 1


@pytest.mark.parametrize("bounds", [(), (0.1, 0.01), (0.1, 0.1)])
def test_bounds_must_be_increasing(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="distinct and increasing"):
        DurationHistogram(bounds)


# -- the FSM's decode timing ------------------------------------------------------------------------


def test_with_a_clock_the_fsm_says_how_long_an_update_took_to_decode() -> None:
    conn = established_connection()
    ticks = itertools.count(start=10.0, step=0.25)
    conn.clock = lambda: next(ticks)
    [action] = [a for a in conn.data_received(frame(2, update(BASE))) if isinstance(a, UpdateReceived)]
    assert action.decode_seconds == 0.25
    assert IPV4_UNICAST in action.update.announce, "decoded as without a clock"


def test_without_a_clock_the_fsm_reads_none() -> None:
    conn = established_connection()
    [action] = [a for a in conn.data_received(frame(2, update(BASE))) if isinstance(a, UpdateReceived)]
    assert action.decode_seconds == 0.0


def test_a_received_updates_time_includes_what_the_fsm_took_to_decode_it() -> None:
    [action] = [a for a in established_connection().data_received(frame(2, update(BASE)))
                if isinstance(a, UpdateReceived)]

    async def go() -> None:
        peer = make_peer()
        BGPProtocol(peer, "in").execute([replace(action, decode_seconds=5.0)])
        snap = peer.update_seconds["received"].snapshot()
        assert snap.counts[-1] == 1, "5 s of decoding alone is above every bound"
        assert snap.total >= 5.0
        assert peer.update_seconds["sent"].snapshot().count == 0
        assert peer.rib_in.counts()["ipv4 unicast"] > 0, "and the routes applied"

    asyncio.run(go())


# -- two speakers over loopback ---------------------------------------------------------------------

def _neighbor(peer: str, local: str, extra: str, routes: list[str]) -> str:
    static = "".join(f"    route {r} next-hop self;\n" for r in routes)
    return (f"neighbor {peer} {{\n  router-id {local}; local-address {local}; local-as 65001; peer-as 65001;\n"
            f"  family {{ ipv4 unicast; }}\n  {extra}\n  static {{\n{static}  }}\n}}\n")


def _scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _histogram(families: dict[str, Any], peer: str, direction: str) -> dict[str, Any]:
    family = families["fleetbgp_update_processing_seconds"]
    assert family.type == "histogram"
    mine = [s for s in family.samples if s.labels.get("peer") == peer and s.labels.get("direction") == direction]
    buckets = [(s.labels["le"], s.value) for s in mine if s.name.endswith("_bucket")]
    [count] = [s.value for s in mine if s.name.endswith("_count")]
    [total] = [s.value for s in mine if s.name.endswith("_sum")]
    return {"buckets": buckets, "count": count, "sum": total}


def test_a_real_session_counts_every_update_received_and_sent(tmp_path: Any) -> None:
    """A (127.0.0.2, passive) and B (127.0.0.3, dials A) exchange routes; each side's histograms
    count what it sent and received, as many as its UPDATE counters say, End-of-RIB included."""
    a_routes = [f"10.1.{i}.0/24" for i in range(3)]
    b_routes = [f"10.2.{i}.0/24" for i in range(5)]

    async def go() -> None:
        a = Speaker(parse_text(_neighbor("127.0.0.3", "127.0.0.2", "passive;", a_routes),
                               str(tmp_path / "a.conf")), settings(listen=(("127.0.0.2", 0),)))
        await a.start()
        port = a.listeners[0].getsockname()[1]
        b = Speaker(parse_text(_neighbor("127.0.0.2", "127.0.0.3", f"connect {port};", b_routes),
                               str(tmp_path / "b.conf")), settings(listen=()))
        await b.start()
        metrics = Metrics(a, AgentSettings(metrics_address="127.0.0.1", metrics_port=0))
        assert metrics.start()
        try:
            pa, pb = a.peers["127.0.0.3"], b.peers["127.0.0.2"]
            await wait_for(lambda: pa.rib_in.counts().get("ipv4 unicast") == len(b_routes)
                           and pb.rib_in.counts().get("ipv4 unicast") == len(a_routes)
                           and IPV4_UNICAST in pa.rib_in.eor and IPV4_UNICAST in pb.rib_in.eor
                           and pa.send_queue_empty and pb.send_queue_empty, what="routes and End-of-RIB")
            for peer in (pa, pb):
                for direction, counter in (("received", "updates_in"), ("sent", "updates_out")):
                    snap = peer.update_seconds[direction].snapshot()
                    assert snap.count == peer.stats[counter] > 0, (peer.address, direction)
                    assert snap.total > 0
            assert metrics.address is not None
            families = await asyncio.to_thread(_scrape, metrics.address[1])
            for direction, counter in (("received", "updates_in"), ("sent", "updates_out")):
                hist = _histogram(families, "127.0.0.3", direction)
                assert hist["count"] == pa.stats[counter]
                assert hist["buckets"][-1] == ("+Inf", hist["count"])
                assert [le for le, _n in hist["buckets"][:-1]] == [repr(b) for b in UPDATE_SECONDS_BUCKETS]
                values = [n for _le, n in hist["buckets"]]
                assert values == sorted(values), "cumulative"
                assert hist["sum"] > 0
        finally:
            metrics.stop()
            await b.stop()
            await a.stop()

    asyncio.run(go())
