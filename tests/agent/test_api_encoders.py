"""What API programs read: ExaBGP 5's JSON and text, checked against ExaBGP 5.0.15's own encoder.

The same UPDATE/OPEN/NOTIFICATION bytes are decoded by fleetbgp and encoded by our encoders, and fed
to ExaBGP's encoder (the `exabgp` package of the dev venv, run in a subprocess: it keeps global
state). Our JSON splits announcements one route per message (docs/agent/api.md): merged back, it
must equal ExaBGP's message; the text lines must be identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from fleetbgp.api.encoders import JsonEncoder, TextEncoder
from fleetbgp.config.model import Neighbor
from fleetbgp.events import EventKind, PeerEvent, PeerRef, SessionState
from fleetbgp.grammar.communities import extended_community_text
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext, encode_attributes
from fleetbgp.wire.messages import (
    Capabilities,
    MessageReader,
    Notification,
    Open,
    RouteRefresh,
    decode_update,
    end_of_rib,
    pack_announce,
    pack_withdraw,
)
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

EBGP = EncodeContext(local_as=65001, peer_as=65000, next_hop_self_v4="10.255.1.2",
                     next_hop_self_v6="fd00:fb:0:1::2")
IBGP = EncodeContext(local_as=65000, peer_as=65000, next_hop_self_v4="10.255.1.2",
                     next_hop_self_v6="fd00:fb:0:1::2")


def fake_peer(address: str = "10.255.1.1") -> PeerRef:
    """The peer of the events below, as a session names it."""
    neighbor = Neighbor(peer_address="10.255.1.1", local_address="10.255.1.2", local_as=65001,
                        peer_as=65000, router_id="10.255.1.2")
    return PeerRef.of(address, neighbor)


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def announce(fam: Family, attrs: Attributes, prefixes: list[str], ctx: EncodeContext = EBGP) -> bytes:
    head = encode_attributes(attrs, ctx, ipv4_next_hop=fam == IPV4_UNICAST)
    [msg] = list(pack_announce(fam, attrs, [n(p) for p in prefixes], ctx, head))
    return msg


def withdraw(fam: Family, prefixes: list[str]) -> bytes:
    [msg] = list(pack_withdraw(fam, [n(p) for p in prefixes], EBGP))
    return msg


def with_withdrawn(message: bytes, prefixes: list[str]) -> bytes:
    """An IPv4 announcement with withdrawn routes in the same UPDATE."""
    body = message[19:]
    w = b"".join(n(p) for p in prefixes)
    new = len(w).to_bytes(2, "big") + w + body[2:]
    return b"\xff" * 16 + (19 + len(new)).to_bytes(2, "big") + b"\x02" + new


UPDATES = {
    "plain": announce(IPV4_UNICAST, Attributes.make(next_hop="192.0.2.1"), ["10.0.0.0/24"]),
    "many routes": announce(IPV4_UNICAST, Attributes.make(next_hop="self", med=5),
                            [f"10.1.{i}.0/24" for i in range(5)]),
    "all attributes": announce(IPV4_UNICAST, Attributes.make(
        next_hop="192.0.2.1", med=100, local_pref=200, origin=1, as_path=((2, (65010, 65020)), (1, (1, 2))),
        atomic_aggregate=True, aggregator=(65001, "1.2.3.4"),
        communities=(65000 << 16 | 1, 0xFFFFFF01, 0xFFFF029A, 0xFFFFFF02, 0xFFFFFF03, 0xFFFFFF04, 7),
        large_communities=((1, 2, 3), (4200000000, 5, 6)),
        ext_communities=(0x0002FDE800000001, 0x0102010203040007, 0x0202FA56EA000009, 0x8008FDE800000064)),
        ["10.2.0.0/16", "10.3.0.0/16"]),
    "one of each list": announce(IPV4_UNICAST, Attributes.make(
        next_hop="192.0.2.1", communities=(65000 << 16 | 1,), large_communities=((1, 2, 3),),
        ext_communities=(0x0002FDE800000001,)), ["10.4.0.0/24"]),
    "ibgp empty path": announce(IPV4_UNICAST, Attributes.make(
        next_hop="192.0.2.1", local_pref=50, other=((0xC0, 99, b"\x01\x02"),)), ["10.5.0.0/24"], IBGP),
    "withdraw v4": withdraw(IPV4_UNICAST, ["10.0.0.0/24", "10.1.0.0/16"]),
    "mixed": with_withdrawn(announce(IPV4_UNICAST, Attributes.make(next_hop="192.0.2.1"),
                                     ["10.6.0.0/24", "10.7.0.0/24"]), ["10.9.0.0/16"]),
    "v6": announce(IPV6_UNICAST, Attributes.make(next_hop="2001:db8::5", med=9),
                   ["2001:db8:1::/48", "2001:db8:2::/48"]),
    "withdraw v6": withdraw(IPV6_UNICAST, ["2001:db8:1::/48"]),
    "eor v4": end_of_rib(IPV4_UNICAST),
    "eor v6": end_of_rib(IPV6_UNICAST),
}

OPEN = Open(asn=65000, hold_time=9, router_id="10.255.1.1",
            capabilities=Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST], asn4=65000, route_refresh=True,
                                      graceful_restart=120, gr_families={IPV4_UNICAST: False}))
NOTIFICATION = Notification.shutdown("maintenance window")
REFRESH = RouteRefresh(IPV4_UNICAST)

ORACLE = textwrap.dedent("""
    import json, sys
    from exabgp.environment import getenv
    from exabgp.logger import log
    env = getenv(); env.bgp.passive = True; env.tcp.bind = ''
    log.silence(); log.init(env)
    from exabgp.configuration.configuration import Configuration
    from exabgp.configuration.check import _make_update
    from exabgp.reactor.loop import Reactor
    from exabgp.reactor.api.response import Response
    from exabgp.version import json as jv, text as tv
    from exabgp.bgp.message.open import Open
    from exabgp.bgp.message.notification import Notification
    from exabgp.bgp.message.refresh import RouteRefresh
    conf = '''neighbor 10.255.1.1 {
        router-id 10.255.1.2; local-address 10.255.1.2; local-as 65001; peer-as 65000;
        family { ipv4 unicast; ipv6 unicast; }
    }'''
    c = Configuration([conf], text=True); Reactor(c).reload()
    nb = list(c.neighbors.values())[0]
    J, T = Response.JSON(jv), Response.Text(tv)
    out = {}
    for name, kind, hexa in json.load(sys.stdin):
        raw = bytes.fromhex(hexa) if kind not in ('state', 'keepalive') else b''
        if kind == 'update':
            u = _make_update(nb, raw)
            out[name] = [J.update(nb, 'receive', u, None, '', ''), T.update(nb, 'receive', u, None, '', '')]
        elif kind == 'open':
            m = Open.unpack_message(raw[19:])
            out[name] = [J.open(nb, 'receive', m, None, '', ''), T.open(nb, 'receive', m, None, '', '')]
        elif kind == 'notification':
            m = Notification.unpack_message(raw[19:])
            out[name] = [J.notification(nb, 'receive', m, None, '', ''),
                         T.notification(nb, 'receive', m, None, '', '')]
        elif kind == 'refresh':
            m = RouteRefresh.unpack_message(raw[19:])
            out[name] = [J.refresh(nb, 'receive', m, None, '', ''), T.refresh(nb, 'receive', m, None, '', '')]
        elif kind == 'state':
            out[name] = [getattr(J, hexa)(nb) if hexa != 'down' else J.down(nb, 'hold timer expired'),
                         getattr(T, hexa)(nb) if hexa != 'down' else T.down(nb, 'hold timer expired')]
        elif kind == 'keepalive':
            out[name] = [J.keepalive(nb, 'receive', None, '', ''), T.keepalive(nb, 'receive', None, '', '')]
    json.dump(out, sys.stdout)
""")


@pytest.fixture(scope="module")
def exabgp() -> dict[str, tuple[dict[str, Any], list[str]]]:
    """ExaBGP's encoding of every message here: name -> (JSON object, text lines)."""
    pytest.importorskip("exabgp", reason="the dev venv's exabgp==5.0.15 is the reference encoder")
    items = [[name, "update", msg.hex()] for name, msg in UPDATES.items()]
    items += [["open", "open", OPEN.encode().hex()], ["notification", "notification", NOTIFICATION.encode().hex()],
              ["refresh", "refresh", REFRESH.encode().hex()], ["keepalive", "keepalive", ""]]
    items += [[f"state {s}", "state", s] for s in ("up", "down", "connected")]
    cp = subprocess.run([sys.executable, "-c", ORACLE], input=json.dumps(items), capture_output=True, text=True,
                        timeout=120, check=False)
    assert cp.returncode == 0, cp.stderr
    return {k: (json.loads(j), t.splitlines()) for k, (j, t) in json.loads(cp.stdout).items()}


def update_event(message: bytes, name: str = "") -> PeerEvent:
    [(_, body)] = list(MessageReader(65535).feed(message))
    # fleetbgp drops LOCAL_PREF received over eBGP (RFC 4271 5.1.5); the iBGP sample keeps it
    upd = decode_update(body, DecodeContext(asn4=True, ibgp=name.startswith("ibgp")),
                        [IPV4_UNICAST, IPV6_UNICAST])
    return PeerEvent(EventKind.UPDATE, fake_peer(), update=upd)


def merge(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Our per-route JSON messages put back into one ExaBGP-style update."""
    attribute = None
    announce: dict[str, dict[str, list[Any]]] = {}
    withdrawn: dict[str, list[Any]] = {}
    for msg in messages:
        upd = msg["neighbor"]["message"]["update"]
        if "attribute" in upd:
            assert attribute in (None, upd["attribute"]), "one UPDATE, one attribute set"
            attribute = upd["attribute"]
        for fam, by_nh in upd.get("announce", {}).items():
            for nh, nlris in by_nh.items():
                assert len(nlris) == 1, "one announced route per message"
                announce.setdefault(fam, {}).setdefault(nh, []).extend(nlris)
        for fam, nlris in upd.get("withdraw", {}).items():
            withdrawn.setdefault(fam, []).extend(nlris)
    out: dict[str, Any] = {}
    if attribute is not None:
        out["attribute"] = attribute
    if announce:
        out["announce"] = announce
    if withdrawn:
        out["withdraw"] = withdrawn
    return out


def envelope(msg: dict[str, Any]) -> dict[str, Any]:
    """What must match besides the message itself (time/host/pid/counter legitimately differ)."""
    neighbor = {k: v for k, v in msg["neighbor"].items() if k not in ("message",)}
    return {"exabgp": msg["exabgp"], "type": msg["type"], "neighbor": neighbor,
            "keys": sorted(k for k in msg if k != "neighbor")}


@pytest.mark.parametrize("name", [k for k in UPDATES if not k.startswith("eor")])
def test_update_json_matches_exabgp(exabgp, name):
    want, _ = exabgp[name]
    ours = [json.loads(line) for line in JsonEncoder().event(update_event(UPDATES[name], name))]
    assert ours
    for msg in ours:
        assert envelope(msg) == envelope(want)
    assert merge(ours) == want["neighbor"]["message"]["update"]


@pytest.mark.parametrize("name", list(UPDATES))
def test_update_text_matches_exabgp(exabgp, name):
    _, want = exabgp[name]
    assert TextEncoder().event(update_event(UPDATES[name], name)) == want


@pytest.mark.parametrize("name", ["eor v4", "eor v6"])
def test_end_of_rib_json_matches_exabgp(exabgp, name):
    want, _ = exabgp[name]
    [ours] = [json.loads(line) for line in JsonEncoder().event(update_event(UPDATES[name]))]
    assert envelope(ours) == envelope(want)
    assert ours["neighbor"]["message"] == want["neighbor"]["message"]


def test_announcements_are_one_route_per_message_so_len_counts_routes():
    """The seed exporter counts `len(update['announce'][family])`: with ExaBGP's grouping by next hop
    that is 1 for 5 routes; ours gives 5 messages of 1 route."""
    lines = JsonEncoder().event(update_event(UPDATES["many routes"]))
    total = 0
    for line in lines:
        for routes in json.loads(line)["neighbor"]["message"]["update"]["announce"].values():
            total += len(routes)
    assert total == 5 and len(lines) == 5
    withdrawn = [json.loads(line) for line in JsonEncoder().event(update_event(UPDATES["withdraw v4"]))]
    assert len(withdrawn) == 1
    assert len(withdrawn[0]["neighbor"]["message"]["update"]["withdraw"]["ipv4 unicast"]) == 2


def test_mixed_update_withdrawals_come_first():
    lines = [json.loads(x) for x in JsonEncoder().event(update_event(UPDATES["mixed"]))]
    assert list(lines[0]["neighbor"]["message"]["update"]) == ["withdraw"]
    assert [list(m["neighbor"]["message"]["update"]) for m in lines[1:]] == [["attribute", "announce"]] * 2


def peer_event(kind: str, state: str = "", **kw: Any) -> PeerEvent:
    return PeerEvent(EventKind(kind), fake_peer(), state=SessionState(state), **kw)


@pytest.mark.parametrize("state", ["up", "down", "connected"])
def test_state_messages_match_exabgp(exabgp, state):
    want, want_text = exabgp[f"state {state}"]
    event = peer_event("state", state=state, reason="hold timer expired" if state == "down" else "")
    [ours] = JsonEncoder().event(event)
    msg = json.loads(ours)
    assert envelope(msg) == envelope(want)
    assert TextEncoder().event(event) == want_text


def test_notification_matches_exabgp_and_is_also_under_message(exabgp):
    want, want_text = exabgp["notification"]
    event = peer_event("notification", notification=NOTIFICATION)
    msg = json.loads(JsonEncoder().event(event)[0])
    ours = msg["neighbor"]["notification"]
    theirs = want["neighbor"]["notification"]
    assert (ours["code"], ours["subcode"], ours["message"]) == (theirs["code"], theirs["subcode"], theirs["message"])
    assert msg["neighbor"]["message"]["notification"] == ours  # where the seed exporter reads it
    assert msg["type"] == want["type"] == "notification"
    # ExaBGP hex-dumps its rendering of the text; we dump the bytes received
    assert ours["data"] == "0x" + NOTIFICATION.data.hex().upper()
    assert TextEncoder().event(event)[0].startswith(want_text[0].split(" data ")[0] + " data 0x")


def test_open_keepalive_refresh_match_exabgp(exabgp):
    want, want_text = exabgp["open"]
    event = peer_event("open", open=OPEN)
    msg = json.loads(JsonEncoder().event(event)[0])
    assert envelope(msg) == envelope(want)
    assert msg["neighbor"]["open"] == want["neighbor"]["open"]
    assert TextEncoder().event(event) == want_text
    for name, event in (("keepalive", peer_event("keepalive")), ("refresh", peer_event("refresh", refresh=REFRESH))):
        want, want_text = exabgp[name]
        msg = json.loads(JsonEncoder().event(event)[0])
        assert envelope(msg) == envelope(want)
        assert {k: v for k, v in msg["neighbor"].items()} == want["neighbor"]
        assert TextEncoder().event(event) == want_text


def test_counter_counts_per_neighbor_and_shutdown_message():
    enc = JsonEncoder()
    a, b = fake_peer(), fake_peer("10.255.9.9")
    counters = [json.loads(enc.event(PeerEvent(EventKind.KEEPALIVE, p))[0])["counter"] for p in (a, a, b, a)]
    assert counters == [1, 2, 1, 3]
    down = json.loads(enc.shutdown())
    assert down["type"] == "notification" and down["notification"] == "shutdown" and "counter" not in down
    assert TextEncoder().shutdown().startswith("shutdown ")


def test_text_keeps_peer_supplied_text_on_one_line():
    event = peer_event("state", state="down", reason="NOTIFICATION received: Cease ('bye\nneighbor x up')")
    [line] = TextEncoder().event(event)
    assert "\n" not in line and "\\x0a" in line
    assert json.loads(JsonEncoder().event(event)[0])["neighbor"]["reason"].count("\n") == 1


@pytest.mark.parametrize(("value", "text"), [
    (0x0002FDE800000001, "target:65000:1"),
    (0x0102010203040007, "target:1.2.3.4:7"),
    (0x0202FA56EA000009, "target:4200000000:9"),
    (0x0003FDE800000002, "origin:65000:2"),
    (0x0103010203040005, "origin:1.2.3.4:5"),
    (0x8008FDE800000064, "redirect:65000:100"),
    (0x0000000000000001, "0x0000000000000001"),
])
def test_extended_community_spelling(value, text):
    assert extended_community_text(value, exabgp=True) == text
