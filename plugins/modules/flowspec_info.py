#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flowspec_info
short_description: List the BGP FlowSpec rules the fleetbgp agent announces
version_added: 0.2.0
description:
  - Reads the FlowSpec rules of the fleetbgp agent on the target - those announced through the control
    socket (M(fleet.bgp.flowspec), the C(fleet.bgp.mitigate) playbook, C(fleetbgp flow announce)), by API
    programs, and those of the agent's configuration file - with what each matches, what the routers are
    asked to do, when it expires and which neighbors have it now.
  - Changes nothing, also outside check mode. It replaces O(fleet.bgp.flowspec#module:state=query), which
    is deprecated (removed in 1.0.0).
options:
  name:
    description:
      - Only this rule. RV(rule) is then the rule, or null when the agent has no rule of that name (not an
        error - the task tells whether a mitigation is still in place).
    type: str
  timeout:
    description:
      - Seconds to wait for the agent's reply.
    type: float
    default: 30
extends_documentation_fragment:
  - fleet.bgp.control
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The same as outside check mode - the module only reads.
  diff_mode:
    support: N/A
  platform:
    platforms: posix
seealso:
  - module: fleet.bgp.flowspec
  - module: fleet.bgp.agent_info
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: List the rules
  fleet.bgp.flowspec_info:
  register: flows
  become: true

- name: Show them, one line each
  ansible.builtin.debug:
    msg: "{{ flows.rules | map(attribute='text') | list }}"

- name: Is the DNS mitigation still announced to a router?
  fleet.bgp.flowspec_info:
    name: dns-amp-203.0.113.10
  register: dns
  become: true

- name: Say so
  ansible.builtin.debug:
    msg: >-
      {{ 'active at ' ~ (dns.rule.announced_to | join(', '))
         if dns.rule and dns.rule.announced_to else 'not announced' }}
"""

RETURN = r"""
rules:
  description:
    - The agent's FlowSpec rules sorted by name (with O(name), that rule alone, or none).
  returned: always
  type: list
  elements: dict
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
      description:
        - Who announced it - C(control:OWNER) (the control socket; V(control:ansible) for the modules,
          V(control:mitigate) for the playbook), C(process:NAME) (an API program) or V(config).
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
    - name: dns-amp-203.0.113.10
      family: ipv4
      match: {"destination": ["203.0.113.10/32"], "protocol": ["=udp"]}
      then: {"discard": true}
      text: >-
        flow route dns-amp-203.0.113.10 { match { destination 203.0.113.10/32; protocol =udp; }
        then { discard; } }
      owner: control:ansible
      created_at: 1764115200.5
      expires_at: 1764118800.5
      neighbors: null
      announced_to: [192.0.2.1]
rule:
  description:
    - With O(name), the rule (the keys of RV(rules)), or null when the agent has none of that name.
      Without O(name), null.
  returned: always
  type: dict
  sample: null
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_common import (
    Agent,
    control_argument_spec,
)


def read_rules(agent):
    """The agent's rules, sorted by name; tolerates the {"flows": [...]} form of the reply."""
    result = agent.call("flows")
    if isinstance(result, dict):
        result = result.get("flows", result.get("rules", []))
    return sorted(result or [], key=lambda r: str(r.get("name")))


def main():
    argument_spec = control_argument_spec(timeout=30)
    argument_spec.update(name={"type": "str"})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    name = module.params["name"]
    agent = Agent(module)
    rules = read_rules(agent)
    agent.close()
    if name is not None:
        rules = [r for r in rules if r.get("name") == name]
    module.exit_json(changed=False, rules=rules, rule=rules[0] if name is not None and rules else None)


if __name__ == "__main__":
    main()
