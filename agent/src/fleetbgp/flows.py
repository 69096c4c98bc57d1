"""FlowSpec rules by name: what the control socket's `flow_announce` / `flow_withdraw` / `flows`
work on, plus the expiry timers (`expires_after`: the agent withdraws a rule itself).

A rule is one FlowSpec NLRI (grammar/flowspec.py builds it from ExaBGP's `match` names) with its
actions as extended communities (`then`). Rules go into the peers' adj-rib-out like any route, owned
by `control:WHO` (control socket), `config` (the config file's `flow { route NAME { ... } }`) or
`process:NAME` (API programs' `announce flow route ...`). Only control rules are kept here by name;
config and API rules are listed from the adj-rib-out (config ones by their config name, the others as
`rule-HASH`). `remove_rule(NAME)` takes any listed rule away except a config one (edit the config).

A control rule whose NLRI a plain `withdraw` (control socket, CLI, API program) took away from every
neighbor it was announced to is forgotten: `flows` no longer lists it, its expiry timer stops, and a
reload does not bring it back (docs/agent/flowspec.md, "Withdrawn behind the rule's back").

Everything runs on the event loop thread, like every other caller of the Speaker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .grammar.flowspec import (
    actions_text,
    build_rule,
    decode_actions,
    family_of,
    match_dict,
    match_text,
    nlri_name,
    rule_text,
    size_error,
    then_dict,
    then_text,
)
from .literals import address_error, shown
from .logutil import log_event
from .owner import CONFIG, RUNTIME, Owner
from .transport import normalise_peer
from .wire.attributes import Attributes
from .wire.fit import message_limit
from .wire.flowspec import FlowActions, FlowRule, FlowSpecError, decode_nlri
from .wire.nlri import IPV4_FLOWSPEC, IPV6_FLOWSPEC, Family

if TYPE_CHECKING:
    from .ports import FlowSpeaker, PeerView

log = logging.getLogger("fleetbgp.flows")

NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
FLOW_FAMILIES = (IPV4_FLOWSPEC, IPV6_FLOWSPEC)
# The longest a timer may run: a year (asyncio's call_later takes floats, but a typo like 1e12
# deserves an error, not a rule that never expires).
MAX_EXPIRY = 366 * 86400.0
# Rules from the control socket without an `owner` (what control.DEFAULT_OWNER is too).
DEFAULT_OWNER = Owner.control("cli")


def actions_of(attrs: Attributes | None) -> dict[str, Any]:
    """`then` of a route in the adj-rib: its extended communities decoded (plus redirect-to-IP)."""
    if attrs is None:
        return {}
    try:
        out = dict(decode_actions(v.to_bytes(8, "big") for v in attrs.ext_communities))
    except (FlowSpecError, ValueError) as exc:
        return {"undecodable": str(exc)}
    return out


def normalise_neighbors(neighbors: Iterable[str] | None) -> tuple[str, ...] | None:
    """The target neighbors as one canonical tuple: addresses as the kernel reports them (no scope,
    IPv4-mapped made plain, IPv6 compressed lower case), each once, IPv4 before IPv6, in address
    order; so `[B, A]`, `[A, B]` and `[A, B, A]` are the same rule. None (every neighbor) stays None.
    Raises ValueError naming an entry that is no IP address."""
    if neighbors is None:
        return None
    out = set()
    for address in neighbors:
        try:
            out.add(normalise_peer(str(address)))
        except ValueError:
            raise ValueError(f"neighbors: {address_error(str(address))}") from None
    return tuple(sorted(out, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a))))


# The FlowSpec routes that are no control rule: (family, NLRI) -> (name, owner, holders' addresses).
# Named out here: inside FlowManager, `list` is its method.
OtherRules = dict[tuple[Family, bytes], tuple[str, Owner, list[str]]]


@dataclass(slots=True)
class FlowEntry:
    """A rule announced through the control socket."""

    name: str
    family: Family
    rule: FlowRule
    actions: FlowActions
    match: dict[str, list[str]]
    then: dict[str, Any]
    nlri: bytes
    attrs: Attributes
    owner: Owner
    neighbors: tuple[str, ...] | None
    created_at: float
    expires_at: float | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def same(self, other: FlowEntry) -> bool:
        return (self.family == other.family and self.nlri == other.nlri and self.attrs is other.attrs
                and self.neighbors == other.neighbors)


class FlowManager:
    """Named runtime rules of one Speaker (owner `control:WHO`), with their expiry timers."""

    def __init__(self, speaker: FlowSpeaker) -> None:
        self.speaker = speaker
        self.rules: dict[str, FlowEntry] = {}
        self.expired = 0  # rules withdrawn by their timer, since start

    # -- changes ---------------------------------------------------------------------------------

    def add_rule(self, name: str, match: Mapping[str, Any], then: Mapping[str, Any], *,
                 family: str | None = None, neighbors: Sequence[str] | None = None,
                 expires_after: float | None = None, owner: Owner = DEFAULT_OWNER) -> dict[str, Any]:
        """Add or replace the rule `name`. Raises FlowSpecError (bad rule) or ValueError (bad name,
        unknown neighbor, bad expiry) before anything is announced."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(f"rule name {name!r}: 1 to 64 characters from A-Z a-z 0-9 _ . : -")
        # Compared as given: float() of a huge int (JSON allows 4,300 digits) raises OverflowError.
        if expires_after is not None and (isinstance(expires_after, bool)
                                          or not isinstance(expires_after, int | float)
                                          or not 0 < expires_after <= MAX_EXPIRY):
            raise ValueError(f"expires_after {shown(expires_after)}: a number of seconds, > 0 and at "
                             f"most {MAX_EXPIRY:.0f}")
        fam = family_of(match, family)
        rule, actions, nlri, attrs = build_rule(fam, match, then)
        targets = normalise_neighbors(neighbors)
        peers = self.speaker.select(list(targets) if targets is not None else None)
        self.sync()
        for peer in peers:
            if fam not in peer.neighbor.families and targets is not None:
                raise ValueError(f"neighbor {peer.address} does not have 'family {{ "
                                 f"{'ipv4' if fam.afi == 1 else 'ipv6'} flow; }}' configured")
        if targets is None and not any(fam in p.neighbor.families for p in peers):
            raise ValueError(f"no neighbor has 'family {{ {'ipv4' if fam.afi == 1 else 'ipv6'} flow; }}' "
                             "configured")
        too_large = size_error(fam, nlri, attrs, lambda f: message_limit((p.neighbor for p in peers), f))
        if too_large is not None:
            raise too_large
        for other in self.rules.values():
            if other.name != name and other.family == fam and other.nlri == nlri:
                raise FlowSpecError("match", f"rule {other.name!r} already matches exactly this "
                                             "traffic: change that rule, or withdraw it first")
        entry = FlowEntry(name=name, family=fam, rule=rule, actions=actions, match=match_dict(rule),
                          then=then_dict(actions), nlri=nlri, attrs=attrs, owner=owner,
                          neighbors=targets, created_at=time.time())
        old = self.rules.get(name)
        changed = True
        if old is not None and old.same(entry) and self._in_place(old, peers):
            changed = False
            entry = old
        else:
            if old is not None:
                self._remove_entry(old)
                log.info("flow rule %s replaced: %s", name, self.text(entry),
                         extra=log_event("flow_announced"))
            else:
                log.info("flow rule %s announced (owner %s): %s", name, owner, self.text(entry),
                         extra=log_event("flow_announced"))
            self.rules[name] = entry
            self.speaker.announce(fam, nlri, attrs, owner=owner,
                                  neighbors=list(targets) if targets is not None else None)
        if expires_after is not None:
            self._arm(entry, float(expires_after))
        elif changed:
            entry.expires_at = None
        return {"changed": changed, "rule": self.entry_dict(entry)}

    @staticmethod
    def _in_place(entry: FlowEntry, peers: Iterable[PeerView]) -> bool:
        """Does every target with the family still hold the rule? (Someone may have withdrawn its
        NLRI with a plain `withdraw`; then announcing it again is a change.)"""
        for peer in peers:
            if entry.family in peer.neighbor.families and \
                    peer.rib_out.routes.get(entry.family, {}).get(entry.nlri) is not entry.attrs:
                return False
        return True

    def remove_rule(self, name: str, *, reason: str = "withdrawn") -> bool:
        """Withdraw the rule `name` as `flows` lists it: a control rule, or an API program's
        (`rule-HASH`, or any owner but `config`). False if no rule has that name. Raises ValueError
        for a config rule: the config file would announce it again at the next reload."""
        self.sync()
        entry = self.rules.pop(name, None)
        if entry is not None:
            self._remove_entry(entry)
            log.info("flow rule %s %s: %s", name, reason, self.text(entry), extra=log_event("flow_withdrawn"))
            return True
        for (fam, nlri), (other, owner, holders) in self._others().items():
            if other != name:
                continue
            if owner is CONFIG:
                raise ValueError(f"rule {name} comes from the config file: remove its 'flow {{ route "
                                 f"{name} {{ ... }} }}' from the config and reload (a withdrawal here would "
                                 "be undone by the next reload)")
            self.speaker.withdraw(fam, nlri, owner=owner, neighbors=holders)
            log.info("flow rule %s (owner %s) %s by name: %s", name, owner, reason,
                     self._other_dict(name, fam, nlri, None, owner)["text"],
                     extra=log_event("flow_withdrawn"))
            return True
        return False

    def sync(self) -> None:
        """Forget the control rules that a plain `withdraw` took away from every neighbor that
        should hold them (they are no longer announced anywhere: listing them would lie, and a
        reload would announce them again)."""
        for name, entry in list(self.rules.items()):
            if self._gone(entry):
                self.rules.pop(name, None)
                if entry.timer is not None:
                    entry.timer.cancel()
                    entry.timer = None
                log.warning("flow rule %s was withdrawn by a plain withdraw (not flow_withdraw): "
                            "forgotten: %s", name, self.text(entry), extra=log_event("flow_withdrawn"))

    def _gone(self, entry: FlowEntry) -> bool:
        if entry.neighbors is None:
            peers = list(self.speaker.peers.values())
        else:
            known = self._peer_keys()
            peers = [self.speaker.peers[a] for a in entry.neighbors if a in known and a in self.speaker.peers]
        eligible = [p for p in peers if entry.family in p.neighbor.families]
        return bool(eligible) and not any(entry.nlri in p.rib_out.routes.get(entry.family, {})
                                          for p in eligible)

    def _remove_entry(self, entry: FlowEntry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        targets = [a for a in (entry.neighbors or ()) if a in self._peer_keys()] \
            if entry.neighbors is not None else None
        if targets == []:
            return
        self.speaker.withdraw(entry.family, entry.nlri, owner=entry.owner, neighbors=targets)

    def _peer_keys(self) -> set[str]:
        keys = set(self.speaker.peers)
        for p in self.speaker.peers.values():
            keys.add(p.neighbor.peer_address)
        return keys

    def _arm(self, entry: FlowEntry, seconds: float) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        entry.expires_at = time.time() + seconds
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(seconds, self._expire, entry.name, entry)

    def _expire(self, name: str, entry: FlowEntry) -> None:
        if self.rules.get(name) is not entry:
            return
        entry.timer = None
        self.expired += 1
        self.rules.pop(name, None)
        self._remove_entry(entry)
        log.warning("flow rule %s expired (expires_after reached): withdrawn: %s", name, self.text(entry),
                    extra=log_event("flow_expired"))

    def reapply(self) -> None:
        """After a reload: runtime rules go to peers added since (the others still hold them)."""
        self.sync()
        for entry in self.rules.values():
            targets = entry.neighbors
            if targets is not None:
                known = self._peer_keys()
                targets = tuple(a for a in targets if a in known)
                if not targets:
                    continue
            self.speaker.announce(entry.family, entry.nlri, entry.attrs, owner=entry.owner,
                                  neighbors=list(targets) if targets is not None else None)

    def stop(self) -> None:
        for entry in self.rules.values():
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None

    # -- views -----------------------------------------------------------------------------------

    @staticmethod
    def text(entry: FlowEntry) -> str:
        return rule_text(entry.name, entry.rule, actions_text(entry.actions))

    def announced_to(self, fam: Family, nlri: bytes, peers: Iterable[PeerView] | None = None) -> list[str]:
        out = []
        for peer in peers if peers is not None else self.speaker.peers.values():
            neg = peer.negotiated
            if peer.established_since is None or neg is None or fam not in neg.families:
                continue
            if peer.drain_mode == "withdraw":
                continue
            if nlri in peer.rib_out.routes.get(fam, {}):
                out.append(peer.address)
        return out

    def entry_dict(self, entry: FlowEntry) -> dict[str, Any]:
        return {
            "name": entry.name,
            "family": "ipv4" if entry.family.afi == 1 else "ipv6",
            "match": entry.match,
            "then": entry.then,
            "text": self.text(entry),
            "owner": str(entry.owner),
            "created_at": entry.created_at,
            "expires_at": entry.expires_at,
            "neighbors": list(entry.neighbors) if entry.neighbors is not None else None,
            "announced_to": self.announced_to(entry.family, entry.nlri),
        }

    def list(self) -> list[dict[str, Any]]:
        """Every FlowSpec rule in an adj-rib-out: control rules by their name, config rules by
        their config name, API rules (and any other) under `rule-HASH`."""
        self.sync()
        out = [self.entry_dict(e) for e in sorted(self.rules.values(), key=lambda e: e.name)]
        for (fam, nlri), (name, owner, holders) in self._others().items():
            item = self._other_dict(name, fam, nlri, self._attrs_at(fam, nlri, holders), owner)
            item["neighbors"] = list(holders)
            item["announced_to"] = self.announced_to(fam, nlri)
            out.append(item)
        return out

    def _others(self) -> OtherRules:
        """The FlowSpec routes in the adj-rib-outs that are no control rule: (family, NLRI) ->
        (name, owner, addresses of the peers holding it). Config rules keep their config name."""
        runtime = {(e.family, e.nlri) for e in self.rules.values()}
        config_names: dict[tuple[Family, bytes], str] = {}
        for neighbor in self.speaker.config.neighbors:
            for fr in neighbor.flow_routes:
                config_names.setdefault((fr.family, fr.nlri), fr.name)
        others: OtherRules = {}
        for peer in self.speaker.peers.values():
            for fam in FLOW_FAMILIES:
                table = peer.rib_out.routes.get(fam)
                if not table:
                    continue
                for nlri in table:
                    key = (fam, nlri)
                    if key in runtime:
                        continue
                    item = others.get(key)
                    if item is None:
                        owner = peer.rib_out.owner_of(fam, nlri) or RUNTIME
                        name = config_names.get(key) if owner is CONFIG else None
                        item = others[key] = (name or nlri_name(nlri), owner, [])
                    item[2].append(peer.address)
        return others

    def _attrs_at(self, fam: Family, nlri: bytes, holders: Sequence[str]) -> Attributes | None:
        for address in holders:
            attrs = self.speaker.peers[address].rib_out.routes.get(fam, {}).get(nlri)
            if attrs is not None:
                return attrs
        return None

    def _other_dict(self, name: str, fam: Family, nlri: bytes, attrs: Attributes | None,
                    owner: Owner) -> dict[str, Any]:
        loaded = self.speaker.config_loaded_at
        try:
            rule = decode_nlri(fam.afi, nlri)
        except FlowSpecError as exc:
            return {"name": name, "family": "ipv4" if fam.afi == 1 else "ipv6", "match": {},
                    "then": actions_of(attrs), "text": f"undecodable FlowSpec NLRI {nlri.hex()}: {exc}",
                    "owner": str(owner), "created_at": loaded if owner is CONFIG else None,
                    "expires_at": None, "neighbors": []}
        then = actions_of(attrs)
        return {"name": name, "family": "ipv4" if fam.afi == 1 else "ipv6", "match": match_dict(rule),
                "then": then, "text": rule_text(name, rule, then_text(then)), "owner": str(owner),
                "created_at": loaded if owner is CONFIG else None, "expires_at": None,
                "neighbors": []}

    def counts(self) -> dict[str, int]:
        """For `status`: rules by kind, and how many expired."""
        listed = self.list()
        by_owner: dict[str, int] = {"control": 0, "config": 0, "process": 0, "other": 0}
        for item in listed:
            kind = Owner.parse(item["owner"]).kind.value
            by_owner[kind if kind in by_owner else "other"] += 1
        return {"rules": len(listed), **{f"rules_{k}": v for k, v in by_owner.items()},
                "expired": self.expired,
                "with_expiry": sum(1 for e in self.rules.values() if e.expires_at is not None)}


def received_flow_fields(fam: Family, nlri: bytes, attrs: Attributes | None) -> dict[str, Any]:
    """Extra fields of a FlowSpec route in a `routes` answer: its match and actions, decoded."""
    try:
        rule = decode_nlri(fam.afi, nlri)
    except FlowSpecError as exc:
        return {"flow": {"error": str(exc), "nlri": nlri.hex()}}
    then = actions_of(attrs)
    return {"flow": {"match": match_dict(rule), "then": then,
                     "text": f"flow route {{ {match_text(rule)} {then_text(then)} }}"}}
