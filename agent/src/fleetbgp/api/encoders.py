"""What API programs read on their stdin: ExaBGP 5's JSON messages or its text lines.

The field names, nesting and value spellings follow ExaBGP 5.0.15 (exabgp/reactor/api/response/
json.py and text.py, checked against its encoder by tests/agent/test_api_encoders.py), so a program
written for ExaBGP reads ours unchanged. Differences, on purpose (docs/agent/api.md lists them):

* JSON: an UPDATE that announces N routes becomes N messages, one route each. ExaBGP keys
  announcements by next hop, so a consumer that counts `len(update["announce"][family])` (the
  Prometheus exporter of the seed guide does) counts next hops, not routes; one route per message
  makes that count right and stays the same format. Withdrawals stay grouped in one message (a
  list, whose len() is the number of routes), sent before the announcements.
* JSON: a NOTIFICATION is under `neighbor.notification` (ExaBGP's place) and also under
  `neighbor.message.notification` (where the seed exporter looks for it).
* `counter` counts the messages each program was sent about each neighbor (ExaBGP shares one
  counter between programs), so a program can see it missed nothing.
* Extended communities are spelled correctly in the "string" field (ExaBGP 5.0.15 prints
  origin:5:1.2.3.4 for origin:1.2.3.4:5); the "value" field is the same.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleetbgp.events import EventKind, SessionState
from fleetbgp.grammar.communities import extended_community_text, flow_extended_community_text
from fleetbgp.grammar.flowspec import flow_json
from fleetbgp.grammar.route import exabgp_attributes_text, origin_text
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.flowspec import FlowSpecError, decode_nlri
from fleetbgp.wire.nlri import PATH_MARK, Family, family_name, nlri_to_prefix, path_id_text, split_key

if TYPE_CHECKING:
    from fleetbgp.events import PeerEvent, PeerRef
    from fleetbgp.wire.messages import Capabilities, Notification, Open, RouteRefresh, Update

EXABGP_JSON_VERSION = "5.0.0"  # what ExaBGP 5 writes in "exabgp"

ACK_DONE = "done"
ACK_ERROR = "error"
ACK_SHUTDOWN = "shutdown"

_dumps = json.dumps

_SEGMENT_NAMES = {1: "as-set", 2: "as-sequence", 3: "as-sequence", 4: "as-sequence"}  # as ExaBGP


# -- attribute renderings (shared by both encoders) -----------------------------------------------


def attributes_text(attrs: Attributes, flow: bool = False) -> str:
    """ExaBGP's text rendering of the attributes after `next-hop X` (leading space included)."""
    return exabgp_attributes_text(attrs, flow_extended_community_text if flow else None)


def attributes_json(attrs: Attributes, flow: bool = False) -> str:
    """The members of ExaBGP's "attribute" object (no braces), next hop excluded."""
    out = [f'"origin": "{origin_text(attrs.origin)}"']
    if attrs.as_path:
        segments = {str(i): {"element": _SEGMENT_NAMES.get(t, "as-sequence"), "value": list(asns)}
                    for i, (t, asns) in enumerate(attrs.as_path)}
        out.append(f'"as-path": {_dumps(segments)}')
    if attrs.med is not None:
        out.append(f'"med": {attrs.med}')
    if attrs.local_pref is not None:
        out.append(f'"local-preference": {attrs.local_pref}')
    if attrs.atomic_aggregate:
        out.append('"atomic-aggregate": true')
    if attrs.aggregator is not None:
        out.append(f'"aggregator": "{attrs.aggregator[0]}:{attrs.aggregator[1]}"')
    if attrs.communities:
        out.append('"community": ' + _dumps([[c >> 16, c & 0xFFFF] for c in sorted(attrs.communities)]))
    if attrs.ext_communities:
        out.append('"extended-community": ' + _dumps(
            [{"value": c, "string": flow_extended_community_text(c, json=True) if flow
              else extended_community_text(c, exabgp=True)} for c in sorted(attrs.ext_communities)]))
    if attrs.large_communities:
        out.append('"large-community": ' + _dumps([list(c) for c in sorted(attrs.large_communities)]))
    for flags, code, value in attrs.other:
        out.append(f'"attribute-0x{code:02X}-0x{flags:02X}": "0x{value.hex().upper()}"')
    return ", ".join(out)


_FLOWSPEC = 133


def _flow_json(fam: Family, item: bytes, next_hop: str | None = None) -> str:
    """A FlowSpec NLRI as ExaBGP 5's JSON encoder writes it (grammar/flowspec.py builds the object)."""
    try:
        return _dumps(flow_json(decode_nlri(fam[0], item), next_hop))
    except FlowSpecError as exc:
        return _dumps({"string": f"undecodable flow NLRI 0x{item.hex().upper()}: {exc}"})


def _nlri_json(fam: Family, item: bytes) -> str:
    """One unicast NLRI as ExaBGP writes it: {"nlri": P}, with "path-information" (dotted) when
    the route came with a path id (ADD-PATH receive; ExaBGP prints it for every such route)."""
    if item[0] == PATH_MARK:
        path_id, nlri = split_key(item)
        assert path_id is not None
        return (f'{{"nlri": "{nlri_to_prefix(fam, nlri)}", '
                f'"path-information": "{path_id_text(path_id)}"}}')
    return f'{{"nlri": "{nlri_to_prefix(fam, item)}"}}'


_ADD_PATH_MODES = {0: "disabled", 1: "receive", 2: "send", 3: "send/receive"}


def _add_path_mode(mode: int) -> str:
    return _ADD_PATH_MODES.get(mode, f"invalid ({mode})")  # as ExaBGP names a bad value


def _next_hop(attrs: Attributes) -> str:
    return attrs.next_hop if attrs.next_hop else "null"


# -- capabilities of an OPEN -----------------------------------------------------------------------


def _fam_slash(fam: Family) -> str:
    return family_name(fam).replace(" ", "/")


def _capabilities_json(caps: Capabilities) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if caps.families:
        out["1"] = {"name": "multiprotocol", "families": [_fam_slash(f) for f in caps.families]}
    if caps.route_refresh:
        out["2"] = {"name": "route-refresh", "variant": "RFC"}
    if caps.next_hops:
        # ExaBGP's form (capability/nexthop.py): "AFI/SAFI/NEXT-HOP-AFI" strings.
        out["5"] = {"name": "nexthop",
                    "conversion": [f"{_fam_slash(fam)}/{family_name((nh_afi, 1)).split()[0]}"
                                   for fam, nh_afi in caps.next_hops]}
    if caps.extended_message:
        out["6"] = {"name": "extended-message"}
    if caps.graceful_restart is not None:
        out["64"] = {"name": "graceful restart", "time": caps.graceful_restart,
                     "address-family-flags": {_fam_slash(f): (["forwarding"] if fwd else [])
                                              for f, fwd in caps.gr_families.items()},
                     "restart-flags": ["restart"] if caps.gr_restarting else []}
    if caps.asn4 is not None:
        out["65"] = {"name": "asn4", "asn4": caps.asn4}
    if caps.add_path:
        out["69"] = {"name": "addpath", **{_fam_slash(f): _add_path_mode(m)
                                           for f, m in caps.add_path.items()}}
    if caps.enhanced_route_refresh:
        out["70"] = {"name": "enhanced-route-refresh"}
    for code, value in caps.unknown:
        out[str(code)] = {"name": "unknown", "raw": "0x" + value.hex().upper()}
    return out


def _capabilities_text(caps: Capabilities) -> str:
    parts = []
    if caps.families:
        parts.append("multiprotocol(" + ",".join(family_name(f) for f in caps.families) + ")")
    if caps.next_hops:
        parts.append("nexthop(" + ",".join(f"{family_name(fam)} {family_name((nh_afi, 1)).split()[0]}"
                                           for fam, nh_afi in caps.next_hops) + ")")
    if caps.route_refresh:
        parts.append("route refresh")
    if caps.extended_message:
        parts.append("extended message")
    if caps.graceful_restart is not None:
        flags = 0x8 if caps.gr_restarting else 0
        fams = " ".join(f"{_fam_slash(f)}=0x{0x80 if fwd else 0:x}" for f, fwd in caps.gr_families.items())
        parts.append(f"graceful restart flags 0x{flags:x} time {caps.graceful_restart}"
                     + (f" {fams}" if fams else ""))
    if caps.asn4 is not None:
        parts.append(f"asn4({caps.asn4})")
    if caps.add_path:
        parts.append("addpath(" + ",".join(f"{_add_path_mode(m)} {family_name(f)}"
                                           for f, m in caps.add_path.items()) + ")")
    if caps.enhanced_route_refresh:
        parts.append("enhanced route refresh")
    for code, _value in caps.unknown:
        parts.append(f"unknown capability {code}")
    return ", ".join(parts)


def _notification_message(note: Notification) -> str:
    text = note.shutdown_message
    if text is not None:
        return f'Shutdown Communication: "{text}"'
    return note.data.decode("utf-8", "replace")


def _oneline(value: str) -> str:
    """Keep peer-supplied text on its line (ExaBGP's Text.oneline)."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() and c != "\x7f" else f"\\x{ord(c):02x}" for c in value)


# -- the encoders ------------------------------------------------------------------------------------


class JsonEncoder:
    """ExaBGP 5's JSON, one object per line. One instance per program: it keeps the counters."""

    name = "json"

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._ppid = os.getppid()

    def _head(self, kind: str, peer: PeerRef | None) -> str:
        counter = ""
        if peer is not None:
            value = self._counters.get(peer.address, 0) + 1
            self._counters[peer.address] = value
            counter = f'"counter": {value}, '
        return (f'{{"exabgp": "{EXABGP_JSON_VERSION}", "time": {time.time()}, "host": {_dumps(self._host)}, '
                f'"pid": {self._pid}, "ppid": {self._ppid}, {counter}"type": "{kind}"')

    @staticmethod
    def _neighbor(peer: PeerRef) -> str:
        rid_field = f', "router-id": "{peer.router_id}"' if peer.router_id else ""
        return (f'"neighbor": {{"address": {{"local": {_dumps(peer.local_address)}, '
                f'"peer": {_dumps(peer.peer_address)}}}, '
                f'"asn": {{"local": {peer.local_as}, "peer": {peer.peer_as}}}{rid_field}')

    def _message(self, kind: str, peer: PeerRef, direction: str | None, body: str) -> str:
        direction_field = f', "direction": "{direction}"' if direction else ""
        sep = ", " if body else ""
        return f"{self._head(kind, peer)}, {self._neighbor(peer)}{direction_field}{sep}{body}}}}}"

    def event(self, event: PeerEvent) -> list[str]:
        handler = _JSON_HANDLERS.get(event.kind)
        if handler is None:
            return []
        return handler(self, event)

    def _state(self, event: PeerEvent) -> list[str]:
        body = f'"state": "{event.state}"'
        if event.state is SessionState.DOWN:
            body += f', "reason": {_dumps(event.reason)}'
        return [self._message("state", event.peer, None, body)]

    def _update(self, event: PeerEvent) -> list[str]:
        upd = event.update
        if upd is None:
            return []
        peer = event.peer
        out = []
        if upd.eor is not None:
            afi, _sep, safi = family_name(upd.eor).partition(" ")
            body = f'"message": {{"eor": {{"afi": "{afi}", "safi": "{safi}"}}}}'
            return [self._message("update", peer, event.direction, body)]
        if upd.withdraw:
            parts = []
            for fam, items in upd.withdraw.items():
                if fam[1] == _FLOWSPEC:
                    nlris = ", ".join(_flow_json(fam, item) for item in items)
                    parts.append(f'"{family_name(fam)}": [{nlris}]')
                    continue
                nlris = ", ".join(_nlri_json(fam, item) for item in items)
                parts.append(f'"{family_name(fam)}": [{nlris}]')
            body = f'"message": {{"update": {{"withdraw": {{{", ".join(parts)}}}}}}}'
            out.append(self._message("update", peer, event.direction, body))
        for fam, (attrs, items) in upd.announce.items():
            attribute = f'"attribute": {{{attributes_json(attrs, flow=fam[1] == _FLOWSPEC)}}}, '
            if fam[1] == _FLOWSPEC:
                # ExaBGP's form: keyed by "no-nexthop" (or the redirect-to-IP address), one object
                # per rule with its components and a "string".
                head = (f'"message": {{"update": {{{attribute}"announce": '
                        f'{{"{family_name(fam)}": {{"{attrs.next_hop or "no-nexthop"}": [')
                for item in items:
                    out.append(self._message("update", peer, event.direction,
                                             head + _flow_json(fam, item, attrs.next_hop) + "]}}}}"))
                continue
            head = (f'"message": {{"update": {{{attribute}"announce": '
                    f'{{"{family_name(fam)}": {{"{_next_hop(attrs)}": [')
            tail = ']}}}}'
            for item in items:
                out.append(self._message("update", peer, event.direction,
                                         head + _nlri_json(fam, item) + tail))
        return out

    def _notification(self, event: PeerEvent) -> list[str]:
        note = event.notification
        if note is None:
            return []
        inner = (f'{{"code": {note.code}, "subcode": {note.subcode}, "data": "0x{note.data.hex().upper()}", '
                 f'"message": {_dumps(_notification_message(note))}}}')
        body = f'"notification": {inner}, "message": {{"notification": {inner}}}'
        return [self._message("notification", event.peer, event.direction, body)]

    def _open(self, event: PeerEvent) -> list[str]:
        op: Open | None = event.open
        if op is None:
            return []
        inner = {"version": op.version, "asn": op.asn, "hold_time": op.hold_time, "router_id": op.router_id,
                 "capabilities": _capabilities_json(op.capabilities)}
        return [self._message("open", event.peer, event.direction, f'"open": {_dumps(inner)}')]

    def _keepalive(self, event: PeerEvent) -> list[str]:
        return [self._message("keepalive", event.peer, event.direction, "")]

    def _refresh(self, event: PeerEvent) -> list[str]:
        rr: RouteRefresh | None = event.refresh
        if rr is None:
            return []
        afi, _sep, safi = family_name(rr.family).partition(" ")
        subtype = {0: "query", 1: "begin", 2: "end"}.get(rr.subtype, str(rr.subtype))
        body = f'"route-refresh": {{"afi": "{afi}", "safi": "{safi}", "subtype": "{subtype}"}}'
        return [self._message("refresh", event.peer, event.direction, body)]

    def shutdown(self) -> str:
        return f'{self._head("notification", None)}, "notification": "shutdown"}}'

    ack_done = ACK_DONE
    ack_error = ACK_ERROR


_JSON_HANDLERS: dict[EventKind, Callable[[JsonEncoder, PeerEvent], list[str]]] = {
    EventKind.STATE: JsonEncoder._state,
    EventKind.UPDATE: JsonEncoder._update,
    EventKind.NOTIFICATION: JsonEncoder._notification,
    EventKind.OPEN: JsonEncoder._open,
    EventKind.KEEPALIVE: JsonEncoder._keepalive,
    EventKind.REFRESH: JsonEncoder._refresh,
}


class TextEncoder:
    """ExaBGP 5's text form: `neighbor ADDR up`, `neighbor ADDR receive update announced ...`."""

    name = "text"

    def event(self, event: PeerEvent) -> list[str]:
        handler = _TEXT_HANDLERS.get(event.kind)
        if handler is None:
            return []
        return handler(self, event)

    def _state(self, event: PeerEvent) -> list[str]:
        address = event.peer.peer_address
        if event.state is SessionState.DOWN:
            return [f"neighbor {address} down - {_oneline(event.reason)}"]
        return [f"neighbor {address} {event.state}"]

    def _update(self, event: PeerEvent) -> list[str]:
        upd: Update | None = event.update
        if upd is None:
            return []
        prefix = f"neighbor {event.peer.peer_address} {event.direction} update"
        out = [f"{prefix} start"]
        if upd.eor is not None:
            afi, safi = upd.eor
            out.append(f"{prefix} route eor {afi}/{safi} ({family_name(upd.eor)})")
        for fam, items in upd.withdraw.items():
            out.extend(f"{prefix} withdrawn {nlri_to_prefix(fam, item)}" for item in items)
        for fam, (attrs, items) in upd.announce.items():
            if fam[1] == _FLOWSPEC:
                # ExaBGP: the rule's one-line form, its next hop only for redirect-to-IP
                nh = f" next-hop {attrs.next_hop}" if attrs.next_hop else ""
                rest = nh + attributes_text(attrs, flow=True)
                out.extend(f"{prefix} announced {nlri_to_prefix(fam, item)}{rest}" for item in items)
                continue
            rest = f" next-hop {_next_hop(attrs)}{attributes_text(attrs)}"
            out.extend(f"{prefix} announced {nlri_to_prefix(fam, item)}{rest}" for item in items)
        out.append(f"{prefix} end")
        return out

    def _notification(self, event: PeerEvent) -> list[str]:
        note = event.notification
        if note is None:
            return []
        return [f"neighbor {event.peer.peer_address} {event.direction} notification code "
                f"{note.code} subcode {note.subcode} data 0x{note.data.hex().upper()}"]

    def _open(self, event: PeerEvent) -> list[str]:
        op = event.open
        if op is None:
            return []
        caps = _oneline(_capabilities_text(op.capabilities)).lower()
        return [f"neighbor {event.peer.peer_address} {event.direction} open version {op.version} "
                f"asn {op.asn} hold_time {op.hold_time} router_id {op.router_id} capabilities [{caps}]"]

    def _keepalive(self, event: PeerEvent) -> list[str]:
        return [f"neighbor {event.peer.peer_address} {event.direction} keepalive"]

    def _refresh(self, event: PeerEvent) -> list[str]:
        rr = event.refresh
        if rr is None:
            return []
        afi, _sep, safi = family_name(rr.family).partition(" ")
        subtype = {0: "query", 1: "begin", 2: "end"}.get(rr.subtype, str(rr.subtype))
        return [f"neighbor {event.peer.peer_address} {event.direction} route-refresh "
                f"afi {afi} safi {safi} {subtype}"]

    def shutdown(self) -> str:
        return f"shutdown {os.getpid()} {os.getppid()}"

    ack_done = ACK_DONE
    ack_error = ACK_ERROR


_TEXT_HANDLERS: dict[EventKind, Callable[[TextEncoder, PeerEvent], list[str]]] = {
    EventKind.STATE: TextEncoder._state,
    EventKind.UPDATE: TextEncoder._update,
    EventKind.NOTIFICATION: TextEncoder._notification,
    EventKind.OPEN: TextEncoder._open,
    EventKind.KEEPALIVE: TextEncoder._keepalive,
    EventKind.REFRESH: TextEncoder._refresh,
}

Encoder = JsonEncoder | TextEncoder


def make_encoder(name: str) -> Encoder:
    return JsonEncoder() if name == "json" else TextEncoder()
