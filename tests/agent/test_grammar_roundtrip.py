"""Round trips through the text grammar against the codec: what the agent writes (route_text, the
community renderers, the FlowSpec renderings) reads back to the same values and the same bytes.

Each property starts from codec values (Attributes, NLRI bytes, 64-bit community values), so a
renderer that drops or misspells something (a 4-octet AS without its L, an AS_SET shown as a
sequence, a FlowSpec operator without its AND) fails here."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetbgp.config.lexer import tokenize_line
from fleetbgp.grammar import flowspec as fg
from fleetbgp.grammar.communities import (
    community_text,
    extended_community_text,
    large_community_text,
    parse_community,
    parse_extended_community,
    parse_large_community,
)
from fleetbgp.grammar.route import parse_route, route_text
from fleetbgp.wire import flowspec as fs
from fleetbgp.wire.attributes import Attributes
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, nlri_to_prefix, path_key

U32 = 0xFFFFFFFF
u32 = st.integers(0, U32)
asn = st.integers(1, U32)
ipv4 = st.integers(0, U32).map(lambda n: str(ipaddress.IPv4Address(n)))
# A next hop the grammar takes: neither unspecified nor multicast.
next_hop = st.one_of(st.just("self"), ipv4.filter(
    lambda a: not ipaddress.IPv4Address(a).is_unspecified and not ipaddress.IPv4Address(a).is_multicast))


def _unique(element: st.SearchStrategy, most: int) -> st.SearchStrategy:
    return st.lists(element, max_size=most, unique=True).map(tuple)


@st.composite
def as_paths(draw: st.DrawFn) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """AS_SEQUENCE and AS_SET segments; two sequences are never adjacent (the text would join
    them into one, which is the same path on the wire but another value)."""
    segments: list[tuple[int, tuple[int, ...]]] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = 1 if segments and segments[-1][0] == 2 else draw(st.sampled_from((1, 2)))
        segments.append((kind, tuple(draw(st.lists(asn, min_size=1, max_size=5)))))
    return tuple(segments)


attributes = st.builds(
    Attributes.make,
    origin=st.integers(0, 2),
    as_path=as_paths(),
    next_hop=next_hop,
    med=st.none() | u32,
    local_pref=st.none() | u32,
    atomic_aggregate=st.booleans(),
    aggregator=st.none() | st.tuples(asn, ipv4),
    communities=_unique(u32, 8),
    ext_communities=_unique(st.integers(0, 2**64 - 1), 8),
    large_communities=_unique(st.tuples(u32, u32, u32), 4),
)


@st.composite
def unicast_keys(draw: st.DrawFn) -> tuple[object, bytes]:
    family = draw(st.sampled_from((IPV4_UNICAST, IPV6_UNICAST)))
    bits = 32 if family == IPV4_UNICAST else 128
    length = draw(st.integers(0, bits))
    address = draw(st.integers(0, 2**bits - 1)) >> (bits - length) << (bits - length)
    nlri = bytes((length,)) + address.to_bytes(bits // 8, "big")[:(length + 7) // 8]
    path_id = draw(st.none() | st.integers(1, U32))
    return family, nlri if path_id is None else path_key(nlri, path_id)


@given(unicast_keys(), attributes)
def test_route_text_parses_back_to_the_same_route(key: tuple[object, bytes], attrs: Attributes) -> None:
    family, nlri = key
    if family == IPV6_UNICAST and attrs.next_hop != "self":
        attrs = attrs.replace(next_hop="2001:db8::1")
    text = route_text(nlri_to_prefix(family, nlri), attrs)
    assert parse_route(tokenize_line(text)) == (family, nlri, attrs), text


@given(u32)
def test_community(value: int) -> None:
    assert parse_community(community_text(value)) == value


@given(st.integers(0, 2**64 - 1))
def test_extended_community(value: int) -> None:
    assert parse_extended_community(extended_community_text(value)) == value


@given(st.tuples(u32, u32, u32))
def test_large_community(value: tuple[int, int, int]) -> None:
    assert parse_large_community(large_community_text(value)) == value


# -- FlowSpec: NLRI bytes -> text -> the same bytes ------------------------------------------------


@st.composite
def _operations(draw: st.DrawFn, kind: fs.Kind, afi: int) -> fs.OperatorComponent:
    bits = fs.AND | (fs.NOT | fs.MATCH if kind.bitmask else fs.LT | fs.GT | fs.EQ)
    # fragment: only the bits defined for the family (RFC 8956 3.6: no DF in IPv6)
    limit = {fs.AFI_IPV4: 0x0F, fs.AFI_IPV6: 0x0E}[afi] if kind.type == fs.FRAGMENT else kind.limit
    ops = []
    for i in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 0xFF)) & bits & (~fs.AND if i == 0 else 0xFF)
        value = draw(st.integers(0, limit)) & (limit if kind.type == fs.FRAGMENT else -1)
        ops.append(fs.Operation(op, value))
    return fs.OperatorComponent(kind.type, tuple(ops))


@st.composite
def _prefix(draw: st.DrawFn, kind: fs.Kind, afi: int) -> fs.PrefixComponent:
    bits = 32 if afi == fs.AFI_IPV4 else 128
    length = draw(st.integers(0, bits))
    offset = draw(st.integers(0, max(length - 1, 0))) if afi == fs.AFI_IPV6 else 0
    address = draw(st.integers(0, 2**bits - 1)) >> (bits - length) << (bits - length)
    address &= (1 << (bits - offset)) - 1  # bits before the offset are not sent
    return fs.PrefixComponent(kind.type, length, address.to_bytes(bits // 8, "big"), offset)


@st.composite
def flow_nlri(draw: st.DrawFn) -> tuple[int, bytes]:
    afi = draw(st.sampled_from((fs.AFI_IPV4, fs.AFI_IPV6)))
    kinds = draw(st.lists(st.sampled_from(sorted(fs.KINDS[afi])), min_size=1, max_size=5, unique=True))
    comps = []
    for ctype in sorted(kinds):
        kind = fs.KINDS[afi][ctype]
        comps.append(draw(_prefix(kind, afi) if kind.prefix else _operations(kind, afi)))
    return afi, fs.FlowRule(afi, tuple(comps)).nlri()


@settings(max_examples=300)
@given(flow_nlri())
def test_flow_rule_text_gives_the_same_nlri(item: tuple[int, bytes]) -> None:
    afi, nlri = item
    rule = fs.decode_nlri(afi, nlri)
    assert fg.parse_match(afi, fg.match_dict(rule)).nlri() == nlri
    # the configuration's block form, through the tokenizer as the config and the API read it
    match, then = fg.split_flow_tokens(tokenize_line(fg.match_text(rule) + " then { accept; }"))
    assert fg.parse_match(afi, match).nlri() == nlri, fg.match_text(rule)
    assert then == {"accept": True}


actions = st.fixed_dictionaries({}, optional={
    "rate-limit": st.integers(0, 10**9).map(str),
    "redirect": st.one_of(st.tuples(st.integers(1, 0xFFFF), u32).map(lambda t: f"{t[0]}:{t[1]}"),
                          st.tuples(st.integers(0x10000, U32), st.integers(0, 0xFFFF)).map(
                              lambda t: f"{t[0]}:{t[1]}"),
                          st.tuples(ipv4, st.integers(0, 0xFFFF)).map(lambda t: f"{t[0]}:{t[1]}"),
                          ipv4),
    "mark": st.integers(0, 63).map(str),
    "action": st.sampled_from(("sample", "terminal", "sample-terminal")),
    "community": _unique(u32.map(lambda c: f"{c >> 16}:{c & 0xFFFF}"), 3).map(list),
    "large-community": _unique(st.tuples(u32, u32, u32).map(large_community_text), 3).map(list),
})


@given(actions)
def test_flow_actions_text_gives_the_same_actions(then: dict[str, object]) -> None:
    parsed = fg.parse_actions(then)
    assert fg.parse_actions(fg.then_dict(parsed)) == parsed
    _, again = fg.split_flow_tokens(tokenize_line("match { destination 10.0.0.0/8; } "
                                                  + fg.actions_text(parsed)))
    assert fg.parse_actions(again) == parsed, fg.actions_text(parsed)
