#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: route
short_description: Announce or withdraw a BGP route at runtime through the fleetbgp agent
version_added: 0.1.0
description:
  - Makes the fleetbgp agent on the target announce a route (O(state=present)) or stop announcing it
    (O(state=absent)), at once and without a reload, through its control socket.
  - The module reads what the agent announces now (its adj-rib-out, the routes of O(owner) for
    O(prefix)) and changes only what differs, so a second run reports no change.
  - Routes announced this way live in the agent's memory - they survive reloads and session
    restarts, not a restart of the agent. Routes that must always be there belong in the agent's
    configuration (the C(fleet.bgp.agent) role's C(fleet_bgp_routes)).
options:
  prefix:
    description:
      - The prefix, IPv4 or IPv6, in CIDR notation (V(100.10.0.100/32), V(2001:db8:100::/48)).
      - Host bits must be zero; the agent's error says which prefix was meant.
    type: str
    required: true
  state:
    description:
      - V(present) - the route is announced to the selected neighbors, with exactly these attributes.
      - V(absent) - O(owner) no longer announces the prefix (to the selected neighbors). The attribute
        options are ignored.
    type: str
    choices: [present, absent]
    default: present
  next_hop:
    description:
      - The next hop, an address of the prefix's family, or V(self) (the local address of each session).
    type: str
    default: self
  med:
    description:
      - MULTI_EXIT_DISC (MED), 0 to 4294967295; lower is preferred. Not set, the route has none.
    type: int
  local_preference:
    description:
      - LOCAL_PREF, 0 to 4294967295 (meaningful towards iBGP neighbors). Not set, the route has none.
    type: int
  origin:
    description:
      - The ORIGIN attribute.
    type: str
    choices: [igp, egp, incomplete]
    default: igp
  as_path:
    description:
      - AS numbers to put in the AS_PATH (an AS_SEQUENCE), first one first.
    type: list
    elements: int
  communities:
    description:
      - Standard communities, as V(ASN:VALUE) (each 0 to 65535) or a well-known name
        (V(no-export), V(no-advertise), V(no-export-subconfed), V(nopeer), V(blackhole),
        V(graceful-shutdown)).
      - Compared as a set - their order does not matter.
    type: list
    elements: str
  large_communities:
    description:
      - Large communities, as V(GLOBAL:LOCAL1:LOCAL2) (each 0 to 4294967295).
    type: list
    elements: str
  extended_communities:
    description:
      - Extended communities, as V(target:ASN:N), V(target:IPV4:N), V(origin:ASN:N), V(redirect:ASN:N),
        or V(0x) and 16 hex digits.
      - Write them as C(fleetbgp show routes) shows them - a form the agent displays differently (such
        as a raw V(0x...) value of a known type) is seen as a change on every run.
    type: list
    elements: str
  neighbors:
    description:
      - Addresses of the neighbors the route is for. An address that is not a neighbor of the agent is
        an error, and so is a neighbor whose session does not carry the prefix's family.
      - With O(state=present), the route is announced to exactly these neighbors - where O(owner)
        announced the prefix to other neighbors before, it is withdrawn there.
      - Default, every neighbor whose session carries the prefix's family (IPv4 or IPv6 unicast).
    type: list
    elements: str
  owner:
    description:
      - Who announces the route, as the agent records it - V(ansible) is stored as V(control:ansible)
        (shown by C(fleetbgp show routes)).
      - The module only ever changes routes of this owner. Different owners keep their routes apart,
        for example one per playbook or per application.
    type: str
    default: ansible
  timeout:
    description:
      - Seconds to wait for each reply from the agent.
    type: float
    default: 30
extends_documentation_fragment:
  - fleet.bgp.control
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the agent's routes and reports what would change, without changing them.
      - The agent checks the attributes when they are sent, so an invalid value fails the real run,
        not the check.
  diff_mode:
    support: full
    details: Before and after - the attributes of the route at each neighbor.
  platform:
    platforms: posix
notes:
  - Announcing a prefix that the agent's configuration, an API program or a health check already
    announces replaces that route (the last announcement wins, as in ExaBGP); the module warns when it
    does. Withdrawing it then removes the prefix. A reload of the agent's configuration announces the
    configuration's own routes again.
  - While the agent is drained (M(fleet.bgp.maintenance)), announcements are kept and go out when the
    drain ends.
seealso:
  - module: fleet.bgp.agent_info
  - module: fleet.bgp.maintenance
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Announce the anycast address with a MED and a community
  fleet.bgp.route:
    prefix: 100.10.0.100/32
    med: 100
    communities: ["65001:100"]
  become: true

- name: Backup server - the same prefix with a worse MED, to one router only
  fleet.bgp.route:
    prefix: 100.10.0.100/32
    med: 200
    neighbors: [192.0.2.1]
  become: true

- name: Blackhole an attacked address towards the upstreams, under its own owner
  fleet.bgp.route:
    prefix: 203.0.113.66/32
    next_hop: 192.0.2.66
    communities: [blackhole, no-export]
    owner: ddos
  become: true

- name: Withdraw it again
  fleet.bgp.route:
    prefix: 203.0.113.66/32
    owner: ddos
    state: absent
  become: true

- name: An IPv6 prefix with a prepended AS path and a large community
  fleet.bgp.route:
    prefix: 2001:db8:100::/48
    as_path: [65001, 65001]
    large_communities: ["65001:1:1"]
  become: true
"""

RETURN = r"""
route:
  description:
    - The route as the module left it (in check mode, as it would leave it).
  returned: always
  type: dict
  contains:
    prefix:
      description: The prefix.
      type: str
      sample: 100.10.0.100/32
    state:
      description: V(present) or V(absent).
      type: str
      sample: present
    owner:
      description: The owner as the agent records it.
      type: str
      sample: control:ansible
    neighbors:
      description: The neighbors the route is announced to by this owner (empty when absent).
      type: list
      elements: str
      sample: [192.0.2.1, 192.0.2.2]
    next_hop:
      description: The next hop (V(self) or an address).
      type: str
      sample: self
    origin:
      description: The ORIGIN.
      type: str
      sample: igp
    as_path:
      description: The AS_PATH.
      type: list
      elements: int
      sample: []
    med:
      description: The MED, or null.
      type: int
      sample: 100
    local_preference:
      description: The LOCAL_PREF, or null.
      type: int
      sample: null
    communities:
      description: Standard communities.
      type: list
      elements: str
      sample: ["65001:100"]
    large_communities:
      description: Large communities.
      type: list
      elements: str
      sample: []
    extended_communities:
      description: Extended communities.
      type: list
      elements: str
      sample: []
  sample:
    prefix: 100.10.0.100/32
    state: present
    owner: control:ansible
    neighbors: [192.0.2.1, 192.0.2.2]
    next_hop: self
    origin: igp
    as_path: []
    med: 100
    local_preference: null
    communities: ["65001:100"]
    large_communities: []
    extended_communities: []
announced_to:
  description: Neighbors the module announced the route to in this run (or would have, in check mode).
  returned: always
  type: list
  elements: str
  sample: [192.0.2.2]
withdrawn_from:
  description: Neighbors the module withdrew the route from in this run (or would have, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
"""

import ipaddress
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_common import (
    Agent,
    control_argument_spec,
)

# The route fields: (option, the control protocol's field, the agent's keyword, kind), in the order
# in which the agent turns a structured route into words (its messages count those words).
FIELDS = (
    ("next_hop", "next_hop", "next-hop", "scalar"),
    ("origin", "origin", "origin", "scalar"),
    ("as_path", "as_path", "as-path", "list"),
    ("med", "med", "med", "scalar"),
    ("local_preference", "local_preference", "local-preference", "scalar"),
    ("communities", "community", "community", "list"),
    ("large_communities", "large_community", "large-community", "list"),
    ("extended_communities", "extended_community", "extended-community", "list"),
)
LISTS = tuple(option for option, _f, _k, kind in FIELDS if kind == "list")

WELL_KNOWN_COMMUNITIES = {
    "graceful-shutdown": 0xFFFF0000, "blackhole": 0xFFFF029A, "no-export": 0xFFFFFF01,
    "no-advertise": 0xFFFFFF02, "no-export-subconfed": 0xFFFFFF03, "nopeer": 0xFFFFFF04,
    "no-peer": 0xFFFFFF04,
}
EXT_ALIASES = {"rt": "target", "soo": "origin"}
NOT_A_WORD = re.compile(r"[\s\[\](){};]")
INVALID_ROUTE = re.compile(
    r"^(?:announce|withdraw) route (?:'[^']*'|\S+): (?P<core>.*?)"
    r"(?: \(at '(?P<near>.*)', word (?P<index>\d+)\))?$",
    re.S)


# -- comparing routes -----------------------------------------------------------------------------

def _ints(text, sep, count):
    parts = text.split(sep)
    if len(parts) != count:
        return None
    try:
        return tuple(int(p, 10) for p in parts)
    except ValueError:
        return None


def norm_next_hop(value):
    text = str(value).strip()
    if text.lower() == "self":
        return "self"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def norm_community(text):
    low = text.strip().lower()
    if low in WELL_KNOWN_COMMUNITIES:
        return str(WELL_KNOWN_COMMUNITIES[low])
    pair = _ints(low, ":", 2)
    if pair is not None:
        return str((pair[0] << 16) | pair[1])
    try:
        return str(int(low, 16) if low.startswith("0x") else int(low, 10))
    except ValueError:
        return low


def norm_large_community(text):
    triple = _ints(text.strip(), ":", 3)
    return ":".join(map(str, triple)) if triple is not None else text.strip().lower()


def norm_extended_community(text):
    low = text.strip().lower()
    kind, sep, rest = low.partition(":")
    if sep and kind in EXT_ALIASES:
        return f"{EXT_ALIASES[kind]}:{rest}"
    if low.count(":") == 1:  # ADMIN:LOCAL alone means a route target
        return f"target:{low}"
    return low


def _split(values):
    """List items, with comma-separated items split as the agent splits them."""
    return [part for value in values or [] for part in str(value).split(",") if part.strip()]


def comparable(attrs):
    """A route's attributes in a form where equal means 'the agent would announce the same'."""
    as_path = tuple(tuple(a) if isinstance(a, list) else a for a in attrs.get("as_path") or [])
    return (
        norm_next_hop(attrs["next_hop"]) if attrs.get("next_hop") is not None else None,
        attrs.get("origin") or "igp",
        as_path,
        attrs.get("med"),
        attrs.get("local_preference"),
        tuple(sorted(set(map(norm_community, _split(attrs.get("communities")))))),
        tuple(sorted(set(map(norm_large_community, _split(attrs.get("large_communities")))))),
        tuple(sorted(set(map(norm_extended_community, _split(attrs.get("extended_communities")))))),
        bool(attrs.get("atomic_aggregate")),
        attrs.get("aggregator"),
    )


def entry_attrs(entry):
    """The attributes of an entry of the control command `routes`, in the module's terms."""
    attrs = {
        "next_hop": entry.get("next_hop"),
        "origin": entry.get("origin") or "igp",
        "as_path": entry.get("as_path") or [],
        "med": entry.get("med"),
        "local_preference": entry.get("local_preference"),
        "communities": entry.get("communities") or [],
        "large_communities": entry.get("large_communities") or [],
        "extended_communities": entry.get("extended_communities") or [],
    }
    for extra in ("atomic_aggregate", "aggregator"):  # not set by this module; shown if present
        if entry.get(extra):
            attrs[extra] = entry[extra]
    return attrs


def wanted_attrs(params):
    attrs = {option: params[option] for option, _f, _k, _kind in FIELDS}
    for option in LISTS:
        attrs[option] = list(attrs[option] or [])
    attrs["next_hop"] = norm_next_hop(attrs["next_hop"])
    return attrs


# -- talking to the agent -------------------------------------------------------------------------

def announce_args(params):
    """The structured route of the control command `announce`."""
    args = {"prefix": params["prefix"]}
    for option, field, _keyword, _kind in FIELDS:
        value = params[option]
        if value is None or value == []:
            continue
        args[field] = value
    return args


def route_words(params):
    """The words the agent makes of announce_args(), each with the option it comes from."""
    words = [(params["prefix"], "prefix")]
    for option, _field, keyword, kind in FIELDS:
        value = params[option]
        if value is None or value == []:
            continue
        if kind == "list":
            words += [(keyword, option), ("[", option)]
            words += [(str(v), option) for v in value]
            words.append(("]", option))
        else:
            words += [(keyword, option), (str(value), option)]
    return words


def explain_invalid(params, message):
    """The agent's invalid_route message, with the option it is about named first."""
    match = INVALID_ROUTE.match(message)
    if not match:
        return f"the agent refused the route: {message}"
    core, near, index = match.group("core"), match.group("near"), match.group("index")
    option = None
    if index is not None:
        words = route_words(params)
        i = int(index) - 1
        if 0 <= i < len(words) and words[i][0] == near:
            option = words[i][1]
        else:
            option = next((o for w, o in words if w == near), None)
    elif "next-hop" in core:
        option = "next_hop"
    if option is None:
        return f"the agent refused the route: {core}"
    return f"{option}: {core}"


def check_words(module):
    """Every value must be one word, as the agent takes them (no spaces, brackets or braces)."""
    params = module.params
    for option in ("prefix", "next_hop"):
        value = (params[option] or "").strip()
        if not value or NOT_A_WORD.search(value):
            module.fail_json(msg=f"{option}: {params[option]!r} is not a single value")
    for option in ("communities", "large_communities", "extended_communities"):
        for value in params[option] or []:
            if not value.strip() or NOT_A_WORD.search(value.strip()):
                module.fail_json(msg=f"{option}: {value!r} is not a single value")
    owner = params["owner"] or ""
    if not owner.strip() or any(c.isspace() for c in owner.strip()):
        module.fail_json(msg=f"owner: {owner!r} must be a non-empty word without spaces")


def family_of(prefix):
    try:
        return f"ipv{ipaddress.ip_network(prefix.strip(), strict=False).version} unicast"
    except ValueError:
        return None


class Route:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.agent = Agent(module)
        owner = self.params["owner"].strip()
        self.owner = owner if owner.startswith("control:") else f"control:{owner}"
        names = [n.strip() for n in self.params["neighbors"] or [] if n and n.strip()]
        self.selected = names or None

    def fail(self, msg, **extra):
        self.agent.close()
        self.module.fail_json(msg=msg, **extra)

    def neighbors(self):
        """The selected neighbors (every one, without O(neighbors)) as the agent reports them."""
        args = {"neighbor": self.selected} if self.selected else {}
        result = self.agent.try_call("neighbors", **args)
        if not isinstance(result, dict):
            if result.code == "unknown_neighbor":
                known = [n.get("address") for n in self.agent.call("neighbors").get("neighbors", [])]
                self.fail(f"neighbors: {result.message}; the agent's neighbors are: "
                          f"{', '.join(known) or 'none'}", error_code=result.code)
            self.agent.fail(result, "neighbors")
        return result.get("neighbors", [])

    def announced(self):
        """{neighbor: entry} of this prefix, as announced by this owner; and the other owners' entries."""
        result = self.agent.try_call("routes", prefix=self.params["prefix"].strip(), limit=0)
        if not isinstance(result, dict):
            if result.code == "invalid_route":
                self.fail(result.message, error_code=result.code)
            self.agent.fail(result, "routes")
        ours, others = {}, {}
        for entry in result.get("routes", []):
            if entry.get("owner") == self.owner:
                ours[entry.get("neighbor")] = entry
            else:
                others[entry.get("neighbor")] = entry
        return ours, others

    def targets(self, neighbors):
        """Addresses the route is for (state=present)."""
        family = family_of(self.params["prefix"])
        if family is None:
            return [n.get("address") for n in neighbors]

        def carries(n):
            return family in ((n.get("families") or {}).get("configured") or [family])

        if self.selected:
            lacking = [n for n in neighbors if not carries(n)]
            if lacking:
                self.fail("neighbors: " + "; ".join(
                    f"{n.get('address')} does not carry {family} (its families: "
                    f"{', '.join((n.get('families') or {}).get('configured') or []) or 'none'})"
                    for n in lacking))
            return [n.get("address") for n in neighbors]
        out = [n.get("address") for n in neighbors if carries(n)]
        if not out:
            self.fail(f"no neighbor of the agent carries {family}, so {self.params['prefix']} "
                      f"cannot be announced (neighbors: "
                      f"{', '.join(n.get('address') for n in neighbors) or 'none'})")
        return out

    def view(self, entries):
        """A diff side: the attributes of the route at each neighbor."""
        return {
            "prefix": self.params["prefix"].strip(),
            "owner": self.owner,
            "state": "present" if entries else "absent",
            "neighbors": {a: {k: v for k, v in entry_attrs(e).items() if v not in (None, [])}
                          for a, e in sorted(entries.items())},
        }

    def run(self):
        params = self.params
        present = params["state"] == "present"
        neighbors = self.neighbors()
        ours, others = self.announced()
        want = wanted_attrs(params)
        if present:
            targets = self.targets(neighbors)
            announce = [a for a in targets
                        if a not in ours or comparable(entry_attrs(ours[a])) != comparable(want)]
            withdraw = sorted(a for a in ours if a not in targets)
        else:
            announce = []
            if self.selected:
                scope = {n.get("address") for n in neighbors}
                withdraw = sorted(a for a in ours if a in scope)
            else:
                withdraw = sorted(ours)
        for address in announce:
            other = others.get(address)
            if other is not None and other.get("owner"):
                self.module.warn(f"{params['prefix']} was announced to {address} by "
                                 f"{other['owner']}; the announcement of {self.owner} replaces it")

        before = self.view(ours)
        if self.module.check_mode or not (announce or withdraw):
            after_entries = dict(ours)
            for address in withdraw:
                after_entries.pop(address, None)
            for address in announce:
                after_entries[address] = dict(want, neighbor=address)
        else:
            self.apply(announce, withdraw)
            after_entries, _others = self.announced()
            self.verify(after_entries, announce, withdraw, want)
        self.agent.close()

        result = {
            "changed": bool(announce or withdraw),
            "announced_to": announce,
            "withdrawn_from": withdraw,
            "route": dict(want, prefix=params["prefix"].strip(), owner=self.owner,
                          state=params["state"], neighbors=sorted(after_entries)),
        }
        if not present:
            result["route"] = {"prefix": params["prefix"].strip(), "owner": self.owner,
                               "state": "absent", "neighbors": sorted(after_entries)}
        if self.module._diff:
            result["diff"] = {"before": before, "after": self.view(after_entries)}
        return result

    def apply(self, announce, withdraw):
        owner = self.params["owner"].strip()
        if announce:
            args = announce_args(self.params)
            reply = self.agent.try_call("announce", neighbors=announce, owner=owner, **args)
            if not isinstance(reply, dict):
                if reply.code == "invalid_route":
                    self.fail(explain_invalid(self.params, reply.message), error_code=reply.code)
                self.agent.fail(reply, "announce")
        if withdraw:
            self.agent.call("withdraw", prefix=self.params["prefix"].strip(), neighbors=withdraw,
                            owner=owner)

    def verify(self, after, announce, withdraw, want):
        """The agent said yes; check that its table now says so too."""
        wrong = [a for a in announce
                 if a not in after or comparable(entry_attrs(after[a])) != comparable(want)]
        left = [a for a in withdraw if a in after]
        if wrong or left:
            self.fail("the agent accepted the change but its routes do not show it: "
                      + "; ".join([f"not announced as asked to {a}" for a in wrong]
                                  + [f"still announced to {a}" for a in left]),
                      announced={a: entry_attrs(e) for a, e in after.items()})


def main():
    argument_spec = control_argument_spec(timeout=30)
    argument_spec.update(
        prefix={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        next_hop={"type": "str", "default": "self"},
        med={"type": "int"},
        local_preference={"type": "int"},
        origin={"type": "str", "choices": ["igp", "egp", "incomplete"], "default": "igp"},
        as_path={"type": "list", "elements": "int"},
        communities={"type": "list", "elements": "str"},
        large_communities={"type": "list", "elements": "str"},
        extended_communities={"type": "list", "elements": "str"},
        neighbors={"type": "list", "elements": "str"},
        owner={"type": "str", "default": "ansible"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_words(module)
    module.exit_json(**Route(module).run())


if __name__ == "__main__":
    main()
