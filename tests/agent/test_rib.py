"""adj-rib-out (what the peer should hold, packed into UPDATEs) and adj-rib-in."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.rib import AdjRibIn, AdjRibOut
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext
from fleetbgp.wire.constants import MsgType
from fleetbgp.wire.messages import MessageReader, Update, decode_update, end_of_rib
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

CTX = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1",
                    next_hop_self_v6="2001:db8::1")
FAMS = [IPV4_UNICAST, IPV6_UNICAST]
A = Attributes.make(next_hop="self", med=10)
B = Attributes.make(next_hop="self", med=20)
C = Attributes.make(next_hop="self", communities=(1,))


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def v4(i: int) -> bytes:
    return n(f"10.{i >> 8 & 255}.{i & 255}.0/24")


def decode_all(messages: list[bytes], ctx: EncodeContext = CTX) -> list[Update]:
    reader = MessageReader(ctx.max_size)
    out = []
    for msg in messages:
        assert len(msg) <= ctx.max_size
        for msg_type, body in reader.feed(msg):
            assert msg_type == MsgType.UPDATE
            out.append(decode_update(body, DecodeContext(ibgp=False), FAMS))
    return out


class Peer:
    """What a peer would hold after applying our UPDATEs, in order."""

    def __init__(self) -> None:
        self.routes: dict[Family, dict[bytes, Any]] = {}
        self.eor: list[Family] = []

    def apply(self, updates: list[Update]) -> None:
        for upd in updates:
            for fam, items in upd.withdraw.items():
                for item in items:
                    self.routes.get(fam, {}).pop(item, None)
            for fam, (attrs, items) in upd.announce.items():
                for item in items:
                    self.routes.setdefault(fam, {})[item] = attrs.med
            if upd.eor is not None:
                self.eor.append(upd.eor)

    def view(self) -> dict[Family, dict[bytes, Any]]:
        return {f: t for f, t in self.routes.items() if t}


def want(rib: AdjRibOut) -> dict[Family, dict[bytes, Any]]:
    return {f: {k: a.med for k, a in t.items()} for f, t in rib.routes.items() if t}


def test_put_and_remove_report_changes() -> None:
    rib = AdjRibOut()
    assert rib.put(IPV4_UNICAST, v4(1), A)
    assert not rib.put(IPV4_UNICAST, v4(1), A)  # same interned attributes: no change
    assert not rib.put(IPV4_UNICAST, v4(1), Attributes.make(next_hop="self", med=10))
    assert rib.put(IPV4_UNICAST, v4(1), B)
    assert rib.remove(IPV4_UNICAST, v4(1))
    assert not rib.remove(IPV4_UNICAST, v4(1))
    assert not rib.remove(IPV6_UNICAST, v4(1))
    assert len(rib) == 0 and rib.count(IPV4_UNICAST) == 0


def test_flush_groups_routes_by_attribute_set() -> None:
    rib = AdjRibOut()
    for i in range(10):
        rib.put(IPV4_UNICAST, v4(i), A if i % 2 else B)
    msgs = list(rib.flush(CTX, FAMS))
    assert len(msgs) == 2  # one UPDATE per attribute set
    updates = decode_all(msgs)
    meds = sorted((u.announce[IPV4_UNICAST][0].med, len(u.announce[IPV4_UNICAST][1])) for u in updates)
    assert meds == [(10, 5), (20, 5)]
    assert not rib.pending
    assert list(rib.flush(CTX, FAMS)) == []


def test_flush_sends_withdrawals_before_announcements() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, v4(1), A)
    rib.put(IPV6_UNICAST, n("2001:db8::/32"), A)
    list(rib.flush(CTX, FAMS))
    rib.put(IPV4_UNICAST, v4(2), A)
    rib.remove(IPV4_UNICAST, v4(1))
    rib.put(IPV6_UNICAST, n("2001:db8:1::/48"), B)
    rib.remove(IPV6_UNICAST, n("2001:db8::/32"))
    updates = decode_all(list(rib.flush(CTX, FAMS)))
    kinds = [("w" if u.withdraw else "a", next(iter(u.withdraw or u.announce))) for u in updates]
    assert kinds == [("w", IPV4_UNICAST), ("a", IPV4_UNICAST), ("w", IPV6_UNICAST), ("a", IPV6_UNICAST)]


def test_flush_only_sends_changes() -> None:
    rib = AdjRibOut()
    for i in range(5):
        rib.put(IPV4_UNICAST, v4(i), A)
    list(rib.flush(CTX, FAMS))
    rib.put(IPV4_UNICAST, v4(3), B)
    [upd] = decode_all(list(rib.flush(CTX, FAMS)))
    assert upd.announce[IPV4_UNICAST][1] == [v4(3)] and upd.announce[IPV4_UNICAST][0].med == 20


def test_put_then_remove_before_flush() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, v4(1), A)
    rib.remove(IPV4_UNICAST, v4(1))
    updates = decode_all(list(rib.flush(CTX, FAMS)))
    assert all(not u.announce for u in updates)  # a withdrawal of a never-sent route is harmless


def test_flush_leaves_other_families_pending() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, v4(1), A)
    rib.put(IPV6_UNICAST, n("2001:db8::/32"), A)
    [upd] = decode_all(list(rib.flush(CTX, [IPV6_UNICAST])))
    assert IPV6_UNICAST in upd.announce
    assert rib.pending
    [upd] = decode_all(list(rib.flush(CTX, [IPV4_UNICAST])))
    assert IPV4_UNICAST in upd.announce


def test_mark_all_resends_everything_then_end_of_rib() -> None:
    rib = AdjRibOut()
    for i in range(300):
        rib.put(IPV4_UNICAST, v4(i), A)
    rib.put(IPV6_UNICAST, n("2001:db8::/32"), C)
    list(rib.flush(CTX, FAMS))
    assert not rib.pending
    rib.mark_all(FAMS, fresh=True)
    assert rib.pending
    msgs = list(rib.flush(CTX, FAMS, end_of_rib_for=FAMS))
    assert msgs[-1] == end_of_rib(IPV6_UNICAST) and end_of_rib(IPV4_UNICAST) in msgs
    peer = Peer()
    peer.apply(decode_all(msgs))
    assert peer.view() == want(rib)
    assert peer.eor == [IPV4_UNICAST, IPV6_UNICAST]


def test_end_of_rib_even_for_an_empty_family() -> None:
    rib = AdjRibOut()
    rib.mark_all(FAMS, fresh=True)
    assert list(rib.flush(CTX, FAMS, end_of_rib_for=FAMS)) == [end_of_rib(IPV4_UNICAST), end_of_rib(IPV6_UNICAST)]


def test_route_refresh_resend_keeps_pending_withdrawals() -> None:
    # The peer holds v4(1); we withdraw it, and the peer asks for a refresh before we flush:
    # the full re-send must still withdraw v4(1), or the peer keeps it forever.
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, v4(1), A)
    rib.put(IPV4_UNICAST, v4(2), A)
    peer = Peer()
    peer.apply(decode_all(list(rib.flush(CTX, FAMS))))
    rib.remove(IPV4_UNICAST, v4(1))
    rib.mark_all([IPV4_UNICAST])
    rib.remove(IPV4_UNICAST, v4(2))  # and one more after the refresh request
    rib.put(IPV4_UNICAST, v4(3), B)
    peer.apply(decode_all(list(rib.flush(CTX, FAMS))))
    assert peer.view() == want(rib) == {IPV4_UNICAST: {v4(3): 20}}


def test_new_session_drops_pending_changes() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, v4(1), A)
    rib.remove(IPV4_UNICAST, v4(1))
    rib.put(IPV4_UNICAST, v4(2), A)
    rib.mark_all([IPV4_UNICAST], fresh=True)
    updates = decode_all(list(rib.flush(CTX, FAMS)))
    assert [u.withdraw for u in updates] == [{}]
    assert updates[0].announce[IPV4_UNICAST][1] == [v4(2)]


def test_replace_computes_exact_diffs() -> None:
    rib = AdjRibOut()
    assert rib.replace(IPV4_UNICAST, {v4(1): A, v4(2): A, v4(3): A}) == (3, 0)
    list(rib.flush(CTX, FAMS))
    assert rib.replace(IPV4_UNICAST, {v4(1): A, v4(2): B, v4(4): A}) == (2, 1)
    updates = decode_all(list(rib.flush(CTX, FAMS)))
    withdrawn = [i for u in updates for i in u.withdraw.get(IPV4_UNICAST, [])]
    announced = sorted(i for u in updates for i in u.announce.get(IPV4_UNICAST, (None, []))[1])
    assert withdrawn == [v4(3)] and announced == sorted([v4(2), v4(4)])
    assert rib.replace(IPV4_UNICAST, {v4(1): A, v4(2): B, v4(4): A}) == (0, 0)
    assert list(rib.flush(CTX, FAMS)) == []
    assert rib.replace(IPV4_UNICAST, {}) == (0, 3)
    assert len(rib) == 0


def test_unresolvable_next_hop_skips_only_that_group() -> None:
    rib = AdjRibOut()
    rib.put(IPV6_UNICAST, n("2001:db8::/32"), A)  # next-hop self, no IPv6 local address
    rib.put(IPV6_UNICAST, n("2001:db8:1::/48"), Attributes.make(next_hop="2001:db8::9"))
    ctx = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1")
    [upd] = decode_all(list(rib.flush(ctx, FAMS)), ctx)
    assert upd.announce[IPV6_UNICAST][1] == [n("2001:db8:1::/48")]


def test_large_table_fills_messages() -> None:
    rib = AdjRibOut()
    for i in range(20000):
        rib.put(IPV4_UNICAST, v4(i), A)
    msgs = list(rib.flush(CTX, FAMS))
    # 20000 routes of 4 bytes, about (4096 - 19 - 4 - 30) // 4 = 1010 per message.
    assert len(msgs) == 20
    big = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1", max_size=65535)
    rib.mark_all([IPV4_UNICAST], fresh=True)
    assert len(list(rib.flush(big, FAMS))) == 2


# ---- a random sequence of changes, flushed now and then, always converges ----------------------

ops = st.lists(st.one_of(
    st.tuples(st.just("announce"), st.sampled_from(FAMS), st.integers(0, 40), st.sampled_from([A, B, C])),
    st.tuples(st.just("withdraw"), st.sampled_from(FAMS), st.integers(0, 40), st.none()),
    st.tuples(st.just("flush"), st.none(), st.none(), st.none()),
    st.tuples(st.just("refresh"), st.sampled_from(FAMS), st.none(), st.none()),
    st.tuples(st.just("replace"), st.sampled_from(FAMS), st.integers(0, 2**41 - 1), st.sampled_from([A, B])),
), max_size=60)


def key(fam: Family, i: int) -> bytes:
    return v4(i) if fam == IPV4_UNICAST else n(f"2001:db8:{i:x}::/48")


@settings(max_examples=200)
@given(ops, st.sampled_from([4096, 65535]))
def test_peer_converges_to_the_rib(operations: list[Any], max_size: int) -> None:
    ctx = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1",
                        next_hop_self_v6="2001:db8::1", max_size=max_size)
    rib = AdjRibOut()
    peer = Peer()
    for op, fam, arg, attrs in operations:
        if op == "announce":
            rib.put(fam, key(fam, arg), attrs)
        elif op == "withdraw":
            rib.remove(fam, key(fam, arg))
        elif op == "flush":
            peer.apply(decode_all(list(rib.flush(ctx, FAMS)), ctx))
        elif op == "refresh":
            rib.mark_all([fam])
        else:
            rib.replace(fam, {key(fam, i): attrs for i in range(41) if arg >> i & 1})
    peer.apply(decode_all(list(rib.flush(ctx, FAMS)), ctx))
    assert peer.view() == want(rib)
    assert not rib.pending


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from([A, B, C])), max_size=3000))
def test_full_resend_carries_every_route_exactly_once(routes: list[tuple[int, Attributes]]) -> None:
    rib = AdjRibOut()
    for i, attrs in routes:
        rib.put(IPV4_UNICAST, v4(i), attrs)
    rib.mark_all([IPV4_UNICAST], fresh=True)
    seen: list[bytes] = []
    for upd in decode_all(list(rib.flush(CTX, FAMS))):
        seen += upd.announce[IPV4_UNICAST][1]
    assert sorted(seen) == sorted(rib.routes.get(IPV4_UNICAST, {}))


# ---- adj-rib-in ---------------------------------------------------------------------------------


def test_adj_rib_in_counts_and_keeps_attributes_when_asked() -> None:
    for keep in (False, True):
        rib = AdjRibIn(keep)
        rib.put(IPV4_UNICAST, A, [v4(1), v4(2)])
        rib.put(IPV4_UNICAST, B, [v4(2)])
        rib.put(IPV6_UNICAST, A, [n("2001:db8::/32")])
        rib.remove(IPV4_UNICAST, [v4(1), v4(9)])
        rib.remove(Family(1, 133), [v4(1)])
        assert rib.count(IPV4_UNICAST) == 1 and rib.count(IPV6_UNICAST) == 1
        assert rib.counts() == {"ipv4 unicast": 1, "ipv6 unicast": 1}
        assert rib.routes[IPV4_UNICAST][v4(2)] == (B if keep else None)
        rib.eor.add(IPV4_UNICAST)
        rib.clear()
        assert rib.counts() == {} and rib.eor == set()
