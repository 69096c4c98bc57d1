"""Write the starting corpus of every fuzz target (tests/fuzz/corpus/TARGET/) from the docs, the
test fixtures and the codec: `python tests/fuzz/seed_corpus.py`. Existing files are kept, so inputs
that `make fuzz` added and the regression inputs (regress-*) stay; a seed is named by its content."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "agent" / "src"), str(HERE)]

from fleetbgp.bfd.auth import Authenticator  # noqa: E402
from fleetbgp.bfd.packet import BfdState, ControlPacket, Diag  # noqa: E402
from fleetbgp.grammar.prefix import prefix_to_nlri  # noqa: E402
from fleetbgp.wire.attributes import Attributes, EncodeContext, encode_attributes  # noqa: E402
from fleetbgp.wire.constants import MsgType  # noqa: E402
from fleetbgp.wire.messages import (  # noqa: E402
    KEEPALIVE,
    Capabilities,
    Notification,
    Open,
    RouteRefresh,
    end_of_rib,
    frame,
    pack_announce,
    pack_withdraw,
)
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST  # noqa: E402

CORPUS = HERE / "corpus"
DOCS = ROOT / "docs"


def fenced_blocks(doc: Path) -> Iterable[tuple[str, str]]:
    """(tag, text) of each fenced block."""
    tag: str | None = None
    lines: list[str] = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if tag is None:
                tag, lines = line[3:].strip(), []
            else:
                yield tag, "\n".join(lines) + "\n"
                tag = None
        elif tag is not None:
            lines.append(line)


def config_seeds() -> Iterable[bytes]:
    for conf in sorted((ROOT / "tests" / "agent" / "fixtures").glob("*.conf")):
        yield conf.read_bytes()
    for doc in sorted((DOCS / "agent").glob("*.md")):
        for tag, text in fenced_blocks(doc):
            if tag in ("", "conf", "exabgp") and "{" in text:
                yield text.encode()


def _doc_lines(pattern: str) -> Iterable[str]:
    rx = re.compile(pattern)
    for doc in sorted((DOCS / "agent").glob("*.md")):
        for line in doc.read_text(encoding="utf-8").splitlines():
            line = line.strip().strip("`")
            if rx.match(line):
                yield line


def api_seeds() -> Iterable[bytes]:
    lines = list(_doc_lines(r"^(neighbor \S+ )?(announce|withdraw|show|teardown|version|flush) "))
    for i in range(0, len(lines), 4):
        for encoder in (b"\x00", b"\x01"):
            yield encoder + "\n".join(lines[i:i + 4]).encode() + b"\n"


def flow_text_seeds() -> Iterable[bytes]:
    for line in _doc_lines(r"^(neighbor \S+ )?(announce|withdraw) flow route "):
        yield line.split(" flow route ", 1)[1].encode()


def control_seeds() -> Iterable[bytes]:
    requests: list[dict[str, Any]] = [
        {"cmd": "status"}, {"cmd": "neighbors"}, {"cmd": "neighbors", "args": {"neighbor": "192.0.2.1"}},
        {"cmd": "routes", "args": {"limit": 10}}, {"cmd": "routes", "args": {"prefix": "100.10.0.0/16",
                                                                              "match": "longer"}},
        {"cmd": "routes", "args": {"received": True, "family": "ipv4 unicast"}},
        {"cmd": "announce", "args": {"route": "100.10.2.0/24 next-hop self med 10", "owner": "deploy"}},
        {"cmd": "announce", "args": {"prefix": "100.10.0.100/32", "next_hop": "self", "med": 100,
                                     "community": ["65001:100"], "owner": "deploy"}},
        {"cmd": "withdraw", "args": {"route": "100.10.2.0/24", "owner": "deploy"}},
        {"cmd": "withdraw", "args": {"all": True, "owner": "deploy"}},
        {"cmd": "maintenance", "args": {"state": "on"}}, {"cmd": "maintenance", "args": {"state": "off"}},
        {"cmd": "health"}, {"cmd": "processes"}, {"cmd": "flows"},
        {"cmd": "flow_announce", "args": {"name": "web-syn", "match": {"destination": "192.0.2.10/32",
              "protocol": "=tcp", "destination-port": "=80", "tcp-flags": "[syn]"}, "then": {"discard": True},
              "expires_after": 3600}},
        {"cmd": "flow_withdraw", "args": {"name": "web-syn"}},
    ]
    for i, req in enumerate(requests):
        yield json.dumps({"v": 1, "id": i, **req}).encode() + b"\n"
    yield b"\n".join(json.dumps({"v": 1, "id": i, **r}).encode() for i, r in enumerate(requests[:6])) + b"\n"


def flow_json_seeds() -> Iterable[bytes]:
    for text in flow_text_seeds():
        del text
    rules = [
        {"match": {"destination": "192.0.2.10/32", "protocol": "=tcp", "destination-port": "=80"},
         "then": {"discard": True}},
        {"match": {"source": "10.0.0.0/24", "packet-length": ">1000&<1500"}, "then": {"rate-limit": 9600}},
        {"match": {"destination": "2001:db8::/64", "next-header": "=udp"}, "family": "ipv6",
         "then": {"redirect": "65001:999"}},
        {"match": {"destination": "192.0.2.0/24", "fragment": "is-fragment", "dscp": "=46"},
         "then": {"mark": 10, "action": "sample"}},
        {"match": {"source-port": [">=1024", "<=2048"], "icmp-type": "=8"},
         "then": {"redirect-to-nexthop": True, "community": ["65000:1"]}},
    ]
    for rule in rules:
        yield json.dumps(rule).encode()


def health_seeds() -> Iterable[bytes]:
    for line in _doc_lines(r"^(run )?fleetbgp healthcheck "):
        words = shlex.split(line.removeprefix("run ").rstrip(";"))[2:]
        yield "\n".join(words).encode()
    yield b"--ip\n100.10.0.100/32\n--ip\n2001:db8::100/128\n--up-metric\n100\n--increase\n10"
    yield b"--ip\n10.0.0.0/30\n--deaggregate-networks\n--withdraw-on-down"
    yield b"--config\nx\n--- config file\nip = 100.10.0.1/32\ninterval = 2\nrise = 3\ncommunity = 65000:1\n"


def bfd_seeds() -> Iterable[bytes]:
    """Byte 0 picks the session's authentication (0: none, 1-5: fuzz_targets.bfd.CONFIGS); the rest
    is a datagram: what BIRD sends first, a session's Init/Up/Poll/Final/AdminDown packets, each
    signed by every kind, and a few that 6.8.6 drops."""
    from fuzz_targets.bfd import CONFIGS

    yield b"\x00" + bytes.fromhex("2040051" "82a2b2c2d00000000000f424000002710" "00000000")
    packets = [
        ControlPacket(state=BfdState.DOWN, detect_mult=3, my_discr=0x1234, your_discr=0),
        ControlPacket(state=BfdState.INIT, detect_mult=3, my_discr=0x1234, your_discr=0x5678),
        ControlPacket(state=BfdState.UP, poll=True, detect_mult=3, my_discr=0x1234, your_discr=0x5678,
                      desired_min_tx_us=300_000, required_min_rx_us=300_000),
        ControlPacket(state=BfdState.UP, final=True, detect_mult=1, my_discr=1, your_discr=2,
                      desired_min_tx_us=50_000, required_min_rx_us=0),
        ControlPacket(state=BfdState.ADMIN_DOWN, diag=Diag.ADMINISTRATIVELY_DOWN, my_discr=9, your_discr=0),
    ]
    for pkt in packets:
        yield b"\x00" + pkt.encode()
        for which, config in enumerate(CONFIGS, 1):
            sender = Authenticator(config)
            sender.xmit_seq = 0x5677
            yield bytes((which,)) + pkt.encode(sender)
            yield bytes((which | 0x80,)) + pkt.encode(sender)
    up = packets[2].encode()
    for broken in (up[:23], b"\x40" + up[1:], up[:3] + b"\x17" + up[4:], up[:2] + b"\x00" + up[3:],
                   up[:1] + b"\xc1" + up[2:], up[:4] + bytes(4) + up[8:], up[:3] + b"\x1a" + up[4:] + b"\x01\x02"):
        yield b"\x00" + broken


def _update(fam, attrs: Attributes, prefixes: list[str]) -> bytes:
    ctx = EncodeContext(local_as=65000, peer_as=65001, next_hop_self_v4="192.0.2.1",
                        next_hop_self_v6="2001:db8::1")
    items = [prefix_to_nlri(p)[1] for p in prefixes]
    head = encode_attributes(attrs, ctx, ipv4_next_hop=fam == IPV4_UNICAST)
    return b"".join(pack_announce(fam, attrs, items, ctx, head))


def wire_messages() -> list[bytes]:
    v4 = Attributes.make(next_hop="192.0.2.1", med=100, communities=(0xFDE80001,), as_path=((2, (65000, 65010)),))
    v6 = Attributes.make(next_hop="2001:db8::1", local_pref=200, large_communities=((65000, 1, 2),))
    ctx = EncodeContext(local_as=65000, peer_as=65001)
    return [
        KEEPALIVE,
        _update(IPV4_UNICAST, v4, ["100.10.0.0/24", "100.10.1.0/24"]),
        _update(IPV6_UNICAST, v6, ["2001:db8:100::/48"]),
        b"".join(pack_withdraw(IPV4_UNICAST, [prefix_to_nlri("100.10.0.0/24")[1]], ctx)),
        end_of_rib(IPV4_UNICAST), end_of_rib(IPV6_UNICAST),
        RouteRefresh(IPV4_UNICAST).encode(),
        Notification(6, 2, b"").encode(),
        Notification(3, 1, b"").encode(),
    ]


def wire_seeds() -> Iterable[tuple[str, bytes]]:
    msgs = wire_messages()
    caps = Capabilities(families=[IPV4_UNICAST, IPV6_UNICAST], asn4=65000, route_refresh=True)
    open_msg = Open(asn=65000, hold_time=90, router_id="192.0.2.1", capabilities=caps).encode()
    for msg in msgs:
        yield "bgp_decoders", bytes((0x10,)) + msg  # the framing decoder
    yield "bgp_decoders", bytes((0x11,)) + open_msg[19:]
    for msg in msgs:
        body = msg[19:]
        decoder = {MsgType.UPDATE: 2, MsgType.NOTIFICATION: 3, MsgType.ROUTE_REFRESH: 4}.get(MsgType(msg[18]))
        if decoder is not None:
            yield "bgp_decoders", bytes((decoder | 0x10,)) + body
    yield "bgp_decoders", bytes((0x15,)) + caps.encode()[2:]
    # graceful restart with R and RFC 8538's N set, per-family F; a Hard Reset carrying a shutdown
    gr = Capabilities(families=[IPV4_UNICAST], graceful_restart=120, gr_restarting=True, gr_notification=True,
                      gr_families={IPV4_UNICAST: True, IPV6_UNICAST: False})
    yield "bgp_decoders", bytes((0x15,)) + gr.encode()
    yield "bgp_decoders", bytes((0x11,)) + Open(asn=65000, hold_time=90, router_id="192.0.2.1",
                                                 capabilities=gr).encode()[19:]
    yield "bgp_decoders", bytes((0x13,)) + Notification.hard_reset(Notification.shutdown("bye")).encode()[19:]
    for neighbor in (b"\x00", b"\x01"):
        yield "bgp_session", neighbor + b"".join(msgs[:6])
        for msg in msgs:
            yield "bgp_session", neighbor + msg


def _dup_attr_update(count: int) -> bytes:
    """An UPDATE carrying ORIGIN `count` times (issue 13, defect 7: one log line per attribute)."""
    attrs = b"\x40\x01\x01\x00" * count + b"\x40\x02\x00" + b"\x40\x03\x04\xc0\x00\x02\x01"
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + b"\x18\x64\x0a\x00"
    return frame(MsgType.UPDATE, body)


def _update_with(path_attrs: bytes, nlri: bytes = b"\x18\x64\x0a\x00") -> bytes:
    base = b"\x40\x01\x01\x00" + b"\x40\x02\x00"
    attrs = base + path_attrs
    return frame(MsgType.UPDATE, b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri)


NH = b"\x40\x03\x04\xc0\x00\x02\x01"


def regressions() -> Iterable[tuple[str, str, bytes]]:
    """(target, file name, input): what broke the agent before issue 13, kept so it never does again."""
    asns = " ".join(["1"] * 16400)
    lcs = " ".join(f"{i}:1:1" for i in range(5500))
    yield "api_commands", "regress-d1-as-path-too-long", \
        f"\x00announce route 10.0.0.0/24 next-hop 10.0.0.1 as-path [ {asns} ]\n".encode()
    yield "api_commands", "regress-d1-large-communities-too-many", \
        f"\x01announce route 10.0.0.0/24 next-hop 10.0.0.1 large-community [ {lcs} ]\n".encode()
    yield "api_commands", "regress-d2-unicode-digit", "\x00teardown \u00b2\nneighbor 192.0.2.1 teardown 2\n".encode()
    yield "api_commands", "regress-d2-huge-number", f"\x01neighbor 192.0.2.1 peer-as {'9' * 4301} teardown\n".encode()
    yield "api_commands", "regress-d2-flow-number", \
        "\x00announce flow route { match { destination-port =\u00b2; } then { discard; } }\n".encode()
    yield "api_commands", "regress-d3-leading-zero", b"\x00announce route 010.0.0.0/8 next-hop 10.0.0.1\n"
    yield "api_commands", "regress-d8-nul-in-unknown", "\x00frobnicate \x00\ufffd\n".encode()
    yield "config", "regress-d1-as-path-too-long", \
        ("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
         f"static {{ route 10.0.0.0/24 next-hop 10.0.0.1 as-path [ {asns} ]; }} }}\n").encode()
    yield "config", "regress-d3-healthcheck-leading-zero", b"healthcheck h { ip 01.2.3.4; }\n"
    yield "config", "regress-d3-route-leading-zero", \
        (b"neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
         b"static { route 010.0.0.0/8 next-hop 10.0.0.1; } }\n")
    yield "config", "regress-d2-flow-number", \
        ("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2; family { ipv4 flow; }\n"
         "flow { route r { match { destination-port =\u00b2; source-port =" + "9" * 5000 +
         "; } then { discard; } } } }\n").encode()
    yield "config", "regress-d5-20000-large-communities", \
        ("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; router-id 192.0.2.2;\nstatic { route 10.0.0.0/24 "
         "next-hop 10.0.0.1 large-community [ " + " ".join(f"1:{i}:1" for i in range(20000)) + " ]; } }\n").encode()
    yield "control_requests", "regress-d4-huge-limit", \
        b'{"v":1,"id":9,"cmd":"routes","args":{"limit":9223372036854775808}}\n{"v":1,"id":10,"cmd":"status"}\n'
    yield "control_requests", "regress-d4-deep-nesting", b"[" * 200000 + b"\n"
    yield "control_requests", "regress-d4-version-without-id", b'{"v": 110, "cmd": "maintenance"}\n'
    yield "health_options", "regress-d6-metric-range", b"--ip\n10.0.0.1/32\n--disabled-metric\n4294967296"
    yield "health_options", "regress-d6-increase-overflow", \
        b"--ip\n10.0.0.1/32\n--ip\n10.0.0.2/32\n--up-metric\n4294967295\n--increase\n1"
    yield "health_options", "regress-d6-local-preference", b"--ip\n10.0.0.1/32\n--local-preference\n4294967296"
    yield "health_options", "regress-d6-deaggregate-slash8", b"--ip\n10.0.0.0/8\n--deaggregate-networks"
    yield "health_options", "regress-d6-interval-nan", b"--ip\n10.0.0.1/32\n--interval\nnan"
    yield "health_options", "regress-d3-ip-leading-zero", b"--ip\n01.2.3.4/32"
    yield "flowspec_text", "regress-d2-unicode-port", "{ match { destination-port =\u00b2; } then { discard; } }".encode()
    yield "flowspec_text", "regress-d2-huge-mark", ("destination 10.0.0.0/24 mark " + "9" * 5000).encode()
    yield "flowspec_json", "regress-d2-redirect-unicode", \
        '{"match": {"destination": "10.0.0.0/24"}, "then": {"redirect": "\u00b26501:1"}}'.encode()
    yield "bgp_session", "regress-d7-duplicate-attributes", b"\x00" + _dup_attr_update(1000) * 20
    yield "bgp_session", "regress-d8-mp-reach-unknown-afi", b"\x00" + _update_with(
        b"\x90\x0e\x00\x09\x00\x63\x01\x04\x0a\x00\x00\x01\x00", b"")
    yield "bgp_session", "regress-d9-originator-id-length", b"\x01" + _update_with(NH + b"\x80\x09\x03\x01\x02\x03")
    yield "bgp_session", "regress-d9-cluster-list-length", b"\x01" + _update_with(NH + b"\x80\x0a\x05\x01\x02\x03\x04\x05")
    yield "bgp_session", "regress-d9-confed-from-ebgp", b"\x00" + frame(MsgType.UPDATE, (
        b"\x00\x00\x00\x14" + b"\x40\x01\x01\x00" + b"\x40\x02\x06\x03\x01\x00\x00\xfd\xe8" + NH
        + b"\x18\x64\x0a\x00"))
    flows = b"\x00\x01\x85\x00\x00" + b"\x02\x5b\x00" * 1000  # 1000 NLRI of an unknown component type
    yield "bgp_session", "regress-flowspec-nlri-flood", b"\x00" + _update_with(
        b"\x90\x0e" + len(flows).to_bytes(2, "big") + flows, b"")
    yield "bgp_session", "regress-d9-next-hop-zero", b"\x00" + _update_with(b"\x40\x03\x04\x00\x00\x00\x00")
    yield "bgp_session", "regress-d9-next-hop-multicast", b"\x00" + _update_with(b"\x40\x03\x04\xe0\x00\x00\x01")


def write(target: str, data: bytes, name: str | None = None) -> bool:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or hashlib.sha1(data).hexdigest()[:16])
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def main() -> int:
    added = 0
    for target, seeds in (("config", config_seeds()), ("api_commands", api_seeds()),
                          ("control_requests", control_seeds()), ("flowspec_text", flow_text_seeds()),
                          ("flowspec_json", flow_json_seeds()), ("health_options", health_seeds())):
        for data in seeds:
            added += write(target, data)
    for data in bfd_seeds():
        added += write("bfd_packets", data)
    for target, data in wire_seeds():
        added += write(target, data)
    for target, name, data in regressions():
        added += write(target, data, name)
    print(f"{added} new seed(s) in {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
