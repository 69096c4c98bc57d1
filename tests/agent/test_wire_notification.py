"""NOTIFICATION (RFC 4271 4.5, 6; RFC 4486, 6608, 8538, 9003), KEEPALIVE and ROUTE-REFRESH (RFC 2918, 7313)."""

from __future__ import annotations

import pytest

from fleetbgp.wire.constants import CeaseSub, ErrCode, MsgType, describe_error
from fleetbgp.wire.errors import BGPError
from fleetbgp.wire.messages import MessageReader, Notification, RouteRefresh
from fleetbgp.wire.nlri import IPV4_UNICAST, IPV6_UNICAST, Family

MARKER = "ff" * 16


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def read_one(message: bytes) -> tuple[int, bytes]:
    [got] = list(MessageReader().feed(message))
    return got


# Every code/subcode the RFCs define, with the IANA registry's name.
EVERY_ERROR = {
    (1, 1): "Message Header Error/Connection Not Synchronized",
    (1, 2): "Message Header Error/Bad Message Length",
    (1, 3): "Message Header Error/Bad Message Type",
    (2, 0): "OPEN Message Error",
    (2, 1): "OPEN Message Error/Unsupported Version Number",
    (2, 2): "OPEN Message Error/Bad Peer AS",
    (2, 3): "OPEN Message Error/Bad BGP Identifier",
    (2, 4): "OPEN Message Error/Unsupported Optional Parameter",
    (2, 5): "OPEN Message Error/Authentication Failure (deprecated)",
    (2, 6): "OPEN Message Error/Unacceptable Hold Time",
    (2, 7): "OPEN Message Error/Unsupported Capability",
    (3, 0): "UPDATE Message Error",
    (3, 1): "UPDATE Message Error/Malformed Attribute List",
    (3, 2): "UPDATE Message Error/Unrecognized Well-known Attribute",
    (3, 3): "UPDATE Message Error/Missing Well-known Attribute",
    (3, 4): "UPDATE Message Error/Attribute Flags Error",
    (3, 5): "UPDATE Message Error/Attribute Length Error",
    (3, 6): "UPDATE Message Error/Invalid ORIGIN Attribute",
    (3, 7): "UPDATE Message Error/AS Routing Loop (deprecated)",
    (3, 8): "UPDATE Message Error/Invalid NEXT_HOP Attribute",
    (3, 9): "UPDATE Message Error/Optional Attribute Error",
    (3, 10): "UPDATE Message Error/Invalid Network Field",
    (3, 11): "UPDATE Message Error/Malformed AS_PATH",
    (4, 0): "Hold Timer Expired",
    (5, 0): "Finite State Machine Error",
    (5, 1): "Finite State Machine Error/Receive Unexpected Message in OpenSent State",
    (5, 2): "Finite State Machine Error/Receive Unexpected Message in OpenConfirm State",
    (5, 3): "Finite State Machine Error/Receive Unexpected Message in Established State",
    (6, 0): "Cease",
    (6, 1): "Cease/Maximum Number of Prefixes Reached",
    (6, 2): "Cease/Administrative Shutdown",
    (6, 3): "Cease/Peer De-configured",
    (6, 4): "Cease/Administrative Reset",
    (6, 5): "Cease/Connection Rejected",
    (6, 6): "Cease/Other Configuration Change",
    (6, 7): "Cease/Connection Collision Resolution",
    (6, 8): "Cease/Out of Resources",
    (6, 9): "Cease/Hard Reset",
    (6, 10): "Cease/BFD Down",
    (7, 1): "ROUTE-REFRESH Message Error/Invalid Message Length",
}


@pytest.mark.parametrize(("pair", "text"), EVERY_ERROR.items(), ids=[f"{c}/{s}" for c, s in EVERY_ERROR])
def test_every_notification_round_trips_and_is_described(pair: tuple[int, int], text: str) -> None:
    code, subcode = pair
    note = Notification(code, subcode, b"\x01\x02")
    msg = note.encode()
    assert msg == h(MARKER + "0017 03") + bytes((code, subcode)) + b"\x01\x02"
    assert read_one(msg) == (MsgType.NOTIFICATION, bytes((code, subcode)) + b"\x01\x02")
    assert Notification.decode(msg[19:]) == note
    assert describe_error(code, subcode) == text
    assert str(BGPError(code, subcode)).startswith(text)


def test_notification_without_data_is_21_bytes() -> None:
    assert Notification(ErrCode.HOLD_TIMER_EXPIRED, 0).encode() == h(MARKER + "0015 03 04 00")
    assert Notification.decode(h("0400")) == Notification(4, 0, b"")


def test_notification_body_shorter_than_2_is_an_error() -> None:
    for body in (b"", b"\x06"):
        with pytest.raises(BGPError) as info:
            Notification.decode(body)
        assert info.value.code == 1


def test_unknown_codes_are_described_not_crashed_on() -> None:
    assert describe_error(9, 9) == "unknown error 9/9"
    assert describe_error(6, 99) == "Cease/99"
    assert describe_error(4, 1) == "Hold Timer Expired/1"


def test_bgp_error_carries_the_notification_and_reason() -> None:
    err = BGPError(ErrCode.MESSAGE_HEADER, 2, b"\x10\x01", "message length 4097")
    assert (err.code, err.subcode, err.data, err.reason) == (1, 2, b"\x10\x01", "message length 4097")
    assert str(err) == "Message Header Error/Bad Message Length: message length 4097"
    assert BGPError(6, 2).reason == "Cease/Administrative Shutdown"


# ---- Administrative Shutdown / Reset communication (RFC 9003) -----------------------------------


def test_shutdown_with_a_message() -> None:
    note = Notification.shutdown("maintenance, back at 10:00")
    assert note.encode() == h(MARKER + "0030 03 06 02 1a") + b"maintenance, back at 10:00"
    assert Notification.decode(note.encode()[19:]).shutdown_message == "maintenance, back at 10:00"


def test_reset_with_a_message() -> None:
    note = Notification.shutdown("reloading", subcode=CeaseSub.ADMINISTRATIVE_RESET)
    assert (note.code, note.subcode, note.data) == (6, 4, b"\x09reloading")
    assert note.shutdown_message == "reloading"


def test_shutdown_without_a_message_has_no_data() -> None:
    assert Notification.shutdown().encode() == h(MARKER + "0015 03 06 02")
    assert Notification.shutdown().shutdown_message is None


def test_shutdown_message_is_cut_at_255_bytes() -> None:
    note = Notification.shutdown("a" * 300)
    assert note.data[0] == 255 and note.data[1:] == b"a" * 255


def test_shutdown_message_never_cuts_a_multibyte_character() -> None:
    note = Notification.shutdown("é" * 200)  # 2 bytes each: 400 bytes
    assert note.data[0] == 254 and note.data[1:].decode("utf-8") == "é" * 127
    note = Notification.shutdown("a" + "€" * 100)  # 1 + 3 * 100 bytes; 255 would split a euro sign
    assert note.data[0] == 253 and note.data[1:].decode("utf-8") == "a" + "€" * 84
    note = Notification.shutdown("🙂" * 70)  # 4 bytes each
    assert note.data[0] == 252 and note.shutdown_message == "🙂" * 63


def test_shutdown_message_as_received() -> None:
    assert Notification(6, 2, h("03") + "réb".encode()[:3]).shutdown_message == "ré"
    assert Notification(6, 2, h("05 6869")).shutdown_message is None  # length past the data
    assert Notification(6, 2, h("00")).shutdown_message == ""
    assert Notification(6, 3, h("02 6869")).shutdown_message is None  # not shutdown/reset
    assert Notification(6, 2, h("02 ff fe")).shutdown_message == "\ufffd\ufffd"  # bad UTF-8 is shown


# ---- ROUTE-REFRESH (RFC 2918, 7313) --------------------------------------------------------------


@pytest.mark.parametrize(("family", "wire"), [(IPV4_UNICAST, "0001 00 01"), (IPV6_UNICAST, "0002 00 01"),
                                              (Family(1, 133), "0001 00 85")])
def test_route_refresh_round_trip(family: Family, wire: str) -> None:
    msg = RouteRefresh(family).encode()
    assert msg == h(MARKER + "0017 05" + wire)
    assert read_one(msg) == (MsgType.ROUTE_REFRESH, h(wire))
    assert RouteRefresh.decode(h(wire)) == RouteRefresh(family)


def test_route_refresh_subtype() -> None:
    assert RouteRefresh(IPV4_UNICAST, 1).encode() == h(MARKER + "0017 05 0001 01 01")
    assert RouteRefresh.decode(h("0001 02 01")) == RouteRefresh(IPV4_UNICAST, 2)


@pytest.mark.parametrize("body", ["", "0001", "0001 00", "0001 00 01 00", "0001 00 01 0000 0000"])
def test_route_refresh_bad_length_is_7_1_with_the_whole_message(body: str) -> None:
    with pytest.raises(BGPError) as info:
        RouteRefresh.decode(h(body))
    err = info.value
    assert (err.code, err.subcode) == (7, 1)
    # RFC 7313 5: the data field carries the complete ROUTE-REFRESH message.
    assert err.data == h(MARKER) + (19 + len(h(body))).to_bytes(2, "big") + h("05" + body)


def test_hard_reset_carries_the_notification_rfc8538() -> None:
    """RFC 8538 3: Cease/Hard Reset (subcode 9); the data is the carried NOTIFICATION's code,
    subcode and data, which is read back, operator's message included."""
    inner = Notification.shutdown("maintenance")
    hard = Notification.hard_reset(inner)
    assert hard.encode() == h(MARKER + "0023 03 06 09 06 02 0b") + b"maintenance"
    [(_, body)] = list(MessageReader().feed(hard.encode()))
    got = Notification.decode(body)
    assert got.hard_reset_of == inner and got.shutdown_message == "maintenance"
    assert describe_error(got.code, got.subcode) == "Cease/Hard Reset"


@pytest.mark.parametrize("data", [b"", b"\x06"])
def test_hard_reset_too_short_to_carry_a_notification(data: bytes) -> None:
    note = Notification(ErrCode.CEASE, CeaseSub.HARD_RESET, data)
    assert note.hard_reset_of is None and note.shutdown_message is None


def test_only_a_hard_reset_carries_one() -> None:
    assert Notification(ErrCode.CEASE, CeaseSub.ADMINISTRATIVE_RESET, b"\x06\x02").hard_reset_of is None
    assert Notification(ErrCode.OPEN_MESSAGE, 9, b"\x06\x02").hard_reset_of is None
    # a Hard Reset carrying something other than a shutdown has no operator's message
    assert Notification.hard_reset(Notification(ErrCode.HOLD_TIMER_EXPIRED, 0)).shutdown_message is None
