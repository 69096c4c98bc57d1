"""BGP messages: framing, OPEN with capabilities, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .attributes import (
    Attributes,
    DecodeContext,
    EncodeContext,
    RouteTooLarge,
    _attr,
    decode_attributes,
    encode_attributes,
    resolve_next_hop,
)
from .constants import (
    AFI,
    AS_TRANS,
    BGP_VERSION,
    GR_NOTIFICATION,
    GR_RESTART_STATE,
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE,
    OPT_PARAM_CAPABILITIES,
    SAFI,
    AttrCode,
    AttrFlag,
    Capability,
    CeaseSub,
    ErrCode,
    HeaderSub,
    MsgType,
    OpenSub,
    RouteRefreshSub,
    UpdateSub,
)
from .errors import BGPError
from .nlri import IPV4_UNICAST, Family, family_name, split_nlri, supported_family

KEEPALIVE = MARKER + struct.pack("!HB", HEADER_LEN, MsgType.KEEPALIVE)

# Keyed by plain int: the type byte off the wire may be no MsgType at all.
_MIN_LEN: dict[int, int] = {MsgType.OPEN: 29, MsgType.UPDATE: 23, MsgType.NOTIFICATION: 21,
                            MsgType.KEEPALIVE: 19, MsgType.ROUTE_REFRESH: 23}


def frame(msg_type: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), msg_type) + body


class MessageReader:
    """Chops a TCP byte stream into (type, body) messages, checking the header (RFC 4271 6.1)."""

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        pos = 0
        try:
            while len(buf) - pos >= HEADER_LEN:
                if buf[pos:pos + 16] != MARKER:
                    raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.CONNECTION_NOT_SYNCHRONIZED,
                                   reason="marker is not all ones")
                length = (buf[pos + 16] << 8) | buf[pos + 17]
                msg_type = buf[pos + 18]
                if length < HEADER_LEN or length > self.max_size:
                    raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH,
                                   struct.pack("!H", length), f"message length {length}")
                minimum = _MIN_LEN.get(msg_type)
                if minimum is None:
                    raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_TYPE,
                                   bytes((msg_type,)), f"message type {msg_type}")
                if length < minimum or (msg_type == MsgType.KEEPALIVE and length != HEADER_LEN) or (
                        msg_type == MsgType.OPEN and length > MAX_MESSAGE):
                    raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH,
                                   struct.pack("!H", length),
                                   f"{MsgType(msg_type).name} of length {length}")
                if len(buf) - pos < length:
                    break
                yield msg_type, bytes(buf[pos + HEADER_LEN:pos + length])
                pos += length
        finally:
            del buf[:pos]


# ---------------------------------------------------------------------------------------------
# OPEN


@dataclass(slots=True)
class Capabilities:
    """What one side offers in its OPEN."""

    families: list[Family] = field(default_factory=list)
    asn4: int | None = None
    route_refresh: bool = False
    enhanced_route_refresh: bool = False
    extended_message: bool = False
    graceful_restart: int | None = None  # restart time in seconds, None = not offered
    gr_restarting: bool = False  # Restart State (R)
    gr_notification: bool = False  # RFC 8538 Notification (N): GR also after a NOTIFICATION
    gr_families: dict[Family, bool] = field(default_factory=dict)  # family -> forwarding preserved
    fqdn: tuple[str, str] | None = None  # (host name, domain name)
    software_version: str | None = None
    # RFC 8950 extended next hop: (NLRI family, next hop AFI) pairs, e.g. (ipv4 unicast, 2).
    next_hops: list[tuple[Family, int]] = field(default_factory=list)
    # ADD-PATH (RFC 7911): family -> 1 receive, 2 send, 3 both; in the order offered.
    add_path: dict[Family, int] = field(default_factory=dict)
    unknown: list[tuple[int, bytes]] = field(default_factory=list)

    def encode(self) -> bytes:
        caps = bytearray()

        def cap(code: int, value: bytes = b"") -> None:
            caps.extend(bytes((code, len(value))) + value)

        for fam in self.families:
            cap(Capability.MULTIPROTOCOL, struct.pack("!HBB", fam.afi, 0, fam.safi))
        if self.next_hops:
            # One capability with every tuple (as ExaBGP and BIRD send it): NLRI AFI, NLRI SAFI
            # (two octets), next hop AFI.
            cap(Capability.EXTENDED_NEXT_HOP,
                b"".join(struct.pack("!HHH", fam.afi, fam.safi, nh_afi) for fam, nh_afi in self.next_hops))
        if self.route_refresh:
            cap(Capability.ROUTE_REFRESH)
        if self.enhanced_route_refresh:
            cap(Capability.ENHANCED_ROUTE_REFRESH)
        if self.extended_message:
            cap(Capability.EXTENDED_MESSAGE)
        if self.graceful_restart is not None:
            # Restart Flags, the top 4 bits: R (RFC 4724 3) and N (RFC 8538 2).
            flags = (GR_RESTART_STATE if self.gr_restarting else 0) | \
                (GR_NOTIFICATION if self.gr_notification else 0)
            value = struct.pack("!H", (flags << 12) | (self.graceful_restart & 0xFFF))
            for fam, fwd in self.gr_families.items():
                value += struct.pack("!HBB", fam.afi, fam.safi, 0x80 if fwd else 0)
            cap(Capability.GRACEFUL_RESTART, value)
        if self.asn4 is not None:
            cap(Capability.ASN4, struct.pack("!I", self.asn4))
        if any(self.add_path.values()):
            # One capability for every family, as ExaBGP sends it; a family set to 0 is left out.
            cap(Capability.ADD_PATH, b"".join(struct.pack("!HBB", fam.afi, fam.safi, mode)
                                              for fam, mode in self.add_path.items() if mode))
        if self.fqdn is not None:
            host, domain = (part.encode() for part in self.fqdn)
            cap(Capability.FQDN, bytes((len(host),)) + host + bytes((len(domain),)) + domain)
        if self.software_version is not None:
            version = self.software_version.encode()
            cap(Capability.SOFTWARE_VERSION, bytes((len(version),)) + version)
        for code, value in self.unknown:
            cap(code, value)
        return bytes(caps)

    @classmethod
    def decode(cls, data: bytes) -> Capabilities:
        caps = cls()
        pos = 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSPECIFIC, reason="capability truncated")
            code, length = data[pos], data[pos + 1]
            value = data[pos + 2:pos + 2 + length]
            if len(value) != length:
                raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSPECIFIC,
                               reason=f"capability {code} overruns its parameter")
            pos += 2 + length
            if code == Capability.MULTIPROTOCOL and length == 4:
                afi, _reserved, safi = struct.unpack("!HBB", value)
                fam = Family(afi, safi)
                if fam not in caps.families:
                    caps.families.append(fam)
            elif code == Capability.EXTENDED_NEXT_HOP and length and length % 6 == 0:
                for i in range(0, length, 6):
                    afi, safi, nh_afi = struct.unpack("!HHH", value[i:i + 6])
                    # A SAFI above 255 names no family we know: such a tuple is kept out.
                    entry = (Family(afi, safi), nh_afi)
                    if safi <= 0xFF and entry not in caps.next_hops:
                        caps.next_hops.append(entry)
            elif code in (Capability.ROUTE_REFRESH, Capability.ROUTE_REFRESH_CISCO):
                caps.route_refresh = True
            elif code == Capability.ENHANCED_ROUTE_REFRESH:
                caps.enhanced_route_refresh = True
            elif code == Capability.EXTENDED_MESSAGE:
                caps.extended_message = True
            elif code == Capability.ASN4 and length == 4:
                caps.asn4 = struct.unpack("!I", value)[0]
            elif code == Capability.GRACEFUL_RESTART and length >= 2 and (length - 2) % 4 == 0:
                head = struct.unpack("!H", value[:2])[0]
                caps.graceful_restart = head & 0xFFF
                caps.gr_restarting = bool(head >> 12 & GR_RESTART_STATE)
                caps.gr_notification = bool(head >> 12 & GR_NOTIFICATION)
                for i in range(2, length, 4):
                    afi, safi, flags = struct.unpack("!HBB", value[i:i + 4])
                    caps.gr_families[Family(afi, safi)] = bool(flags & 0x80)
            elif code == Capability.ADD_PATH and length % 4 == 0:
                # Several capabilities are merged, the last word on a family winning (RFC 7911 4
                # has one capability; some speakers send one per family).
                for i in range(0, length, 4):
                    afi, safi, mode = struct.unpack("!HBB", value[i:i + 4])
                    caps.add_path[Family(afi, safi)] = mode
            elif code == Capability.FQDN and _fqdn(value) is not None:
                caps.fqdn = _fqdn(value)
            elif code == Capability.SOFTWARE_VERSION and length >= 1 and value[0] == length - 1:
                caps.software_version = bytes(value[1:]).decode("utf-8", "replace")
            else:
                caps.unknown.append((code, bytes(value)))
        return caps


def _fqdn(value: bytes) -> tuple[str, str] | None:
    """The hostname capability's value: length-prefixed host and domain names, or None."""
    if not value or len(value) < 1 + value[0] + 1:
        return None
    host_end = 1 + value[0]
    domain_len = value[host_end]
    if host_end + 1 + domain_len != len(value):
        return None
    return (bytes(value[1:host_end]).decode("utf-8", "replace"),
            bytes(value[host_end + 1:]).decode("utf-8", "replace"))


@dataclass(slots=True)
class Open:
    asn: int  # the real AS number (from the 4-octet capability when present)
    hold_time: int
    router_id: str
    capabilities: Capabilities
    version: int = BGP_VERSION
    wire_asn: int | None = None  # the 2-octet 'My Autonomous System' field as received

    def encode(self) -> bytes:
        caps = self.capabilities.encode()
        # All capabilities in one Capabilities parameter (as BIRD does). The Optional Parameters
        # Length is one octet, so more than 253 bytes of capabilities would need RFC 9072's
        # extended parameters, which nothing we offer comes near.
        if len(caps) > 253:
            raise ValueError(f"{len(caps)} bytes of capabilities do not fit in an OPEN")
        params = bytes((OPT_PARAM_CAPABILITIES, len(caps))) + caps if caps else b""
        my_as = self.asn if self.asn <= 0xFFFF else AS_TRANS
        body = struct.pack("!BHH4sB", self.version, my_as, self.hold_time,
                           ipaddress.IPv4Address(self.router_id).packed, len(params)) + params
        return frame(MsgType.OPEN, body)

    @classmethod
    def decode(cls, body: bytes) -> Open:
        """Raises only BGPError, whatever the bytes."""
        try:
            return cls._decode(body)
        except BGPError:
            raise
        except (IndexError, ValueError, struct.error) as exc:
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSPECIFIC,
                           reason=f"malformed OPEN: {exc}") from None

    @classmethod
    def _decode(cls, body: bytes) -> Open:
        if len(body) < 10:
            raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH,
                           struct.pack("!H", len(body) + HEADER_LEN), "OPEN too short")
        version = body[0]
        if version != BGP_VERSION:
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSUPPORTED_VERSION,
                           struct.pack("!H", BGP_VERSION), f"peer speaks BGP version {version}")
        my_as, hold_time, rid, plen = struct.unpack("!HH4sB", body[1:10])
        params = body[10:]
        if len(params) != plen:
            raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH,
                           struct.pack("!H", len(body) + HEADER_LEN),
                           f"optional parameters length {plen} but {len(params)} bytes follow")
        if hold_time in (1, 2):
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNACCEPTABLE_HOLD_TIME,
                           reason=f"hold time {hold_time}")
        router_id = str(ipaddress.IPv4Address(rid))
        if rid == b"\x00\x00\x00\x00":
            raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.BAD_BGP_IDENTIFIER,
                           reason="BGP identifier 0.0.0.0")
        cap_bytes = b""
        pos = 0
        while pos < len(params):
            if pos + 2 > len(params):
                raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSPECIFIC, reason="parameter truncated")
            ptype, length = params[pos], params[pos + 1]
            value = params[pos + 2:pos + 2 + length]
            if len(value) != length:
                raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSPECIFIC,
                               reason="optional parameter overruns the OPEN")
            if ptype != OPT_PARAM_CAPABILITIES:
                raise BGPError(ErrCode.OPEN_MESSAGE, OpenSub.UNSUPPORTED_OPTIONAL_PARAMETER,
                               reason=f"optional parameter type {ptype}")
            cap_bytes += value
            pos += 2 + length
        caps = Capabilities.decode(cap_bytes)
        asn = caps.asn4 if caps.asn4 is not None else my_as
        return cls(asn=asn, hold_time=hold_time, router_id=router_id, capabilities=caps,
                   version=version, wire_asn=my_as)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome of an OPEN exchange: what both sides agreed to."""

    hold_time: int
    keepalive: int
    families: tuple[Family, ...]
    asn4: bool
    route_refresh: bool
    extended_message: bool
    peer_as: int
    peer_router_id: str
    graceful_restart: int | None  # peer's restart time when both offered GR
    # RFC 8538 2: both offered GR with the N bit: a NOTIFICATION other than Cease/Hard Reset
    # keeps graceful restart going (both ways); Hard Reset ends it.
    gr_notification: bool = False
    # RFC 8950: the families whose routes may carry an IPv6 next hop (IPv4 NLRI), in both
    # directions: both sides offered (family, IPv6) in the extended next hop capability.
    extended_next_hop: frozenset[Family] = frozenset()
    # ADD-PATH (RFC 7911 4): families whose NLRI we send, and receive, with path identifiers.
    addpath_send: frozenset[Family] = frozenset()
    addpath_receive: frozenset[Family] = frozenset()

    @property
    def max_size(self) -> int:
        return 65535 if self.extended_message else MAX_MESSAGE


def negotiate(local: Open, remote: Open) -> Negotiated:
    lc, rc = local.capabilities, remote.capabilities
    hold = min(local.hold_time, remote.hold_time)
    # RFC 4760: a speaker that sends no multiprotocol capability does IPv4 unicast only.
    remote_fams = rc.families or [IPV4_UNICAST]
    local_fams = lc.families or [IPV4_UNICAST]
    families = tuple(f for f in local_fams if f in remote_fams)
    # RFC 7911 4: we send path ids for a family if we offered to send and the peer to receive
    # (bit 2 and bit 1 of the Send/Receive field), and receive them the other way round.
    send = frozenset(f for f in families
                     if lc.add_path.get(f, 0) & 2 and rc.add_path.get(f, 0) & 1)
    receive = frozenset(f for f in families
                        if lc.add_path.get(f, 0) & 1 and rc.add_path.get(f, 0) & 2)
    return Negotiated(
        hold_time=hold,
        keepalive=hold // 3,
        families=families,
        asn4=lc.asn4 is not None and rc.asn4 is not None,
        route_refresh=lc.route_refresh and rc.route_refresh,
        extended_message=lc.extended_message and rc.extended_message,
        peer_as=remote.asn,
        peer_router_id=remote.router_id,
        graceful_restart=rc.graceful_restart if lc.graceful_restart is not None else None,
        gr_notification=(lc.graceful_restart is not None and rc.graceful_restart is not None
                         and lc.gr_notification and rc.gr_notification),
        extended_next_hop=frozenset(fam for fam, nh_afi in lc.next_hops
                                    if nh_afi == AFI.IPV6 and fam.afi == AFI.IPV4 and fam in families
                                    and (fam, nh_afi) in rc.next_hops),
        addpath_send=send,
        addpath_receive=receive,
    )


# ---------------------------------------------------------------------------------------------
# NOTIFICATION, KEEPALIVE, ROUTE-REFRESH


@dataclass(frozen=True, slots=True)
class Notification:
    code: int
    subcode: int
    data: bytes = b""

    def encode(self) -> bytes:
        return frame(MsgType.NOTIFICATION, bytes((self.code, self.subcode)) + self.data)

    @classmethod
    def decode(cls, body: bytes) -> Notification:
        if len(body) < 2:
            raise BGPError(ErrCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH,
                           struct.pack("!H", len(body) + HEADER_LEN), "NOTIFICATION too short")
        return cls(body[0], body[1], bytes(body[2:]))

    @classmethod
    def shutdown(cls, message: str = "", subcode: int = CeaseSub.ADMINISTRATIVE_SHUTDOWN) -> Notification:
        """Cease with an operator's message (RFC 9003): at most 255 octets of UTF-8."""
        raw = message.encode("utf-8")[:255]
        # Never cut a multi-byte character in half.
        raw = raw.decode("utf-8", "ignore").encode("utf-8")
        return cls(ErrCode.CEASE, subcode, bytes((len(raw),)) + raw if message else b"")

    @classmethod
    def hard_reset(cls, inner: Notification) -> Notification:
        """Cease/Hard Reset (RFC 8538 3) carrying `inner`: its code, subcode and data are the
        data. With the N bit negotiated it is the one NOTIFICATION that ends graceful restart."""
        return cls(ErrCode.CEASE, CeaseSub.HARD_RESET, bytes((inner.code, inner.subcode)) + inner.data)

    @property
    def hard_reset_of(self) -> Notification | None:
        """The NOTIFICATION a Cease/Hard Reset carries (RFC 8538 3); None for any other message,
        or a Hard Reset whose data is too short to name one."""
        if self.code != ErrCode.CEASE or self.subcode != CeaseSub.HARD_RESET or len(self.data) < 2:
            return None
        return Notification(self.data[0], self.data[1], self.data[2:])

    @property
    def shutdown_message(self) -> str | None:
        """The operator's message of a Cease/Administrative Shutdown or Reset (RFC 9003), also
        when a Hard Reset carries it; None when there is none or it overruns the data."""
        note = self.hard_reset_of or self
        if note.code != ErrCode.CEASE or note.subcode not in (CeaseSub.ADMINISTRATIVE_SHUTDOWN,
                                                              CeaseSub.ADMINISTRATIVE_RESET):
            return None
        if not note.data or note.data[0] + 1 > len(note.data):
            return None
        return note.data[1:1 + note.data[0]].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    family: Family
    subtype: int = 0  # RFC 7313: 0 request, 1 BoRR, 2 EoRR

    def encode(self) -> bytes:
        return frame(MsgType.ROUTE_REFRESH,
                     struct.pack("!HBB", self.family.afi, self.subtype, self.family.safi))

    @classmethod
    def decode(cls, body: bytes) -> RouteRefresh:
        if len(body) != 4:
            # RFC 7313 5: the data is the complete ROUTE-REFRESH message, header included.
            raise BGPError(ErrCode.ROUTE_REFRESH, RouteRefreshSub.INVALID_MESSAGE_LENGTH,
                           frame(MsgType.ROUTE_REFRESH, bytes(body)),
                           f"ROUTE-REFRESH body of {len(body)} bytes")
        afi, subtype, safi = struct.unpack("!HBB", body)
        return cls(Family(afi, safi), subtype)


# ---------------------------------------------------------------------------------------------
# UPDATE


@dataclass(slots=True)
class Update:
    """A decoded UPDATE. announce maps family -> (attributes incl. that family's next hop, NLRI items)."""

    withdraw: dict[Family, list[bytes]] = field(default_factory=dict)
    announce: dict[Family, tuple[Attributes, list[bytes]]] = field(default_factory=dict)
    eor: Family | None = None
    notes: list[str] = field(default_factory=list)
    treat_as_withdraw: bool = False


def _decode_mp_next_hop(fam: Family, raw: bytes) -> str:
    """The next hop of an MP_REACH_NLRI. A length that does not fit the family raises ValueError:
    the NLRI cannot be located reliably then, so RFC 7606 7.11 resets the session."""
    afi, safi = fam
    if afi == 1 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    # IPv6 unicast, or IPv4 unicast with an IPv6 next hop (RFC 8950 3: the same 16 or 32 bytes,
    # global and link-local). Whether the IPv4 form was negotiated is the caller's question.
    if (afi == 2 or (afi == 1 and safi == 1)) and len(raw) in (16, 32):
        glob = ipaddress.IPv6Address(raw[:16])
        if len(raw) == 32 and (glob.is_unspecified or glob.is_link_local):
            return str(ipaddress.IPv6Address(raw[16:]))
        return str(glob)
    if safi != 1:
        return ""  # FlowSpec and others: no next hop, or one we do not interpret (RFC 8955 4)
    raise ValueError(f"next hop of {len(raw)} bytes for {family_name(fam)}")


def next_hop_problem(address: str) -> str | None:
    """Why a received next hop cannot be a host address (RFC 4271 6.3), or None if it can."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:
        return "is unspecified"
    if ip.is_multicast:
        return "is multicast"
    if ip == _LIMITED_BROADCAST:
        return "is the limited broadcast address"
    return None


_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _withdrawn_for_next_hop(upd: Update, fam: Family, next_hop: str, items: list[bytes],
                            what: str) -> bool:
    """Treat-as-withdraw items if next_hop is unusable; True if it was."""
    problem = next_hop_problem(next_hop)
    if problem is None:
        return False
    upd.notes.append(f"{what} {next_hop} {problem}: {len(items)} {family_name(fam)} route(s) "
                     "treated as withdrawn")
    upd.treat_as_withdraw = True
    upd.withdraw.setdefault(fam, []).extend(items)
    return True


def decode_update(body: bytes, ctx: DecodeContext, families: Iterable[Family] | None = None) -> Update:
    """Decode an UPDATE body. families: the negotiated ones; NLRI of others are ignored and noted.
    Raises only BGPError, whatever the bytes."""
    try:
        return _decode_update(body, ctx, families)
    except BGPError:
        raise
    except (IndexError, ValueError, struct.error) as exc:
        raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.MALFORMED_ATTRIBUTE_LIST,
                       reason=f"malformed UPDATE: {exc}") from None


def _decode_update(body: bytes, ctx: DecodeContext, families: Iterable[Family] | None) -> Update:
    allowed = set(families) if families is not None else None
    addpath = ctx.addpath
    v4_addpath = IPV4_UNICAST in addpath
    upd = Update()
    n = len(body)
    wlen = (body[0] << 8) | body[1]
    if 2 + wlen + 2 > n:
        raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.MALFORMED_ATTRIBUTE_LIST,
                       reason=f"withdrawn routes length {wlen} overruns the message")
    withdrawn = split_nlri(IPV4_UNICAST, memoryview(body)[2:2 + wlen], None, v4_addpath)
    pos = 2 + wlen
    alen = (body[pos] << 8) | body[pos + 1]
    pos += 2
    if pos + alen > n:
        raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.MALFORMED_ATTRIBUTE_LIST,
                       reason=f"path attribute length {alen} overruns the message")
    nlri = split_nlri(IPV4_UNICAST, memoryview(body)[pos + alen:], None, v4_addpath)
    decoded = decode_attributes(memoryview(body)[pos:pos + alen], ctx)
    upd.notes = decoded.notes
    if withdrawn:
        upd.withdraw[IPV4_UNICAST] = withdrawn

    if decoded.mp_unreach is not None:
        raw = decoded.mp_unreach
        if len(raw) < 3:
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR,
                           reason="MP_UNREACH_NLRI shorter than AFI/SAFI")
        fam = Family(*struct.unpack("!HB", raw[:3]))
        if (len(raw) == 3 and not withdrawn and not nlri and not decoded.treat_as_withdraw
                and decoded.seen == {AttrCode.MP_UNREACH_NLRI}):
            # RFC 4724 2: nothing but an empty MP_UNREACH_NLRI (with or without extended length).
            upd.eor = fam
        elif (allowed is not None and fam not in allowed) or not supported_family(fam):
            upd.notes.append(f"withdrawals for family {family_name(fam)} not negotiated: ignored")
        else:
            items = split_nlri(fam, raw[3:], upd.notes, fam in addpath)
            if items:
                upd.withdraw.setdefault(fam, []).extend(items)

    mp_fam: Family | None = None
    mp_items: list[bytes] = []
    mp_nh = ""
    if decoded.mp_reach is not None:
        raw = decoded.mp_reach
        if len(raw) < 5 or 5 + raw[3] > len(raw):
            raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR,
                           reason="MP_REACH_NLRI truncated")
        mp_fam = Family(*struct.unpack("!HB", raw[:3]))
        nh_len = raw[3]
        if (allowed is not None and mp_fam not in allowed) or not supported_family(mp_fam):
            # Checked before the next hop: a family we do not do is ignored whole, whatever its
            # next hop looks like, the same for every AFI/SAFI.
            upd.notes.append(f"announcements for family {family_name(mp_fam)} not negotiated: ignored")
            mp_fam = None
        else:
            try:
                mp_nh = _decode_mp_next_hop(mp_fam, raw[4:4 + nh_len])
            except ValueError as exc:
                # RFC 7606 7.11: a next hop length that does not fit the family means the NLRI
                # cannot be located reliably: "session reset" (RFC 4760 7: Optional Attribute Error).
                raise BGPError(ErrCode.UPDATE_MESSAGE, UpdateSub.OPTIONAL_ATTRIBUTE_ERROR,
                               reason=f"MP_REACH_NLRI: {exc}") from None
            # 1 reserved byte (RFC 4760) sits between next hop and NLRI.
            mp_items = split_nlri(mp_fam, raw[5 + nh_len:], upd.notes, mp_fam in addpath)

    if not withdrawn and not nlri and alen == 0:
        upd.eor = IPV4_UNICAST
        return upd

    if decoded.treat_as_withdraw and not nlri and decoded.mp_reach is None and decoded.error is not None:
        # RFC 7606 5.2: attributes but no reachable NLRI: treat-as-withdraw would hide the error,
        # so anything stronger than attribute discard becomes a session reset.
        raise decoded.error

    fields = decoded.fields
    if nlri or mp_items:
        missing = [name for name, present in (("ORIGIN", "origin" in fields),
                                              ("AS_PATH", "as_path" in fields)) if not present]
        if nlri and "next_hop" not in fields:
            missing.append("NEXT_HOP")
        if missing and not decoded.treat_as_withdraw:
            upd.notes.append(f"missing well-known attribute {', '.join(missing)}: "
                             "routes treated as withdrawn")
            decoded.treat_as_withdraw = True
    if decoded.treat_as_withdraw or upd.treat_as_withdraw:
        upd.treat_as_withdraw = True
        if nlri:
            upd.withdraw.setdefault(IPV4_UNICAST, []).extend(nlri)
        if mp_fam is not None and mp_items:
            upd.withdraw.setdefault(mp_fam, []).extend(mp_items)
        return upd
    # RFC 4271 6.3: a next hop that is not a host address is logged and its routes ignored, the
    # session stays up; each next hop only speaks for its own routes.
    if nlri and _withdrawn_for_next_hop(upd, IPV4_UNICAST, fields["next_hop"], nlri, "NEXT_HOP"):
        nlri = []
    if (mp_fam is not None and mp_items and mp_nh and mp_fam.safi != SAFI.FLOWSPEC
            and _withdrawn_for_next_hop(upd, mp_fam, mp_nh, mp_items, "MP_REACH_NLRI next hop")):
        mp_items = []
    if (mp_fam is not None and mp_items and mp_fam.afi == AFI.IPV4 and ":" in mp_nh
            and mp_fam not in ctx.extended_next_hop):
        # RFC 8950 4: an IPv6 next hop for IPv4 NLRI only where we offered the capability. The
        # NLRI could be located, so the routes go (RFC 7606 treat-as-withdraw), not the session.
        upd.notes.append(f"MP_REACH_NLRI next hop {mp_nh} is IPv6 but the extended next hop (RFC 8950) "
                         f"was not negotiated for {family_name(mp_fam)}: {len(mp_items)} route(s) "
                         "treated as withdrawn")
        upd.treat_as_withdraw = True
        upd.withdraw.setdefault(mp_fam, []).extend(mp_items)
        mp_items = []
    if nlri:
        upd.announce[IPV4_UNICAST] = (Attributes.make(**fields), nlri)
    if mp_fam is not None and mp_items:
        mp_fields = dict(fields)
        mp_fields["next_hop"] = mp_nh or None
        upd.announce[mp_fam] = (Attributes.make(**mp_fields), mp_items)
    return upd


def ipv6_next_hop(attrs: Attributes, ctx: EncodeContext) -> bool:
    """Does this IPv4 unicast route go out with an IPv6 next hop (RFC 8950), in MP_REACH_NLRI?
    A written IPv6 next hop does, where the peer negotiated it (else ValueError: the route cannot
    be sent on this session); `next-hop self` does on a session without an IPv4 address of ours."""
    nh = attrs.next_hop
    extended = IPV4_UNICAST in ctx.extended_next_hop
    if nh is None or nh == "self":
        return extended and ctx.next_hop_self_v4 is None and ctx.next_hop_self_v6 is not None
    if ":" not in nh:
        return False
    if not extended:
        raise ValueError(f"next hop {nh} is IPv6: this peer did not negotiate the extended next hop "
                         "(RFC 8950) for ipv4 unicast")
    return True


def next_hop_in_body(fam: Family, attrs: Attributes, ctx: EncodeContext) -> bool:
    """Does the route's next hop go in the NEXT_HOP attribute (IPv4 unicast, IPv4 next hop), with
    the NLRI in the UPDATE's body? Otherwise both go in MP_REACH_NLRI."""
    return fam == IPV4_UNICAST and not ipv6_next_hop(attrs, ctx)


def _ipv6_next_hop_bytes(nh: str, ctx: EncodeContext) -> bytes:
    glob = ipaddress.IPv6Address(nh)
    if ctx.link_local_v6 and not glob.is_link_local:
        return glob.packed + ipaddress.IPv6Address(ctx.link_local_v6).packed
    if glob.is_link_local:
        # Session over link-local only: global field '::' would be rejected by some peers,
        # so the link-local address goes in both places.
        return glob.packed + glob.packed
    return glob.packed


def _mp_next_hop_bytes(attrs: Attributes, fam: Family, ctx: EncodeContext) -> bytes:
    if fam.afi == 2 and fam.safi == 1:
        return _ipv6_next_hop_bytes(resolve_next_hop(attrs, ctx, v6=True), ctx)
    if fam.afi == 1 and fam.safi == 1:
        if ipv6_next_hop(attrs, ctx):
            # RFC 8950 3: the IPv6 next hop as for IPv6 unicast, 16 bytes or 32 with link-local.
            return _ipv6_next_hop_bytes(resolve_next_hop(attrs, ctx, v6=True), ctx)
        return ipaddress.IPv4Address(resolve_next_hop(attrs, ctx, v6=False)).packed
    if fam.safi == SAFI.FLOWSPEC and attrs.next_hop:
        # Redirect-to-IP (ExaBGP 'redirect IP', draft-simpson-idr-flowspec-redirect): the target
        # is the MP_REACH next hop, in its own address family.
        nh = attrs.next_hop
        if nh == "self":
            nh = resolve_next_hop(attrs, ctx, v6=fam.afi == 2)
        return ipaddress.ip_address(nh).packed
    return b""  # FlowSpec: no next hop (RFC 8955 4)


def pack_announce(fam: Family, attrs: Attributes, items: list[bytes], ctx: EncodeContext,
                  encoded_attrs: bytes | None = None) -> Iterator[bytes]:
    """UPDATE messages that announce items with attrs, as few as the message size allows."""
    max_body = ctx.max_size - HEADER_LEN
    in_body = next_hop_in_body(fam, attrs, ctx)
    if in_body:
        head = encoded_attrs if encoded_attrs is not None else encode_attributes(attrs, ctx,
                                                                                 ipv4_next_hop=True)
        room = max_body - 4 - len(head)
        prefix = b"\x00\x00" + struct.pack("!H", len(head)) + head
        if items and room < max(len(item) for item in items):
            raise _no_room(room, items, ctx)
        yield from _chunked(items, room, lambda chunk: frame(MsgType.UPDATE, prefix + chunk))
        return
    head = encoded_attrs if encoded_attrs is not None else encode_attributes(attrs, ctx,
                                                                             ipv4_next_hop=False)
    nh = _mp_next_hop_bytes(attrs, fam, ctx)
    mp_head = struct.pack("!HBB", fam.afi, fam.safi, len(nh)) + nh + b"\x00"
    # 4 bytes: an extended-length attribute header; 4 more: the two length fields of the UPDATE.
    room = max_body - 4 - len(head) - 4 - len(mp_head)
    if items and room < max(len(item) for item in items):
        raise _no_room(room, items, ctx)

    def build(chunk: bytes) -> bytes:
        mp = _attr(AttrFlag.OPTIONAL, AttrCode.MP_REACH_NLRI, mp_head + chunk)
        attrs_field = mp + head
        return frame(MsgType.UPDATE, b"\x00\x00" + struct.pack("!H", len(attrs_field)) + attrs_field)

    yield from _chunked(items, room, build)


def announce_room(fam: Family, attrs: Attributes, ctx: EncodeContext, encoded_attrs: bytes) -> int:
    """Bytes left for NLRI in one UPDATE announcing `fam` routes with these (encoded) attributes:
    pack_announce's layout. An NLRI item longer than this cannot be sent on this session."""
    room = ctx.max_size - HEADER_LEN - 4 - len(encoded_attrs)
    if next_hop_in_body(fam, attrs, ctx):
        return room
    # The MP_REACH_NLRI attribute: extended-length header, AFI, SAFI, next hop length, next hop,
    # reserved byte.
    return room - 4 - 5 - len(_mp_next_hop_bytes(attrs, fam, ctx))


def _no_room(room: int, items: list[bytes], ctx: EncodeContext) -> RouteTooLarge:
    longest = max(len(item) for item in items)
    size = ctx.max_size - room + longest
    return RouteTooLarge(f"the UPDATE would be {size} bytes, more than the {ctx.max_size}-byte message "
                         "limit of this session", size)


def pack_withdraw(fam: Family, items: list[bytes], ctx: EncodeContext) -> Iterator[bytes]:
    max_body = ctx.max_size - HEADER_LEN
    if fam == IPV4_UNICAST:
        yield from _chunked(items, max_body - 4, lambda chunk: frame(
            MsgType.UPDATE, struct.pack("!H", len(chunk)) + chunk + b"\x00\x00"))
        return
    mp_head = struct.pack("!HB", fam.afi, fam.safi)
    room = max_body - 4 - 4 - len(mp_head)
    if items and max(map(len, items)) > room:
        # A FlowSpec NLRI (up to 4095 bytes) this long never fitted an announcement on this session
        # either, so the peer cannot hold it; a message past the limit would reset the session.
        items = [item for item in items if len(item) <= room]

    def build(chunk: bytes) -> bytes:
        mp = _attr(AttrFlag.OPTIONAL, AttrCode.MP_UNREACH_NLRI, mp_head + chunk)
        return frame(MsgType.UPDATE, b"\x00\x00" + struct.pack("!H", len(mp)) + mp)

    yield from _chunked(items, room, build)


def end_of_rib(fam: Family) -> bytes:
    """RFC 4724 2: an empty UPDATE for IPv4 unicast, an empty MP_UNREACH_NLRI otherwise."""
    if fam == IPV4_UNICAST:
        return frame(MsgType.UPDATE, b"\x00\x00\x00\x00")
    mp = _attr(AttrFlag.OPTIONAL, AttrCode.MP_UNREACH_NLRI, struct.pack("!HB", fam.afi, fam.safi))
    return frame(MsgType.UPDATE, b"\x00\x00" + struct.pack("!H", len(mp)) + mp)


def _chunked(items: list[bytes], room: int, build: Callable[[bytes], bytes]) -> Iterator[bytes]:
    chunk: list[bytes] = []
    size = 0
    for item in items:
        n = len(item)
        if size + n > room and chunk:
            yield build(b"".join(chunk))
            chunk = []
            size = 0
        chunk.append(item)
        size += n
    if chunk:
        yield build(b"".join(chunk))
