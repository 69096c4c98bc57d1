"""The `routes` query: adj-rib-out (or adj-rib-in) entries, filtered, written as JSON a chunk at a
time with the event loop free in between."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from ..rib import keys_of_prefix
from ..wire.nlri import PATH_MARK, Family
from .views import received_entry, route_entry

if TYPE_CHECKING:
    from ..owner import Owner
    from ..wire.attributes import Attributes
    from .ports import PeerView, SpeakerPort

STREAM_CHUNK = 500            # routes serialised between two yields to the event loop

Owned = Mapping[str, Mapping[Family, Collection[bytes]]]


class RouteQuery:
    """adj-rib-out entries, filtered, serialised a chunk at a time with the loop free in between.

    Only keys are copied (never one object per route beyond that), so a 1,000,000-route table
    costs a list of references while it is being read; tables that change meanwhile are read as
    they are when each route's turn comes (a route withdrawn meanwhile is skipped)."""

    def __init__(self, speaker: SpeakerPort, peers: Sequence[PeerView], families: set[Family] | None,
                 prefix: tuple[Family, bytes] | None, match: str, owner: Owner | None, limit: int,
                 received: bool = False) -> None:
        self.received = received
        self.speaker = speaker
        self.peers = peers
        self.families = families
        self.prefix = prefix
        self.match = match
        self.owner = owner
        self.limit = limit

    def _keys(self, peer: PeerView, fam: Family, table: Mapping[bytes, Attributes | None],
              owned: Owned | None) -> tuple[list[bytes], int | None]:
        """(candidate keys, exact count if known without looking at every key)."""
        rib = peer.rib_in if self.received else peer.rib_out
        paths = fam in rib.path_families
        if owned is not None:
            keys = owned.get(peer.address, {}).get(fam, set())
            if self.prefix is not None and self.match == "exact":
                return keys_of_prefix(dict.fromkeys(keys), fam, self.prefix[1], paths), None
            return list(keys), None
        if self.prefix is not None and self.match == "exact":
            # Every path of the prefix (ADD-PATH keys carry a path id before the NLRI).
            return keys_of_prefix(table, fam, self.prefix[1], paths), None
        if self.prefix is None and self.limit:
            return list(itertools.islice(table, self.limit)), len(table)
        return list(table), None

    async def chunks(self) -> AsyncIterator[str]:
        returned = count = 0
        first = True
        owned = self.speaker.owned(self.owner) if self.owner is not None else None
        contains = _container(self.prefix[1], self.prefix[0]) \
            if self.prefix is not None and self.match == "longer" else None
        yield '{"routes":['
        work = 0
        parts: list[str] = []
        for peer in self.peers:
            rib = peer.rib_in.routes if self.received else peer.rib_out.routes
            for fam in sorted(rib, key=lambda f: (f.afi, f.safi)):
                if self.families is not None and fam not in self.families:
                    continue
                keys, known = self._keys(peer, fam, rib[fam], owned)
                if known is not None:
                    count += known - len(keys)  # the rest, counted without reading them
                for nlri in keys:
                    # Yield to the event loop regularly: for every STREAM_CHUNK routes written, and
                    # as often while only scanning (a `longer` match over a large table).
                    work += 1
                    if work >= STREAM_CHUNK * 10:
                        work = 0
                        if parts:
                            yield "".join(parts)
                            parts.clear()
                        await asyncio.sleep(0)
                    table = rib.get(fam)
                    if table is None or nlri not in table:
                        continue
                    attrs = table[nlri]
                    if (attrs is None and not self.received) or (contains is not None
                                                                 and not contains(nlri)):
                        continue
                    count += 1
                    if self.limit and returned >= self.limit:
                        continue
                    returned += 1
                    if self.received:
                        entry = received_entry(peer, fam, nlri, attrs)
                    else:
                        assert attrs is not None  # an adj-rib-out always has them (skipped above)
                        entry = route_entry(peer, fam, nlri, attrs)
                    parts.append(("" if first else ",") + json.dumps(entry, separators=(",", ":")))
                    first = False
                    work += 9  # serialising a route costs about ten times scanning one
        if parts:
            yield "".join(parts)
        tail = {"count": count, "returned": returned, "truncated": returned < count,
                "limit": self.limit or None}
        yield "]," + json.dumps(tail, separators=(",", ":"))[1:]


def _container(prefix: bytes, fam: Family) -> Callable[[bytes], bool]:
    """A test: is an NLRI (unicast wire form) inside this prefix (or equal to it)?"""
    plen = prefix[0]
    size = 4 if fam.afi == 1 else 16
    bits = size * 8
    want = int.from_bytes(prefix[1:].ljust(size, b"\0"), "big")
    mask = ((1 << plen) - 1) << (bits - plen) if plen else 0

    def contains(nlri: bytes) -> bool:
        if nlri and nlri[0] == PATH_MARK:
            nlri = nlri[5:]  # a route with a path id: the prefix after it
        if not nlri or nlri[0] < plen:
            return False
        return int.from_bytes(nlri[1:].ljust(size, b"\0")[:size], "big") & mask == want

    return contains
