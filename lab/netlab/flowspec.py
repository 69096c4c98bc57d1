"""FlowSpec views of BIRD 2 and GoBGP (what a FlowSpec sender's rules look like at the receiver).

BIRD: ``birdc show route table flowtab4 all`` prints each rule as ``flow4 { dst 192.0.2.0/24;
proto 6,17; dport > 1024 && < 2048; ... }`` followed by the BGP attributes; the actions are in
``BGP.ext_community: (generic, 0x80060000, 0x0) ...`` (traffic-rate bytes, rate 0 = discard).
``parse_bird_flows`` returns them as ``BirdFlow``s keyed by that ``flow4 { ... }`` text.

GoBGP: ``gobgp global rib -a ipv4-flowspec -j`` is keyed by GoBGP's text of the rule
(``[destination: 192.0.2.0/24][protocol: ==tcp ==udp]...``); each path's type-16 attribute lists
the actions decoded (``{"type": 128, "subtype": 6, "as": 0, "rate": 9600}``). ``gobgp_flow_actions``
turns that list into short strings (``rate:9600``, ``rate-packets:100``, ``redirect:65001:999``,
``redirect:10.1.1.1:5``, ``action:sample,terminal``, ``mark:10``), so a test compares sets of strings.

Traps (GoBGP 3.10, BIRD 2.0.12): GoBGP's *text* output (``gobgp global rib -a ipv6-flowspec``
without ``-j``) crashes on an IPv6 prefix with an offset, and its decoder reads such a prefix
wrongly (``10d:b800:0:2::/64/8`` for ExaBGP's ``2001:db8::/64/8``); BIRD reads it right
(``1:db8::/64 offset 8``: the pattern with the first 8 bits masked). Use offsets with BIRD only.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass, field

# BIRD's names for the generic extended communities of RFC 8955 7 / RFC 7674 (its "generic" form
# prints the first and second 32-bit halves).
_BIRD_EC = re.compile(r"\(generic, (0x[0-9a-f]+), (0x[0-9a-f]+)\)")
_BIRD_RT = re.compile(r"\((rt|ro), ([^,]+), ([^)]+)\)")


@dataclass
class BirdFlow:
    flow: str                      # "flow4 { dst 192.0.2.0/24; proto 6; }" as BIRD prints it
    table: str
    protocol: str
    parts: dict[str, str] = field(default_factory=dict)   # {"dst": "192.0.2.0/24", "proto": "6"}
    ext_communities: list[int] = field(default_factory=list)  # 64-bit values
    route_targets: list[str] = field(default_factory=list)    # "(rt, 65000, 1)" forms, raw
    attrs: dict[str, str] = field(default_factory=dict)


_FLOW_LINE = re.compile(r"^(?P<flow>flow[46] \{.*?\})\s+.*\[(?P<proto>\S+)\s[^\]]*\]")
_PART_NAMES = ("dst", "src", "proto", "next header", "port", "dport", "sport", "icmp type", "icmp code",
               "tcp flags", "length", "dscp", "fragment", "label")


def _parts(flow: str) -> dict[str, str]:
    inner = flow[flow.index("{") + 1:flow.rindex("}")]
    out: dict[str, str] = {}
    for item in (x.strip() for x in inner.split(";")):
        if not item:
            continue
        for name in sorted(_PART_NAMES, key=len, reverse=True):
            if item.startswith(name + " "):
                out[name] = item[len(name) + 1:].strip()
                break
        else:
            out[item] = ""
    return out


def parse_bird_flows(text: str) -> list[BirdFlow]:
    """Parse ``birdc show route table flowtabN all``."""
    flows: list[BirdFlow] = []
    table = ""
    cur: BirdFlow | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        m = re.match(r"^Table (\S+):$", line)
        if m:
            table = m.group(1)
            continue
        m = _FLOW_LINE.match(line)
        if m and not raw.startswith(("\t", " ")):
            cur = BirdFlow(flow=m.group("flow"), table=table, protocol=m.group("proto"),
                           parts=_parts(m.group("flow")))
            flows.append(cur)
            continue
        if cur is None:
            continue
        m = re.match(r"^\s*BGP\.(\w+):\s*(.*)$", line)
        if not m:
            continue
        key, val = m.group(1), m.group(2).strip()
        cur.attrs[key] = val
        if key == "ext_community":
            cur.ext_communities = [int(a, 16) << 32 | int(b, 16) for a, b in _BIRD_EC.findall(val)]
            cur.route_targets = [f"({k}, {a}, {b})" for k, a, b in _BIRD_RT.findall(val)]
    return flows


def gobgp_flow_actions(attrs: list[dict]) -> set[str]:
    """GoBGP's decoded extended communities (attribute type 16) of a FlowSpec path -> strings."""
    out: set[str] = set()
    for attr in attrs:
        if attr.get("type") != 16:
            continue
        for ec in attr.get("value", []):
            t, sub = ec.get("type"), ec.get("subtype")
            if t == 128 and sub == 6:
                out.add(f"rate:{ec.get('rate'):g}")
            elif t == 128 and sub == 12:
                # GoBGP 3.10 has no name for traffic-rate-packets (0x800c): it gives the raw octets
                # (subtype, 2-octet AS, IEEE float), base64
                raw = base64.b64decode(ec.get("value", ""))
                rate = struct.unpack("!f", raw[-4:])[0] if len(raw) >= 4 else None
                out.add(f"rate-packets:{rate:g}" if rate is not None else f"rate-packets:?{raw.hex()}")
            elif t == 128 and sub == 7:
                flags = [n for n in ("sample", "terminal") if ec.get(n) or ec.get(f"is_{n}")]
                out.add("action:" + ",".join(flags))
            elif sub == 8 and t in (128, 129):
                out.add(f"redirect:{ec.get('value')}")
            elif sub == 8 and t == 130:  # 4-octet AS, which GoBGP prints in asdot ("64086.59904:7")
                admin, _, local = str(ec.get("value")).rpartition(":")
                hi, dot, lo = admin.partition(".")
                asn = int(hi) * 65536 + int(lo) if dot else int(admin)
                out.add(f"redirect:{asn}:{local}")
            elif t == 128 and sub == 9:
                out.add(f"mark:{ec.get('value')}")
            else:
                out.add(f"other:{t}:{sub}:{json.dumps(ec, sort_keys=True)}")
    return out


def gobgp_flow_rib(data: dict | None) -> dict[str, dict]:
    """``gobgp global rib -a ipvN-flowspec -j`` -> {GoBGP's rule text: {"actions": set, "path": path}}."""
    out: dict[str, dict] = {}
    for key, paths in (data or {}).items():
        best = next((p for p in paths if p.get("best")), paths[0])
        out[key] = {"actions": gobgp_flow_actions(best.get("attrs") or []), "path": best}
    return out
