#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flowspec
short_description: Announce or withdraw BGP FlowSpec rules (DDoS mitigation) through the fleetbgp agent
version_added: 0.2.0
description:
  - Makes the fleetbgp agent on the target announce a BGP FlowSpec rule (RFC 8955, RFC 8956) to its
    routers (O(state=present)) or withdraw it (O(state=absent)). M(fleet.bgp.flowspec_info) lists the
    rules (O(state=query) still does, deprecated). The routers then drop, rate-limit, mark or redirect
    the matching traffic.
  - Rules are known by O(name). A rule is what it matches (O(match)), what the routers do with the
    traffic (O(then)), its O(family) and the O(neighbors) it goes to. The module reads the agent's
    rules first; a rule that is already active as asked is reported as unchanged, so a second run
    reports no change. A different rule under an existing name replaces it (the routers get the
    withdrawal of the old rule and the new one).
  - With O(expires_after) the agent withdraws the rule by itself when the time is up, even when nobody
    comes back to remove it - a forgotten mitigation does not stay for ever.
  - Rules announced this way live in the agent's memory - they survive reloads and session restarts,
    not a restart of the agent. Rules that must always be there belong in the agent's configuration
    (C(flow { route NAME { ... } }) inside a neighbor).
  - The neighbors must carry the FlowSpec family (C(family { ipv4 flow; }) or C(ipv6 flow) in the
    agent's configuration, C(families) of the C(fleet.bgp.agent) role's neighbors), else the rule is
    kept but reaches no router; the module warns when an active rule reaches no neighbor.
options:
  name:
    description:
      - "The rule's name on this agent, 1 to 64 characters - letters, digits, V(_), V(.), V(:) and V(-)."
      - Required with O(state=present). With O(state=absent), the rule to remove (or use O(all)).
        With O(state=query) (deprecated), only this rule is reported.
    type: str
  state:
    description:
      - V(present) - the rule is announced exactly as given.
      - V(absent) - the rule O(name) (or, with O(all), every rule of O(owner)) is withdrawn. Any rule
        RV(rules) lists can be removed by its name (an API program's is named C(rule-HASH)), except a
        rule of the agent's configuration file (owner V(config)) - the module then fails and says to
        edit the configuration.
      - V(query) - nothing changes; RV(rules) lists the agent's rules. Deprecated - use
        M(fleet.bgp.flowspec_info), which returns the same RV(rules) and RV(rule); V(query) is removed in
        release 1.0.0 of fleet.bgp.
    type: str
    choices: [present, absent, query]
    default: present
  match:
    description:
      - What traffic the rule is for, with ExaBGP's names and value syntax. Components, as keys -
        V(destination), V(source) (prefixes, V(203.0.113.0/24); IPv6 with an optional offset,
        V(2001:db8::/64/8)), V(protocol) (IPv4) or V(next-header) (IPv6), V(port), V(destination-port),
        V(source-port), V(icmp-type), V(icmp-code), V(tcp-flags), V(packet-length), V(dscp) (IPv4) or
        V(traffic-class) (IPv6), V(fragment), V(flow-label) (IPv6).
      - Values - a number (V(80)), an operator expression (V(=80), V(>1024&<2048), V(!=0)), a name for
        protocols (V(tcp), V(udp), V(icmp), or V(=tcp)), flags in brackets for V(tcp-flags) and
        V(fragment) (V([syn]), V([is-fragment])); a list of values matches any of them (they are ORed).
      - Required with O(state=present); a rule must match something (at least one component).
      - An unknown component is an error that names it; the agent checks every value and names the
        component and why when one is wrong, and then announces nothing.
    type: dict
  then:
    description:
      - What the routers do with the matching traffic, with ExaBGP's names - V(discard) (no value, or
        V(true)), V(rate-limit) (bytes per second, V(0) drops everything; or V(N packets)),
        V(rate-limit-packets) (packets per second), V(redirect) (to the VRF with this route target,
        V(ASN:NN), V(ASN4:NN) or V(A.B.C.D:NN); or to an IP next hop, an address alone),
        V(redirect-to-nexthop) (V(true)), V(copy) (an address), V(next-hop), V(mark) (set the DSCP, 0 to
        63), V(action) (V(sample), V(terminal) or V(sample-terminal)), V(accept) (nothing), V(community),
        V(extended-community), V(large-community) (extra communities, as in routes).
      - Required with O(state=present). Keys may use V(_) for V(-) (V(rate_limit)).
    type: dict
  family:
    description:
      - V(ipv4) or V(ipv6) FlowSpec. Default - the family of the O(match) prefixes (V(destination),
        V(source)), else V(ipv4).
    type: str
    choices: [ipv4, ipv6]
  neighbors:
    description:
      - Addresses of the neighbors the rule is for. Default - every neighbor whose session carries the
        rule's FlowSpec family. An address that is not a neighbor of the agent is an error.
    type: list
    elements: str
  expires_after:
    description:
      - The agent withdraws the rule by itself this long after the task - in seconds (V(3600)), or as a
        duration with a unit, V(s), V(m), V(h) or V(d) (V(90s), V(30m), V(2h), V(1h30m), V(1d)).
      - Not set, the rule stays until it is removed (or the agent restarts).
      - Running the task again with O(expires_after) refreshes the expiry (the rule then expires
        O(expires_after) from the new run) without announcing the rule again, and this is reported as
        no change (C(changed=false), RV(expiry_refreshed=true)) - the routers see nothing new.
      - Running it again without O(expires_after) keeps the rule's expiry as it is.
    type: raw
  all:
    description:
      - With O(state=absent) and no O(name), withdraw every rule of O(owner) (for example every rule of
        the C(fleet.bgp.mitigate) playbook, owner V(mitigate)).
    type: bool
    default: false
  owner:
    description:
      - Who announces the rule, as the agent records it - V(ansible) is stored as V(control:ansible)
        (shown by RV(rules) and C(fleetbgp show flows)). It tells where a rule came from; O(all)
        removes the rules of one owner.
      - A rule's name is its identity whatever its owner - a rule of another owner under the same name
        is replaced (the module warns).
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
      - Reads the agent's rules and reports what would change, without changing them. An expiry is not
        refreshed.
      - The agent checks the rule when it is sent, so an invalid value fails the real run, not the
        check. Check mode compares the rule in a normalised form; a value written in an unusual way
        (not as the agent shows it back) may be reported as a change in check mode when the real run
        then reports none.
  diff_mode:
    support: full
    details: Before and after - the text of the rule, as the agent shows it, with its family and neighbors.
  platform:
    platforms: posix
notes:
  - FlowSpec rules are sent only on sessions that negotiated the FlowSpec family (the agent's
    C(family) block). RV(rule.announced_to) lists the neighbors that have the rule now.
  - What the routers do with a rule is their policy - many accept FlowSpec only from configured
    peers, validate it against the unicast routes (RFC 8955 section 6) or install it only on some
    interfaces. Check on the router (docs/operations/ddos-mitigation.md has the commands).
  - While the agent is drained (M(fleet.bgp.maintenance), C(withdraw) mode), its FlowSpec rules are
    withdrawn from the routers with its routes and come back when the drain ends (RV(rule.announced_to)
    is empty meanwhile). Rules can still be added and removed; expiry timers keep running.
seealso:
  - module: fleet.bgp.flowspec_info
  - module: fleet.bgp.route
  - module: fleet.bgp.agent_info
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Drop DNS amplification towards one address, for one hour
  fleet.bgp.flowspec:
    name: dns-amp-203.0.113.10
    match:
      destination: 203.0.113.10/32
      protocol: udp
      source-port: 53
      packet-length: ">512"
    then:
      discard: true
    expires_after: 1h
  become: true

- name: Rate-limit NTP to a /24 to 1 MB/s (8 Mbit/s)
  fleet.bgp.flowspec:
    name: ntp-limit
    match:
      destination: 198.51.100.0/24
      protocol: "=udp"
      destination-port: "=123"
    then:
      rate-limit: 1000000
    expires_after: 30m
  become: true

- name: Send the traffic of an attacking network to the scrubbing VRF (route target 65001:999)
  fleet.bgp.flowspec:
    name: scrub-192.0.2.0_24
    match:
      source: 192.0.2.0/24
      destination-port: ["=80", "=443"]
      protocol: tcp
    then:
      redirect: "65001:999"
    neighbors: [192.0.2.1]
  become: true

- name: IPv6 - drop fragments towards a prefix
  fleet.bgp.flowspec:
    name: v6-frag
    family: ipv6
    match:
      destination: 2001:db8:100::/48
      fragment: "[is-fragment]"
    then:
      discard: true
  become: true

- name: Remove a rule
  fleet.bgp.flowspec:
    name: ntp-limit
    state: absent
  become: true

- name: Remove every rule announced by the mitigate playbook
  fleet.bgp.flowspec:
    state: absent
    all: true
    owner: mitigate
  become: true

- name: List the rules (fleet.bgp.flowspec_info; state=query is deprecated)
  fleet.bgp.flowspec_info:
  register: flows
  become: true
"""

RETURN = r"""
rule:
  description:
    - The rule as the agent holds it after the task (in check mode, as it would), or null when it is
      absent.
  returned: always
  type: dict
  contains:
    name:
      description: The rule's name.
      type: str
      sample: dns-amp-203.0.113.10
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
    match:
      description: The components, normalised by the agent (ExaBGP names, each a list of values).
      type: dict
      sample: {"destination": ["203.0.113.10/32"], "protocol": ["=udp"], "source-port": ["=53"]}
    then:
      description: The actions, normalised by the agent.
      type: dict
      sample: {"discard": true}
    text:
      description: The rule in the agent's configuration language (ExaBGP syntax).
      type: str
      sample: "flow route dns-amp { match { destination 203.0.113.10/32; protocol =udp; } then { discard; } }"
    owner:
      description: Who announced it.
      type: str
      sample: control:ansible
    created_at:
      description: When it was announced (epoch seconds).
      type: float
      sample: 1764115200.5
    expires_at:
      description: When the agent withdraws it (epoch seconds), or null.
      type: float
      sample: 1764118800.5
    neighbors:
      description: The neighbors it was asked for, or null for every neighbor with the family.
      type: list
      elements: str
      sample: null
    announced_to:
      description: The neighbors that have it now (Established, FlowSpec family negotiated).
      type: list
      elements: str
      sample: [192.0.2.1]
  sample:
    name: dns-amp-203.0.113.10
    family: ipv4
    match: {"destination": ["203.0.113.10/32"], "protocol": ["=udp"]}
    then: {"discard": true}
    owner: control:ansible
    created_at: 1764115200.5
    expires_at: 1764118800.5
    neighbors: null
    announced_to: [192.0.2.1]
rules:
  description:
    - Every FlowSpec rule of the agent after the task (in check mode, as they would be), each with the
      keys of RV(rule). With O(state=query) (deprecated) and O(name), only that rule (or none).
  returned: always
  type: list
  elements: dict
  sample: []
removed:
  description: Names of the rules withdrawn in this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [ntp-limit]
expiry_refreshed:
  description:
    - True when the rule was already active as asked and only its expiry was moved (O(expires_after)
      given again). Not a change.
  returned: always
  type: bool
  sample: false
"""

import difflib
import ipaddress
import math
import re
import struct
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_common import (
    Agent,
    control_argument_spec,
)

NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")

# ExaBGP's names of the match components (RFC 8955 / RFC 8956 order) and of the actions; "_" may
# stand for "-" (destination_port), as in the agent.
MATCH_KEYS = (
    "destination", "source", "protocol", "next-header", "port", "destination-port", "source-port",
    "icmp-type", "icmp-code", "tcp-flags", "packet-length", "dscp", "traffic-class", "fragment",
    "flow-label",
)
MATCH_ALIASES = {"destination-ipv4": "destination", "destination-ipv6": "destination",
                 "source-ipv4": "source", "source-ipv6": "source"}
THEN_KEYS = (
    "discard", "accept", "rate-limit", "rate-limit-packets", "redirect", "redirect-to-nexthop", "copy",
    "next-hop", "mark", "action", "community", "extended-community", "large-community",
)
PREFIX_KEYS = ("destination", "source")
LIST_ACTIONS = ("community", "extended-community", "large-community", "redirect")
BITMASK_KEYS = ("tcp-flags", "fragment")
# Value names the agent shows (as ExaBGP does) or accepts, for comparing with what was asked.
PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "egp": 8, "udp": 17, "rsvp": 46, "gre": 47, "esp": 50,
             "ah": 51, "ospf": 89, "ipip": 94, "pim": 103, "sctp": 132, "ipv6-icmp": 58, "icmpv6": 58,
             "icmp6": 58}
ICMP_TYPES = {"echo-reply": 0, "unreachable": 3, "redirect": 5, "echo-request": 8,
              "router-advertisement": 9, "router-solicit": 10, "time-exceeded": 11,
              "parameter-problem": 12, "timestamp": 13, "timestamp-reply": 14}
VALUE_NAMES = {"protocol": PROTOCOLS, "next-header": PROTOCOLS, "icmp-type": ICMP_TYPES}
OPERATOR = re.compile(r"^(!=|>=|<=|=|>|<|!)?(.*)$")

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.I)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# -- checking the options -------------------------------------------------------------------------

def parse_duration(value):
    """expires_after in seconds (a float), or None; raises ValueError with the reason."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if not text:
            return None
        try:
            seconds = float(text)
        except ValueError:
            compact = text.replace(" ", "")
            parts = DURATION.findall(compact)
            if not parts or "".join(n + u for n, u in parts) != compact:
                raise ValueError(f"{value!r} is not a duration (seconds, or a number with s, m, h or d: "
                                 f"90s, 30m, 2h, 1h30m, 1d)") from None
            seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in parts)
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be more than 0 seconds (leave it out for a rule that does "
                         f"not expire)")
    if seconds > 366 * 86400:
        raise ValueError(f"{value!r} is more than a year")
    return seconds


def suggest(key, known):
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_values(where, key, value):
    """A component or action value must be a scalar or a flat list of scalars."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, (dict, list)):
            raise ValueError(f"{where}.{key}: {value!r} - give a value or a list of values")
    if isinstance(value, list) and not value:
        raise ValueError(f"{where}.{key}: the list is empty")


def check_params(module):
    """Argument errors the agent would only report later, or less clearly: each names the option."""
    p = module.params
    state = p["state"]

    def fail(msg):
        module.fail_json(msg=msg)

    if p["name"] is not None and not NAME.match(p["name"]):
        fail(f"name: {p['name']!r} must be 1 to 64 characters out of letters, digits and _ . : -")
    owner = p["owner"] or ""
    if not owner.strip() or any(c.isspace() for c in owner.strip()):
        fail(f"owner: {owner!r} must be a non-empty word without spaces")
    if p["all"]:
        if state != "absent":
            fail("all: only with state=absent (remove every rule of the owner)")
        if p["name"] is not None:
            fail("all: give either name (one rule) or all=true (every rule of the owner), not both")
    if state == "absent" and p["name"] is None and not p["all"]:
        fail("name: required with state=absent (or all=true to remove every rule of the owner)")
    if state != "present":
        return
    for option in ("name", "match", "then"):
        if not p[option]:
            fail(f"{option}: required with state=present" +
                 (" - a rule must match something" if option == "match" else
                  " - say what the routers do, e.g. then: {discard: true}" if option == "then" else ""))
    for where, known, given in (("match", MATCH_KEYS, p["match"]), ("then", THEN_KEYS, p["then"])):
        for key, value in given.items():
            name = match_key(key) if where == "match" else then_key(key)
            if name not in known:
                fail(f"{where}: unknown {'component' if where == 'match' else 'action'} {key!r}"
                     f"{suggest(name, known)}; known: {', '.join(known)}")
            try:
                if where == "match" or value is not None:
                    check_values(where, key, value)
            except ValueError as exc:
                fail(str(exc))
    try:
        p["expires_after"] = parse_duration(p["expires_after"])
    except ValueError as exc:
        fail(f"expires_after: {exc}")
    for address in p["neighbors"] or []:
        if not address or not address.strip():
            fail("neighbors: an empty address")


# -- comparing rules ------------------------------------------------------------------------------

def match_key(key):
    k = str(key).strip().lower().replace("_", "-")
    return MATCH_ALIASES.get(k, k)


def then_key(key):
    return str(key).strip().lower().replace("_", "-")


def guess_family(params):
    """The family as the agent chooses it: given, else the family of the first prefix, else ipv4."""
    if params["family"]:
        return params["family"]
    for key, value in (params["match"] or {}).items():
        if match_key(key) in PREFIX_KEYS:
            for item in as_list(value):
                return "ipv6" if ":" in str(item) else "ipv4"
    return "ipv4"


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def terms(value):
    """A component's value as a list of ORed terms: '[ =80 =443 ]', ['=80', '=443'], 80."""
    out = []
    for item in as_list(value):
        if isinstance(item, bool):
            out.append(str(item).lower())
            continue
        if isinstance(item, int):
            out.append(f"={item}")
            continue
        text = str(item).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        out.extend(t for t in text.replace(",", " ").split() if t)
    return out


def norm_prefix(text):
    address, slash, rest = str(text).strip().lower().partition("/")
    length, slash2, offset = rest.partition("/")
    try:
        address = str(ipaddress.ip_network(f"{address}/{length}" if slash else address,
                                           strict=False).network_address)
    except ValueError:
        return str(text).strip().lower()
    if not slash:
        length = "128" if ":" in address else "32"
    return f"{address}/{length}" + (f"/{offset}" if slash2 and offset not in ("", "0") else "")


def norm_term(key, term):
    """One numeric term ('>=1024&<=2048', 'tcp', '=echo-request') in a canonical form."""
    names = VALUE_NAMES.get(key, {})
    parts = []
    for part in term.lower().split("&"):
        op, value = OPERATOR.match(part.strip()).groups()
        value = value.strip()
        if key not in BITMASK_KEYS:
            op = op or "="
            value = str(names.get(value, value))
            if value.isdigit():
                value = str(int(value))
        parts.append((op or "") + value)
    return "&".join(parts)


def norm_match(match, family):
    """A rule's match as the agent normalises it (best effort, for check mode and the diff)."""
    out = {}
    for key, value in (match or {}).items():
        k = match_key(key)
        if k == "dscp" and family == "ipv6":
            k = "traffic-class"
        if k in PREFIX_KEYS:
            out[k] = [norm_prefix(v) for v in as_list(value)]
        else:
            out[k] = [norm_term(k, t) for t in terms(value)]
    return out


def float32(value):
    return struct.unpack("!f", struct.pack("!f", float(value)))[0]


def flag(value):
    return value is None or value is True or str(value).strip().lower() in ("true", "yes", "on", "1")


def norm_then(then):
    """A rule's actions as the agent normalises them (best effort, for check mode)."""
    out = {}
    for key, value in (then or {}).items():
        k = then_key(key)
        if k in ("discard", "accept", "redirect-to-nexthop"):
            if flag(value):
                out[k] = True
        elif k in ("rate-limit", "rate-limit-packets"):
            words = str(value).split()
            if len(words) == 2 and words[1].lower() in ("bytes", "packets"):
                k = "rate-limit-packets" if words[1].lower() == "packets" else k
                value = words[0]
            try:
                rate = float32(value)
            except (TypeError, ValueError, OverflowError):
                out[k] = str(value).strip().lower()
                continue
            if rate == 0 and k == "rate-limit":
                out["discard"] = True
            else:
                out[k] = rate
        elif k == "mark":
            try:
                out[k] = int(str(value).strip())
            except ValueError:
                out[k] = str(value).strip().lower()
        elif k == "action":
            text = str(value).strip().lower()
            out[k] = "sample-terminal" if text == "terminal-sample" else text
        elif isinstance(value, list) or k in LIST_ACTIONS:
            out[k] = sorted(str(v).strip().lower() for v in terms(value) if str(v).strip())
        else:
            out[k] = str(value).strip().lower()
    if len(out) > 1:
        out.pop("accept", None)
    return out or {"accept": True}


def comparable(family, match, then, neighbors):
    return (family, norm_match(match, family), norm_then(then),
            tuple(sorted(neighbors)) if neighbors else None)


def rule_comparable(rule):
    return comparable(rule.get("family"), rule.get("match"), rule.get("then"), rule.get("neighbors"))


def render_value(value):
    if isinstance(value, list):
        return render_value(value[0]) if len(value) == 1 else "[ " + " ".join(map(render_value, value)) + " ]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def shown_match(match):
    """A normalised match as the agent shows it: RFC 8955 order, protocols and ICMP types by name."""
    out = {}
    for key in sorted(match, key=lambda k: MATCH_KEYS.index(k) if k in MATCH_KEYS else len(MATCH_KEYS)):
        names = {v: n for n, v in VALUE_NAMES.get(key, {}).items() if v != 58}
        values = []
        for term in match[key]:
            op, value = OPERATOR.match(term).groups()
            values.append((op or "") + names[int(value)] if "&" not in term and value.isdigit()
                          and int(value) in names else term)
        out[key] = values
    return out


def render_text(name, match, then):
    """A rule's text, as the agent writes it, for a rule the agent has not seen (check mode)."""
    parts = [f"{k} {render_value(v)};" for k, v in match.items()]
    acts = []
    for k, v in then.items():
        if v is True or v is None:
            acts.append(f"{k};")
        else:
            acts.append(f"{k} {render_value(v)};")
    return f"flow route {name} {{ match {{ {' '.join(parts)} }} then {{ {' '.join(acts)} }} }}"


def diff_text(rule):
    """A diff side: the rule's text with its family and neighbors, or '' when absent."""
    if rule is None:
        return ""
    neighbors = rule.get("neighbors")
    text = rule.get("text") or render_text(rule.get("name"), rule.get("match") or {}, rule.get("then") or {})
    targets = ", ".join(neighbors) if neighbors else "all"
    lines = [f"# family {rule.get('family')}, neighbors: {targets}", text]
    return "\n".join(lines) + "\n"


# -- the module -----------------------------------------------------------------------------------

class FlowSpec:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.agent = Agent(module)
        owner = self.params["owner"].strip()
        self.owner = owner if owner.startswith("control:") else f"control:{owner}"

    def fail(self, msg, **extra):
        self.agent.close()
        self.module.fail_json(msg=msg, **extra)

    def rules(self):
        result = self.agent.call("flows")
        if isinstance(result, dict):  # tolerate {"flows": [...]}
            result = result.get("flows", result.get("rules", []))
        return list(result or [])

    def explain(self, exc, cmd):
        """An agent's refusal, with the option it is about named first."""
        message = exc.message
        if exc.code == "invalid_flow":
            component = (exc.details or {}).get("component") if isinstance(exc.details, dict) else None
            head = message.split(":", 1)[0].strip()
            for where, given in (("match", self.params["match"] or {}), ("then", self.params["then"] or {})):
                keys = {str(k).strip().lower() for k in given}
                if component in keys:
                    return f"{where}.{component}: {message.split(':', 1)[1].strip()}" \
                        if head == component else f"{where}.{component}: {message}"
                if head in keys:
                    return f"{where}.{head}: {message.split(':', 1)[1].strip()}"
            if message.startswith(("unknown neighbor", "neighbor ")):
                return f"neighbors: {message}"
            if message.startswith("expires_after"):
                return f"expires_after: {message.partition(' ')[2]}"
            if message.startswith("rule name"):
                return f"name: {message}"
            if message.startswith("no neighbor has"):
                return (f"{message}: no neighbor of the agent carries {guess_family(self.params)} "
                        f"FlowSpec (add it to the neighbors' families, e.g. the role's "
                        f"fleet_bgp_neighbors[].families: [ipv4 unicast, ipv4 flow])")
            return f"the agent refused the rule: {message}"
        if exc.code == "unknown_neighbor":
            return f"neighbors: {message}"
        return f"the fleetbgp agent refused {cmd!r}: {message} ({exc.code})"

    def call(self, cmd, **args):
        reply = self.agent.try_call(cmd, **args)
        if not isinstance(reply, (dict, list)):
            self.fail(self.explain(reply, cmd), error_code=reply.code,
                      **({"error_details": reply.details} if reply.details is not None else {}))
        return reply

    def run(self):
        state = self.params["state"]
        rules = self.rules()
        if state == "query":
            # The read-only part lives in fleet.bgp.flowspec_info (the *_info convention); kept for
            # one deprecation period so that playbooks written for 0.1.0 keep working.
            self.module.deprecate("fleet.bgp.flowspec: state=query is deprecated, use the module "
                                  "fleet.bgp.flowspec_info (same rules and rule)",
                                  version="1.0.0", collection_name="fleet.bgp")
            name = self.params["name"]
            self.agent.close()
            chosen = [r for r in rules if name is None or r.get("name") == name]
            rule = next((r for r in chosen if name is not None), None)
            return {"changed": False, "rule": rule, "rules": chosen, "removed": [],
                    "expiry_refreshed": False}
        if state == "present":
            return self.present(rules)
        return self.absent(rules)

    def present(self, rules):
        p = self.params
        name = p["name"]
        current = next((r for r in rules if r.get("name") == name), None)
        family = guess_family(p)
        # sorted: the agent compares the list as given, the order means nothing
        neighbors = sorted({n.strip() for n in p["neighbors"] or [] if n.strip()}) or None
        want = comparable(family, p["match"], p["then"], neighbors)
        same = current is not None and rule_comparable(current) == want
        if current is not None and not same and current.get("owner") not in (None, self.owner):
            self.module.warn(f"rule {name} was announced by {current.get('owner')}; "
                             f"the rule of {self.owner} replaces it")
        refreshed = False
        if self.module.check_mode:
            changed = not same
            if same:
                rule = current
            else:
                now = time.time()
                match, then = shown_match(norm_match(p["match"], family)), norm_then(p["then"])
                rule = {"name": name, "family": family, "match": match, "then": then,
                        "text": render_text(name, match, then),
                        "owner": self.owner, "created_at": now,
                        "expires_at": now + p["expires_after"] if p["expires_after"] else None,
                        "neighbors": neighbors, "announced_to": []}
            after_rules = [r for r in rules if r.get("name") != name] + [rule]
        else:
            args = {"name": name, "family": family, "match": p["match"], "then": p["then"],
                    "neighbors": neighbors, "expires_after": p["expires_after"],
                    "owner": p["owner"].strip()}
            reply = self.call("flow_announce", **args)
            changed = bool(reply.get("changed"))
            rule = reply.get("rule") or {}
            refreshed = not changed and p["expires_after"] is not None
            after_rules = self.rules()
            if not any(r.get("name") == name for r in after_rules):
                self.fail(f"the agent accepted rule {name} but does not list it among its rules",
                          rules=after_rules)
            if not rule.get("announced_to"):
                self.module.warn(f"rule {name} is active but no neighbor has it: no Established "
                                 f"session carries {family} flow (check the neighbors' families "
                                 f"and fleetbgp show neighbors)")
        self.agent.close()
        result = {"changed": changed, "rule": rule, "rules": sorted_rules(after_rules), "removed": [],
                  "expiry_refreshed": refreshed}
        if self.module._diff:
            result["diff"] = {"before": diff_text(current), "after": diff_text(rule),
                              "before_header": f"flow rule {name} (before)",
                              "after_header": f"flow rule {name} (after)"}
        return result

    def absent(self, rules):
        p = self.params
        if p["all"]:
            gone = [r for r in rules if r.get("owner") == self.owner]
        else:
            gone = [r for r in rules if r.get("name") == p["name"]]
        names = sorted(r.get("name") for r in gone)
        # An API program's rule (owner process:NAME, named rule-HASH) can be withdrawn by name too;
        # a config rule cannot: the next reload would announce it again.
        foreign = [r for r in gone if r.get("owner") == "config"]
        if foreign:
            self.fail("; ".join(
                f"rule {r.get('name')} comes from config, not from the control socket: "
                "remove it from the agent's configuration and reload" for r in foreign))
        if not self.module.check_mode:
            for name in names:
                self.call("flow_withdraw", name=name)
            after_rules = self.rules() if names else rules
            left = sorted(n for n in names if any(r.get("name") == n for r in after_rules))
            if left:
                self.fail(f"the agent still lists rule(s) {', '.join(left)} after withdrawing them",
                          rules=after_rules)
        else:
            after_rules = [r for r in rules if r.get("name") not in names]
        self.agent.close()
        result = {"changed": bool(names), "rule": None, "rules": sorted_rules(after_rules),
                  "removed": names, "expiry_refreshed": False}
        if self.module._diff:
            before = "".join(diff_text(r) for r in sorted_rules(gone))
            label = p["name"] or f"of owner {self.owner}"
            result["diff"] = {"before": before, "after": "",
                              "before_header": f"flow rule(s) {label} (before)",
                              "after_header": f"flow rule(s) {label} (after)"}
        return result


def sorted_rules(rules):
    return sorted(rules, key=lambda r: str(r.get("name")))


def main():
    argument_spec = control_argument_spec(timeout=30)
    argument_spec.update(
        name={"type": "str"},
        state={"type": "str", "choices": ["present", "absent", "query"], "default": "present"},
        match={"type": "dict"},
        then={"type": "dict"},
        family={"type": "str", "choices": ["ipv4", "ipv6"]},
        neighbors={"type": "list", "elements": "str"},
        expires_after={"type": "raw"},
        all={"type": "bool", "default": False},
        owner={"type": "str", "default": "ansible"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    module.exit_json(**FlowSpec(module).run())


if __name__ == "__main__":
    main()
