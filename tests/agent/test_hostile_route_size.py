"""Routes too large for one UPDATE (issue 13, hostile input).

Such a route is refused where it enters (API program, control socket, config file, health check),
with the limit of the neighbors it goes to: 4096 bytes, or 65535 where extended messages (RFC 8654)
are configured. One that slips through anyway (a 2-octet-AS peer, extended messages configured but
not negotiated) is dropped by the send path, which keeps sending the other routes. List attributes
parse in linear time and stop at what can fit in a message.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from control_fakes import Raw, replaying_program, sample_speaker, served
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from test_api_process import recorded, settings, wait_for

from fleetbgp.api.commands import CommandError, parse_command
from fleetbgp.config import ConfigError, parse_text
from fleetbgp.config.lexer import tokenize_line
from fleetbgp.config.model import Capabilities
from fleetbgp.grammar import route as route_mod
from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.prefix import prefix_to_nlri
from fleetbgp.grammar.route import parse_attributes, parse_route
from fleetbgp.rib import AdjRibOut
from fleetbgp.wire import fit
from fleetbgp.wire.attributes import Attributes, DecodeContext, EncodeContext
from fleetbgp.wire.constants import MsgType
from fleetbgp.wire.messages import MessageReader, decode_update
from fleetbgp.wire.nlri import IPV4_FLOWSPEC, IPV4_UNICAST, IPV6_UNICAST

PY = sys.executable

# 16,400 ASNs: 65,600 bytes of AS_PATH, more than any attribute (or message) can hold.
HUGE_PATH = "as-path [ " + "1 " * 16400 + "]"
# 1,100 ASNs: about 4,400 bytes, more than a 4096-byte message, well within an extended one.
MEDIUM_PATH = "as-path [ " + "1 " * 1100 + "]"
LARGE_5500 = "large-community [ " + " ".join(f"1:{i}:1" for i in range(5500)) + " ]"


def n(prefix: str) -> bytes:
    return prefix_to_nlri(prefix)[1]


def route_error(text: str) -> RouteError:
    with pytest.raises(RouteError) as info:
        parse_route(tokenize_line(text))
    return info.value


# -- the route grammar: bounded, linear --------------------------------------------------------------

def test_as_path_longer_than_any_message_is_refused_at_the_keyword() -> None:
    err = route_error(f"10.0.0.0/24 next-hop 10.0.0.1 {HUGE_PATH}")
    assert err.index == 3  # 'as-path'
    assert "too many" in err.message and "as-path" in err.message


def test_twenty_thousand_large_communities_are_refused_by_their_count() -> None:
    values = " ".join(f"65000:{i}:{i}" for i in range(20000))
    err = route_error(f"10.0.0.0/24 next-hop self med 5 large-community [ {values} ]")
    assert err.index == 5  # 'large-community'
    assert "too many" in err.message and "large-community" in err.message


@pytest.mark.parametrize(("keyword", "make", "count"), [
    ("community", lambda i: f"{i >> 16}:{i & 0xFFFF}", 16500),
    ("extended-community", lambda i: f"target:65000:{i}", 8200),
    ("large-community", lambda i: f"1:{i}:1", 5500),
])
def test_every_list_attribute_has_a_count_bound(keyword: str, make: Callable[[int], str], count: int) -> None:
    values = " ".join(make(i) for i in range(count))
    err = route_error(f"10.0.0.0/24 next-hop self {keyword} [ {values} ]")
    assert err.index == 3 and "too many" in err.message


def test_attributes_that_fit_alone_but_not_together_are_refused() -> None:
    comms = " ".join(f"{i >> 16}:{i & 0xFFFF}" for i in range(10000))
    large = " ".join(f"1:{i}:1" for i in range(3000))
    err = route_error(f"10.0.0.0/24 next-hop self community [ {comms} ] large-community [ {large} ]")
    assert "does not fit" in err.message and "65535" in err.message


def test_a_route_that_fits_an_extended_message_parses() -> None:
    fam, _nlri, attrs = parse_route(tokenize_line(f"10.0.0.0/24 next-hop self {MEDIUM_PATH}"))
    assert fam == IPV4_UNICAST and sum(len(asns) for _, asns in attrs.as_path) == 1100


def test_duplicates_are_dropped_in_order() -> None:
    values = [f"65000:{i % 300}" for i in range(500)]  # 300 distinct, then 200 repeats
    attrs = parse_attributes(tokenize_line("next-hop self community [ " + " ".join(values) + " ]"),
                             IPV4_UNICAST)
    assert attrs.communities == tuple((65000 << 16) | i for i in range(300))


class Counted:
    """A parsed value that counts how often it is compared: dedupe by list membership compares
    each new value with every kept one (quadratic), a dict hashes it once."""

    eq_calls = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        Counted.eq_calls += 1
        return isinstance(other, Counted) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)


def test_list_dedupe_is_linear() -> None:
    handler = route_mod._list_field("community", "communities", Counted, 4)
    toks = ["[", *(str(i) for i in range(3000)), "]"]
    Counted.eq_calls = 0
    fields: dict[str, Any] = {}
    assert handler(toks, 0, IPV4_UNICAST, fields) == len(toks)
    assert [c.text for c in fields["communities"]] == [str(i) for i in range(3000)]
    assert Counted.eq_calls < 3000


def test_long_attribute_texts_are_not_cached() -> None:
    # The parse caches hold up to 4096 entries each: of 1 MiB lines, that would be gigabytes.
    from fleetbgp.api import commands

    tail = "next-hop self as-path [ " + "4200000000 " * 1000 + "]"
    parse_command(f"announce route 10.0.0.0/24 {tail}")
    parse_command(f"neighbor 192.0.2.1 announce route 10.0.0.0/24 {tail}")
    assert not [k for k in commands._ATTR_CACHE if len(k[1]) > 10000]
    assert not [k for k in route_mod._CACHE if len(k[2]) > 1000]


# -- API programs ----------------------------------------------------------------------------------

def api_error(line: str) -> str:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    return info.value.message


def test_api_refuses_a_route_longer_than_any_message() -> None:
    assert "too many" in api_error(f"announce route 10.0.0.0/24 next-hop 10.0.0.1 {HUGE_PATH}")
    assert "too many" in api_error(f"announce route 10.0.0.0/24 next-hop 10.0.0.1 {LARGE_5500}")
    assert "too many" in api_error(f"neighbor 192.0.2.1 announce route 10.0.0.0/24 next-hop self {HUGE_PATH}")
    assert "too many" in api_error(f"announce attributes next-hop self {HUGE_PATH} nlri 10.0.0.0/24")


def test_api_megabyte_line_is_refused_by_count() -> None:
    values = " ".join(f"4200000000:{i}:4200000000" for i in range(40000))
    line = f"announce route 10.0.0.0/24 next-hop self large-community [ {values} ]"
    assert len(line) > 1_000_000
    assert "too many" in api_error(line)


def test_api_flow_rule_whose_attributes_cannot_fit_is_refused() -> None:
    line = ("announce flow route { match { destination 192.0.2.0/24; } then { discard; "
            f"{LARGE_5500}; }} }}")
    assert "does not fit" in api_error(line)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


def test_api_program_gets_an_error_and_keeps_working(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fleetbgp.api.manager import ApiManager
    from fleetbgp.daemon import Speaker

    commands = tmp_path / "commands.txt"
    commands.write_text("\n".join([
        f"announce route 10.0.0.0/24 next-hop self {HUGE_PATH}",
        f"announce route 10.0.1.0/24 next-hop self {MEDIUM_PATH}",        # 4096-byte neighbor too
        f"neighbor 127.100.0.5 announce route 10.0.2.0/24 next-hop self {MEDIUM_PATH}",  # extended
        "announce route 10.0.3.0/24 next-hop self med 7",
    ]) + "\n")
    record = tmp_path / "stdin.txt"
    script = replaying_program(tmp_path, commands, record)
    text = f"""
process prog {{ run {PY} {script}; encoder text; }}
neighbor 127.100.0.1 {{ router-id 192.0.2.2; local-address 127.100.0.2; connect 9; local-as 65001;
  peer-as 65000; family {{ ipv4 unicast; }} api {{ processes [ prog ]; }} }}
neighbor 127.100.0.5 {{ router-id 192.0.2.6; local-address 127.100.0.6; connect 9; local-as 65001;
  peer-as 65002; family {{ ipv4 unicast; }} capability {{ extended-message; }} api {{ processes [ prog ]; }} }}
"""
    speaker = Speaker(parse_text(text, str(tmp_path / "f.conf")), settings())  # type: ignore[arg-type]
    api = ApiManager(speaker, speaker.config)
    speaker.api = api

    async def go() -> None:
        await speaker.start()
        await api.start()
        try:
            got = await wait_for(lambda: len(recorded(record)) >= 4 and recorded(record), what="acks")
            assert got == ["error", "error", "done", "done"]
            small = speaker.peers["127.100.0.1"].rib_out.routes.get(IPV4_UNICAST, {})
            extended = speaker.peers["127.100.0.5"].rib_out.routes.get(IPV4_UNICAST, {})
            assert set(small) == {n("10.0.3.0/24")}
            assert set(extended) == {n("10.0.2.0/24"), n("10.0.3.0/24")}
            status = api.status()[0]
            assert status["state"] == "running" and status["errors"] == 2
        finally:
            await api.stop()
            await speaker.stop()

    with caplog.at_level(logging.WARNING, logger="fleetbgp.api"):
        run(go)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "line 1:" in messages and "too many" in messages
    assert "line 2:" in messages and "4096" in messages and "extended-message" in messages


# -- the control socket ----------------------------------------------------------------------------

def test_control_refuses_oversized_routes_and_changes_nothing() -> None:
    speaker = sample_speaker()
    for peer in speaker.peers.values():
        peer.neighbor.capabilities = Capabilities()
    with served(speaker) as (_server, path, _lt):
        conn = Raw(path)
        try:
            reply = conn.ask("announce", {"route": f"10.0.0.0/24 next-hop self {HUGE_PATH}"})
            assert reply["ok"] is False and reply["error"]["code"] == "invalid_route"
            assert "too many" in reply["error"]["message"]
            reply = conn.ask("announce", {"prefix": "10.0.0.0/24", "next_hop": "self",
                                          "large_community": [f"1:{i}:1" for i in range(5500)]})
            assert reply["ok"] is False and reply["error"]["code"] == "invalid_route"
            # Within an extended message, but no neighbor offers extended messages.
            routes = ["10.0.9.0/24 next-hop self", f"10.0.1.0/24 next-hop self {MEDIUM_PATH}"]
            reply = conn.ask("announce", {"routes": routes})
            assert reply["ok"] is False and reply["error"]["code"] == "invalid_route"
            assert "4096" in reply["error"]["message"] and "extended-message" in reply["error"]["message"]
            assert not [c for c in speaker.calls if c[0] == "announce"], "nothing announced"
            # The connection is still good, and a neighbor with extended messages takes the route.
            speaker.peers["192.0.2.1"].neighbor.capabilities = Capabilities(extended_message=True)
            reply = conn.ask("announce", {"route": routes[1], "neighbors": ["192.0.2.1"]})
            assert reply["ok"] is True and reply["result"]["changed"] == 1
        finally:
            conn.close()


# -- the config file -------------------------------------------------------------------------------

def neighbor(body: str, extra: str = "") -> str:
    return ("neighbor 192.0.2.1 {\n  local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
            f"  {extra}\n  static {{\n    {body}\n  }}\n}}\n")


def config_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "r.conf")
    return [str(d) for d in info.value.diagnostics]


def test_config_route_longer_than_any_message_has_a_location() -> None:
    [msg] = config_errors(neighbor(f"route 10.0.0.0/24 next-hop self {HUGE_PATH};"))
    assert msg.startswith("r.conf:5:37: ") and "too many" in msg, msg


def test_config_route_needs_extended_message_beyond_4096_bytes() -> None:
    body = f"route 10.0.0.0/24 next-hop self {MEDIUM_PATH};\n    route 10.0.1.0/24 next-hop self;"
    [msg] = config_errors(neighbor(body))
    assert msg.startswith("r.conf:5:11: "), msg
    assert "4096" in msg and "extended-message" in msg
    config = parse_text(neighbor(body, "capability { extended-message; }"), "r.conf")
    assert len(config.neighbors[0].static_routes[IPV4_UNICAST]) == 2


def test_config_route_block_form_and_template_routes_are_checked() -> None:
    block = "route 10.0.0.0/24 {\n      next-hop self;\n      " + MEDIUM_PATH + ";\n    }"
    [msg] = config_errors(neighbor(block))
    assert msg.startswith("r.conf:5:5: ") and "4096" in msg, msg
    text = ("template { neighbor big {\n  static {\n    route 10.0.0.0/24 next-hop self " + MEDIUM_PATH
            + ";\n  }\n} }\n"
            "neighbor 192.0.2.1 { inherit big; local-as 65001; peer-as 65000; router-id 192.0.2.2; }\n"
            "neighbor 192.0.2.3 { inherit big; local-as 65001; peer-as 65000; router-id 192.0.2.2;\n"
            "  capability { extended-message; } }\n")
    [msg] = config_errors(text)
    assert msg.startswith("r.conf:3:11: ") and "192.0.2.1" in msg, msg


def test_config_healthcheck_whose_route_cannot_fit_is_refused() -> None:
    comms = " ".join(f"{i >> 16}:{i & 0xFFFF}" for i in range(1100))
    text = neighbor("") + (
        "healthcheck web {\n  ip 100.10.0.100/32;\n  check tcp 127.0.0.1:80;\n"
        f"  community [ {comms} ];\n}}\n")
    [msg] = config_errors(text)
    assert msg.startswith("r.conf:9:6: ") and "healthcheck web" in msg and "4096" in msg, msg


# -- the send path ---------------------------------------------------------------------------------

CTX = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1",
                    next_hop_self_v6="2001:db8::1")
SMALL = Attributes.make(next_hop="self", med=10)
# Built directly: what the route parser refuses, in case something else ever makes one.
HUGE = Attributes.make(next_hop="self", as_path=((2, (1,) * 16400),))
MEDIUM = Attributes.make(next_hop="self", as_path=((2, (1,) * 1100),))


def announced(messages: list[bytes], ctx: EncodeContext = CTX) -> tuple[set[bytes], set[bytes]]:
    """(announced, withdrawn) NLRI of a list of UPDATE messages."""
    reader = MessageReader(ctx.max_size)
    got: set[bytes] = set()
    gone: set[bytes] = set()
    for msg in messages:
        assert len(msg) <= ctx.max_size
        for msg_type, body in reader.feed(msg):
            assert msg_type == MsgType.UPDATE
            upd = decode_update(body, DecodeContext(ibgp=False), [IPV4_UNICAST, IPV6_UNICAST])
            for _attrs, items in upd.announce.values():
                got.update(items)
            for items in upd.withdraw.values():
                gone.update(items)
    return got, gone


def test_flush_drops_an_oversized_route_and_sends_the_others(caplog: pytest.LogCaptureFixture) -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.0.0/24"), SMALL)
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), HUGE)
    rib.put(IPV4_UNICAST, n("10.0.2.0/24"), SMALL)
    rib.put(IPV6_UNICAST, n("2001:db8::/32"), HUGE)
    rib.put(IPV6_UNICAST, n("2001:db8:1::/48"), SMALL)
    with caplog.at_level(logging.ERROR, logger="fleetbgp.rib"):
        got, gone = announced(list(rib.flush(CTX, [IPV4_UNICAST, IPV6_UNICAST])))
    assert got == {n("10.0.0.0/24"), n("10.0.2.0/24"), n("2001:db8:1::/48")}
    # The peer may hold an older version of a dropped route: it is withdrawn, and forgotten here.
    assert gone == {n("10.0.1.0/24"), n("2001:db8::/32")}
    assert n("10.0.1.0/24") not in rib.routes[IPV4_UNICAST]
    assert n("2001:db8::/32") not in rib.routes[IPV6_UNICAST]
    assert not rib.pending
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "10.0.1.0/24" in text and "2001:db8::/32" in text and "dropped" in text


def test_flush_limit_is_the_session_message_size() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), MEDIUM)
    rib.put(IPV4_UNICAST, n("10.0.2.0/24"), SMALL)
    extended = EncodeContext(local_as=65001, peer_as=65002, next_hop_self_v4="192.0.2.1", max_size=65535)
    rib.mark_all([IPV4_UNICAST])
    got, _ = announced(list(rib.flush(extended, [IPV4_UNICAST])), extended)
    assert got == {n("10.0.1.0/24"), n("10.0.2.0/24")}
    rib.mark_all([IPV4_UNICAST], fresh=True)
    got, _ = announced(list(rib.flush(CTX, [IPV4_UNICAST])))
    assert got == {n("10.0.2.0/24")}


def test_flush_drops_only_the_flow_rule_that_does_not_fit() -> None:
    # FlowSpec NLRI may be up to 4095 bytes: with its attributes, such a rule cannot go in a
    # 4096-byte message, but the rules sharing its attributes still can.
    discard = Attributes.make(ext_communities=(0x8006000000000000,))
    big = bytes((0xF0 | 4090 >> 8, 4090 & 0xFF)) + b"\x01\x18\xc0\x00\x02" + bytes(4085)
    small = bytes((5,)) + b"\x81\x18\xc0\x00\x02"
    rib = AdjRibOut()
    rib.put(IPV4_FLOWSPEC, big, discard)
    rib.put(IPV4_FLOWSPEC, small, discard)
    messages = list(rib.flush(CTX, [IPV4_FLOWSPEC]))
    assert messages and all(len(m) <= 4096 for m in messages)
    assert any(small in m for m in messages)
    assert big not in rib.routes[IPV4_FLOWSPEC] and small in rib.routes[IPV4_FLOWSPEC]


def test_flush_survives_a_2_octet_peer_whose_as4_path_overflows() -> None:
    # 4-octet ASNs to a peer without the 4-octet capability: AS_PATH plus AS4_PATH is 1.5 times the
    # path, too much for the message even though the route fits a 4-octet peer.
    path = Attributes.make(next_hop="self", as_path=((2, (4200000000,) * 11000),))
    ctx = EncodeContext(local_as=65001, peer_as=65002, asn4=False, next_hop_self_v4="192.0.2.1",
                        max_size=65535)
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), path)
    rib.put(IPV4_UNICAST, n("10.0.2.0/24"), SMALL)
    reader = MessageReader(65535)
    messages = list(rib.flush(ctx, [IPV4_UNICAST]))
    bodies = [body for m in messages for _t, body in reader.feed(m)]
    got = set()
    for body in bodies:
        upd = decode_update(body, DecodeContext(asn4=False, ibgp=False), [IPV4_UNICAST])
        for _attrs, items in upd.announce.values():
            got.update(items)
    assert got == {n("10.0.2.0/24")}


def test_flush_withdraws_a_route_replaced_by_one_too_large() -> None:
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), SMALL)
    got, _ = announced(list(rib.flush(CTX, [IPV4_UNICAST])))
    assert got == {n("10.0.1.0/24")}
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), HUGE)
    got, gone = announced(list(rib.flush(CTX, [IPV4_UNICAST])))
    assert got == set() and gone == {n("10.0.1.0/24")}


def test_flush_survives_a_bug_in_encoding_one_attribute_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetbgp import rib as rib_mod

    real = rib_mod.encode_attributes

    def broken(attrs: Attributes, ctx: EncodeContext, *, ipv4_next_hop: bool) -> bytes:
        if attrs is MEDIUM:
            raise RuntimeError("a bug")
        return real(attrs, ctx, ipv4_next_hop=ipv4_next_hop)

    monkeypatch.setattr(rib_mod, "encode_attributes", broken)
    rib = AdjRibOut()
    rib.put(IPV4_UNICAST, n("10.0.1.0/24"), MEDIUM)
    rib.put(IPV4_UNICAST, n("10.0.2.0/24"), SMALL)
    got, gone = announced(list(rib.flush(CTX, [IPV4_UNICAST])))
    assert got == {n("10.0.2.0/24")} and gone == {n("10.0.1.0/24")}


# -- the bound that spares the encode --------------------------------------------------------------

_asns = st.integers(min_value=1, max_value=2**32 - 1)


@hypothesis_settings(max_examples=300, deadline=None)
@given(path=st.lists(st.tuples(st.sampled_from([1, 2]), st.lists(_asns, min_size=1, max_size=600).map(tuple)),
                     max_size=3).map(tuple),
       communities=st.lists(st.integers(0, 2**32 - 1), max_size=300, unique=True).map(tuple),
       large=st.lists(st.tuples(_asns, _asns, _asns), max_size=200, unique=True).map(tuple),
       ext=st.lists(st.integers(0, 2**64 - 1), max_size=200, unique=True).map(tuple),
       med=st.none() | st.integers(0, 2**32 - 1), v6=st.booleans())
def test_the_size_bound_is_never_below_the_encoded_size(path, communities, large, ext, med, v6) -> None:
    # fit.exceeds skips the encode when the bound fits: the bound must never be below the truth.
    fam, nlri = prefix_to_nlri("2001:db8::/32" if v6 else "10.0.0.0/8")
    attrs = Attributes.make(as_path=path, next_hop="self", med=med, communities=communities,
                            large_communities=large, ext_communities=ext, aggregator=(65001, "192.0.2.1"),
                            atomic_aggregate=True)
    assert fit._upper_bound(attrs) + len(nlri) >= fit.update_size(fam, nlri, attrs)
