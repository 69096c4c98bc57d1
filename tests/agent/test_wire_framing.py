"""Message header framing (RFC 4271 4.1, 6.1) and the extended message size (RFC 8654).

Bytes in, bytes out: every vector is written out in hex from the RFC's field layout.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetbgp.wire.constants import MAX_EXTENDED_MESSAGE, MAX_MESSAGE, MsgType
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import KEEPALIVE, MessageReader, frame

MARKER = "ff" * 16


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def read_all(reader: MessageReader, data: bytes) -> list[tuple[int, bytes]]:
    return list(reader.feed(data))


def header_error(data: bytes, max_size: int = MAX_MESSAGE) -> BGPError:
    with pytest.raises(BGPError) as info:
        read_all(MessageReader(max_size), data)
    return info.value


# ---- vectors ------------------------------------------------------------------------------------


def test_keepalive_is_exactly_the_19_byte_header() -> None:
    assert h(MARKER + "0013 04") == KEEPALIVE
    assert read_all(MessageReader(), KEEPALIVE) == [(MsgType.KEEPALIVE, b"")]


def test_frame_writes_marker_length_type() -> None:
    assert frame(MsgType.UPDATE, h("0000 0000")) == h(MARKER + "0017 02 0000 0000")


def test_several_messages_in_one_read() -> None:
    eor = h(MARKER + "0017 02 0000 0000")
    got = read_all(MessageReader(), KEEPALIVE + eor + KEEPALIVE)
    assert got == [(4, b""), (2, h("00000000")), (4, b"")]


def test_partial_message_waits_for_the_rest() -> None:
    reader = MessageReader()
    eor = h(MARKER + "0017 02 0000 0000")
    assert read_all(reader, eor[:5]) == []
    assert read_all(reader, eor[5:20]) == []
    assert read_all(reader, eor[20:]) == [(2, h("00000000"))]
    assert read_all(reader, b"") == []


# ---- header errors (RFC 4271 6.1) --------------------------------------------------------------


def test_marker_not_all_ones_is_connection_not_synchronized() -> None:
    err = header_error(h("00" * 16 + "0013 04"))
    assert (err.code, err.subcode, err.data) == (1, 1, b"")
    err = header_error(h("ff" * 15 + "fe" + "0013 04"))
    assert (err.code, err.subcode) == (1, 1)


@pytest.mark.parametrize("length", [0, 1, 18])
def test_length_below_header_is_bad_length_with_the_length_as_data(length: int) -> None:
    err = header_error(h(MARKER) + length.to_bytes(2, "big") + b"\x04")
    assert (err.code, err.subcode, err.data) == (1, 2, length.to_bytes(2, "big"))


def test_length_above_4096_is_bad_length_before_negotiation() -> None:
    err = header_error(h(MARKER + "1001 02"))
    assert (err.code, err.subcode, err.data) == (1, 2, h("1001"))


def test_length_4096_is_accepted() -> None:
    body = h("0000 0000") + b"\x00" * (4096 - 23)  # a (strange) UPDATE of exactly 4096 bytes
    msg = frame(MsgType.UPDATE, body)
    assert len(msg) == 4096
    assert read_all(MessageReader(), msg) == [(2, body)]


@pytest.mark.parametrize("msg_type", [0, 6, 7, 128, 255])
def test_unknown_type_is_bad_message_type_with_the_type_as_data(msg_type: int) -> None:
    err = header_error(h(MARKER + "0013") + bytes((msg_type,)))
    assert (err.code, err.subcode, err.data) == (1, 3, bytes((msg_type,)))


@pytest.mark.parametrize(("msg_type", "minimum"), [(1, 29), (2, 23), (3, 21), (4, 19), (5, 23)])
def test_per_type_minimum_length(msg_type: int, minimum: int) -> None:
    if minimum > 19:
        short = minimum - 1
        err = header_error(h(MARKER) + short.to_bytes(2, "big") + bytes((msg_type,)) + b"\x00" * (short - 19))
        assert (err.code, err.subcode, err.data) == (1, 2, short.to_bytes(2, "big"))
    ok = h(MARKER) + minimum.to_bytes(2, "big") + bytes((msg_type,)) + b"\x00" * (minimum - 19)
    # Only the framing is checked here: the body is not decoded.
    assert read_all(MessageReader(), ok) == [(msg_type, b"\x00" * (minimum - 19))]


def test_keepalive_longer_than_19_is_bad_length() -> None:
    err = header_error(h(MARKER + "0014 04 00"))
    assert (err.code, err.subcode, err.data) == (1, 2, h("0014"))


def test_header_error_is_reported_before_the_body_arrives() -> None:
    # The length field alone is enough to know the message is bad: no waiting for 4097 bytes.
    err = header_error(h(MARKER + "1001 02"))
    assert err.subcode == 2


def test_messages_before_a_bad_one_are_delivered() -> None:
    reader = MessageReader()
    gen = reader.feed(KEEPALIVE + h(MARKER + "0013 09"))
    assert next(gen) == (4, b"")
    with pytest.raises(BGPError) as info:
        next(gen)
    assert info.value.subcode == 3


# ---- extended messages (RFC 8654) --------------------------------------------------------------


def test_extended_update_accepted_only_with_the_larger_limit() -> None:
    body = h("0000 0000") + b"\x00" * 6000
    msg = frame(MsgType.UPDATE, body)
    err = header_error(msg)
    assert (err.code, err.subcode, err.data) == (1, 2, len(msg).to_bytes(2, "big"))
    assert read_all(MessageReader(MAX_EXTENDED_MESSAGE), msg) == [(2, body)]


def test_extended_max_is_65535() -> None:
    body = b"\x00" * (65535 - 19)
    msg = frame(MsgType.UPDATE, body)
    assert read_all(MessageReader(MAX_EXTENDED_MESSAGE), msg) == [(2, body)]


def test_open_never_longer_than_4096_even_after_negotiation() -> None:
    msg = frame(MsgType.OPEN, b"\x04" + b"\x00" * 5000)
    err = header_error(msg, MAX_EXTENDED_MESSAGE)
    assert (err.code, err.subcode, err.data) == (1, 2, len(msg).to_bytes(2, "big"))


def test_keepalive_and_notification_with_the_extended_limit() -> None:
    note = frame(MsgType.NOTIFICATION, h("0602") + b"x" * 5000)
    assert read_all(MessageReader(MAX_EXTENDED_MESSAGE), KEEPALIVE + note) == [
        (4, b""), (3, h("0602") + b"x" * 5000)]


def test_max_size_change_applies_to_the_next_message_of_the_same_read() -> None:
    big = frame(MsgType.UPDATE, b"\x00" * 5000)
    reader = MessageReader()
    gen = reader.feed(KEEPALIVE + big)
    assert next(gen) == (4, b"")
    reader.max_size = MAX_EXTENDED_MESSAGE  # what fsm.Connection does when the OPEN is read
    assert next(gen) == (2, b"\x00" * 5000)


# ---- arbitrary chunking ------------------------------------------------------------------------

_STREAM = [
    KEEPALIVE,
    h(MARKER + "0017 02 0000 0000"),
    h(MARKER + "001d 02 0000 0006 800f 03 0002 01"),
    frame(MsgType.NOTIFICATION, h("0602 03") + b"bye"),
    h(MARKER + "0017 05 0001 00 01"),
    frame(MsgType.UPDATE, h("0000 0000") + b"\x00" * 3000),
]


@given(
    order=st.lists(st.sampled_from(range(len(_STREAM))), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=40000), max_size=30),
)
def test_any_chunking_yields_the_same_messages(order: list[int], cuts: list[int]) -> None:
    stream = b"".join(_STREAM[i] for i in order)
    expected = read_all(MessageReader(), stream)
    assert len(expected) == len(order)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = MessageReader()
    got: list[tuple[int, bytes]] = []
    for a, b in itertools.pairwise(points):
        got += read_all(reader, stream[a:b])
    assert got == expected


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_garbage_only_ever_raises_bgp_error(data: bytes, step: int) -> None:
    reader = MessageReader()
    try:
        for i in range(0, len(data), step):
            read_all(reader, data[i:i + step])
    except BGPError as err:
        assert err.code == 1
