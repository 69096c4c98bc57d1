"""Routing information bases of one neighbor: what we want the peer to hold (adj-rib-out), what has
changed since we last told it, and what it sent us (adj-rib-in).

Routes are stored as `dict[nlri_bytes, Attributes]` per family: the key is the NLRI wire encoding and
the value an interned attribute set shared by every route that carries it. No object per route.
A route with an ADD-PATH path id has the marked key of wire.nlri.path_key, so one prefix can be held
once per path id; keys become wire NLRI (with or without the path id, as negotiated) only when
UPDATEs are built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

from .logutil import log_event
from .owner import CONFIG, Owner
from .wire.attributes import Attributes, EncodeContext, RouteTooLarge, encode_attributes
from .wire.constants import SAFI
from .wire.messages import announce_room, end_of_rib, next_hop_in_body, pack_announce, pack_withdraw
from .wire.nlri import PATH_MARK, Family, family_name, nlri_to_prefix, split_key, wire_items

log = logging.getLogger(__name__)

RouteTable = dict[Family, dict[bytes, Attributes]]


class AdjRibOut:
    """Desired routes toward one peer, plus the set of keys changed since the last flush.

    `full` families are re-sent whole (after establishment or a ROUTE-REFRESH) without building a
    set of every key.
    """

    def __init__(self) -> None:
        self.routes: RouteTable = {}
        self._dirty: dict[Family, dict[bytes, None]] = {}
        self._full: set[Family] = set()
        # Unicast families that have held a route with a path id: only their lookups by prefix
        # need to look past the plain key (never cleared: a hint, not a count).
        self.path_families: set[Family] = set()
        # Routes put into UPDATEs so far (counters for metrics).
        self.sent_announced = 0
        self.sent_withdrawn = 0

    def __len__(self) -> int:
        return sum(len(t) for t in self.routes.values())

    def count(self, fam: Family) -> int:
        return len(self.routes.get(fam, ()))

    def put(self, fam: Family, nlri: bytes, attrs: Attributes) -> bool:
        table = self.routes.setdefault(fam, {})
        if table.get(nlri) is attrs:
            return False
        if nlri[0] == PATH_MARK and fam.safi == SAFI.UNICAST:
            self.path_families.add(fam)
        table[nlri] = attrs
        if fam not in self._full:
            self._dirty.setdefault(fam, {})[nlri] = None
        return True

    def remove(self, fam: Family, nlri: bytes) -> bool:
        table = self.routes.get(fam)
        if table is None or table.pop(nlri, None) is None:
            return False
        # Recorded even while the family is marked for a full re-send: that re-send announces only
        # what is in the table, and the peer may still hold this route (ROUTE-REFRESH).
        self._dirty.setdefault(fam, {})[nlri] = None
        return True

    def replace(self, fam: Family, desired: dict[bytes, Attributes]) -> tuple[int, int]:
        """Make the family's table equal to `desired`, recording only the differences.
        Returns (announced or changed, withdrawn)."""
        table = self.routes.get(fam, {})
        changed = withdrawn = 0
        for nlri in [k for k in table if k not in desired]:
            self.remove(fam, nlri)
            withdrawn += 1
        for nlri, attrs in desired.items():
            if self.put(fam, nlri, attrs):
                changed += 1
        return changed, withdrawn

    def mark_all(self, families: Iterable[Family], *, fresh: bool = False) -> None:
        """Everything must be sent again. After a ROUTE-REFRESH the peer keeps what it holds, so
        withdrawals not yet sent are kept and sent first. `fresh=True` says the peer holds nothing
        (a new session): pending changes are dropped, only the table is sent."""
        for fam in families:
            self._full.add(fam)
            dirty = self._dirty.pop(fam, None)
            if dirty and not fresh:
                table = self.routes.get(fam, {})
                gone = {k: None for k in dirty if k not in table}
                if gone:
                    self._dirty[fam] = gone

    @property
    def pending(self) -> bool:
        return bool(self._full) or any(self._dirty.values())

    def flush(self, ctx: EncodeContext, families: Iterable[Family], *,
              end_of_rib_for: Iterable[Family] = (),
              transform: Callable[[Attributes], Attributes] | None = None) -> Iterator[bytes]:
        """UPDATE messages for everything pending in `families`, attribute sets grouped so that
        routes sharing attributes share messages. Withdrawals go first, then announcements.
        `transform` rewrites attribute sets on the way out (maintenance metric)."""
        eor = set(end_of_rib_for)
        for fam in families:
            table = self.routes.get(fam, {})
            if fam in self._full:
                self._full.discard(fam)
                dirty = self._dirty.pop(fam, None)
                if dirty:
                    gone = [k for k in dirty if k not in table]
                    if gone:
                        gone, _announce_again = self._other_paths(fam, gone, table, ctx)
                        yield from self._pack_withdraw(fam, gone, ctx)
                yield from self._pack_announce_grouped(fam, table.items(), ctx, transform)
            else:
                dirty = self._dirty.pop(fam, None)
                if dirty:
                    gone = [k for k in dirty if k not in table]
                    again: list[bytes] = []
                    if gone:
                        gone, again = self._other_paths(fam, gone, table, ctx)
                        yield from self._pack_withdraw(fam, gone, ctx)
                    changed: Iterable[bytes] = (k for k in dirty if k in table)
                    if again:
                        changed = dict.fromkeys([*changed, *again])
                    yield from self._pack_announce_grouped(
                        fam, ((k, table[k]) for k in changed), ctx, transform)
            if fam in eor:
                yield end_of_rib(fam)

    def withdrawals_of_all(self, ctx: EncodeContext, families: Iterable[Family]) -> Iterator[bytes]:
        """Withdrawals for every route in the table (draining), leaving the table as it is. Changes
        pending until now are superseded: the peer will hold nothing."""
        for fam in families:
            self._dirty.pop(fam, None)
            self._full.discard(fam)
            table = self.routes.get(fam)
            if table:
                yield from self._pack_withdraw(fam, list(table), ctx)

    @staticmethod
    def _other_paths(fam: Family, gone: list[bytes], table: dict[bytes, Attributes],
                     ctx: EncodeContext) -> tuple[list[bytes], list[bytes]]:
        """Withdrawals to send, and routes to announce again instead. Without ADD-PATH send on the
        session, the paths of one prefix share its NLRI on the wire: withdrawing one path while
        another is still in the table would take the prefix from the peer, so the remaining path
        is announced again instead (it replaces the withdrawn one at the peer)."""
        if fam in ctx.addpath or fam.safi != SAFI.UNICAST or not any(k[0] == PATH_MARK for k in gone):
            return gone, []
        remaining: dict[bytes, bytes] = {}
        for key in table:
            remaining.setdefault(split_key(key)[1], key)
        withdraw: list[bytes] = []
        again: list[bytes] = []
        for key in gone:
            other = remaining.get(split_key(key)[1])
            if other is None:
                withdraw.append(key)
            else:
                again.append(other)
        return withdraw, again

    @staticmethod
    def _wire(fam: Family, items: list[bytes], ctx: EncodeContext) -> list[bytes]:
        """Table keys as wire NLRI: path ids added or stripped (wire.nlri.wire_items). A table
        without path ids on a session without ADD-PATH (the usual case) is sent as it is."""
        if fam.safi != SAFI.UNICAST:
            return items
        if fam in ctx.addpath:
            return wire_items(items, True)
        if any(k[0] == PATH_MARK for k in items):
            # Paths of one prefix are one NLRI here: send it once.
            return list(dict.fromkeys(wire_items(items, False)))
        return items

    def _pack_withdraw(self, fam: Family, items: list[bytes], ctx: EncodeContext) -> Iterator[bytes]:
        self.sent_withdrawn += len(items)
        yield from pack_withdraw(fam, self._wire(fam, items, ctx), ctx)

    def _pack_announce_grouped(self, fam: Family, routes: Iterable[tuple[bytes, Attributes]],
                               ctx: EncodeContext,
                               transform: Callable[[Attributes], Attributes] | None = None,
                               ) -> Iterator[bytes]:
        groups: dict[Attributes, list[bytes]] = {}
        for nlri, attrs in routes:
            group = groups.get(attrs)
            if group is None:
                groups[attrs] = [nlri]
            else:
                group.append(nlri)
        if transform is not None:
            merged: dict[Attributes, list[bytes]] = {}
            for attrs, items in groups.items():
                merged.setdefault(transform(attrs), []).extend(items)
            groups = merged
        for attrs, items in groups.items():
            try:
                head = encode_attributes(attrs, ctx, ipv4_next_hop=next_hop_in_body(fam, attrs, ctx))
                room = announce_room(fam, attrs, ctx, head)
            except RouteTooLarge as exc:
                yield from self._drop(fam, items, ctx, str(exc))
                continue
            except ValueError as exc:
                # next-hop self without a local address of that family: kept for a later session.
                log.error("cannot announce %d %s route(s) with %r: %s", len(items), family_name(fam),
                          attrs, exc, extra=log_event("route_dropped"))
                continue
            except Exception as exc:
                # A bug in encoding one attribute set must not stop the peer's send task (and so
                # every later UPDATE): those routes go, the others are sent.
                log.exception("cannot encode the attributes of %d %s route(s)", len(items),
                              family_name(fam))
                yield from self._drop(fam, items, ctx, f"encoding failed: {exc!r}")
                continue
            if items and room < max(map(len, items)):
                # Only FlowSpec NLRI vary enough in length for some, not all, of a group not to fit.
                too_long = [item for item in items if len(item) > room]
                items = [item for item in items if len(item) <= room]
                reason = f"the UPDATE would be more than the {ctx.max_size}-byte limit of this session"
                yield from self._drop(fam, too_long, ctx, reason)
                if not items:
                    continue
            self.sent_announced += len(items)
            yield from pack_announce(fam, attrs, self._wire(fam, items, ctx), ctx, head)

    def _drop(self, fam: Family, items: list[bytes], ctx: EncodeContext, reason: str) -> Iterator[bytes]:
        """Routes that cannot be sent on this session: forgotten and withdrawn (the peer may hold an
        earlier version of them), with one log line for the lot."""
        if not items:
            return
        table = self.routes.get(fam, {})
        for nlri in items:
            table.pop(nlri, None)
        more = f" and {len(items) - 1} more" if len(items) > 1 else ""
        log.error("%s route %s%s dropped: %s", family_name(fam), _shown(fam, items[0]), more, reason,
                  extra=log_event("route_dropped"))
        yield from self._pack_withdraw(fam, items, ctx)


class OwnedRibOut(AdjRibOut):
    """The adj-rib-out of a neighbor with who owns each route: the config's routes (`static`, the
    table a reload makes equal to the file) and the runtime owners that asked to be tracked
    (`owners`: withdraw-on-exit, health checks, the control socket). A route announced untracked
    (an API program without withdraw-on-exit) has no entry at all: a million of them cost nothing
    here. The last announcement of a route wins its ownership."""

    def __init__(self) -> None:
        super().__init__()
        self.static: RouteTable = {}
        self.owners: dict[Family, dict[bytes, Owner]] = {}

    def owner_of(self, fam: Family, key: bytes) -> Owner | None:
        """The owner of one route; None when it is not tracked (or not in the table)."""
        owners = self.owners.get(fam)
        if owners:
            owner = owners.get(key)
            if owner is not None:
                return owner
        static = self.static.get(fam)
        if static and key in static:
            return CONFIG
        return None

    def owned_by(self, owner: Owner) -> dict[Family, set[bytes]]:
        """The keys of the routes `owner` owns, by family (families it owns nothing of left out)."""
        if owner is CONFIG:
            return {fam: set(table) for fam, table in self.static.items() if table}
        out: dict[Family, set[bytes]] = {}
        for fam, owners in self.owners.items():
            # Identity: owners are interned (fleetbgp.owner), and `is` keeps this a plain scan.
            keys = {nlri for nlri, who in owners.items() if who is owner}
            if keys:
                out[fam] = keys
        return out

    def put_owned(self, fam: Family, nlri: bytes, attrs: Attributes, owner: Owner,
                  track: bool = True) -> bool:
        """Put a route in the table on behalf of `owner`. `track=False` forgets any owner the
        route had (the route is then owned by nobody we can name, `runtime`)."""
        if owner is not CONFIG:
            static = self.static.get(fam)
            if static:
                static.pop(nlri, None)
        owners = self.owners.get(fam)
        if track:
            if owners is None:
                owners = self.owners[fam] = {}
            owners[nlri] = owner
        elif owners:
            owners.pop(nlri, None)
        # AdjRibOut.put, inlined: this is one call per route line of an API program.
        table = self.routes.setdefault(fam, {})
        if table.get(nlri) is attrs:
            return False
        if nlri[0] == PATH_MARK and fam.safi == SAFI.UNICAST:
            self.path_families.add(fam)
        table[nlri] = attrs
        if fam not in self._full:
            self._dirty.setdefault(fam, {})[nlri] = None
        return True

    def remove(self, fam: Family, nlri: bytes) -> bool:
        """Withdraw a route, whoever owns it: it no longer has an owner."""
        static = self.static.get(fam)
        if static:
            static.pop(nlri, None)
        owners = self.owners.get(fam)
        if owners:
            owners.pop(nlri, None)
        # AdjRibOut.remove, inlined (one call per route, as put_owned).
        table = self.routes.get(fam)
        if table is None or table.pop(nlri, None) is None:
            return False
        self._dirty.setdefault(fam, {})[nlri] = None
        return True

    def remove_owned_by(self, owner: Owner) -> int:
        count = 0
        for fam, keys in self.owned_by(owner).items():
            for nlri in keys:
                if self.remove(fam, nlri):
                    count += 1
        return count

    def remove_all(self) -> int:
        """Every route withdrawn, whoever announced it (ExaBGP's `clear adj-rib out`)."""
        count = 0
        for fam, table in list(self.routes.items()):
            for nlri in list(table):
                if self.remove(fam, nlri):
                    count += 1
        return count

    def set_static(self, routes: RouteTable) -> tuple[int, int]:
        """Make the config's routes equal `routes`; only the differences are recorded. A route the
        config announces again is the config's from now on; runtime routes stay as they are.
        Returns (announced or changed, withdrawn)."""
        changed = withdrawn = 0
        for fam in set(self.static) | set(routes):
            old = self.static.get(fam, {})
            new = routes.get(fam, {})
            for nlri in old:
                if nlri not in new and AdjRibOut.remove(self, fam, nlri):
                    withdrawn += 1
            owners = self.owners.get(fam)
            for nlri, attrs in new.items():
                if owners:
                    owners.pop(nlri, None)  # the config announces it again: it owns it now
                if self.put(fam, nlri, attrs):
                    changed += 1
        self.static = {fam: dict(table) for fam, table in routes.items()}
        return changed, withdrawn

    def runtime_routes(self) -> Iterator[tuple[Family, bytes, Attributes, Owner | None]]:
        """The routes the config does not own, with their tracked owner (None: untracked)."""
        for fam, table in self.routes.items():
            static = self.static.get(fam, {})
            owners = self.owners.get(fam, {})
            for nlri, attrs in table.items():
                if nlri not in static:
                    yield fam, nlri, attrs, owners.get(nlri)


def _shown(fam: Family, nlri: bytes, limit: int = 200) -> str:
    """The route for a log line, cut short: a FlowSpec NLRI may be 4095 bytes."""
    try:
        text = nlri_to_prefix(fam, nlri)
    except Exception:  # an NLRI the formatter cannot read: still say which one
        text = f"0x{nlri.hex()}"
    return text if len(text) <= limit else text[:limit] + "..."


class AdjRibIn:
    """What the peer sent us. Always counted; the attributes are kept only when asked
    (`adj-rib-in true`), since a full table would otherwise cost memory nobody reads."""

    def __init__(self, keep_attributes: bool) -> None:
        self.keep = keep_attributes
        self.routes: dict[Family, dict[bytes, Attributes | None]] = {}
        self.eor: set[Family] = set()
        # Families whose routes came with path ids (ADD-PATH receive): see AdjRibOut.path_families.
        self.path_families: set[Family] = set()

    def count(self, fam: Family) -> int:
        return len(self.routes.get(fam, ()))

    def counts(self) -> dict[str, int]:
        return {family_name(f): len(t) for f, t in self.routes.items()}

    def put(self, fam: Family, attrs: Attributes, items: list[bytes]) -> None:
        table = self.routes.setdefault(fam, {})
        value = attrs if self.keep else None
        if items and items[0][0] == PATH_MARK and fam.safi == SAFI.UNICAST:
            self.path_families.add(fam)  # every item of an ADD-PATH family has a path id
        for nlri in items:
            table[nlri] = value

    def remove(self, fam: Family, items: list[bytes]) -> None:
        table = self.routes.get(fam)
        if table:
            for nlri in items:
                table.pop(nlri, None)

    def clear(self) -> None:
        self.routes.clear()
        self.eor.clear()
        self.path_families.clear()


def keys_of_prefix(table: Mapping[bytes, object], fam: Family, nlri: bytes, paths: bool) -> list[bytes]:
    """The keys of `table` for one prefix: the plain NLRI, and when the family holds paths
    (`paths`), every path of it (a scan: path ids are not indexed by prefix)."""
    if not paths:
        return [nlri] if nlri in table else []
    return [key for key in table if key == nlri or (key[0] == PATH_MARK and key[5:] == nlri)]
