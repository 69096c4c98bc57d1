"""What the control socket shows of peers and routes: a neighbor's `peer_info`, a route's JSON
entry (`route_entry`, `received_entry`) and its ExaBGP text (`route_text`), with the renderers of
communities and AS paths they use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..flows import received_flow_fields
from ..wire.nlri import PATH_MARK, Family, family_name, nlri_to_prefix, path_id_text, split_key

if TYPE_CHECKING:
    from ..wire.attributes import Attributes


_ORIGIN_NAMES = {0: "igp", 1: "egp", 2: "incomplete"}
_WELL_KNOWN = {0xFFFF0000: "graceful-shutdown", 0xFFFF029A: "blackhole", 0xFFFFFF01: "no-export",
               0xFFFFFF02: "no-advertise", 0xFFFFFF03: "no-export-subconfed", 0xFFFFFF04: "nopeer"}
_EXT_KINDS = {0x02: "target", 0x03: "origin", 0x08: "redirect"}


def format_community(value: int) -> str:
    return _WELL_KNOWN.get(value) or f"{value >> 16}:{value & 0xFFFF}"


def format_extended_community(value: int) -> str:
    """The config syntax back (target:65000:100, origin:192.0.2.1:5, ...), or 0x and 16 hex digits."""
    high, sub = value >> 56, (value >> 48) & 0xFF
    kind = _EXT_KINDS.get(sub)
    redirect = kind == "redirect" and high in (0x80, 0x81, 0x82)
    if kind is not None and (high in (0x00, 0x01, 0x02) or redirect):
        form = high & 0x0F
        if form == 0x00:
            return f"{kind}:{(value >> 32) & 0xFFFF}:{value & 0xFFFFFFFF}"
        if form == 0x01:
            ip = (value >> 16) & 0xFFFFFFFF
            return f"{kind}:{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}:{value & 0xFFFF}"
        if form == 0x02:
            return f"{kind}:{(value >> 16) & 0xFFFFFFFF}L:{value & 0xFFFF}"
    return f"0x{value:016x}"


def format_as_path(path: Sequence[tuple[int, Sequence[int]]]) -> str:
    parts: list[str] = []
    for seg_type, asns in path:
        if seg_type == 1:  # AS_SET
            parts.append("( " + " ".join(map(str, asns)) + " )")
        else:
            parts.extend(map(str, asns))
    return "[ " + " ".join(parts) + " ]"


def route_text(prefix: str, attrs: Attributes) -> str:
    """The route in ExaBGP's syntax: what `announce route ...` and the config take."""
    words = [prefix]
    if attrs.next_hop is not None:
        words += ["next-hop", attrs.next_hop]
    if attrs.origin:
        words += ["origin", _ORIGIN_NAMES.get(attrs.origin, str(attrs.origin))]
    if attrs.as_path:
        words += ["as-path", format_as_path(attrs.as_path)]
    if attrs.med is not None:
        words += ["med", str(attrs.med)]
    if attrs.local_pref is not None:
        words += ["local-preference", str(attrs.local_pref)]
    if attrs.communities:
        words += ["community", "[ " + " ".join(map(format_community, attrs.communities)) + " ]"]
    if attrs.large_communities:
        words += ["large-community", "[ " + " ".join(":".join(map(str, c)) for c in attrs.large_communities)
                  + " ]"]
    if attrs.ext_communities:
        words += ["extended-community",
                  "[ " + " ".join(map(format_extended_community, attrs.ext_communities)) + " ]"]
    if attrs.atomic_aggregate:
        words.append("atomic-aggregate")
    if attrs.aggregator is not None:
        words += ["aggregator", f"( {attrs.aggregator[0]}:{attrs.aggregator[1]} )"]
    return " ".join(words)


def route_entry(peer: Any, fam: Family, nlri: bytes, attrs: Attributes) -> dict[str, Any]:
    try:
        prefix = nlri_to_prefix(fam, nlri)
    except Exception:
        prefix = nlri.hex()
    entry: dict[str, Any] = {"neighbor": peer.address, "family": family_name(fam), "prefix": prefix,
                             "next_hop": attrs.next_hop,
                             "origin": _ORIGIN_NAMES.get(attrs.origin, attrs.origin)}
    _path_fields(entry, nlri)
    if attrs.as_path:
        entry["as_path"] = [list(asns) if seg == 1 else a for seg, asns in attrs.as_path
                            for a in ((asns,) if seg == 1 else asns)]
    if attrs.med is not None:
        entry["med"] = attrs.med
    if attrs.local_pref is not None:
        entry["local_preference"] = attrs.local_pref
    if attrs.communities:
        entry["communities"] = [format_community(c) for c in attrs.communities]
    if attrs.large_communities:
        entry["large_communities"] = [":".join(map(str, c)) for c in attrs.large_communities]
    if attrs.ext_communities:
        entry["extended_communities"] = [format_extended_community(c) for c in attrs.ext_communities]
    if attrs.atomic_aggregate:
        entry["atomic_aggregate"] = True
    if attrs.aggregator is not None:
        entry["aggregator"] = f"{attrs.aggregator[0]}:{attrs.aggregator[1]}"
    owner = _owner_of(peer, fam, nlri)
    if owner is not None:
        entry["owner"] = owner
    entry["route"] = route_text(prefix, attrs)
    if fam.safi == 133:
        entry.update(received_flow_fields(fam, nlri, attrs))
        entry["route"] = entry["flow"].get("text", entry["route"])
    return entry


def received_entry(peer: Any, fam: Family, nlri: bytes, attrs: Attributes | None) -> dict[str, Any]:
    """A route of the adj-rib-in. Without `adj-rib-in true` only the NLRI is kept (attributes: null)."""
    if attrs is not None:
        entry = route_entry(peer, fam, nlri, attrs)
        entry.pop("owner", None)
    else:
        try:
            prefix = nlri_to_prefix(fam, nlri)
        except Exception:
            prefix = nlri.hex()
        entry = {"neighbor": peer.address, "family": family_name(fam), "prefix": prefix,
                 "attributes": None}
        _path_fields(entry, nlri)
    if fam.safi == 133:
        entry.update(received_flow_fields(fam, nlri, attrs))
        entry["route"] = entry["flow"].get("text", entry.get("route", ""))
    entry["received"] = True
    return entry


def _path_fields(entry: dict[str, Any], key: bytes) -> None:
    """A route with an ADD-PATH path id: "prefix" is the prefix alone, "path_id" the id (number),
    "path_information" as ExaBGP writes it (0.0.0.1)."""
    if key and key[0] == PATH_MARK and not entry["family"].endswith("flow"):
        path_id = split_key(key)[0]
        assert path_id is not None
        entry["prefix"] = entry["prefix"].partition(" ")[0]
        entry["path_id"] = path_id
        entry["path_information"] = path_id_text(path_id)


def _owner_of(peer: Any, fam: Family, nlri: bytes) -> str | None:
    origins = getattr(peer, "origins", None)
    if origins:
        owner = origins.get(fam, {}).get(nlri)
        if owner is not None:
            return str(owner)
    static = getattr(peer, "static", None)
    if static and nlri in static.get(fam, ()):
        return "config"
    return None


# -- neighbors ------------------------------------------------------------------------------------


def peer_info(peer: Any, now: float) -> dict[str, Any]:
    n = peer.neighbor
    neg = getattr(peer, "negotiated", None)
    stats: dict[str, int] = dict(getattr(peer, "stats", {}))
    state = str(peer.state)
    since = getattr(peer, "established_since", None)
    established = since is not None and state == "Established"
    drain = getattr(peer, "drain_mode", None)
    rib_out = {family_name(f): peer.rib_out.count(f) for f in _families(peer)}
    rib_in_counts = peer.rib_in.counts() if hasattr(peer.rib_in, "counts") else {}
    received = {family_name(f): rib_in_counts.get(family_name(f), 0) for f in _families(peer)}
    for name, value in rib_in_counts.items():
        received.setdefault(name, value)
    sent = {k: (v if established and drain != "withdraw" else 0) for k, v in rib_out.items()}
    notes = getattr(peer, "notifications", {}) or {}
    return {
        "address": peer.address,
        "peer_address": n.peer_address,
        "local_address": getattr(peer, "local_address", None) or n.local_address,
        "local_as": n.local_as,
        "peer_as": n.peer_as,
        "router_id": n.router_id,
        "peer_router_id": getattr(neg, "peer_router_id", None),
        "description": getattr(n, "description", ""),
        "passive": bool(getattr(n, "passive", False)),
        "state": state,
        "established_since": since if established else None,
        "uptime": round(now - since, 3) if established and since is not None else None,
        "hold_time": getattr(neg, "hold_time", None) if neg is not None else n.hold_time,
        "keepalive": getattr(neg, "keepalive", None) if neg is not None else n.hold_time // 3,
        "configured_hold_time": n.hold_time,
        "families": {"configured": [family_name(f) for f in n.families],
                     "negotiated": [family_name(f) for f in neg.families] if neg is not None else []},
        "last_error": getattr(peer, "last_error", "") or None,
        "last_notification": getattr(peer, "last_notification", None),
        "messages": {"received": stats.get("messages_in", 0), "sent": stats.get("messages_out", 0)},
        "updates": {"received": stats.get("updates_in", 0), "sent": stats.get("updates_out", 0)},
        "notifications": {
            "received": stats.get("notifications_in", 0), "sent": stats.get("notifications_out", 0),
            "by_code": [{"direction": d, "code": c, "subcode": s, "count": k}
                        for (d, c, s), k in sorted(notes.items())]},
        "flaps": stats.get("flaps", 0),
        "established_count": stats.get("established_count", 0),
        "routes_announced": stats.get("routes_announced", 0),
        "routes_withdrawn": stats.get("routes_withdrawn", 0),
        "prefixes": {"sent": sent, "received": received},
        "adj_rib_out": rib_out,
        "maintenance": drain,
        "stats": stats,
    }


def _families(peer: Any) -> list[Family]:
    seen = list(peer.neighbor.families)
    for fam in peer.rib_out.routes:
        if fam not in seen:
            seen.append(fam)
    return seen
