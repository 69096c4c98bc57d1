"""Numbers from the RFCs, in one place."""

from __future__ import annotations

from enum import IntEnum

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE = 4096
MAX_EXTENDED_MESSAGE = 65535
BGP_VERSION = 4
AS_TRANS = 23456
BGP_PORT = 179


class MsgType(IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AttrCode(IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MED = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32


class AttrFlag:
    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class Origin(IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegType(IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class AFI(IntEnum):
    IPV4 = 1
    IPV6 = 2


class SAFI(IntEnum):
    UNICAST = 1
    MULTICAST = 2
    FLOWSPEC = 133
    FLOWSPEC_VPN = 134


class Capability(IntEnum):
    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_NEXT_HOP = 5  # RFC 8950 (ExaBGP's 'nexthop')
    EXTENDED_MESSAGE = 6
    GRACEFUL_RESTART = 64
    ASN4 = 65
    ADD_PATH = 69
    ENHANCED_ROUTE_REFRESH = 70
    FQDN = 73              # draft-walton-bgp-hostname-capability
    SOFTWARE_VERSION = 75  # draft-abraitis-bgp-version-capability
    ROUTE_REFRESH_CISCO = 128


OPT_PARAM_CAPABILITIES = 2

# Graceful restart capability: the Restart Flags (top 4 bits of the first two octets).
GR_RESTART_STATE = 0x8  # R, RFC 4724 3: the sender has restarted
GR_NOTIFICATION = 0x4   # N, RFC 8538 2: graceful restart also after a NOTIFICATION (not Hard Reset)


class ErrCode(IntEnum):
    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7


class HeaderSub(IntEnum):
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSub(IntEnum):
    UNSPECIFIC = 0
    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11


class UpdateSub(IntEnum):
    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSub(IntEnum):
    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSub(IntEnum):
    MAX_PREFIXES = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class RouteRefreshSub(IntEnum):
    INVALID_MESSAGE_LENGTH = 1


_SUBCODE_ENUMS: dict[int, type[IntEnum]] = {
    ErrCode.MESSAGE_HEADER: HeaderSub,
    ErrCode.OPEN_MESSAGE: OpenSub,
    ErrCode.UPDATE_MESSAGE: UpdateSub,
    ErrCode.FSM: FsmSub,
    ErrCode.CEASE: CeaseSub,
    ErrCode.ROUTE_REFRESH: RouteRefreshSub,
}

# The IANA "BGP Error (Notification) Codes" and "... Subcodes" registries, as operators read them.
_CODE_TEXT = {
    1: "Message Header Error", 2: "OPEN Message Error", 3: "UPDATE Message Error",
    4: "Hold Timer Expired", 5: "Finite State Machine Error", 6: "Cease",
    7: "ROUTE-REFRESH Message Error",
}
_SUBCODE_TEXT: dict[int, dict[int, str]] = {
    1: {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    2: {1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier",
        4: "Unsupported Optional Parameter", 5: "Authentication Failure (deprecated)",
        6: "Unacceptable Hold Time", 7: "Unsupported Capability", 11: "Role Mismatch"},
    3: {1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute", 4: "Attribute Flags Error", 5: "Attribute Length Error",
        6: "Invalid ORIGIN Attribute", 7: "AS Routing Loop (deprecated)",
        8: "Invalid NEXT_HOP Attribute", 9: "Optional Attribute Error", 10: "Invalid Network Field",
        11: "Malformed AS_PATH"},
    5: {1: "Receive Unexpected Message in OpenSent State",
        2: "Receive Unexpected Message in OpenConfirm State",
        3: "Receive Unexpected Message in Established State"},
    6: {1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown", 3: "Peer De-configured",
        4: "Administrative Reset", 5: "Connection Rejected", 6: "Other Configuration Change",
        7: "Connection Collision Resolution", 8: "Out of Resources", 9: "Hard Reset", 10: "BFD Down"},
    7: {1: "Invalid Message Length"},
}


def describe_error(code: int, subcode: int) -> str:
    """Human text for a NOTIFICATION code/subcode pair, e.g. 'Cease/Administrative Shutdown'.

    Subcode 0 ("Unspecific", RFC 4271 6) gives the code's name alone; an unassigned subcode is
    shown as a number."""
    major = _CODE_TEXT.get(code)
    if major is None:
        return f"unknown error {code}/{subcode}"
    if subcode == 0:
        return major
    minor = _SUBCODE_TEXT.get(code, {}).get(subcode, str(subcode))
    return f"{major}/{minor}"
