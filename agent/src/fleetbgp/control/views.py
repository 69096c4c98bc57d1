"""What the control socket shows of peers and routes: a neighbor's `peer_info` and a route's JSON
entry (`route_entry`, `received_entry`). The text of routes, communities and AS paths comes from
grammar/, the one renderer of each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..flows import received_flow_fields
from ..grammar.communities import community_text, extended_community_text, large_community_text
from ..grammar.route import origin_text, route_text
from ..wire.nlri import PATH_MARK, Family, family_name, nlri_to_prefix, path_id_text, split_key

if TYPE_CHECKING:
    from ..ports import PeerView
    from ..wire.attributes import Attributes


def route_entry(peer: PeerView, fam: Family, nlri: bytes, attrs: Attributes) -> dict[str, Any]:
    try:
        prefix = nlri_to_prefix(fam, nlri)
    except Exception:
        prefix = nlri.hex()
    entry: dict[str, Any] = {"neighbor": peer.address, "family": family_name(fam), "prefix": prefix,
                             "next_hop": attrs.next_hop,
                             "origin": origin_text(attrs.origin) if attrs.origin < 3 else attrs.origin}
    _path_fields(entry, nlri)
    if attrs.as_path:
        entry["as_path"] = [list(asns) if seg == 1 else a for seg, asns in attrs.as_path
                            for a in ((asns,) if seg == 1 else asns)]
    if attrs.med is not None:
        entry["med"] = attrs.med
    if attrs.local_pref is not None:
        entry["local_preference"] = attrs.local_pref
    if attrs.communities:
        entry["communities"] = [community_text(c) for c in attrs.communities]
    if attrs.large_communities:
        entry["large_communities"] = [large_community_text(c) for c in attrs.large_communities]
    if attrs.ext_communities:
        entry["extended_communities"] = [extended_community_text(c) for c in attrs.ext_communities]
    if attrs.atomic_aggregate:
        entry["atomic_aggregate"] = True
    if attrs.aggregator is not None:
        entry["aggregator"] = f"{attrs.aggregator[0]}:{attrs.aggregator[1]}"
    owner = peer.rib_out.owner_of(fam, nlri)
    if owner is not None:
        entry["owner"] = str(owner)
    entry["route"] = route_text(prefix, attrs)
    if fam.safi == 133:
        entry.update(received_flow_fields(fam, nlri, attrs))
        entry["route"] = entry["flow"].get("text", entry["route"])
    return entry


def received_entry(peer: PeerView, fam: Family, nlri: bytes, attrs: Attributes | None) -> dict[str, Any]:
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


# -- neighbors ------------------------------------------------------------------------------------


def peer_info(peer: PeerView, now: float) -> dict[str, Any]:
    n = peer.neighbor
    neg = peer.negotiated
    stats = dict(peer.stats)
    state = str(peer.state)
    since = peer.established_since
    established = since is not None and state == "Established"
    drain = peer.drain_mode
    rib_out = {family_name(f): peer.rib_out.count(f) for f in _families(peer)}
    rib_in_counts = peer.rib_in.counts()
    received = {family_name(f): rib_in_counts.get(family_name(f), 0) for f in _families(peer)}
    for name, value in rib_in_counts.items():
        received.setdefault(name, value)
    sent = {k: (v if established and drain != "withdraw" else 0) for k, v in rib_out.items()}
    notes = peer.notifications
    return {
        "address": peer.address,
        "peer_address": n.peer_address,
        "local_address": peer.local_address or n.local_address,
        "local_as": n.local_as,
        "peer_as": n.peer_as,
        "router_id": n.router_id,
        "peer_router_id": neg.peer_router_id if neg is not None else None,
        "description": n.description,
        "passive": n.passive,
        "state": state,
        "established_since": since if established else None,
        "uptime": round(now - since, 3) if established and since is not None else None,
        "hold_time": neg.hold_time if neg is not None else n.hold_time,
        "keepalive": neg.keepalive if neg is not None else n.hold_time // 3,
        "configured_hold_time": n.hold_time,
        "families": {"configured": [family_name(f) for f in n.families],
                     "negotiated": [family_name(f) for f in neg.families] if neg is not None else []},
        # RFC 4724 / 8538 on the session up now: both offered graceful restart, both set the N bit
        "graceful_restart": {
            "configured": n.capabilities.graceful_restart is not None,
            "restart_time": n.capabilities.graceful_restart,
            "negotiated": neg is not None and neg.graceful_restart is not None,
            "notification": neg is not None and neg.gr_notification,
            "peer_restart_time": neg.graceful_restart if neg is not None else None},
        "last_error": peer.last_error or None,
        "last_notification": peer.last_notification,
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
        # After a drain: the withdraws (or the MED re-announcements) have reached the peer's TCP.
        "send_queue_empty": peer.send_queue_empty,
        "stats": stats,
        # BFD (docs/agent/bfd.md): null without `bfd` in the neighbor's config
        "bfd": bfd.as_json() if (bfd := peer.bfd) is not None else None,
    }


def _families(peer: PeerView) -> list[Family]:
    seen = list(peer.neighbor.families)
    for fam in peer.rib_out.routes:
        if fam not in seen:
            seen.append(fam)
    return seen
