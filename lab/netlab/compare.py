"""What a receiver should hold for a route we announced, and a readable diff against what it holds.

Every peer driver (Bird.rib, GoBgp.rib, ExaBgp.rib) returns routes in one common shape:
``{"prefix", "next_hop", "origin", "as_path", "med", "local_pref", "communities",
"large_communities", ...}``; ``expected()`` builds the same shape from an ``exaconf.Route``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .exaconf import Route

COMPARED = ("next_hop", "origin", "as_path", "med", "local_pref", "communities", "large_communities")


def expected(route: Route, local_as: int, ebgp: bool, next_hop: str, prepend_on_ebgp: bool = True,
             default_local_pref: int | None = None) -> dict:
    """The route as the receiver should see it.

    eBGP: our AS is prepended to the configured AS_PATH (``prepend_on_ebgp``; ExaBGP instead sends
    a configured ``as-path`` verbatim and only an empty one becomes ``[local_as]``); LOCAL_PREF is
    not sent, so it is the receiver's default (``default_local_pref``; None: not compared).
    iBGP: AS_PATH as configured, LOCAL_PREF as configured (else ``default_local_pref``).
    """
    if ebgp:
        if prepend_on_ebgp or not route.as_path:
            as_path = [local_as, *route.as_path]
        else:
            as_path = list(route.as_path)
        local_pref = default_local_pref
    else:
        as_path = list(route.as_path)
        local_pref = route.local_pref if route.local_pref is not None else default_local_pref
    return {
        "prefix": route.prefix,
        "next_hop": next_hop if route.next_hop == "self" else route.next_hop,
        "origin": route.origin or "igp",
        "as_path": as_path,
        "med": route.med,
        "local_pref": local_pref,
        "communities": sorted(tuple(c) for c in route.communities),
        "large_communities": sorted(tuple(c) for c in route.large_communities),
    }


def diff(want: dict[str, dict], got: dict[str, dict], fields: Iterable[str] = COMPARED,
         skip_none: Iterable[str] = ("local_pref",)) -> list[str]:
    """Human-readable differences between expected and received routes ({prefix: route})."""
    problems: list[str] = []
    for p in sorted(set(want) - set(got)):
        problems.append(f"{p}: missing at the receiver")
    for p in sorted(set(got) - set(want)):
        problems.append(f"{p}: unexpected at the receiver ({got[p]})")
    skip_none = set(skip_none)
    for p in sorted(set(want) & set(got)):
        for f in fields:
            w = want[p].get(f)
            g = got[p].get(f)
            if f in skip_none and w is None:
                continue
            if f in ("communities", "large_communities"):
                g = sorted(tuple(x) for x in (g or []))
            if f == "as_path":
                g = list(g or [])
            if w != g:
                problems.append(f"{p}: {f} expected {w!r}, received {g!r}")
    return problems
