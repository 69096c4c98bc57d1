"""Does a route fit in one UPDATE message? The check every way in for routes shares: the config
file, API programs, the control socket, health checks and FlowSpec rules.

A BGP message is at most 4096 bytes (RFC 4271 4.1), or 65535 between speakers that both offer
extended messages (RFC 8654). A route whose path attributes and NLRI cannot go into one message
cannot be sent at all, so it is refused where it comes in, against the limit of the neighbors it
is for. The send path (rib.AdjRibOut.flush) still drops, and logs, whatever does not fit the
session it is on: a peer that did not accept extended messages, or a 2-octet-AS peer that also
needs AS4_PATH.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from .attributes import Attributes, EncodeContext, RouteTooLarge, encode_attributes
from .constants import HEADER_LEN, MAX_EXTENDED_MESSAGE, MAX_MESSAGE
from .messages import announce_room, next_hop_in_body
from .nlri import IPV4_UNICAST, Family


class _Offered(Protocol):
    @property
    def extended_message(self) -> bool:
        ...

    @property
    def extended_next_hop(self) -> Collection[Family]:
        ...


class RouteTarget(Protocol):
    """What these checks read of a neighbor a route is for (config.model.Neighbor has it), named
    here because wire/ imports nothing above it."""

    @property
    def peer_address(self) -> str:
        ...

    @property
    def families(self) -> Collection[Family]:
        ...

    @property
    def capabilities(self) -> _Offered:
        ...


# Sizes are measured on the sessions that make attributes longest: eBGP prepends our AS (a new
# segment when the path starts with a full or non-sequence one), iBGP adds LOCAL_PREF, and an IPv6
# next hop may carry a link-local address as well. A 4-octet AS keeps the prepend at its largest.
# An IPv4 unicast route may go in MP_REACH_NLRI with an IPv6 next hop (RFC 8950): written, or
# `next-hop self` on an IPv6 session (no IPv4 address of ours), 32 bytes with the link-local one.
def _probe(peer_as: int, v4: str | None = "192.0.2.1") -> EncodeContext:
    return EncodeContext(local_as=4200000000, peer_as=peer_as, next_hop_self_v4=v4,
                         next_hop_self_v6="2001:db8::1", link_local_v6="fe80::1",
                         max_size=MAX_EXTENDED_MESSAGE, extended_next_hop=frozenset((IPV4_UNICAST,)))


_PROBES = (_probe(4200000001), _probe(4200000000))  # eBGP, iBGP
_V6_SESSION_PROBES = (_probe(4200000001, None), _probe(4200000000, None))
_MED = 7  # maintenance with `metric` adds a MED to routes without one: 3 header + 4 value bytes

_OVERHEAD: weakref.WeakKeyDictionary[Attributes, dict[Family, int]] = weakref.WeakKeyDictionary()


def _overhead(fam: Family, attrs: Attributes) -> int:
    """Bytes of an UPDATE announcing one `fam` route with attrs, without the NLRI item."""
    worst = 0
    for ctx in _PROBES + _V6_SESSION_PROBES if fam == IPV4_UNICAST else _PROBES:
        try:
            head = encode_attributes(attrs, ctx, ipv4_next_hop=next_hop_in_body(fam, attrs, ctx))
            room = announce_room(fam, attrs, ctx, head)
        except RouteTooLarge as exc:
            return HEADER_LEN + 4 + exc.size
        except ValueError:
            # A next hop that cannot be encoded: the entry points reject those themselves. Count
            # the attributes and the largest next hop.
            head = encode_attributes(attrs.replace(next_hop=None), ctx, ipv4_next_hop=False)
            room = ctx.max_size - HEADER_LEN - 4 - len(head) - 4 - 5 - 32
        worst = max(worst, ctx.max_size - room)
    return worst + (_MED if attrs.med is None else 0)


def update_size(fam: Family, nlri: bytes, attrs: Attributes) -> int:
    """Bytes of the UPDATE that carries this one route, on the session that needs the most
    (cached per attribute set: routes share them)."""
    per_family = _OVERHEAD.get(attrs)
    if per_family is None:
        per_family = _OVERHEAD[attrs] = {}
    size = per_family.get(fam)
    if size is None:
        size = per_family[fam] = _overhead(fam, attrs)
    return size + len(nlri)


def _upper_bound(attrs: Attributes) -> int:
    """More bytes than the UPDATE of one route with `attrs` can take on any session (its NLRI
    aside), counted without encoding: every attribute with an extended (4-byte) header, the eBGP
    prepend, LOCAL_PREF, the largest next hop or MP_REACH header, the maintenance MED."""
    size = HEADER_LEN + 4 + 5 + 8 + 8 + 4 + 12 + 48 + _MED  # ORIGIN MED LOCAL_PREF ATOMIC AGGREGATOR NH
    size += 4 + 6 + sum(2 + 2 * (len(asns) // 255) + 4 * len(asns) for _seg_type, asns in attrs.as_path)
    size += 4 + 4 * len(attrs.communities)
    size += 4 + 8 * len(attrs.ext_communities)
    size += 4 + 12 * len(attrs.large_communities)
    size += sum(4 + len(value) for _flags, _code, value in attrs.other)
    return size


def exceeds(fam: Family, nlri: bytes, attrs: Attributes, limit: int) -> bool:
    """Does the UPDATE of this one route need more than `limit` bytes on some session? Encodes
    only when a bound says it might: a config of 100,000 routes, each with its own MED, must not
    encode every attribute set twice more to learn that each needs 60 bytes."""
    if _upper_bound(attrs) + len(nlri) <= limit:
        return False
    return update_size(fam, nlri, attrs) > limit


Limit = int | Callable[[Family], int]


def size_problem(fam: Family, nlri: bytes, attrs: Attributes, limit: Limit) -> str | None:
    """Why the route cannot go in one UPDATE of `limit` bytes, or None when it can. `limit` may be
    a function of the family, asked only for a route larger than a standard 4096-byte message."""
    if not exceeds(fam, nlri, attrs, MAX_MESSAGE):
        return None
    size = update_size(fam, nlri, attrs)
    max_size = limit(fam) if callable(limit) else limit
    if size <= max_size:
        return None
    if max_size < MAX_EXTENDED_MESSAGE:
        return (f"the route does not fit in one UPDATE message: it needs {size} bytes, the limit is "
                f"{max_size} (up to {MAX_EXTENDED_MESSAGE} to neighbors with 'capability "
                "{ extended-message; }', RFC 8654)")
    return (f"the route does not fit in one UPDATE message: it needs {size} bytes, more than the "
            f"{MAX_EXTENDED_MESSAGE} of an extended message (RFC 8654)")


def message_limit(neighbors: Iterable[RouteTarget], fam: Family) -> int:
    """The largest UPDATE that may go to every one of `neighbors` (config.model.Neighbor) that has
    `fam`: 65535 bytes where extended messages are configured, else 4096. The peer must offer
    extended messages too; where it does not, the send path drops what does not fit."""
    sizes = [MAX_EXTENDED_MESSAGE if n.capabilities.extended_message else MAX_MESSAGE
             for n in neighbors if fam in n.families]
    return min(sizes, default=MAX_MESSAGE)


def first_oversized(routes: Iterable[tuple[Family, bytes, Attributes | None]],
                    neighbors: Callable[[], Iterable[RouteTarget]]) -> tuple[Family, bytes, str] | None:
    """The first of `routes` that does not fit in one UPDATE to `neighbors()` (config.model.Neighbor,
    asked only for a route larger than a standard message), with why; None when all fit. Every way
    in checks a whole batch with this before it announces any of it."""
    def limit(fam: Family) -> int:
        return message_limit(neighbors(), fam)

    for fam, nlri, attrs in routes:
        problem = size_problem(fam, nlri, attrs, limit) if attrs is not None else None
        if problem is not None:
            return fam, nlri, problem
    return None


def extended_next_hop_problem(neighbors: Iterable[RouteTarget], fam: Family, next_hop: str) -> str | None:
    """Why a `fam` route with this written next hop cannot go to `neighbors` (config.model.Neighbor,
    those the route is for), or None when it can. An IPv4 route with an IPv6 next hop goes only
    in MP_REACH_NLRI to a neighbor with the extended next hop (RFC 8950) for its family: one
    without it would never be sent the route."""
    if fam != IPV4_UNICAST or ":" not in next_hop:
        return None
    lacking = [n.peer_address for n in neighbors
               if fam in n.families and fam not in n.capabilities.extended_next_hop]
    if not lacking:
        return None
    which = f"neighbor {lacking[0]}" if len(lacking) == 1 else \
        f"neighbors {', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}"
    return (f"next-hop {next_hop} is IPv6: an IPv4 route with an IPv6 next hop needs the extended "
            f"next hop (nexthop {{ ipv4 unicast ipv6; }}, RFC 8950), which {which} does not have")


def first_foreign_next_hop(routes: Iterable[tuple[Family, bytes, Attributes | None]],
                           neighbors: Callable[[], Iterable[RouteTarget]],
                           ) -> tuple[Family, bytes, str] | None:
    """The first of `routes` whose next hop is of the other address family and cannot go to
    `neighbors()` (asked once, only when such a route is there), with why; None when all can.
    Like first_oversized, every way in checks a whole batch before it announces any of it."""
    chosen: list[RouteTarget] | None = None
    for fam, nlri, attrs in routes:
        nh = attrs.next_hop if attrs is not None else None
        if fam != IPV4_UNICAST or nh is None or ":" not in nh:
            continue
        if chosen is None:
            chosen = list(neighbors())
        problem = extended_next_hop_problem(chosen, fam, nh)
        if problem is not None:
            return fam, nlri, problem
    return None
