#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance
short_description: Drain a BGP server before maintenance, and bring it back
version_added: 0.1.0
description:
  - Puts the fleetbgp agent on the target into maintenance (O(state=drained)) or takes it out
    (O(state=active)), through its control socket. The BGP sessions stay up throughout.
  - Drained, the agent withdraws every route from every neighbor (its default, C(withdraw) mode), or
    re-announces them all with a high MED (C(metric) mode, C(--maintenance-mode metric)), so the
    routers send the traffic to the other servers. Active again, it announces its routes as before.
  - Idempotent - the module reads the agent's state first and changes it only when it differs.
  - A drain is not kept across a restart of the agent.
options:
  state:
    description:
      - V(drained) - the host is in maintenance, its routes withdrawn (or made unattractive).
      - V(active) - the host announces its routes normally.
    type: str
    choices: [drained, active]
    required: true
  wait:
    description:
      - Seconds to wait after draining (only when the module drained the host in this run), so that the
        routers converge and connections move away before the next task stops services.
    type: int
    default: 0
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
    details: Reads the state and reports whether it would change.
  diff_mode:
    support: full
    details: The maintenance state before and after.
  platform:
    platforms: posix
seealso:
  - module: fleet.bgp.agent_info
  - module: fleet.bgp.route
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Rolling maintenance, one server at a time
  hosts: bgp_servers
  serial: 1
  become: true
  tasks:
    - name: Drain, and give the routers 10 seconds to move the traffic
      fleet.bgp.maintenance:
        state: drained
        wait: 10

    - name: Install the new version of the application
      ansible.builtin.package:
        name: "myapp={{ myapp_version }}"
        state: present

    - name: Back into service
      fleet.bgp.maintenance:
        state: active

    - name: Wait until the sessions are up before the next server
      fleet.bgp.agent_info:
        wait_for: established
"""

RETURN = r"""
maintenance:
  description: Whether the host is drained after the task (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
mode:
  description:
    - What a drain does on this agent - V(withdraw) (routes withdrawn) or V(metric) (re-announced
      with RV(metric) as MED).
  returned: always
  type: str
  sample: withdraw
metric:
  description: The MED a C(metric) drain announces.
  returned: always
  type: int
  sample: 1000
waited:
  description: Seconds waited after draining (O(wait)).
  returned: always
  type: int
  sample: 0
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_common import (
    Agent,
    control_argument_spec,
)


def run(module):
    agent = Agent(module)
    drain = module.params["state"] == "drained"
    status = agent.call("status")
    before = bool(status.get("maintenance"))
    changed = before != drain
    result = {"changed": changed, "maintenance": drain if changed else before, "waited": 0,
              "mode": status.get("maintenance_mode"),
              "metric": (status.get("settings") or {}).get("maintenance_metric")}
    if changed and not module.check_mode:
        reply = agent.call("maintenance", state="on" if drain else "off")
        result["maintenance"] = bool(reply.get("maintenance"))
        result["mode"] = reply.get("mode", result["mode"])
        result["metric"] = reply.get("metric", result["metric"])
        if result["maintenance"] != drain:
            agent.close()
            module.fail_json(msg=f"the agent answered, but maintenance is still "
                                 f"{'on' if result['maintenance'] else 'off'}", **result)
    agent.close()
    if changed and drain and module.params["wait"] > 0 and not module.check_mode:
        time.sleep(module.params["wait"])
        result["waited"] = module.params["wait"]
    if module._diff:
        result["diff"] = {"before": {"maintenance": before, "state": "drained" if before else "active"},
                          "after": {"maintenance": result["maintenance"],
                                    "state": "drained" if result["maintenance"] else "active"}}
    return result


def main():
    argument_spec = control_argument_spec(timeout=30)
    argument_spec.update(
        state={"type": "str", "choices": ["drained", "active"], "required": True},
        wait={"type": "int", "default": 0},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["wait"] < 0:
        module.fail_json(msg="wait must be 0 or more seconds")
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
